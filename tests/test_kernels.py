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


@pytest.mark.slow
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


def _pairwise_sq(X, Y):
    return np.sum((X[:, None, :] - Y[None, :, :]) ** 2, axis=-1)


def test_laplace_and_inverse_multiquadric_closed_forms():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    sq = _pairwise_sq(X, Y)
    K = kernels.kernel_matrix(kernels.laplace(bandwidth=0.7), X, Y)
    np.testing.assert_allclose(K, np.exp(-np.sqrt(sq) / 0.7), rtol=1e-5)
    K = kernels.kernel_matrix(kernels.inverse_multiquadric(bandwidth=1.3, exponent=0.8), X, Y)
    np.testing.assert_allclose(K, (1 + sq / 1.3**2) ** -0.8, rtol=1e-5)
    k = kernels.laplace(bandwidth=0.7)
    ref = np.exp(-np.sqrt(sq[1, 2]) / 0.7)
    np.testing.assert_allclose(k(jnp.asarray(X[1]), jnp.asarray(Y[2])), ref, rtol=1e-5)


def test_laplace_gradient_finite_at_coinciding_points():
    X = jnp.array([[0.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    for k in (kernels.laplace(), kernels.inverse_multiquadric(), kernels.gaussian()):
        g = jax.grad(lambda x, k=k: jnp.sum(kernels.kernel_matrix(k, x)))(X)
        assert np.all(np.isfinite(np.asarray(g)))
        g = jax.grad(lambda x, k=k: k(x, x))(X[0])
        assert np.all(np.isfinite(np.asarray(g)))


def test_multi_bandwidth_is_the_sum():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(5, 2))
    S = kernels.multi_bandwidth(bandwidths=(0.5, 1.0, 2.0), kind="laplace", scale=2.0)
    ref = sum(np.exp(-np.sqrt(_pairwise_sq(X, X)) / h) for h in (1.0, 2.0, 4.0))
    np.testing.assert_allclose(kernels.kernel_matrix(S, X), ref, rtol=1e-5)
    # A traced scale (e.g. the median heuristic) works under jit.
    f = jax.jit(
        lambda x: kernels.kernel_matrix(
            kernels.multi_bandwidth(
                bandwidths=jnp.array([0.5, 2.0]), scale=kernels.median_bandwidth(x)
            ),
            x,
        )
    )
    assert f(jnp.asarray(X)).shape == (5, 5)


def test_median_bandwidth_matches_numpy_weighted_median():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(9, 3))
    w = rng.uniform(0.1, 2.0, size=9)
    iu = np.triu_indices(9, k=1)
    d = np.sqrt(_pairwise_sq(X, X))[iu]
    pw = (w[:, None] * w[None, :])[iu]
    ref = np.quantile(d, 0.5, weights=pw, method="inverted_cdf")
    with jax.enable_x64(True):
        got = kernels.median_bandwidth(X, weights=w)
        np.testing.assert_allclose(got, ref, rtol=1e-10)
        ref_unweighted = np.quantile(d, 0.5, method="inverted_cdf")
        np.testing.assert_allclose(kernels.median_bandwidth(X), ref_unweighted, rtol=1e-10)


def test_median_bandwidth_masked_equals_subset_and_no_gradient():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(8, 2)).astype(np.float32)
    w = np.array([1, 1, 0, 1, 1, 0, 1, 1], np.float32)
    got = jax.jit(lambda x, w: kernels.median_bandwidth(x, weights=w))(X, w)
    np.testing.assert_allclose(got, kernels.median_bandwidth(X[w > 0]), rtol=1e-6)
    g = jax.grad(lambda x: kernels.median_bandwidth(x))(jnp.asarray(X))
    assert np.all(np.asarray(g) == 0)
    # Degenerate cases fall back to 1: identical points, a single weighted row.
    assert float(kernels.median_bandwidth(jnp.ones((4, 2)))) == 1.0
    assert float(kernels.median_bandwidth(X, weights=np.eye(8, dtype=np.float32)[0])) == 1.0


