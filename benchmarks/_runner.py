"""One benchmark run: every fairjax kernel side by side with its peers, in the same process.

For each kernel and each size ``n`` the runner times

* **fairjax**: the first call (trace + compile + run) and then the median of ``--repeats``
  (>= 5) calls after a warm-up call; the compile time is reported as first call - median;
* **its peers**: a NumPy reference implementation of the same quantity, and the peer library
  where there is one (fairlearn for the group metrics, ott-jax called directly for the Sinkhorn
  divergence, EquiPy for the barycenter post-processing). A peer is timed as the median of up
  to ``--repeats`` calls (one call when it takes more than a few seconds).

and, where it has one, the kernel's **floor**: a jitted sum reading the same input bytes
(kernels that stream their rows) or one NumPy sort of the scores (sort-based kernels). Each row
reports the best peer's time over fairjax's (>= 1: fairjax at least as fast as every peer) and
fairjax's time over the floor's; a summary table gives both at the largest n of each kernel.

It checks that the values agree, fits the scaling exponent of each implementation (slope of
``log time`` against ``log n``), records the device (platform, kind, count, jax version) and
writes ``benchmarks/results/runner_<platform>_<quick|full>.{json,md}``. The same code runs on
CPU, GPU and TPU; only the sizes change with ``--quick``.

``--scripts`` (default in a full run) also runs the one-off comparison scripts of this folder
(FERM vs ExponentiatedGradient, Lagrangian training vs fairlearn, the Pareto sweep, DP/EO on
10^7 rows) as subprocesses; each writes its own result files, and the runner records how it
ended.

Usage::

    python -m benchmarks --quick            # a few minutes on 2 CPU cores
    python -m benchmarks                    # 10^5 .. 10^7 rows, plus the scripts
    python -m benchmarks --only mmd sinkhorn --repeats 7
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import groups, kernels, metrics, penalties

from . import wasserstein_vs_equipy as wasserstein_script

HERE = pathlib.Path(__file__).parent
RESULTS = HERE / "results"
PEER_BUDGET_S = 5.0  # a peer is repeated while its total time stays under this
# The floor of a kernel, timed like a peer but not one: a jitted sum reading the kernel's input
# bytes (streaming kernels) or one NumPy sort of its scores (sort-based kernels).
FLOOR = "floor"


# ----------------------------------------------------------------------------- timing


def _block(x: Any) -> Any:
    return jax.block_until_ready(x)


def _time_once(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = _block(fn())
    return out, time.perf_counter() - start


def time_fairjax(fn: Callable[[], Any], *, repeats: int) -> dict[str, Any]:
    """First call (compile included), one warm-up, then the median of ``repeats`` calls."""
    out, first = _time_once(fn)
    _time_once(fn)  # warm-up: caches, allocator
    times = [_time_once(fn)[1] for _ in range(repeats)]
    median = statistics.median(times)
    return {
        "value": _scalar(out),
        "first_call_s": first,
        "compile_s": max(first - median, 0.0),
        "median_s": median,
        "min_s": min(times),
        "repeats": repeats,
    }


def time_peer(fn: Callable[[], Any], *, repeats: int, warm_up: bool = False) -> dict[str, Any]:
    """Median of up to ``repeats`` calls, fewer when the calls are slow.

    ``warm_up`` (for a peer that is itself a jitted JAX function): one untimed call first.
    """
    if warm_up:
        _time_once(fn)
    times, out = [], None
    while len(times) < repeats and (not times or sum(times) < PEER_BUDGET_S):
        out, t = _time_once(fn)
        times.append(t)
    return {"value": _scalar(out), "median_s": statistics.median(times), "repeats": len(times)}


def _scalar(out: Any) -> float | None:
    try:
        leaves = jax.tree.leaves(out)
        if len(leaves) == 1 and np.size(leaves[0]) == 1:
            return float(np.asarray(leaves[0]))
        return float(np.asarray(leaves[0]).ravel()[0]) if leaves else None
    except (TypeError, ValueError):
        return None


def scaling_slope(ns: Sequence[int], seconds: Sequence[float]) -> float | None:
    """Least-squares slope of log(time) against log(n): ~1 linear, ~2 quadratic."""
    pts = [(n, t) for n, t in zip(ns, seconds, strict=True) if t and t > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


# ----------------------------------------------------------------------------- kernels


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A fairjax kernel, its peers, and the sizes it runs at (by default those of a kernel
    linear in ``n``: 10^4 to 10^6 rows in a quick run, 10^5 to 10^7 in a full one)."""

    name: str
    what: str
    # setup(n) -> (fairjax_fn, {peer name: peer_fn}); every fn takes no argument.
    setup: Callable[[int], tuple[Callable[[], Any], dict[str, Callable[[], Any]]]]
    quick_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    full_sizes: tuple[int, ...] = (100_000, 1_000_000, 10_000_000)
    peer_max_n: dict[str, int] = dataclasses.field(default_factory=dict)
    jax_peers: tuple[str, ...] = ()  # peers that compile: warmed up before timing
    rtol: float = 1e-4


