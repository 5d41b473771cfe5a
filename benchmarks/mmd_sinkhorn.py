"""MMD and Sinkhorn penalties: forward+backward time, against plain jnp and ott-jax called directly.

One process, the same inputs for every implementation: ``n`` representations in 32 dimensions,
two balanced groups (``n / 2`` rows each, shuffled), shifted apart by 0.5 in every coordinate.
Every implementation is timed as ``jax.jit(jax.value_and_grad(f))`` with respect to the
representations ``h`` (a training step's penalty work):

* ``mmd exact``: :func:`fairjax.penalties.mmd`, Gaussian kernel, ``reference="pairwise"``
  (:math:`\\mathrm{MMD}^2(\\mu_0, \\mu_1)`, biased), the bandwidth fixed to the median heuristic
  computed once beforehand;
* ``jnp mmd``: the same MMD^2 written in plain ``jnp`` (squared distances, ``exp``,
  ``a^T K a``);
* ``mmd rff``: :func:`fairjax.penalties.mmd` with ``features=`` 1,024 random Fourier features
  of the same Gaussian kernel (linear in ``n``);
* ``sinkhorn``: :func:`fairjax.penalties.sinkhorn`, ``reference="pairwise"``, epsilon = 0.1 x
  the mean squared distance (``relative_epsilon="mean"``), group ids concrete (the block size
  comes from the data);
* ``sinkhorn traced ids``: the same with the group ids a traced argument and
  ``group_size=n // 2`` (the training-loop case);
* ``ott direct``: ott-jax's ``sinkhorn_divergence`` called directly on ``h[s == 0]`` and
  ``h[s == 1]`` with the same epsilon (computed beforehand) and the same (default) solver
  settings. The wrapper's overhead is its median time over this one's.

Protocol: each implementation's first call (trace + compile + run) is timed, then one warm-up
call, then ``--repeats`` (>= 5) rounds in which the implementations of a group (the MMDs, the
Sinkhorns) are called in turn, so that a change of machine load hits them alike; reported: the
median, and the compile time as first call - median. The overhead ratio is reported both as the
ratio of the medians and as the median of the per-round ratios.

Where the time of the exact MMD goes: a large float32 matmul, an ``exp`` pass over a large
array and a large reduction measure the device's matmul rate, exp rate and read bandwidth;
the arithmetic bound of a forward+backward pass is its ``6 n^2 d`` matmul flops (the Gram
matrix forward, two products with the ``n x n`` cotangent backward) at that rate, beside the
``n^2`` exps at the exp rate and the traffic of a materialised kernel matrix (5 passes over
``4 n^2`` bytes: ``K`` written, read by the forward and the backward, its cotangent written and
read). The forward of the plain-jnp MMD is also timed piece by piece (distances, ``exp``,
quadratic form) on materialised intermediates.

A group of implementations is skipped, with the reason recorded, when the first call of its
first implementation times the number of calls to make exceeds ``--budget`` seconds (default
150; on 2 CPU cores: the Sinkhorns at 16,384 rows). Writes
``benchmarks/results/mmd_sinkhorn_<platform>[_quick].{json,md}``; the device, jax/jaxlib/ott
versions and the load average (where ``/proc/loadavg`` exists) are recorded. The same code runs
on CPU, GPU and TPU.

Usage::

    python benchmarks/mmd_sinkhorn.py               # n = 1024, 4096, 16384
    python benchmarks/mmd_sinkhorn.py --quick       # n = 512, 1024, 2048
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import kernels, penalties

RESULTS = pathlib.Path(__file__).parent / "results"
DIM = 32
RFF_FEATURES = 1024
EPS_FRACTION = 0.1
FULL_SIZES = (1024, 4096, 16384)
QUICK_SIZES = (512, 1024, 2048)


# ----------------------------------------------------------------------------- timing


def _call(fn: Callable[..., Any], args: Sequence[Any]) -> float:
    return _call_cpu(fn, args)[0]


def _call_cpu(fn: Callable[..., Any], args: Sequence[Any]) -> tuple[float, float]:
    """Wall time and process CPU time (all threads) of one call."""
    cpu, start = time.process_time(), time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start, time.process_time() - cpu


def time_group(
    impls: dict[str, tuple[Callable[..., Any], tuple]], repeats: int, budget: float
) -> dict:
    """First call, one warm-up, then ``repeats`` interleaved rounds over the implementations.

    The first implementation's first call is a probe: when that call times the number of calls
    still to make exceeds ``budget`` seconds, the group is skipped (``{"_skipped": reason}``).
    """
    names = list(impls)
    calls = len(names) * (repeats + 2)
    fn, args = impls[names[0]]
    first = {names[0]: _call(fn, args)}
    if first[names[0]] * calls > budget:
        return {
            "_skipped": f"the first call of {names[0]} took {first[names[0]]:.1f} s "
            f"(compilation included): {calls} calls of {len(names)} implementations "
            f"would take about {first[names[0]] * calls:.0f} s > --budget {budget:.0f} s"
        }
    first.update({name: _call(fn, args) for name, (fn, args) in list(impls.items())[1:]})
    for fn, args in impls.values():
        _call(fn, args)
    rounds: list[dict[str, float]] = []
    cpu_rounds: list[dict[str, float]] = []
    for _ in range(repeats):
        both = {name: _call_cpu(fn, args) for name, (fn, args) in impls.items()}
        rounds.append({name: t[0] for name, t in both.items()})
        cpu_rounds.append({name: t[1] for name, t in both.items()})
    out: dict[str, Any] = {}
    for name, (fn, args) in impls.items():
        times = [r[name] for r in rounds]
        median = statistics.median(times)
        value = fn(*args)
        value = value[0] if isinstance(value, tuple) else value
        out[name] = {
            "median_s": median,
            "min_s": min(times),
            "first_call_s": first[name],
            "compile_s": max(first[name] - median, 0.0),
            "cpu_median_s": statistics.median(r[name] for r in cpu_rounds),
            "repeats": repeats,
            "value": float(np.asarray(value)),
        }
    out["_rounds"] = rounds
    out["_cpu_rounds"] = cpu_rounds
    return out


def best_time(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> float:
    _call(fn, args)
    return min(_call(fn, args) for _ in range(repeats))


def median_time(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> float:
    _call(fn, args)
    return statistics.median(_call(fn, args) for _ in range(repeats))


# ----------------------------------------------------------------------------- device rates


def device_rates() -> dict[str, float]:
    """Matmul flop rate, exp rate and read bandwidth measured on this device (best of 5)."""
    on_cpu = jax.default_backend() == "cpu"
    m = 2048 if on_cpu else 8192
    key = jax.random.key(0)
    a = jax.random.normal(key, (m, m), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    flops = 2.0 * m**3 / best_time(matmul, a)
    # The exp's own rate: summed (no output array), over an array that stays in cache on CPU.
    k = (1 << 20) if on_cpu else (1 << 26)
    z = jax.random.normal(key, (k,), jnp.float32)
    exp_rate = k / best_time(jax.jit(lambda x: jnp.sum(jnp.exp(x))), z)
    r = (1 << 26) if on_cpu else (1 << 28)
    ones = jnp.ones((r,), jnp.float32)
    bandwidth = 4.0 * r / best_time(jax.jit(jnp.sum), ones)
    return {
        "matmul_size": m,
        "matmul_flops_per_s": flops,
        "exp_size": k,
        "exp_per_s": exp_rate,
        "read_bytes_per_s": bandwidth,
    }


# ----------------------------------------------------------------------------- problems


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = np.repeat(np.arange(2), n // 2).astype(np.int32)
    rng.shuffle(s)
    h = (rng.normal(size=(n, DIM)) + 0.5 * s[:, None]).astype(np.float32)
    return h, s


def mean_sq_cost(h: np.ndarray) -> float:
    """Mean of ||h_i - h_j||^2 over all pairs (= 2 x the mean squared distance to the mean)."""
    c = h.astype(np.float64) - h.mean(0)
    return float(2.0 * np.mean(np.sum(c**2, axis=1)))


def jnp_mmd(h: jax.Array, a: jax.Array, bandwidth: float) -> jax.Array:
    """Biased Gaussian MMD^2 between the groups: a^T K a, a = 1_0 / n_0 - 1_1 / n_1."""
    sq = jnp.sum(h * h, axis=1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * h @ h.T, 0.0)
    return a @ jnp.exp(-d2 / (2.0 * bandwidth**2)) @ a


def mmd_group(h, s, bandwidth):
    hj = jnp.asarray(h)
    a = jnp.asarray(np.where(s == 0, 1.0 / np.sum(s == 0), -1.0 / np.sum(s == 1)), jnp.float32)
    k = kernels.gaussian(bandwidth=bandwidth)
    exact = jax.jit(
        jax.value_and_grad(
            lambda z: penalties.mmd(z, s, num_groups=2, kernel=k, reference="pairwise")
        )
    )
    plain = jax.jit(jax.value_and_grad(lambda z: jnp_mmd(z, a, bandwidth)))
    return {"mmd exact": (exact, (hj,)), "jnp mmd": (plain, (hj,))}


def rff_group(h, s, bandwidth):
    phi = kernels.random_fourier_features(
        jax.random.key(0), DIM, num_features=RFF_FEATURES, bandwidth=bandwidth
    )
    rff = jax.jit(
        jax.value_and_grad(
            lambda z: penalties.mmd(z, s, num_groups=2, features=phi, reference="pairwise")
        )
    )
    return {"mmd rff": (rff, (jnp.asarray(h),))}


def sinkhorn_group(h, s):
    from ott.geometry import pointcloud
    from ott.tools import sinkhorn_divergence as ott_sd

    n = h.shape[0]
    eps = EPS_FRACTION * mean_sq_cost(h)
    kw = dict(num_groups=2, reference="pairwise", epsilon=EPS_FRACTION)
    wrapper = jax.jit(jax.value_and_grad(lambda z: penalties.sinkhorn(z, s, **kw)))
    traced = jax.jit(
        jax.value_and_grad(lambda z, g: penalties.sinkhorn(z, g, group_size=n // 2, **kw))
    )

    def direct(x, y):
        return ott_sd.sinkhorn_divergence(pointcloud.PointCloud, x, y, epsilon=eps)[0]

    ott_direct = jax.jit(jax.value_and_grad(direct, argnums=(0, 1)))
    hj = jnp.asarray(h)
    return {  # ott-jax first: its first call is the probe of the time budget
        "ott direct": (ott_direct, (jnp.asarray(h[s == 0]), jnp.asarray(h[s == 1]))),
        "sinkhorn": (wrapper, (hj,)),
        "sinkhorn traced ids": (traced, (hj, jnp.asarray(s))),
    }


def mmd_breakdown(h, s, bandwidth, repeats):
    """Forward of the plain-jnp MMD, piece by piece on materialised intermediates."""
    hj = jnp.asarray(h)
    a = jnp.asarray(np.where(s == 0, 1.0 / np.sum(s == 0), -1.0 / np.sum(s == 1)), jnp.float32)

    def dist(z):
        sq = jnp.sum(z * z, axis=1)
        return jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)

    dist_j = jax.jit(dist)
    exp_j = jax.jit(lambda d2: jnp.exp(-d2 / (2.0 * bandwidth**2)))
    quad_j = jax.jit(lambda K: a @ K @ a)
    d2 = jax.block_until_ready(dist_j(hj))
    K = jax.block_until_ready(exp_j(d2))
    out = {
        "distances_s": median_time(dist_j, hj, repeats=repeats),
        "exp_s": median_time(exp_j, d2, repeats=repeats),
        "quadratic_form_s": median_time(quad_j, K, repeats=repeats),
        "fused_forward_s": median_time(
            jax.jit(lambda z: jnp_mmd(z, a, bandwidth)), hj, repeats=repeats
        ),
    }
    del d2, K
    return out


def mmd_bound(n: int, measured_s: float, rates: dict[str, float]) -> dict[str, float]:
    flops = 6.0 * n * n * DIM
    t_flops = flops / rates["matmul_flops_per_s"]
    t_exp = n * n / rates["exp_per_s"]
    t_mem = 5 * 4.0 * n * n / rates["read_bytes_per_s"]
    return {
        "matmul_flops": flops,
        "arithmetic_bound_s": t_flops,
        "exp_floor_s": t_exp,
        "memory_floor_s": t_mem,
        "fraction_of_arithmetic_bound": t_flops / measured_s,
        "fraction_of_sum_of_floors": (t_flops + t_exp + t_mem) / measured_s,
    }


# ----------------------------------------------------------------------------- run


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in pathlib.Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def device_info() -> dict[str, Any]:
    dev = jax.devices()[0]
    info = {
        "platform": jax.default_backend(),
        "device_kind": dev.device_kind,
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        "jaxlib": importlib.import_module("jaxlib").__version__,
        "ott": importlib.import_module("ott").__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "default_matmul_precision": jax.config.jax_default_matmul_precision,
    }
    return info


def run(sizes: Sequence[int], repeats: int, budget: float, log=print) -> list[dict]:
    rows: list[dict] = []
    for n in sizes:
        h, s = make_data(n)
        bandwidth = float(kernels.median_bandwidth(jnp.asarray(h)))
        row: dict[str, Any] = {"n": n, "bandwidth": bandwidth, "results": {}, "skipped": {}}
        row["epsilon"] = EPS_FRACTION * mean_sq_cost(h)
        groups = {
            "mmd": lambda h=h, s=s, b=bandwidth: mmd_group(h, s, b),
            "rff": lambda h=h, s=s, b=bandwidth: rff_group(h, s, b),
            "sinkhorn": lambda h=h, s=s: sinkhorn_group(h, s),
        }
        for group, build in groups.items():
            impls = build()
            timed = time_group(impls, repeats, budget)
            if "_skipped" in timed:
                for name in impls:
                    row["skipped"][name] = timed["_skipped"]
                log(f"  n={n:>6}  skipped {group}: {timed['_skipped']}")
                continue
            rounds, cpu_rounds = timed.pop("_rounds"), timed.pop("_cpu_rounds")
            row["results"].update(timed)
            if group == "sinkhorn":
                med = {k: timed[k]["median_s"] for k in timed}
                row["sinkhorn_overhead"] = {
                    "ratio_of_medians": med["sinkhorn"] / med["ott direct"],
                    "median_of_round_ratios": statistics.median(
                        r["sinkhorn"] / r["ott direct"] for r in rounds
                    ),
                    "traced_ratio_of_medians": med["sinkhorn traced ids"] / med["ott direct"],
                    "traced_median_of_round_ratios": statistics.median(
                        r["sinkhorn traced ids"] / r["ott direct"] for r in rounds
                    ),
                    # Process CPU time: steadier than wall time on a loaded CPU host (on an
                    # accelerator it counts only the host's work: read the wall-time ratios).
                    "cpu_median_of_round_ratios": statistics.median(
                        r["sinkhorn"] / r["ott direct"] for r in cpu_rounds
                    ),
                    "traced_cpu_median_of_round_ratios": statistics.median(
                        r["sinkhorn traced ids"] / r["ott direct"] for r in cpu_rounds
                    ),
                }
            for name, r in timed.items():
                log(
                    f"  n={n:>6}  {name:<20} {r['median_s'] * 1e3:10.2f} ms  "
                    f"(compile {r['compile_s']:.2f} s)  value {r['value']:.6g}"
                )
            if group == "sinkhorn":
                ov = row["sinkhorn_overhead"]
                log(
                    f"  n={n:>6}  sinkhorn / ott direct {ov['ratio_of_medians']:.3f} "
                    f"(median of rounds {ov['median_of_round_ratios']:.3f}); traced ids "
                    f"{ov['traced_ratio_of_medians']:.3f}; CPU time "
                    f"{ov['cpu_median_of_round_ratios']:.3f}, traced "
                    f"{ov['traced_cpu_median_of_round_ratios']:.3f}"
                )
        if "mmd exact" in row["results"]:
            row["mmd_breakdown"] = mmd_breakdown(h, s, bandwidth, repeats)
        row["loadavg"] = loadavg()
        rows.append(row)
    return rows


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.1f}"


IMPLS = ("mmd exact", "jnp mmd", "mmd rff", "sinkhorn", "sinkhorn traced ids", "ott direct")


def markdown(result: dict) -> str:
    d, rates = result["device"], result["rates"]
    lines = [
        f"# MMD and Sinkhorn penalties, forward+backward ({d['platform']}, {result['mode']})",
        "",
        f"`{result['command']}`: {d['device_count']} x {d['device_kind']}, jax {d['jax']}, "
        f"ott-jax {d['ott']}, {d['cpu_count']} CPUs; load average (1, 5, 15 min) "
        f"{result['loadavg_start']} at the start, {result['loadavg_end']} at the end. "
        f"{DIM} dimensions, 2 balanced groups, `jit(value_and_grad)` w.r.t. h; median of "
        f"{result['repeats']} interleaved rounds after a warm-up call, milliseconds "
        "(compile time, first call - median, in brackets). Overhead ratios of the wrapper: "
        "ratio of the medians / median of the per-round ratios / median of the per-round "
        "ratios of process CPU time (all threads; steadier on a loaded CPU host, meaningless "
        "on an accelerator).",
        "",
        "| n | " + " | ".join(IMPLS) + " | sinkhorn / ott direct | traced ids / ott direct |",
        "|---:|" + "---:|" * (len(IMPLS) + 2),
    ]
    for row in result["rows"]:
        cells = []
        for name in IMPLS:
            r = row["results"].get(name)
            if r is None:
                cells.append("skipped" if name in row["skipped"] else "-")
            else:
                cells.append(f"{_ms(r['median_s'])} ({r['compile_s']:.1f} s)")
        ov = row.get("sinkhorn_overhead")
        ratio = ratio_t = "-"
        if ov is not None:
            ratio = (
                f"{ov['ratio_of_medians']:.3f} / {ov['median_of_round_ratios']:.3f} / "
                f"{ov['cpu_median_of_round_ratios']:.3f}"
            )
            ratio_t = (
                f"{ov['traced_ratio_of_medians']:.3f} / "
                f"{ov['traced_median_of_round_ratios']:.3f} / "
                f"{ov['traced_cpu_median_of_round_ratios']:.3f}"
            )
        lines.append(f"| {row['n']:,} | " + " | ".join(cells) + f" | {ratio} | {ratio_t} |")
    lines += ["", "Values (MMD^2 and Sinkhorn divergence):", ""]
    lines += ["| n | " + " | ".join(IMPLS) + " |", "|---:|" + "---:|" * len(IMPLS)]
    for row in result["rows"]:
        vals = [f"{row['results'][k]['value']:.6g}" if k in row["results"] else "-" for k in IMPLS]
        lines.append(f"| {row['n']:,} | " + " | ".join(vals) + " |")
    skipped = {k: v for row in result["rows"] for k, v in row["skipped"].items()}
    if skipped:
        lines += ["", "Skipped:"]
        for row in result["rows"]:
            for k, v in row["skipped"].items():
                lines.append(f"- n={row['n']:,}, {k}: {v}")
    lines += [
        "",
        "**Where the exact MMD's time goes.** Device rates measured here: float32 matmul "
        f"{rates['matmul_flops_per_s'] / 1e9:,.1f} "
        f"GFLOP/s ({rates['matmul_size']}^3), exp {rates['exp_per_s'] / 1e9:,.2f} G/s "
        f"(`sum(exp(x))` over {rates['exp_size']:,} floats), read bandwidth "
        f"{rates['read_bytes_per_s'] / 1e9:,.1f} GB/s. Bound of a forward+backward pass: "
        "`6 n^2 d` matmul flops at that rate; floors: "
        "`n^2` exps, 5 passes over a materialised `4 n^2`-byte kernel matrix.",
        "",
        "| n | measured (fairjax) | arithmetic bound | exp floor | memory floor | fraction of "
        "arithmetic bound | fraction of sum of floors | forward: distances | forward: exp | "
        "forward: a^T K a | forward fused |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        b, br = row.get("mmd_bound"), row.get("mmd_breakdown")
        if b is None:
            continue
        lines.append(
            f"| {row['n']:,} | {_ms(row['results']['mmd exact']['median_s'])} | "
            f"{_ms(b['arithmetic_bound_s'])} | {_ms(b['exp_floor_s'])} | "
            f"{_ms(b['memory_floor_s'])} | {b['fraction_of_arithmetic_bound']:.1%} | "
            f"{b['fraction_of_sum_of_floors']:.1%} | {_ms(br['distances_s'])} | "
            f"{_ms(br['exp_s'])} | {_ms(br['quadratic_form_s'])} | {_ms(br['fused_forward_s'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 512, 1024, 2048")
    parser.add_argument("--sizes", type=int, nargs="+", help="override the batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (>= 5)")
    parser.add_argument(
        "--budget",
        type=float,
        default=150.0,
        help="skip a group of implementations projected to take longer (seconds)",
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (the median of >= 5 calls)")
    mode = "quick" if args.quick else "full"
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    start = time.perf_counter()
    device = device_info()
    load_start = loadavg()
    print(
        f"MMD and Sinkhorn penalties, {mode} run: {device['device_count']} x "
        f"{device['device_kind']} ({device['platform']}), jax {device['jax']}, load {load_start}"
    )
    rates = device_rates()
    print(
        f"  device rates: matmul {rates['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s, exp "
        f"{rates['exp_per_s'] / 1e9:.2f} G/s, read {rates['read_bytes_per_s'] / 1e9:.1f} GB/s"
    )
    rows = run(sizes, args.repeats, args.budget)
    for row in rows:
        if "mmd exact" in row["results"]:
            row["mmd_bound"] = mmd_bound(row["n"], row["results"]["mmd exact"]["median_s"], rates)
    command = "python benchmarks/mmd_sinkhorn.py" + "".join(
        " " + a for a in (argv if argv is not None else sys.argv[1:])
    )
    result = {
        "mode": mode,
        "command": command,
        "device": device,
        "rates": rates,
        "repeats": args.repeats,
        "budget_s": args.budget,
        "dim": DIM,
        "rff_features": RFF_FEATURES,
        "epsilon_fraction": EPS_FRACTION,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "rows": rows,
        "wall_s": time.perf_counter() - start,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"mmd_sinkhorn_{device['platform']}" + ("_quick" if args.quick else "")
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / f"{stem}.md").write_text(text)
    print("\n" + text)
    print(f"wrote {args.out / stem}.json and .md ({result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
