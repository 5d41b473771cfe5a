"""Queries of the grouped-samples layout: each group's CDF (step, linear, both step limits),
quantile function, the barycenter's quantile function, and every group's quantiles on the
merged levels (exact integrals over [0, 1]).

All read a :class:`~fairjax.ot1d.GroupedSamples` through one branch-free binary search of
static length per query, whatever the number of groups (:func:`_segment_search`); each public
function checks its arguments and runs one compiled program, so repeated eager calls compile
once.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax.ot1d._layout import GroupedSamples

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Queries per block of the CPU search (see :func:`_segment_search`).
_SEARCH_BLOCK = 32768
_INTERPOLATIONS = ("step", "linear")
#: Values read after a search to count ties before a second search (:func:`group_cdf_limits`).
_TIE_PROBES = 4


# ----------------------------------------------------------------------------- searching


def _segment_search(arr: Array, start: Array, count: Array, q: Array, *, side: str) -> Array:
    """Number of entries of each query's segment below ``q`` (``side="left"``: ``< q``;
    ``"right"``: ``<= q``), by a branch-free binary search of static length.

    One search over all groups at once: ``O(log N)`` gathers per query, independent of the
    number of groups. Each step halves the remaining range ``[lo, lo + len)`` of every query.
    On the CPU backend a long query vector is searched in blocks of ``_SEARCH_BLOCK`` queries
    (``lax.map``), so that the loop state of a block stays in cache; an accelerator searches
    all queries in one loop. Both give the same integers.
    """
    q = jnp.asarray(q)
    start = jnp.broadcast_to(start, q.shape).astype(jnp.int32)
    count = jnp.broadcast_to(count, q.shape).astype(jnp.int32)
    size = arr.shape[0]
    steps = max(1, int(np.ceil(np.log2(size + 1))))

    def search(q, lo, n):
        def body(_, carry):
            lo, n = carry
            half = n >> 1
            val = arr[jnp.clip(lo + half, 0, max(size - 1, 0))]
            go = ((val < q) if side == "left" else (val <= q)) & (n > 0)
            return jnp.where(go, lo + half + 1, lo), jnp.where(go, n - half - 1, half)

        return jax.lax.fori_loop(0, steps, body, (lo, n))[0]

    m = q.size
    if jax.default_backend() != "cpu" or q.ndim != 1 or m < 2 * _SEARCH_BLOCK:
        return search(q, start, count) - start
    pad = -m % _SEARCH_BLOCK
    blocks = [jnp.pad(a, (0, pad)).reshape(-1, _SEARCH_BLOCK) for a in (q, start, count)]
    lo = jax.lax.map(lambda b: search(*b), tuple(blocks)).reshape(-1)[:m]
    return lo - start


def _group_ids(ids: ArrayLike, samples: GroupedSamples, name: str) -> Array:
    """Integer group ids of queries (any shape), checked like every group id: dtype always,
    the range ``[0, G)`` on concrete ids (before any cast, so wide ids cannot wrap)."""
    arr = v.as_array(ids, name)
    if not (jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_):
        raise TypeError(f"`{name}` must hold integer group ids, got dtype {arr.dtype}.")
    if v.is_concrete(ids):
        flat = ids.reshape(-1) if isinstance(ids, jax.Array) else np.ravel(np.asarray(ids))
        v.check_groups(flat, num_groups=samples.start.shape[0])
    return arr


def _nan_at(query: Array, out: Array) -> Array:
    """NaN where the query is NaN: a comparison with NaN is False, which a search would read
    as a rank or an index."""
    if not jnp.issubdtype(query.dtype, jnp.inexact):
        return out
    return jnp.where(jnp.isnan(query), jnp.nan, out)


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"`interpolation` must be 'step' or 'linear', got {interpolation!r}.")


# ----------------------------------------------------------------------------- CDF, quantiles


def group_cdf(
    samples: GroupedSamples,
    groups: ArrayLike,
    points: ArrayLike,
    *,
    interpolation: str = "step",
    uniform: bool = False,
) -> Array:
    """CDF level of each point in its own group: the rank used by the barycenter map.

    ``interpolation="step"`` gives the left limit of the step CDF,

    .. math:: F_g(t^-) = \\frac{1}{W_g} \\sum_{i \\in g} w_i [x_i < t]
       \\;\\overset{\\text{unit weights}}{=}\\; \\frac{\\#\\{i \\in g : x_i < t\\}}{n_g},

    ``"linear"`` the CDF that interpolates linearly between the points ``(values, levels)`` of
    the segment (0 below it, 1 above it; the inverse of a type-7 quantile grid). A query of an
    empty group gets 0. Traceable (``groups`` and ``points`` may be traced).

    Args:
      samples: a :class:`GroupedSamples`.
      groups: integer group id of each point, shape ``(m,)`` (or broadcastable).
      points: where to evaluate, shape ``(m,)``.
      interpolation: ``"step"`` or ``"linear"`` (static).
      uniform: the samples have unit weights (static): the step level is then the closed form
        ``k / n_g``, no read of ``levels``.

    Returns:
      Levels in [0, 1], shape of ``points``, in the points' float dtype (integer points are
      read in the values' dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_samples, group_cdf
      >>> gsm = group_samples(jnp.array([0.0, 1.0, 2.0, 10.0, 20.0]),
      ...                     jnp.array([0, 0, 0, 1, 1]), num_groups=2)
      >>> group_cdf(gsm, jnp.array([0, 0, 1]), jnp.array([1.0, 1.5, 15.0]))
      Array([0.33333334, 0.6666667 , 0.5       ], dtype=float32)
    """
    _check_interpolation(interpolation)
    z = _float_points(points, samples, "points")
    g = _group_ids(groups, samples, "groups")
    return _group_cdf(samples, g, z, interpolation=interpolation, uniform=uniform)


def _float_points(points: ArrayLike, samples: GroupedSamples, name: str) -> Array:
    """Query points as an array; integer or boolean points in the values' dtype (a level of
    an integer dtype would truncate to 0 or 1)."""
    z = v.as_array(points, name)
    return z if jnp.issubdtype(z.dtype, jnp.floating) else z.astype(samples.values.dtype)


@functools.partial(jax.jit, static_argnames=("interpolation", "uniform"))
def _group_cdf(samples, g, z, *, interpolation, uniform):
    """:func:`group_cdf` on checked arrays: one compiled program per layout shape, so eager
    calls do not retrace the search loop."""
    start, count = samples.start[g], samples.count[g]
    k = _segment_search(samples.values, start, count, z, side="left")
    last = max(samples.values.shape[0] - 1, 0)
    if interpolation == "step":
        return _step_level(samples, start, count, k, z, uniform=uniform)
    lo = jnp.clip(start + k - 1, 0, last)
    hi = jnp.clip(start + k, 0, last)
    v_lo, v_hi = samples.values[lo], samples.values[hi]
    l_lo, l_hi = samples.levels[lo], samples.levels[hi]
    frac = jnp.clip(gs.safe_divide(z - v_lo, v_hi - v_lo), 0, 1)
    u = jnp.where(k <= 0, 0, jnp.where(k >= count, 1, l_lo + frac * (l_hi - l_lo)))
    return _nan_at(z, jnp.where(count > 0, u, 0).astype(z.dtype))


def _step_level(samples, start, count, k, z, *, uniform: bool) -> Array:
    """Step CDF level after the first ``k`` values of each query's segment (NaN at NaN)."""
    if uniform:
        return _nan_at(z, gs.safe_divide(k.astype(z.dtype), count.astype(z.dtype)))
    level = samples.levels[jnp.clip(start + k - 1, 0, max(samples.values.shape[0] - 1, 0))]
    return _nan_at(z, jnp.where(k > 0, level, 0).astype(z.dtype))


