"""Tests of fairjax.penalties.sinkhorn against POT and against ott-jax called directly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
from ott.geometry import pointcloud
from ott.tools import sinkhorn_divergence as ott_sd

from fairjax.penalties import sinkhorn

TIGHT = {"threshold": 1e-10, "max_iterations": 20000}


def _entropic_ot_pot(X, Y, a, b, eps):
    """<P, C> + eps sum P log P with POT's log-domain Sinkhorn plan (no ott-jax involved)."""
    M = ot.dist(X, Y, metric="sqeuclidean")
    P = ot.sinkhorn(a, b, M, eps, method="sinkhorn_log", stopThr=1e-7, numItermax=5000)
    plogp = np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0)
    return np.sum(P * M) + eps * np.sum(plogp)


def _divergence_pot(X, Y, a, b, eps):
    # The entropy and KL(P | a x b) versions differ by terms in a and b that the debiasing cancels.
    return (
        _entropic_ot_pot(X, Y, a, b, eps)
        - 0.5 * _entropic_ot_pot(X, X, a, a, eps)
        - 0.5 * _entropic_ot_pot(Y, Y, b, b, eps)
    )


def _data(seed=0, n=12, r=2):
    rng = np.random.default_rng(seed)
    s = (np.arange(n) % 3 == 0).astype(int)
    X = rng.normal(size=(n, r)) + 0.8 * s[:, None]
    w = rng.uniform(0.3, 2.0, size=n)
    return X, s, w


def test_matches_pot_debiased_divergence():
    X, s, w = _data()
    eps = 0.5
    a, b = w[s == 0] / w[s == 0].sum(), w[s == 1] / w[s == 1].sum()
    ref = _divergence_pot(X[s == 0], X[s == 1], a, b, eps)
    with jax.enable_x64(True):
        got = sinkhorn(
            X,
            s,
            num_groups=2,
            weights=w,
            epsilon=eps,
            relative_epsilon=None,
            reference="pairwise",
            solver_kwargs=TIGHT,
        )
        np.testing.assert_allclose(got, ref, rtol=1e-6)


@pytest.mark.slow
def test_equals_ott_on_the_sliced_groups_pooled_reference():
    X, s, w = _data(1)
    eps = 0.3
    g = 1  # the smaller group, compared with all rows

    @jax.jit
    def direct(x_g, a_g, x, b):
        return ott_sd.sinkhorn_divergence(
            pointcloud.PointCloud, x_g, x, a=a_g, b=b, epsilon=eps, solve_kwargs=TIGHT
        )[0]

    with jax.enable_x64(True):
        per_group, out = sinkhorn(
            X,
            s,
            num_groups=2,
            weights=w,
            epsilon=eps,
            relative_epsilon=None,
            reduction="none",
            solver_kwargs=TIGHT,
            return_output=True,
        )
        ref = direct(X[s == g], w[s == g] / w[s == g].sum(), X, w / w.sum())
        np.testing.assert_allclose(per_group[g], ref, rtol=1e-6, atol=1e-9)
    # ott-jax's diagnostics come back, one entry per comparison
    assert out.divergence.shape == (2,)
    assert np.all(np.asarray(out.converged[0]))


def _penalty_and_grad():
    """One compiled program reused by the edge-case checks: 3 groups, per-group values."""

    def f(z, groups, weights):
        per_group = sinkhorn(z, groups, num_groups=3, weights=weights, reduction="none")
        return jnp.sum(per_group), per_group

    return jax.jit(jax.value_and_grad(f, has_aux=True))


