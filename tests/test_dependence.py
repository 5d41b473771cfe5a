"""Dependence measures for continuous attributes, against NumPy references and known values."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import dependence as dep
from fairjax import metrics, penalties


def _gaussian_pair(rho, n, seed):
    z = np.random.default_rng(seed).normal(size=(n, 2))
    return z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]


def _np_centred(K, w):
    H = np.eye(len(w)) - np.outer(np.ones(len(w)), w)
    return H @ K @ H.T


def _np_hsic(x, s, w, hx, hs):
    K = np.exp(-((x[:, None] - x[None]) ** 2) / (2 * hx**2))
    L = np.exp(-((s[:, None] - s[None]) ** 2) / (2 * hs**2))
    return w @ (_np_centred(K, w) * _np_centred(L, w)) @ w


def _np_dcor(x, s, w):
    A = _np_centred(np.abs(x[:, None] - x[None]), w)
    B = _np_centred(np.abs(s[:, None] - s[None]), w)
    cov, vx, vs = (w @ (P * Q) @ w for P, Q in ((A, B), (A, A), (B, B)))
    return np.sqrt(cov / np.sqrt(vx * vs))


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_hgr_of_a_bivariate_gaussian_is_abs_rho(rho, seed):
    x, s = _gaussian_pair(rho, 10_000, seed)
    value = float(metrics.hgr_correlation(x, s))
    assert abs(value - abs(rho)) <= 0.05
    # HGR is invariant to increasing maps of either variable, and so is the rank estimate.
    assert float(metrics.hgr_correlation(np.exp(x), -np.exp(-s))) == pytest.approx(value, abs=1e-5)


@pytest.mark.slow
def test_hgr_sees_dependence_that_correlation_misses():
    x, _ = _gaussian_pair(0.0, 5_000, 2)
    noise = np.random.default_rng(3).normal(size=x.shape)
    s = x**2 + 0.3 * noise
    assert abs(np.corrcoef(x, s)[0, 1]) < 0.05
    assert float(metrics.hgr_correlation(x, s, degree=1)) < 0.1  # monotone part only
    assert float(metrics.hgr_correlation(x, s)) > 0.9


def test_hgr_kde_estimates_and_bounds_hgr():
    for rho in (0.0, 0.6, 0.9):
        x, s = _gaussian_pair(rho, 10_000, 4)
        svd = float(dep.hgr_kde(x, s, estimator="svd"))
        chi2 = float(dep.hgr_kde(x, s))
        assert svd**2 <= chi2 * (1 + 1e-5) + 1e-7  # the chi-square bound
        if rho:
            assert abs(svd - rho) < 0.05
        else:  # the KDE estimate's noise floor under independence (documented), and a small bound
            assert svd < 0.25
            assert chi2 < 0.1


def test_hsic_equals_numpy_reference_float64_with_weights():
    rng = np.random.default_rng(5)
    x, s = rng.normal(size=60), rng.normal(size=60) + 0.5 * rng.normal(size=60)
    s = s + 0.8 * x
    w = rng.uniform(0.1, 2.0, size=60)
    with jax.enable_x64(True):
        got = dep.hsic(x, s, weights=w, bandwidth_x=0.7, bandwidth_s=1.3)
        got_default = dep.hsic(x, s)
        hx = float(metrics_median(x))
        hs = float(metrics_median(s))
    np.testing.assert_allclose(float(got), _np_hsic(x, s, w / w.sum(), 0.7, 1.3), rtol=1e-6)
    uniform = np.full(60, 1 / 60)
    np.testing.assert_allclose(float(got_default), _np_hsic(x, s, uniform, hx, hs), rtol=1e-6)


def metrics_median(x):
    d = np.abs(x[:, None] - x[None])[np.triu_indices(len(x), 1)]
    return np.quantile(d, 0.5, method="inverted_cdf")


@pytest.mark.slow
def test_hsic_random_features_approach_the_exact_value():
    x, s = _gaussian_pair(0.7, 400, 6)
    exact = float(dep.hsic(x, s, bandwidth_x=1.0, bandwidth_s=1.0))
    approx = float(
        dep.hsic(x, s, bandwidth_x=1.0, bandwidth_s=1.0, num_features=2048, key=jax.random.key(0))
    )
    assert approx == pytest.approx(exact, rel=0.1)
    assert float(dep.hsic(x, s, normalized=True)) <= 1.0


def test_distance_correlation_equals_numpy_reference_float64():
    rng = np.random.default_rng(7)
    x = rng.normal(size=50)
    s = np.sin(2 * x) + 0.3 * rng.normal(size=50)
    w = rng.uniform(0.1, 2.0, size=50)
    with jax.enable_x64(True):
        got = float(dep.distance_correlation(x, s, weights=w))
        got_uniform = float(dep.distance_correlation(x, s))
    np.testing.assert_allclose(got, _np_dcor(x, s, w / w.sum()), rtol=1e-9)
    np.testing.assert_allclose(got_uniform, _np_dcor(x, s, np.full(50, 1 / 50)), rtol=1e-9)


def test_vector_attribute():
    rng = np.random.default_rng(8)
    x = rng.normal(size=200)
    S = np.stack([x + 0.1 * rng.normal(size=200), rng.normal(size=200)], axis=1)
    independent = rng.normal(size=(200, 2))
    assert float(dep.hsic(x, S)) > 5 * float(dep.hsic(x, independent))
    assert float(dep.distance_correlation(x, S)) > 2 * float(
        dep.distance_correlation(x, independent)
    )


@pytest.mark.parametrize(
    "penalty",
    [
        lambda f, s: penalties.hsic(f, s),
        lambda f, s: penalties.hsic(f, s, num_features=64, key=jax.random.key(0)),
        lambda f, s: penalties.hgr(f, s),
        lambda f, s: penalties.hgr(f, s, estimator="svd"),
        lambda f, s: dep.distance_correlation(f, s),
    ],
    ids=["hsic", "hsic-rff", "hgr-chi2", "hgr-svd", "dcor"],
)
@pytest.mark.parametrize("attribute", ["constant", "duplicated", "continuous"])
@pytest.mark.parametrize("scores", ["varied", "constant"])
def test_penalty_gradients_are_finite(penalty, attribute, scores):
    """Finite value and gradient, also at constant scores (a model's zero initialisation)."""
    rng = np.random.default_rng(9)
    f = jnp.asarray(rng.normal(size=64) if scores == "varied" else np.zeros(64), jnp.float32)
    s = {
        "constant": np.full(64, 3.0),
        "duplicated": np.repeat(rng.normal(size=8), 8),
        "continuous": rng.normal(size=64),
    }[attribute]
    value, grad = jax.value_and_grad(penalty)(f, jnp.asarray(s, jnp.float32))
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(np.asarray(grad)))
    if attribute == "constant" or scores == "constant":
        assert float(value) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("estimator", ["chi2", "svd"])
