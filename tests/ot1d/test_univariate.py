"""Tests of fairjax.ot1d: CDFs, quantiles, W_p distances and barycenters on the line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

from fairjax import ot1d


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _sample(rng, n, ties=False, zero_weights=False):
    x = rng.normal(size=n)
    if ties:
        x = np.round(x, 1)
    w = rng.uniform(0.1, 2.0, size=n)
    if zero_weights:
        w[rng.uniform(size=n) < 0.3] = 0.0
        w[0] = 1.0
    return x.astype(np.float32), w.astype(np.float32)


# ----------------------------------------------------------------------------- cdf / quantile


def test_cdf_matches_numpy_and_strict_is_left_limit():
    rng = np.random.default_rng(0)
    x, w = _sample(rng, 50, ties=True)
    t = np.concatenate([x[:10], rng.normal(size=10)]).astype(np.float32)
    got = ot1d.cdf(x, t, weights=w)
    want = np.array([w[x <= ti].sum() for ti in t]) / w.sum()
    np.testing.assert_allclose(got, want, atol=1e-6)
    got_strict = ot1d.cdf(x, t, weights=w, strict=True)
    want_strict = np.array([w[x < ti].sum() for ti in t]) / w.sum()
    np.testing.assert_allclose(got_strict, want_strict, atol=1e-6)


@pytest.mark.parametrize(("method", "np_method"), [("step", "inverted_cdf"), ("linear", "linear")])
def test_quantile_matches_numpy_unit_weights(method, np_method):
    rng = np.random.default_rng(1)
    x = rng.normal(size=37).astype(np.float32)
    u = rng.uniform(size=64).astype(np.float32)
    got = ot1d.quantile(x, u, method=method)
    want = np.quantile(x.astype(np.float64), u.astype(np.float64), method=np_method)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_weighted_step_quantile_equals_repeated_sample():
    rng = np.random.default_rng(2)
    x = rng.normal(size=20).astype(np.float32)
    w = rng.integers(0, 4, size=20)
    w[0] = 2
    u = rng.uniform(size=50).astype(np.float32)
    got = ot1d.quantile(x, u, weights=w.astype(np.float32))
    want = np.quantile(np.repeat(x, w), u, method="inverted_cdf")
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("method", ["step", "linear"])
def test_quantile_masked_equals_subset(method):
    rng = np.random.default_rng(3)
    x, _ = _sample(rng, 30)
    w = np.ones(30, np.float32)
    w[rng.uniform(size=30) < 0.4] = 0
    w[5] = 1
    u = np.linspace(0, 1, 41, dtype=np.float32)
    got = ot1d.quantile(x, u, weights=w, method=method)
    want = ot1d.quantile(x[w > 0], u, method=method)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_quantile_edges_and_errors():
    x = jnp.array([2.0, 2.0, 2.0])
    np.testing.assert_allclose(ot1d.quantile(x, jnp.array([0.0, 0.5, 1.0]), method="linear"), 2.0)
    assert float(ot1d.quantile(jnp.array([5.0]), jnp.array(0.7), method="linear")) == 5.0
    with pytest.raises(ValueError, match="method"):
        ot1d.quantile(x, jnp.array([0.5]), method="cubic")
    with pytest.raises(ValueError, match="values"):
        ot1d.quantile(jnp.array([1.0, jnp.nan]), jnp.array([0.5]))


# ----------------------------------------------------------------------------- distances


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("zero_weights", [False, True])
def test_w1_matches_scipy(ties, zero_weights):
    rng = np.random.default_rng(4)
    for n, m in [(17, 23), (40, 5)]:
        xu, wu = _sample(rng, n, ties, zero_weights)
        xv, wv = _sample(rng, m, ties, zero_weights)
        xv = xv + 0.5
        got = ot1d.wasserstein_distance(xu, xv, u_weights=wu, v_weights=wv)
        want = stats.wasserstein_distance(xu, xv, u_weights=wu, v_weights=wv)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("p", [1, 2])
def test_wp_matches_pot(p):
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(5)
    for _ in range(3):
        xu, wu = _sample(rng, 31, ties=True, zero_weights=True)
        xv, wv = _sample(rng, 12)
        want = ot.wasserstein_1d(
            xu.astype(np.float64), 2 * xv.astype(np.float64), wu / wu.sum(), wv / wv.sum(), p=p
        )
        got = ot1d.wasserstein_distance(xu, 2 * xv, u_weights=wu, v_weights=wv, p=p, root=False)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_wasserstein_hand_cases_and_identity():
    a = jnp.array([0.0, 1.0])
    assert float(ot1d.wasserstein_distance(a, a + 3.0, p=2)) == pytest.approx(3.0)
    assert float(ot1d.wasserstein_distance(a, a[::-1])) == 0.0
    # p = 3: W_3^3 of a point mass at 0 and one at 2 is 8.
    assert float(ot1d.wasserstein_distance(jnp.zeros(1), 2 * jnp.ones(3), p=3, root=False)) == 8.0
    with pytest.raises(ValueError, match="`p`"):
        ot1d.wasserstein_distance(a, a, p=0.5)
    with pytest.raises(ValueError, match="u_values"):
        ot1d.wasserstein_distance(jnp.zeros(0), a)
    with pytest.raises(ValueError, match="v_values"):
        ot1d.wasserstein_distance(a, jnp.array([jnp.inf]))


def test_wasserstein_nan_and_overflow_never_read_as_zero():
    rng = np.random.default_rng(0)
    a = rng.normal(size=37).astype(np.float32)
    b = (2 * rng.normal(size=53) + 1).astype(np.float32)
    # |d|^4 overflows float32 at levels of zero mass too: 0 * inf was NaN, and the root of NaN
    # read 0. The distance is beyond float32, so inf.
    assert float(ot1d.wasserstein_distance(a * 1e11, b * 1e11, p=4)) == np.inf
    assert float(ot1d.wasserstein_distance(a * 1e19, b * 1e19, p=2)) == np.inf
    # Finite distances keep their value (against the float64 definition).
    q = np.linspace(0, 1, 20001)[1:-1]
    exact = np.mean(np.abs(np.quantile(a, q, method="inverted_cdf")
                           - np.quantile(b, q, method="inverted_cdf")) ** 3) ** (1 / 3)  # fmt: skip
    np.testing.assert_allclose(ot1d.wasserstein_distance(a, b, p=3), exact, rtol=1e-3)
    an = jnp.asarray(a).at[0].set(jnp.nan)
    for p, root in ((1, True), (2, True), (3, False), (3, True)):
        jitted = jax.jit(lambda u, p=p, root=root: ot1d.wasserstein_distance(u, b, p=p, root=root))
        assert np.isnan(float(jitted(an))), (p, root)
    # A NaN point of zero weight is masked, a NaN weight is not.
    w = np.ones(37, np.float32)
    w[0] = 0.0
    masked = jax.jit(lambda u, w: ot1d.wasserstein_distance(u, b, u_weights=w))
    np.testing.assert_allclose(masked(an, w), ot1d.wasserstein_distance(a[1:], b), rtol=1e-6)
    assert np.isnan(float(masked(jnp.asarray(a), jnp.asarray(w).at[3].set(jnp.nan))))
    for p in (np.inf, np.nan):
        with pytest.raises(ValueError, match="`p` must be a static finite number"):
            ot1d.wasserstein_distance(a, b, p=p)
    # NumPy integers are numbers (np.int64(2) was refused where np.float64(2) was taken).
    assert ot1d.wasserstein_distance(a, b, p=np.int64(2)) == ot1d.wasserstein_distance(a, b, p=2)


def test_wasserstein_jit_vmap_padded_groups():
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(4, 20)).astype(np.float32)
    ws = (rng.uniform(size=(4, 20)) < 0.7).astype(np.float32)
    ws[:, 0] = 1
    ref = rng.normal(size=15).astype(np.float32)
    f = jax.jit(jax.vmap(lambda x, w: ot1d.wasserstein_distance(x, ref, u_weights=w, p=2)))
    got = f(xs, ws)
    for k in range(4):
        want = ot1d.wasserstein_distance(xs[k][ws[k] > 0], ref, p=2)
        np.testing.assert_allclose(got[k], want, rtol=1e-5)


@pytest.mark.slow
def test_wasserstein_gradients(x64):
    rng = np.random.default_rng(7)
    xu = jnp.asarray(rng.normal(size=9))
    xv = jnp.asarray(rng.normal(size=6) + 1.0)
    wu = jnp.asarray(rng.uniform(0.5, 1.5, size=9))
    for p in (1, 2):
        check_grads(
            lambda a, b, p=p: ot1d.wasserstein_distance(a, b, u_weights=wu, p=p),
            (xu, xv),
            order=1,
            modes=["rev"],
        )
    # Gradient at W = 0 is finite (0), not NaN.
    g = jax.grad(lambda a: ot1d.wasserstein_distance(a, xu, p=2))(xu)
    assert np.all(np.isfinite(g))
    # Weight perturbations shifted to mean zero stay on the simplex (ott-jax's test recipe).
    f = lambda w: ot1d.wasserstein_distance(xu, xv, u_weights=w, p=2, root=False)
    d = jnp.asarray(rng.normal(size=9))
    d = d - d.mean()
    eps = 1e-6
    fd = (f(wu / wu.sum() + eps * d) - f(wu / wu.sum() - eps * d)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(f)(wu / wu.sum()) @ d, fd, rtol=1e-4, atol=1e-8)


# ----------------------------------------------------------------------------- barycenter


def test_barycenter_equal_sizes_is_average_of_sorted():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 10)).astype(np.float32) + np.array([[0.0], [2.0], [5.0]], np.float32)
    lam = np.array([0.2, 0.3, 0.5], np.float32)
    bary = ot1d.barycenter(x, barycenter_weights=lam)
    support = np.asarray(bary.points)[np.asarray(bary.masses) > 1e-7]
    np.testing.assert_allclose(support, lam @ np.sort(x, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bary.masses.sum(), 1.0, rtol=1e-6)


def test_barycenter_minimises_objective_and_masks():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 12)).astype(np.float32) * np.array([[1.0], [3.0]], np.float32)
    w = np.ones((2, 12), np.float32)
    w[1, 7:] = 0  # ragged: second sample has 7 points
    lam = jnp.array([0.4, 0.6])
    bary = ot1d.barycenter(x, weights=w, barycenter_weights=lam)
    garbage = x.copy()
    garbage[1, 7:] = 100.0
    other = ot1d.barycenter(garbage, weights=w, barycenter_weights=lam)

    def objective(points, masses):
        return sum(
            lam[k]
            * ot1d.wasserstein_distance(
                x[k], points, u_weights=w[k], v_weights=masses, p=2, root=False
            )
            for k in range(2)
        )

    best = objective(bary.points, bary.masses)
    # Masked points do not matter: the barycenter is the same whatever their values.
    gap = ot1d.wasserstein_distance(
        bary.points, other.points, u_weights=bary.masses, v_weights=other.masses
    )
    assert float(gap) < 1e-6
    for scale in (0.9, 1.1):
        assert float(objective(bary.points * scale, bary.masses)) > float(best)
    assert float(objective(bary.points + 0.1, bary.masses)) > float(best)


def test_barycenter_errors():
    with pytest.raises(ValueError, match="positive total weight"):
        ot1d.barycenter(jnp.ones((2, 3)), weights=jnp.array([[1.0, 1, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match="barycenter_weights"):
        ot1d.barycenter(jnp.ones((2, 3)), barycenter_weights=jnp.ones(3))


def test_pooled_group_cdfs_unchanged():
    out = ot1d.pooled_group_cdfs(jnp.array([0.3, 0.1, 0.2]), jnp.array([1, 0, 1]), num_groups=2)
    np.testing.assert_allclose(out.cdfs[:, 1], [0.0, 0.5, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooled_group_cdfs_host_path_equals_jitted_path(dtype):
    # Concrete CPU inputs with unit weights are sorted and counted with NumPy on the host; the
    # CDFs equal the jitted path's bit for bit at the ends of tie runs (negative, zero, tied
    # scores; an empty group).
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=2000), 1).astype(dtype)
    x[:5] = [-0.0, 0.0, -1.5, -1.5, 3.0]
    g = rng.integers(0, 3, 2000).astype(np.int32)
    host = ot1d.pooled_group_cdfs(x, g, num_groups=4)
    traced = jax.jit(lambda a, b: ot1d.pooled_group_cdfs(a, b, num_groups=4))(x, g)
    end = np.asarray(traced.run_end)
    np.testing.assert_array_equal(np.asarray(host.run_end), end)
    np.testing.assert_array_equal(host.points, traced.points)
    np.testing.assert_array_equal(np.asarray(host.cdfs)[end], np.asarray(traced.cdfs)[end])
    np.testing.assert_array_equal(host.pooled_cdf, traced.pooled_cdf)
    np.testing.assert_array_equal(host.counts, traced.counts)
    assert host.cdfs.dtype == traced.cdfs.dtype