def _binary_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n).astype(np.int32)
    y = rng.integers(0, 2, n).astype(np.int32)
    pred = (rng.uniform(size=n) < 0.3 + 0.1 * s).astype(np.int32)
    score = (rng.normal(size=n) + 0.5 * s).astype(np.float32)
    return y, pred, s, score


def _dp_eo_numpy(y, pred, s):
    counts = np.bincount(s, minlength=2)
    rate = np.bincount(s, weights=pred, minlength=2) / counts
    pos = y == 1
    tpr = np.bincount(s[pos], weights=pred[pos], minlength=2) / np.bincount(s[pos], minlength=2)
    return float(np.ptp(rate)), float(np.ptp(tpr))


def setup_metrics(n: int):
    y, pred, s, _ = _binary_data(n)
    yj, pj, sj = (jax.device_put(a) for a in (y, pred, s))

    @jax.jit
    def both(y, pred, s):
        return (
            metrics.demographic_parity_difference(pred, s, num_groups=2),
            metrics.equal_opportunity_difference(y, pred, s, num_groups=2),
        )

    peers = {"numpy": lambda: _dp_eo_numpy(y, pred, s), FLOOR: _read_floor(y, pred, s)}
    try:
        import fairlearn.metrics as flm

        y64, p64, s64 = y.astype(np.int64), pred.astype(np.int64), s.astype(np.int64)
        peers["fairlearn"] = lambda: (
            flm.demographic_parity_difference(y64, p64, sensitive_features=s64),
            flm.equal_opportunity_difference(y64, p64, sensitive_features=s64),
        )
    except ImportError:
        pass
    return (lambda: both(yj, pj, sj)), peers


def _as_float32_words(a: np.ndarray) -> np.ndarray:
    """The bytes of ``a`` read as float32 words (zero-padded to a whole word)."""
    raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return np.concatenate([raw, np.zeros(-raw.size % 4, np.uint8)]).view(np.float32)


def _read_floor(*arrays: np.ndarray) -> Callable[[], Any]:
    """The floor of a kernel that streams its inputs: one jitted sum reading the same bytes.

    The bytes are summed as float32 words whatever the inputs' dtype: XLA's CPU float sum is its
    fastest read, where a sum of integers, or of integers converted to float, is several times
    slower and would not be a floor.
    """
    on_device = [jax.device_put(_as_float32_words(a)) for a in arrays]
    total = jax.jit(lambda *xs: sum(jnp.sum(x) for x in xs))
    return lambda: total(*on_device)


def setup_group_means(n: int, num_groups: int = 8):
    rng = np.random.default_rng(0)
    G = num_groups
    s = rng.integers(0, G, n).astype(np.int32)
    x = rng.normal(size=n).astype(np.float32)
    xj, sj = jax.device_put(x), jax.device_put(s)
    fn = jax.jit(functools.partial(groups.group_means, num_groups=G))

    def numpy_means():
        return np.bincount(s, weights=x, minlength=G) / np.bincount(s, minlength=G)

    return (lambda: fn(xj, sj)), {"numpy": numpy_means, FLOOR: _read_floor(x, s)}


def _ks_numpy(score, s):
    a, b = np.sort(score[s == 0]), np.sort(score[s == 1])
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / len(a)
    fb = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def _sort_floor(score: np.ndarray) -> Callable[[], Any]:
    """The floor of a sort-based kernel: one NumPy sort of its n scores."""
    return lambda: np.sort(score)