@pytest.mark.slow
def test_edge_cases_empty_group_coinciding_points_masks():
    f = _penalty_and_grad()
    # Groups 0 and 1 hold the same points (each point coincides with one of the other group);
    # group 2 is empty.
    X = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    H = jnp.asarray(np.r_[X, X])
    s = np.r_[np.zeros(6, int), np.ones(6, int)]
    w = np.ones(12, np.float32)
    (val, per_group), g = f(H, s, w)
    assert abs(float(val)) < 1e-5
    assert float(per_group[2]) == 0.0
    assert np.all(np.isfinite(np.asarray(g)))
    # All rows at one point: the relative epsilon falls back to the absolute one.
    (val, _), g = f(jnp.ones((12, 3)), s, w)
    assert abs(float(val)) < 1e-6
    assert np.all(np.isfinite(np.asarray(g)))
    # Masked rows (weight 0) give the value of the subset, relative epsilon included.
    Xd, sd, wd = _data(3, n=12)
    keep = np.arange(12) % 5 != 2
    (_, masked), g = f(jnp.asarray(Xd, jnp.float32), sd, (wd * keep).astype(np.float32))
    assert np.all(np.isfinite(np.asarray(g)))
    subset = sinkhorn(Xd[keep], sd[keep], num_groups=2, weights=wd[keep], reduction="none")
    np.testing.assert_allclose(masked[:2], subset, rtol=1e-4, atol=1e-6)
    assert float(masked[2]) == 0.0


def test_jit_gradient_descends():
    X, s, w = _data(4)
    f = jax.jit(
        jax.value_and_grad(lambda z: sinkhorn(z, s, num_groups=2, weights=w, reference="pairwise"))
    )
    val, g = f(jnp.asarray(X, jnp.float32))
    assert float(val) > 0 and np.all(np.isfinite(np.asarray(g)))
    # A small step against the gradient lowers the divergence.
    step = jnp.asarray(X, jnp.float32) - 0.05 * g / jnp.max(jnp.abs(g))
    assert float(f(step)[0]) < float(val)


def test_bad_inputs():
    X, s, _ = _data(5)
    with pytest.raises(ValueError, match="`epsilon` must be > 0"):
        sinkhorn(X, s, num_groups=2, epsilon=0.0)
    with pytest.raises(ValueError, match="`relative_epsilon`"):
        sinkhorn(X, s, num_groups=2, relative_epsilon="std")
    with pytest.raises(ValueError, match="`reference`"):
        sinkhorn(X, s, num_groups=2, reference="barycenter")
    with pytest.raises(ValueError, match="at least two groups"):
        sinkhorn(X, np.zeros(12, int), num_groups=1, reference="pairwise")
    with pytest.raises(TypeError, match="`solver_kwargs` must be a mapping"):
        sinkhorn(X, s, num_groups=2, solver_kwargs=[("threshold", 1e-3)])
    # -1/+1 labels conditioned on no row and read 0 (a probe).
    y = np.where(np.arange(len(s)) % 2 == 0, 1, -1)
    with pytest.raises(ValueError, match=r"`labels` must be binary \(0 or 1\)"):
        sinkhorn(X, s, num_groups=2, labels=y, criterion="false_positive_parity")


# ----------------------------------------------------------------------------- sliced groups


@jax.jit
def _ott_direct(x, a, y, b, eps):
    """ott-jax called directly on two sliced, weighted groups (what the wrapper must equal)."""
    return ott_sd.sinkhorn_divergence(
        pointcloud.PointCloud, x, y, a=a / a.sum(), b=b / b.sum(), epsilon=eps
    )


def _unbalanced(seed=6, n=40, n0=13, r=3):
    rng = np.random.default_rng(seed)
    s = np.r_[np.zeros(n0, int), np.ones(n - n0, int)]
    rng.shuffle(s)
    X = rng.normal(size=(n, r)) + 0.7 * s[:, None]
    w = rng.uniform(0.3, 2.0, size=n)
    return X, s, w


@pytest.mark.slow
def test_pairwise_value_gradient_and_iterations_equal_ott_on_sliced_groups():
    X, s, w = _unbalanced()
    with jax.enable_x64(True):
        Xj = jnp.asarray(X)
        # The default relative epsilon is 0.1 x the weighted mean squared distance of all rows.
        wn = w / w.sum()
        mean_cost = np.sum(wn[:, None] * wn[None, :] * ot.dist(X, X, metric="sqeuclidean"))
        eps = 0.1 * mean_cost

        def wrapper(z):
            value, out = sinkhorn(
                z, s, num_groups=2, weights=w, reference="pairwise", return_output=True
            )
            return value, out

        def direct(z):
            value, out = _ott_direct(z[s == 0], w[s == 0], z[s == 1], w[s == 1], eps)
            return value, out

        (v_w, out_w), g_w = jax.value_and_grad(wrapper, has_aux=True)(Xj)
        (v_d, out_d), g_d = jax.value_and_grad(direct, has_aux=True)(Xj)
        np.testing.assert_allclose(v_w, v_d, rtol=1e-10)
        np.testing.assert_allclose(g_w, g_d, rtol=1e-7, atol=1e-10)
        # The same three problems: the same numbers of iterations.
        assert [int(k[0]) for k in out_w.n_iters] == [int(k) for k in out_d.n_iters]
        assert np.all(np.isfinite(np.asarray(g_w))) and float(v_w) > 0


