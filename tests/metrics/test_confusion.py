"""Tests of fairjax.metrics' confusion-matrix criteria against NumPy, fairlearn and sklearn."""

import functools
import warnings

import fairlearn.metrics as flm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_score

from fairjax import criteria
from fairjax import metrics as fm
from tests.metrics._cases import check_bad_input, random_case

# The NumPy reference: each criterion's rate of one group's rows, from the definitions
# (not from fairjax's table of cells).
RATES = {
    "demographic_parity": lambda y, h, w: np.sum(w * h) / np.sum(w),
    "equal_opportunity": lambda y, h, w: np.sum(w * h * y) / np.sum(w * y),
    "false_positive_parity": lambda y, h, w: np.sum(w * h * (1 - y)) / np.sum(w * (1 - y)),
    "predictive_parity": lambda y, h, w: np.sum(w * y * h) / np.sum(w * h),
    "false_omission_rate_parity": lambda y, h, w: np.sum(w * y * (1 - h)) / np.sum(w * (1 - h)),
    "false_negative_rate_parity": lambda y, h, w: np.sum(w * (1 - h) * y) / np.sum(w * y),
    "true_negative_rate_parity": lambda y, h, w: (
        np.sum(w * (1 - h) * (1 - y)) / np.sum(w * (1 - y))
    ),
    "accuracy_parity": lambda y, h, w: np.sum(w * (y * h + (1 - y) * (1 - h))) / np.sum(w),
    "treatment_equality": lambda y, h, w: np.sum(w * y * (1 - h)) / np.sum(w * (1 - y) * h),
}
NAMED = {
    "predictive_parity": fm.predictive_parity_difference,
    "false_omission_rate_parity": fm.false_omission_rate_difference,
    "false_negative_rate_parity": fm.false_negative_rate_difference,
    "true_negative_rate_parity": fm.true_negative_rate_difference,
    "accuracy_parity": fm.accuracy_difference,
    "treatment_equality": fm.treatment_equality_difference,
}


def _np_gap(y, h, s, w, G, rate):
    vals = []
    for g in range(G):
        m = s == g
        with np.errstate(invalid="ignore", divide="ignore"):
            r = rate(y[m].astype(float), h[m].astype(float), w[m])
        if np.isfinite(r):
            vals.append(r)
    return max(vals) - min(vals) if len(vals) >= 2 else 0.0


# The full grid is slow (one compilation per case); the default run takes three corners.
_SLOW = pytest.mark.slow
GRID = [
    pytest.param(2, False),
    pytest.param(3, True),
    pytest.param(5, True),
    pytest.param(3, False, marks=_SLOW),
    pytest.param(5, False, marks=_SLOW),
    pytest.param(2, True, marks=_SLOW),
]


@pytest.mark.parametrize(("num_groups", "weighted"), GRID)
@pytest.mark.parametrize("name", sorted(RATES))
def test_matches_numpy(name, num_groups, weighted):
    y, h, s, w = random_case(num_groups, n=300, seed=3 + int(weighted))
    if weighted:  # weighted rows and probabilities (expected counts) in one case
        h = np.random.default_rng(num_groups).uniform(size=h.shape)
    w_np = w if weighted else np.ones_like(w)
    want = _np_gap(y, h, s, w_np, num_groups, RATES[name])
    got = fm.criterion_difference(
        y, h, s, criterion=name, num_groups=num_groups, weights=w if weighted else None
    )
    np.testing.assert_allclose(float(got), want, rtol=2e-5, atol=2e-6)
    if name in NAMED:
        named = NAMED[name](y, h, s, num_groups=num_groups, weights=w if weighted else None)
        assert float(named) == float(got)


@pytest.mark.parametrize("name", ["demographic_parity", "equal_opportunity", "equalized_odds"])
def test_equals_the_decision_rate_metrics(name):
    y, h, s, w = random_case(4, seed=2)
    old = {
        "demographic_parity": lambda: fm.demographic_parity_difference(
            h, s, num_groups=4, weights=w
        ),
        "equal_opportunity": lambda: fm.equal_opportunity_difference(
            y, h, s, num_groups=4, weights=w
        ),
        "equalized_odds": lambda: fm.equalized_odds_difference(y, h, s, num_groups=4, weights=w),
    }[name]()
    new = fm.criterion_difference(y, h, s, criterion=name, num_groups=4, weights=w)
    np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-7)


def _precision(y_true, y_pred, sample_weight=None):
    return precision_score(y_true, y_pred, sample_weight=sample_weight, zero_division=0)


# fairlearn's (or sklearn's) per-group metric of each criterion's rate.
FAIRLEARN = {
    "demographic_parity": flm.selection_rate,
    "equal_opportunity": flm.true_positive_rate,
    "false_positive_parity": flm.false_positive_rate,
    "false_negative_rate_parity": flm.false_negative_rate,
    "true_negative_rate_parity": flm.true_negative_rate,
    "accuracy_parity": accuracy_score,
    "predictive_parity": _precision,
}


@pytest.mark.parametrize(("num_groups", "weighted"), GRID)
@pytest.mark.parametrize("name", sorted(FAIRLEARN))
def test_matches_fairlearn_metricframe(name, num_groups, weighted):
    y, h, s, w = random_case(num_groups, seed=7 + int(weighted))
    w = w if weighted else None
    params = None if w is None else {"sample_weight": w}
    frame = flm.MetricFrame(
        metrics=FAIRLEARN[name],
        y_true=y,
        y_pred=h,
        sensitive_features=s,
        sample_params=params,
    )
    matrix = criteria.confusion_matrix(h, s, y, num_groups=num_groups, weights=w)
    rates, _ = criteria.confusion_rates(matrix, name)
    np.testing.assert_allclose(rates[0], frame.by_group.to_numpy(), rtol=1e-5, atol=1e-6)
    got = fm.criterion_difference(y, h, s, criterion=name, num_groups=num_groups, weights=w)
    np.testing.assert_allclose(float(got), frame.difference(), rtol=1e-5, atol=1e-6)


