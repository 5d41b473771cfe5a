"""Multiclass parity metrics against a NumPy reference and fairlearn's one-vs-rest MetricFrame."""

import jax
import numpy as np
import pytest

from fairjax import metrics, penalties


def _data(n, K, G, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, size=n)
    pred = np.where(rng.uniform(size=n) < 0.6, y, rng.integers(0, K, size=n))
    probs = rng.dirichlet(np.ones(K), size=n).astype(np.float32)
    s = rng.integers(0, G, size=n)
    w = rng.uniform(0.0, 2.0, size=n)
    return y, pred, probs, s, w


def _np_gaps(y, P, s, w, K, G, conditions):
    """Per class, the largest gap over the criterion's conditions (None, 1, 0)."""
    Y = np.eye(K)[y]
    out = np.zeros(K)
    for k in range(K):
        for c in conditions:
            mask = np.ones(len(s)) if c is None else (Y[:, k] if c == 1 else 1 - Y[:, k])
            rates = []
            for g in range(G):
                den = np.sum(w * mask * (s == g))
                if den > 0:
                    rates.append(np.sum(w * mask * (s == g) * P[:, k]) / den)
            if len(rates) >= 2:
                out[k] = max(out[k], max(rates) - min(rates))
    return out


CONDITIONS = {
    "demographic_parity": (None,),
    "equal_opportunity": (1,),
    "false_positive_parity": (0,),
    "equalized_odds": (1, 0),
}


@pytest.mark.parametrize("criterion", list(CONDITIONS))
@pytest.mark.parametrize(("K", "G"), [(3, 2), (4, 5)])
@pytest.mark.parametrize("kind", ["ids", "probabilities"])
def test_equal_numpy_reference_with_weights(criterion, K, G, kind):
    y, pred, probs, s, w = _data(400, K, G, seed=K + G)
    y_pred = pred if kind == "ids" else probs
    P = np.eye(K)[pred] if kind == "ids" else probs.astype(np.float64)
    want = _np_gaps(y, P, s, w, K, G, CONDITIONS[criterion])
    got = metrics.multiclass_parity_difference(
        y, y_pred, s, num_classes=K, num_groups=G, weights=w, criterion=criterion, per_class=True
    )
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    worst = metrics.multiclass_parity_difference(
        np.eye(K)[y], y_pred, s, num_classes=K, num_groups=G, weights=w, criterion=criterion
    )  # one-hot labels give the same value
    np.testing.assert_allclose(float(worst), want.max(), rtol=1e-5, atol=1e-6)


def test_per_class_equals_fairlearn_one_vs_rest():
    fm = pytest.importorskip("fairlearn.metrics")
    y, pred, _, s, _ = _data(600, 4, 3, seed=1)
    dp = metrics.multiclass_parity_difference(
        None, pred, s, num_classes=4, num_groups=3, per_class=True
    )
    eo = metrics.multiclass_parity_difference(
        y, pred, s, num_classes=4, num_groups=3, criterion="equal_opportunity", per_class=True
    )
    for k in range(4):
        yk, pk = (y == k).astype(int), (pred == k).astype(int)
        sel = fm.MetricFrame(metrics=fm.selection_rate, y_true=yk, y_pred=pk, sensitive_features=s)
        tpr = fm.MetricFrame(
            metrics=fm.true_positive_rate, y_true=yk, y_pred=pk, sensitive_features=s
        )
        np.testing.assert_allclose(float(dp[k]), sel.difference(), rtol=1e-5)
        np.testing.assert_allclose(float(eo[k]), tpr.difference(), rtol=1e-5)


def test_two_classes_equal_the_binary_metric():
    y, pred, _, s, w = _data(300, 2, 3, seed=2)
    multi = metrics.multiclass_parity_difference(
        y, pred, s, num_classes=2, num_groups=3, weights=w, criterion="equalized_odds"
    )
    binary = metrics.equalized_odds_difference(y, pred, s, num_groups=3, weights=w)
    np.testing.assert_allclose(float(multi), float(binary), rtol=1e-5)