def group_cdf_limits(
    samples: GroupedSamples,
    groups: ArrayLike,
    points: ArrayLike,
    *,
    uniform: bool = False,
) -> tuple[Array, Array]:
    """Both limits of the step CDF at each point in its own group: :math:`(F_g(t^-), F_g(t))`.

    .. math::

        F_g(t^-) = \\frac{1}{W_g} \\sum_{i \\in g} w_i [x_i < t], \\qquad
        F_g(t) = \\frac{1}{W_g} \\sum_{i \\in g} w_i [x_i \\le t];

    they differ only where ``t`` equals sample values (an atom). One binary search gives the
    number ``k`` of values below ``t``; the values equal to ``t`` follow it, and a few reads
    count them. Only when some point of the call ties with a longer run (atoms, as with
    ``jitter=0`` in the barycenter post-processing) does a second search run (a
    ``lax.cond``). Same values as :func:`group_cdf` at ``t`` and at the next float above
    ``t``. Traceable.

    Args:
      samples: a :class:`GroupedSamples`.
      groups: integer group id of each point, shape ``(m,)`` (or broadcastable).
      points: where to evaluate, shape ``(m,)``.
      uniform: the samples have unit weights (static): levels are ``k / n_g``.

    Returns:
      ``(left, right)``, each of the shape of ``points`` and in their float dtype (integer
      points: the values' dtype); ``left <= right``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_samples, group_cdf_limits
      >>> gsm = group_samples(jnp.array([0.0, 1.0, 1.0, 2.0]), jnp.zeros(4, int),
      ...                     num_groups=1)
      >>> group_cdf_limits(gsm, jnp.array([0, 0]), jnp.array([1.0, 1.5]))
      (Array([0.25, 0.75], dtype=float32), Array([0.75, 0.75], dtype=float32))
    """
    z = _float_points(points, samples, "points")
    g = _group_ids(groups, samples, "groups")
    return _group_cdf_limits(samples, g, z, uniform=uniform)