def test_group_without_the_denominator_is_left_out():
    # Group 1 makes no positive decision: it has no PPV (fairlearn/sklearn would say 0).
    y = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0])
    h = np.array([1, 1, 0, 0, 0, 0, 1, 0, 1])
    s = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    got = fm.predictive_parity_difference(y, h, s, num_groups=3)
    np.testing.assert_allclose(got, 0.0, atol=1e-7)  # groups 0 and 2 both have PPV 1/2
    assert float(fm.predictive_parity_difference(y, h, s[::-1].copy(), num_groups=3)) >= 0


def test_zero_weights_equal_the_subset():
    y, h, s, w = random_case(3, seed=5)
    keep = np.random.default_rng(0).uniform(size=len(y)) < 0.6
    for name in ("predictive_parity", "accuracy_parity", "treatment_equality"):
        masked = fm.criterion_difference(y, h, s, criterion=name, num_groups=3, weights=w * keep)
        subset = fm.criterion_difference(
            y[keep], h[keep], s[keep], criterion=name, num_groups=3, weights=w[keep]
        )
        np.testing.assert_allclose(masked, subset, rtol=1e-5, atol=1e-6)


def test_membership_matrix_equals_ids():
    y, h, s, _ = random_case(3, seed=9)
    ids = fm.criterion_difference(y, h, s, criterion="predictive_parity", num_groups=3)
    mat = fm.criterion_difference(
        y, h, np.eye(3, dtype=np.float32)[s], criterion="predictive_parity"
    )
    np.testing.assert_allclose(mat, ids, rtol=1e-6)


def test_conditional_statistical_parity_matches_numpy():
    rng = np.random.default_rng(4)
    n, G, K = 500, 3, 4
    s, k = rng.integers(0, G, n), rng.integers(0, K, n)
    h = (rng.uniform(size=n) < 0.2 + 0.15 * k + 0.05 * s).astype(int)
    w = rng.uniform(0.1, 2.0, n)
    want = max(
        _np_gap(
            0 * h[k == j],
            h[k == j],
            s[k == j],
            w[k == j],
            G,
            lambda y, h, w: np.sum(w * h) / np.sum(w),
        )
        for j in range(K)
    )
    got = fm.conditional_statistical_parity_difference(
        h, s, k, num_groups=G, num_strata=K, weights=w
    )
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # Parity within every stratum while the strata's rates differ: 0, though DP is not.
    h2 = (k >= 2).astype(int)
    assert (
        float(fm.conditional_statistical_parity_difference(h2, s, k, num_groups=G, num_strata=K))
        == 0
    )
    unequal_s = np.where(k >= 2, 0, s)
    assert float(fm.demographic_parity_difference(h2, unequal_s, num_groups=G)) > 0.5


def test_under_jit_and_vmap():
    y, h, s, w = random_case(3, seed=1)
    f = functools.partial(fm.criterion_difference, criterion="predictive_parity", num_groups=3)
    eager = f(y, h, s, weights=w)
    jitted = jax.jit(lambda w: f(y, h, s, weights=w))(w)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6)
    probs = jnp.stack([jnp.asarray(h, jnp.float32), jnp.full(len(h), 0.5)])
    batched = jax.vmap(lambda p: f(y, p, s))(probs)
    np.testing.assert_allclose(batched[0], f(y, h, s), rtol=1e-6)


def test_nan_in_gives_nan_out():
    y, h, s, w = random_case(2, seed=1)
    w = w.copy()
    w[3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = jax.jit(
            lambda w: fm.criterion_difference(
                y, h, s, criterion="predictive_parity", num_groups=2, weights=w
            )
        )(w)
    assert np.isnan(float(got))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": "nope"}, "criterion"),
        ({"criterion": "predictive_parity", "y_true": None}, "y_true"),
        ({"criterion": "conditional_statistical_parity"}, "strata"),
        ({"criterion": "predictive_parity", "strata": np.zeros(6, int), "num_strata": 1}, "strat"),
        ({"criterion": "predictive_parity", "y_pred": np.array([1, 0, 2, 1, 0, 0])}, "y_pred"),
        ({"criterion": "predictive_parity", "y_true": np.array([1, 0, 2, 1, 0, 0])}, "y_true"),
        ({"criterion": "predictive_parity", "groups": np.array([0, 0, 5, 1, 1, 1])}, "group"),
        ({"criterion": "predictive_parity", "agg": "median"}, "agg"),
        ({"criterion": "predictive_parity", "weights": -np.ones(6)}, "weights"),
    ],
)
def test_bad_input(kwargs, match):
    args = {
        "y_true": np.array([1, 0, 1, 1, 0, 0]),
        "y_pred": np.array([1, 1, 0, 1, 0, 0]),
        "groups": np.array([0, 0, 0, 1, 1, 1]),
        "num_groups": 2,
    }
    args.update(kwargs)
    check_bad_input(
        lambda: fm.criterion_difference(
            args.pop("y_true"), args.pop("y_pred"), args.pop("groups"), **args
        ),
        match,
    )