def test_hgr_gradient_finite_with_empty_grid_cells(estimator):
    """A bounded attribute leaves grid cells with no sample near: their mass underflows to 0."""
    x, _ = _gaussian_pair(0.0, 30_000, 14)
    s = np.random.default_rng(15).uniform(size=30_000)  # standardised: within +-1.8 of 0
    value, grad = jax.value_and_grad(lambda f: penalties.hgr(f, s, estimator=estimator))(
        jnp.asarray(x, jnp.float32)
    )
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.slow
def test_penalties_decrease_dependence_under_gradient_descent():
    x, s = _gaussian_pair(0.8, 300, 10)
    f = jnp.asarray(x, jnp.float32)
    s = jnp.asarray(s, jnp.float32)
    for penalty in (penalties.hsic, penalties.hgr):
        g = f
        for _ in range(30):
            g = g - 0.5 * jax.grad(penalty)(g, s)
        assert float(metrics.hgr_correlation(g, s)) < float(metrics.hgr_correlation(f, s))


@pytest.mark.slow
def test_jit_and_vmap():
    x, s = _gaussian_pair(0.5, 128, 11)
    batch = jnp.stack([jnp.asarray(x), jnp.asarray(-x)])
    s = jnp.asarray(s)
    for fn in (dep.hsic, dep.distance_correlation, dep.hgr_correlation, dep.hgr_kde):
        one = jax.jit(fn)(batch[0], s)
        both = jax.vmap(fn, in_axes=(0, None))(batch, s)
        np.testing.assert_allclose(np.asarray(both[0]), float(one), rtol=1e-5, atol=1e-7)


