"""Barycenter post-processing: fairjax against EquiPy and a plain NumPy implementation.

One run, CPU by default: for calibration = test = n rows (1e5, 1e6, 1e7) and 2 or 5 groups,
times fit + apply of

* ``fairjax``: :func:`fairjax.postprocessing.fit_barycenter` / ``apply_barycenter`` with EquiPy's
  settings (no split, step CDF, linear quantiles, jitter 1e-4); warm (compiled) and first call;
* ``numpy``: the same estimator written with ``np.sort`` + ``np.searchsorted`` + ``np.interp``;
* ``equipy``: ``equipy.fairness.FairWasserstein(sigma=1e-4).fit`` + ``transform``,

and the KS unfairness of each output (:func:`fairjax.metrics.ks_unfairness`), plus the median
absolute difference between fairjax's and the others' outputs. Prints a table and writes
``benchmarks/results/wasserstein_vs_equipy.{json,md}``.

Usage: ``python benchmarks/wasserstein_vs_equipy.py [--sizes 1e5 1e6 1e7] [--groups 2 5]
[--equipy-max 1e7]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from fairjax.metrics import ks_unfairness
from fairjax.postprocessing import apply_barycenter, fit_barycenter

SIGMA = 1e-4
RESULTS = os.path.join(os.path.dirname(__file__), "results")


def make_data(
    n,
    num_groups,
    seed,
    *,
    dtype=np.float32,
    ids=np.int32,
    spread=0.3,
    proportions=None,
    decimals=None,
):
    """``n`` scores of ``num_groups`` groups: group ``s`` is normal with mean ``0.8 s`` and
    standard deviation ``1 + spread * s``; ids uniform, or drawn with ``proportions``; scores
    rounded to ``decimals`` (ties) when given. The defaults are this script's data."""
    rng = np.random.default_rng(seed)
    if proportions is None:
        s = rng.integers(0, num_groups, size=n)
    else:
        s = rng.choice(num_groups, size=n, p=proportions)
    f = rng.normal(size=n) * (1 + spread * s) + 0.8 * s
    if decimals is not None:
        f = np.round(f, decimals)
    return f.astype(dtype), s.astype(ids)


def numpy_barycenter(f_cal, s_cal, f_test, s_test, num_groups, seed, *, sigma=SIGMA):
    """The same estimator in plain NumPy: no split, step CDF, linear (type 7) quantiles."""
    rng = np.random.default_rng(seed)
    z = f_cal + rng.uniform(-sigma, sigma, size=f_cal.shape).astype(f_cal.dtype)
    order = np.argsort(s_cal, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(s_cal, minlength=num_groups))])
    groups = [np.sort(z[order[a:b]]) for a, b in itertools.pairwise(bounds)]
    p = np.diff(bounds) / len(f_cal)
    y = f_test + rng.uniform(-sigma, sigma, size=f_test.shape).astype(f_test.dtype)
    out = np.empty_like(f_test)
    for g, a in enumerate(groups):
        mask = s_test == g
        u = np.searchsorted(a, y[mask], side="right") / len(a)
        out[mask] = sum(
            p[t] * np.interp(u, np.linspace(0, 1, len(b)), b) for t, b in enumerate(groups)
        )
    return out


def run_fairjax(f_cal, s_cal, f_test, s_test, num_groups, seed, *, sigma=SIGMA):
    key_fit, key_apply = jax.random.split(jax.random.key(seed))
    st = fit_barycenter(
        f_cal,
        s_cal,
        num_groups=num_groups,
        key=key_fit,
        jitter=sigma,
        split=False,
        interpolation="linear",
    )
    return np.asarray(apply_barycenter(st, f_test, s_test, key=key_apply))


def run_equipy(f_cal, s_cal, f_test, s_test, *, sigma=SIGMA):
    from equipy.fairness import FairWasserstein

    model = FairWasserstein(sigma=sigma)
    model.fit(f_cal.astype(np.float64), s_cal)
    return model.transform(f_test.astype(np.float64), s_test)