def setup_ks(n: int):
    # Called as a user calls it (eagerly, NumPy-converted device arrays): on CPU the metric
    # sorts on the host; inside a jit it would trace XLA's sort.
    _, _, s, score = _binary_data(n)
    xj, sj = jax.device_put(score), jax.device_put(s)
    peers = {"numpy": lambda: _ks_numpy(score, s), FLOOR: _sort_floor(score)}
    try:
        from scipy import stats

        peers["scipy"] = lambda: stats.ks_2samp(score[s == 0], score[s == 1]).statistic
    except ImportError:
        pass
    return (lambda: metrics.ks_unfairness(xj, sj, num_groups=2)), peers


def setup_w1(n: int):
    _, _, s, score = _binary_data(n)
    xj, sj = jax.device_put(score), jax.device_put(s)
    peers = {FLOOR: _sort_floor(score)}
    try:
        from scipy import stats

        peers["scipy"] = lambda: stats.wasserstein_distance(score[s == 0], score[s == 1])
    except ImportError:
        pass
    fj = functools.partial(metrics.wasserstein_unfairness, num_groups=2, reference="pairwise")
    return (lambda: fj(xj, sj)), peers


def _representations(n: int, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n).astype(np.int32)
    h = (rng.normal(size=(n, dim)) + 0.5 * s[:, None]).astype(np.float32)
    return h, s


def _mmd_numpy(h, s, bandwidth):
    sq = np.sum(h**2, 1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * h @ h.T, 0)
    K = np.exp(-d2 / (2 * bandwidth**2))
    a = (s == 0) / np.sum(s == 0) - (s == 1) / np.sum(s == 1)
    return float(a @ K @ a)


def _compiled_penalty(penalty: Callable[..., Any], h: np.ndarray, s: np.ndarray, **options):
    """``penalty`` between the two groups of ``(h, s)``, compiled, as a call without argument."""
    hj, sj = jax.device_put(h), jax.device_put(s)
    fn = jax.jit(functools.partial(penalty, num_groups=2, reference="pairwise", **options))
    return lambda: fn(hj, sj)


def setup_mmd(n: int):
    h, s = _representations(n)
    bandwidth = 1.0
    fj = _compiled_penalty(penalties.mmd, h, s, kernel=kernels.gaussian(bandwidth=bandwidth))
    return fj, {"numpy": lambda: _mmd_numpy(h, s, bandwidth)}


def setup_sinkhorn(n: int):
    from ott.geometry import pointcloud
    from ott.tools import sinkhorn_divergence as ott_sd

    h, s = _representations(n)
    eps = 1.0
    # Inside the caller's jit the group ids are traced and the block sizes must be given
    # (group_size=, one bound per group); an eager call computes them from the ids itself.
    fj = _compiled_penalty(
        penalties.sinkhorn,
        h,
        s,
        epsilon=eps,
        relative_epsilon=None,
        group_size=tuple(int(c) for c in np.bincount(s, minlength=2)),
    )
    h0, h1 = jax.device_put(h[s == 0]), jax.device_put(h[s == 1])

    @jax.jit
    def ott_direct(x, y):
        return ott_sd.sinkhorn_divergence(pointcloud.PointCloud, x, y, epsilon=eps)[0]

    return fj, {"ott-jax": lambda: ott_direct(h0, h1)}


def setup_barycenter(n: int):
    G = 2
    f_cal, s_cal = wasserstein_script.make_data(n, G, 0)
    f_test, s_test = wasserstein_script.make_data(n, G, 1)
    args = (f_cal, s_cal, f_test, s_test)

    def first(out):  # the value recorded: the first output, for a cross-check of the peers
        return out[0]

    peers = {
        "numpy": lambda: first(wasserstein_script.numpy_barycenter(*args, G, 0)),
        FLOOR: _sort_floor(f_cal),
    }
    if importlib.util.find_spec("equipy") is not None:
        peers["equipy"] = lambda: first(wasserstein_script.run_equipy(*args))
    return (lambda: first(wasserstein_script.run_fairjax(*args, G, 0))), peers