def test_softmax_penalty_at_low_temperature_is_the_metric_of_the_argmax():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 4)).astype(np.float32)
    y, s = rng.integers(0, 4, size=200), rng.integers(0, 3, size=200)
    for criterion in ("demographic_parity", "equalized_odds"):
        soft = penalties.softmax_rate_difference(
            z, s, num_groups=3, labels=y, criterion=criterion, temperature=1e-4
        )
        hard = metrics.multiclass_parity_difference(
            y, z.argmax(1), s, num_classes=4, num_groups=3, criterion=criterion
        )
        np.testing.assert_allclose(float(soft), float(hard), atol=1e-5)
    grad = jax.grad(penalties.softmax_rate_difference)(z, s, num_groups=3, reduction="mean")
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


def test_empty_groups_and_absent_classes_are_left_out():
    y = np.array([0, 0, 1, 1, 0, 1])
    pred = np.array([0, 1, 1, 1, 0, 0])
    s = np.array([0, 0, 0, 1, 1, 1])
    base = metrics.multiclass_parity_difference(
        y, pred, s, num_classes=3, num_groups=2, criterion="equal_opportunity", per_class=True
    )
    padded = metrics.multiclass_parity_difference(
        y, pred, s, num_classes=3, num_groups=4, criterion="equal_opportunity", per_class=True
    )
    np.testing.assert_allclose(np.asarray(base), np.asarray(padded))
    assert float(base[2]) == 0.0  # no row of class 2: its TPR is undefined in every group


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: metrics.multiclass_parity_difference(None, [0, 3], [0, 1], num_classes=3,
                                                      num_groups=2), "class ids"),
        (lambda: metrics.multiclass_parity_difference(None, [0.5, 1.0], [0, 1], num_classes=3,
                                                      num_groups=2), "integer class ids"),
        (lambda: metrics.multiclass_parity_difference(None, np.ones((2, 4)) / 4, [0, 1],
                                                      num_classes=3, num_groups=2), "columns"),
        (lambda: metrics.multiclass_parity_difference(None, [0, 1], [0, 1], num_classes=2,
                                                      num_groups=2,
                                                      criterion="equal_opportunity"), "y_true"),
        (lambda: metrics.multiclass_parity_difference([0, 1, 1], [0, 1], [0, 1], num_classes=2,
                                                      num_groups=2,
                                                      criterion="equal_opportunity"), "y_true"),
        (lambda: metrics.multiclass_parity_difference(None, [0, 1], [0, 1], num_classes=0,
                                                      num_groups=2), "num_classes"),
        (lambda: penalties.softmax_rate_difference(np.zeros(3), [0, 1, 1], num_groups=2),
         "logits"),
        (lambda: penalties.softmax_rate_difference(np.zeros((3, 2)), [0, 1, 1], num_groups=2,
                                                   temperature=0.0), "temperature"),
        (lambda: penalties.softmax_rate_difference(np.array([[0.0, np.nan], [1.0, 0.0]]), [0, 1],
                                                   num_groups=2), "`logits` must be finite"),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ----------------------------------------------------------------------------- num_classes=


def _np_rate(y, h, w, name):
    """One group's one-vs-rest rate of a criterion, from the definitions (NaN if undefined)."""
    num, den = {
        "demographic_parity": (w * h, w),
        "equal_opportunity": (w * h * y, w * y),
        "false_positive_parity": (w * h * (1 - y), w * (1 - y)),
        "predictive_parity": (w * y * h, w * h),
        "false_omission_rate_parity": (w * y * (1 - h), w * (1 - h)),
        "accuracy_parity": (w * (y * h + (1 - y) * (1 - h)), w),
        "treatment_equality": (w * y * (1 - h), w * (1 - y) * h),
    }[name]
    return np.sum(num) / np.sum(den) if np.sum(den) > 0 else np.nan


def _np_worst_class(y, P, s, w, G, names, agg=max):
    """max over classes of agg over the criteria's gaps between groups (NumPy)."""
    K = P.shape[1]
    per_class = []
    for k in range(K):
        yk, hk = (y == k).astype(float), P[:, k].astype(float)
        gaps = []
        for name in names:
            r = [_np_rate(yk[s == g], hk[s == g], w[s == g], name) for g in range(G)]
            r = [x for x in r if np.isfinite(x)]
            gaps.append(max(r) - min(r) if len(r) >= 2 else 0.0)
        per_class.append(agg(gaps))
    return max(per_class)


