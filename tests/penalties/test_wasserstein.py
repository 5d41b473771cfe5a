"""Tests of fairjax.penalties.wasserstein (sort-based W_p to the barycenter or pooled law)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fairjax import ot1d
from fairjax.penalties import wasserstein


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _data(n=40, num_groups=3, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, num_groups, size=n).astype(np.int32)
    f = (rng.normal(size=n) + s).astype(np.float32)
    w = rng.uniform(0.2, 2.0, size=n).astype(np.float32)
    return f, s, w


@pytest.mark.parametrize("p", [1, 2])
def test_pooled_matches_ot1d_and_pot(p):
    f, s, w = _data()
    got = wasserstein(f, s, num_groups=3, weights=w, p=p, reference="pooled", reduction="none")
    ot = pytest.importorskip("ot")
    for g in range(3):
        want = ot1d.wasserstein_distance(
            f[s == g], f, u_weights=w[s == g], v_weights=w, p=p, root=False
        )
        np.testing.assert_allclose(got[g], want, rtol=1e-5)
        ref = ot.wasserstein_1d(f[s == g], f, w[s == g] / w[s == g].sum(), w / w.sum(), p=p)
        np.testing.assert_allclose(got[g], ref, rtol=1e-4)


@pytest.mark.slow
def test_barycenter_matches_ot1d_barycenter_and_means():
    f, s, w = _data()
    got = wasserstein(f, s, num_groups=3, weights=w, reduction="none")
    xs = np.stack([f] * 3)
    ws = np.stack([w * (s == g) for g in range(3)])
    props = ws.sum(1) / ws.sum()
    bary = ot1d.barycenter(xs, weights=ws, barycenter_weights=props)
    for g in range(3):
        want = ot1d.wasserstein_distance(
            f, bary.points, u_weights=ws[g], v_weights=bary.masses, p=2, root=False
        )
        np.testing.assert_allclose(got[g], want, rtol=1e-4, atol=1e-6)
    mean = wasserstein(f, s, num_groups=3, weights=w)
    np.testing.assert_allclose(mean, props @ np.asarray(got), rtol=1e-5)
    assert float(wasserstein(f, s, num_groups=3, weights=w, reduction="max")) == pytest.approx(
        float(np.max(got))
    )


def test_zero_when_groups_share_a_distribution_and_hand_case():
    x = jnp.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    s = jnp.array([0, 0, 0, 1, 1, 1])
    assert float(wasserstein(x, s, num_groups=2)) == 0.0
    # Two point masses at 0 and 2: barycenter at 1, each group at distance 1.
    y = jnp.array([0.0, 0.0, 2.0, 2.0])
    assert float(wasserstein(y, jnp.array([0, 0, 1, 1]), num_groups=2, p=2)) == 1.0


def test_masked_equals_subset_labels_and_membership():
    f, s, w = _data(seed=1)
    keep = np.random.default_rng(2).uniform(size=f.size) < 0.6
    masked = wasserstein(f, s, num_groups=3, weights=w * keep)
    subset = wasserstein(f[keep], s[keep], num_groups=3, weights=w[keep])
    np.testing.assert_allclose(masked, subset, rtol=1e-5)
    y = keep.astype(np.int32)
    cond = wasserstein(f, s, num_groups=3, weights=w, labels=y, condition="positive")
    np.testing.assert_allclose(cond, subset, rtol=1e-5)
    onehot = jax.nn.one_hot(s, 3)
    np.testing.assert_allclose(
        wasserstein(f, onehot, weights=w), wasserstein(f, s, num_groups=3, weights=w), rtol=1e-6
    )


@pytest.mark.slow
def test_jit_empty_group_and_gradients(x64):
    f, s, w = _data(n=12, seed=3)
    f, w = jnp.asarray(f, jnp.float64), jnp.asarray(w, jnp.float64)
    s = np.where(s == 2, 0, s)  # group 2 empty
    for p, ref in [(2, "barycenter"), (1, "pooled")]:
        fn = jax.jit(
            lambda x, p=p, ref=ref: wasserstein(x, s, num_groups=3, weights=w, p=p, reference=ref)
        )
        assert np.isfinite(float(fn(f)))
        check_grads(fn, (f,), order=1, modes=["rev"], atol=1e-4, rtol=1e-4)
    g = jax.grad(lambda x: wasserstein(x, s, num_groups=3, reduction="max"))(f)
    assert np.all(np.isfinite(g))
    # At parity the gradient is finite (0), not NaN.
    same = jnp.array([0.0, 1.0, 0.0, 1.0])
    g0 = jax.grad(lambda x: wasserstein(x, jnp.array([0, 0, 1, 1]), num_groups=2, p=1.5))(same)
    assert np.all(np.isfinite(g0))


def test_penalty_decreases_under_gradient_descent():
    f, s, _ = _data(n=60, num_groups=2, seed=4)
    x = jnp.asarray(f)
    loss = jax.jit(lambda x: wasserstein(x, s, num_groups=2))
    start = float(loss(x))
    for _ in range(20):
        x = x - 15.0 * jax.grad(loss)(x)  # per-point gradients are O(1/n)
    assert float(loss(x)) < 0.1 * start


def test_bad_inputs():
    f, s, _ = _data()
    with pytest.raises(ValueError, match="`p`"):
        wasserstein(f, s, num_groups=3, p=0)
    with pytest.raises(ValueError, match="reference"):
        wasserstein(f, s, num_groups=3, reference="median")
    with pytest.raises(ValueError, match="groups"):
        wasserstein(f, s[:-1], num_groups=3)
    with pytest.raises(ValueError, match="groups"):
        wasserstein(f, s + 1, num_groups=3)
    with pytest.raises(ValueError, match="scores"):
        wasserstein(np.full(3, np.nan), s[:3], num_groups=3)
    with pytest.raises(ValueError, match="labels"):
        wasserstein(f, s, num_groups=3, criterion="equal_opportunity")


def test_criterion_replaces_deprecated_condition():
    f, s, w = _data(seed=5)
    y = (np.random.default_rng(6).uniform(size=f.size) < 0.5).astype(np.int32)
    new = wasserstein(f, s, num_groups=3, weights=w, labels=y, criterion="equal_opportunity")
    with pytest.warns(DeprecationWarning, match="condition"):
        old = wasserstein(f, s, num_groups=3, weights=w, labels=y, condition="positive")
    np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("reference", ["barycenter", "pooled"])
def test_equalized_odds_is_the_sum_of_its_two_terms(reference):
    f, s, w = _data(seed=7)
    y = (np.random.default_rng(8).uniform(size=f.size) < 0.5).astype(np.int32)

    def pen(x, crit):
        kw = dict(num_groups=3, weights=w, labels=y, reference=reference)
        return wasserstein(x, s, criterion=crit, **kw)

    x = jnp.asarray(f)
    eo, g_eo = jax.value_and_grad(pen)(x, "equalized_odds")
    tp, g_tp = jax.value_and_grad(pen)(x, "equal_opportunity")
    fp, g_fp = jax.value_and_grad(pen)(x, "false_positive_parity")
    np.testing.assert_allclose(eo, tp + fp, rtol=1e-6)
    np.testing.assert_allclose(g_eo, g_tp + g_fp, rtol=1e-6, atol=1e-9)
    assert float(tp) > 0 and float(fp) > 0
