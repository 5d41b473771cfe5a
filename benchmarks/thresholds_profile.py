"""Where the seconds of ``fit_thresholds`` go: tracing, lowering, XLA compilation, execution.

For synthetic calibration data (uniform scores, labels drawn with probability the score,
balanced groups) of a few sizes, in a fresh process per case: the first call of
``roc_hull`` alone, then the first call of ``fit_thresholds`` + ``apply_thresholds`` (drawn
decisions) and the seconds JAX itself reports (``jax.monitoring``) spending in tracing,
lowering to MLIR and XLA compilation during it, then the median of 10 compiled calls, and the
size of the program (``jax.make_jaxpr`` lines, with traced inputs). Prints one JSON line per
case.

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

    def call():
        st = fit_thresholds(s, y, g, num_groups=G, criterion=crit)
        return jax.block_until_ready(apply_thresholds(st, s, g, key=jax.random.key(0)))

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
    t = time.perf_counter()
    call()
    first = time.perf_counter() - t
    runs = []
    for _ in range(10):
        t = time.perf_counter()
        call()
        runs.append(time.perf_counter() - t)
    jaxpr = jax.make_jaxpr(lambda a, b, c: fit_thresholds(a, b, c, num_groups=G, criterion=crit))
    return {
        "rows": n,
        "groups": G,
        "criterion": crit,
        "hull_alone": hull,
        "fit_and_apply_first_call_s": first,
        "of_which": phases(),
        "fit_and_apply_compiled_s": float(np.median(runs)),
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


if __name__ == "__main__":
    main()