def test_binned_parity_difference_is_dp_over_quantile_bins():
    rng = np.random.default_rng(12)
    age = rng.uniform(18, 80, size=400)
    pred = (age + rng.normal(scale=20, size=400) > 50).astype(np.float32)
    bins = np.searchsorted(
        np.quantile(age, [0.25, 0.5, 0.75], method="inverted_cdf"), age, side="left"
    )
    # Equal weights, distinct ages: four bins of 100 (a value on a cut went to the upper bin,
    # so the first bin had one row fewer and the last one more; reported by a probe).
    assert np.bincount(bins).tolist() == [100, 100, 100, 100]
    want = metrics.demographic_parity_difference(pred, bins, num_groups=4)
    got = metrics.binned_parity_difference(pred, age, num_bins=4)
    assert float(got) == pytest.approx(float(want), abs=1e-6)


@pytest.mark.slow  # compiles 12 programs (~10 s)
def test_binned_parity_difference_of_equal_weights_is_the_unweighted_one():
    # Weights of 0.1 each summed to just under the level 0.5 in float32, so the median cut
    # moved one value up and the gap changed (0.8 -> 0.667) with no change in the data.
    rng = np.random.default_rng(5)
    for n, num_bins, _ in itertools.product((10, 41), (2, 3, 6), range(3)):
        age, pred = rng.permutation(n).astype(np.float32), rng.integers(0, 2, n)
        plain = metrics.binned_parity_difference(pred, age, num_bins=num_bins)
        for c in (0.1, 0.3, 0.7, 1 / 3):
            w = np.full(n, c, np.float32)
            weighted = metrics.binned_parity_difference(pred, age, num_bins=num_bins, weights=w)
            assert float(weighted) == pytest.approx(float(plain), abs=1e-6), (n, num_bins, c)
    # Integer weights are repeated rows (the inverted-CDF cut of the repeated ages).
    w = rng.integers(0, 4, 30)
    age, pred = rng.permutation(30).astype(np.float32), rng.integers(0, 2, 30)
    got = metrics.binned_parity_difference(pred, age, num_bins=3, weights=w.astype(np.float32))
    want = metrics.binned_parity_difference(np.repeat(pred, w), np.repeat(age, w), num_bins=3)
    assert float(got) == pytest.approx(float(want), abs=1e-6)
    # A NaN age under jit (no checks there) gives NaN, not the gap of the bins it sorted into.
    jitted = jax.jit(lambda a: metrics.binned_parity_difference(pred, a, num_bins=3))
    assert np.isnan(float(jitted(np.where(age == 0, np.nan, age))))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: dep.hsic([1.0, 2.0], [1.0]), "`s`"),
        (lambda: dep.hsic([1.0, np.nan], [1.0, 2.0]), "`x` must be finite"),
        (lambda: dep.hsic([1.0, 2.0], [1.0, np.inf]), "`s`"),
        (lambda: dep.hsic([1.0, 2.0], [1.0, 2.0], num_features=4), "`key`"),
        (lambda: dep.hsic([1.0, 2.0], [1.0, 2.0], bandwidth_x=0.0), "`bandwidth_x`"),
        (lambda: dep.hgr_correlation([1.0, 2.0], [[1.0, 2.0], [3.0, 4.0]]), "`s`"),
        (lambda: dep.hgr_correlation([1.0, 2.0], [1.0, 2.0], degree=0), "`degree`"),
        (lambda: dep.hgr_kde([1.0, 2.0], [1.0, 2.0], estimator="max"), "`estimator`"),
        (lambda: dep.distance_correlation([], []), "`x`"),
        (lambda: dep.distance_correlation([1.0, 2.0], [1.0, 2.0], weights=[-1, 1]), "`weights`"),
        (lambda: metrics.binned_parity_difference([1.0, 0.0], [1.0, 2.0], num_bins=0), "num_bins"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hsic", "hgr"])
def test_a_bound_on_dependence_is_met_by_the_lagrangian_trainer(name):
    """HSIC and the HGR bound as the constraint of training.fit_constrained (and a sweep)."""
    import optax

    from fairjax import training

    rng = np.random.default_rng(13)
    n = 400
    age = rng.normal(size=n).astype(np.float32)
    X = np.stack([age + 0.5 * rng.normal(size=n), rng.normal(size=n)], axis=1).astype(np.float32)
    y = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.float32)
    data = (jnp.asarray(X), jnp.asarray(y), jnp.asarray(age))
    penalty = {"hsic": penalties.hsic, "hgr": penalties.hgr}[name]

    def model(p, b):
        return b[0] @ p["w"] + p["b"]

    def loss(z, b):
        return optax.sigmoid_binary_cross_entropy(z, b[1]).mean()

    def dependence(z, b):
        return penalty(z, b[2])

    p0 = {"w": jnp.zeros(2), "b": jnp.zeros(())}
    free = training.fit_constrained(
        loss, dependence, p0, data, target=1e6, optimizer=optax.adam(0.05), num_steps=300,
        model=model,
    )  # fmt: skip
    base = float(dependence(model(free.state.params, data), data))
    target = 0.2 * base
    res = training.fit_constrained(
        loss, dependence, p0, data, target=target, optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(1.0 / base), num_steps=1500, model=model,
    )  # fmt: skip
    got = float(dependence(model(res.state.params, data), data))
    assert got <= target * 1.1
    sweep = training.pareto_sweep(
        lambda p, b: loss(model(p, b), b),
        lambda p, b: dependence(model(p, b), b),
        p0,
        data,
        jnp.array([0.0, 10.0]),
        optimizer=optax.adam(0.05),
        num_steps=300,
    )
    assert float(sweep.penalty[1]) < float(sweep.penalty[0])


