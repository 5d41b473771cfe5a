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
