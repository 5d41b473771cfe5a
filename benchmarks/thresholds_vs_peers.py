"""Group-specific randomised thresholds: fairjax vs fairlearn, error-parity and OxonFair.

On the same prefit scores (scikit-learn ``LogisticRegression(max_iter=1000)`` trained on each
training split, ``predict_proba[:, 1]``):

1. fairjax :func:`fairjax.postprocessing.fit_thresholds` (exact LP optimum, ``tolerance=0``)
   beside fairlearn's ``ThresholdOptimizer(prefit=True)`` for demographic parity, TPR parity
   and equalized odds on Adult (sex), Adult (race, its 5 groups), COMPAS (race) and German
   credit (age). Both fit on the training split and predict the test split; accuracy and gap
   are reported for the expected decisions (the probability of a positive decision: fairjax's
   ``apply_thresholds`` without a key, fairlearn's ``_pmf_predict``) and for the drawn ones
   (seed 0). Times are wall-clock fit + predict of each library, scores included (fairlearn
   calls the estimator itself): fairjax's first call in this process and the median of
   ``--repeats`` further calls, for the call a CPU user makes (concrete NumPy inputs: the host
   path, NumPy and HiGHS, nothing compiled) and for the same call under ``jax.jit`` (the
   compiled path, which also runs on accelerators: first call with compilation, then the
   compiled call). The ``jax.random`` key is made once, before the timings.
2. The Wasserstein-barycenter recipe for demographic parity (Chzhen et al., 2019): transport
   each group's training scores onto their barycenter
   (:func:`fairjax.postprocessing.fit_barycenter`), apply to the test scores, threshold at 0.5.
3. error-parity's ``RelaxedThresholdOptimizer`` (equalized odds, tolerances 0.01, 0.05, 0.1)
   in its own virtual environment (``--peer-python``; it pins numpy < 2), on the training
   scores saved to a temporary ``.npz``: training accuracy of both (expected, from each
   method's group operating points), feasibility (largest gap of the operating points), fit
   times. fairjax's fits run the same way, in a process of their own on the saved arrays.
4. OxonFair's ``FairPredictor`` (``--oxonfair-python``, its own venv) on the same saved
   training scores, for the three criteria at tolerances 0.01 and 0.05, beside
   ``fit_thresholds`` at the same tolerance: test accuracy and gap, fit + predict time.
5. The post-processing front on Adult (sex, DP): one ``vmap`` of ``fit_thresholds`` over 21
   tolerances, and each group's ROC hull with the chosen points on Adult (race).

Writes ``benchmarks/results/thresholds_<platform>.json`` and ``.md``, and
``docs/img/thresholds_front.png``, ``docs/img/thresholds_roc.png``.

Usage::

    FAIRJAX_DATA_HOME=path/to/data python benchmarks/thresholds_vs_peers.py \\
        --peer-python path/to/venv-with-error-parity/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import criteria, datasets, plotting
from fairjax import postprocessing as pp

try:  # run as a script (benchmarks/ on the path) or as benchmarks.thresholds_vs_peers
    from _common import first_and_repeated, use_compilation_cache
except ImportError:
    from benchmarks._common import first_and_repeated, use_compilation_cache

KEY = jax.random.key(0)  # made once, outside the timings, as a user makes a key once
ROOT = pathlib.Path(__file__).resolve().parent
RESULTS = ROOT / "results"
IMG = ROOT.parent / "docs" / "img"
# fairjax's criterion -> fairlearn's constraint name
CRITERIA = {
    "demographic_parity": "demographic_parity",
    "equal_opportunity": "true_positive_rate_parity",
    "equalized_odds": "equalized_odds",
}
TOLERANCES = (0.01, 0.05, 0.1)
OXON_TOLERANCES = (0.01, 0.05)


def _adult_race():
    d = datasets.load_adult()
    cols = [i for i, f in enumerate(d.feature_names) if f.startswith("race=")]
    names = tuple(d.feature_names[i].split("=", 1)[1] for i in cols)
    return d._replace(
        groups_train=np.argmax(d.X_train[:, cols], 1).astype(np.int32),
        groups_test=np.argmax(d.X_test[:, cols], 1).astype(np.int32),
        group_names=names,
        sensitive_name="race",
    )


def _load():
    """The data sets, features in float64 (fairlearn's predict refuses float32 features)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # COMPAS's documented caveat
        data = {
            "Adult (sex)": datasets.load_adult(),
            "Adult (race)": _adult_race(),
            "COMPAS (race)": datasets.load_compas(),
            "German (age)": datasets.load_german(),
        }
    return {
        k: d._replace(X_train=d.X_train.astype(np.float64), X_test=d.X_test.astype(np.float64))
        for k, d in data.items()
    }


def gap(crit, p, y, g, num_groups):
    rates, counts = criteria.group_rates(
        jnp.asarray(p, jnp.float32), g, y, criterion=crit, num_groups=num_groups
    )
    return float(jnp.max(criteria.largest_gap(rates, counts)))


def accuracy(p, y):
    return float(np.mean(np.where(y == 1, p, 1 - p)))


def fairjax_thresholds(base, d, crit, repeats):
    G = d.num_groups

    def fit_apply(s_tr, y, g, s_te, g_te):
        st = pp.fit_thresholds(s_tr, y, g, num_groups=G, criterion=crit)
        return st, pp.apply_thresholds(st, s_te, g_te, key=KEY)

    def run(fn):
        s_tr = base.predict_proba(d.X_train)[:, 1].astype(np.float32)
        s_te = base.predict_proba(d.X_test)[:, 1].astype(np.float32)
        st, drawn = fn(s_tr, d.y_train, d.groups_train, s_te, d.groups_test)
        return st, s_te, jax.block_until_ready(drawn)

    (st, s_te, drawn), first, repeated = first_and_repeated(lambda: run(fit_apply), repeats)
    jitted = jax.jit(fit_apply)
    _, jit_first, jit_compiled = first_and_repeated(lambda: run(jitted), repeats)
    expected = np.asarray(pp.apply_thresholds(st, s_te, d.groups_test))
    return {
        "first_call_s": first,
        "repeated_s": repeated,
        "jit_first_call_s": jit_first,
        "jit_compiled_s": jit_compiled,
        **_scores(crit, expected, np.asarray(drawn), d),
    }


def _scores(crit, expected, drawn, d):
    y, g, G = d.y_test, d.groups_test, d.num_groups
    return {
        "test_accuracy": accuracy(expected, y),
        "test_gap": gap(crit, expected, y, g, G),
        "test_accuracy_drawn": accuracy(drawn, y),
        "test_gap_drawn": gap(crit, drawn, y, g, G),
    }


def fairlearn_thresholds(base, d, crit, repeats):
    from fairlearn.postprocessing import ThresholdOptimizer

    def run():
        to = ThresholdOptimizer(
            estimator=base,
            constraints=CRITERIA[crit],
            prefit=True,
            predict_method="predict_proba",
        )
        to.fit(d.X_train, d.y_train, sensitive_features=d.groups_train)
        return to, to.predict(d.X_test, sensitive_features=d.groups_test, random_state=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (to, drawn), seconds, again = first_and_repeated(run, max(repeats // 2, 1))
        expected = to._pmf_predict(d.X_test, sensitive_features=d.groups_test)[:, 1]
    return {
        "first_call_s": seconds,
        "repeated_s": again,
        **_scores(crit, expected, np.asarray(drawn, float), d),
    }


def wasserstein_dp(base, d, repeats):
    """Chzhen et al. (2019): barycenter transport of the scores, then threshold at 0.5."""
    G = d.num_groups

    def run():
        s_tr = base.predict_proba(d.X_train)[:, 1].astype(np.float32)
        st = pp.fit_barycenter(s_tr, d.groups_train, num_groups=G, key=jax.random.key(0))
        s_te = base.predict_proba(d.X_test)[:, 1].astype(np.float32)
        fair = pp.apply_barycenter(st, s_te, d.groups_test, key=jax.random.key(1))
        return jax.block_until_ready(fair >= 0.5)

    dec, first, repeated = first_and_repeated(run, repeats)
    dec = np.asarray(dec, np.float32)
    return {
        "first_call_s": first,
        "repeated_s": repeated,
        "test_accuracy": accuracy(dec, d.y_test),
        "test_gap": gap("demographic_parity", dec, d.y_test, d.groups_test, G),
    }


_PEER = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from error_parity import RelaxedThresholdOptimizer
data = np.load(sys.argv[1])
out = {}
for tol in [float(t) for t in sys.argv[2].split(",")]:
    s, y, g = data["scores"], data["labels"], data["groups"]
    clf = RelaxedThresholdOptimizer(predictor=lambda x: x, constraint="equalized_odds",
                                    tolerance=tol, seed=0)
    t = time.perf_counter()
    clf.fit(X=s, y=y, group=g)
    sec = time.perf_counter() - t
    pts = np.asarray(clf.groupwise_roc_points)  # (G, 2): FPR, TPR
    out[str(tol)] = {"seconds": sec, "fpr": pts[:, 0].tolist(), "tpr": pts[:, 1].tolist()}
print(json.dumps(out))
"""

# OxonFair's FairPredictor on saved scores (predictor=None: the "data" are the scores, two
# columns), fitted on the training split, predicting the test split. Its constraint metrics in
# the largest-pairwise-gap form that fairjax's gaps use (``max_diff``; ``equalized_odds_max`` is
# the larger of the TPR and TNR gaps).
_OXONFAIR = r"""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
import logging; logging.disable(logging.WARNING)
from oxonfair import FairPredictor, group_metrics as gm
data = np.load(sys.argv[1])
metric = {"demographic_parity": gm.pos_pred_rate.max_diff,
          "equal_opportunity": gm.true_pos_rate.max_diff,
          "equalized_odds": gm.equalized_odds_max}
two = lambda s: np.stack([1 - s, s], 1)
out = {}
for crit in sys.argv[3].split(","):
    for tol in [float(t) for t in sys.argv[2].split(",")]:
        t = time.perf_counter()
        fp = FairPredictor(None, {"data": two(data["scores"]), "target": data["labels"],
                                  "groups": data["groups"]})
        fp.fit(gm.accuracy, metric[crit], tol)
        pred = fp.predict({"data": two(data["test_scores"]), "target": data["test_labels"],
                           "groups": data["test_groups"]})
        sec = time.perf_counter() - t
        out[f"{crit} @ {tol}"] = {"seconds": sec, "test_decisions": np.asarray(pred).tolist()}
print(json.dumps(out))
"""


def run_peer(peer_python, source, arrays, *args):
    """Runs a peer's script (``source``) in its own interpreter on ``arrays`` saved to a
    temporary ``.npz`` (its path is the first argument, then ``args``): the parsed JSON it
    prints, or ``{"error": [last line of stderr]}``."""
    with tempfile.TemporaryDirectory() as tmp:
        script = pathlib.Path(tmp) / "peer.py"
        script.write_text(source)
        path = pathlib.Path(tmp) / "arrays.npz"
        np.savez(path, **arrays)
        res = subprocess.run(
            [peer_python, str(script), str(path), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1:]}
    return json.loads(res.stdout)


def _group_accuracy(fpr, tpr, y, g, G):
    P = np.bincount(g, y == 1, minlength=G)
    N = np.bincount(g, y == 0, minlength=G)
    return float(np.sum(P * np.asarray(tpr) + N * (1 - np.asarray(fpr))) / y.size)


def _point_gap(fpr, tpr):
    return float(max(np.ptp(fpr), np.ptp(tpr)))


# fairjax's side of the error-parity comparison, run like the peer: in a process of its own on
# the same saved arrays, imports before the timings (a fit in this large benchmark process pays
# ~1 ms more per call to Python's garbage collector, which the peer's small process does not).
_FAIRJAX_EQUALIZED_ODDS = r"""
import json, sys, time
import numpy as np
import scipy.optimize  # the host path's LP solver, imported with the rest
import jax
from fairjax.postprocessing import fit_thresholds
jax.devices()  # JAX's backend starts once per process, like the imports (the peer has none)
sys.path.insert(0, sys.argv[4])
from _common import first_and_repeated
data = np.load(sys.argv[1])
s, y, g = data["scores"], data["labels"], data["groups"]
G, repeats = int(g.max()) + 1, int(sys.argv[3])
out = {}
for tol in [float(t) for t in sys.argv[2].split(",")]:
    fit = lambda: jax.block_until_ready(fit_thresholds(
        s, y, g, num_groups=G, criterion="equalized_odds", tolerance=tol))
    st, first, repeated = first_and_repeated(fit, repeats)
    out[str(tol)] = {"first_call_s": first, "repeated_s": repeated,
                     "fpr": np.asarray(st.fpr).tolist(), "tpr": np.asarray(st.tpr).tolist()}
print(json.dumps(out))
"""


def error_parity(data, bases, peer_python, repeats):
    rows = {}
    for name, d in data.items():
        s = bases[name].predict_proba(d.X_train)[:, 1].astype(np.float32)
        arrays = {"scores": s, "labels": d.y_train, "groups": d.groups_train}
        tols = ",".join(map(str, TOLERANCES))
        peer = run_peer(peer_python, _PEER, arrays, tols)
        ours = run_peer(
            sys.executable, _FAIRJAX_EQUALIZED_ODDS, arrays, tols, str(repeats), str(ROOT)
        )
        if "error" in peer or "error" in ours:
            rows[name] = peer if "error" in peer else ours
            continue
        G = d.num_groups
        for tol in TOLERANCES:
            p, f = peer[str(tol)], ours[str(tol)]
            rows[f"{name} @ {tol}"] = {
                "fairjax_train_accuracy": _group_accuracy(
                    f["fpr"], f["tpr"], d.y_train, d.groups_train, G
                ),
                "fairjax_gap": _point_gap(np.asarray(f["fpr"]), np.asarray(f["tpr"])),
                "fairjax_first_call_s": f["first_call_s"],
                "fairjax_repeated_s": f["repeated_s"],
                "error_parity_train_accuracy": _group_accuracy(
                    p["fpr"], p["tpr"], d.y_train, d.groups_train, G
                ),
                "error_parity_gap": _point_gap(p["fpr"], p["tpr"]),
                "error_parity_s": p["seconds"],
            }
    return rows


def oxonfair(data, bases, peer_python, repeats, max_groups):
    """OxonFair's FairPredictor beside fit_thresholds at the same tolerances, on the same
    training scores, evaluated on the test split (OxonFair: deterministic thresholds found by
    a grid search; fairjax: randomised, expected and drawn decisions)."""
    rows = {}
    for name, d in data.items():
        if d.num_groups > max_groups:
            rows[name] = {"skipped": f"{d.num_groups} groups > --oxonfair-max-groups"}
            continue
        base = bases[name]
        s = base.predict_proba(d.X_train)[:, 1].astype(np.float32)
        s_te = base.predict_proba(d.X_test)[:, 1].astype(np.float32)
        arrays = {
            "scores": s,
            "labels": d.y_train,
            "groups": d.groups_train,
            "test_scores": s_te,
            "test_labels": d.y_test,
            "test_groups": d.groups_test,
        }
        peer = run_peer(
            peer_python, _OXONFAIR, arrays, ",".join(map(str, OXON_TOLERANCES)), ",".join(CRITERIA)
        )
        if "error" in peer:
            rows[name] = peer
            continue
        G = d.num_groups
        for crit in CRITERIA:
            for tol in OXON_TOLERANCES:

                def run(crit=crit, tol=tol, d=d, G=G, s=s, s_te=s_te):  # on the scores, as OxonFair
                    st = pp.fit_thresholds(
                        s, d.y_train, d.groups_train, num_groups=G, criterion=crit, tolerance=tol
                    )
                    drawn = pp.apply_thresholds(st, s_te, d.groups_test, key=KEY)
                    return st, jax.block_until_ready(drawn)

                (st, drawn), first, repeated = first_and_repeated(run, repeats)
                expected = np.asarray(pp.apply_thresholds(st, s_te, d.groups_test))
                p = peer[f"{crit} @ {tol}"]
                ox = np.asarray(p["test_decisions"], np.float32)
                rows[f"{name} | {crit} @ {tol}"] = {
                    "fairjax": {
                        "first_call_s": first,
                        "repeated_s": repeated,
                        **_scores(crit, expected, np.asarray(drawn), d),
                    },
                    "oxonfair": {
                        "seconds": p["seconds"],
                        "test_accuracy": accuracy(ox, d.y_test),
                        "test_gap": gap(crit, ox, d.y_test, d.groups_test, G),
                    },
                }
    return rows


def inferred_groups(d, base):
    """Adult (sex), DP thresholds fitted on the true groups, applied at test time with the
    group probabilities of a classifier of sex that does not see the sex columns."""
    from sklearn.linear_model import LogisticRegression

    G = d.num_groups
    keep = [i for i, f in enumerate(d.feature_names) if not f.startswith("sex=")]
    who = LogisticRegression(max_iter=1000).fit(d.X_train[:, keep], d.groups_train)
    member = who.predict_proba(d.X_test[:, keep]).astype(np.float32)
    s_tr = base.predict_proba(d.X_train)[:, 1].astype(np.float32)
    s_te = base.predict_proba(d.X_test)[:, 1].astype(np.float32)
    st = pp.fit_thresholds(s_tr, d.y_train, d.groups_train, num_groups=G)
    out = {"group_classifier_accuracy": float(np.mean(member.argmax(1) == d.groups_test))}
    for name, groups in (("true groups", d.groups_test), ("inferred groups", member)):
        p = np.asarray(pp.apply_thresholds(st, s_te, groups))
        out[name] = {
            "test_accuracy": accuracy(p, d.y_test),
            "test_gap": gap("demographic_parity", p, d.y_test, d.groups_test, G),
        }
    base_p = (s_te >= 0.5).astype(np.float32)
    out["unconstrained"] = {
        "test_accuracy": accuracy(base_p, d.y_test),
        "test_gap": gap("demographic_parity", base_p, d.y_test, d.groups_test, G),
    }
    return out


def front(d, base, path):
    """Accuracy vs DP gap over 21 tolerances: one vmapped fit."""
    G = d.num_groups
    s_tr = base.predict_proba(d.X_train)[:, 1].astype(np.float32)
    s_te = base.predict_proba(d.X_test)[:, 1].astype(np.float32)
    tols = jnp.linspace(0.0, 0.2, 21)

    def fit_all():
        return jax.block_until_ready(
            jax.vmap(
                lambda t: pp.fit_thresholds(
                    s_tr,
                    d.y_train,
                    d.groups_train,
                    num_groups=G,
                    criterion="demographic_parity",
                    tolerance=t,
                )
            )(tols)
        )

    states, first, compiled = first_and_repeated(fit_all, 3)
    probs = jax.vmap(lambda st: pp.apply_thresholds(st, s_te, d.groups_test))(states)
    acc = [accuracy(np.asarray(p), d.y_test) for p in probs]
    gaps = [gap("demographic_parity", p, d.y_test, d.groups_test, G) for p in probs]
    base_p = (s_te >= 0.5).astype(np.float32)
    ref = {
        "unconstrained LR (0.5)": (
            [gap("demographic_parity", base_p, d.y_test, d.groups_test, G)],
            [accuracy(base_p, d.y_test)],
        )
    }
    plotting.pareto_front(
        gaps,
        acc,
        labels=np.asarray(tols),
        reference=ref,
        name="fit_thresholds (tolerance)",
        title="Adult (sex): post-processing front, one vmapped fit",
        path=path,
    )
    return {
        "tolerances": np.asarray(tols).tolist(),
        "test_accuracy": acc,
        "test_gap": gaps,
        "first_call_s": first,
        "compiled_s": compiled,
    }


def roc_figure(d, base, path):
    s = base.predict_proba(d.X_train)[:, 1].astype(np.float32)
    G = d.num_groups
    hull = pp.roc_hull(s, d.y_train, d.groups_train, num_groups=G)
    states = {
        c: pp.fit_thresholds(s, d.y_train, d.groups_train, num_groups=G, criterion=c)
        for c in ("equalized_odds", "equal_opportunity", "demographic_parity")
    }
    plotting.roc_operating_points(
        hull, states, group_names=d.group_names, title="Adult (race), training split", path=path
    )


def _md_oxonfair(rows):
    lines = [
        "",
        "## OxonFair FairPredictor (test split; same training scores, same tolerance)",
        "",
        "OxonFair: deterministic group thresholds from a grid search on the data it is given "
        "(here the training scores), constraint on the largest pairwise gap (``max_diff``; "
        "``equalized_odds_max``). fairjax: the exact LP optimum (randomised; expected "
        "decisions, drawn in brackets). Times: fit + predict on the scores, seconds.",
        "",
        "| data | criterion @ tol | fairjax acc | OxonFair acc | fairjax gap | OxonFair gap | "
        "fairjax s (first / repeated) | OxonFair s | speed-up (repeated / first) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in rows.items():
        if "fairjax" not in r:
            lines.append(f"| {key} | {next(iter(r.values()))} | | | | | | | |")
            continue
        name, crit = key.split(" | ")
        f, o = r["fairjax"], r["oxonfair"]
        lines.append(
            f"| {name} | {crit} | {f['test_accuracy']:.4f} ({f['test_accuracy_drawn']:.4f}) | "
            f"{o['test_accuracy']:.4f} | {f['test_gap']:.4f} ({f['test_gap_drawn']:.4f}) | "
            f"{o['test_gap']:.4f} | {f['first_call_s']:.3f} / {f['repeated_s']:.4f} | "
            f"{o['seconds']:.3f} | {o['seconds'] / f['repeated_s']:.0f}x / "
            f"{o['seconds'] / f['first_call_s']:.1f}x |"
        )
    return lines


def _md(res):
    lines = [
        f"# Thresholds vs peers ({res['platform']})",
        "",
        f"jax {res['jax']}, fairlearn {res['fairlearn_version']}, device "
        f"{res['device']}. Accuracy and gap on the test split for the expected decisions "
        "(drawn decisions, seed 0, in brackets). Times: fit + predict, seconds; fairjax: "
        "the call with NumPy inputs (the host path: NumPy and HiGHS, nothing compiled), first "
        "call / median of the repeated calls; under `jax.jit` (the compiled path, as on an "
        "accelerator), first call (compilation included) / compiled call. TO: first call. "
        "Speed-up: TO's time over fairjax's. JAX persistent compilation "
        f"cache: {res['compilation_cache']} (warm: the first calls load compiled programs "
        "instead of compiling). Load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{x:.1f}' for x in res['load_average_start'])}, at the end "
        f"{', '.join(f'{x:.1f}' for x in res['load_average_end'])}.",
        "",
        "| data | criterion | fairjax acc | TO acc | fairjax gap | TO gap | fairjax s "
        "(first / repeated) | TO s | speed-up (first / repeated) | jit s (first / compiled) "
        "| jit speed-up (compiled) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in res["fairlearn"].items():
        name, crit = key.split(" | ")
        f, t = r["fairjax"], r["fairlearn"]
        lines.append(
            f"| {name} | {crit} | {f['test_accuracy']:.4f} ({f['test_accuracy_drawn']:.4f}) | "
            f"{t['test_accuracy']:.4f} ({t['test_accuracy_drawn']:.4f}) | "
            f"{f['test_gap']:.4f} ({f['test_gap_drawn']:.4f}) | "
            f"{t['test_gap']:.4f} ({t['test_gap_drawn']:.4f}) | "
            f"{f['first_call_s']:.4f} / {f['repeated_s']:.4f} | {t['first_call_s']:.3f} | "
            f"{t['first_call_s'] / f['first_call_s']:.0f}x / "
            f"{t['first_call_s'] / f['repeated_s']:.0f}x | "
            f"{f['jit_first_call_s']:.3f} / {f['jit_compiled_s']:.4f} | "
            f"{t['first_call_s'] / f['jit_compiled_s']:.0f}x |"
        )
    lines += [
        "",
        "## Wasserstein barycenter on the scores, then 0.5 (demographic parity)",
        "",
        "| data | test acc | test DP gap | fairjax thresholds (DP) acc / gap | s "
        "(first / repeated) |",
        "|---|---|---|---|---|",
    ]
    for name, r in res["wasserstein"].items():
        t = res["fairlearn"][f"{name} | demographic_parity"]["fairjax"]
        lines.append(
            f"| {name} | {r['test_accuracy']:.4f} | {r['test_gap']:.4f} | "
            f"{t['test_accuracy']:.4f} / {t['test_gap']:.4f} | "
            f"{r['first_call_s']:.3f} / {r['repeated_s']:.4f} |"
        )
    if res.get("error_parity"):
        lines += [
            "",
            "## error-parity RelaxedThresholdOptimizer, equalized odds (training split)",
            "",
            "| data @ tolerance | fairjax acc | error-parity acc | fairjax gap | "
            "error-parity gap | fairjax s (first / repeated) | error-parity s | speed-up "
            "(first / repeated) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, r in res["error_parity"].items():
            if "error" in r:
                lines.append(f"| {key} | error: {r['error']} | | | | | |")
                continue
            lines.append(
                f"| {key} | {r['fairjax_train_accuracy']:.4f} | "
                f"{r['error_parity_train_accuracy']:.4f} | {r['fairjax_gap']:.4f} | "
                f"{r['error_parity_gap']:.4f} | {r['fairjax_first_call_s']:.4f} / "
                f"{r['fairjax_repeated_s']:.4f} | {r['error_parity_s']:.3f} | "
                f"{r['error_parity_s'] / r['fairjax_first_call_s']:.0f}x / "
                f"{r['error_parity_s'] / r['fairjax_repeated_s']:.0f}x |"
            )
    if res.get("oxonfair"):
        lines += _md_oxonfair(res["oxonfair"])
    inf = res["inferred"]
    lines += [
        "",
        "## Inferred groups (Adult, sex; DP thresholds; gap on the true groups)",
        "",
        f"Group classifier (LR without the sex columns) test accuracy "
        f"{inf['group_classifier_accuracy']:.4f}.",
        "",
        "| applied with | test acc | test DP gap (true groups) |",
        "|---|---|---|",
    ]
    for k in ("true groups", "inferred groups", "unconstrained"):
        lines.append(f"| {k} | {inf[k]['test_accuracy']:.4f} | {inf[k]['test_gap']:.4f} |")
    fr = res["front"]
    lines += [
        "",
        f"Front (Adult sex, DP, 21 tolerances in one vmapped fit): first call "
        f"{fr['first_call_s']:.2f} s, compiled {fr['compiled_s']:.3f} s.",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peer-python", default=None, help="python of a venv with error-parity")
    ap.add_argument(
        "--oxonfair-python", default=None, help="python of a venv with oxonfair (numpy < 2)"
    )
    ap.add_argument(
        "--oxonfair-max-groups",
        type=int,
        default=2,
        help="OxonFair's grid search costs O(30^G) (capped near 30^5): data sets with more "
        "groups are skipped",
    )
    ap.add_argument(
        "--compilation-cache",
        metavar="DIR",
        help="JAX's persistent compilation cache in DIR: run twice, and the second run's first "
        "calls load the compiled programs (its results go to thresholds_<platform>_warm_cache.*)",
    )
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()
    warm = use_compilation_cache(args.compilation_cache)
    from sklearn.linear_model import LogisticRegression

    data = _load()
    bases = {
        name: LogisticRegression(max_iter=1000).fit(d.X_train, d.y_train)
        for name, d in data.items()
    }
    for name, d in data.items():  # the shared base model's first-call costs belong to neither
        bases[name].predict_proba(d.X_train)
        bases[name].predict_proba(d.X_test)
    res = {
        "platform": platform.system().lower() + "-" + jax.default_backend(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "fairlearn": {},
        "wasserstein": {},
        "compilation_cache": "warm" if warm else ("cold" if args.compilation_cache else "none"),
        "load_average_start": os.getloadavg(),
    }
    import fairlearn

    res["fairlearn_version"] = fairlearn.__version__
    for name, d in data.items():
        for crit in CRITERIA:
            key = f"{name} | {crit}"
            res["fairlearn"][key] = {
                "fairjax": fairjax_thresholds(bases[name], d, crit, args.repeats),
                "fairlearn": fairlearn_thresholds(bases[name], d, crit, args.repeats),
            }
            print(key, json.dumps(res["fairlearn"][key]), flush=True)
        res["wasserstein"][name] = wasserstein_dp(bases[name], d, args.repeats)
        print(name, "wasserstein", res["wasserstein"][name], flush=True)
    if args.peer_python:
        res["error_parity"] = error_parity(data, bases, args.peer_python, args.repeats)
        print(json.dumps(res["error_parity"], indent=1), flush=True)
    if args.oxonfair_python:
        res["oxonfair"] = oxonfair(
            data, bases, args.oxonfair_python, args.repeats, args.oxonfair_max_groups
        )
        print(json.dumps(res["oxonfair"], indent=1), flush=True)
    res["inferred"] = inferred_groups(data["Adult (sex)"], bases["Adult (sex)"])
    print("inferred", res["inferred"], flush=True)
    IMG.mkdir(parents=True, exist_ok=True)
    res["front"] = front(
        data["Adult (sex)"],
        bases["Adult (sex)"],
        None if args.no_plots else IMG / "thresholds_front.png",
    )
    if not args.no_plots:
        roc_figure(data["Adult (race)"], bases["Adult (race)"], IMG / "thresholds_roc.png")
    res["load_average_end"] = os.getloadavg()
    stem = RESULTS / f"thresholds_{jax.default_backend()}{'_warm_cache' if warm else ''}"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1))
    stem.with_suffix(".md").write_text(_md(res))
    print(_md(res))


if __name__ == "__main__":
    main()