_MEASURES = {
    "hsic": lambda x, s, w: dep.hsic(x, s, weights=w),
    "distance_correlation": lambda x, s, w: dep.distance_correlation(x, s, weights=w),
    "hgr_correlation": lambda x, s, w: dep.hgr_correlation(x, s, weights=w),
    "hgr_kde": lambda x, s, w: dep.hgr_kde(x, s, weights=w),
}


@pytest.mark.parametrize("where", ["x", "s", "weights"])
@pytest.mark.parametrize("name", sorted(_MEASURES))
def test_nan_in_gives_nan_out(name, where):
    # A NaN in x was not refused and read as 0 (hgr 0.0, "independent"; distance correlation
    # finite), and under jit a NaN in s gave hgr_correlation 0.80 (reported by a probe).
    rng = np.random.default_rng(0)
    x, s, w = rng.normal(size=40), rng.normal(size=40), rng.uniform(0.5, 1.0, size=40)
    {"x": x, "s": s, "weights": w}[where][3] = np.nan
    fn = _MEASURES[name]
    assert np.isnan(float(jax.jit(fn)(x, s, w)))
    with pytest.raises(ValueError, match=f"`{where}` must be finite"):
        fn(x, s, w)


def test_distances_keep_a_nan():
    from fairjax import kernels

    d = np.asarray(kernels.distances(np.array([[0.0], [np.nan]])))
    assert np.isnan(d[0, 1]) and np.isnan(d[1, 1])


def test_normalized_hsic_has_a_finite_gradient_at_constant_predictions():
    # A zero-initialised model predicts a constant: HSIC(f, f) = 0 and the normalising square
    # root made every gradient NaN (a probe).
    s = jnp.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    f = jnp.zeros(6)
    for options in ({}, {"num_features": 16, "key": jax.random.key(0)}):
        normalized = functools.partial(dep.hsic, s=s, normalized=True, **options)
        value, grad = jax.value_and_grad(normalized)(f)
        assert float(value) == pytest.approx(0.0, abs=1e-6)
        assert np.isfinite(np.asarray(grad)).all(), options
