"""One-dimensional optimal transport between weighted samples: CDFs, quantiles, W_p, barycenters.

In one dimension optimal transport is sorting: distances between distributions are integrals of
differences of cumulative distribution functions (CDFs) or of quantile functions. Everything here
keeps static shapes: groups of different sizes are held as one pooled array with group ids (or a
membership matrix) and weights, a zero weight acting as a mask, so the functions jit, vmap and
differentiate.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax._nan import propagate_nan
from fairjax._shapes import bucket, pad_rows
from fairjax.ot1d._layout import (
    GroupedSamples,
    _cumulative_levels,
    _on_host,
    _view_inputs,
    _view_levels,
    cdf_levels,
)
from fairjax.ot1d._queries import merged_quantiles

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "Barycenter",
    "PooledCDFs",
    "barycenter",
    "cdf",
    "pooled_group_cdfs",
    "quantile",
    "safe_power",
    "wasserstein_distance",
]


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
    On the CPU backend with concrete inputs, integer ids (up to 16 groups) and unit weights,
    the sort and the counts run in NumPy on the host (like :func:`group_samples`), which is
    faster there than XLA's CPU sort; otherwise (an accelerator, under ``jit``, weights or a
    membership matrix) they run in one jitted program. Both give the same CDFs at the ends of
    tie runs.

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
    g = v.check_groups(groups, num_groups=num_groups)
    v.check_length(g, x.shape[0], "groups", "values")
    if weights is None and g.ndim == 1 and x.shape[0] and num_groups <= _HOST_MAX_GROUPS:
        if _on_host(x, g):
            v.check_finite(x, "values")
            return _host_pooled_cdfs(np.asarray(x), np.asarray(g), num_groups)
    m = gs.membership(g, num_groups=num_groups)
    # The pooled distribution is one more view of the same sort: a column of ones.
    pooled = jnp.concatenate([m, jnp.ones_like(m[:, :1])], axis=1)
    return _pooled_cdfs(*_view_inputs(x, pooled, None, weights))


#: Most groups of the host path of :func:`pooled_group_cdfs` (one cumulative count per group).
_HOST_MAX_GROUPS = 16


def _host_pooled_cdfs(x: np.ndarray, g: np.ndarray, num_groups: int) -> PooledCDFs:
    """:func:`pooled_group_cdfs` of unit-weight rows with NumPy: one sort, one count per group.

    The levels equal the jitted path's wherever they are defined there (at the ends of tie
    runs; inside a run the order of tied rows is NumPy's, not XLA's): integer counts, divided
    by XLA as :func:`cdf_levels` divides them.
    """
    # The dtype of the jitted path: the values' float dtype promoted with the membership's.
    dtype = np.dtype(jnp.promote_types(v.float_dtype(x), jnp.result_type(float)))
    points, sorted_groups = _sort_with_groups(x.astype(dtype, copy=False), g)
    # Cumulative counts of every group, and of the pool as a last group (as in the views).
    cum = np.zeros((x.shape[0], num_groups + 1), np.int32 if x.shape[0] < 2**31 else np.int64)
    for k in range(num_groups):
        np.cumsum(sorted_groups == k, out=cum[:, k])
    cum[:, -1] = np.arange(1, x.shape[0] + 1)
    run_end = np.concatenate([points[1:] > points[:-1], [True]])
    # One device_put (each is a dispatch), not jnp.asarray (a copy program per new shape).
    cum, points, run_end = jax.device_put((cum, points, run_end))
    cdfs, pooled, counts = _count_levels(cum, dtype=dtype)
    return PooledCDFs(points, cdfs, pooled, run_end, counts)


@functools.partial(jax.jit, static_argnames="dtype")
def _count_levels(cum: Array, *, dtype: np.dtype) -> tuple[Array, Array, Array]:
    """CDF levels of cumulative counts ``(n, G + 1)`` (the pool last) by the division of
    :func:`cdf_levels` (the same XLA program, so the same bits): the groups' ``(n, G)``, the
    pool's ``(n,)``, and the groups' counts ``(G,)``. The slices are taken inside the program:
    an eager slice of a device array costs a dispatch of its own."""
    cum = cum.astype(dtype)
    levels = _cumulative_levels(cum.T).T
    return levels[:, :-1], levels[:, -1], cum[-1, :-1]


def _sort_with_groups(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` sorted and the group id of each sorted value (ties in any order).

    float32 values: one sort of 64-bit keys, the value's order-preserving bits above the group
    id, which NumPy sorts several times faster than an argsort followed by two gathers.
    """
    if x.dtype != np.float32 or x.shape[0] == 0:
        order = np.argsort(x)
        return x[order], g[order]
    bits = x.view(np.uint32)
    # Order-preserving map of IEEE floats to unsigned ints: flip the sign bit of positives,
    # every bit of negatives.
    flip = np.where(bits >> 31, np.uint32(0xFFFFFFFF), np.uint32(0x80000000))
    keys = ((bits ^ flip).astype(np.uint64) << np.uint64(32)) | g.astype(np.uint64)
    keys.sort()
    high = (keys >> np.uint64(32)).astype(np.uint32)
    unflip = np.where(high >> 31, np.uint32(0x80000000), np.uint32(0xFFFFFFFF))
    return (high ^ unflip).view(np.float32), (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)


