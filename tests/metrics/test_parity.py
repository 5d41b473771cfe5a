"""Tests of fairjax.metrics' parity metrics (DP, equal opportunity, equalized odds) against
fairlearn and hand-worked cases."""

import functools

import fairlearn.metrics as flm
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import metrics as fm
from tests.metrics._cases import (
    check_bad_input,
    check_same_under_jit,
    check_sharded_equals_single_device,
    check_zero_weights_equal_subset_and_empty_group,
    random_case,
)

FAIRLEARN_PAIRS = [
    (fm.equal_opportunity_difference, flm.equal_opportunity_difference, True),
    (fm.equalized_odds_difference, flm.equalized_odds_difference, True),
    (fm.demographic_parity_difference, flm.demographic_parity_difference, False),
    (fm.demographic_parity_ratio, flm.demographic_parity_ratio, False),
]


@pytest.mark.parametrize("num_groups", [2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("ours", "theirs", "needs_labels"), FAIRLEARN_PAIRS)
def test_matches_fairlearn(num_groups, weighted, ours, theirs, needs_labels):
    y_true, y_pred, groups, weights = random_case(num_groups, seed=int(weighted))
    w = weights if weighted else None
    want = theirs(y_true, y_pred, sensitive_features=groups, sample_weight=w)
    args = (y_true, y_pred, groups) if needs_labels else (y_pred, groups)
    got = ours(*args, num_groups=num_groups, weights=w)
    assert abs(float(got) - want) < 1e-6
    jitted = jax.jit(functools.partial(ours, num_groups=num_groups))(*args, weights=w)
    assert abs(float(jitted) - float(got)) < 1e-7


def test_equalized_odds_mean_matches_fairlearn():
    y_true, y_pred, groups, weights = random_case(3, seed=4)
    want = flm.equalized_odds_difference(
        y_true, y_pred, sensitive_features=groups, sample_weight=weights, agg="mean"
    )
    got = fm.equalized_odds_difference(
        y_true, y_pred, groups, num_groups=3, weights=weights, agg="mean"
    )
    assert abs(float(got) - want) < 1e-6


def test_zero_weights_equal_subset_and_empty_group():
    check_zero_weights_equal_subset_and_empty_group(
        lambda s, g, w: fm.demographic_parity_difference(
            (s > 0).astype(int), g, num_groups=3, weights=w
        )
    )


def test_single_nonempty_group_gives_zero_gap():
    y = jnp.array([1, 0, 1])
    s = jnp.array([1, 1, 1])
    assert float(fm.demographic_parity_difference(y, s, num_groups=3)) == 0.0
    assert float(fm.demographic_parity_ratio(y, s, num_groups=3)) == 1.0


def test_probabilities_give_expected_rates():
    proba = jnp.array([0.2, 0.6, 0.5, 0.5])
    s = jnp.array([0, 0, 1, 1])
    np.testing.assert_allclose(fm.demographic_parity_difference(proba, s, num_groups=2), 0.1)


def test_grad_of_soft_metric_is_finite_with_empty_group():
    s = jnp.array([0, 0, 1, 1])
    y = jnp.array([1, 1, 1, 1])

    def f(p, w):
        return fm.equal_opportunity_difference(y, p, s, num_groups=3, weights=w)

    g = jax.grad(f)(jnp.array([0.2, 0.6, 0.5, 0.4]), jnp.ones(4))
    assert np.all(np.isfinite(g))


BAD_INPUTS = [
    (lambda: fm.demographic_parity_difference([1, 0, 1], [0, 1], num_groups=2), "groups"),
    (lambda: fm.demographic_parity_difference([1, 0], [0, 2], num_groups=2), "groups"),
    (lambda: fm.demographic_parity_difference([1.0, np.nan], [0, 1], num_groups=2), "y_pred"),
    (lambda: fm.demographic_parity_difference([3.0, 1.0], [0, 1], num_groups=2), "y_pred"),
    (lambda: fm.equal_opportunity_difference([2, 0], [1, 0], [0, 1], num_groups=2), "y_true"),
    (lambda: fm.equal_opportunity_difference([1, 0, 1], [1, 0], [0, 1], num_groups=2), "y_true"),
    (lambda: fm.equalized_odds_difference([1], [1], [0], num_groups=1, agg="max"), "agg"),
    (lambda: fm.demographic_parity_difference([], [], num_groups=1), "empty"),
    (lambda: fm.demographic_parity_difference(["a"], [0], num_groups=1), "y_pred"),
]


@pytest.mark.parametrize(("call", "match"), BAD_INPUTS)
def test_bad_input_names_the_argument(call, match):
    check_bad_input(call, match)


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p, s, sc, w: fm.demographic_parity_difference(p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.demographic_parity_ratio(p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.equal_opportunity_difference(t, p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.equalized_odds_difference(t, p, s, num_groups=3, weights=w),
    ],
)
def test_every_metric_same_under_jit(call):
    check_same_under_jit(call)


SHARDED_METRICS = {
    "dp": lambda t, p, s, sc, w, ax: fm.demographic_parity_difference(
        p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "dp_ratio": lambda t, p, s, sc, w, ax: fm.demographic_parity_ratio(
        p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "eo": lambda t, p, s, sc, w, ax: fm.equal_opportunity_difference(
        t, p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "eodds": lambda t, p, s, sc, w, ax: fm.equalized_odds_difference(
        t, p, s, num_groups=3, weights=w, axis_name=ax
    ),
}


@pytest.mark.parametrize("name", sorted(SHARDED_METRICS))
def test_sharded_equals_single_device(name):
    check_sharded_equals_single_device(SHARDED_METRICS[name])


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int32", "float32"])
def test_parity_metrics_of_every_decision_dtype_agree(dtype):
    # Integer decisions are read as booleans (nonzero: positive) and counted exactly; float
    # decisions are averaged. On valid decisions (0 or 1) every dtype gives the same values,
    # eagerly and under jit, and they equal a NumPy reference.
    rng = np.random.default_rng(5)
    n, G = 9001, 3
    s = rng.integers(0, G, n)
    y = rng.integers(0, 2, n)
    d = (rng.random(n) < 0.2 + 0.3 * (s == 1)).astype(dtype)
    calls = {
        "dp": lambda d, s, y: fm.demographic_parity_difference(d, s, num_groups=G),
        "dp_ratio": lambda d, s, y: fm.demographic_parity_ratio(d, s, num_groups=G),
        "eo": lambda d, s, y: fm.equal_opportunity_difference(y, d, s, num_groups=G),
        "eodds": lambda d, s, y: fm.equalized_odds_difference(y, d, s, num_groups=G),
    }
    sel = np.array([d[s == k].astype(float).mean() for k in range(G)])
    tpr = np.array([d[(s == k) & (y == 1)].astype(float).mean() for k in range(G)])
    fpr = np.array([d[(s == k) & (y == 0)].astype(float).mean() for k in range(G)])
    want = {
        "dp": np.ptp(sel),
        "dp_ratio": sel.min() / sel.max(),
        "eo": np.ptp(tpr),
        "eodds": max(np.ptp(tpr), np.ptp(fpr)),
    }
    for name, call in calls.items():
        eager = call(d, s, y)
        jitted = jax.jit(call)(d, s, y)
        as_float = call(d.astype(np.float32), s, y)
        np.testing.assert_allclose(eager, want[name], rtol=1e-5, err_msg=name)
        np.testing.assert_array_equal(eager, jitted, err_msg=name)
        np.testing.assert_array_equal(eager, as_float, err_msg=name)


@pytest.mark.parametrize(
    "metric",
    [
        fm.equal_opportunity_difference,
        fm.equalized_odds_difference,
        # the confusion-matrix metrics (a review: their labels read NaN as negative)
        fm.false_negative_rate_difference,
        fm.accuracy_difference,
        fm.predictive_parity_difference,
    ],
)
def test_a_nan_label_under_jit_gives_nan_not_a_fair_gap(metric):
    # Group 1's positive labels lost as NaN: under jit (where the checks cannot run) the rows
    # left both rates and the gaps read 0, "fair". A NaN label of weight 0 is masked.
    g = jnp.array([0, 0, 0, 1, 1, 1])
    y_pred = jnp.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    y_true = jnp.array([1.0, 1.0, 0.0, jnp.nan, jnp.nan, 0.0])
    measure = jax.jit(lambda y, w: metric(y, y_pred, g, num_groups=2, weights=w))
    assert np.isnan(float(measure(y_true, jnp.ones(6))))
    masked = jnp.array([1.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    expected = metric(y_true.at[3:5].set(1.0), y_pred, g, num_groups=2, weights=masked)
    assert float(measure(y_true, masked)) == float(expected)
    with pytest.raises(ValueError, match=r"labels|y_true"):  # eagerly: refused by name
        metric(y_true, y_pred, g, num_groups=2)
