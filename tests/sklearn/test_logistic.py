"""Tests of fairjax.sklearn.FairLogisticRegression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fairjax import metrics
from fairjax.sklearn import FairLogisticRegression
from tests.sklearn.common import estimator_checks, not_exact_under_weights

# Checks that do not apply, and why: the fit is a fixed number of full-batch Adam steps in
# float32 inside one compiled program; results agree to ~1e-6, not bit for bit, when the rows
# or their weights are rearranged.
test_sklearn_estimator_checks = estimator_checks(
    FairLogisticRegression(max_iter=100, learning_rate=0.1),
    not_exact_under_weights("float32 optimisation"),
)


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.choice(["f", "m"], n)
    X = rng.normal(size=(n, 3)) + (s == "m")[:, None] * np.array([1.0, 0.0, 0.0])
    y = (X[:, 0] + X[:, 1] + 0.5 * rng.normal(size=n) > 0.5).astype(int)
    return X, y, s


def _ids(s):
    return (np.asarray(s) == "m").astype(int)


@pytest.mark.slow
def test_unpenalised_matches_sklearn_logistic_regression():
    X, y, s = _data()
    ours = FairLogisticRegression(lam=0.0, alpha=0.0, max_iter=1500).fit(X, y, sensitive_features=s)
    ref = LogisticRegression(C=1e6, max_iter=2000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=2e-2, atol=2e-2)
    assert np.mean(ours.predict(X) == ref.predict(X)) > 0.99


@pytest.mark.slow
@pytest.mark.parametrize(
    "constraint", ["demographic_parity", "equal_opportunity", "equalized_odds"]
)
def test_target_is_met_on_training_data(constraint):
    # criterion= (positional), formerly constraint=
    X, y, s = _data()
    g = _ids(s)
    clf = FairLogisticRegression(constraint, target=0.03, max_iter=800).fit(
        X, y, sensitive_features=s
    )
    pred = clf.predict(X).astype(np.float32)
    gap = {
        "demographic_parity": lambda: metrics.demographic_parity_difference(pred, g, num_groups=2),
        "equal_opportunity": lambda: metrics.equal_opportunity_difference(y, pred, g, num_groups=2),
        "equalized_odds": lambda: metrics.equalized_odds_difference(y, pred, g, num_groups=2),
    }[constraint]()
    plain = LogisticRegression().fit(X, y).predict(X).astype(np.float32)
    assert metrics.demographic_parity_difference(plain, g, num_groups=2) > 0.2  # binds
    assert float(gap) <= 0.03 + 0.015
    assert clf.score(X, y) > 0.6
    assert clf.multiplier_.shape == ((2,) if constraint == "equalized_odds" else (1, 2, 2))


@pytest.mark.slow
def test_penalty_lowers_gap_pandas_and_pipeline():
    X, y, s = _data()
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    g = _ids(s)
    gaps = []
    for lam in (0.0, 10.0):
        clf = FairLogisticRegression(lam=lam, max_iter=400).fit(
            df, pd.Series(y), sensitive_features=pd.Series(s)
        )
        pred = clf.predict(df).astype(np.float32)
        gaps.append(float(metrics.demographic_parity_difference(pred, g, num_groups=2)))
    assert gaps[1] < gaps[0] - 0.1
    assert list(clf.feature_names_in_) == ["a", "b", "c"]
    assert list(clf.groups_) == ["f", "m"]
    pipe = make_pipeline(StandardScaler(), FairLogisticRegression(target=0.05, max_iter=300))
    pipe.fit(X, y, fairlogisticregression__sensitive_features=s)
    np.testing.assert_allclose(pipe.predict_proba(X).sum(1), 1.0)
    assert clone(clf).get_params() == clf.get_params()


def test_bad_inputs():
    X, y, s = _data(n=40)
    with pytest.raises(ValueError, match="`criterion`"):
        FairLogisticRegression("parity").fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="`target`"):
        FairLogisticRegression(target=-0.1).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="sensitive_features"):
        FairLogisticRegression().fit(X, y, sensitive_features=s[:-1])
    with pytest.raises(ValueError, match="binary or multiclass"):
        FairLogisticRegression().fit(X, np.linspace(0, 1, 40), sensitive_features=s)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(learning_rate=-1.0), ValueError, "`learning_rate` must be > 0"),
        (dict(learning_rate=0.0), ValueError, "`learning_rate` must be > 0"),
        (dict(learning_rate=float("nan")), ValueError, "`learning_rate` must be finite"),
        (dict(target=0.1, multiplier_learning_rate=-1.0), ValueError, "`multiplier_learning"),
        (dict(lam=float("inf")), ValueError, "`lam` must be finite"),
        (dict(max_iter=2.5), ValueError, "`max_iter` must be an integer"),
        (dict(max_iter="10"), TypeError, "`max_iter` must be an integer"),
        (dict(max_iter=True), ValueError, "`max_iter` must be an integer"),
    ],
)
def test_bad_hyperparameters_are_named_before_training(params, error, match):
    # Before, a negative or NaN learning rate trained a wrong or NaN model with a warning at
    # best, and max_iter=2.5 ran 2 steps.
    X, y, s = _data(n=40)
    with pytest.raises(error, match=match):
        FairLogisticRegression(**params).fit(X, y, sensitive_features=s)


def test_a_target_no_iterate_meets_warns_that_the_model_is_the_constant_start():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, 400)
    X = np.c_[rng.normal(size=400) + 2 * s, rng.normal(size=400)]
    y = (X[:, 0] + rng.normal(size=400) > 1).astype(int)
    clf = FairLogisticRegression(target=0.001, max_iter=3, learning_rate=0.5)
    with pytest.warns(RuntimeWarning, match="all-zero weights"):
        clf.fit(X, y, sensitive_features=s)
    assert clf.selected_step_ == 0 and not np.any(clf.coef_)
    assert FairLogisticRegression(max_iter=5).fit(X, y, sensitive_features=s).selected_step_ == 5


@pytest.mark.slow
def test_deprecated_constraint_keyword_warns_and_fits_the_same():
    X, y, s = _data(n=200)
    new = FairLogisticRegression("equal_opportunity", target=0.05, max_iter=200)
    old = FairLogisticRegression(constraint="equal_opportunity", target=0.05, max_iter=200)
    assert "constraint" in old.get_params() and clone(old).get_params() == old.get_params()
    new.fit(X, y, sensitive_features=s)
    with pytest.warns(DeprecationWarning, match="criterion"):
        old.fit(X, y, sensitive_features=s)
    np.testing.assert_array_equal(old.coef_, new.coef_)
    with pytest.raises(ValueError):
        FairLogisticRegression("equalized_odds", constraint="equal_opportunity").fit(
            X, y, sensitive_features=s
        )
