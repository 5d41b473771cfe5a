"""Tests of fairjax.metrics' per-group tables (against fairlearn's MetricFrame) and bootstrap."""

import functools

import fairlearn.metrics as flm
import jax
import numpy as np
import pytest

from fairjax import metrics as fm
from tests.metrics._cases import (
    check_bad_input,
    check_same_under_jit,
    check_sharded_equals_single_device,
    random_case,
)


def test_by_group_matches_fairlearn_metricframe():
    y_true, y_pred, groups, weights = random_case(3, seed=5)
    frame = flm.MetricFrame(
        metrics={
            "accuracy": lambda t, p, sample_weight: np.average(t == p, weights=sample_weight),
            "selection_rate": flm.selection_rate,
            "tpr": flm.true_positive_rate,
            "fpr": flm.false_positive_rate,
            "count": lambda t, p, sample_weight: np.sum(sample_weight),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
        sample_params={
            k: {"sample_weight": weights}
            for k in ["accuracy", "selection_rate", "tpr", "fpr", "count"]
        },
    )
    table = fm.by_group(y_true, y_pred, groups, num_groups=3, weights=weights)
    for name in ["accuracy", "selection_rate", "tpr", "fpr", "count"]:
        np.testing.assert_allclose(table[name], frame.by_group[name].to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(table["rmse"], np.sqrt(1 - table["accuracy"]), rtol=1e-5)


def test_by_group_regression():
    rng = np.random.default_rng(6)
    groups = rng.integers(0, 2, 100)
    y_true = rng.normal(size=100)
    y_pred = y_true + rng.normal(size=100) + groups
    table = fm.by_group(y_true, y_pred, groups, num_groups=2, task="regression")
    for g in range(2):
        err = (y_pred - y_true)[groups == g]
        np.testing.assert_allclose(table["rmse"][g], np.sqrt(np.mean(err**2)), rtol=1e-5)
        np.testing.assert_allclose(table["mae"][g], np.mean(np.abs(err)), rtol=1e-5)
        np.testing.assert_allclose(table["mean_prediction"][g], y_pred[groups == g].mean(), 1e-5)


def test_bootstrap_covers_and_is_reproducible():
    y_true, y_pred, groups, _ = random_case(2, n=2000, seed=9)
    metric = functools.partial(fm.equal_opportunity_difference, num_groups=2)
    res = fm.bootstrap(metric, y_true, y_pred, groups, key=jax.random.key(0), num_resamples=300)
    again = fm.bootstrap(metric, y_true, y_pred, groups, key=jax.random.key(0), num_resamples=300)
    np.testing.assert_array_equal(res.samples, again.samples)
    assert res.samples.shape == (300,)
    assert float(res.lower) < float(res.estimate) < float(res.upper)
    # The bootstrap standard error of a difference of two proportions is close to the analytic one.
    tpr = [y_pred[(groups == g) & (y_true == 1)].mean() for g in range(2)]
    npos = [((groups == g) & (y_true == 1)).sum() for g in range(2)]
    se = np.sqrt(sum(t * (1 - t) / m for t, m in zip(tpr, npos, strict=True)))
    assert 0.8 * se < float(np.std(res.samples)) < 1.2 * se


def test_bootstrap_of_a_table():
    y_true, y_pred, groups, _ = random_case(3, n=300, seed=10)
    metric = functools.partial(fm.by_group, num_groups=3)
    res = fm.bootstrap(metric, y_true, y_pred, groups, key=jax.random.key(1), num_resamples=50)
    assert res.samples["tpr"].shape == (50, 3)
    assert np.all(res.lower["accuracy"] <= res.upper["accuracy"])


@pytest.mark.parametrize(
    ("call", "match"),
    [(lambda: fm.by_group([1], [1], [0], num_groups=1, task="ranking"), "task")],
)
def test_bad_input_names_the_argument(call, match):
    check_bad_input(call, match)


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p, s, sc, w: fm.by_group(t, p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.by_group(t, sc, s, num_groups=3, weights=w, task="regression"),
    ],
)
def test_every_metric_same_under_jit(call):
    check_same_under_jit(call)


def test_sharded_equals_single_device():
    check_sharded_equals_single_device(
        lambda t, p, s, sc, w, ax: fm.by_group(t, p, s, num_groups=3, weights=w, axis_name=ax)
    )