def timed(fn, *args, repeats=7):
    """Output and median wall time of ``repeats`` calls (one call when it takes over 2 s)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
        if times[0] > 2.0:
            break
    return out, float(np.median(times))


def ks(out, s, num_groups):
    return float(ks_unfairness(jnp.asarray(out, jnp.float32), s, num_groups=num_groups))


def _loadavg():
    try:
        with open("/proc/loadavg") as fh:
            return fh.read().split()[:3]
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6, 1e7])
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--equipy-max", type=float, default=1e7)
    args = parser.parse_args()
    try:
        import equipy  # noqa: F401

        have_equipy = True
    except ImportError:
        have_equipy = False
    if have_equipy:  # EquiPy warm too: its first call pays for lazy imports, not its algorithm
        run_equipy(*make_data(1000, 2, 0), *make_data(1000, 2, 1))
    rows = []
    for n in [int(x) for x in args.sizes]:
        for num_groups in args.groups:
            f_cal, s_cal = make_data(n, num_groups, 0)
            f_test, s_test = make_data(n, num_groups, 1)
            row = {"n": n, "groups": num_groups, "loadavg": _loadavg()}
            row["ks_before"] = ks(f_test, s_test, num_groups)
            fj, t_first = timed(run_fairjax, f_cal, s_cal, f_test, s_test, num_groups, 0, repeats=1)
            fj, t_warm = timed(run_fairjax, f_cal, s_cal, f_test, s_test, num_groups, 0)
            row.update(
                fairjax_s=t_warm,
                fairjax_first_call_s=t_first,
                ks_fairjax=ks(fj, s_test, num_groups),
            )
            npy, t_np = timed(numpy_barycenter, f_cal, s_cal, f_test, s_test, num_groups, 0)
            row.update(numpy_s=t_np, ks_numpy=ks(npy, s_test, num_groups))
            row["median_abs_diff_numpy"] = float(np.median(np.abs(fj - npy)))
            if have_equipy and n <= args.equipy_max:
                eq, t_eq = timed(run_equipy, f_cal, s_cal, f_test, s_test)
                row.update(equipy_s=t_eq, ks_equipy=ks(eq, s_test, num_groups))
                row["median_abs_diff_equipy"] = float(np.median(np.abs(fj - eq)))
                row["speedup_vs_equipy"] = t_eq / t_warm
            row["ratio_vs_numpy"] = t_warm / t_np
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "sigma": SIGMA,
        "settings": "no split, step CDF, linear quantiles (EquiPy's estimator)",
        "loadavg_after": _loadavg(),
    }
    os.makedirs(RESULTS, exist_ok=True)
    tag = "" if meta["backend"] == "cpu" else f"_{meta['backend']}"
    with open(os.path.join(RESULTS, f"wasserstein_vs_equipy{tag}.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=2)
    lines = [
        f"# Barycenter post-processing: fairjax vs EquiPy vs NumPy ({meta['backend']})",
        "",
        f"{meta['device']}, {meta['cpu_count']} CPUs, jax {meta['jax']}; calibration = test = n "
        f"rows; jitter {SIGMA}; {meta['settings']}. Times are fit + apply in seconds; fairjax "
        "warm (compiled) with the first call (compilation included) in brackets; each time is the "
        "median of 7 calls, or one call when it takes over 2 s. EquiPy is warmed up once and "
        "timed in the same process, interleaved with the others; load average "
        f"{' '.join(meta['loadavg_after'] or ['?'])} at the end.",
        "",
        "| n | G | KS before | fairjax s (first) | NumPy s | EquiPy s | fairjax/NumPy "
        "| EquiPy/fairjax | KS fairjax | KS NumPy | KS EquiPy | med. abs. diff vs EquiPy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(r, name, spec):
        return "-" if name not in r else format(r[name], spec)

    for r in rows:
        lines.append(
            f"| {r['n']:.0e} | {r['groups']} | {r['ks_before']:.3f} | {r['fairjax_s']:.3f} "
            f"({r['fairjax_first_call_s']:.2f}) | {r['numpy_s']:.3f} | "
            f"{fmt(r, 'equipy_s', '.2f')} | {r['ratio_vs_numpy']:.2f} | "
            f"{fmt(r, 'speedup_vs_equipy', '.1f')} | "
            f"{r['ks_fairjax']:.4f} | {r['ks_numpy']:.4f} | {fmt(r, 'ks_equipy', '.4f')} | "
            f"{fmt(r, 'median_abs_diff_equipy', '.1e')} |"
        )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, f"wasserstein_vs_equipy{tag}.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
