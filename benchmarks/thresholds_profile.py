"""Where the seconds of ``fit_thresholds`` go: tracing, lowering, XLA compilation, execution.

For synthetic calibration data (uniform scores, labels drawn with probability the score,
balanced groups) of a few sizes, in a fresh process per case: the first call of
``fit_thresholds`` + ``apply_thresholds`` (drawn decisions) with NumPy inputs (the host path,
nothing compiled) and the median of 10 more; then the compiled path (what runs under ``jit``
and on accelerators): the first call of ``roc_hull`` alone, the first call of the same fit and
apply under ``jax.jit`` and the seconds JAX itself reports (``jax.monitoring``) spending in
tracing, lowering to MLIR and XLA compilation during it, the median of 10 compiled calls, and
the size of the program (``jax.make_jaxpr`` lines, with traced inputs). Prints one JSON line
per case, and writes the table to ``benchmarks/results/thresholds_profile_<platform>.md``.

Usage::

    python benchmarks/thresholds_profile.py [--rows 700 3695 30162] [--groups 2 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def one(n: int, G: int, crit: str) -> dict:
    import collections

    import jax
    import jax.numpy as jnp
    import numpy as np

    from fairjax.postprocessing import apply_thresholds, fit_thresholds, roc_hull

    spent = collections.defaultdict(float)  # JAX's own timings of tracing, lowering, compiling
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **_: spent.__setitem__(event, spent[event] + secs)
    )
    rng = np.random.default_rng(0)
    s = rng.random(n).astype(np.float32)
    y = (rng.random(n) < s).astype(np.int64)
    g = (np.arange(n) % G).astype(np.int32)

    key = jax.random.key(0)  # made before the timings (it starts the backend)
    t = time.perf_counter()
    import scipy.optimize  # noqa: F401  (the host path's LP solver; scikit-learn imports it too)

    import_s = time.perf_counter() - t

    def fit_apply(s, y, g):
        st = fit_thresholds(s, y, g, num_groups=G, criterion=crit)
        return apply_thresholds(st, s, g, key=key)

    def timed(fn, repeats=10):
        t = time.perf_counter()
        jax.block_until_ready(fn(s, y, g))
        first = time.perf_counter() - t
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(fn(s, y, g))
            runs.append(time.perf_counter() - t)
        return first, float(np.median(runs))

    host_first, host_again = timed(fit_apply)

    def phases():
        return {
            name: spent[event]
            for name, event in (
                ("trace_s", "/jax/core/compile/jaxpr_trace_duration"),
                ("lower_s", "/jax/core/compile/jaxpr_to_mlir_module_duration"),
                ("compile_s", "/jax/core/compile/backend_compile_duration"),
            )
        }

    t = time.perf_counter()
    jax.block_until_ready(roc_hull(s, y, g, num_groups=G))
    hull = {"hull_alone_first_call_s": time.perf_counter() - t, **phases()}
    spent.clear()
    first, compiled = timed(jax.jit(fit_apply))
    jaxpr = jax.make_jaxpr(lambda a, b, c: fit_thresholds(a, b, c, num_groups=G, criterion=crit))
    return {
        "rows": n,
        "groups": G,
        "criterion": crit,
        "import_scipy_optimize_s": import_s,
        "host_first_call_s": host_first,
        "host_repeated_s": host_again,
        "hull_alone": hull,
        "fit_and_apply_first_call_s": first,
        "of_which": phases(),
        "fit_and_apply_compiled_s": compiled,
        "jaxpr_lines_traced_inputs": len(str(jaxpr(*map(jnp.asarray, (s, y, g)))).splitlines()),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[700, 3695, 30162])
    ap.add_argument("--groups", type=int, nargs="+", default=[2])
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        n, G, crit = args.one
        print(json.dumps(one(int(n), int(G), crit)))
        return
    records = []
    for n in args.rows:
        for G in args.groups:
            for crit in ("demographic_parity", "equalized_odds"):
                # a fresh process per case: nothing compiled before
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(n), str(G), crit],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                print(out.stdout.strip(), flush=True)
                records.append(json.loads(out.stdout))
    _write(records, " ".join(sys.argv[1:]))


def _write(records: list, argv: str) -> None:
    import jax

    lines = [
        f"# Where the seconds of fit_thresholds + apply_thresholds go ({jax.default_backend()})",
        "",
        f"`python benchmarks/thresholds_profile.py {argv}`".replace(" `", "`"),
        "(a fresh process per row; synthetic data). Host path: NumPy inputs, nothing compiled;",
        "SciPy's optimizer is imported first (its import time in its own column: once per",
        "process, and done already in a process that has used scikit-learn).",
        "Compiled path: the same calls under `jax.jit` (as on an accelerator); of its first",
        "call, the seconds JAX reports in XLA compilation, tracing and lowering. Load average",
        "(1 min) per row in the last column.",
        "",
        "| rows | groups | criterion | import scipy.optimize (s) | host first (ms) | "
        "host repeated (ms) | jit first (s) | XLA compile (s) | tracing (s) | lowering (s) | "
        "jit compiled (ms) | jaxpr lines | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ph = r["of_which"]
        lines.append(
            f"| {r['rows']} | {r['groups']} | {r['criterion']} | "
            f"{r['import_scipy_optimize_s']:.2f} | {1e3 * r['host_first_call_s']:.1f} | "
            f"{1e3 * r['host_repeated_s']:.1f} | "
            f"{r['fit_and_apply_first_call_s']:.2f} | {ph['compile_s']:.2f} | "
            f"{ph['trace_s']:.2f} | {ph['lower_s']:.2f} | "
            f"{1e3 * r['fit_and_apply_compiled_s']:.1f} | {r['jaxpr_lines_traced_inputs']} | "
            f"{r['load_average'][0]:.1f} |"
        )
    path = os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"thresholds_profile_{jax.default_backend()}.md",
    )
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
