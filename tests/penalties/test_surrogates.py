"""Tests of fairjax.penalties.mean_difference and sigmoid_rate_difference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fairjax import metrics
from fairjax.penalties import mean_difference, sigmoid_rate_difference


def _data(n=60, G=3, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=n)
    s = rng.integers(0, G, n)
    y = rng.integers(0, 2, n)
    w = rng.uniform(0.5, 2.0, n)
    return f, s, y, w


def _ref(values, s, G, y=None, label=None, w=None, reduction="max"):
    """Independent numpy reference: boolean indexing, per-group weighted averages."""
    w = np.ones_like(values) if w is None else w
    keep = np.ones(len(values), bool) if label is None else (y == label)
    means, counts = [], []
    for g in range(G):
        m = keep & (s == g) & (w > 0)
        if m.any():
            means.append(np.average(values[m], weights=w[m]))
            counts.append(w[m].sum())
    means, counts = np.array(means), np.array(counts)
    if len(means) < 2:
        return 0.0
    if reduction == "max":
        return means.max() - means.min()
    pooled = np.sum(counts * means) / counts.sum()
    return np.sum((means - pooled) ** 2)


@pytest.mark.parametrize("reduction", ["max", "squared"])
@pytest.mark.parametrize(
    "criterion,label",
    [("demographic_parity", None), ("equal_opportunity", 1), ("false_positive_parity", 0)],
)
def test_mean_difference_matches_numpy(reduction, criterion, label):
    f, s, y, w = _data()
    got = mean_difference(
        f, s, num_groups=3, labels=y, weights=w, criterion=criterion, reduction=reduction
    )
    np.testing.assert_allclose(got, _ref(f, s, 3, y, label, w, reduction), rtol=1e-5)


@pytest.mark.parametrize("reduction", ["max", "squared"])
def test_sigmoid_rate_matches_numpy_and_tends_to_metric(reduction):
    f, s, y, _ = _data()
    T = 0.7
    got = sigmoid_rate_difference(
        f,
        s,
        num_groups=3,
        labels=y,
        criterion="equal_opportunity",
        temperature=T,
        reduction=reduction,
    )
    ref = _ref(1 / (1 + np.exp(-f / T)), s, 3, y, 1, None, reduction)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # T -> 0: the hard-decision metrics
    hard = (f > 0).astype(np.float32)
    dp = sigmoid_rate_difference(f, s, num_groups=3, temperature=1e-4)
    np.testing.assert_allclose(dp, metrics.demographic_parity_difference(hard, s, num_groups=3))
    eo = sigmoid_rate_difference(
        f, s, num_groups=3, labels=y, criterion="equal_opportunity", temperature=1e-4
    )
    ref_eo = metrics.equal_opportunity_difference(y, hard, s, num_groups=3)
    np.testing.assert_allclose(eo, ref_eo, atol=1e-6)


def test_mean_difference_on_decisions_equals_dp_metric():
    f, s, _, w = _data()
    hard = (f > 0).astype(np.float32)
    np.testing.assert_allclose(
        mean_difference(hard, s, num_groups=3, weights=w),
        metrics.demographic_parity_difference(hard, s, num_groups=3, weights=w),
        rtol=1e-6,
    )


def test_membership_matrix_equals_ids():
    f, s, _, _ = _data()
    M = jax.nn.one_hot(s, 3)
    for fn in (mean_difference, sigmoid_rate_difference):
        np.testing.assert_allclose(fn(f, M), fn(f, s, num_groups=3), rtol=1e-6)


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
@pytest.mark.parametrize("reduction", ["max", "squared"])
def test_jit_equals_eager(fn, reduction):
    f, s, y, w = _data()
    kw = dict(num_groups=3, criterion="equal_opportunity", reduction=reduction)
    jitted = jax.jit(lambda f, s, y, w: fn(f, s, labels=y, weights=w, **kw))
    np.testing.assert_allclose(jitted(f, s, y, w), fn(f, s, labels=y, weights=w, **kw), rtol=1e-6)


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
@pytest.mark.parametrize("reduction", ["max", "squared"])
def test_check_grads_float64(fn, reduction):
    f, s, y, w = _data(n=24)
    with jax.enable_x64(True):
        f64, w64 = jnp.asarray(f, jnp.float64), jnp.asarray(w, jnp.float64)
        s_, y_ = jnp.asarray(s), jnp.asarray(y)
        check_grads(
            lambda x: fn(x, s_, num_groups=3, labels=y_, weights=w64, reduction=reduction),
            (f64,),
            order=1,
            modes=["rev"],
            eps=1e-6,
        )
        check_grads(
            lambda ww: fn(f64, s_, num_groups=3, weights=ww, reduction=reduction),
            (w64,),
            order=1,
            modes=["rev"],
            eps=1e-6,
        )
        assert fn(f64, s_, num_groups=3).dtype == jnp.float64


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
@pytest.mark.parametrize("reduction", ["max", "squared"])
def test_empty_groups_finite_value_and_grad(fn, reduction):
    f, s, _, _ = _data()
    s = np.where(s == 1, 0, s)  # group 1 empty
    g = jax.grad(lambda x: fn(x, s, num_groups=4, reduction=reduction))(jnp.asarray(f))
    assert np.all(np.isfinite(g))
    ref_vals = 1 / (1 + np.exp(-f)) if fn is sigmoid_rate_difference else f
    np.testing.assert_allclose(
        fn(f, s, num_groups=4, reduction=reduction),
        _ref(ref_vals, s, 4, reduction=reduction),
        rtol=1e-5,
    )
    # one group only, and all rows masked out of the conditioning: 0 with zero gradient
    one = np.zeros_like(s)
    assert float(fn(f, one, num_groups=2, reduction=reduction)) == 0.0
    g1 = jax.grad(lambda x: fn(x, one, num_groups=2, reduction=reduction))(jnp.asarray(f))
    np.testing.assert_array_equal(g1, 0.0)


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
def test_masked_equals_subset(fn):
    f, s, y, _ = _data(n=80)
    keep = np.arange(80) < 50
    masked = fn(
        f, s, num_groups=3, labels=y, criterion="equal_opportunity", weights=keep.astype(float)
    )
    subset = fn(f[keep], s[keep], num_groups=3, labels=y[keep], criterion="equal_opportunity")
    np.testing.assert_allclose(masked, subset, rtol=1e-6)


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
@pytest.mark.parametrize("sizes", [(9782, 20380), (15077, 15085), (3, 7)])
def test_equal_group_means_are_a_tie_with_zero_subgradient(fn, sizes):
    # Equal scores (the zero logits of a zero-initialised model) give every group the same
    # mean, but float32 sums and divisions can leave an ulp between the groups (0.49999997 vs
    # 0.5 at Adult's group sizes). The "max" gap must treat that as the tie it is: the sign of
    # an ulp would otherwise pick the subgradient, and a vmapped sweep and a separate training
    # would take opposite first steps.
    rng = np.random.default_rng(7)
    s = jnp.asarray(rng.permutation(np.repeat([0, 1], sizes)))
    scores = jnp.zeros(sum(sizes)) if fn is sigmoid_rate_difference else jnp.full(sum(sizes), 0.3)

    def gap(x):
        return fn(x, s, num_groups=2)

    value, grad = jax.jit(jax.value_and_grad(gap))(scores)
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(gap)))(jnp.stack([scores, scores]))
    for v in (value, values, grad, grads):
        np.testing.assert_array_equal(v, 0)


def test_vmap_over_models_and_bfloat16():
    f, s, _, _ = _data()
    F = jnp.stack([jnp.asarray(f), 2 * jnp.asarray(f)])
    out = jax.vmap(lambda x: mean_difference(x, s, num_groups=3))(F)
    np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-5)
    assert mean_difference(jnp.asarray(f, jnp.bfloat16), s, num_groups=3).dtype == jnp.float32


def test_bad_input():
    f, s, y, _ = _data()
    with pytest.raises(ValueError, match="`criterion`"):
        mean_difference(f, s, num_groups=3, criterion="tpr")
    with pytest.raises(ValueError, match="`reduction`"):
        mean_difference(f, s, num_groups=3, reduction="mean")
    with pytest.raises(ValueError, match="`labels` are required"):
        mean_difference(f, s, num_groups=3, criterion="equal_opportunity")
    with pytest.raises(ValueError, match="`temperature`"):
        sigmoid_rate_difference(f, s, num_groups=3, temperature=0.0)
    with pytest.raises(ValueError, match="`scores` must be finite"):
        mean_difference(np.array([np.nan, 1.0]), np.array([0, 1]), num_groups=2)
    with pytest.raises(ValueError, match="`labels` must be binary"):
        mean_difference(f, s, num_groups=3, labels=y + 1, criterion="equal_opportunity")
    with pytest.raises(ValueError, match="`groups` ids"):
        mean_difference(f, s, num_groups=2)
    with pytest.raises(ValueError, match="rank 1"):
        sigmoid_rate_difference(f[:, None], s, num_groups=3)


def _fairret_norm_loss(logits, s, G, p, y=None):
    """NumPy transcription of fairret's ``NormLoss(PositiveRate() / TruePositiveRate(), p)``:
    the p-norm of ``|r_g / rbar - 1|`` with ``rbar`` the overall rate of the same rows."""
    prob = 1 / (1 + np.exp(-logits))
    keep = np.ones(len(prob), bool) if y is None else (y == 1)
    rbar = prob[keep].mean()
    rates = np.array([prob[keep & (s == g)].mean() for g in range(G)])
    return np.linalg.norm(np.abs(rates / rbar - 1), ord=p), rbar


@pytest.mark.parametrize("G", [2, 3, 5])
@pytest.mark.parametrize("criterion", ["demographic_parity", "equal_opportunity"])
def test_squared_rate_gap_is_fairret_norm_loss_times_overall_rate(G, criterion):
    """sum_g (r_g - rbar)^2 = (rbar * NormLoss(p=2))^2, for any number of groups; for two
    groups, the max gap = rbar * NormLoss(p=1) (benchmarks/penalties_vs_fairret.py)."""
    f, s, y, _ = _data(n=400, G=G, seed=G)
    labels = y if criterion == "equal_opportunity" else None
    loss2, rbar = _fairret_norm_loss(f, s, G, 2, labels)
    with jax.enable_x64(True):  # the squared gap is small: compare without float32 rounding
        f64 = jnp.asarray(f, jnp.float64)
        got = sigmoid_rate_difference(
            f64, s, num_groups=G, labels=y, criterion=criterion, reduction="squared"
        )
        np.testing.assert_allclose(got, (rbar * loss2) ** 2, rtol=1e-10)
        if G == 2:
            loss1, _ = _fairret_norm_loss(f, s, G, 1, labels)
            got = sigmoid_rate_difference(f64, s, num_groups=G, labels=y, criterion=criterion)
            np.testing.assert_allclose(got, rbar * loss1, rtol=1e-10)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("criterion", ["demographic_parity", "equal_opportunity"])
def test_fairret_norm_loss_reference_matches_fairret(p, criterion):
    """The NumPy transcription above equals fairret itself (skipped without torch/fairret)."""
    pytest.importorskip("fairret")
    torch = pytest.importorskip("torch")
    from fairret.loss import NormLoss
    from fairret.statistic import PositiveRate, TruePositiveRate

    G = 3
    f, s, y, _ = _data(n=400, G=G, seed=1)
    sens = torch.nn.functional.one_hot(torch.as_tensor(s), G).double()
    logits = torch.tensor(f[:, None])
    if criterion == "demographic_parity":
        got = NormLoss(PositiveRate(), p=p)(logits, sens)
        want, _ = _fairret_norm_loss(f, s, G, p)
    else:
        label = torch.tensor(y[:, None], dtype=torch.float64)
        got = NormLoss(TruePositiveRate(), p=p)(logits, sens, label)
        want, _ = _fairret_norm_loss(f, s, G, p, y)
    np.testing.assert_allclose(got.item(), want, rtol=1e-10)


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
@pytest.mark.parametrize(
    "condition,criterion",
    [
        ("all", "demographic_parity"),
        ("positive", "equal_opportunity"),
        ("negative", "false_positive_parity"),
    ],
)
def test_deprecated_condition_warns_and_gives_the_criterion_value(fn, condition, criterion):
    f, s, y, w = _data()
    kw = dict(num_groups=3, labels=y, weights=w, reduction="squared")
    with pytest.warns(DeprecationWarning, match=f"criterion='{criterion}'"):
        old = fn(f, s, condition=condition, **kw)
    np.testing.assert_array_equal(old, fn(f, s, criterion=criterion, **kw))


def test_deprecated_condition_beside_criterion_or_unknown_raises():
    f, s, y, _ = _data()
    with pytest.raises(ValueError, match="give the criterion once"):
        mean_difference(
            f, s, num_groups=3, labels=y, criterion="equal_opportunity", condition="all"
        )
    with pytest.raises(ValueError, match="`condition`"):
        mean_difference(f, s, num_groups=3, condition="tpr")


@pytest.mark.parametrize("fn", [mean_difference, sigmoid_rate_difference])
@pytest.mark.parametrize("reduction", ["max", "squared"])
def test_equalized_odds_is_the_sum_of_its_two_conditions(fn, reduction):
    f, s, y, w = _data()
    kw = dict(num_groups=3, labels=y, weights=w, reduction=reduction)
    eodds = fn(f, s, criterion="equalized_odds", **kw)
    tpr = fn(f, s, criterion="equal_opportunity", **kw)
    fpr = fn(f, s, criterion="false_positive_parity", **kw)
    np.testing.assert_allclose(eodds, tpr + fpr, rtol=1e-6)
    ref = _ref(f if fn is mean_difference else 1 / (1 + np.exp(-f)), s, 3, y, 1, w, reduction)
    ref += _ref(f if fn is mean_difference else 1 / (1 + np.exp(-f)), s, 3, y, 0, w, reduction)
    np.testing.assert_allclose(eodds, ref, rtol=1e-5)
    g = jax.grad(lambda x: fn(x, s, criterion="equalized_odds", **kw))(jnp.asarray(f))
    g1 = jax.grad(lambda x: fn(x, s, criterion="equal_opportunity", **kw))(jnp.asarray(f))
    g0 = jax.grad(lambda x: fn(x, s, criterion="false_positive_parity", **kw))(jnp.asarray(f))
    np.testing.assert_allclose(g, g1 + g0, rtol=1e-5, atol=1e-7)


def test_equalized_odds_at_zero_temperature_is_the_sum_of_the_metric_gaps():
    f, s, y, _ = _data()
    hard = (f > 0).astype(np.float32)
    got = sigmoid_rate_difference(
        f, s, num_groups=3, labels=y, criterion="equalized_odds", temperature=1e-4
    )
    gaps = metrics.equalized_odds_difference(y, hard, s, num_groups=3, agg="mean")
    np.testing.assert_allclose(got, 2 * gaps, atol=1e-6)