@jax.jit
def _pooled_cdfs(x: Array, m: Array, w: Array) -> PooledCDFs:
    """:class:`PooledCDFs` of the one sort of :func:`group_views`, whose last group is the pool."""
    points, _, levels, total = _view_levels(x, m, w)
    run_end = jnp.concatenate([points[1:] > points[:-1], jnp.ones((1,), bool)])
    return PooledCDFs(points, levels[:-1].T, levels[-1], run_end, total[:-1])


# ----------------------------------------------------------------------------- helpers


def _bucketed(x: Array, w: Array) -> tuple[Array, Array]:
    """A concrete 1-D sample padded to its shape bucket with zero weights (traced: unchanged).

    Every new array shape compiles a jitted program again; on concrete (eager) calls the public
    functions pad their samples with zero-weight rows (a zero weight is a mask, so the values
    do not change) up to one of a few sizes (:func:`fairjax._shapes.bucket`).
    """
    if not v.is_concrete(x, w) or x.ndim != 1:
        return x, w
    size = bucket(x.shape[0], minimum=64)
    return pad_rows(x, size), pad_rows(w, size)


def _prepare(values: ArrayLike, weights: ArrayLike | None, name: str) -> tuple[Array, Array]:
    """Validates one weighted sample along its last axis; returns values and float weights."""
    x = v.as_array(values, name)
    if x.ndim == 0:
        raise ValueError(f"`{name}` must have at least one axis, got a scalar.")
    v.check_finite(x, name)
    dtype = v.float_dtype(x, weights)
    if weights is None:
        return x.astype(dtype), jnp.ones(x.shape, dtype)
    w = v.as_array(weights, f"{name} weights")
    if w.shape != x.shape:
        raise ValueError(
            f"the weights of `{name}` must have the shape of `{name}` {x.shape}, got {w.shape}."
        )
    v.check_finite(w, f"{name} weights")
    if v.is_concrete(w) and not v.holds(lambda xp, a: xp.all(a >= 0), w):
        raise ValueError(f"the weights of `{name}` must be non-negative.")
    return x.astype(dtype), w.astype(dtype)


def _check_some_weight(w: Array, name: str) -> None:
    """Raises if a concrete 1-D sample's weights are all zero (its distribution is undefined)."""
    if v.is_concrete(w) and w.size and not v.holds(lambda xp, a: xp.any(a > 0), w):
        raise ValueError(f"the weights of `{name}` must not be all zero.")


def _sorted_levels(x: Array, w: Array) -> tuple[Array, Array, Array]:
    """Sorts a weighted sample (last axis); returns sorted values, weights and CDF levels.

    ``levels[i] = C_i / W`` with ``C_i`` the cumulative weight up to and including the i-th
    smallest value; a zero-weight point repeats the level of the point before it, so a search
    for the first level ``>= u`` (u > 0) never selects it.
    """
    order = jnp.argsort(x, axis=-1)
    xs = jnp.take_along_axis(x, order, axis=-1)
    ws = jnp.take_along_axis(w, order, axis=-1)
    # Levels are a function of the weights only: no gradient flows from them into the values.
    return xs, ws, cdf_levels(ws)


