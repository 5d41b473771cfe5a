"""Fit the quantile-grid barycenter post-processor without gathering the rows.

:func:`fit_barycenter` with ``method="quantile_grid"`` keeps, per group and per half of the
split, ``grid_size`` linearly interpolated quantiles of the jittered calibration scores. Each of
them is :math:`x_{(i)} + f \\, (x_{(i+1)} - x_{(i)})` for two order statistics of the group's
sample, so the state is a function of ``O(G x grid_size)`` order statistics. Those are found
here **exactly** by distributed selection, without ever holding the rows in one place:

1. Every value is mapped to an unsigned integer key of its width by a monotone bijection
   (flip the sign bit of positives, all bits of negatives), so order statistics of floats are
   order statistics of integers in ``[0, 2^b)``.
2. Radix refinement: each target (a segment and a rank :math:`k`) keeps an aligned interval of
   keys known to hold its answer, starting with all of ``[0, 2^b)``. One *pass* splits every
   interval into :math:`R = 2^r` buckets (``r = bits_per_pass``) and counts, over all rows,
   how many keys of the segment lie at or below each bucket edge: on one device a search of
   each row among the sorted edges and a histogram; over devices a :func:`jax.lax.psum` of
   those counts; over chunks their sum. The answer lies in the first bucket whose count
   reaches :math:`k + 1`. After ``b / r`` passes the interval is one key: the exact order
   statistic, found from integer counts only (no rounding, ties included).
3. The random jitter and split of :func:`fit_barycenter` are reproduced row by row: the draws
   of JAX's partitionable threefry depend only on the key and the row's global index, so each
   shard or chunk draws its own rows' numbers. The split (the :math:`\\lfloor n_s / 2 \\rfloor`
   rows of smallest split draw form the quantile half, ties broken by row index) is itself a
   selection: of the median split draw, then of the row index among rows tied with it.

Cost, for ``b``-bit floats: ``1 + 2 * 32 / r + b / r`` passes with ``split=True`` (13 for
float32 with the default ``r = 8``), ``1 + b / r`` without (5). Each pass does
``O(n log E)`` work over the rows (``E = 2 * grid_size * (2^r - 1)`` edges per segment, one
search per row) and communicates or accumulates ``S x E`` integer counts (``S = 2G``
segments with the split, ``G`` without), independent of ``n``. Memory per device or chunk is
``O(rows + S E)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p

from fairjax import _validation as v
from fairjax._shapes import pad_rows
from fairjax.postprocessing._fit import _check_rows, _proportions
from fairjax.postprocessing._state import (
    BarycenterState,
    _any_invalid_row,
    _bucket,
    _check_scores,
    _nan_floats_where,
    _normalise_groups,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_UINT = {4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}
_BITS_PER_PASS = (1, 2, 4, 8)
# stages of the fit: group counts, split threshold, tie-break on the row index, values
_COUNT, _SPLIT, _TIES, _VALUES = "count", "split", "ties", "values"


# ----------------------------------------------------------------------------- row draws


def _check_threefry(key: Array) -> Array:
    """The raw ``uint32[2]`` data of a threefry key (typed or raw), or a clear error."""
    if not jax.config.jax_threefry_partitionable:
        raise ValueError(
            "the distributed fit reproduces JAX's partitionable threefry draws row by row: "
            "set jax.config.update('jax_threefry_partitionable', True) (the default)."
        )
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if "threefry" not in str(jax.random.key_impl(key)):
            raise ValueError(f"`key` must be a threefry2x32 key, got {jax.random.key_impl(key)}.")
        return jax.random.key_data(key)
    return jnp.asarray(key, jnp.uint32)


def _row_uniform(key: Array, index: Array, dtype: Any, minval: float, maxval: float) -> Array:
    """``jax.random.uniform(key, (N,), dtype, minval, maxval)[index]`` for any ``N > index``.

    Partitionable threefry draws the bits of entry ``i`` of a 1-D array from the counter
    ``(0, i)`` alone (for ``i < 2^32``); the float is built from them as
    :func:`jax.random.uniform` builds it. A test checks this equality against JAX.
    """
    kd = _check_threefry(key)
    b1, b2 = threefry2x32_p.bind(kd[0], kd[1], jnp.zeros_like(index), index)
    info = jnp.finfo(dtype)
    nbits, nmant = info.bits, info.nmant
    if nbits == 64:
        bits = (b1.astype(jnp.uint64) << jnp.uint64(32)) | b2.astype(jnp.uint64)
    else:
        bits = b1 ^ b2
    ut = bits.dtype
    one = jnp.asarray(np.array(1.0, dtype).view(ut), ut)
    floats = jax.lax.bitcast_convert_type((bits >> ut.type(nbits - nmant)) | one, dtype)
    lo, hi = jnp.asarray(minval, dtype), jnp.asarray(maxval, dtype)
    return jax.lax.max(lo, (floats - jnp.asarray(1.0, dtype)) * (hi - lo) + lo)


# ----------------------------------------------------------------------------- order keys


def _order_keys(x: Array) -> Array:
    """Unsigned integer keys with the order of the floats ``x`` (-0.0 counted as +0.0)."""
    ut = _UINT[x.dtype.itemsize]
    sign = ut.type(1) << ut.type(8 * x.dtype.itemsize - 1)
    u = jax.lax.bitcast_convert_type(jnp.where(x == 0, jnp.zeros_like(x), x), ut)
    return jnp.where(u & sign, ~u, u | sign)


def _from_keys(k: Array, dtype: Any) -> Array:
    """The floats of :func:`_order_keys` keys."""
    ut = k.dtype
    sign = ut.type(1) << ut.type(8 * ut.itemsize - 1)
    return jax.lax.bitcast_convert_type(jnp.where(k & sign, k ^ sign, ~k), dtype)


# ----------------------------------------------------------------------------- counting


def _edge_counts(keys: Array, seg: Array, edges: Array) -> Array:
    """``counts[s, j] = #{rows of segment s with key <= edges[s, j]}`` (edges sorted per row).

    Each row finds, by a branch-free binary search of static length among its segment's
    edges, how many edges lie below its key; a histogram of those positions, summed from the
    left, counts the rows at or below every edge. Rows of segment ``S`` (masked) count
    nowhere. ``O(n log E)`` work, ``O(S E)`` memory.
    """
    num, width = edges.shape
    flat = edges.reshape(-1)
    base = jnp.minimum(seg, num - 1) * width
    steps = max(1, int(np.ceil(np.log2(width + 1))))

    def body(_, carry):
        lo, n = carry
        half = n >> 1
        go = (flat[base + jnp.minimum(lo + half, width - 1)] < keys) & (n > 0)
        return jnp.where(go, lo + half + 1, lo), jnp.where(go, n - half - 1, half)

    # Typed like the rows (varying over a shard_map axis), as the loop's carry must be.
    init = (jnp.zeros_like(seg), jnp.full_like(seg, width))
    pos = jax.lax.fori_loop(0, steps, body, init)[0]
    hist = jnp.zeros((num + 1, width + 1), jnp.int32).at[seg, pos].add(1)
    return jnp.cumsum(hist[:num], axis=1)[:, :width]


def _select(
    count: Callable[[Array], Array],
    ranks: Array,
    *,
    key_bits: int,
    bits_per_pass: int,
    rolled: bool,
) -> tuple[Array, Array]:
    """Exact order statistics by radix refinement of aligned key intervals.

    Args:
      count: ``count(edges) -> counts``, both ``(S, E)``: rows of each segment with a key at
        or below each edge, over all the data (summed over devices or chunks).
      ranks: 0-based ranks wanted per segment, ``(S, K)``. Rank -1 gives key 0.
      key_bits: width of the keys.
      bits_per_pass: ``r``; ``key_bits / r`` calls of ``count``.
      rolled: run the passes in a ``fori_loop`` (``count`` traceable) or a Python loop.

    Returns:
      ``(keys, below)``: the key of each rank's order statistic (``2^b - 1`` where the segment
      holds fewer rows) and the number of keys strictly below it, both ``(S, K)``.
    """
    ut = _UINT[key_bits // 8]
    static = dict(key_bits=key_bits, bits_per_pass=bits_per_pass)

    def narrow(p, carry):
        edges, order = _pass_edges(carry[0], p, **static)
        return _pass_update(*carry, count(edges), order, ranks, p, **static)

    carry = (jnp.zeros(ranks.shape, ut), jnp.zeros(ranks.shape, jnp.int32))
    passes = key_bits // bits_per_pass
    if rolled:  # one compiled pass, looped (count is traceable)
        return jax.lax.fori_loop(0, passes, narrow, carry)
    for p in range(passes):  # count runs on the host (chunks)
        carry = narrow(jnp.asarray(p, jnp.int32), carry)
    lo, below = carry
    return lo, below


def _bucket_width(p: Array, key_bits: int, bits_per_pass: int) -> Array:
    ut = _UINT[key_bits // 8]
    return ut.type(1) << (key_bits - bits_per_pass * (p + 1)).astype(ut)


@functools.partial(jax.jit, static_argnames=("key_bits", "bits_per_pass"))
def _pass_edges(lo: Array, p: Array, *, key_bits: int, bits_per_pass: int):
    """Upper ends of the first ``R - 1`` buckets of every target's interval, sorted per
    segment (targets in one interval share its edges), and the sorting permutation."""
    ut = _UINT[key_bits // 8]
    w = _bucket_width(p, key_bits, bits_per_pass)
    j = jnp.arange(1, 1 << bits_per_pass, dtype=ut)
    edges = (lo[..., None] + (j * w - ut.type(1))).reshape(lo.shape[0], -1)
    order = jnp.argsort(edges, axis=1)
    return jnp.take_along_axis(edges, order, axis=1), order


@functools.partial(jax.jit, static_argnames=("key_bits", "bits_per_pass"))
def _pass_update(lo, below, counts, order, ranks, p, *, key_bits: int, bits_per_pass: int):
    """Each target's interval narrowed to the first bucket whose count reaches rank + 1."""
    ut = _UINT[key_bits // 8]
    c = jnp.take_along_axis(counts, jnp.argsort(order, axis=1), axis=1)
    c = c.reshape(*lo.shape, (1 << bits_per_pass) - 1)
    chosen = jnp.sum(c < ranks[..., None] + 1, axis=-1)
    prev = jnp.take_along_axis(c, jnp.maximum(chosen - 1, 0)[..., None], axis=-1)[..., 0]
    w = _bucket_width(p, key_bits, bits_per_pass)
    return lo + chosen.astype(ut) * w, jnp.where(chosen > 0, prev, below)


# ----------------------------------------------------------------------------- the fit's rows


class _Plan:
    """Static description of one fit: groups, split, grid, key width, refinement radix."""

    def __init__(
        self, num: int, split: bool, grid_size: int, dtype: Any, bits_per_pass: int, draws: Any
    ):
        self.num, self.split, self.grid_size = num, split, grid_size
        self.dtype, self.bits_per_pass = jnp.dtype(dtype), bits_per_pass
        # The dtype of the split's draws: float32, as fit_barycenter draws them (x64 or not).
        self.draws = jnp.dtype(draws)

    @classmethod
    def new(cls, num: int, split: bool, grid_size: int, dtype: Any, bits_per_pass: int):
        return cls(num, split, grid_size, dtype, bits_per_pass, jnp.float32)

    def key(self) -> tuple:
        return (
            self.num,
            self.split,
            self.grid_size,
            self.dtype.name,
            self.bits_per_pass,
            self.draws.name,
        )


def _stage_rows(stage: str, x, g, valid, index, key, jitter, cut, cut_index, *, plan: _Plan):
    """Keys and segments of this shard's rows for one stage of the fit (masked: trash)."""
    k_jitter, k_split = jax.random.split(key)
    num = plan.num
    if plan.split:
        rkey = _order_keys(_row_uniform(k_split, index, plan.draws, 0.0, 1.0))
    if stage == _COUNT:
        return jnp.zeros(index.shape, jnp.uint32), jnp.where(valid, g, num)
    if stage == _SPLIT:
        return rkey, jnp.where(valid, g, num)
    if stage == _TIES:
        return index, jnp.where(valid & (rkey == cut[g]), g, num)
    z = x + _row_uniform(k_jitter, index, x.dtype, -1.0, 1.0) * jitter
    if not plan.split:
        return _order_keys(z), jnp.where(valid, g, num)
    # The quantile half A0: the smallest (split draw, row index) pairs, up to the selected one.
    in_a0 = (rkey < cut[g]) | ((rkey == cut[g]) & (index <= cut_index[g]))
    return _order_keys(z), jnp.where(valid, 2 * g + (~in_a0).astype(g.dtype), 2 * num)


def _stage_counts(stage, x, g, valid, index, key, jitter, cut, cut_index, edges, *, plan):
    """Edge counts of this shard for one stage (before any sum over shards)."""
    keys, seg = _stage_rows(stage, x, g, valid, index, key, jitter, cut, cut_index, plan=plan)
    return _edge_counts(keys, seg, edges)


def _grid_ranks(count: Array, plan: _Plan) -> tuple[Array, Array, Array]:
    """The two ranks and the fraction of every grid quantile, as ``ot1d.group_quantile``
    computes them for unit weights (``"linear"``): ``(lo, hi, frac)``, each ``(S, grid)``."""
    dtype = plan.dtype
    u = jnp.linspace(0, 1, plan.grid_size, dtype=dtype)[None, :]
    c = count[:, None]
    n = c.astype(dtype)
    h = u * jnp.maximum(n - 1, 0)
    i = jnp.clip(jnp.floor(h).astype(jnp.int32), 0, jnp.maximum(c - 2, 0))
    frac = jnp.clip(h - i, 0, 1)
    return i, jnp.minimum(i + 1, jnp.maximum(c - 1, 0)), frac


@functools.partial(jax.jit, static_argnames="grid")
def _interpolate(keys: Array, frac: Array, seg_rows: Array, *, grid: int) -> Array:
    """Grid quantiles from their two order statistics' keys (compiled, as the gathered fit's
    table is, so that the rounding of ``lo + frac * (hi - lo)`` is the same)."""
    x_lo, x_hi = _from_keys(keys[:, :grid], frac.dtype), _from_keys(keys[:, grid:], frac.dtype)
    return jnp.where(seg_rows[:, None] > 0, x_lo + frac * (x_hi - x_lo), 0)


def _fit_from_counts(count: Callable[..., Array], jitter: Array, plan: _Plan, sizes, *, rolled):
    """The whole fit from a counting oracle ``count(stage, cut, cut_index, edges)``."""
    num, grid = plan.num, plan.grid_size
    zero = jnp.zeros((num,), jnp.uint32)
    cut = jnp.zeros((num,), _UINT[plan.draws.itemsize])
    ones = jnp.full((num, 1), np.iinfo(np.uint32).max, jnp.uint32)
    rows = count(_COUNT, cut, zero, ones)[:, 0]
    cut_index = zero
    if plan.split:
        m = rows // 2  # the quantile half holds the floor(n_s / 2) smallest split draws
        sel = functools.partial(_select, bits_per_pass=plan.bits_per_pass, rolled=rolled)
        split_bits = 8 * plan.draws.itemsize
        cut, below = sel(
            lambda e: count(_SPLIT, cut, zero, e), (m - 1)[:, None], key_bits=split_bits
        )
        cut = cut[:, 0]
        ties = lambda e: count(_TIES, cut, zero, e)
        cut_index = sel(ties, (m - 1 - below[:, 0])[:, None], key_bits=32)[0][:, 0]
        seg_rows = jnp.stack([m, rows - m], axis=1).reshape(-1)  # segments 2s, 2s + 1
    else:
        seg_rows = rows
    lo, hi, frac = _grid_ranks(seg_rows, plan)
    ranks = jnp.concatenate([lo, hi], axis=1)
    order = jnp.argsort(ranks, axis=1)
    keys, _ = _select(
        lambda e: count(_VALUES, cut, cut_index, e),
        jnp.take_along_axis(ranks, order, axis=1),
        key_bits=8 * plan.dtype.itemsize,
        bits_per_pass=plan.bits_per_pass,
        rolled=rolled,
    )
    keys = jnp.take_along_axis(keys, jnp.argsort(order, axis=1), axis=1)
    table = _interpolate(keys, frac, seg_rows, grid=grid)
    q_rows, c_rows = (seg_rows[0::2], seg_rows[1::2]) if plan.split else (rows, rows)
    q_tab, c_tab = (table[0::2], table[1::2]) if plan.split else (table, table)
    return _grid_state(q_tab, c_tab, q_rows, c_rows, rows, jitter, plan, sizes)


def _grid_state(q_tab, c_tab, q_rows, c_rows, rows, jitter, plan: _Plan, sizes):
    """The :class:`BarycenterState` that ``fit_barycenter(method="quantile_grid")`` builds."""
    num, grid = plan.num, plan.grid_size
    levels = jnp.tile(jnp.linspace(0, 1, grid, dtype=plan.dtype), num)
    starts = (jnp.arange(num) * grid).astype(jnp.int32)
    return BarycenterState(
        cdf_values=c_tab.reshape(-1),
        cdf_levels=levels,
        cdf_start=starts,
        cdf_count=jnp.where(c_rows > 0, grid, 0).astype(jnp.int32),
        quantile_values=q_tab.reshape(-1),
        quantile_knots=levels,
        quantile_start=starts,
        quantile_count=jnp.where(q_rows > 0, grid, 0).astype(jnp.int32),
        proportions=_proportions(rows.astype(plan.dtype)),
        jitter=jitter,
        method="quantile_grid",
        interpolation="linear",
        uniform=True,
        attribute_sizes=sizes,
    )


# ----------------------------------------------------------------------------- entry points


def _check_options(x: Array, grid_size: Any, jitter: Any, split: Any, bits_per_pass: Any):
    if x.dtype not in (jnp.float32, jnp.float64):
        raise TypeError(
            f"`scores` must be float32 or float64 for the exact distributed fit, got {x.dtype}."
        )
    grid_size = v.check_scalar(grid_size, "grid_size", integer=True, low=2)
    v.check_scalar(jitter, "jitter", nonnegative=True)
    if not isinstance(split, bool):
        raise TypeError(f"`split` must be True or False, got {split!r}.")
    if bits_per_pass not in _BITS_PER_PASS:
        raise ValueError(f"`bits_per_pass` must be one of {_BITS_PER_PASS}, got {bits_per_pass!r}.")
    return int(grid_size)


@functools.partial(jax.jit, static_argnames=("plan_key", "axis_name", "sizes"))
def _sharded_fit(x, g, valid, bad, offset, key, jitter, *, plan_key, axis_name, sizes):
    plan = _Plan(*plan_key)
    index = offset + jnp.arange(x.shape[0], dtype=jnp.uint32)

    def count(stage, cut, cut_index, edges):
        c = _stage_counts(stage, x, g, valid, index, key, jitter, cut, cut_index, edges, plan=plan)
        return c if axis_name is None else jax.lax.psum(c, axis_name)

    state = _fit_from_counts(count, jitter, plan, sizes, rolled=True)
    # A NaN score, an id out of range or a NaN weight on any device: a state of NaN floats
    # (the rows were dropped, and the state looked whole). The checks cannot raise here.
    if axis_name is not None:
        bad = jax.lax.psum(bad.astype(jnp.int32), axis_name) > 0
    return _nan_floats_where(bad, state)


def fit_barycenter_sharded(
    scores: ArrayLike,
    groups: ArrayLike | Sequence[ArrayLike],
    *,
    num_groups: int | Sequence[int],
    key: Array,
    offset: int | ArrayLike = 0,
    axis_name: Hashable | None = None,
    weights: ArrayLike | None = None,
    grid_size: int = 1024,
    jitter: float = 1e-5,
    split: bool = True,
    bits_per_pass: int = 8,
) -> BarycenterState:
    """Fits the quantile-grid barycenter post-processor on rows spread over devices.

    Called inside :func:`jax.shard_map` with ``axis_name=``, on each device's own rows, it
    returns on every device the state that :func:`fit_barycenter` with
    ``method="quantile_grid"`` (same ``key``, ``grid_size``, ``jitter``, ``split``) returns
    on all the rows gathered in one place, in their global order: the same jitter and split
    draws per row, the same order statistics, found by exact distributed selection (module
    docstring), never gathering the rows. Only integer counts cross devices: ``S x E``
    numbers per pass (``S = 2G`` segments with the split, ``E = 2 * grid_size * (2^r - 1)``,
    ``r = bits_per_pass``), ``1 + 64 / r + 32 / r`` passes for float32 scores with the split.
    Without ``axis_name`` it is the single-device fit by the same selection.

    Every device must pass its rows' global position: ``offset`` is the index, in the
    gathered order, of this shard's first row; its rows are ``offset, offset + 1, ...``.
    Shards may hold different numbers of rows: pad each to a common length with rows of
    ``weights`` 0 after its real rows.

    Args:
      scores: this shard's calibration scores, float32 or float64, shape ``(n,)``.
      groups: integer group ids ``(n,)``, or one id array per attribute (intersections).
      num_groups: static number of groups, or one number per attribute.
      key: the :func:`jax.random.key` given to :func:`fit_barycenter` (threefry, the default).
      offset: global index of this shard's first row (a scalar or shape ``(1,)`` array, e.g.
        sharded ``P(axis_name)`` from a ``(devices,)`` array); total rows below :math:`2^{31}`.
      axis_name: the mapped axis inside ``shard_map``/``pmap``; None on one device.
      weights: optional 0/1 row mask (0: padding, left out). Other weights are not
        supported (use :func:`fit_barycenter`).
      grid_size: quantiles per group (>= 2).
      jitter: half-width of the uniform jitter, as in :func:`fit_barycenter`.
      split: split each group into a quantile half and a CDF half, as in :func:`fit_barycenter`.
      bits_per_pass: radix of the refinement, 1, 2, 4 or 8 key bits per pass: more bits, fewer
        passes, more counts per pass.

    Returns:
      A :class:`BarycenterState` (``method="quantile_grid"``), replicated over the axis.
      Under a trace nothing can raise: a group with fewer than 2 rows (1 without the split)
      gets an empty or one-point table instead of the error of :func:`fit_barycenter`.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> from fairjax.postprocessing import fit_barycenter
      >>> from fairjax.postprocessing import fit_barycenter_sharded
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 4000).astype(np.int32)
      >>> f = (rng.normal(size=4000) + 2.0 * s).astype(np.float32)
      >>> key = jax.random.key(0)
      >>> d = jax.device_count()
      >>> mesh = Mesh(np.array(jax.devices()), ("rows",))
      >>> offsets = jnp.arange(d, dtype=jnp.uint32) * (4000 // d)  # each shard's first row
      >>> fit = jax.shard_map(
      ...     lambda f, s, o: fit_barycenter_sharded(
      ...         f, s, num_groups=2, key=key, offset=o, axis_name="rows", grid_size=64),
      ...     mesh=mesh, in_specs=(P("rows"), P("rows"), P("rows")), out_specs=P())
      >>> state = jax.jit(fit)(f, s, offsets)
      >>> gathered = fit_barycenter(f, s, num_groups=2, key=key, method="quantile_grid",
      ...                           grid_size=64)
      >>> bool(jnp.array_equal(state.quantile_values, gathered.quantile_values))
      True
    """
    x = _check_scores(scores)
    ids, sizes, attrs = _normalise_groups(groups, num_groups, x.shape[0])
    key = v.check_key(key)
    _check_threefry(key)
    grid_size = _check_options(x, grid_size, jitter, split, bits_per_pass)
    w = v.check_weights(weights, x.shape[0])
    if w is not None:
        v.check_binary(w, "weights")
    valid = jnp.ones(x.shape, bool) if w is None else w > 0
    bad = _any_invalid_row(x, w, attrs, sizes)  # psum'd over the devices in the program
    off = jnp.asarray(offset).reshape(()).astype(jnp.uint32)
    plan = _Plan.new(int(np.prod(sizes)), split, grid_size, x.dtype, bits_per_pass)
    return _sharded_fit(
        x,
        ids.astype(jnp.int32),
        valid,
        bad,
        off,
        key,
        jnp.asarray(jitter, x.dtype),
        plan_key=plan.key(),
        axis_name=axis_name,
        sizes=sizes,
    )


@functools.partial(jax.jit, static_argnames=("stage", "plan_key"))
def _chunk_counts(x, g, rows, offset, key, jitter, cut, cut_index, edges, *, stage, plan_key):
    """Edge counts of one chunk (padded to its shape bucket; ``rows`` are real)."""
    index = offset + jnp.arange(x.shape[0], dtype=jnp.uint32)
    valid = jnp.arange(x.shape[0]) < rows
    plan = _Plan(*plan_key)
    return _stage_counts(stage, x, g, valid, index, key, jitter, cut, cut_index, edges, plan=plan)


def _read_chunks(chunks: Callable[[], Iterable[Any]], num_groups: Any):
    """Validated ``(scores, ids, sizes)`` of every chunk, in order."""
    for k, chunk in enumerate(chunks()):
        if not isinstance(chunk, (tuple, list)) or len(chunk) != 2:
            raise TypeError(f"chunk {k} must be a pair (scores, groups), got {type(chunk)}.")
        x = _check_scores(chunk[0], f"scores (chunk {k})")
        ids, sizes, _ = _normalise_groups(chunk[1], num_groups, x.shape[0])
        yield x, ids.astype(jnp.int32), sizes


def fit_barycenter_streaming(
    chunks: Callable[[], Iterable[tuple[ArrayLike, Any]]],
    *,
    num_groups: int | Sequence[int],
    key: Array,
    grid_size: int = 1024,
    jitter: float = 1e-5,
    split: bool = True,
    bits_per_pass: int = 8,
) -> BarycenterState:
    """Fits the quantile-grid barycenter post-processor on data read in chunks, exactly.

    The same selection as :func:`fit_barycenter_sharded`, with the chunks in place of the
    devices: each pass reads every chunk once and sums their integer counts, so memory holds
    one chunk and ``O(G x grid_size x 2^r)`` counts, never the whole data. The result is the
    state :func:`fit_barycenter` with ``method="quantile_grid"`` returns on the chunks
    concatenated in order (same key, jitter, split, grid). Cost: ``1 + 64 / r + b / r``
    passes over the data for ``b``-bit scores with the split (13 for float32 and the default
    ``r = 8``), ``1 + b / r`` without (5); a pass is one read of the chunks.

    Args:
      chunks: a function that returns a fresh iterable of ``(scores, groups)`` chunks, the
        same chunks in the same order at every call (it is called once per pass). ``groups``
        is an id array, or one id array per attribute. Chunks may have any sizes.
      num_groups: static number of groups, or one number per attribute.
      key: the :func:`jax.random.key` given to :func:`fit_barycenter` (threefry, the default).
      grid_size: quantiles per group (>= 2).
      jitter: half-width of the uniform jitter.
      split: split each group into a quantile half and a CDF half.
      bits_per_pass: 1, 2, 4 or 8 key bits resolved per pass.

    Returns:
      A :class:`BarycenterState` (``method="quantile_grid"``).

    Raises:
      ValueError: NaN scores or ids out of range in a chunk (named), a group without rows (or
        with one row and ``split=True``), chunks that change between passes, or
        :math:`2^{31}` rows or more.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from fairjax.postprocessing import fit_barycenter
      >>> from fairjax.postprocessing import fit_barycenter_streaming
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 5000).astype(np.int32)
      >>> f = (rng.normal(size=5000) + 2.0 * s).astype(np.float32)
      >>> key = jax.random.key(0)
      >>> chunks = lambda: ((f[a : a + 1200], s[a : a + 1200]) for a in range(0, 5000, 1200))
      >>> state = fit_barycenter_streaming(chunks, num_groups=2, key=key, grid_size=64)
      >>> gathered = fit_barycenter(f, s, num_groups=2, key=key, method="quantile_grid",
      ...                           grid_size=64)
      >>> bool(jnp.array_equal(state.cdf_values, gathered.cdf_values))
      True
    """
    key = v.check_key(key)
    _check_threefry(key)
    first = next(iter(_read_chunks(chunks, num_groups)), None)
    if first is None:
        raise ValueError("`chunks` gave no chunk: the fit needs calibration rows.")
    x0, _, sizes = first
    grid_size = _check_options(x0, grid_size, jitter, split, bits_per_pass)
    plan = _Plan.new(int(np.prod(sizes)), split, grid_size, x0.dtype, bits_per_pass)
    jit_arr = jnp.asarray(jitter, x0.dtype)
    seen: list[int] = []

    def count(stage, cut, cut_index, edges):
        total, offset = None, 0
        for x, ids, _ in _read_chunks(chunks, num_groups):
            if x.dtype != x0.dtype:
                raise TypeError(f"every chunk's scores must be {x0.dtype}, got {x.dtype}.")
            n = x.shape[0]
            size = _bucket(n)
            c = _chunk_counts(
                pad_rows(x, size), pad_rows(ids, size), n, np.uint32(offset), key, jit_arr,
                cut, cut_index, edges, stage=stage, plan_key=plan.key(),
            )  # fmt: skip
            total = c if total is None else total + c
            offset += n
            if offset >= 2**31:
                raise ValueError("the distributed fit counts rows in int32: fewer than 2^31.")
        if seen and offset != seen[0]:
            raise ValueError(
                f"`chunks` gave {offset} rows on a later pass, {seen[0]} on the first."
            )
        seen.append(offset)
        return total

    def checked(stage, cut, cut_index, edges):
        out = count(stage, cut, cut_index, edges)
        if stage == _COUNT:
            _check_rows(np.asarray(out[:, 0]), sizes, allow_empty=len(sizes) > 1, split=split)
        return out

    return _fit_from_counts(checked, jit_arr, plan, sizes, rolled=False)
