"""Prejudice Remover against a NumPy transcription of Kamishima et al.'s prejudice index."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax.penalties._prejudice import prejudice_remover


def _reference(p, g, w):
    """PI = sum_i w_i sum_y P(y|x_i) log(P(y|g_i) / P(y)), group rates from the model."""
    p, g, w = (np.asarray(a, np.float64) for a in (p, g, w))
    g = g.astype(int)
    overall = np.sum(w * p) / np.sum(w)
    total = 0.0
    for k in np.unique(g[w > 0]):
        rows = (g == k) & (w > 0)
        rate = np.sum(w[rows] * p[rows]) / np.sum(w[rows])
        total += np.sum(
            w[rows]
            * (
                p[rows] * np.log(rate / overall)
                + (1 - p[rows]) * np.log((1 - rate) / (1 - overall))
            )
        )
    return total


@pytest.mark.parametrize("num_groups", [2, 3])
def test_matches_reference_with_weights(num_groups):
    rng = np.random.default_rng(num_groups)
    n = 101
    p = rng.uniform(0.05, 0.95, n)
    g = rng.integers(0, num_groups, n)
    w = rng.uniform(0, 2, n)
    w[:5] = 0
    got = prejudice_remover(
        jnp.asarray(p, jnp.float32), g, num_groups=num_groups, weights=jnp.asarray(w, jnp.float32)
    )
    # float32 against float64: the index is a small sum of cancelling terms
    np.testing.assert_allclose(float(got), _reference(p, g, w), rtol=2e-3)
    mean = prejudice_remover(
        jnp.asarray(p, jnp.float32),
        g,
        num_groups=num_groups,
        weights=jnp.asarray(w, jnp.float32),
        reduction="mean",
    )
    np.testing.assert_allclose(float(mean), _reference(p, g, w) / w.sum(), rtol=2e-3)


def test_zero_when_group_rates_are_equal_and_positive_otherwise():
    s = jnp.array([0, 0, 1, 1])
    same = prejudice_remover(jnp.array([0.2, 0.8, 0.8, 0.2]), s, num_groups=2)
    assert abs(float(same)) < 1e-6
    assert float(prejudice_remover(jnp.array([0.9, 0.7, 0.3, 0.1]), s, num_groups=2)) > 0.1


def test_empty_group_is_left_out_and_gradient_is_finite():
    p = jnp.array([0.2, 0.6, 0.7])
    g = jnp.array([0, 0, 2])  # group 1 is empty
    value, grad = jax.value_and_grad(lambda q: prejudice_remover(q, g, num_groups=3))(p)
    np.testing.assert_allclose(float(value), _reference(p, g, np.ones(3)), rtol=1e-5)
    assert np.isfinite(np.asarray(grad)).all()


def test_minimising_it_equalises_the_group_rates():
    s = jnp.array([0] * 6 + [1] * 6)
    z0 = jnp.linspace(-2.0, 2.0, 12) + 1.5 * s
    grad = jax.jit(jax.grad(lambda z: prejudice_remover(jax.nn.sigmoid(z), s, num_groups=2)))
    z = z0
    for _ in range(300):
        z = z - 0.5 * grad(z)
    gap = lambda z: abs(
        float(jnp.mean(jax.nn.sigmoid(z)[s == 1] - jax.nn.sigmoid(z)[s == 0].mean()))
    )
    assert gap(z) < 0.1 * gap(z0)


def test_nan_in_gives_nan_and_bad_input_names_the_argument():
    s = jnp.array([0, 1, 1])
    nan_in = jnp.array([0.2, jnp.nan, 0.5])
    jitted = jax.jit(lambda q: prejudice_remover(q, s, num_groups=2))
    assert np.isnan(float(jitted(nan_in)))
    with pytest.raises(ValueError, match="probs"):
        prejudice_remover(nan_in, s, num_groups=2)
    with pytest.raises(ValueError, match="reduction"):
        prejudice_remover(jnp.array([0.2, 0.3, 0.5]), s, num_groups=2, reduction="max")
    with pytest.raises(ValueError, match="probs"):
        prejudice_remover(jnp.ones((3, 2)), s, num_groups=2)


def test_near_equal_rates_are_accurate_and_never_negative():
    # The row form summed n terms of the size of the gap that cancel to its square: in
    # float32 it read 1.4e-5 at n=1000 and -2e-5 at n=1e5 where the index is about 1e-9.
    rng = np.random.default_rng(4)
    for n in (1000, 100_000):
        half = rng.uniform(0.2, 0.8, n // 2).astype(np.float32)
        same = np.r_[half, rng.permutation(half)]  # equal group rates: an index of 0
        got = float(prejudice_remover(same, np.repeat([0, 1], n // 2), num_groups=2))
        assert 0 <= got < 1e-8, (n, got)
        p = rng.uniform(0.2, 0.8, n).astype(np.float32)
        g = rng.integers(0, 2, n)
        got = float(prejudice_remover(p, g, num_groups=2))
        want = _reference(p, g, np.ones(n))
        assert got >= 0
        # Float32 group rates carry ~1e-7 of error each, and the index is their gap squared.
        assert abs(got - want) <= 0.1 * want + 1e-9, (n, got, want)


def test_a_group_of_zero_weight_is_its_rows_dropped_in_the_gradient_too():
    X = jnp.array([[1.0, 0.5], [0.3, -1.0], [-0.2, 0.4], [0.8, 0.1], [5.0, 5.0], [-5.0, 2.0]])
    g = jnp.array([0, 0, 1, 1, 2, 2])
    w = jnp.array([1.0, 1, 1, 1, 0, 0])  # group 2: padding rows of weight 0

    def index(theta, X, g, w):
        return prejudice_remover(jax.nn.sigmoid(X @ theta), g, num_groups=3, weights=w)

    theta = jnp.array([0.3, -0.2])
    value, grad = jax.value_and_grad(index)(theta, X, g, w)
    kept_value, kept_grad = jax.value_and_grad(index)(theta, X[:4], g[:4], w[:4])
    np.testing.assert_allclose(float(value), float(kept_value), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(kept_grad), rtol=1e-5)


def test_probabilities_outside_the_unit_interval_are_refused():
    s = jnp.array([0, 1, 1])
    for bad in ([1.5, 0.2, 0.3], [-0.2, 0.5, 0.5]):
        with pytest.raises(ValueError, match="`probs` must hold"):
            prejudice_remover(jnp.array(bad), s, num_groups=2)
    # Hard decisions (a sigmoid saturated in float32) give a finite index, and a finite
    # gradient: a finite loss with NaN gradients would hide the divergence from a trainer.
    hard = jnp.array([1.0, 0.0, 0.0, 1.0])
    value, grad = jax.value_and_grad(prejudice_remover)(hard, jnp.array([0, 1, 1, 0]), num_groups=2)
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()


def test_a_membership_matrix_equals_ids_and_shares_a_row_over_its_groups():
    # It failed in indexing ("Indexer must have integer or boolean type").
    p = jnp.array([0.9, 0.8, 0.2, 0.1, 0.5, 0.6])
    g = jnp.array([0, 0, 1, 1, 2, 2])
    ids = prejudice_remover(p, g, num_groups=3)
    np.testing.assert_allclose(float(prejudice_remover(p, jax.nn.one_hot(g, 3))), float(ids))
    soft = np.array([[0.5, 0.5, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    q = np.asarray(p, np.float64)
    rates = soft.T @ q / soft.sum(0)
    overall = q.mean()
    rows = q[:, None] * np.log(rates / overall) + (1 - q[:, None]) * np.log(
        (1 - rates) / (1 - overall)
    )
    want = np.sum(soft * rows)
    got = prejudice_remover(p, jnp.asarray(soft, jnp.float32))
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