def _step_quantile_sorted(xs: Array, levels: Array, u: Array) -> Array:
    """Left-continuous quantile ``inf{x : F(x) >= u}`` of one sorted sample, at levels ``u``."""
    idx = jnp.searchsorted(levels, u, side="left")
    # u = 0 (or u below the first positive level) means the smallest point of positive weight.
    first = jnp.searchsorted(levels, jnp.zeros((), levels.dtype), side="right")
    idx = jnp.where(u > 0, idx, first)
    return xs[jnp.clip(idx, 0, xs.shape[-1] - 1)]


def _linear_quantile_sorted(xs: Array, ws: Array, levels: Array, u: Array) -> Array:
    """Weighted type-7 quantile of one sorted sample: linear between knots at left levels.

    Knots ``p_i = (C_i - w_i) / (W - w_last)`` with ``w_last`` the weight of the largest point of
    positive weight; for unit weights ``p_i = i / (n - 1)``, NumPy's ``method="linear"``.
    """
    total = jnp.sum(ws)
    positive = ws > 0
    last = jnp.max(jnp.where(positive, jnp.arange(ws.shape[0]), 0))
    cum = levels * total
    knots = gs.safe_divide(cum - ws, total - ws[last])
    # Points of zero weight become knots that repeat their neighbour: give them the value of the
    # previous positive point so that they add no spurious corner to the interpolation.
    pos_idx = jax.lax.cummax(jnp.where(positive, jnp.arange(ws.shape[0]), 0), axis=0)
    xs_eff = xs[pos_idx]
    knots = jnp.where(positive, knots, jax.lax.cummax(jnp.where(positive, knots, 0), axis=0))
    first = jnp.argmax(positive)
    xs_eff = jnp.where(jnp.arange(ws.shape[0]) < first, xs[first], xs_eff)
    u = jnp.clip(u, 0, 1)
    i = jnp.clip(jnp.searchsorted(knots, u, side="right"), 1, last)
    i = jnp.maximum(i, first + 1)
    lo, hi = jnp.clip(i - 1, 0, ws.shape[0] - 1), jnp.clip(i, 0, ws.shape[0] - 1)
    frac = gs.safe_divide(u - knots[lo], knots[hi] - knots[lo])
    frac = jnp.clip(frac, 0, 1)
    single = last == first  # one point of positive weight: the quantile is that point
    out = xs_eff[lo] + frac * (xs_eff[hi] - xs_eff[lo])
    return jnp.where(single, xs[first], out)


# ----------------------------------------------------------------------------- CDF, quantiles