KERNELS = [
    Kernel(
        "dp_eo",
        "demographic parity + equal opportunity differences (2 groups)",
        setup_metrics,
        peer_max_n={"fairlearn": 1_000_000},
        jax_peers=(FLOOR,),
    ),
    *[
        Kernel(
            f"group_means_{G}",
            f"group means, {G} groups (fairjax.groups; NumPy: two bincounts)",
            functools.partial(setup_group_means, num_groups=G),
            jax_peers=(FLOOR,),
        )
        for G in (2, 8, 64)
    ],
    Kernel("ks", "KS distance between group score CDFs (2 groups)", setup_ks),
    Kernel("w1", "Wasserstein-1 distance between group score distributions (2 groups)", setup_w1),
    Kernel(
        "mmd",
        "MMD^2 between groups, Gaussian kernel, 8-dim representations (n^2 kernel matrix)",
        setup_mmd,
        quick_sizes=(256, 512, 1024, 2048),
        full_sizes=(1024, 2048, 4096, 8192),
    ),
    Kernel(
        "sinkhorn",
        "debiased Sinkhorn divergence between groups, eps = 1, 8-dim representations",
        setup_sinkhorn,
        quick_sizes=(256, 512, 1024),
        full_sizes=(1024, 2048, 4096, 8192),
        jax_peers=("ott-jax",),
        rtol=1e-2,
    ),
    Kernel(
        "barycenter",
        "Wasserstein-barycenter post-processing, fit + apply (2 groups, cal = test = n)",
        setup_barycenter,
        quick_sizes=(10_000, 100_000),
        peer_max_n={"equipy": 10_000_000},
        rtol=1e-2,
    ),
]

SCRIPTS = [
    ("ferm_vs_fairlearn", ["benchmarks/ferm_vs_fairlearn.py"]),
    ("training_vs_fairlearn", ["benchmarks/training_vs_fairlearn.py"]),
    ("training_sweep", ["benchmarks/training_sweep.py"]),
    ("rate_constrained_datasets", ["benchmarks/rate_constrained_datasets.py"]),
    ("metrics_vs_fairlearn", ["benchmarks/metrics_vs_fairlearn.py"]),
    ("mmd_sinkhorn", ["benchmarks/mmd_sinkhorn.py"]),
    ("penalties_vs_fairret", ["benchmarks/penalties_vs_fairret.py"]),
]


# ----------------------------------------------------------------------------- run


def device_info() -> dict[str, Any]:
    devices = jax.devices()
    info = {
        "platform": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "jax": jax.__version__,
        "jaxlib": importlib.import_module("jaxlib").__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "peers": {},
    }
    for peer in ["fairlearn", "equipy", "ott", "scipy", "fairret"]:
        try:
            mod = importlib.import_module(peer)
            info["peers"][peer] = getattr(mod, "__version__", "installed")
        except ImportError:
            info["peers"][peer] = None
    return info


def run_kernel(kernel: Kernel, *, quick: bool, repeats: int, log=print) -> dict[str, Any]:
    sizes = kernel.quick_sizes if quick else kernel.full_sizes
    rows = []
    for n in sizes:
        fj, peers = kernel.setup(n)
        row: dict[str, Any] = {"n": n, "fairjax": time_fairjax(fj, repeats=repeats)}
        for peer, fn in peers.items():
            if n > kernel.peer_max_n.get(peer, math.inf):
                continue
            row[peer] = time_peer(fn, repeats=repeats, warm_up=peer in kernel.jax_peers)
            a, b = row["fairjax"]["value"], row[peer]["value"]
            if peer != FLOOR and a is not None and b is not None:
                row[peer]["agrees"] = bool(np.isclose(a, b, rtol=kernel.rtol, atol=1e-5))
        row.update(_ratios(row))
        rows.append(row)
        peer_text = ", ".join(
            f"{p} {r['median_s']:.4f}s"
            for p, r in row.items()
            if isinstance(r, dict) and p != "fairjax"
        )
        f = row["fairjax"]
        log(
            f"  {kernel.name:<12} n={n:>10,}  fairjax {f['median_s']:.4f}s "
            f"(compile {f['compile_s']:.2f}s)  {peer_text}"
        )
    impls = sorted(
        {k for r in rows for k, x in r.items() if isinstance(x, dict)},
        key=lambda k: (k != "fairjax", k),
    )
    slopes = {
        impl: scaling_slope(
            [r["n"] for r in rows if impl in r], [r[impl]["median_s"] for r in rows if impl in r]
        )
        for impl in impls
    }
    return {
        "name": kernel.name,
        "what": kernel.what,
        "rtol": kernel.rtol,
        "rows": rows,
        "slopes": slopes,
    }