def _mean(x):
    return sum(x) / len(x)


@pytest.mark.parametrize(("K", "G"), [(3, 2), (4, 3), pytest.param(5, 4, marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", ["ids", "probabilities"])
def test_rate_metrics_with_num_classes_equal_numpy(K, G, kind):
    y, pred, probs, s, w = _data(500, K, G, seed=10 * K + G)
    y_pred = pred if kind == "ids" else probs
    P = np.eye(K)[pred] if kind == "ids" else probs.astype(np.float64)
    names = np.array([f"group {chr(97 + g)}" for g in range(G)])[s]  # string labels
    kw = {"num_classes": K, "weights": w}
    cases = [
        (metrics.demographic_parity_difference(y_pred, names, **kw), ["demographic_parity"]),
        (metrics.equal_opportunity_difference(y, y_pred, names, **kw), ["equal_opportunity"]),
        (
            metrics.equalized_odds_difference(y, y_pred, names, **kw),
            ["equal_opportunity", "false_positive_parity"],
        ),
        (metrics.predictive_parity_difference(y, y_pred, names, **kw), ["predictive_parity"]),
        (
            metrics.false_omission_rate_difference(np.eye(K)[y], y_pred, s, num_groups=G, **kw),
            ["false_omission_rate_parity"],
        ),
        (metrics.accuracy_difference(y, y_pred, names, **kw), ["accuracy_parity"]),
        (metrics.treatment_equality_difference(y, y_pred, names, **kw), ["treatment_equality"]),
    ]
    for got, crits in cases:
        want = _np_worst_class(y, P, s, w, G, crits)
        np.testing.assert_allclose(float(got), want, rtol=2e-5, atol=2e-6, err_msg=str(crits))
    mean = metrics.equalized_odds_difference(y, y_pred, s, num_groups=G, agg="mean", **kw)
    want = _np_worst_class(y, P, s, w, G, ["equal_opportunity", "false_positive_parity"], _mean)
    np.testing.assert_allclose(float(mean), want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(("K", "G"), [(3, 2), pytest.param(5, 4, marks=pytest.mark.slow)])
def test_num_classes_equals_fairlearn_one_vs_rest_per_class(K, G):
    fm = pytest.importorskip("fairlearn.metrics")
    y, pred, _, s, w = _data(600, K, G, seed=K * G)
    names = np.array(["north", "south", "east", "west"])[s]
    sel, tpr, fpr = [], [], []
    for k in range(K):
        args = dict(
            y_true=(y == k).astype(int),
            y_pred=(pred == k).astype(int),
            sensitive_features=names,
            sample_params={"sample_weight": w},
        )
        sel.append(fm.MetricFrame(metrics=fm.selection_rate, **args).difference())
        tpr.append(fm.MetricFrame(metrics=fm.true_positive_rate, **args).difference())
        fpr.append(fm.MetricFrame(metrics=fm.false_positive_rate, **args).difference())
    kw = {"num_classes": K, "weights": w}
    per_class = metrics.multiclass_parity_difference(None, pred, names, per_class=True, **kw)
    np.testing.assert_allclose(np.asarray(per_class), sel, rtol=1e-5, atol=1e-7)
    dp = metrics.demographic_parity_difference(pred, names, **kw)
    eo = metrics.equal_opportunity_difference(y, pred, names, **kw)
    eodds = metrics.equalized_odds_difference(y, pred, names, **kw)
    np.testing.assert_allclose(float(dp), max(sel), rtol=1e-5)
    np.testing.assert_allclose(float(eo), max(tpr), rtol=1e-5)
    np.testing.assert_allclose(float(eodds), max(max(tpr), max(fpr)), rtol=1e-5)


def test_num_classes_stratified_and_under_jit():
    y, _, probs, s, w = _data(300, 3, 3, seed=5)
    strata = np.random.default_rng(5).integers(0, 2, size=300)
    got = metrics.conditional_statistical_parity_difference(
        probs, s, strata, num_groups=3, num_strata=2, num_classes=3, weights=w
    )
    want = max(
        _np_worst_class(y[strata == k], probs[strata == k], s[strata == k], w[strata == k], 3,
                        ["demographic_parity"])
        for k in range(2)
    )  # fmt: skip
    np.testing.assert_allclose(float(got), want, rtol=2e-5, atol=2e-6)

    def f(y, p, s, w):
        return metrics.equalized_odds_difference(y, p, s, num_groups=3, weights=w, num_classes=3)

    np.testing.assert_allclose(float(jax.jit(f)(y, probs, s, w)), float(f(y, probs, s, w)))


def test_without_num_classes_the_binary_metrics_are_unchanged():
    y, pred, _, s, w = _data(300, 2, 3, seed=6)
    kw = {"num_groups": 3, "weights": w}
    fm = pytest.importorskip("fairlearn.metrics")
    theirs = fm.demographic_parity_difference(y, pred, sensitive_features=s, sample_weight=w)
    np.testing.assert_allclose(float(metrics.demographic_parity_difference(pred, s, **kw)), theirs,
                               rtol=1e-5)  # fmt: skip
    # Two classes, one-vs-rest: DP of class 1 is the binary DP; EO over both classes is the
    # worst of the binary TPR gap (class 1) and the binary FPR gap (class 0's TPR is the TNR).
    two = metrics.demographic_parity_difference(pred, s, num_classes=2, **kw)
    np.testing.assert_allclose(float(two), theirs, rtol=1e-5)
    eo2 = metrics.equal_opportunity_difference(y, pred, s, num_classes=2, **kw)
    eodds = metrics.equalized_odds_difference(y, pred, s, **kw)
    np.testing.assert_allclose(float(eo2), float(eodds), rtol=1e-5)
    with pytest.raises(ValueError, match="y_pred"):  # (n, K) without num_classes: refused
        metrics.demographic_parity_difference(np.full((3, 2), 0.5), [0, 1, 1], num_groups=2)


_P = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: metrics.demographic_parity_difference([0, 1], [0, 1], num_classes=1),
         ValueError, "num_classes"),
        (lambda: metrics.demographic_parity_difference([0, 1], [0, 1], num_classes=2.0),
         TypeError, "num_classes"),
        (lambda: metrics.equal_opportunity_difference([0, 1], [0, 1], [0, 1], num_classes=True),
         TypeError, "num_classes"),
        (lambda: metrics.demographic_parity_difference([0, 3], [0, 1], num_classes=3),
         ValueError, r"`y_pred` must hold class ids in \[0, num_classes = 3\)"),
        (lambda: metrics.demographic_parity_difference([0, -1], [0, 1], num_classes=3),
         ValueError, "`y_pred` must hold class ids"),
        (lambda: metrics.equal_opportunity_difference([0, 5], [0, 1], [0, 1], num_classes=3),
         ValueError, "`y_true` must hold class ids"),
        (lambda: metrics.demographic_parity_difference(_P, [0, 1], num_classes=4),
         ValueError, "`y_pred` of shape \\(n, K\\) must have num_classes = 4 columns, got 3"),
        (lambda: metrics.demographic_parity_difference(_P[None], [0, 1], num_classes=3),
         ValueError, "y_pred"),
        (lambda: metrics.demographic_parity_difference(_P * 2, [0, 1], num_classes=3),
         ValueError, "y_pred"),
        (lambda: metrics.demographic_parity_difference(_P / 2, [0, 1], num_classes=3),
         ValueError, "`y_pred` of shape \\(n, K\\) must hold probabilities"),
        (lambda: metrics.equal_opportunity_difference(_P, _P, [0, 1], num_classes=3),
         ValueError, "y_true"),
        (lambda: metrics.equalized_odds_difference([0, 1, 2], _P, [0, 1], num_classes=3),
         ValueError, "y_true"),
        (lambda: metrics.demographic_parity_difference(_P, [0, 1, 1], num_classes=3),
         ValueError, "groups"),
        (lambda: metrics.conditional_statistical_parity_difference(
            [0, 1], [0, 1], [0, 0], num_groups=2, num_strata=1, num_classes=3,
            weights=[1.0, -1.0]), ValueError, "weights"),
    ],
)  # fmt: skip
def test_num_classes_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