def cdf(
    values: ArrayLike,
    points: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    strict: bool = False,
) -> Array:
    """Weighted empirical CDF of a sample, evaluated at ``points``.

    .. math::

        F(t) = \\frac{1}{W} \\sum_i w_i \\, [x_i \\le t], \\qquad W = \\sum_i w_i

    (with ``strict=True``, :math:`[x_i < t]`: the left limit :math:`F(t^-)`, which is the rank
    used by the barycenter estimator). A sample with zero total weight has CDF 0. One sort and a
    binary search per point: :math:`O((n + m) \\log n)`. ``vmap`` it over a leading axis for
    several samples held as a padded array with zero weights.

    Args:
      values: sample, shape ``(n,)``.
      points: where to evaluate, any shape.
      weights: optional non-negative weights ``(n,)``; a zero weight masks a point.
      strict: count values strictly below the point instead of at or below.

    Returns:
      Array of the shape of ``points`` with values in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import cdf
      >>> cdf(jnp.array([3.0, 1.0, 2.0, 4.0]), jnp.array([0.5, 2.0, 9.0]))
      Array([0. , 0.5, 1. ], dtype=float32)

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
      NeurIPS 2020 (arXiv:2006.07286), Section 4.
    """
    x, w = _prepare(values, weights, "values")
    if x.ndim != 1:
        raise ValueError(f"`values` must have rank 1 (vmap for batches), got shape {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError("`values` must not be empty.")
    t = v.as_array(points, "points").astype(x.dtype)
    x, w = _bucketed(x, w)
    return _cdf(x, w, t, strict)


@functools.partial(jax.jit, static_argnames="strict")
def _cdf(x: Array, w: Array, t: Array, strict: bool) -> Array:
    xs, _, levels = _sorted_levels(x, w)
    k = jnp.searchsorted(xs, t, side="left" if strict else "right")
    padded = jnp.concatenate([jnp.zeros((1,), levels.dtype), levels])
    # A comparison with NaN is False: the search would read a NaN point as above every value.
    return jnp.where(jnp.isnan(t), jnp.nan, padded[k])


def quantile(
    values: ArrayLike,
    levels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    method: str = "step",
) -> Array:
    """Weighted empirical quantile function of a sample, evaluated at ``levels``.

    ``method="step"`` is the generalised inverse of the CDF (NumPy's ``"inverted_cdf"``):

    .. math:: Q(u) = \\inf\\{x : F(x) \\ge u\\}, \\quad Q(0) = \\min\\{x_i : w_i > 0\\}.

    ``method="linear"`` interpolates linearly between knots at the left cumulative levels
    :math:`p_i = (C_i - w_i) / (W - w_{(n)})` (:math:`C_i` the cumulative weight, sorted order):
    for unit weights :math:`p_i = (i - 1)/(n - 1)`, NumPy's default ``"linear"`` method and the
    quantile function of EquiPy. Levels are clipped to [0, 1]. Gradients flow to ``values``.

    Args:
      values: sample, shape ``(n,)``.
      levels: levels in [0, 1], any shape.
      weights: optional non-negative weights ``(n,)``, not all zero; zero weight masks a point.
      method: ``"step"`` or ``"linear"``.

    Returns:
      Array of the shape of ``levels``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import quantile
      >>> x = jnp.array([4.0, 1.0, 3.0, 2.0])
      >>> quantile(x, jnp.array([0.0, 0.5, 0.6, 1.0]))
      Array([1., 2., 3., 4.], dtype=float32)
      >>> quantile(x, jnp.array([0.5]), method="linear")
      Array([2.5], dtype=float32)

    References:
      Hyndman and Fan, *Sample quantiles in statistical packages*, 1996 (types 1 and 7).
    """
    if method not in ("step", "linear"):
        raise ValueError(f"`method` must be 'step' or 'linear', got {method!r}.")
    x, w = _prepare(values, weights, "values")
    if x.ndim != 1:
        raise ValueError(f"`values` must have rank 1 (vmap for batches), got shape {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError("`values` must not be empty.")
    _check_some_weight(w, "values")
    u = v.as_array(levels, "levels").astype(x.dtype)
    v.check_finite(u, "levels")
    x, w = _bucketed(x, w)
    return _quantile(x, w, u.reshape(-1), method).reshape(u.shape)


@functools.partial(jax.jit, static_argnames="method")
def _quantile(x: Array, w: Array, u: Array, method: str) -> Array:
    xs, ws, lev = _sorted_levels(x, w)
    if method == "step":
        return _step_quantile_sorted(xs, lev, u)
    return _linear_quantile_sorted(xs, ws, lev, u)


# ----------------------------------------------------------------------------- distances


@functools.partial(jax.jit, static_argnames="p")
def _wasserstein_power(xu: Array, wu: Array, xv: Array, wv: Array, p: float) -> Array:
    su, _, lu = _sorted_levels(xu, wu)
    sv, _, lv = _sorted_levels(xv, wv)
    mq = merged_quantiles(_segments([su, sv], [lu, lv]))
    diff = jnp.abs(mq.quantiles[0] - mq.quantiles[1])
    # Levels of zero mass are selected out: a power that overflows there (|d|^4 of 1e11 in
    # float32) would make 0 * inf = NaN of a finite distance.
    return jnp.sum(jnp.where(mq.mass > 0, mq.mass * safe_power(diff, p), 0))


def _segments(values: list[Array], levels: list[Array]) -> GroupedSamples:
    """Sorted samples and their CDF levels, one after the other, as a :class:`GroupedSamples`
    (for :func:`merged_quantiles`; the knots are not needed there and repeat the levels)."""
    sizes = np.array([x.shape[-1] for x in values])
    start = jnp.asarray(np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    lev = jnp.concatenate(levels)
    return GroupedSamples(jnp.concatenate(values), lev, lev, start, jnp.asarray(sizes, jnp.int32))


def safe_power(x: ArrayLike, p: float) -> Array:
    """:math:`x^p` for :math:`x \\ge 0`, with a finite gradient (0) at :math:`x = 0`.

    The plain power has an infinite or NaN derivative at 0 for ``p < 1`` and, through
    ``jnp.power``'s log, can give NaN gradients at 0 for non-integer ``p``: a double ``where``
    keeps 0 away from the power. ``p = 1`` and ``p = 2`` are computed exactly (``x``, ``x * x``).

    Args:
      x: non-negative array, any shape.
      p: static exponent (a Python number).

    Returns:
      :math:`x^p`, shape and dtype of ``x``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.ot1d import safe_power
      >>> safe_power(jnp.array([0.0, 4.0]), 1.5)
      Array([0., 8.], dtype=float32)
      >>> jax.grad(lambda t: safe_power(t, 1.5))(0.0)
      Array(0., dtype=float32)
    """
    if p == 1:
        return x
    if p == 2:
        return x * x
    positive = x > 0
    # Double where: the power never sees 0, so d/dx x^p at 0 stays finite. A NaN stays NaN.
    return jnp.where(positive, jnp.where(positive, x, 1) ** p, jnp.where(jnp.isnan(x), x, 0))


def _safe_root(x: Array, p: float) -> Array:
    """``x ** (1 / p)`` for ``x >= 0`` with gradient 0 (not inf) at ``x = 0``."""
    if p == 1:
        return x
    positive = x > 0
    return jnp.where(positive, jnp.where(positive, x, 1) ** (1 / p), jnp.where(jnp.isnan(x), x, 0))


def wasserstein_distance(
    u_values: ArrayLike,
    v_values: ArrayLike,
    *,
    u_weights: ArrayLike | None = None,
    v_weights: ArrayLike | None = None,
    p: float = 1,
    root: bool = True,
) -> Array:
    """p-Wasserstein distance between two weighted empirical distributions on the line.

    In one dimension the optimal coupling is monotone, so

    .. math::

        W_p^p(\\mu, \\nu) = \\int_0^1 |Q_\\mu(t) - Q_\\nu(t)|^p \\, dt
        \\;\\overset{p = 1}{=}\\; \\int |F_\\mu(x) - F_\\nu(x)| \\, dx .

    Both quantile functions are step functions, constant between the merged cumulative levels of
    the two samples, so the integral is a finite sum over the ``n + m`` merged levels: two sorts,
    one merge and a binary search per level, :math:`O((n + m) \\log(n + m))`. Zero weights mask
    points, so padded samples of a static size work under ``jit`` and ``vmap``. The result is
    differentiable in the values (the gradient of a monotone coupling) and, almost everywhere,
    in the weights.

    Args:
      u_values: first sample, shape ``(n,)``.
      v_values: second sample, shape ``(m,)``.
      u_weights: optional non-negative weights ``(n,)`` (normalised internally), not all zero.
      v_weights: optional non-negative weights ``(m,)``, not all zero.
      p: order ``p >= 1``. A static Python number.
      root: return :math:`W_p` (default) or :math:`W_p^p` (``root=False``, what POT's
        ``ot.wasserstein_1d`` returns; smoother as a loss, with gradient 0 at 0 either way).

    Returns:
      Non-negative scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import wasserstein_distance
      >>> wasserstein_distance(jnp.array([0.0, 1.0]), jnp.array([2.0, 4.0]))
      Array(2.5, dtype=float32)
      >>> wasserstein_distance(jnp.array([0.0, 1.0]), jnp.array([2.0, 4.0]), p=2, root=False)
      Array(6.5, dtype=float32)

    References:
      Santambrogio, *Optimal Transport for Applied Mathematicians*, 2015, Section 2.2;
      Chzhen, Denis, Hebiri, Oneto, Pontil, NeurIPS 2020 (arXiv:2006.07286).
    """
    number = isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool)
    if not number or not 1 <= p < math.inf:
        raise ValueError(f"`p` must be a static finite number >= 1, got {p!r}.")
    xu, wu = _prepare(u_values, u_weights, "u_values")
    xv, wv = _prepare(v_values, v_weights, "v_values")
    for name, x in (("u_values", xu), ("v_values", xv)):
        if x.ndim != 1 or x.shape[0] == 0:
            raise ValueError(f"`{name}` must be a non-empty rank-1 array, got shape {x.shape}.")
    _check_some_weight(wu, "u_values")
    _check_some_weight(wv, "v_values")
    dtype = jnp.promote_types(xu.dtype, xv.dtype)
    (xu, wu), (xv, wv) = _bucketed(xu, wu), _bucketed(xv, wv)
    return _wasserstein(
        xu.astype(dtype), wu.astype(dtype), xv.astype(dtype), wv.astype(dtype), p, root
    )


@functools.partial(jax.jit, static_argnames=("p", "root"))
def _wasserstein(xu: Array, wu: Array, xv: Array, wv: Array, p: float, root: bool) -> Array:
    out = _wasserstein_power(xu, wu, xv, wv, p)
    out = _safe_root(out, p) if root else out
    # NaN in, NaN out under jit (a NaN point sorts last, onto a level it may not reach): a
    # NaN weight, or a NaN point of positive weight (a masked point may hold anything).
    return propagate_nan(out, jnp.where(wu > 0, xu, 0), jnp.where(wv > 0, xv, 0), wu, wv)


# ----------------------------------------------------------------------------- barycenter


class Barycenter(NamedTuple):
    """A discrete distribution on the line (see :func:`barycenter`).

    Attributes:
      points: support points in increasing order, shape ``(K * n,)``.
      masses: probability mass of each point (some may be 0), shape ``(K * n,)``, sums to 1.
    """

    points: Array
    masses: Array


def barycenter(
    values: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    barycenter_weights: ArrayLike | None = None,
) -> Barycenter:
    """Wasserstein-2 barycenter of several weighted empirical distributions on the line.

    The barycenter of :math:`\\nu_1, \\dots, \\nu_K` with weights :math:`p_k` minimises
    :math:`\\sum_k p_k W_2^2(\\nu_k, \\mu)`; in one dimension it is given by averaging quantile
    functions,

    .. math:: Q_\\mu(t) = \\sum_k p_k \\, Q_{\\nu_k}(t),

    so it is again a discrete distribution, constant in quantile level between the merged
    cumulative levels of the ``K`` samples. This is the law of the optimal fair predictor of the
    Wasserstein fair-regression paper. Samples of different sizes are held as one padded array
    with zero weights.

    Args:
      values: samples, shape ``(K, n)`` (row ``k`` is sample ``k``, padded as needed).
      weights: optional non-negative weights ``(K, n)``; zero marks padding. Each row must
        have positive total weight.
      barycenter_weights: optional non-negative weights ``(K,)``, normalised to sum to 1
        (default: uniform).

    Returns:
      A :class:`Barycenter` of ``K * n`` points (zero-mass points included, to keep shapes
      static).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import barycenter
      >>> bary = barycenter(jnp.array([[0.0, 2.0], [4.0, 6.0]]))
      >>> bary.points[bary.masses > 0], bary.masses[bary.masses > 0]
      (Array([2., 4.], dtype=float32), Array([0.5, 0.5], dtype=float32))

    References:
      Agueh and Carlier, *Barycenters in the Wasserstein space*, SIAM J. Math. Anal. 2011;
      Chzhen, Denis, Hebiri, Oneto, Pontil, NeurIPS 2020 (arXiv:2006.07286), Theorem 2.3.
    """
    x, w = _prepare(values, weights, "values")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"`values` must have shape (K, n) with K >= 1 samples and n >= 1, got {x.shape}."
        )
    if v.is_concrete(w) and not v.holds(lambda xp, a: xp.all(xp.sum(a, axis=1) > 0), w):
        bad = np.flatnonzero(np.asarray(jnp.sum(w, axis=1)) <= 0).tolist()
        raise ValueError(f"every sample needs positive total weight; rows {bad} have none.")
    k = x.shape[0]
    if barycenter_weights is None:
        lam = jnp.full((k,), 1 / k, x.dtype)
    else:
        lam = v.as_array(barycenter_weights, "barycenter_weights", ndim=1).astype(x.dtype)
        v.check_length(lam, k, "barycenter_weights", "values")
        v.check_finite(lam, "barycenter_weights")
        if v.is_concrete(lam) and not v.holds(lambda xp, a: xp.all(a >= 0) & xp.any(a > 0), lam):
            raise ValueError(
                "`barycenter_weights` must be non-negative and not all zero, got "
                f"{np.asarray(lam).tolist()}."
            )
        lam = gs.safe_divide(lam, jnp.sum(lam))
    return _barycenter(x, w, lam)


@jax.jit
def _barycenter(x: Array, w: Array, lam: Array) -> Barycenter:
    xs, _, levels = jax.vmap(_sorted_levels)(x, w)
    mq = merged_quantiles(_segments(list(xs), list(levels)))
    return Barycenter(lam @ mq.quantiles, mq.mass)
