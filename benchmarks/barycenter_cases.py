"""Barycenter post-processing on the cases a user meets: fairjax against EquiPy and NumPy.

``benchmarks/wasserstein_vs_equipy.py`` times one kind of data (float32 scores, int32 ids,
uniform group sizes). This script varies one thing at a time from a new user's case (10^6
calibration and 10^6 test rows, float64 NumPy scores, int64 ids, two groups of unequal spread,
jitter 1e-4 as EquiPy's default): float32 scores, int32 and bool ids, equal spreads, unequal
group sizes (90/10), heavy ties (scores rounded to 2 decimals) with and without jitter
(EquiPy accepts ``sigma=0``), calibration and test sizes, and 5 groups. For each case it times
fit + apply of

* ``fairjax``: :func:`fairjax.postprocessing.fit_barycenter` + ``apply_barycenter`` called
  eagerly on the NumPy arrays, with EquiPy's settings (no split, step CDF, linear quantiles).
  The *first* call runs in a fresh child process (what a new user waits for, compilation
  included; the import is not timed); the *repeated* time is the median of calls in this
  process;
* ``numpy``: the same estimator in plain NumPy (``numpy_barycenter`` of
  ``wasserstein_vs_equipy.py``);
* ``equipy``: ``FairWasserstein(sigma).fit`` + ``transform`` (float64 scores, as EquiPy
  computes),

interleaved round by round in one process, so that all three see the same load. It also times
fairjax's fit alone and one ``np.sort`` of the calibration scores (the fit's floor), checks the
outputs (median absolute difference of fairjax's output to the others', KS unfairness of each
with :func:`fairjax.metrics.ks_unfairness`) and prints the ratios against the targets (10x
EquiPy, 1x NumPy). Never asserts a time. Writes
``benchmarks/results/barycenter_cases_<backend>.{json,md}`` (``_quick`` with ``--quick``: 10x
fewer rows).

Usage: ``python benchmarks/barycenter_cases.py [--quick] [--repeats 5] [--equipy-repeats 3]
[--cases NAME ...]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

try:  # run as a script (benchmarks/ on the path) or as benchmarks.barycenter_cases
    from _common import host_info, write_json
    from wasserstein_vs_equipy import make_data, numpy_barycenter, run_equipy, run_fairjax
except ImportError:
    from benchmarks._common import host_info, write_json
    from benchmarks.wasserstein_vs_equipy import (
        make_data,
        numpy_barycenter,
        run_equipy,
        run_fairjax,
    )

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
EQUIPY_SIGMA = 1e-4  # EquiPy's default jitter
TARGET_EQUIPY, TARGET_NUMPY = 10.0, 1.0


@dataclasses.dataclass(frozen=True)
class Case:
    """One cell of the matrix; the defaults are the new user's case."""

    name: str
    n_cal: int = 10**6
    n_test: int = 10**6
    groups: int = 2
    dtype: str = "float64"
    ids: str = "int64"
    spread: float = 0.3
    proportions: tuple[float, ...] | None = None
    decimals: int | None = None
    jitter: float = EQUIPY_SIGMA

    def data(self, scale: float = 1.0):
        """Calibration and test scores and ids, in the case's dtypes."""
        kw = dict(
            dtype=np.dtype(self.dtype),
            ids=np.dtype(self.ids),
            spread=self.spread,
            proportions=self.proportions,
            decimals=self.decimals,
        )
        n_cal, n_test = max(int(self.n_cal * scale), 100), max(int(self.n_test * scale), 100)
        return (
            *make_data(n_cal, self.groups, 0, **kw),
            *make_data(n_test, self.groups, 1, **kw),
        )


CASES = [
    Case("user: f64, int64, unequal spread"),
    Case("float32 scores", dtype="float32"),
    Case("int32 ids", ids="int32"),
    Case("bool ids", ids="bool"),
    Case("float32 + int32 (wasserstein_vs_equipy)", dtype="float32", ids="int32"),
    Case("equal spreads", spread=0.0),
    Case("sizes 90/10", proportions=(0.9, 0.1)),
    Case("ties (2 decimals)", decimals=2),
    Case("ties, jitter 0", decimals=2, jitter=0.0),
    Case("jitter 0", jitter=0.0),
    Case("cal 1e5 / test 1e6", n_cal=10**5),
    Case("cal 1e6 / test 1e4", n_test=10**4),
    Case("5 groups", groups=5),
    Case("5 groups, sizes 60/20/10/5/5", groups=5, proportions=(0.6, 0.2, 0.1, 0.05, 0.05)),
    Case("5 groups, ties, jitter 0", groups=5, decimals=2, jitter=0.0),
]


def fairjax_call(case: Case, data):
    f_cal, s_cal, f_test, s_test = data
    return run_fairjax(f_cal, s_cal, f_test, s_test, case.groups, 0, sigma=case.jitter)


