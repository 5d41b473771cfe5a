"""Tests of fairjax.kernels against sklearn and numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from fairjax import kernels


def test_gaussian_matches_sklearn_and_pair_evaluation():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    h = 1.5
    k = kernels.gaussian(bandwidth=h)
    K = kernels.kernel_matrix(k, X, Y)
    np.testing.assert_allclose(K, rbf_kernel(X, Y, gamma=1 / (2 * h * h)), atol=1e-6)
    np.testing.assert_allclose(k(jnp.asarray(X[0]), jnp.asarray(Y[1])), K[0, 1], atol=1e-6)
    np.testing.assert_allclose(kernels.kernel_matrix(kernels.linear(), X, Y), X @ Y.T, atol=1e-5)
    S = kernels.Sum((k, kernels.gaussian(bandwidth=0.5)))
    np.testing.assert_allclose(
        kernels.kernel_matrix(S, X),
        rbf_kernel(X, gamma=1 / (2 * h * h)) + rbf_kernel(X, gamma=2.0),
        atol=1e-5,
    )


def test_squared_distances_nonnegative_and_jit_grad_bandwidth():
    X = jnp.ones((4, 2)) * 1e3
    assert float(jnp.min(kernels.squared_distances(X))) >= 0.0
    f = jax.jit(lambda h: jnp.sum(kernels.kernel_matrix(kernels.Gaussian(h), X[:, :1] * 0.0 + 1)))
    assert np.isfinite(float(jax.grad(f)(1.0)))


def test_random_fourier_features_approximate_gaussian():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    phi = kernels.random_fourier_features(jax.random.key(0), 3, num_features=4000, bandwidth=1.2)
    Z = phi(X)
    K = rbf_kernel(X, gamma=1 / (2 * 1.2**2))
    assert np.max(np.abs(np.asarray(Z @ Z.T) - K)) < 0.08


def test_nystrom_exact_on_landmarks_and_low_rank():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 2)).astype(np.float32)
    k = kernels.gaussian(bandwidth=1.0)
    phi = kernels.nystrom(k, X)
    Z = phi(X)
    np.testing.assert_allclose(Z @ Z.T, kernels.kernel_matrix(k, X), atol=2e-4)
    phi10 = kernels.nystrom(k, X[:10])
    assert phi10(X).shape == (30, 10)
    assert np.all(np.isfinite(np.asarray(phi10(X))))


def test_bad_inputs():
    with pytest.raises(ValueError, match="`bandwidth` must be > 0"):
        kernels.gaussian(bandwidth=0.0)
    with pytest.raises(ValueError, match="same number of features"):
        kernels.kernel_matrix(kernels.gaussian(), np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="`kernel` must be a fairjax kernel"):
        kernels.kernel_matrix("rbf", np.ones((2, 3)))
    with pytest.raises(ValueError, match="`landmarks` must be finite"):
        kernels.nystrom(kernels.gaussian(), np.full((2, 2), np.nan))