def _ratios(row: dict[str, Any]) -> dict[str, Any]:
    """The best peer's median over fairjax's (>= 1: fairjax at least as fast as every peer)
    and fairjax's median over the floor's (how far from the hardware floor)."""
    t = row["fairjax"]["median_s"]
    peers = {p: r["median_s"] for p, r in row.items() if p not in ("n", "fairjax", FLOOR)}
    out: dict[str, Any] = {"best_peer": None, "best_peer_ratio": None, "floor_ratio": None}
    if peers:
        best = min(peers, key=peers.get)
        out.update(best_peer=best, best_peer_ratio=peers[best] / t)
    if FLOOR in row:
        out["floor_ratio"] = t / row[FLOOR]["median_s"]
    return out


def _ratio_text(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def run_scripts(log=print) -> list[dict[str, Any]]:
    out = []
    for name, cmd in SCRIPTS:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, *cmd], cwd=HERE.parent, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        log(f"  script {name}: exit {proc.returncode} after {wall:.0f}s")
        out.append(
            {
                "name": name,
                "command": " ".join(["python", *cmd]),
                "returncode": proc.returncode,
                "wall_s": wall,
                "output_tail": (proc.stdout + proc.stderr)[-2000:],
            }
        )
    return out


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s"


def markdown(result: dict[str, Any]) -> str:
    d = result["device"]
    peers = ", ".join(f"{k} {v}" for k, v in d["peers"].items() if v) or "none"
    missing = ", ".join(k for k, v in d["peers"].items() if not v)
    lines = [
        f"# fairjax benchmarks ({result['mode']} run, {d['platform']})",
        "",
        f"Device: {d['device_count']} x {d['device_kind']} ({d['platform']}), "
        f"{d['cpu_count']} CPU cores, {d['machine']}; jax {d['jax']}, jaxlib {d['jaxlib']}, "
        f"Python {d['python']}. Peers: {peers}"
        + (f"; not installed: {missing}." if missing else ".")
        + f" Total wall time {result['wall_s']:.0f} s.",
        "",
        f"fairjax: median of {result['repeats']} calls after a warm-up call; first call = trace +"
        " compile + run (the JSON also holds compile = first call - median, which load on the"
        " machine can hide). Peers: median of up to the same number of calls (fewer when a call"
        " is slow). `ok` / `differs`: the peer's value agrees with fairjax's (relative tolerance"
        " 1e-4; 1e-2 for Sinkhorn and the barycenter, whose peers solve or jitter differently),"
        " or not.",
        "",
    ]
    lines += [
        "## Summary: the largest n of each kernel",
        "",
        "Best peer / fairjax >= 1 means fairjax is at least as fast as every peer; fairjax / "
        "floor is its time over the floor's (streaming kernels: a jitted sum reading the same "
        "input bytes; sort-based kernels: one NumPy sort of the n scores).",
        "",
        "| kernel | n | fairjax | best peer | best peer / fairjax | fairjax / floor |",
        "|---|---|---|---|---|---|",
    ]
    for k in result["kernels"]:
        r = k["rows"][-1]
        lines.append(
            f"| {k['name']} | {r['n']:,} | {_fmt_s(r['fairjax']['median_s'])} | "
            f"{r.get('best_peer') or '-'} | {_ratio_text(r.get('best_peer_ratio'))} | "
            f"{_ratio_text(r.get('floor_ratio'))} |"
        )
    lines.append("")
    for k in result["kernels"]:
        impls = [i for i in k["slopes"]]
        lines += [f"## {k['name']}: {k['what']}", ""]
        others = [p for p in impls if p not in ("fairjax", FLOOR)]
        impls = ["fairjax", *others, *([FLOOR] if FLOOR in impls else [])]
        header = ["n", "fairjax", "fairjax first call"] + [p for p in impls if p != "fairjax"]
        header += [f"{p} / fairjax" for p in others]
        header += ["best peer / fairjax", "fairjax / floor"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in k["rows"]:
            f = r["fairjax"]
            cells = [f"{r['n']:,}", _fmt_s(f["median_s"]), _fmt_s(f["first_call_s"])]
            ratios = []
            for p in impls:
                if p == "fairjax":
                    continue
                if p not in r:
                    cells.append("-")
                    ratios.append("-")
                    continue
                ok = {True: " ok", False: " differs"}.get(r[p].get("agrees"), "")
                cells.append(_fmt_s(r[p]["median_s"]) + ok)
                if p != FLOOR:
                    ratios.append(f"{r[p]['median_s'] / f['median_s']:.1f}x")
            ratios += [_ratio_text(r.get("best_peer_ratio")), _ratio_text(r.get("floor_ratio"))]
            lines.append("| " + " | ".join(cells + ratios) + " |")
        slopes = ", ".join(
            f"{p} {s:.2f}" if s is not None else f"{p} -" for p, s in k["slopes"].items()
        )
        lines += ["", f"Scaling (slope of log time vs log n): {slopes}.", ""]
    if result.get("scripts"):
        lines += ["## One-off scripts", "", "| script | exit | wall |", "|---|---|---|"]
        for s in result["scripts"]:
            lines.append(f"| `{s['command']}` | {s['returncode']} | {s['wall_s']:.0f} s |")
        lines.append("")
    lines.append(f"Command: `{result['command']}`")
    return "\n".join(lines) + "\n"


def plot_scaling(result: dict[str, Any], path: pathlib.Path) -> bool:
    """Log-log plot of time against n, one panel per kernel; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    kernels_ = result["kernels"]
    cols = min(4, len(kernels_))
    rows_ = math.ceil(len(kernels_) / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(3.6 * cols, 3.0 * rows_), squeeze=False)
    for ax, k in zip(axes.ravel(), kernels_, strict=False):
        for impl, slope in k["slopes"].items():
            pts = [(r["n"], r[impl]["median_s"]) for r in k["rows"] if impl in r]
            label = impl if slope is None else f"{impl} (slope {slope:.2f})"
            style = "o-" if impl == "fairjax" else "s--"
            ax.loglog([p[0] for p in pts], [p[1] for p in pts], style, label=label, ms=4)
        ax.set_title(k["name"], fontsize="medium")
        ax.set_xlabel("n")
        ax.set_ylabel("seconds (median)")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="x-small")
    for ax in axes.ravel()[len(kernels_) :]:
        ax.set_visible(False)
    d = result["device"]
    fig.suptitle(
        f"fairjax vs peers, {result['mode']} run: {d['device_count']} x {d['device_kind']} "
        f"({d['platform']}), jax {d['jax']}",
        fontsize="medium",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks`` and ``fairjax bench``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes on 2 cores)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument(
        "--only", nargs="+", choices=[k.name for k in KERNELS], help="run only these kernels"
    )
    scripts = parser.add_mutually_exclusive_group()
    scripts.add_argument("--scripts", dest="scripts", action="store_true", default=None)
    scripts.add_argument("--no-scripts", dest="scripts", action="store_false")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--replot",
        type=pathlib.Path,
        metavar="JSON",
        help="only rewrite the Markdown table and the plot beside a results file",
    )
    args = parser.parse_args(argv)
    if args.replot is not None:
        result = json.loads(args.replot.read_text())
        args.replot.with_suffix(".md").write_text(markdown(result))
        plotted = plot_scaling(result, args.replot.with_suffix(".png"))
        print(f"wrote {args.replot.with_suffix('.md')}{' and .png' if plotted else ''}")
        return 0
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (the median of >= 5 calls)")
    mode = "quick" if args.quick else "full"
    with_scripts = (not args.quick) if args.scripts is None else args.scripts

    start = time.perf_counter()
    device = device_info()
    print(
        f"fairjax benchmarks, {mode} run: {device['device_count']} x {device['device_kind']} "
        f"({device['platform']}), jax {device['jax']}"
    )
    chosen = [k for k in KERNELS if not args.only or k.name in args.only]
    results = [run_kernel(k, quick=args.quick, repeats=args.repeats) for k in chosen]
    script_results = run_scripts() if with_scripts else []
    command = "python -m benchmarks" + " ".join(
        [""] + (list(argv) if argv is not None else sys.argv[1:])
    )
    result = {
        "mode": mode,
        "command": command,
        "device": device,
        "repeats": args.repeats,
        "kernels": results,
        "scripts": script_results,
        "wall_s": time.perf_counter() - start,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"runner_{device['platform']}_{mode}"
    if args.only:
        stem += "_" + "_".join(sorted(args.only))
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / f"{stem}.md").write_text(text)
    print("\n" + text)
    plotted = plot_scaling(result, args.out / f"{stem}.png")
    print(
        f"wrote {args.out / stem}.json, .md{', .png' if plotted else ''} ({result['wall_s']:.0f} s)"
    )
    return 0