@pytest.mark.slow
def test_three_groups_every_comparison_equals_ott_on_sliced_groups():
    rng = np.random.default_rng(7)
    n = 30
    s = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 2)) + 0.5 * s[:, None]
    w = rng.uniform(0.5, 1.5, size=n)
    eps = 0.4
    kw = dict(num_groups=3, weights=w, epsilon=eps, relative_epsilon=None, reduction="none")
    with jax.enable_x64(True):
        pairs = sinkhorn(X, s, reference="pairwise", **kw)
        pooled = sinkhorn(X, s, **kw)
        for i in range(3):
            ref = _ott_direct(X[s == i], w[s == i], X, w, eps)[0]
            np.testing.assert_allclose(pooled[i], ref, rtol=1e-6)
            for j in range(i + 1, 3):
                ref = _ott_direct(X[s == i], w[s == i], X[s == j], w[s == j], eps)[0]
                np.testing.assert_allclose(pairs[i, j], ref, rtol=1e-6)
                np.testing.assert_allclose(pairs[j, i], ref, rtol=1e-6)


@pytest.mark.slow
def test_group_size_under_jit_equals_the_eager_value():
    X, s, w = _unbalanced(8)
    kw = dict(num_groups=2, weights=w, reference="pairwise", solver_kwargs=TIGHT)
    with jax.enable_x64(True):
        eager = sinkhorn(X, s, **kw)

        # Traced group ids: the static block size comes from `group_size`.
        @jax.jit
        def traced(z, g):
            return sinkhorn(z, g, group_size=27, **kw)

        np.testing.assert_allclose(traced(X, s), eager, rtol=1e-9)
        # Without `group_size`, traced ids fall back to blocks of all n rows: same value.
        full = jax.jit(lambda z, g: sinkhorn(z, g, **kw))(X, s)
        np.testing.assert_allclose(full, eager, rtol=1e-7)


@pytest.mark.slow
def test_group_size_overflow_raises_when_concrete_and_truncates_when_traced():
    X, s, w = _unbalanced(9)  # groups of 13 and 27 rows
    kw = dict(num_groups=2, weights=w, reference="pairwise", epsilon=0.5, relative_epsilon=None)
    with pytest.raises(ValueError, match="`group_size=20` is smaller than the largest group"):
        sinkhorn(X, s, group_size=20, **kw)
    # The shared check of scalar options: a count must be an integer, and positive.
    with pytest.raises(ValueError, match="`group_size` must be an integer"):
        sinkhorn(X, s, group_size=20.0, **kw)
    with pytest.raises(ValueError, match="`group_size` must be > 0"):
        sinkhorn(X, s, group_size=0, **kw)
    with jax.enable_x64(True):
        got = jax.jit(lambda z, g: sinkhorn(z, g, group_size=20, **kw))(X, s)
        # Documented: each group keeps its first `group_size` rows (in row order).
        first0, first1 = np.flatnonzero(s == 0)[:20], np.flatnonzero(s == 1)[:20]
        ref = _ott_direct(X[first0], w[first0], X[first1], w[first1], 0.5)[0]
        np.testing.assert_allclose(got, ref, rtol=1e-7)
        assert not np.isclose(float(got), float(sinkhorn(X, s, **kw)), rtol=1e-3)