@functools.partial(jax.jit, static_argnames=("uniform",))
def _group_cdf_limits(samples, g, z, *, uniform):
    start, count = samples.start[g], samples.count[g]
    k = _segment_search(samples.values, start, count, z, side="left")
    # Values equal to t follow position k: probe the next few (neighbours of the search's last
    # read, so in cache); only a longer run of ties needs the second search.
    last = max(samples.values.shape[0] - 1, 0)
    run, tied = jnp.zeros_like(k), jnp.ones(k.shape, bool)
    for j in range(_TIE_PROBES):
        tied = tied & (k + j < count) & (samples.values[jnp.clip(start + k + j, 0, last)] == z)
        run = run + tied
    k_right = jax.lax.cond(
        jnp.any(tied),
        lambda: _segment_search(samples.values, start, count, z, side="right"),
        lambda: k + run,
    )
    left = _step_level(samples, start, count, k, z, uniform=uniform)
    return left, _step_level(samples, start, count, k_right, z, uniform=uniform)


def group_quantile(
    samples: GroupedSamples,
    group: ArrayLike,
    levels: ArrayLike,
    *,
    interpolation: str = "step",
    uniform: bool = False,
) -> Array:
    """Quantile function :math:`Q_g(u)` of one group at levels ``u``.

    ``interpolation="step"``: :math:`Q_g(u) = \\inf\\{x : F_g(x) \\ge u\\}`, for unit weights
    the paper's index :math:`x_{(\\lceil n_g u \\rceil)}` (1-based, clipped to the segment).
    ``"linear"``: linear interpolation between the values at their type-7 knots, NumPy's
    default ``"linear"`` method for unit weights. ``vmap`` over ``group`` for several groups.
    An empty group (``count`` 0) has no quantile: what it returns is a value of the layout
    read at its start, not a number of the group (check ``samples.count``; the barycenter
    gives such a group proportion 0).

    Args:
      samples: a :class:`GroupedSamples`.
      group: one integer group id (scalar, may be traced), or ids broadcastable to ``levels``.
      levels: levels ``u`` in [0, 1], any shape.
      interpolation: ``"step"`` or ``"linear"`` (static).
      uniform: the samples have unit weights (static): indices are then closed-form integers,
        no search over the levels or knots.

    Returns:
      Quantiles, shape and float dtype of ``levels`` (integer levels: the values' dtype).

    .. versionchanged:: 0.1.0
       16-bit levels are computed with in float32 (bfloat16 levels moved the step index by
       3% of the group); integer levels are accepted.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_samples, group_quantile
      >>> gsm = group_samples(jnp.array([4.0, 1.0, 3.0, 2.0, 9.0]),
      ...                     jnp.array([0, 0, 0, 0, 1]), num_groups=2)
      >>> group_quantile(gsm, 0, jnp.array([0.0, 0.5, 0.6, 1.0]))
      Array([1., 2., 3., 4.], dtype=float32)
      >>> group_quantile(gsm, 0, jnp.array([0.5]), interpolation="linear")
      Array([2.5], dtype=float32)

    References:
      Hyndman and Fan, *Sample quantiles in statistical packages*, 1996 (types 1 and 7).
    """
    _check_interpolation(interpolation)
    u, dtype = _levels(levels, samples)
    group = _group_ids(group, samples, "group")
    q = _group_quantile(samples, group, u, interpolation=interpolation, uniform=uniform)
    return q.astype(dtype)


