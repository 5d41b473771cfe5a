"""Tests of fairjax.losses against NumPy formulas: values, gradients, masks, dtypes, jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fairjax import losses


def _np_logistic(z, y):
    return np.log1p(np.exp(z)) - y * z


def _np_hinge(z, y):
    t = np.where(y == 1, 1.0, -1.0)
    return np.maximum(0.0, 1.0 - t * z)


def _np_squared_hinge(z, y):
    return _np_hinge(z, y) ** 2


def _np_squared(z, y):
    return (z - y) ** 2


REFERENCES = {
    "logistic": _np_logistic,
    "hinge": _np_hinge,
    "squared_hinge": _np_squared_hinge,
    "squared": _np_squared,
}


def _data(seed=0, n=50):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=n)
    y = rng.integers(0, 2, n).astype(float)
    return z, y


def test_losses_table_names_every_loss():
    assert set(losses.LOSSES) == set(REFERENCES)
    for name, fn in losses.LOSSES.items():
        assert fn is getattr(losses, name)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_loss_matches_numpy_formula_scalar_batched_and_jit(name):
    fn, ref = losses.LOSSES[name], REFERENCES[name]
    z, y = _data()
    with jax.enable_x64(True):
        got = fn(jnp.asarray(z), jnp.asarray(y))
        np.testing.assert_allclose(got, ref(z, y), rtol=1e-12, atol=1e-12)
        assert got.dtype == jnp.float64
    got32 = jax.jit(fn)(z.astype(np.float32), y.astype(np.float32))
    np.testing.assert_allclose(got32, ref(z, y), rtol=1e-5, atol=1e-6)
    scalar = fn(jnp.float32(z[0]), jnp.float32(y[0]))
    assert scalar.shape == ()
    np.testing.assert_allclose(scalar, ref(z[:1], y[:1])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_margin_losses_take_zero_one_and_plus_minus_one_labels(name):
    fn = losses.LOSSES[name]
    z, y = _data(1)
    np.testing.assert_array_equal(fn(z, y), fn(z, 2 * y - 1))


def test_logistic_is_stable_for_large_logits_and_matches_optax():
    optax = pytest.importorskip("optax")
    z = jnp.array([-200.0, -30.0, 0.0, 30.0, 200.0])
    y = jnp.array([1.0, 0.0, 0.3, 1.0, 0.0])
    got = losses.logistic(z, y)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, optax.sigmoid_binary_cross_entropy(z, y), rtol=1e-6)
    # gradient sigma(z) - y, 1/2 - y at z = 0
    g = jax.grad(lambda t: jnp.sum(losses.logistic(t, y)))(z)
    np.testing.assert_allclose(g, jax.nn.sigmoid(z) - y, atol=1e-6)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradients_match_finite_differences_float64(name):
    fn = losses.LOSSES[name]
    z, y = _data(2, n=12)
    # keep away from the hinge's kink at margin 1
    z = np.where(np.abs(np.abs(z) - 1) < 0.05, z + 0.2, z)
    with jax.enable_x64(True):
        check_grads(lambda t: jnp.sum(fn(t, jnp.asarray(y))), (jnp.asarray(z),), order=2)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_dtype_preserved(name):
    fn = losses.LOSSES[name]
    z, y = _data(3, n=8)
    assert fn(z.astype(np.float32), y).dtype == jnp.float32
    assert fn(jnp.asarray(z, jnp.bfloat16), y).dtype == jnp.bfloat16
    assert fn(np.arange(4), np.ones(4)).dtype == jnp.float32  # integers become floats
    with jax.enable_x64(True):
        assert fn(jnp.asarray(z), y).dtype == jnp.float64


def test_weighted_mean_matches_numpy_and_masked_equals_subset():
    rng = np.random.default_rng(4)
    x = rng.normal(size=30)
    w = rng.uniform(0.2, 2.0, 30)
    keep = rng.uniform(size=30) < 0.6
    np.testing.assert_allclose(
        losses.weighted_mean(x, weights=w), np.average(x, weights=w), rtol=1e-6
    )
    np.testing.assert_allclose(losses.weighted_mean(x), x.mean(), rtol=1e-6)
    masked = jax.jit(lambda a, b, m: losses.weighted_mean(a, weights=b, where=m))(x, w, keep)
    np.testing.assert_allclose(masked, losses.weighted_mean(x[keep], weights=w[keep]), rtol=1e-6)
    # zero weights mask too; a masked row may hold inf or NaN
    bad = np.where(keep, x, np.nan)
    np.testing.assert_allclose(
        losses.weighted_mean(bad, weights=w * keep),
        np.average(x[keep], weights=w[keep]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        losses.weighted_mean(np.where(keep, x, np.inf), where=keep), x[keep].mean(), rtol=1e-6
    )


def test_weighted_mean_of_several_losses_per_row_weights_rows():
    # (n, k) losses with (n,) weights: each entry counts with its row's weight (the weights
    # broadcast over the columns and weighted the wrong axis when n == k).
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(6, 6)), rng.uniform(0.0, 2.0, 6)
    keep = rng.uniform(size=(6, 6)) < 0.7
    expected = np.average(x, weights=np.broadcast_to(w[:, None], x.shape))
    np.testing.assert_allclose(losses.weighted_mean(x, weights=w), expected, rtol=1e-6)
    np.testing.assert_allclose(
        losses.weighted_mean(x, where=keep[:, 0]), x[keep[:, 0]].mean(), rtol=1e-6
    )
    np.testing.assert_allclose(losses.weighted_mean(x, where=keep), x[keep].mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="`where` must have shape"):
        losses.weighted_mean(x, where=keep[:3])
    with pytest.raises(ValueError, match="`weights` must have shape"):
        losses.weighted_mean(x[:, :3], weights=w[:3])


def test_weighted_mean_all_masked_is_zero_with_finite_gradient():
    x = jnp.array([1.0, 2.0, 3.0])
    w = jnp.array([0.5, 1.0, 2.0])
    none = jnp.zeros(3, bool)
    assert float(losses.weighted_mean(x, where=none)) == 0.0
    assert float(losses.weighted_mean(x, weights=jnp.zeros(3))) == 0.0
    gx, gw = jax.grad(lambda a, b: losses.weighted_mean(a, weights=b, where=none), (0, 1))(x, w)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gw))
    g0 = jax.grad(lambda b: losses.weighted_mean(x, weights=b))(jnp.zeros(3))
    assert np.all(np.isfinite(g0))


@pytest.mark.slow
def test_weighted_mean_gradients_float64_and_dtype():
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=6), rng.uniform(0.5, 2.0, 6)
    with jax.enable_x64(True):
        check_grads(
            lambda a, b: losses.weighted_mean(a, weights=b),
            (jnp.asarray(x), jnp.asarray(w)),
            order=2,
        )
        assert losses.weighted_mean(jnp.asarray(x)).dtype == jnp.float64
    assert losses.weighted_mean(x.astype(np.float32)).dtype == jnp.float32
    assert losses.weighted_mean(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.bfloat16


@pytest.mark.parametrize("name", ["logistic", "hinge", "squared_hinge", "squared"])
def test_complex_input_is_refused(name):
    fn = losses.LOSSES[name]
    with pytest.raises(TypeError, match="must be real"):
        fn(jnp.array([1.0 + 1j, 2.0]), jnp.array([1.0, 0.0]))
    with pytest.raises(TypeError, match="must be real"):
        fn(jnp.array([1.0, 2.0]), jnp.array([1.0 + 1j, 0.0]))


def test_weighted_mean_checks_its_weights_and_a_nan_weight_gives_nan():
    # A NaN weight gave 0 and a negative one a "mean" of 6 from values 1, 3, 5; weights of
    # another length a raw JAX shape error (reported by a probe).
    x = jnp.array([1.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="`weights` must be finite"):
        losses.weighted_mean(x, weights=jnp.array([1.0, jnp.nan, 1.0]))
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        losses.weighted_mean(x, weights=jnp.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"`weights` must have shape \(3,\)"):
        losses.weighted_mean(x, weights=jnp.ones(2))
    jitted = jax.jit(lambda w: losses.weighted_mean(x, weights=w))
    assert np.isnan(float(jitted(jnp.array([1.0, jnp.nan, 1.0]))))
    assert float(jitted(jnp.array([1.0, 0.0, 1.0]))) == 3.0


def test_weighted_mean_of_float16_losses_sums_past_float16_range():
    # The sums were taken in float16: 70,000 rows of weight 1 (or weights of 20 over 5,000
    # rows) overflowed to inf and the mean read 0; weights of 3e4 gave NaN.
    half = jnp.float16
    out = losses.weighted_mean(jnp.full((70_000,), 0.5, half))
    assert out.dtype == half and float(out) == 0.5
    assert (
        float(losses.weighted_mean(jnp.full((5000,), 0.5, half), weights=jnp.full(5000, 20.0)))
        == 0.5
    )
    assert float(losses.weighted_mean(jnp.ones(4, half), weights=jnp.full(4, 3e4))) == 1.0
    grad = jax.grad(lambda x: losses.weighted_mean(x, where=jnp.array([True, False])))
    assert grad(jnp.ones(2, half)).dtype == half


def test_logistic_refuses_labels_outside_the_unit_interval():
    # -1/+1 labels gave a negative loss, a label of 2 one of -2.95.
    for labels in ([-1.0, 1.0], [0.0, 2.0]):
        with pytest.raises(ValueError, match="`labels` must hold"):
            losses.logistic(jnp.array([4.0, 1.0]), jnp.array(labels))
    assert float(losses.logistic(jnp.array([0.0]), jnp.array([0.5]))[0]) > 0


def test_weighted_mean_refuses_a_mask_that_is_not_boolean():
    # A float mask of 0.5 counted its row in full.
    x = jnp.array([1.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="`where` must be a boolean mask"):
        losses.weighted_mean(x, where=jnp.array([0.5, 1.0, 0.0]))
    assert float(losses.weighted_mean(x, where=jnp.array([1, 1, 0]))) == 2.0


@pytest.mark.parametrize("fn", [losses.hinge, losses.squared_hinge, losses.logistic])
def test_a_nan_label_gives_a_nan_loss(fn):
    # The margin losses read every label but 1 as negative, a NaN one too (loss 2, finite).
    out = np.asarray(fn(jnp.array([1.0, 0.5]), jnp.array([np.nan, 1.0])))
    assert np.isnan(out[0]) and np.isfinite(out[1])


def test_logistic_of_an_infinite_logit_is_zero_on_its_label_side_and_infinite_across():
    z = jnp.array([jnp.inf, -jnp.inf, jnp.inf, -jnp.inf, jnp.inf])
    y = jnp.array([1.0, 0.0, 0.0, 1.0, 0.5])
    got = losses.logistic(z, y)
    np.testing.assert_array_equal(np.asarray(got), [0.0, 0.0, np.inf, np.inf, np.inf])
    # The gradient in the logits is sigma(z) - y: 0 where the label is met.
    grad = jax.grad(lambda z: losses.logistic(z, y[:2]).sum())(z[:2])
    np.testing.assert_array_equal(np.asarray(grad), [0.0, 0.0])
    # Finite logits keep the gradient in the labels, -z, even at hard labels.
    zf = jnp.array([3.0, -2.0])
    grad_y = jax.grad(lambda y: losses.logistic(zf, y).sum())(jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(np.asarray(grad_y), [-3.0, 2.0])
