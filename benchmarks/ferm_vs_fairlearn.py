"""fairjax linear FERM vs fairlearn ExponentiatedGradient on Adult (one run).

Both mitigate equal opportunity (equal true-positive rates for women and men) on the library's
standard Adult preprocessing (``fairjax.datasets.load_adult``: 30,162 x 104, one-hot,
standardised). fairjax: ``ferm.fit_linear`` (hinge loss with C = 0.1 as in the paper, and the
logistic loss with C = 1; projected Adam, 1000 full-batch
steps); its jit compilation is timed separately from the fit. fairlearn:
``ExponentiatedGradient(LogisticRegression(max_iter=1000), TruePositiveRateParity())``; its
predictor is randomised, so its accuracy and DEO are the mean over 5 prediction seeds (and the
deterministic ``_pmf_predict >= 0.5`` thresholding is reported too). Unconstrained sklearn
``LogisticRegression`` is the reference point.

Run:  python benchmarks/ferm_vs_fairlearn.py   (writes benchmarks/results/ferm_vs_fairlearn.*)
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from fairlearn.reductions import ExponentiatedGradient, TruePositiveRateParity
from sklearn.linear_model import LogisticRegression

from fairjax import datasets, ferm
from fairjax.metrics import equal_opportunity_difference

RESULTS = Path(__file__).parent / "results"


def deo(y, pred, s) -> float:
    return float(equal_opportunity_difference(y, pred, s, num_groups=2))


def main() -> dict:
    data = datasets.load_adult()
    X, y, s = data.X_train, data.y_train, data.groups_train
    Xt, yt, st = data.X_test, data.y_test, data.groups_test
    rows = {}

    # --- unconstrained sklearn logistic regression
    t0 = time.perf_counter()
    lr = LogisticRegression(max_iter=1000).fit(X, y)
    fit = time.perf_counter() - t0
    pred = lr.predict(Xt)
    rows["sklearn LogisticRegression (unconstrained)"] = dict(
        fit_s=fit, compile_s=0.0, acc=float(np.mean(pred == yt)), deo=deo(yt, pred, st)
    )

    # --- fairjax linear FERM (equal opportunity, eps = 0): the paper's hinge loss (SVM, C = 0.1)
    # and the logistic loss (the model class of fairlearn's base learner, C = 1)
    Xj, yj, sj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(s)
    fairjax_rows = []
    for loss, C in [("hinge", 0.1), ("logistic", 1.0)]:

        def fit_fairjax(loss=loss, C=C):
            return ferm.fit_linear(Xj, yj, sj, num_groups=2, C=C, loss=loss, num_steps=1000)

        t0 = time.perf_counter()
        jax.block_until_ready(fit_fairjax())
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = jax.block_until_ready(fit_fairjax())
        fit = time.perf_counter() - t0
        pred = (np.asarray(ferm.decision_function(model, jnp.asarray(Xt))) > 0).astype(int)
        name = f"fairjax linear FERM ({loss}, C={C:g}, eps=0)"
        fairjax_rows.append(name)
        rows[name] = dict(
            fit_s=fit,
            compile_s=first - fit,
            acc=float(np.mean(pred == yt)),
            deo=deo(yt, pred, st),
            train_gap=float(jnp.abs(model.directions @ model.weights)[0]),
        )

    # --- fairlearn ExponentiatedGradient
    t0 = time.perf_counter()
    eg = ExponentiatedGradient(LogisticRegression(max_iter=1000), TruePositiveRateParity())
    eg.fit(X, y, sensitive_features=s)
    fit = time.perf_counter() - t0
    accs, deos = [], []
    for seed in range(5):
        eg_pred = eg.predict(Xt, random_state=seed)
        accs.append(float(np.mean(eg_pred == yt)))
        deos.append(deo(yt, eg_pred, st))
    thr = (eg._pmf_predict(Xt)[:, 1] >= 0.5).astype(int)
    rows["fairlearn ExponentiatedGradient(LR, TPR parity)"] = dict(
        fit_s=fit,
        compile_s=0.0,
        acc=float(np.mean(accs)),
        deo=float(np.mean(deos)),
        acc_thresholded=float(np.mean(thr == yt)),
        deo_thresholded=deo(yt, thr, st),
    )

    fl = rows["fairlearn ExponentiatedGradient(LR, TPR parity)"]
    result = dict(
        data=f"Adult, fairjax.datasets.load_adult, train {X.shape}, test {Xt.shape}",
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} "
        f"on {jax.devices()[0].platform}",
        rows=rows,
        speedup_fit={n: fl["fit_s"] / rows[n]["fit_s"] for n in fairjax_rows},
        speedup_fit_including_compile={
            n: fl["fit_s"] / (rows[n]["fit_s"] + rows[n]["compile_s"]) for n in fairjax_rows
        },
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ferm_vs_fairlearn.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# fairjax linear FERM vs fairlearn ExponentiatedGradient, Adult (one run)",
        "",
        f"{result['data']}; {result['machine']}.",
        "",
        "| method | fit s | jit compile s | test acc | test DEO |",
        "|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['fit_s']:.2f} | {r['compile_s']:.2f} | {r['acc']:.4f} | "
            f"{r['deo']:.4f} |"
        )
    lines += [
        "",
        f"fairlearn thresholded (deterministic) predictor: acc {fl['acc_thresholded']:.4f}, "
        f"DEO {fl['deo_thresholded']:.4f}. fairlearn's randomised figures: mean of 5 seeds.",
    ]
    for n in fairjax_rows:
        lines.append(
            f"Speed-up of {n} over fairlearn's fit: {result['speedup_fit'][n]:.1f}x "
            f"({result['speedup_fit_including_compile'][n]:.1f}x counting jit compilation)."
        )
    (RESULTS / "ferm_vs_fairlearn.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