def fairjax_fit(case: Case, data):
    import jax

    from fairjax.postprocessing import fit_barycenter

    key_fit, _ = jax.random.split(jax.random.key(0))
    state = fit_barycenter(
        data[0],
        data[1],
        num_groups=case.groups,
        key=key_fit,
        jitter=case.jitter,
        split=False,
        interpolation="linear",
    )
    return jax.block_until_ready(state)


def child(case_index: int, scale: float, out: str) -> None:
    """The first call of a fresh process (compilation included): time to stdout, output to
    ``out``."""
    case = CASES[case_index]
    data = case.data(scale)
    import jax  # noqa: F401  (imported before the clock starts, as a user's script does)

    import fairjax.postprocessing  # noqa: F401

    start = time.perf_counter()
    result = fairjax_call(case, data)
    first = time.perf_counter() - start
    np.save(out, result)
    print(json.dumps({"first_s": first}))


def first_call(case_index: int, scale: float) -> tuple[float, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.npy")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(case_index)]
        cmd += ["--scale", repr(scale), "--out", out]
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        first = json.loads(run.stdout.strip().splitlines()[-1])["first_s"]
        return first, np.load(out)


def clock(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure(case_index: int, scale: float, repeats: int, equipy_repeats: int, have_equipy):
    from fairjax.metrics import ks_unfairness

    case = CASES[case_index]
    data = case.data(scale)
    f_cal, _, f_test, s_test = data
    num = case.groups
    first_s, first_out = first_call(case_index, scale)
    calls = {
        "fairjax": lambda: fairjax_call(case, data),
        "fairjax_fit": lambda: fairjax_fit(case, data),
        "numpy": lambda: numpy_barycenter(*data, num, 0, sigma=case.jitter),
        "numpy_sort": lambda: np.sort(f_cal),
    }
    if have_equipy:
        calls["equipy"] = lambda: run_equipy(*data, sigma=case.jitter)
    outputs = {"fairjax": fairjax_call(case, data)}  # warm this process (compiled programs)
    times = {name: [] for name in calls}
    for r in range(repeats):  # interleaved: every peer sees the same load
        for name, fn in calls.items():
            if name == "equipy" and r >= equipy_repeats:
                continue
            out, t = clock(fn)
            times[name].append(t)
            if name in ("numpy", "equipy"):
                outputs[name] = out
    med = {name: float(np.median(t)) for name, t in times.items()}
    ids = np.asarray(s_test).astype(np.int32)

    def ks(out):
        return float(ks_unfairness(np.asarray(out, np.float32), ids, num_groups=num))

    fj = np.asarray(outputs["fairjax"], np.float64)
    row = {
        "case": case.name,
        **{k: v for k, v in dataclasses.asdict(case).items() if k != "name"},
        "n_cal": len(f_cal),
        "n_test": len(f_test),
        "fairjax_first_s": first_s,
        "fairjax_s": med["fairjax"],
        "fairjax_fit_s": med["fairjax_fit"],
        "numpy_s": med["numpy"],
        "numpy_sort_s": med["numpy_sort"],
        "calls": {name: len(t) for name, t in times.items()},
        "first_equals_repeated": bool(np.array_equal(first_out, outputs["fairjax"])),
        "ks_before": ks(f_test),
        "ks_fairjax": ks(fj),
        "ks_numpy": ks(outputs["numpy"]),
        "median_abs_diff_numpy": float(np.median(np.abs(fj - outputs["numpy"]))),
        "vs_numpy": med["numpy"] / med["fairjax"],
        "vs_numpy_first": med["numpy"] / first_s,
        "fit_over_sort": med["fairjax_fit"] / med["numpy_sort"],
        "loadavg": list(os.getloadavg()),
    }
    if have_equipy:
        row.update(
            equipy_s=med["equipy"],
            ks_equipy=ks(outputs["equipy"]),
            median_abs_diff_equipy=float(np.median(np.abs(fj - outputs["equipy"]))),
            vs_equipy=med["equipy"] / med["fairjax"],
            vs_equipy_first=med["equipy"] / first_s,
        )
    return row


def machine() -> dict:
    import jax

    try:
        from importlib.metadata import version

        equipy = version("equipy")
    except Exception:  # not installed, or no metadata
        equipy = None
    return {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        **host_info(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "equipy": equipy,
    }


def markdown(meta: dict, rows: list[dict]) -> str:
    def fmt(r, name, spec):
        return "-" if r.get(name) is None else format(r[name], spec)

    def flag(value, target):
        return "" if value is None or value >= target else " **(below)**"

    lines = [
        f"# Barycenter post-processing on a case matrix: fairjax vs EquiPy vs NumPy "
        f"({meta['backend']})",
        "",
        f"`{meta['command']}`; {meta['cpu']}, {meta['cores']} cores, jax {meta['jax']}, "
        f"NumPy {meta['numpy']}, EquiPy {meta['equipy']}; load average "
        f"{' '.join(f'{x:.2f}' for x in meta['loadavg_before'])} before, "
        f"{' '.join(f'{x:.2f}' for x in meta['loadavg_after'])} after "
        f"({meta['wall_s']:.0f} s in all).",
        "",
        "Fit + apply of EquiPy's estimator (no split, step CDF, linear quantiles) on NumPy "
        "inputs. Base case: 10^6 calibration and 10^6 test rows, float64 scores, int64 ids, "
        "2 groups (standard deviations 1 and 1.3, means 0 and 0.8), jitter 1e-4; each row "
        "changes what its name says. fairjax *first*: the first call of a fresh process "
        "(compilation included); *rep.*: median of repeated calls. NumPy and EquiPy: median of "
        f"up to {meta['repeats']} and {meta['equipy_repeats']} calls, interleaved with "
        "fairjax's in the same process. Ratios are the peer's time over fairjax's (above 1: "
        f"fairjax faster); targets {TARGET_EQUIPY:g}x EquiPy and {TARGET_NUMPY:g}x NumPy, "
        "**(below)** marks a miss. fit/sort: fairjax's fit alone over one `np.sort` of the "
        "calibration scores. Without x64, fairjax computes float64 inputs in float32.",
        "",
        "| case | n cal / test | fairjax s first / rep. | fit s / sort s | NumPy s | EquiPy s "
        "| vs EquiPy first / rep. | vs NumPy first / rep. | KS before / fairjax / NumPy "
        "/ EquiPy | med. abs. diff NumPy / EquiPy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n_cal']:.0e} / {r['n_test']:.0e} "
            f"| {r['fairjax_first_s']:.3f} / {r['fairjax_s']:.3f} "
            f"| {r['fairjax_fit_s']:.3f} / {r['numpy_sort_s']:.3f} | {r['numpy_s']:.3f} "
            f"| {fmt(r, 'equipy_s', '.2f')} "
            f"| {fmt(r, 'vs_equipy_first', '.1f')}{flag(r.get('vs_equipy_first'), TARGET_EQUIPY)}"
            f" / {fmt(r, 'vs_equipy', '.1f')}{flag(r.get('vs_equipy'), TARGET_EQUIPY)} "
            f"| {r['vs_numpy_first']:.2f}{flag(r['vs_numpy_first'], TARGET_NUMPY)} / "
            f"{r['vs_numpy']:.2f}{flag(r['vs_numpy'], TARGET_NUMPY)} "
            f"| {r['ks_before']:.3f} / {r['ks_fairjax']:.4f} / {r['ks_numpy']:.4f} / "
            f"{fmt(r, 'ks_equipy', '.4f')} "
            f"| {r['median_abs_diff_numpy']:.1e} / {fmt(r, 'median_abs_diff_equipy', '.1e')} |"
        )
    below = [
        (r["case"], what)
        for r in rows
        for what, key, target in (
            ("EquiPy first", "vs_equipy_first", TARGET_EQUIPY),
            ("EquiPy rep.", "vs_equipy", TARGET_EQUIPY),
            ("NumPy first", "vs_numpy_first", TARGET_NUMPY),
            ("NumPy rep.", "vs_numpy", TARGET_NUMPY),
        )
        if r.get(key) is not None and r[key] < target
    ]
    lines.append("")
    if below:
        lines.append("Below target: " + "; ".join(f"{c} ({w})" for c, w in below) + ".")
    else:
        lines.append("Every case meets both targets, first call and repeated.")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--equipy-repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", help="case names (default: all)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    if args.child is not None:
        child(args.child, scale, args.out)
        return
    try:
        import equipy  # noqa: F401

        have_equipy = True
    except ImportError:
        have_equipy = False
        print("EquiPy is not installed: timing fairjax and NumPy only.")
    if have_equipy:  # EquiPy warm too: its first call pays for lazy imports, not its algorithm
        run_equipy(*make_data(1000, 2, 0), *make_data(1000, 2, 1))
    names = args.cases or [c.name for c in CASES]
    unknown = set(names) - {c.name for c in CASES}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; known: {[c.name for c in CASES]}")
    start, load_before = time.perf_counter(), list(os.getloadavg())
    rows = []
    for i, case in enumerate(CASES):
        if case.name in names:
            row = measure(i, scale, args.repeats, args.equipy_repeats, have_equipy)
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = machine()
    meta.update(
        command=" ".join(["python benchmarks/barycenter_cases.py", *sys.argv[1:]]),
        repeats=args.repeats,
        equipy_repeats=args.equipy_repeats,
        scale=scale,
        loadavg_before=load_before,
        loadavg_after=list(os.getloadavg()),
        wall_s=time.perf_counter() - start,
    )
    tag = meta["backend"]
    stem = os.path.join(RESULTS, f"barycenter_cases_{tag}{'_quick' if args.quick else ''}")
    os.makedirs(RESULTS, exist_ok=True)
    write_json(stem + ".json", {"meta": meta, "rows": rows}, indent=2)
    text = markdown(meta, rows)
    with open(stem + ".md", "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
