"""Where the seconds of ``fit_thresholds`` go: tracing, lowering, XLA compilation, execution.

For synthetic calibration data (uniform scores, labels drawn with probability the score,
balanced groups) of a few sizes, each criterion's compiled program is built step by step with
JAX's ahead-of-time API (``trace``, ``lower``, ``compile``) in a fresh process, then run; the
ROC hull's own program is compiled alone for comparison. Also times a whole ``fit_thresholds``
+ ``apply_thresholds`` call once compiled (the median of 10), and the checks plus host sort
(``prepare``) alone. Prints one JSON line per case.

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
    import jax
    import numpy as np

    from fairjax.postprocessing import _hull, _thresholds, apply_thresholds, fit_thresholds

    rng = np.random.default_rng(0)
    s = rng.random(n).astype(np.float32)
    y = (rng.random(n) < s).astype(np.int64)
    g = (np.arange(n) % G).astype(np.int32)
    t0 = time.perf_counter()
    rows, pre = _hull.prepare(*_hull.check_inputs(s, y, g, None, G), num_groups=G)
    t1 = time.perf_counter()
    eo = crit == "equalized_odds"
    which = np.int32(0 if eo else _thresholds.THRESHOLD_CRITERIA.index(crit))
    args = (*rows, 0.0, 1.0, 1.0, which, np.int32(0))
    traced = _thresholds._fit.trace(*args, num_groups=G, equalized_odds=eo, presorted=pre)
    t2 = time.perf_counter()
    lowered = traced.lower()
    t3 = time.perf_counter()
    compiled = lowered.compile()
    t4 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    t5 = time.perf_counter()
    hull = _hull._roc_hull.trace(*rows, num_groups=G, presorted=pre).lower()
    t6 = time.perf_counter()
    hull.compile()
    t7 = time.perf_counter()

    def call():
        st = fit_thresholds(s, y, g, num_groups=G, criterion=crit)
        return jax.block_until_ready(apply_thresholds(st, s, g, key=jax.random.key(0)))

    call()
    runs = []
    for _ in range(10):
        t = time.perf_counter()
        call()
        runs.append(time.perf_counter() - t)
    return {
        "rows": n,
        "groups": G,
        "criterion": crit,
        "checks_and_prepare_s": t1 - t0,
        "trace_s": t2 - t1,
        "lower_s": t3 - t2,
        "compile_s": t4 - t3,
        "first_execution_s": t5 - t4,
        "hull_alone_compile_s": t7 - t6,
        "jaxpr_lines": len(str(traced.jaxpr).splitlines()),
        "hlo_lines": len(lowered.as_text().splitlines()),
        "compiled_fit_and_apply_s": float(np.median(runs)),
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