def _levels(levels: ArrayLike, samples: GroupedSamples) -> tuple[Array, Any]:
    """``(levels to compute with, dtype of the result)``: 16-bit levels are computed with in
    float32 (``u * n`` and the ``(1 - 4 eps)`` guard in bfloat16 moved the index by 3% of the
    group), wider ones in their own dtype, whose precision the guard is sized to; the result
    keeps the levels' float dtype, and integer levels (0 and 1) take the values'."""
    u = v.as_array(levels, "levels")
    if not jnp.issubdtype(u.dtype, jnp.floating):
        return u.astype(samples.values.dtype), samples.values.dtype
    return u.astype(jnp.promote_types(u.dtype, jnp.float32)), u.dtype


@functools.partial(jax.jit, static_argnames=("interpolation", "uniform"))
def _group_quantile(samples, group, u, *, interpolation, uniform):
    """:func:`group_quantile` on checked arrays (one compiled program per layout shape)."""
    start, count = samples.start[group], samples.count[group]
    vals, dtype = samples.values, u.dtype
    last = max(vals.shape[0] - 1, 0)
    n = count.astype(dtype)
    eps = 4 * jnp.finfo(dtype).eps
    if interpolation == "step":
        if uniform:
            # x[ceil(n u)] (1-based); the (1 - eps) guard keeps an exact integer n * u from
            # rounding up to the next index.
            i = jnp.ceil(u * n * (1 - eps)).astype(jnp.int32) - 1
        else:
            i = _segment_search(samples.levels, start, count, u * (1 - eps), side="left")
        i = jnp.clip(i, 0, jnp.maximum(count - 1, 0))
        return _nan_at(u, vals[jnp.clip(start + i, 0, last)].astype(dtype))
    if uniform:
        h = u * jnp.maximum(n - 1, 0)
        i = jnp.clip(jnp.floor(h).astype(jnp.int32), 0, jnp.maximum(count - 2, 0))
        frac = jnp.clip(h - i, 0, 1)
    else:
        i = _segment_search(samples.knots, start, count, u, side="right") - 1
        i = jnp.clip(i, 0, jnp.maximum(count - 2, 0))
        k_lo = samples.knots[jnp.clip(start + i, 0, last)]
        k_hi = samples.knots[jnp.clip(start + i + 1, 0, last)]
        frac = jnp.clip(gs.safe_divide(u - k_lo, k_hi - k_lo), 0, 1)
    lo = vals[jnp.clip(start + i, 0, last)]
    hi = vals[jnp.clip(start + jnp.minimum(i + 1, jnp.maximum(count - 1, 0)), 0, last)]
    return _nan_at(u, (lo + frac * (hi - lo)).astype(dtype))


def barycenter_quantile(
    samples: GroupedSamples,
    proportions: ArrayLike,
    levels: ArrayLike,
    *,
    interpolation: str = "step",
    uniform: bool = False,
) -> Array:
    """Quantile function of the groups' Wasserstein-2 barycenter at levels ``u``.

    In one dimension the barycenter of the groups' distributions with weights :math:`p_g`
    averages their quantile functions:

    .. math:: Q_{\\bar\\nu}(u) = \\sum_g p_g \\, Q_g(u).

    One group at a time (a ``fori_loop``), so memory stays ``O(m)`` for ``m`` levels.

    Args:
      samples: a :class:`GroupedSamples` of ``G`` groups.
      proportions: barycenter weights :math:`p_g`, shape ``(G,)`` (summing to 1; a group of
        weight 0 is skipped in effect).
      levels: levels in [0, 1], any shape.
      interpolation: the groups' quantile functions, ``"step"`` or ``"linear"`` (static; see
        :func:`group_quantile`).
      uniform: the samples have unit weights (static).

    Returns:
      Barycenter quantiles, shape and float dtype of ``levels`` (integer levels: the values'
      dtype).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_samples, barycenter_quantile
      >>> gsm = group_samples(jnp.array([0.0, 2.0, 4.0, 6.0]), jnp.array([0, 0, 1, 1]),
      ...                     num_groups=2)
      >>> barycenter_quantile(gsm, jnp.array([0.5, 0.5]), jnp.array([0.25, 0.75]))
      Array([2., 4.], dtype=float32)

    References:
      Agueh and Carlier, *Barycenters in the Wasserstein space*, SIAM J. Math. Anal. 2011;
      Chzhen, Denis, Hebiri, Oneto, Pontil, NeurIPS 2020 (arXiv:2006.07286), Theorem 2.3.
    """
    _check_interpolation(interpolation)
    u, dtype = _levels(levels, samples)
    p = v.as_array(proportions, "proportions", ndim=1).astype(u.dtype)
    v.check_length(p, samples.start.shape[0], "proportions", "samples.start")
    if v.is_concrete(p) and not v.holds(
        lambda xp, a: xp.all(a >= 0) & (xp.abs(xp.sum(a) - 1) <= 1e-3), p
    ):
        raise ValueError(
            f"`proportions` must be non-negative and sum to 1, got {np.asarray(p).tolist()}."
        )
    q = _barycenter_quantile(samples, p, u, interpolation=interpolation, uniform=uniform)
    return q.astype(dtype)