@pytest.mark.slow
def test_eager_empty_group_labels_and_membership_matrix():
    X, s, w = _unbalanced(10)
    f = jax.value_and_grad(
        lambda z: jnp.sum(sinkhorn(z, s, num_groups=3, weights=w, reduction="none"))
    )
    val, g = f(jnp.asarray(X, jnp.float32))  # group 2 is empty: a block of one padded row
    assert np.isfinite(float(val)) and np.all(np.isfinite(np.asarray(g)))
    per_group = sinkhorn(X, s, num_groups=3, weights=w, reduction="none")
    assert float(per_group[2]) == 0.0
    # Conditioning on a label is the divergence of the rows with that label.
    y = np.arange(len(s)) % 3 != 0
    got = sinkhorn(X, s, num_groups=2, weights=w, labels=y, reference="pairwise")
    ref = sinkhorn(X[y], s[y], num_groups=2, weights=w[y], reference="pairwise")
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # A one-hot membership matrix is the same as the integer ids.
    onehot = np.eye(2)[s]
    np.testing.assert_allclose(
        sinkhorn(X, onehot, weights=w), sinkhorn(X, s, num_groups=2, weights=w), rtol=1e-6
    )


def test_block_sizes_are_bucketed_so_nearby_batches_share_one_program():
    from fairjax.penalties._sinkhorn import _bucket, _core_jit

    sizes = [_bucket(r, 10**6) for r in range(1, 5000)]
    rows = np.arange(1, 5000)
    assert np.all(np.diff(sizes) >= 0) and np.all(sizes >= rows)
    assert np.all(np.asarray(sizes) <= np.maximum(rows * 1.125, rows + 1))
    assert len(set(sizes)) < 100  # a coarse grid, not one size per row count
    assert _bucket(50, 40) == 40  # never more than the rows there are
    rng = np.random.default_rng(11)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    kw = dict(num_groups=2, reference="pairwise")
    s1 = (np.arange(200) % 2).astype(int)  # 100 / 100
    s2 = (np.arange(200) < 97).astype(int)  # 97 / 103
    jax.block_until_ready(sinkhorn(X, s1, **kw))
    before = _core_jit._cache_size()
    jax.block_until_ready(sinkhorn(X, s2, **kw))
    assert _core_jit._cache_size() == before


@pytest.mark.slow
def test_deprecated_label_value_warns_and_gives_the_criterion_value():
    X, s, w = _data(7, n=15)
    y = (np.arange(15) % 2).astype(int)
    kw = dict(num_groups=2, weights=w, labels=y, reference="pairwise")
    for label_value, criterion in ((1, "equal_opportunity"), (0, "false_positive_parity")):
        with pytest.warns(DeprecationWarning, match=f"criterion='{criterion}'"):
            old = sinkhorn(X, s, label_value=label_value, **kw)
        np.testing.assert_array_equal(old, sinkhorn(X, s, criterion=criterion, **kw))
    with pytest.warns(DeprecationWarning, match="no effect"):
        alone = sinkhorn(X, s, num_groups=2, weights=w, label_value=1)
    np.testing.assert_array_equal(alone, sinkhorn(X, s, num_groups=2, weights=w))
    with pytest.raises(ValueError, match="give the criterion once"):
        sinkhorn(X, s, criterion="equal_opportunity", label_value=1, **kw)
    with pytest.raises(ValueError, match="`reduction`"):
        sinkhorn(X, s, num_groups=2, reduction="squared")


@pytest.mark.slow
@pytest.mark.parametrize("reference", ["pooled", "pairwise"])
def test_equalized_odds_is_the_sum_of_its_two_conditions(reference):
    X, s, w = _data(8, n=18)
    y = (np.arange(18) % 2).astype(int)
    kw = dict(num_groups=2, weights=w, labels=y, reference=reference, solver_kwargs=TIGHT)
    eodds, out = sinkhorn(X, s, criterion="equalized_odds", return_output=True, **kw)
    tpr, out1 = sinkhorn(X, s, criterion="equal_opportunity", return_output=True, **kw)
    fpr, out0 = sinkhorn(X, s, criterion="false_positive_parity", return_output=True, **kw)
    np.testing.assert_allclose(eodds, tpr + fpr, rtol=1e-5, atol=1e-7)
    # The output holds the comparisons of y = 1, then those of y = 0.
    assert out.divergence.shape[0] == out1.divergence.shape[0] + out0.divergence.shape[0]
    np.testing.assert_allclose(
        out.divergence, np.concatenate([out1.divergence, out0.divergence]), rtol=1e-5, atol=1e-7
    )


