"""Tests of fairjax.ot1d's grouped-samples layout: group_samples and its functions."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import ot1d


def _data(n, *, seed=0, num_groups=3, ties=False):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, num_groups, size=n).astype(np.int32)
    x = (rng.normal(size=n) + g).astype(np.float32)
    if ties:
        x = np.round(x, 1)
    return x, g


def _segment(arr, layout, g):
    a, c = int(layout.start[g]), int(layout.count[g])
    return np.asarray(arr[a : a + c])


def test_group_order_matches_numpy_lexsort():
    x, g = _data(500, ties=True)
    want = np.lexsort((x, g))
    np.testing.assert_array_equal(ot1d.group_order(x, g, num_groups=3), want)
    traced = jax.jit(lambda a, b: ot1d.group_order(a, b, num_groups=3))(x, g)
    np.testing.assert_array_equal(traced, want)


@pytest.mark.parametrize("weighted", [False, True])
def test_group_samples_segments_levels_knots(weighted):
    x, g = _data(300, seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2, size=300).astype(np.float32) if weighted else None
    lay = ot1d.group_samples(x, g, num_groups=3, weights=w)
    np.testing.assert_array_equal(lay.count, np.bincount(g, minlength=3))
    np.testing.assert_array_equal(lay.start, np.concatenate([[0], np.cumsum(lay.count)[:-1]]))
    for k in range(3):
        order = np.argsort(x[g == k], kind="stable")
        ws = np.ones(order.size) if w is None else w[g == k][order]
        cum = np.cumsum(ws)
        np.testing.assert_array_equal(_segment(lay.values, lay, k), x[g == k][order])
        np.testing.assert_allclose(_segment(lay.levels, lay, k), cum / cum[-1], rtol=1e-5)
        knots = (cum - ws) / (cum[-1] - ws[-1])
        np.testing.assert_allclose(_segment(lay.knots, lay, k), knots, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("num_groups", [3, 40])
def test_host_and_traced_layouts_agree(num_groups):
    # Ties, and an empty group (the last id never drawn), through the host's radix partition.
    x, g = _data(400, seed=3, num_groups=num_groups - 1, ties=True)
    host = ot1d.group_samples(x, g, num_groups=num_groups)
    traced = jax.jit(lambda a, b: ot1d.group_samples(a, b, num_groups=num_groups))(x, g)
    for a, b in zip(host, traced, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("num_groups", [1, 2, 40])
def test_host_and_traced_layouts_agree_on_signed_zeros_and_one_group(num_groups):
    # -0.0 and +0.0 are equal: the stable (traced) sort keeps them in input order, which the
    # host's unstable sort must reproduce; one group takes the compiled path (its division).
    rng = np.random.default_rng(11)
    x = np.round(rng.normal(size=600), 0).astype(np.float32)
    zero = x == 0
    x[zero] = np.where(rng.random(zero.sum()) < 0.5, -0.0, 0.0)
    g = rng.integers(0, num_groups, 600).astype(np.int32)
    host = ot1d.group_samples(x, g, num_groups=num_groups)
    traced = jax.jit(lambda a, b: ot1d.group_samples(a, b, num_groups=num_groups))(x, g)
    for a, b in zip(host, traced, strict=True):
        np.testing.assert_array_equal(np.asarray(a).view(np.uint8), np.asarray(b).view(np.uint8))


def test_empty_layout_under_jit_equals_the_eager_one():
    empty = (np.zeros(0, np.float32), np.zeros(0, np.int32))
    eager = ot1d.group_samples(*empty, num_groups=3)
    traced = jax.jit(lambda a, b: ot1d.group_samples(a, b, num_groups=3))(*empty)
    for a, b in zip(eager, traced, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_group_cdf_step_is_left_limit_and_uniform_agrees():
    x, g = _data(200, seed=4, ties=True)
    lay = ot1d.group_samples(x, g, num_groups=3)
    q, qg = _data(100, seed=5, ties=True)
    want = [np.mean(x[g == k] < t) for t, k in zip(q, qg, strict=True)]
    np.testing.assert_allclose(ot1d.group_cdf(lay, qg, q), want, rtol=1e-6)
    np.testing.assert_allclose(ot1d.group_cdf(lay, qg, q, uniform=True), want, rtol=1e-6)


def test_group_cdf_linear_interpolates_between_points():
    lay = ot1d.group_samples(jnp.array([0.0, 1.0, 2.0]), jnp.array([0, 0, 0]), num_groups=1)
    got = ot1d.group_cdf(
        lay, jnp.zeros(4, jnp.int32), jnp.array([-1.0, 0.5, 1.5, 3.0]), interpolation="linear"
    )
    np.testing.assert_allclose(got, [0.0, 0.5, 5 / 6, 1.0], rtol=1e-6)


@pytest.mark.parametrize("uniform", [False, True])
def test_group_quantile_matches_numpy(uniform):
    x, g = _data(301, seed=6)
    lay = ot1d.group_samples(x, g, num_groups=3)
    u = np.linspace(0, 1, 41).astype(np.float32)
    ks = jnp.arange(3)

    def quantiles(interpolation):
        fn = functools.partial(ot1d.group_quantile, interpolation=interpolation, uniform=uniform)
        return jax.jit(jax.vmap(lambda k: fn(lay, k, u)))(ks)

    step, lin = quantiles("step"), quantiles("linear")
    for k in range(3):
        np.testing.assert_array_equal(step[k], np.quantile(x[g == k], u, method="inverted_cdf"))
        np.testing.assert_allclose(lin[k], np.quantile(x[g == k], u), rtol=1e-5, atol=1e-6)


def test_group_quantile_weighted_matches_ot1d_quantile():
    x, g = _data(200, seed=7)
    w = np.random.default_rng(8).uniform(0.1, 3, size=200).astype(np.float32)
    lay = ot1d.group_samples(x, g, num_groups=3, weights=w)
    u = np.linspace(0, 1, 33).astype(np.float32)
    got = jax.jit(jax.vmap(lambda k: ot1d.group_quantile(lay, k, u)))(jnp.arange(3))
    for k in range(3):
        want = ot1d.quantile(x[g == k], u, weights=w[g == k])
        np.testing.assert_array_equal(got[k], want)


def test_barycenter_quantile_averages_group_quantiles():
    x, g = _data(300, seed=9)
    lay = ot1d.group_samples(x, g, num_groups=3)
    p = jnp.array([0.2, 0.3, 0.5])
    u = jnp.linspace(0.01, 1, 25)
    per_group = jax.jit(jax.vmap(lambda k: ot1d.group_quantile(lay, k, u)))(jnp.arange(3))
    want = p @ per_group
    np.testing.assert_allclose(ot1d.barycenter_quantile(lay, p, u), want, rtol=1e-6)
    # Against the barycenter of the padded (K, n) view: the same quantile function.
    bary = ot1d.barycenter(
        jnp.stack([jnp.asarray(np.pad(x[g == k], (0, 300 - np.sum(g == k)))) for k in range(3)]),
        weights=jnp.stack([jnp.arange(300) < np.sum(g == k) for k in range(3)]).astype(float),
        barycenter_weights=p,
    )
    mass = np.asarray(bary.masses)
    keep = mass > 0
    levels = np.cumsum(mass)[keep]
    np.testing.assert_allclose(
        ot1d.barycenter_quantile(lay, p, levels.astype(np.float32)),
        np.asarray(bary.points)[keep],
        rtol=1e-5,
        atol=1e-5,
    )


def test_empty_group_and_jit():
    x = jnp.array([1.0, 2.0, 3.0])
    lay = ot1d.group_samples(x, jnp.array([0, 0, 2]), num_groups=3)
    assert int(lay.count[1]) == 0
    cdf = jax.jit(lambda s, q: ot1d.group_cdf(s, jnp.array([1, 0]), q))(lay, jnp.array([5.0, 1.5]))
    np.testing.assert_allclose(cdf, [0.0, 0.5])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="groups"):
        ot1d.group_samples(jnp.ones(3), jnp.array([0, 1, 5]), num_groups=2)
    with pytest.raises(ValueError, match="values"):
        ot1d.group_samples(jnp.array([1.0, jnp.nan]), jnp.array([0, 1]), num_groups=2)
    with pytest.raises(TypeError, match="integer ids"):
        ot1d.group_samples(jnp.ones(2), jnp.eye(2), num_groups=2)
    lay = ot1d.group_samples(jnp.ones(2), jnp.array([0, 1]), num_groups=2)
    with pytest.raises(ValueError, match="interpolation"):
        ot1d.group_quantile(lay, 0, jnp.array([0.5]), interpolation="nearest")


def test_cdf_levels_exact_at_masks_and_top():
    w = jnp.array([0.1, 0.0, 0.2, 0.3, 0.0], jnp.float32)
    lev = ot1d.cdf_levels(w)
    assert lev[1] == lev[0] and lev[4] == 1 and lev[3] == 1
    np.testing.assert_array_equal(ot1d.cdf_levels(jnp.zeros(3)), [0.0, 0.0, 0.0])


def test_safe_power_values_and_gradient_at_zero():
    x = jnp.array([0.0, 0.5, 2.0])
    for p in (1, 1.5, 2, 3.0):
        np.testing.assert_allclose(ot1d.safe_power(x, p), np.asarray(x) ** p, rtol=1e-6)
        grad = jax.grad(lambda t, p=p: jnp.sum(ot1d.safe_power(t, p)))(x)
        assert np.all(np.isfinite(grad)) and grad[0] == (1 if p == 1 else 0)


# ----------------------------------------------------------------------------- soft views


def test_group_views_are_weighted_views_of_one_sort():
    rng = np.random.default_rng(11)
    x = rng.normal(size=50).astype(np.float32)
    m = rng.dirichlet(np.ones(3), size=50).astype(np.float32)
    w = rng.uniform(0.5, 2, size=50).astype(np.float32)
    gv = ot1d.group_views(x, m, weights=w)
    order = np.argsort(x, kind="stable")
    np.testing.assert_array_equal(gv.start, [0, 50, 100])
    np.testing.assert_array_equal(gv.count, [50, 50, 50])
    for k in range(3):
        np.testing.assert_array_equal(_segment(gv.values, gv, k), x[order])
        cum = np.cumsum((m[:, k] * w)[order])
        np.testing.assert_allclose(_segment(gv.levels, gv, k), cum / cum[-1], rtol=1e-5)
    np.testing.assert_allclose(gv.total, (m * w[:, None]).sum(0), rtol=1e-5)
    # Hard ids: the same group CDF as the segments of group_samples.
    g = rng.integers(0, 3, size=50)
    hard, seg = ot1d.group_views(x, g, num_groups=3), ot1d.group_samples(x, g, num_groups=3)
    q, qg = rng.normal(size=40).astype(np.float32), rng.integers(0, 3, size=40)
    np.testing.assert_allclose(ot1d.group_cdf(hard, qg, q), ot1d.group_cdf(seg, qg, q), rtol=1e-6)
    # Quantiles and linear CDFs read a view's points of the group only: u = 0 (another
    # group's first point gave the pooled minimum), the linear partners (another group's
    # point between two of this group's gave 4.2 for 8.2), with weights and zero weights.
    u = np.linspace(0, 1, 41, dtype=np.float32)
    w0 = np.where(rng.random(50) < 0.2, 0, w).astype(np.float32)
    for weights in (None, w0):
        hard = ot1d.group_views(x, g, num_groups=3, weights=weights)
        seg = ot1d.group_samples(x, g, num_groups=3, weights=weights)
        for k in range(3):
            np.testing.assert_array_equal(
                ot1d.group_quantile(hard, k, u), ot1d.group_quantile(seg, k, u)
            )
            for name, fn in (("quantile", ot1d.group_quantile), ("cdf", ot1d.group_cdf)):
                arg = u if name == "quantile" else q
                np.testing.assert_allclose(
                    fn(hard, k, arg, interpolation="linear"),
                    fn(seg, k, arg, interpolation="linear"),
                    rtol=1e-5,
                    atol=1e-5,
                    err_msg=f"{name}, group {k}",
                )
        np.testing.assert_allclose(
            ot1d.barycenter_quantile(hard, jnp.array([0.5, 0.3, 0.2]), u, interpolation="linear"),
            ot1d.barycenter_quantile(seg, jnp.array([0.5, 0.3, 0.2]), u, interpolation="linear"),
            rtol=1e-5,
            atol=1e-5,
        )


def test_barycenter_quantile_checks_its_proportions():
    # [1.5, -0.5] returned a number (8.5) for a barycenter that does not exist.
    lay = ot1d.group_samples(jnp.arange(4.0), jnp.array([0, 0, 1, 1]), num_groups=2)
    for p in ([1.5, -0.5], [0.5, 0.4]):
        with pytest.raises(ValueError, match="`proportions` must be non-negative and sum to 1"):
            ot1d.barycenter_quantile(lay, jnp.array(p), jnp.array([0.5]))


def test_integer_points_and_low_precision_levels():
    # Integer points were compared and returned as integers (a level of 0 or 1); bfloat16
    # levels moved the step index by 3% of the group through their (1 - 4 eps) guard.
    lay = ot1d.group_samples(jnp.arange(10.0), jnp.zeros(10, int), num_groups=1)
    np.testing.assert_allclose(ot1d.group_cdf(lay, jnp.array([0]), jnp.array([5])), [0.5])
    left, right = ot1d.group_cdf_limits(lay, jnp.array([0]), jnp.array([5]))
    np.testing.assert_allclose([left[0], right[0]], [0.5, 0.6], rtol=1e-6)
    np.testing.assert_array_equal(ot1d.group_quantile(lay, 0, jnp.array([0, 1])), [0.0, 9.0])
    big = ot1d.group_samples(jnp.arange(1000.0), jnp.zeros(1000, int), num_groups=1)
    for dtype in (jnp.bfloat16, jnp.float16):
        level = jnp.array([0.5], dtype)
        want = ot1d.group_quantile(big, 0, level.astype(jnp.float32))
        got = ot1d.group_quantile(big, 0, level)
        assert got.dtype == dtype  # the levels' dtype, as documented
        np.testing.assert_array_equal(got, want.astype(dtype))
        bary = ot1d.barycenter_quantile(big, jnp.array([1.0]), level)
        np.testing.assert_array_equal(bary, want.astype(dtype))


def test_merged_quantiles_integrate_wasserstein_and_views_agree_with_segments():
    rng = np.random.default_rng(12)
    x = np.round(rng.normal(size=60), 1).astype(np.float32)
    g = rng.integers(0, 2, size=60)
    want = float(ot1d.wasserstein_distance(x[g == 0], x[g == 1], p=2, root=False))
    for lay in (ot1d.group_samples(x, g, num_groups=2), ot1d.group_views(x, g, num_groups=2)):
        mq = ot1d.merged_quantiles(lay)
        assert float(mq.mass.sum()) == pytest.approx(1.0)
        got = float(mq.mass @ (mq.quantiles[0] - mq.quantiles[1]) ** 2)
        assert got == pytest.approx(want, rel=1e-6)


def test_pooled_group_cdfs_read_the_views():
    rng = np.random.default_rng(13)
    x = rng.normal(size=30).astype(np.float32)
    m = rng.dirichlet(np.ones(2), size=30).astype(np.float32)
    pc = ot1d.pooled_group_cdfs(x, m)
    gv = ot1d.group_views(x, m)
    np.testing.assert_array_equal(pc.cdfs, np.asarray(gv.levels).reshape(2, 30).T)
    np.testing.assert_array_equal(pc.counts, gv.total)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, "short", "long"])
def test_group_cdf_limits_equal_group_cdf_at_both_sides(weighted, ties):
    # Left limit: group_cdf at t; right limit: group_cdf at the next float above t. One search,
    # a second only when some query ties (both branches of the cond are exercised).
    rng = np.random.default_rng(7)
    x = rng.normal(size=300).astype(np.float32)
    g = rng.integers(0, 3, 300).astype(np.int32)
    w = rng.uniform(size=300).astype(np.float32) if weighted else None
    if ties == "long":  # a run of ties longer than the probes: the second search
        x[np.flatnonzero(g == g[0])[:8]] = x[0]
    gsm = ot1d.group_samples(x, g, num_groups=3, weights=w)
    q = (x[:50] if ties else x[:50] + 1e-3).astype(np.float32)
    qg = g[:50]
    left, right = jax.jit(lambda a, b: ot1d.group_cdf_limits(gsm, a, b, uniform=w is None))(qg, q)
    want_left = ot1d.group_cdf(gsm, qg, q, uniform=w is None)
    want_right = ot1d.group_cdf(gsm, qg, np.nextafter(q, np.float32(np.inf)), uniform=w is None)
    np.testing.assert_array_equal(left, want_left)
    np.testing.assert_array_equal(right, want_right)
    assert bool(np.any(right > left)) == bool(ties)


def test_zero_weight_rows_are_never_read_by_a_quantile_or_a_cdf():
    # Rows of weight 0 (masked, holding anything) stayed in value order in their segment: the
    # linear quantile interpolated towards them, the step quantile at 0 returned one, and
    # the type-7 knots divided by the weight of the last row, 0 when masked.
    rng = np.random.default_rng(1)
    G = 3
    layout = jax.jit(functools.partial(ot1d.group_samples, num_groups=G))
    quantile = jax.jit(ot1d.group_quantile, static_argnames="interpolation")
    cdf = jax.jit(ot1d.group_cdf)
    n = 24  # one shape: one compiled program per path
    for _ in range(25):
        x = rng.normal(size=n).astype(np.float32)
        g = rng.integers(0, G, n)
        w = rng.uniform(0.1, 2, n).astype(np.float32)
        w[rng.uniform(size=n) < 0.3] = 0
        x[w == 0] = rng.choice([-1e3, 1e3, 0.3], size=int((w == 0).sum()))
        u = rng.uniform(size=7).astype(np.float32)
        u[:2] = 0.0, 1.0
        points = rng.normal(size=5).astype(np.float32)
        for samples in (ot1d.group_samples(x, g, num_groups=G, weights=w), layout(x, g, weights=w)):
            for k in range(G):
                kept = (g == k) & (w > 0)
                if not kept.any():
                    continue
                for interp in ("step", "linear"):
                    np.testing.assert_allclose(
                        quantile(samples, k, u, interpolation=interp),
                        ot1d.quantile(x[kept], u, weights=w[kept], method=interp),
                        atol=1e-5,
                    )
                np.testing.assert_allclose(
                    cdf(samples, np.full(5, k), points),
                    ot1d.cdf(x[kept], points, weights=w[kept]),
                    atol=1e-6,
                )
