"""Post-processing front vs in-processing fronts on Adult (sex): test accuracy vs test DP gap.

All on the same split (the loader's train/test) and the same features:

1. Post-processing: scikit-learn ``LogisticRegression(max_iter=1000)`` scores on the training
   split, then :func:`fairjax.postprocessing.fit_thresholds` (demographic parity) over 21
   tolerances in ``[0, 0.2]`` in one program (``jax.vmap`` over ``tolerance``; the same
   function as ``thresholds_vs_peers.py``'s front, compiled time the median of 3), applied to
   the test scores (expected decisions).
2. In-processing, randomised: :func:`fairjax.training.fit_rate_constrained_mixture` (a linear
   model, full-batch Adam, ``--steps`` steps) at a few bounds on the training DP gap; the
   expected decisions of the mixture on the test split.
3. In-processing, deterministic: linear FERM :func:`fairjax.ferm.fit_linear` with
   ``criterion="demographic_parity"`` (the constraint equalises the groups' mean *linear
   output* over all rows, Donini et al.'s linear-loss relaxation of demographic parity, within
   ``eps``), logistic loss, at a few ``eps``; the sign of the decision function on test.

Writes ``benchmarks/results/thresholds_front_<platform>.json`` and ``.md`` and
``docs/img/thresholds_front_vs_inprocessing.png``.

Usage (as a script: it imports its neighbour ``thresholds_vs_peers``)::

    FAIRJAX_DATA_HOME=path/to/data python benchmarks/postprocessing_front.py
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from thresholds_vs_peers import accuracy, front, gap  # run as a script from benchmarks/

from fairjax import datasets, ferm, plotting, training

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS = ROOT / "results"
IMG = ROOT.parent / "docs" / "img"
BOUNDS = (0.0, 0.02, 0.05, 0.1)
EPS = (0.0, 0.02, 0.05, 0.1, 0.2)


def dp_gap(p, g, y, num_groups):
    return gap("demographic_parity", p, y, g, num_groups)


def threshold_front(d, G):
    from sklearn.linear_model import LogisticRegression

    t = time.perf_counter()
    base = LogisticRegression(max_iter=1000).fit(d.X_train, d.y_train)
    lr_s = time.perf_counter() - t
    fr = front(d, base, None)  # thresholds_vs_peers' vmapped fit over 21 tolerances
    s_te = base.predict_proba(d.X_test)[:, 1].astype(np.float32)
    base_p = (s_te >= 0.5).astype(np.float32)
    return {
        "labels": [round(t, 3) for t in fr["tolerances"]],
        "test_accuracy": fr["test_accuracy"],
        "test_gap": fr["test_gap"],
        "seconds_first_call": fr["first_call_s"],
        "seconds_compiled": fr["compiled_s"],
        "logistic_regression_s": lr_s,
        "unconstrained": {
            "test_accuracy": accuracy(base_p, d.y_test),
            "test_gap": dp_gap(base_p, d.groups_test, d.y_test, G),
        },
    }


def mixture_front(d, G, steps):
    train, test = d.batch("train"), d.batch("test")
    p0 = {"w": jnp.zeros(train[0].shape[1]), "b": jnp.zeros(())}

    def logits(p, b):
        return b[0] @ p["w"] + p["b"]

    def l2(p):
        return 1e-4 * jnp.sum(p["w"] ** 2)

    out = {"labels": list(BOUNDS), "test_accuracy": [], "test_gap": [], "seconds": []}
    for bound in BOUNDS:
        t = time.perf_counter()
        mix = training.fit_rate_constrained_mixture(
            logits,
            p0,
            train,
            target=bound,
            num_groups=G,
            optimizer=optax.adam(0.05),
            num_steps=steps,
            regularizer=l2,
        )
        p = np.asarray(training.mixture_decisions(logits, mix.params, mix.probabilities, test))
        out["seconds"].append(time.perf_counter() - t)
        out["test_accuracy"].append(accuracy(p, d.y_test))
        out["test_gap"].append(dp_gap(p, d.groups_test, d.y_test, G))
    return out


def ferm_front(d, G, steps):
    out = {"labels": list(EPS), "test_accuracy": [], "test_gap": [], "seconds": []}
    X_te = jnp.asarray(d.X_test, jnp.float32)
    for eps in EPS:
        t = time.perf_counter()
        model = ferm.fit_linear(
            d.X_train.astype(np.float32),
            d.y_train,
            d.groups_train,
            num_groups=G,
            eps=eps,
            loss="logistic",
            criterion="demographic_parity",
            num_steps=steps,
        )
        p = (np.asarray(ferm.decision_function(model, X_te)) > 0).astype(np.float32)
        out["seconds"].append(time.perf_counter() - t)
        out["test_accuracy"].append(accuracy(p, d.y_test))
        out["test_gap"].append(dp_gap(p, d.groups_test, d.y_test, G))
    return out


def _md(res):
    lines = [
        f"# Post-processing front vs in-processing fronts, Adult (sex) ({res['platform']})",
        "",
        f"jax {res['jax']}, device {res['device']}. Test accuracy and test demographic-parity "
        "gap (expected decisions for the randomised methods); same split and features for "
        "all. Produced by `benchmarks/postprocessing_front.py`.",
        "",
        "| method | setting | test acc | test DP gap |",
        "|---|---|---|---|",
    ]
    names = {
        "thresholds": ("fit_thresholds on LR scores", "tolerance"),
        "mixture": ("fit_rate_constrained_mixture (linear)", "bound"),
        "ferm": ("ferm.fit_linear (logistic, DP linear-loss)", "eps"),
    }
    for key, (name, what) in names.items():
        r = res[key]
        for lab, a, gp in zip(r["labels"], r["test_accuracy"], r["test_gap"], strict=True):
            lines.append(f"| {name} | {what} {lab:g} | {a:.4f} | {gp:.4f} |")
    u = res["thresholds"]["unconstrained"]
    lines.append(f"| LR, threshold 0.5 | unconstrained | {u['test_accuracy']:.4f} | "
                 f"{u['test_gap']:.4f} |")  # fmt: skip
    t = res["thresholds"]
    lines += [
        "",
        f"Times (s): the threshold front (21 tolerances, one vmapped fit) first call "
        f"{t['seconds_first_call']:.2f}, compiled {t['seconds_compiled']:.3f} (plus "
        f"{t['logistic_regression_s']:.2f} for the logistic regression); "
        f"fit_rate_constrained_mixture {sum(res['mixture']['seconds']):.1f} for "
        f"{len(BOUNDS)} bounds ({res['steps']} steps each); ferm.fit_linear "
        f"{sum(res['ferm']['seconds']):.1f} for {len(EPS)} eps ({res['steps']} steps each).",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500, help="optimizer steps of each fit")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()
    d = datasets.load_adult()
    G = d.num_groups
    res = {
        "platform": platform.system().lower() + "-" + jax.default_backend(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "steps": args.steps,
        "thresholds": threshold_front(d, G),
    }
    print("thresholds", res["thresholds"], flush=True)
    res["mixture"] = mixture_front(d, G, args.steps)
    print("mixture", res["mixture"], flush=True)
    res["ferm"] = ferm_front(d, G, args.steps)
    print("ferm", res["ferm"], flush=True)
    if not args.no_plots:
        IMG.mkdir(parents=True, exist_ok=True)
        t, m, f = res["thresholds"], res["mixture"], res["ferm"]
        u = t["unconstrained"]
        plotting.pareto_front(
            t["test_gap"],
            t["test_accuracy"],
            reference={
                "fit_rate_constrained_mixture (bound)": (m["test_gap"], m["test_accuracy"]),
                "ferm.fit_linear, DP (eps)": (f["test_gap"], f["test_accuracy"]),
                "LR, threshold 0.5": ([u["test_gap"]], [u["test_accuracy"]]),
            },
            name="fit_thresholds on LR scores (tolerance 0 to 0.2)",
            title="Adult (sex): post-processing vs in-processing, test split",
            path=IMG / "thresholds_front_vs_inprocessing.png",
        )
    stem = RESULTS / f"thresholds_front_{jax.default_backend()}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    stem.with_suffix(".md").write_text(_md(res))
    print(_md(res))


if __name__ == "__main__":
    main()
