"""Time fairjax's demographic parity and equal opportunity differences against fairlearn's.

One process, the same inputs for both libraries: ``n`` rows (default 10^7) of binary labels,
binary decisions and 2 groups. fairlearn is timed once (it takes minutes at 10^7 rows); fairjax
is timed as the median of ``--repeats`` runs after a warm-up, with the compile time reported
separately, both as a user calls it eagerly (edge validation included) and inside a user's
``jax.jit``. The memory-bandwidth bound is the time to read the inputs' bytes once at the
bandwidth measured here by a large reduction.

Usage::

    python benchmarks/metrics_vs_fairlearn.py            # 10^7 rows
    python benchmarks/metrics_vs_fairlearn.py --n 1000000 --repeats 21
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import metrics

RESULTS = pathlib.Path(__file__).parent / "results"


def timed(fn, *args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def median_time(fn, *args, repeats):
    return statistics.median(timed(fn, *args) for _ in range(repeats))


def read_bandwidth(num_bytes: int = 800_000_000) -> float:
    """Bytes per second of a jitted float32 sum over a large array (a streaming read)."""
    x = jnp.ones(num_bytes // 4, jnp.float32)
    total = jax.jit(jnp.sum)
    total(x).block_until_ready()
    seconds = min(timed(total, x) for _ in range(5))
    return num_bytes / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--skip-fairlearn", action="store_true")
    args = parser.parse_args()
    n = args.n

    rng = np.random.default_rng(0)
    groups = rng.integers(0, 2, n)
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.uniform(size=n) < 0.3 + 0.1 * groups).astype(np.int64)

    result: dict[str, object] = {
        "n": n,
        "num_groups": 2,
        "jax": jax.__version__,
        "device": f"{jax.devices()[0].platform} x{jax.device_count()}",
        "device_kind": jax.devices()[0].device_kind,
        "machine": platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
    }

    # fairlearn: one run of each function, as a user calls it (NumPy int64 inputs).
    if not args.skip_fairlearn:
        import fairlearn
        import fairlearn.metrics as flm

        start = time.perf_counter()
        fl_dp = flm.demographic_parity_difference(y_true, y_pred, sensitive_features=groups)
        fl_eo = flm.equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)
        result["fairlearn_seconds"] = time.perf_counter() - start
        result["fairlearn_version"] = fairlearn.__version__
        result["fairlearn_values"] = [float(fl_dp), float(fl_eo)]
        print(f"fairlearn {fairlearn.__version__}: {result['fairlearn_seconds']:.2f} s")

    def both(y_true, y_pred, groups):
        return (
            metrics.demographic_parity_difference(y_pred, groups, num_groups=2),
            metrics.equal_opportunity_difference(y_true, y_pred, groups, num_groups=2),
        )

    jitted = jax.jit(both)
    for dtype in ["int32", "int8"]:
        inputs = [jnp.asarray(a.astype(dtype)) for a in (y_true, y_pred, groups)]
        jax.block_until_ready(inputs)
        num_bytes = sum(a.nbytes for a in inputs)
        compile_s = timed(jitted, *inputs)  # first call: trace + compile + run
        jit_s = median_time(jitted, *inputs, repeats=args.repeats)
        both(*inputs)  # warm the library's own jit caches
        eager_s = median_time(both, *inputs, repeats=args.repeats)
        values = [float(v) for v in jitted(*inputs)]
        result[dtype] = {
            "input_bytes": num_bytes,
            "first_call_seconds": compile_s,
            "jit_seconds": jit_s,
            "eager_seconds": eager_s,
            "values": values,
        }
        print(
            f"fairjax {dtype}: inputs {num_bytes / 1e6:.0f} MB, first call {compile_s:.3f} s, "
            f"jitted {jit_s:.4f} s, eager (with validation) {eager_s:.4f} s"
        )
        if "fairlearn_values" in result:
            assert np.allclose(values, result["fairlearn_values"], atol=1e-6), (
                values,
                result["fairlearn_values"],
            )

    bandwidth = read_bandwidth()
    result["read_bandwidth_bytes_per_s"] = bandwidth
    lines = [
        f"# fairjax vs fairlearn: DP and EO differences on {n:,} rows, 2 groups",
        "",
        f"Device: {result['device']} ({result['device_kind']}), jax {jax.__version__}, "
        f"{result['cpu_count']} CPU cores. Measured read bandwidth: {bandwidth / 1e9:.1f} GB/s.",
        "",
        "| implementation | seconds | speed-up vs fairlearn | x memory-bandwidth bound |",
        "|---|---|---|---|",
    ]
    fl = result.get("fairlearn_seconds")
    if fl:
        lines.append(
            f"| fairlearn {result['fairlearn_version']} (NumPy int64) | {fl:.2f} | 1 | - |"
        )
    for dtype in ["int32", "int8"]:
        r = result[dtype]
        bound = r["input_bytes"] / bandwidth
        r["bandwidth_bound_seconds"] = bound
        for mode in ["jit", "eager"]:
            s = r[f"{mode}_seconds"]
            speedup = f"{fl / s:.0f}x" if fl else "-"
            r[f"{mode}_speedup"] = fl / s if fl else None
            label = "inside jax.jit" if mode == "jit" else "eager, edge validation included"
            lines.append(
                f"| fairjax, {dtype} inputs, {label} | {s:.4f} | {speedup} | {s / bound:.1f}x |"
            )
    lines += [
        "",
        "Memory-bandwidth bound: the inputs' bytes (labels, decisions, groups) read once at the "
        "measured bandwidth. First-call (trace + compile + run) times: "
        + ", ".join(f"{d} {result[d]['first_call_seconds']:.2f} s" for d in ["int32", "int8"])
        + ".",
        "",
        "Command: `python benchmarks/metrics_vs_fairlearn.py"
        + (f" --n {n}" if n != 10_000_000 else "")
        + "`",
    ]
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stem = f"metrics_vs_fairlearn_{result['device'].split()[0]}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(table)
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
