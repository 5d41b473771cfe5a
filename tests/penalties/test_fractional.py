"""Tests of penalties.fractional_rate_difference: the metric at hard decisions, the
linear-fractional gradient against a NumPy derivation, agreement with the decision-rate
surrogate, bad input."""

import jax
import numpy as np
import pytest

from fairjax import criteria, metrics, penalties


def _case(G=3, n=240, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, G, n)
    y = rng.integers(0, 2, n)
    f = rng.normal(size=n) + 0.5 * s - 0.3 + 0.8 * y
    f = np.where(np.abs(f) < 1e-2, 0.5, f).astype(np.float32)  # no logit at the boundary
    w = rng.uniform(0.2, 2.0, n).astype(np.float32)
    return f, y, s, w


SINGLE = [n for n, c in criteria.CRITERIA.items() if len(c.cell_rates) == 1]


@pytest.mark.parametrize("name", sorted(SINGLE))
@pytest.mark.parametrize("num_groups", [2, 4])
def test_value_at_hard_decisions_is_the_metric(name, num_groups):
    f, y, s, w = _case(num_groups, seed=num_groups)
    k = np.random.default_rng(1).integers(0, 3, len(f))
    strata = {"strata": k, "num_strata": 3} if criteria.CRITERIA[name].stratified else {}
    got = penalties.fractional_rate_difference(
        f,
        s,
        criterion=name,
        labels=y,
        num_groups=num_groups,
        weights=w,
        temperature=1e-4,
        **strata,
    )
    want = metrics.criterion_difference(
        y, (f > 0).astype(int), s, criterion=name, num_groups=num_groups, weights=w, **strata
    )
    np.testing.assert_allclose(float(got), float(want), rtol=1e-5, atol=1e-6)


def test_equalized_odds_sums_its_rates():
    f, y, s, w = _case(3, seed=2)
    got = penalties.fractional_rate_difference(
        f, s, criterion="equalized_odds", labels=y, num_groups=3, weights=w, temperature=1e-4
    )
    tpr = metrics.criterion_difference(
        y, f > 0, s, criterion="equal_opportunity", num_groups=3, weights=w
    )
    fpr = metrics.criterion_difference(
        y, f > 0, s, criterion="false_positive_parity", num_groups=3, weights=w
    )
    np.testing.assert_allclose(float(got), float(tpr + fpr), rtol=1e-5)


@pytest.mark.parametrize("name", ["demographic_parity", "equal_opportunity", "equalized_odds"])
@pytest.mark.parametrize("reduction", ["max", "squared"])
def test_rates_of_decisions_equal_the_sigmoid_surrogate(name, reduction):
    # A denominator that does not depend on the decisions: the linear-fractional form is the
    # plain rate, value and gradient.
    f, y, s, w = _case(3, seed=3)

    def ours(f):
        return penalties.fractional_rate_difference(
            f, s, criterion=name, labels=y, num_groups=3, weights=w, reduction=reduction
        )

    def theirs(f):
        return penalties.sigmoid_rate_difference(
            f, s, criterion=name, labels=y, num_groups=3, weights=w, reduction=reduction
        )

    np.testing.assert_allclose(ours(f), theirs(f), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(jax.grad(ours)(f), jax.grad(theirs)(f), rtol=1e-4, atol=1e-7)


def test_ppv_gradient_is_the_linear_fractional_one():
    f, y, s, w = _case(2, seed=5)
    T = 2.0

    def p(f):
        return penalties.fractional_rate_difference(
            f, s, criterion="predictive_parity", labels=y, num_groups=2, weights=w, temperature=T
        )

    got = np.asarray(jax.grad(p)(f), np.float64)
    # NumPy: a_g = sum w y h, b_g = sum w h over group g; c = sum a / sum b held fixed.
    h = 1 / (1 + np.exp(-f.astype(np.float64) / T))
    dh = h * (1 - h) / T
    a = np.array([np.sum((w * y * h)[s == g]) for g in range(2)])
    b = np.array([np.sum((w * h)[s == g]) for g in range(2)])
    c = a.sum() / b.sum()
    hi, lo = (1, 0) if a[1] / b[1] > a[0] / b[0] else (0, 1)
    want = np.zeros_like(h)
    for g, sign in ((hi, 1.0), (lo, -1.0)):
        m = s == g
        want[m] = sign * w[m] * dh[m] * (y[m] - c) / b[g]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    value = float(p(f))
    np.testing.assert_allclose(value, abs(a[1] / b[1] - a[0] / b[0]), rtol=1e-5)


def test_squared_matches_numpy():
    f, y, s, w = _case(3, seed=6)
    got = penalties.fractional_rate_difference(
        f,
        s,
        criterion="predictive_parity",
        labels=y,
        num_groups=3,
        weights=w,
        reduction="squared",
        temperature=1e-4,
    )
    h = (f > 0).astype(float)
    a = np.array([np.sum((w * y * h)[s == g]) for g in range(3)])
    b = np.array([np.sum((w * h)[s == g]) for g in range(3)])
    c = a.sum() / b.sum()
    np.testing.assert_allclose(float(got), np.sum((a / b - c) ** 2), rtol=1e-5)


def test_finite_gradient_with_an_empty_group_and_under_jit():
    f, y, s, w = _case(3, seed=7)
    w = np.where(s == 2, 0, w).astype(np.float32)  # group 2 empty

    @jax.jit
    def p(f):
        return penalties.fractional_rate_difference(
            f, s, criterion="treatment_equality", labels=y, num_groups=3, weights=w
        )

    g = jax.grad(p)(f)
    assert np.all(np.isfinite(g)) and np.isfinite(float(p(f)))
    assert np.all(np.asarray(g)[s == 2] == 0)


def test_nan_in_gives_nan_out():
    f, y, s, w = _case(2, seed=8)
    w = w.copy()
    w[0] = np.nan
    got = jax.jit(
        lambda w: penalties.fractional_rate_difference(
            f, s, criterion="predictive_parity", labels=y, num_groups=2, weights=w
        )
    )(w)
    assert np.isnan(float(got))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": "nope"}, "criterion"),
        ({"criterion": "predictive_parity", "labels": None}, "labels"),
        ({"criterion": "conditional_statistical_parity"}, "strata"),
        ({"strata": np.zeros(4, int), "num_strata": 1}, "strat"),
        ({"reduction": "mean"}, "reduction"),
        ({"temperature": 0.0}, "temperature"),
        ({"labels": np.array([0, 2, 1, 0])}, "labels"),
        ({"logits": np.array([0.0, np.inf, 1.0, 0.0])}, "logits"),
    ],
)
def test_bad_input(kwargs, match):
    args = {
        "logits": np.array([1.0, -1.0, 2.0, 0.5]),
        "groups": np.array([0, 0, 1, 1]),
        "criterion": "predictive_parity",
        "labels": np.array([1, 0, 1, 0]),
        "num_groups": 2,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        penalties.fractional_rate_difference(args.pop("logits"), args.pop("groups"), **args)
