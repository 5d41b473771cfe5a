"""One-dimensional optimal transport on weighted empirical distributions.

In one dimension optimal transport is sorting: distances between distributions are integrals of
differences of cumulative distribution functions (CDFs) or of quantile functions. Everything here
keeps static shapes: groups of different sizes are held as one pooled array with group ids (or a
membership matrix) and weights, a zero weight acting as a mask, so the functions jit, vmap and
differentiate.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["PooledCDFs", "pooled_group_cdfs"]


class PooledCDFs(NamedTuple):
    """Per-group CDFs evaluated at every point of the pooled sample (see
    :func:`pooled_group_cdfs`).

    Attributes:
      points: the pooled values in increasing order, shape ``(n,)``.
      cdfs: ``cdfs[i, g]`` is :math:`F_g(\\mathrm{points}_i)`, the weighted fraction of group
        ``g`` at or below ``points[i]`` once the tie run containing ``i`` is complete (see
        ``run_end``); shape ``(n, G)``. An empty group has a CDF of 0 everywhere.
      pooled_cdf: the CDF of all groups together at the same points, shape ``(n,)``.
      run_end: True where ``points[i] < points[i + 1]`` (and at the last point): only there
        are ``cdfs`` the exact right-continuous CDFs; inside a run of ties they are partial sums.
      counts: total weight of each group, shape ``(G,)``.
    """

    points: Array
    cdfs: Array
    pooled_cdf: Array
    run_end: Array
    counts: Array


def pooled_group_cdfs(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
) -> PooledCDFs:
    """Weighted CDF of every group, evaluated at all points of the pooled sample.

    With the pooled values sorted, :math:`x_{(1)} \\le \\dots \\le x_{(n)}`, and
    :math:`W_g = \\sum_i w_i M_{ig}` the weight of group ``g``,

    .. math::

        F_g(x_{(k)}) = \\frac{1}{W_g} \\sum_{j \\le k} w_{(j)} M_{(j) g}.

    Every supremum or integral of CDF differences between the groups is attained on, or is a sum
    over, this grid: this is the common core of the Kolmogorov-Smirnov and Wasserstein-1
    unfairness measures. Cost: one sort and one cumulative sum, :math:`O(n \\log n + nG)`.

    Args:
      values: scores, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``; zero weight masks a row.

    Returns:
      A :class:`PooledCDFs`.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import pooled_group_cdfs
      >>> out = pooled_group_cdfs(jnp.array([0.3, 0.1, 0.2]), jnp.array([1, 0, 1]), num_groups=2)
      >>> out.points
      Array([0.1, 0.2, 0.3], dtype=float32)
      >>> out.cdfs[:, 1]
      Array([0. , 0.5, 1. ], dtype=float32)
    """
    x = v.as_array(values, "values", ndim=1)
    m = gs.membership(groups, num_groups=num_groups)
    v.check_length(m, x.shape[0], "groups", "values")
    dtype = v.float_dtype(x, m, weights)
    w = v.check_weights(weights, x.shape[0])
    w = jnp.ones(x.shape, dtype) if w is None else w.astype(dtype)
    order = jnp.argsort(x)
    points = x[order]
    mass = m[order].astype(dtype) * w[order, None]
    cumulative = jnp.cumsum(mass, axis=0)
    counts = cumulative[-1]
    cdfs = gs.safe_divide(cumulative, counts)
    pooled = jnp.cumsum(w[order])
    pooled_cdf = gs.safe_divide(pooled, pooled[-1])
    run_end = jnp.concatenate([points[1:] > points[:-1], jnp.ones((1,), bool)])
    return PooledCDFs(points, cdfs, pooled_cdf, run_end, counts)
