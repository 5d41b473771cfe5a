"""Tests of fairjax.sklearn.BoundedGroupLossRegressor."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.linear_model import LinearRegression

from fairjax import metrics
from fairjax.sklearn import BoundedGroupLossRegressor
from tests.sklearn.common import estimator_checks

# Without a bound the fit is weighted least squares in closed form: every check applies.
test_sklearn_estimator_checks = estimator_checks(BoundedGroupLossRegressor(), {})

# With a bound (inactive on the checks' data: one group), the primal-dual fit runs from the
# least-squares solution. Each fit compiles the training program again (an array target is not
# a cache key of fit_constrained): slow.
_bounded_checks = estimator_checks(BoundedGroupLossRegressor(target=1e6, max_iter=20), {})
test_sklearn_estimator_checks_with_a_bound = pytest.mark.slow(_bounded_checks)


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    s = np.where(rng.uniform(size=n) < 0.25, "minority", "majority")
    X = rng.normal(size=(n, 3))
    # The groups' targets follow different coefficients: least squares fits the larger group.
    coef = np.where((s == "minority")[:, None], [0.2, -0.5, 1.0], [1.0, -0.5, 0.3])
    y = 10 + 3 * (np.sum(X * coef, axis=1) + 0.3 * rng.normal(size=n))  # not standardised
    return X, y, s, rng.uniform(0.5, 2.0, n)


def test_without_a_bound_it_is_weighted_least_squares():
    X, y, s, w = _data()
    ours = BoundedGroupLossRegressor().fit(X, y, sensitive_features=s, sample_weight=w)
    ref = LinearRegression().fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-8)
    g = (s == "minority").astype(int)
    worst = metrics.worst_group_loss(y, ours.predict(X), g, num_groups=2, weights=w)
    np.testing.assert_allclose(ours.group_loss_.max(), float(worst), rtol=1e-5)
    assert list(ours.groups_) == ["majority", "minority"] and ours.satisfied_
    assert ours.n_iter_ == 1 and np.all(ours.multiplier_ == 0)


@pytest.mark.slow  # two compiled primal-dual fits (~10 s on a busy CPU)
@pytest.mark.parametrize("loss", ["squared", "absolute"])
def test_the_bound_holds_on_the_training_data(loss):
    X, y, s, w = _data()
    free = BoundedGroupLossRegressor(loss=loss).fit(X, y, sensitive_features=s, sample_weight=w)
    assert free.group_loss_[1] > 1.5 * free.group_loss_[0]  # the minority is served worse
    bound = 0.8 * free.group_loss_.max()
    reg = BoundedGroupLossRegressor(bound, loss=loss, max_iter=1500).fit(
        X, y, sensitive_features=s, sample_weight=w
    )
    g = (s == "minority").astype(int)
    measured = metrics.worst_group_loss(
        y, reg.predict(X), g, num_groups=2, weights=w,
        loss="squared" if loss == "squared" else "absolute",
    )  # fmt: skip
    np.testing.assert_allclose(reg.group_loss_.max(), float(measured), rtol=1e-5)
    assert reg.satisfied_ and reg.group_loss_.max() <= bound * 1.001
    assert reg.multiplier_.shape == (2,) and reg.multiplier_[1] > 0  # the bound is active
    # It costs the majority: its loss rises above the unconstrained one.
    assert reg.group_loss_[0] > free.group_loss_[0]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"target": -1.0}, "target"),
        ({"loss": "huber"}, "loss"),
        ({"alpha": -1.0}, "alpha"),
        ({"max_iter": 0}, "max_iter"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"max_iter": 2.7}, "max_iter"),  # not truncated to 2 steps
        ({"alpha": float("inf")}, "alpha"),
        ({"multiplier_learning_rate": float("nan")}, "multiplier_learning_rate"),
    ],
)
def test_bad_parameters_name_the_argument(params, match):
    X, y, s, _ = _data(50)
    with pytest.raises(ValueError, match=match):
        BoundedGroupLossRegressor(**params).fit(X, y, sensitive_features=s)


def test_save_and_load_give_the_same_predictions(tmp_path):
    X, y, s, _ = _data(200)
    reg = BoundedGroupLossRegressor().fit(X, y, sensitive_features=s)
    reg.save(tmp_path / "bgl.npz")
    loaded = BoundedGroupLossRegressor.load(tmp_path / "bgl.npz")
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    np.testing.assert_array_equal(loaded.group_loss_, reg.group_loss_)
