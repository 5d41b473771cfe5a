"""Tests of fairjax.sklearn.WassersteinFairRegressor."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeRegressor

from fairjax.metrics import ks_unfairness
from fairjax.sklearn import WassersteinFairRegressor
from tests.sklearn.common import estimator_checks, not_exact_under_weights

# Checks that do not apply, and why:
_JITTER = (
    "the jitter U[-sigma, sigma] and the random tie-break are drawn per query position (the "
    "paper's randomised estimator), so a row's output depends on its position in the batch "
    "whenever a calibration score lies within sigma of it"
)
# Weights enter the calibration (p_s, F_s, Q_s); the base model is trained on a random split
# of the rows, which changes when rows are repeated or removed.
EXPECTED_FAILED_CHECKS = not_exact_under_weights("random train/calibration split") | {
    "check_methods_sample_order_invariance": _JITTER,
    "check_methods_subset_invariance": _JITTER,
}

# A cheap configuration: Ridge base model, no split (the checks' small data sets would leave
# single-row halves), one group (the checks pass no sensitive features).
test_sklearn_estimator_checks = estimator_checks(
    WassersteinFairRegressor(Ridge(), split=False, random_state=0), EXPECTED_FAILED_CHECKS
)


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["a", "b", "c"]), size=n)
    code = (s == "b") + 2 * (s == "c")
    X = np.c_[rng.normal(size=(n, 2)), code]
    y = X[:, 0] + 0.5 * X[:, 1] + code + 0.1 * rng.normal(size=n)
    return X, y, s, code.astype(np.int32)


@pytest.mark.slow
def test_unfitted_estimator_is_trained_and_outputs_are_fair():
    X, y, s, _code = _data()
    reg = WassersteinFairRegressor(Ridge(alpha=1.0), random_state=0)
    assert reg.get_params()["estimator"].alpha == 1.0  # __init__ stores only
    reg.fit(X, y, sensitive_features=s)
    assert hasattr(reg, "estimator_") and hasattr(reg, "state_")
    assert reg.n_features_in_ == 3
    assert list(reg.groups_) == ["a", "b", "c"]
    Xt, _, st, ct = _data(seed=1)
    before = reg.estimator_.predict(Xt)
    pred = reg.predict(Xt, sensitive_features=st)
    assert float(ks_unfairness(before, ct, num_groups=3)) > 0.5
    assert float(ks_unfairness(pred, ct, num_groups=3)) < 0.2  # ~330 rows per group
    np.testing.assert_array_equal(pred, reg.predict(Xt, sensitive_features=st))  # reproducible
    partial = clone(reg).set_params(alpha=0.0).fit(X, y, sensitive_features=s)
    np.testing.assert_allclose(partial.predict(Xt, sensitive_features=st), before, rtol=1e-5)


@pytest.mark.slow
def test_prefit_estimator_and_classifier_scores():
    X, y, s, code = _data()
    base = LinearRegression().fit(X, y)
    reg = WassersteinFairRegressor(base, random_state=1).fit(X, sensitive_features=s)
    assert reg.estimator_ is base  # used as it is, all rows calibrate
    assert int(
        np.sum(np.asarray(reg.state_.cdf_count) + np.asarray(reg.state_.quantile_count))
    ) == len(y)
    clf = LogisticRegression().fit(X, (y > np.median(y)).astype(int))
    fair = WassersteinFairRegressor(clf, random_state=0).fit(X, sensitive_features=s)
    p = fair.predict(X, sensitive_features=s)
    assert p.min() >= -1e-3 and p.max() <= 1 + 1e-3
    assert float(ks_unfairness(p, code, num_groups=3)) < 0.2


@pytest.mark.slow
def test_two_sensitive_columns_and_errors():
    X, y, s, _code = _data()
    other = (X[:, 0] > 0).astype(int)
    reg = WassersteinFairRegressor(Ridge(), random_state=0)
    reg.fit(X, y, sensitive_features=np.c_[s, other])
    assert len(reg.groups_) == 6
    with pytest.raises(ValueError, match="not seen at fit time"):
        WassersteinFairRegressor(Ridge()).fit(X, y, sensitive_features=s).predict(
            X[:3], sensitive_features=["a", "b", "z"]
        )
    with pytest.raises(ValueError, match="alpha"):
        WassersteinFairRegressor(Ridge(), alpha=2.0).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="sensitive_features"):
        WassersteinFairRegressor(Ridge()).fit(X, y, sensitive_features=s[:-1])
    # Without sensitive features there is one group; then none may be given at predict time.
    one = WassersteinFairRegressor(Ridge(), random_state=0).fit(X, y)
    assert one.predict(X).shape == (len(y),)
    with pytest.raises(ValueError, match="sensitive_features"):
        one.predict(X, sensitive_features=s)
    with pytest.raises(ValueError, match="sensitive_features"):
        reg.predict(X)


@pytest.mark.parametrize("row", [0, 1, 2, 3])
def test_nan_in_y_is_refused_whichever_side_of_the_split_it_falls(row):
    # Before, only a NaN on the estimator's training side was caught (by the estimator).
    X, y, s, _code = _data()
    y = np.asarray(y, float).copy()
    y[row] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        WassersteinFairRegressor(Ridge(), random_state=0).fit(X, y, sensitive_features=s)


@pytest.mark.parametrize("size", [0.0, 1.0, 1, True, 10**6])
def test_bad_calibration_size_is_named(size):
    X, y, s, _code = _data()
    reg = WassersteinFairRegressor(Ridge(), random_state=0, calibration_size=size)
    with pytest.raises(ValueError, match="`calibration_size`"):
        reg.fit(X, y, sensitive_features=s)


@pytest.mark.parametrize("offset", [0.0, 1000.0, 1e6])
def test_tree_scores_in_the_thousands_are_made_fair(offset):
    # A depth-3 tree predicts 8 values (atoms); the estimator passes float32 scores, where the
    # jitter 1e-5 vanishes above ~100: ties must still be broken (the old code: KS 0.33).
    rng = np.random.default_rng(4)
    n = 4000
    s = rng.integers(0, 2, n)
    X = np.c_[rng.normal(size=(n, 2)), s]
    y = offset + 300 * (X[:, 0] + s) + 30 * rng.normal(size=n)
    reg = WassersteinFairRegressor(DecisionTreeRegressor(max_depth=3), random_state=0)
    reg.fit(X[:2000], y[:2000], sensitive_features=s[:2000])
    base = reg.estimator_.predict(X[2000:])
    pred = reg.predict(X[2000:], sensitive_features=s[2000:])
    assert float(ks_unfairness(base, s[2000:], num_groups=2)) > 0.5
    assert float(ks_unfairness(pred, s[2000:], num_groups=2)) < 0.1


def test_outputs_far_from_zero_keep_their_digits_and_alpha_0_is_the_estimator():
    # Targets near 2e7: cast to float32 the outputs kept 8 digits (alpha=0 moved them by up
    # to 0.5, R^2 0.9966 of 0.999999); the post-processor now computes on standardised
    # scores and returns float64.
    rng = np.random.default_rng(6)
    n = 2000
    s = rng.integers(0, 2, n)
    X = np.c_[rng.normal(size=n), s]
    y = 2e7 + 10 * X[:, 0] + 5 * s
    base = WassersteinFairRegressor(Ridge(), alpha=0.0, random_state=0)
    base.fit(X, y, sensitive_features=s)
    out = base.predict(X, sensitive_features=s)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, base.estimator_.predict(X))
    fair = clone(base).set_params(alpha=1.0).fit(X, y, sensitive_features=s)
    pred = fair.predict(X, sensitive_features=s)
    assert abs(pred[s == 0].mean() - pred[s == 1].mean()) < 1.5  # 5.0 before
    assert float(ks_unfairness(pred - 2e7, s, num_groups=2)) < 0.1
    # The same data at the origin gives the same fair outputs, shifted (to float32 precision
    # of the standardised scale: ~1e-6 of a spread of ~10).
    near = clone(fair).fit(X, y - 2e7, sensitive_features=s)
    np.testing.assert_allclose(pred - 2e7, near.predict(X, sensitive_features=s), atol=1e-4)
    half = clone(base).set_params(alpha=0.5).fit(X, y, sensitive_features=s)
    np.testing.assert_allclose(
        half.predict(X, sensitive_features=s), (out + pred) / 2, rtol=0, atol=1e-6
    )


def test_files_record_format_version_2_which_older_readers_refuse(tmp_path):
    # The state is fitted on standardised outputs: a reader of version 1 would apply it to
    # raw ones (predictions near 2, not 100), so the file says version 2.
    from fairjax import _persistence as io

    rng = np.random.default_rng(1)
    s = rng.integers(0, 2, 400)
    X = np.c_[rng.normal(size=400), s]
    reg = WassersteinFairRegressor(Ridge(), random_state=0)
    reg.fit(X, 100 + X[:, 0] + 2 * s, sensitive_features=s)
    path = tmp_path / "reg.npz"
    reg.save(path)
    kind = "fairjax.sklearn.WassersteinFairRegressor"
    assert io.load_arrays(path, kind=kind, version=2)[1]["format_version"] == 2
    with pytest.raises(ValueError, match="format version 2"):
        io.load_arrays(path, kind=kind, version=1)
    loaded = WassersteinFairRegressor.load(path, estimator=reg.estimator_)
    np.testing.assert_array_equal(
        loaded.predict(X, sensitive_features=s), reg.predict(X, sensitive_features=s)
    )