def test_each_group_gets_a_block_of_its_own_size():
    X, s, w = _unbalanced(12, n=60, n0=9)  # groups of 9 and 51 rows
    kw = dict(num_groups=2, weights=w, reference="pairwise", epsilon=0.5, relative_epsilon=None)
    _, out = sinkhorn(X, s, return_output=True, **kw)
    from fairjax.penalties._sinkhorn import _bucket

    f_xy, g_xy = out.potentials[0]
    # The largest group's block is its bucketed size; the small group's, that size halved
    # while it holds the group's 9 rows (52 -> 26 -> 13): padded by less than 2x, not to 52.
    assert g_xy.shape[-1] == _bucket(51, 60) == 52 and f_xy.shape[-1] == 13
    # Traced ids: the same blocks from one bound per group, and the same value.
    traced = jax.jit(lambda z, g: sinkhorn(z, g, group_size=np.array([9, 51]), **kw))(X, s)
    np.testing.assert_allclose(traced, sinkhorn(X, s, **kw), rtol=1e-5)
    ref = _ott_direct(X[s == 0], w[s == 0], X[s == 1], w[s == 1], 0.5)[0]
    np.testing.assert_allclose(traced, ref, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("reference", ["pooled", "pairwise"])
def test_groups_of_many_sizes_equal_ott_on_sliced_groups_in_comparison_order(reference):
    # Six groups of six different sizes: more block shapes than one program batches, so the
    # pooled comparisons share one size; pairwise, fifteen comparisons of many shapes too.
    # Three groups of sizes 5, 17, 30 (three shapes, solved in an order other than the
    # comparisons'): each value lands at its own comparison.
    rng = np.random.default_rng(13)
    eps = 0.5
    for sizes in [(5, 17, 30), (3, 5, 8, 12, 20, 33)]:
        s = np.repeat(np.arange(len(sizes)), sizes)
        rng.shuffle(s)
        X = rng.normal(size=(len(s), 2)) + 0.3 * s[:, None]
        w = rng.uniform(0.5, 1.5, size=len(s))
        kw = dict(num_groups=len(sizes), weights=w, epsilon=eps, relative_epsilon=None)
        with jax.enable_x64(True):
            got = np.asarray(sinkhorn(X, s, reference=reference, reduction="none", **kw))
            for i in range(len(sizes)):
                if reference == "pooled":
                    ref = _ott_direct(X[s == i], w[s == i], X, w, eps)[0]
                    np.testing.assert_allclose(got[i], ref, rtol=1e-6)
                    continue
                for j in range(i + 1, len(sizes)):
                    ref = _ott_direct(X[s == i], w[s == i], X[s == j], w[s == j], eps)[0]
                    np.testing.assert_allclose(got[i, j], ref, rtol=1e-6)


def test_group_size_per_group_checks():
    X, s, w = _unbalanced(9)  # groups of 13 and 27 rows
    kw = dict(num_groups=2, weights=w, reference="pairwise", epsilon=0.5, relative_epsilon=None)
    with pytest.raises(ValueError, match=r"`group_size\[1\]=20` is smaller than group 1"):
        sinkhorn(X, s, group_size=(13, 20), **kw)
    with pytest.raises(ValueError, match="one integer or 2 integers"):
        sinkhorn(X, s, group_size=(13, 27, 5), **kw)
    with pytest.raises(ValueError, match=r"`group_size\[0\]` must be > 0"):
        sinkhorn(X, s, group_size=(0, 27), **kw)
    with pytest.raises(ValueError, match=r"`group_size\[1\]` must be an integer"):
        sinkhorn(X, s, group_size=[13, 27.5], **kw)


def test_nearby_compositions_share_a_program_and_group_size_must_be_static():
    from fairjax.penalties._sinkhorn import _core_jit

    rng = np.random.default_rng(14)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    kw = dict(num_groups=2, reference="pairwise", epsilon=0.5, relative_epsilon=None)
    # Groups of 60-66 and 134-140 rows: one block size for the large group (bucket 144) and
    # one for the small (72), so one program for the seven compositions.
    jax.block_until_ready(sinkhorn(X, (np.arange(200) < 60).astype(int), **kw))
    before = _core_jit._cache_size()
    for k in range(61, 67):
        jax.block_until_ready(sinkhorn(X, (np.arange(200) < k).astype(int), **kw))
    assert _core_jit._cache_size() == before
    s = (np.arange(200) < 60).astype(int)
    with pytest.raises(TypeError, match="`group_size` must be static"):
        jax.jit(lambda g: sinkhorn(X, g, group_size=jnp.bincount(g, length=2), **kw))(s)
    with pytest.raises(TypeError, match="`group_size` must be an integer or a sequence"):
        sinkhorn(X, s, group_size=b"\x03\x07", **kw)


def test_gradient_in_the_weights_is_finite_and_equals_finite_differences():
    # A group smaller than its block is padded with slots of weight 0, where ott-jax's
    # gradient in the marginal is NaN: it reached every weight (reported by a probe).
    x = np.random.default_rng(0).normal(size=22)
    g = np.repeat([0, 1], [12, 10])
    with jax.enable_x64(True):

        def f(w):
            return sinkhorn(
                jnp.asarray(x),
                g,
                num_groups=2,
                weights=w,
                epsilon=0.1,
                relative_epsilon=None,
                solver_kwargs=TIGHT,
            )

        w = jnp.ones(22, jnp.float64)
        grad = np.asarray(jax.grad(f)(w))
        assert np.isfinite(grad).all()
        rows = [0, 5, 13, 20]
        fd = [(f(w.at[i].add(1e-5)) - f(w.at[i].add(-1e-5))) / 2e-5 for i in rows]
        np.testing.assert_allclose(grad[rows], fd, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("reference", ["pooled", "pairwise"])
def test_a_common_shift_of_the_points_changes_nothing(reference):
    # ott-jax's squared cost expands |x|^2 + |y|^2 - 2 x.y: at 1e5 in float32 that rounded
    # every distance away (1.02 became 53.0) until the points were centred.
    rng = np.random.default_rng(13)
    h = np.r_[rng.normal(size=100), rng.normal(size=100) + 1]
    s = np.repeat([0, 1], 100)
    base = float(sinkhorn(h.astype(np.float32), s, num_groups=2, reference=reference))
    for shift in (1e4, 1e5):
        shifted = float(
            sinkhorn((h + shift).astype(np.float32), s, num_groups=2, reference=reference)
        )
        np.testing.assert_allclose(shifted, base, rtol=5e-3)


def test_the_centring_ignores_masked_rows_and_leaves_other_costs_alone():
    # The centre was the plain mean of every row: one masked outlier (weight 0, at 1e9) moved
    # it and cancelled every digit of the real rows (0.29 became 103). A cost that is not a
    # function of x - y (cosine) is not shifted at all (review of this change).
    from ott.geometry import costs

    rng = np.random.default_rng(13)
    h = np.r_[rng.normal(size=100), rng.normal(size=100) + 1]
    s = np.repeat([0, 1], 100)
    far, w = h.copy(), np.ones(200)
    far[0], w[0] = 1e9, 0.0
    masked = float(sinkhorn(far.astype(np.float32), s, num_groups=2, weights=w))
    dropped = float(sinkhorn(h[1:].astype(np.float32), s[1:], num_groups=2))
    np.testing.assert_allclose(masked, dropped, rtol=1e-5)
    x = rng.normal(size=(60, 2)) + 2.0
    g = np.repeat([0, 1], 30)
    kw = dict(cost_fn=costs.Cosine(), relative_epsilon=None, epsilon=0.05, solver_kwargs=TIGHT)
    kw["reference"] = "pairwise"
    got = float(sinkhorn(x, g, num_groups=2, **kw))
    want = ott_sd.sinkhorn_divergence(
        pointcloud.PointCloud,
        jnp.asarray(x[:30]),
        jnp.asarray(x[30:]),
        cost_fn=costs.Cosine(),
        epsilon=0.05,
        solve_kwargs=TIGHT,
    )[0]
    np.testing.assert_allclose(got, float(want), rtol=1e-4)
