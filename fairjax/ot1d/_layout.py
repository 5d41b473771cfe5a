"""The grouped-samples layout: every group's sample sorted, as segments of one array.

``G`` weighted samples of different sizes are held as one array of length ``N`` (the total
size, plus any padding), group after group, each group's segment sorted increasingly; a start
and a count per group say where its segment lies (the ``segment`` layout of ott-jax). Memory is
``O(N)`` whatever the group sizes, shapes are static under ``jit``, and one branch-free binary
search of static length serves queries of every group at once (the queries, CDFs and
quantiles, are in ``_queries``).
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax._host import rows_by_group

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class GroupedSamples(NamedTuple):
    """Several weighted samples on the line, sorted, as segments of one array.

    Group ``g`` owns ``values[start[g] : start[g] + count[g]]``, sorted increasingly, with its
    CDF levels and type-7 knots at the same positions. With :math:`C_i` the cumulative weight
    of the group's first ``i`` points (sorted order), :math:`w_i` the weight of the i-th and
    :math:`W` the group's total weight,

    .. math::

        \\mathrm{levels}_i = \\frac{C_i}{W} = F_g(x_{(i)}), \\qquad
        \\mathrm{knots}_i = \\frac{C_i - w_i}{W - w_{(n)}},

    so ``levels`` drive the step (left-continuous) quantile function and the CDF, and
    ``knots`` the linearly interpolated (Hyndman-Fan type 7) quantile function; for unit weights
    ``levels_i = i / n`` and ``knots_i = (i - 1) / (n - 1)``. Entries outside every segment
    (padding) are unused. A NamedTuple: it passes through ``jit`` and ``vmap``.

    Attributes:
      values: the groups' samples, each segment sorted, shape ``(N,)``.
      levels: CDF level of each value within its group, shape ``(N,)``.
      knots: type-7 knot of each value within its group, shape ``(N,)``.
      start: first index of each group's segment, int32 ``(G,)``.
      count: number of values of each group's segment, int32 ``(G,)`` (0: empty group).
      total: total weight of each group, ``(G,)``, or None where the builder did not record
        it (a layout assembled by hand from the five arrays above).

    Two builders: :func:`group_samples` (hard group ids; each row in one segment, ``N = n``)
    and :func:`group_views` (soft membership; every segment is the whole pooled sort, seen
    with the group's weights, ``N = G n``).
    """

    values: Array
    levels: Array
    knots: Array
    start: Array
    count: Array
    total: Array | None = None


# ----------------------------------------------------------------------------- building


def _on_host(*arrays: object) -> bool:
    """Sort with NumPy on the host: the CPU backend and concrete inputs (NumPy's sorts are
    several times faster there than XLA's CPU sort); otherwise (an accelerator, or under a
    trace) the jitted path runs."""
    return v.on_cpu_host(*arrays)


def _sort_segments(zs: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> None:
    """Sorts each segment of ``zs`` in place, as a stable sort would: NumPy's sort of floats
    is not stable, so ``-0.0`` and ``+0.0`` (equal) could come out in any order, where XLA's
    stable sort keeps them in the input order: they are put back in it."""
    zero = zs == 0
    signed = zero.any() and np.signbit(zs[zero]).any()
    zeros = zs[zero] if signed else None  # the zeros of each segment, in input order
    for a, c in zip(starts.tolist(), counts.tolist(), strict=True):
        zs[a : a + c].sort()
    if signed:
        zs[zs == 0] = zeros  # each segment's zeros: one run, as many as before, in order


def group_order(values: ArrayLike, groups: ArrayLike, *, num_groups: int) -> Array:
    """The stable permutation that sorts rows by group, then by value within a group.

    On the CPU backend with concrete inputs the order is computed on the host with NumPy (one
    stable sort of the small group ids, then one sort per group), which is much faster there
    than XLA's CPU sort; on an accelerator, or under ``jit``, it is one ``jnp.lexsort``. Both
    give the same permutation.

    Args:
      values: sort keys, shape ``(n,)``.
      groups: integer ids in ``[0, num_groups)``, shape ``(n,)``.
      num_groups: static number of groups.

    Returns:
      int permutation of ``range(n)``, shape ``(n,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_order
      >>> group_order(jnp.array([3.0, 1.0, 2.0, 0.0]), jnp.array([1, 0, 1, 0]), num_groups=2)
      Array([3, 1, 2, 0], dtype=int32)
    """
    values = v.as_array(values, "values", ndim=1)
    groups = v.check_groups(groups, num_groups=num_groups, n=values.shape[0])
    if groups.ndim != 1:
        raise TypeError(f"`groups` must be integer ids of shape (n,), got shape {groups.shape}.")
    if not _on_host(values, groups):
        return jnp.lexsort((values, groups))
    val = np.asarray(values)
    order, bounds = rows_by_group(np.asarray(groups), num_groups)
    for a, b in itertools.pairwise(bounds.tolist()):
        if b - a > 1:
            idx = order[a:b]
            order[a:b] = idx[np.argsort(val[idx], kind="stable")]
    return jax.device_put(order)


def group_samples(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    weights: ArrayLike | None = None,
) -> GroupedSamples:
    """Sorts each group's weighted sample into a :class:`GroupedSamples`.

    One sort by (group, value) and one cumulative sum give every group's segment, CDF levels
    and type-7 knots: :math:`O(n \\log n)`. Rows of zero weight stay in their group's segment,
    after its rows of positive weight, with their level and the segment's largest value (no
    CDF or quantile reads a masked value); to leave rows out altogether give them their own
    group id (e.g. ``num_groups - 1``, a "trash" group that is never queried).

    With unit weights (``weights=None``) on the CPU backend and concrete inputs, the layout
    depends on the sorted values only, not on which row went where: each group is gathered and
    sorted in place with NumPy, and the levels ``i / n_g`` and knots ``(i - 1) / (n_g - 1)``
    are written in closed form (below :math:`2^{24}` rows these equal the cumulative sums of the
    general path exactly, in float32). Under ``jit`` or on an accelerator the layout is built
    with one ``lexsort``.

    Args:
      values: scores, shape ``(n,)``.
      groups: integer ids in ``[0, num_groups)``, shape ``(n,)``.
      num_groups: static number of groups ``G``.
      weights: optional non-negative sample weights ``(n,)``.

    Returns:
      A :class:`GroupedSamples` with ``N = n``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_samples
      >>> gsm = group_samples(jnp.array([3.0, 1.0, 2.0, 0.0]), jnp.array([1, 0, 1, 0]),
      ...                     num_groups=2)
      >>> gsm.values
      Array([0., 1., 2., 3.], dtype=float32)
      >>> gsm.start, gsm.count
      (Array([0, 2], dtype=int32), Array([2, 2], dtype=int32))
      >>> gsm.levels
      Array([0.5, 1. , 0.5, 1. ], dtype=float32)
    """
    x = v.as_array(values, "values", ndim=1)
    v.check_finite(x, "values")
    x = x.astype(v.float_dtype(x, weights))
    g = v.check_groups(groups, num_groups=num_groups, n=x.shape[0])
    if g.ndim != 1:
        raise TypeError(f"`groups` must be integer ids of shape (n,), got shape {g.shape}.")
    g = g.astype(jnp.int32)
    w = v.check_weights(weights, x.shape[0])
    # One group takes the compiled path: there XLA divides by the one count as a product with
    # its reciprocal, which NumPy's division would not reproduce bit for bit.
    if w is None and num_groups > 1 and _on_host(x, g):
        return _host_uniform_layout(x, g, num_groups)
    if w is None:
        w = jnp.ones(x.shape, x.dtype)
        order = group_order(x, g, num_groups=num_groups)
    else:
        w = w.astype(x.dtype)
        # Rows of zero weight after their group's rows of positive weight: a quantile then
        # never reads one (the smallest at level 0, or a neighbour of a linear interpolation).
        order = group_order(x, 2 * g + (w <= 0), num_groups=2 * num_groups)
    return _layout_from_order(x, w, g, order, num_groups=num_groups)


def _host_uniform_layout(values: Array, groups: Array, num_groups: int) -> GroupedSamples:
    """:func:`group_samples` for unit weights with NumPy on the host, without a permutation."""
    val = np.asarray(values)
    dtype = val.dtype
    order, bounds = rows_by_group(np.asarray(groups), num_groups)
    starts, counts = bounds[:-1], np.diff(bounds)
    zs = val[order]  # the rows of each group together, then each segment sorted in place
    _sort_segments(zs, starts, counts)
    levels = np.zeros(zs.shape, dtype)
    knots = np.zeros(zs.shape, dtype)
    for a, c in zip(starts.tolist(), counts.tolist(), strict=True):
        i = np.arange(1, c + 1, dtype=dtype)
        levels[a : a + c] = i / dtype.type(c)
        if c > 1:
            knots[a : a + c] = (i - 1) / dtype.type(c - 1)
    # device_put, not jnp.asarray: the latter compiles a copy program per new shape (jax 0.10).
    return GroupedSamples(
        *jax.device_put(
            (
                zs,
                levels,
                knots,
                starts.astype(np.int32),
                counts.astype(np.int32),
                counts.astype(dtype),
            )
        )
    )


@functools.partial(jax.jit, static_argnames="num_groups")
def _layout_from_order(z, w, seg, order, *, num_groups: int) -> GroupedSamples:
    """Values, CDF levels, type-7 knots, starts and counts of the sorted segments."""
    if z.shape[0] == 0:  # no rows: empty segments (a gather from an empty array cannot lower)
        zeros = jnp.zeros((num_groups,), jnp.int32)
        return GroupedSamples(z, z, z, zeros, zeros, jnp.zeros((num_groups,), z.dtype))
    zs, ws, ss = z[order], w[order], seg[order]
    # Rows of zero weight come last in their segment (group_samples' order) and take its
    # largest value of positive weight: the values stay sorted for the searches, and no
    # quantile reads a masked value.
    top = jax.ops.segment_max(jnp.where(ws > 0, zs, -jnp.inf), ss, num_segments=num_groups)
    zs = jnp.where((ws > 0) | jnp.isneginf(top)[ss], zs, top[ss])
    count = jnp.bincount(seg, length=num_groups).astype(jnp.int32)
    start = (jnp.cumsum(count) - count).astype(jnp.int32)
    total = jax.ops.segment_sum(ws, ss, num_segments=num_groups)
    cum = jnp.cumsum(ws)
    before = (cum - ws)[jnp.clip(start, 0, zs.shape[0] - 1)]
    # Cumulative weight inside the segment: global cumsum minus what came before the segment.
    inner = cum - before[ss]
    levels = gs.safe_divide(inner, total[ss])
    # The weight of each segment's last row of positive weight (0 for a segment without one).
    positive = jnp.where(ws > 0, jnp.arange(zs.shape[0]), -1)
    last = jax.ops.segment_max(positive, ss, num_segments=num_groups)
    w_last = jnp.where(last >= 0, ws[jnp.clip(last, 0, zs.shape[0] - 1)], 0)
    # Linear (type 7) knots (C_i - w_i) / (W - w_last): i / (n - 1) for unit weights.
    knots = gs.safe_divide(inner - ws, (total - w_last)[ss])
    return GroupedSamples(zs, levels, knots, start, count, total)


def group_views(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
) -> GroupedSamples:
    """Each group as a weighted view of one pooled sort: the layout for soft membership.

    With a membership matrix :math:`M` (``(n, G)``, non-negative; one-hot rows for integer
    ids) and row weights :math:`w`, group ``g`` is the pooled sample :math:`x` with weights
    :math:`w_i M_{ig}`. The values are sorted once, :math:`x_{(1)} \\le \\dots \\le x_{(n)}`,
    and segment ``g`` of the :class:`GroupedSamples` has a slot for each of the ``n`` sorted
    points, with the group's own levels

    .. math::

        \\mathrm{levels}_{g,k} = F_g(x_{(k)}) = \\frac{1}{W_g}
            \\sum_{j \\le k} w_{(j)} M_{(j) g}, \\qquad W_g = \\sum_i w_i M_{ig}

    (computed by :func:`cdf_levels`: a point of zero weight in the group repeats the level
    before it exactly, the points holding the total get exactly 1) and type-7 knots. A slot
    whose point has zero weight in the group holds the value and knot of the group's point
    before it (before the group's first point, of that one): every search then reads a point
    of the group, and the linear CDF and quantile interpolate between consecutive points of
    the group; with positive weights everywhere (soft membership) the values are the sorted
    sample itself. So ``start = g n``, ``count = n`` and ``N = G n``; ``total`` holds
    :math:`W_g`. Every function of a :class:`GroupedSamples` applies (:func:`group_cdf`,
    :func:`group_quantile`, :func:`merged_quantiles`), with the results of
    :func:`group_samples` on the group's own points. To add the pooled distribution as a last
    group, append the column of row sums (or of ones) to ``groups``.
    One sort and one cumulative sum: :math:`O(n \\log n + nG)`. Differentiable in the values
    (through the sort) and, almost everywhere, in the membership and weights.

    Args:
      values: scores, shape ``(n,)``, ``n >= 1``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``; zero weight masks a row.

    Returns:
      A :class:`GroupedSamples` of ``G`` segments of length ``n`` each.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import group_views
      >>> gv = group_views(jnp.array([0.3, 0.1, 0.2]), jnp.array([1, 0, 1]), num_groups=2)
      >>> gv.values.reshape(2, 3)  # group 1 has no point at 0.1: its slot holds 0.2
      Array([[0.1, 0.1, 0.1],
             [0.2, 0.2, 0.3]], dtype=float32)
      >>> gv.levels.reshape(2, 3)
      Array([[1. , 1. , 1. ],
             [0. , 0.5, 1. ]], dtype=float32)
      >>> gv.total
      Array([1., 2.], dtype=float32)

    .. versionchanged:: 0.1.0
       A slot whose point has zero weight in the group holds the group's point before it
       (it held the pooled point, which the quantiles and linear CDFs then read: at u = 0 the
       pooled minimum, and another group's point as an interpolation neighbour).
    """
    return _views(*_view_inputs(values, groups, num_groups, weights))


def _view_inputs(values, groups, num_groups, weights) -> tuple[Array, Array, Array]:
    """``(values, membership, weights)`` of :func:`group_views`, checked, in one float dtype."""
    x = v.as_array(values, "values", ndim=1)
    if x.shape[0] == 0:
        raise ValueError("`values` must not be empty: a distribution needs at least one row.")
    v.check_finite(x, "values")
    m = gs.membership(
        v.check_groups(groups, num_groups=num_groups, n=x.shape[0]), num_groups=num_groups
    )
    dtype = v.float_dtype(x, m, weights)
    w = v.check_weights(weights, x.shape[0])
    w = jnp.ones(x.shape, dtype) if w is None else w.astype(dtype)
    return x.astype(dtype), m.astype(dtype), w


def _view_levels(x: Array, m: Array, w: Array) -> tuple[Array, Array, Array, Array]:
    """``(sorted values (n,), weights (G, n), levels (G, n), totals (G,))`` of the one sort."""
    order = jnp.argsort(x)
    xs = x[order]  # the one sort; gradients flow back through this gather
    wg = m[order].T * w[order][None, :]  # (G, n) weight of each sorted point in each group
    return xs, wg, cdf_levels(wg), jnp.sum(wg, axis=1)


@jax.jit
def _views(x: Array, m: Array, w: Array) -> GroupedSamples:
    """:func:`group_views` on validated arrays of one float dtype."""
    xs, wg, levels, total = _view_levels(x, m, w)
    num, n = wg.shape
    index = jnp.arange(n)
    # Type-7 knots (C_i - w_i) / (W - w_last), w_last the weight of the last positive point;
    # the group's first point gets 0 exactly (the formula rounds).
    last = jnp.max(jnp.where(wg > 0, index, 0), axis=1, keepdims=True)
    w_last = jnp.take_along_axis(wg, last, axis=1)
    knots = gs.safe_divide(levels * total[:, None] - wg, total[:, None] - w_last)
    below = jnp.pad(levels[:, :-1], ((0, 0), (1, 0)))
    knots = jnp.where(below > 0, knots, 0)
    # A point of zero weight in the group stands on the group's point before it (value and
    # knot; its level already repeats that point's), or before the group's first point on
    # that one: every search then reads a point of the group, and the linear interpolations
    # run between consecutive points of the group (another group's point, between two of
    # this group's, was read as a neighbour). The step CDF and every level are unchanged.
    src = jax.lax.cummax(jnp.where(wg > 0, index, -1), axis=1)
    first = jnp.argmax(wg > 0, axis=1, keepdims=True)
    src = jnp.where(src >= 0, src, first)
    values = xs[src]
    knots = jnp.take_along_axis(knots, src, axis=1)
    start = jnp.arange(num, dtype=jnp.int32) * n
    count = jnp.full((num,), n, jnp.int32)
    return GroupedSamples(
        values.reshape(-1), levels.reshape(-1), knots.reshape(-1), start, count, total
    )


def cdf_levels(weights: ArrayLike) -> Array:
    """CDF levels :math:`C_i / W` of weights given in sorted order, along the last axis.

    With :math:`C_i = \\sum_{j \\le i} w_j` and :math:`W = C_n`, the level of the i-th smallest
    point is :math:`F(x_{(i)}) = C_i / W`. Computed so that a search for the first level
    :math:`\\ge u` never lands on a masked point: a point of zero weight repeats the level before
    it exactly, and the points holding the total get exactly 1. All-zero weights give levels 0.
    Levels depend on the weights only: no gradient flows from them into the values.

    Args:
      weights: non-negative weights in the sorted order of their values, shape ``(..., n)``.

    Returns:
      Levels in [0, 1], non-decreasing along the last axis, shape of ``weights``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ot1d import cdf_levels
      >>> cdf_levels(jnp.array([1.0, 0.0, 2.0, 1.0]))
      Array([0.25, 0.25, 0.75, 1.  ], dtype=float32)
    """
    ws = jnp.asarray(weights)
    cum = jnp.cumsum(ws, axis=-1)
    # XLA's cumsum is not a sequential sum and its division may be a product by a reciprocal, so
    # a zero-weight point could get a level one rounding step above the point before it, and the
    # last positive point a level below 1: a search for u would then land on the zero-weight
    # (masked or padding) point. A running maximum over the positive points only makes
    # zero-weight points repeat the level before them exactly, and the points holding the total
    # get exactly 1.
    cum = jax.lax.cummax(jnp.where(ws > 0, cum, 0), axis=cum.ndim - 1)
    return _cumulative_levels(cum)


def _cumulative_levels(cum: Array) -> Array:
    """Levels ``C_i / W`` of non-decreasing cumulative weights along the last axis, ``W`` the
    last: exactly 1 from the first point holding the total, 0 for a total of 0."""
    total = cum[..., -1:]
    return jnp.where((cum >= total) & (total > 0), 1, gs.safe_divide(cum, total))