def test_random_fourier_features_traced_bandwidth():
    X = jnp.asarray(np.random.default_rng(7).normal(size=(6, 2)), jnp.float32)

    @jax.jit
    def f(x):
        phi = kernels.random_fourier_features(
            jax.random.key(0), 2, num_features=16, bandwidth=kernels.median_bandwidth(x)
        )
        return phi(x)

    assert f(X).shape == (6, 16)


def test_new_kernels_bad_inputs():
    with pytest.raises(ValueError, match="`bandwidth` must be > 0"):
        kernels.laplace(bandwidth=-1.0)
    with pytest.raises(ValueError, match="`exponent` must be > 0"):
        kernels.inverse_multiquadric(exponent=0.0)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        kernels.multi_bandwidth(bandwidths=(1.0,), kind="rbf")
    with pytest.raises(ValueError, match="at least one bandwidth"):
        kernels.multi_bandwidth(bandwidths=())
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        kernels.median_bandwidth(np.ones((3, 2)), weights=np.array([1.0, -1.0, 1.0]))


def test_distances_and_kernel_statistics_ignore_a_common_shift():
    # The expansion |x|^2 + |y|^2 - 2 x.y cancelled every digit far from the origin: the
    # distances of [1e4] and [1e4 + 1] were 0, and MMD and HSIC at 1e5 + N(0, 1) went negative
    # (reported by a probe). The points are centred before the expansion.
    from fairjax import metrics, penalties

    np.testing.assert_array_equal(
        np.asarray(kernels.squared_distances(np.array([[1e4], [1e4 + 1]], np.float32))),
        [[0.0, 1.0], [1.0, 0.0]],
    )
    rng = np.random.default_rng(13)
    h = np.r_[rng.normal(size=100), rng.normal(size=100) + 1]
    s = np.repeat([0, 1], 100)

    def stats(shift):
        x = (h + shift).astype(np.float32)
        mmd = penalties.mmd(x, s, num_groups=2, reference="pairwise")
        return float(mmd), float(metrics.hsic(x, s.astype(np.float32)))

    base = stats(0.0)
    for shift in (1e4, 1e5):
        np.testing.assert_allclose(stats(shift), base, rtol=5e-3)


def test_mmd_and_hsic_of_several_features_ignore_a_common_shift():
    # Two features of unit spread at an offset of 1e4: the expansion of the squared distances
    # cancelled their digits, and MMD halved (0.142 -> 0.074), HSIC fell 6x (a probe). Both
    # now shift the points by the weighted mean of the rows of positive weight, so a masked
    # row of garbage moves nothing.
    from fairjax import metrics, penalties

    rng = np.random.default_rng(3)
    s = np.repeat([0, 1], 60)
    h = rng.normal(size=(120, 2)) + 1.5 * s[:, None]
    w = np.r_[np.ones(119), 0.0]

    def stats(shift, garbage=0.0):
        x = (h + shift).astype(np.float32)
        x[-1] = garbage
        mmd = penalties.mmd(x, s, num_groups=2, weights=w)
        unbiased = penalties.mmd(x, s, num_groups=2, weights=w, estimator="unbiased")
        dep = metrics.hsic(x[:, 0], x, weights=w)
        return float(mmd), float(unbiased), float(dep)

    base = stats(0.0)
    for shift, garbage in [(1e4, 0.0), (1e4, 1e6), (0.0, -1e6)]:
        np.testing.assert_allclose(stats(shift, garbage), base, rtol=2e-3)


def test_a_nan_point_spoils_only_its_own_distances():
    # The centre of the expansion skips rows that are not finite (review of the centring).
    X = np.array([[0.0, 0.0], [np.nan, 1.0], [1.0, 1.0]])
    d = np.asarray(kernels.squared_distances(X))
    assert np.isnan(d[1]).all() and np.isnan(d[:, 1]).all()
    np.testing.assert_array_equal(d[np.ix_([0, 2], [0, 2])], [[0.0, 2.0], [2.0, 0.0]])
    one = np.asarray(kernels.squared_distances(np.array([[0.0], [np.nan], [1.0]])))
    assert np.isnan(one[1]).all() and one[0, 2] == 1.0
