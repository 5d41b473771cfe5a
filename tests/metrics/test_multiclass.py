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
    ],
)  # fmt: skip
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
