"""The grouped-samples layout: every group's sample sorted, as segments of one array.

``G`` weighted samples of different sizes are held as one array of length ``N`` (the total
size, plus any padding), group after group, each group's segment sorted increasingly; a start
and a count per group say where its segment lies (the ``segment`` layout of ott-jax). Memory is
``O(N)`` whatever the group sizes, shapes are static under ``jit``, and one branch-free binary
search of static length serves queries of every group at once.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax._host import rows_by_group

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Queries per block of the CPU search (see :func:`_segment_search`).
_SEARCH_BLOCK = 32768
_INTERPOLATIONS = ("step", "linear")
#: Values read after a search to count ties before a second search (:func:`group_cdf_limits`).
_TIE_PROBES = 4


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