@functools.partial(jax.jit, static_argnames=("interpolation", "uniform"))
def _barycenter_quantile(samples, p, u, *, interpolation, uniform):
    def body(s, acc):
        q = _group_quantile(samples, s, u, interpolation=interpolation, uniform=uniform)
        return acc + p[s] * q

    return jax.lax.fori_loop(0, p.shape[0], body, jnp.zeros_like(u))


# ----------------------------------------------------------------------------- merged levels


class MergedQuantiles(NamedTuple):
    """Every group's step quantile function on the merged levels (see :func:`merged_quantiles`).

    Attributes:
      levels: the levels of all segments, sorted, shape ``(N,)``.
      mass: length of the level interval ending at each level (0 for repeated levels),
        shape ``(N,)``; sums to the largest level (1).
      quantiles: ``quantiles[g, j]`` is group ``g``'s step quantile :math:`Q_g` on the
        interval ending at ``levels[j]``, shape ``(G, N)``.
    """

    levels: Array
    mass: Array
    quantiles: Array


@jax.jit
def merged_quantiles(samples: GroupedSamples) -> MergedQuantiles:
    """The groups' step quantile functions on the merged levels: exact integrals over [0, 1].

    The step (left-continuous) quantile function of each group is constant on every interval
    :math:`(u_{j-1}, u_j]` between consecutive merged levels :math:`u_1 \\le \\dots \\le u_N`
    of all the groups, where it equals its value at the right end, an exact level of one of the
    groups (no floating-point midpoint). So any integral over levels of a function of the
    quantiles is a finite sum,

    .. math::

        \\int_0^1 \\phi\\big(Q_1(t), \\dots, Q_G(t)\\big)\\, dt
        = \\sum_j (u_j - u_{j-1}) \\, \\phi\\big(Q_1(u_j), \\dots, Q_G(u_j)\\big),

    e.g. :math:`W_p^p(\\nu_a, \\nu_b) = \\sum_j m_j |Q_a(u_j) - Q_b(u_j)|^p` and the
    barycenter's quantile function :math:`\\sum_g p_g Q_g(u_j)`. One sort of the ``N`` levels and
    one binary search per (group, level): :math:`O(N \\log N + G N \\log N)`. Every entry of
    ``samples.levels`` must belong to a segment (no padding between segments); the layouts of
    :func:`group_samples` and :func:`group_views` qualify. Differentiable in ``samples.values``
    (the gradient of the monotone coupling).

    Args:
      samples: a :class:`GroupedSamples`.

    Returns:
      A :class:`MergedQuantiles`.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_samples, merged_quantiles
      >>> gsm = group_samples(jnp.array([0.0, 1.0, 2.0, 4.0]), jnp.array([0, 0, 1, 1]),
      ...                     num_groups=2)
      >>> mq = merged_quantiles(gsm)
      >>> mq.mass @ jnp.abs(mq.quantiles[0] - mq.quantiles[1])  # W1 of the two groups
      Array(2.5, dtype=float32)

    References:
      Santambrogio, *Optimal Transport for Applied Mathematicians*, 2015, Section 2.2.
    """
    u = jnp.sort(samples.levels)
    mass = jnp.diff(u, prepend=jnp.zeros((1,), u.dtype))
    start, count = samples.start[:, None], samples.count[:, None]
    queries = jnp.broadcast_to(u, (start.shape[0], u.shape[0]))
    k = _segment_search(samples.levels, start, count, queries, side="left")
    k = jnp.clip(k, 0, jnp.maximum(count - 1, 0))
    last = max(samples.values.shape[0] - 1, 0)
    return MergedQuantiles(u, mass, samples.values[jnp.clip(start + k, 0, last)])
