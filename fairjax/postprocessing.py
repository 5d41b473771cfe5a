"""Fair regression by post-processing: transport each group's scores onto their barycenter.

Demographic parity for a real-valued predictor ``g`` asks that the law of ``g(X, S)`` given
``S = s`` be the same for every group ``s``. Among all such predictors, the one closest in squared
error to a given regressor ``f`` maps the score of a point of group ``s`` to the Wasserstein-2
barycenter of the groups' score distributions :math:`\\nu_s`:

.. math::

    g^*(x, s) = \\sum_{s'} p_{s'} \\, Q_{s'}\\big(F_s(f(x, s))\\big),

with :math:`F_s` the CDF and :math:`Q_s` the quantile function of :math:`\\nu_s` and
:math:`p_s = P(S = s)`; its excess risk over ``f`` is :math:`\\sum_s p_s W_2^2(\\nu_s, \\bar\\nu)`.
:func:`fit_barycenter` estimates the ingredients from unlabelled calibration scores (sorted,
jittered per-group samples) and :func:`apply_barycenter` evaluates the estimated map on new
scores, with partial fairness ``alpha``. The fitted state is an immutable PyTree: it passes
through ``jit`` and ``vmap`` and saves to ``.npz`` + JSON without pickle (:func:`save_barycenter`,
:func:`load_barycenter`).

Reference: Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
NeurIPS 2020 (arXiv:2006.07286), Algorithm 1 and Theorem 2.3.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _persistence as _io
from fairjax import _validation as v
from fairjax import groups as gs
from fairjax._shapes import bucket, pad_rows

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "FORMAT_VERSION",
    "BarycenterState",
    "SequentialBarycenterState",
    "apply_barycenter",
    "fit_barycenter",
    "load_barycenter",
    "save_barycenter",
]

#: Version of the ``.npz`` + JSON file layout written by :func:`save_barycenter`.
FORMAT_VERSION = 1

_DATA_FIELDS = (
    "cdf_values",
    "cdf_levels",
    "cdf_start",
    "cdf_count",
    "quantile_values",
    "quantile_knots",
    "quantile_start",
    "quantile_count",
    "proportions",
    "jitter",
)
_META_FIELDS = ("method", "interpolation", "uniform", "attribute_sizes")


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=list(_DATA_FIELDS), meta_fields=_META_FIELDS
)
@dataclasses.dataclass(frozen=True)
class BarycenterState:
    """Fitted barycenter post-processor (see :func:`fit_barycenter`). An immutable PyTree.

    The per-group samples are stored flat, group after group, each segment sorted (the
    ``segment`` layout of ott-jax: one array, a start and a count per group), so memory is
    ``O(n)`` whatever the group sizes, and shapes are static under ``jit``. With
    ``method="quantile_grid"`` each segment holds ``grid_size`` quantiles, so memory is
    ``O(G x grid_size)``. The exact state's arrays are padded to a shape bucket (at least 1024,
    then at most 6.25 % above the row count) so that fits on different data sizes share compiled
    programs; rows of zero weight and the padding sit after the groups' segments, unused.

    Attributes:
      cdf_values: sorted jittered scores defining each group's CDF :math:`F_s` (the sample
        :math:`A^1_s` of the paper), shape ``(n_1,)``.
      cdf_levels: CDF level :math:`F_s` at each of those points (cumulative weight over the group
        total), shape ``(n_1,)``.
      cdf_start: first index of each group's segment, int32 ``(G,)``.
      cdf_count: number of points of each group's segment, int32 ``(G,)``.
      quantile_values: sorted jittered scores defining each quantile function :math:`Q_s` (the
        sample :math:`A^0_s`), shape ``(n_0,)``; the same sample as the CDF one with
        ``split=False``.
      quantile_knots: quantile levels at those points: CDF levels for ``interpolation="step"``,
        linear-interpolation knots for ``"linear"``, shape ``(n_0,)``.
      quantile_start: int32 ``(G,)``.
      quantile_count: int32 ``(G,)``.
      proportions: group proportions :math:`p_s` on the calibration data, shape ``(G,)``.
      jitter: half-width :math:`\\sigma` of the uniform jitter, scalar.
      method: ``"exact"`` (step CDF) or ``"quantile_grid"`` (piecewise-linear CDF). Static.
      interpolation: ``"step"`` or ``"linear"`` quantile functions. Static.
      uniform: True when the calibration rows had unit weights, so ranks and quantile indices
        are closed-form integers (no search over levels). Static.
      attribute_sizes: number of values of each sensitive attribute; groups are their
        intersection (one attribute: ``(G,)``). Static.
    """

    cdf_values: Array
    cdf_levels: Array
    cdf_start: Array
    cdf_count: Array
    quantile_values: Array
    quantile_knots: Array
    quantile_start: Array
    quantile_count: Array
    proportions: Array
    jitter: Array
    method: str = "exact"
    interpolation: str = "step"
    uniform: bool = True
    attribute_sizes: tuple[int, ...] = ()

    @property
    def num_groups(self) -> int:
        """Number of (intersectional) groups ``G``."""
        return int(np.prod(self.attribute_sizes))


class SequentialBarycenterState(NamedTuple):
    """Post-processor applied one sensitive attribute after the other (``multi="sequential"``).

    Attributes:
      stages: one :class:`BarycenterState` per attribute, applied in order.
    """

    stages: tuple[BarycenterState, ...]


# ----------------------------------------------------------------------------- validation


def _check_scores(scores: ArrayLike, name: str = "scores") -> Array:
    x = v.as_array(scores, name, ndim=1)
    v.check_finite(x, name)
    return x.astype(v.float_dtype(x))


def _normalise_groups(
    groups: Any, num_groups: Any, n: int
) -> tuple[Array, tuple[int, ...], list[Array]]:
    """Returns intersection ids, the attribute sizes and the per-attribute ids."""
    if isinstance(groups, (list, tuple)):
        if not isinstance(num_groups, (list, tuple)) or len(num_groups) != len(groups):
            raise ValueError(
                "with several sensitive attributes, `num_groups` must give one size per "
                f"attribute ({len(groups)}), got {num_groups!r}."
            )
        attrs = [
            v.check_groups(a, num_groups=int(k), n=n)
            for a, k in zip(groups, num_groups, strict=True)
        ]
        sizes = tuple(int(k) for k in num_groups)
    else:
        if isinstance(num_groups, (list, tuple)):
            raise ValueError("`num_groups` is a sequence but `groups` is a single attribute.")
        attrs = [v.check_groups(groups, num_groups=num_groups, n=n)]
        sizes = (v.check_num_groups(num_groups),)
    for a in attrs:
        if a.ndim != 1:
            raise TypeError(
                "post-processing needs hard group ids: `groups` must be integer ids of shape "
                f"(n,), got shape {a.shape}."
            )
    ids = attrs[0].astype(jnp.int32) if len(attrs) == 1 else gs.intersect(*attrs, num_groups=sizes)
    return ids, sizes, attrs


def _group_label(s: int, sizes: tuple[int, ...]) -> str:
    if len(sizes) == 1:
        return str(s)
    return f"{s} (attribute values {tuple(int(i) for i in np.unravel_index(s, sizes))})"


def _check_key(key: Any) -> Array:
    if key is None:
        raise TypeError("`key` is required: a jax.random key (e.g. jax.random.key(0)).")
    return key


# ----------------------------------------------------------------------------- shape buckets


def _bucket(n: int) -> int:
    """Padded length for ``n`` rows (:func:`fairjax._shapes.bucket`, at least 1024 rows).

    Padded rows carry weight 0 (fit: they fall in the trash segment) or are cut off (apply),
    so results are unchanged.
    """
    return bucket(n, minimum=1024)


def _cut(a: Array, m: int) -> Array:
    """The first ``m`` entries of ``a`` (a host view on the CPU backend: no compile)."""
    if a.shape[0] == m:
        return a
    if jax.default_backend() == "cpu" and v.is_concrete(a):
        return jnp.asarray(np.asarray(a)[:m])
    return a[:m]


# ----------------------------------------------------------------------------- sorting


def _segment_sort(segments: Array, values: Array, num_segments: int, *, host: bool) -> Array:
    """Permutation sorting by (segment, value), stable; NumPy on the host when ``host``.

    XLA's CPU sort is ~30x slower than NumPy's, so on the CPU backend with concrete inputs the
    order is computed with one radix sort of the small segment ids and one NumPy sort per segment;
    on an accelerator (or under ``jit``) it is one ``lexsort``. Both give the same permutation.
    (Unit weights on the host skip the permutation: :func:`_host_sorted_values`.)
    """
    if not host:
        return jnp.lexsort((values, segments))
    seg = np.asarray(segments)
    seg = seg.astype(np.int16 if num_segments < np.iinfo(np.int16).max else np.int32)
    val = np.asarray(values)
    order = np.argsort(seg, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(seg, minlength=num_segments))])
    for a, b in itertools.pairwise(bounds.tolist()):
        if b - a > 1:
            idx = order[a:b]
            order[a:b] = idx[np.argsort(val[idx], kind="stable")]
    return jnp.asarray(order)


def _host_uniform_arrays(segments: Array, values: Array, *, num: int, split: bool) -> dict:
    """:func:`_assemble_arrays` for unit weights, with NumPy on the host and no permutation.

    With unit weights the state depends on the sorted values only, not on which row went
    where: each segment is gathered (one boolean mask per segment when there are few, else one
    radix sort of the ids) and sorted in place with NumPy's SIMD sort of the values (measured
    ~10x faster than an argsort + gather at 10^7 rows here), and the CDF levels ``i / n_s`` and
    type-7 knots ``(i - 1) / (n_s - 1)`` are written in closed form. Below 2^24 rows these are
    the values of the cumulative sums of :func:`_layout_from_order` (exact integers in float32),
    so the state equals the device path's up to the order of equal values; above, the closed
    form is the more accurate.
    """
    n_seg = 2 * num + 1 if split else num + 1
    seg = np.asarray(segments)
    val = np.asarray(values)
    dtype = val.dtype
    counts = np.bincount(seg, minlength=n_seg)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    if n_seg <= 16:
        zs = np.concatenate([np.sort(val[seg == k]) for k in range(n_seg)])
    else:
        zs = val[np.argsort(seg.astype(np.int32), kind="stable")]
        for a, c in zip(starts.tolist(), counts.tolist(), strict=True):
            zs[a : a + c].sort()
    levels = np.zeros(zs.shape, dtype)
    knots = np.zeros(zs.shape, dtype)
    for a, c in zip(starts[:-1].tolist(), counts[:-1].tolist(), strict=True):  # not the trash
        i = np.arange(1, c + 1, dtype=dtype)
        levels[a : a + c] = i / dtype.type(c)
        if c > 1:
            knots[a : a + c] = (i - 1) / dtype.type(c - 1)
    start, count = starts.astype(np.int32), counts.astype(np.int32)
    if split:
        q_start, q_count = start[0 : 2 * num : 2], count[0 : 2 * num : 2]
        c_start, c_count = start[1 : 2 * num : 2], count[1 : 2 * num : 2]
        rows = q_count + c_count
    else:
        q_start, q_count = c_start, c_count = start[:num], count[:num]
        rows = c_count
    # XLA divides by the total as the device path does (not bit-equal to NumPy's division).
    proportions = _proportions(jnp.asarray(rows.astype(dtype)))
    zs = jnp.asarray(zs)
    return dict(
        cdf_values=zs,
        cdf_levels=jnp.asarray(levels),
        cdf_start=jnp.asarray(c_start),
        cdf_count=jnp.asarray(c_count),
        quantile_values=zs,
        levels=jnp.asarray(levels),
        knots=jnp.asarray(knots),
        quantile_start=jnp.asarray(q_start),
        quantile_count=jnp.asarray(q_count),
        proportions=proportions,
    )


def _layout_from_order(z, w, seg, order, num_segments):
    """Values, weights, CDF levels, type-7 knots, starts and counts of the sorted segments."""
    zs, ws, ss = z[order], w[order], seg[order]
    count = jnp.bincount(seg, length=num_segments).astype(jnp.int32)
    start = (jnp.cumsum(count) - count).astype(jnp.int32)
    total = jax.ops.segment_sum(ws, ss, num_segments=num_segments)
    cum = jnp.cumsum(ws)
    before = (cum - ws)[jnp.clip(start, 0, zs.shape[0] - 1)]
    # Cumulative weight inside the segment: global cumsum minus what came before the segment.
    inner = cum - before[ss]
    levels = gs.safe_divide(inner, total[ss])
    w_last = ws[jnp.clip(start + count - 1, 0, zs.shape[0] - 1)]
    # Linear (type 7) knots (C_i - w_i) / (W - w_last): i / (n - 1) for unit weights.
    knots = gs.safe_divide(inner - ws, (total - w_last)[ss])
    return zs, ws, levels, knots, start, count


# ----------------------------------------------------------------------------- searching


#: Queries per block of the CPU search (see :func:`_segment_search`).
_SEARCH_BLOCK = 32768


def _segment_search(arr: Array, start: Array, count: Array, q: Array, *, side: str) -> Array:
    """Number of entries of each query's segment below ``q`` (``side="left"``: ``< q``;
    ``"right"``: ``<= q``), by a branch-free binary search of static length.

    One search over all groups at once: cost ``O(log n)`` gathers per query, independent of
    the number of groups. Each step halves the remaining range ``[lo, lo + len)`` of every
    query. On the CPU backend a long query vector is searched in blocks of ``_SEARCH_BLOCK``
    queries (``lax.map``), so that the loop state of a block stays in cache instead of streaming
    ``O(m)`` arrays through memory at every step (measured 2-2.5x faster at 10^7 queries); an
    accelerator searches all queries in one loop. Both give the same integers.
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


def _ranks(state: BarycenterState, z: Array, g: Array) -> Array:
    """Estimated CDF level ``F_s(z)`` of each jittered query in its own group."""
    start, count = state.cdf_start[g], state.cdf_count[g]
    k = _segment_search(state.cdf_values, start, count, z, side="left")
    if state.method == "exact":
        return _level_of_rank(state, k, start, count, z.dtype)
    # Quantile grid: the CDF is linear between consecutive grid points.
    last = max(state.cdf_values.shape[0] - 1, 0)
    lo = jnp.clip(start + k - 1, 0, last)
    hi = jnp.clip(start + k, 0, last)
    v_lo, v_hi = state.cdf_values[lo], state.cdf_values[hi]
    l_lo, l_hi = state.cdf_levels[lo], state.cdf_levels[hi]
    frac = jnp.clip(gs.safe_divide(z - v_lo, v_hi - v_lo), 0, 1)
    u = jnp.where(k <= 0, 0, jnp.where(k >= count, 1, l_lo + frac * (l_hi - l_lo)))
    return jnp.where(count > 0, u, 0).astype(z.dtype)


def _level_of_rank(state: BarycenterState, k: Array, start: Array, count: Array, dtype) -> Array:
    """Exact method: the CDF level of rank ``k = #{a in A1_s : a < z}`` in its group.

    The step CDF's left limit at ``z``, as in the paper: ``k / N1_s`` for unit weights, else the
    cumulative weight of the ``k`` points below over the group's total.
    """
    if state.uniform:
        return gs.safe_divide(k.astype(dtype), count.astype(dtype))
    last = max(state.cdf_values.shape[0] - 1, 0)
    below = state.cdf_levels[jnp.clip(start + k - 1, 0, last)]
    return jnp.where(k > 0, below, 0).astype(dtype)


def _quantile_of_group(state: BarycenterState, s: Array, u: Array) -> Array:
    """Quantile function ``Q_s(u)`` of group ``s`` (a scalar index) at levels ``u``."""
    start, count = state.quantile_start[s], state.quantile_count[s]
    vals, dtype = state.quantile_values, u.dtype
    last = max(vals.shape[0] - 1, 0)
    n = count.astype(dtype)
    eps = 4 * jnp.finfo(dtype).eps
    if state.interpolation == "step":
        if state.uniform:
            # A0_s[ceil(N0 u)] (1-based), the paper's index; the (1 - eps) guard keeps an exact
            # integer N0 * u from rounding up to the next index.
            i = jnp.ceil(u * n * (1 - eps)).astype(jnp.int32) - 1
        else:
            i = _segment_search(state.quantile_knots, start, count, u * (1 - eps), side="left")
        i = jnp.clip(i, 0, jnp.maximum(count - 1, 0))
        return vals[jnp.clip(start + i, 0, last)]
    if state.uniform:
        h = u * jnp.maximum(n - 1, 0)
        i = jnp.clip(jnp.floor(h).astype(jnp.int32), 0, jnp.maximum(count - 2, 0))
        frac = jnp.clip(h - i, 0, 1)
    else:
        i = _segment_search(state.quantile_knots, start, count, u, side="right") - 1
        i = jnp.clip(i, 0, jnp.maximum(count - 2, 0))
        k_lo = state.quantile_knots[jnp.clip(start + i, 0, last)]
        k_hi = state.quantile_knots[jnp.clip(start + i + 1, 0, last)]
        frac = jnp.clip(gs.safe_divide(u - k_lo, k_hi - k_lo), 0, 1)
    lo = vals[jnp.clip(start + i, 0, last)]
    hi = vals[jnp.clip(start + jnp.minimum(i + 1, jnp.maximum(count - 1, 0)), 0, last)]
    return lo + frac * (hi - lo)


def _barycentric(state: BarycenterState, u: Array) -> Array:
    """:math:`\\sum_{s'} \\hat p_{s'} Q_{s'}(u)`: the barycenter's quantile function at ``u``."""
    p = state.proportions.astype(u.dtype)

    def body(s, acc):
        return acc + p[s] * _quantile_of_group(state, s, u)

    return jax.lax.fori_loop(0, state.proportions.shape[0], body, jnp.zeros_like(u))


@jax.jit
def _apply_one(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array) -> Array:
    e = jax.random.uniform(key, y.shape, y.dtype, -1, 1) * state.jitter.astype(y.dtype)
    fair = _barycentric(state, _ranks(state, y + e, g))
    alpha = jnp.asarray(alpha, y.dtype)
    return alpha * fair + (1 - alpha) * y


def _apply_bucketed(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array):
    """:func:`_apply_one` on queries padded to their shape bucket (one program per bucket)."""
    m = y.shape[0]
    size = _bucket(m)
    # attribute_sizes is metadata only: one program whatever the attributes' sizes.
    state = dataclasses.replace(state, attribute_sizes=(state.num_groups,))
    return _cut(_apply_one(state, pad_rows(y, size), pad_rows(g, size), key, alpha), m)


# ----------------------------------------------------------------------------- fit


def _fit_one(
    x: Array,
    g: Array,
    w: Array | None,
    *,
    sizes: tuple[int, ...],
    key: Array,
    jitter: float,
    split: bool,
    method: str,
    grid_size: int,
    interpolation: str,
    allow_empty: bool,
) -> BarycenterState:
    num = int(np.prod(sizes))
    host = jax.default_backend() == "cpu" and v.is_concrete(x, g, w)
    uniform = w is None
    wf = jnp.ones(x.shape, x.dtype) if w is None else w.astype(x.dtype)
    # Shape bucket: padded rows get weight 0 (the trash segment); the random draws are prefix-
    # stable (JAX's default partitionable threefry): real rows get the same jitter and split.
    size = _bucket(x.shape[0])
    x, g, wf = pad_rows(x, size), pad_rows(g, size), pad_rows(wf, size)
    z, gg, r, rows = _fit_inputs(x, g, wf, key, jnp.asarray(jitter, x.dtype), num=num, split=split)
    if v.is_concrete(rows):
        _check_rows(np.asarray(rows), sizes, allow_empty=allow_empty, split=split)
    if split:
        order = _segment_sort(gg, r, num + 1, host=host)
        seg = _split_segments(gg, order, num)
        n_seg = 2 * num + 1
    else:
        seg, n_seg = gg, num + 1
    if host and uniform:
        # Unit weights: the state (sorted values, levels i/n) depends on the sorted values
        # only; sort them directly, without a permutation, and write the levels in closed form.
        arrays = _host_uniform_arrays(seg, z, num=num, split=split)
    else:
        order = _segment_sort(seg, z, n_seg, host=host)
        arrays = _assemble_arrays(z, wf, seg, order, g, num=num, split=split)
    state = _assemble(
        arrays,
        jnp.asarray(jitter, x.dtype),
        interpolation="linear" if method == "quantile_grid" else interpolation,
        uniform=uniform,
        sizes=sizes,
    )
    if method == "quantile_grid":
        state = _compress(state, grid_size)
    return state


def _check_rows(rows: np.ndarray, sizes: tuple[int, ...], *, allow_empty: bool, split: bool):
    empty = np.flatnonzero(rows == 0)
    if empty.size and not allow_empty:
        names = ", ".join(_group_label(int(s), sizes) for s in empty[:5])
        raise ValueError(
            f"group(s) {names} have no calibration rows (with positive weight): every group "
            "of `num_groups` needs calibration data (drop unused ids or renumber groups)."
        )
    single = np.flatnonzero(rows == 1)
    if split and single.size:
        names = ", ".join(_group_label(int(s), sizes) for s in single[:5])
        raise ValueError(
            f"group(s) {names} have a single calibration row; split=True needs at least "
            "2 per group (one for the CDF, one for the quantiles). Pass split=False."
        )


@functools.partial(jax.jit, static_argnames=("num", "split"))
def _fit_inputs(x, g, wf, key, jitter, *, num, split):
    """Jittered scores, group ids with a trash id for zero weights, split keys, row counts."""
    k_jitter, k_split = jax.random.split(key)
    z = x + jax.random.uniform(k_jitter, x.shape, x.dtype, -1, 1) * jitter
    gg = jnp.where(wf > 0, g, num).astype(jnp.int32)  # rows of zero weight: a trash segment
    r = jax.random.uniform(k_split, x.shape) if split else None  # only the split needs them
    rows = jnp.bincount(gg, length=num + 1)[:num]
    return z, gg, r, rows


def _assemble(arrays, jitter, *, interpolation, uniform, sizes):
    """The state from the arrays of :func:`_assemble_arrays` or :func:`_host_uniform_arrays`."""
    levels, knots = arrays.pop("levels"), arrays.pop("knots")
    return BarycenterState(
        **arrays,
        quantile_knots=levels if interpolation == "step" else knots,
        jitter=jitter,
        method="exact",
        interpolation=interpolation,
        uniform=uniform,
        attribute_sizes=sizes,
    )


@jax.jit
def _proportions(counts: Array) -> Array:
    """Group proportions from (weighted) counts."""
    return gs.safe_divide(counts, jnp.sum(counts))


@functools.partial(jax.jit, static_argnames=("num", "split"))
def _assemble_arrays(z, wf, seg, order, g, *, num, split):
    n_seg = 2 * num + 1 if split else num + 1
    zs, _, levels, knots, start, count = _layout_from_order(z, wf, seg, order, n_seg)
    if split:
        q_start, q_count = start[0 : 2 * num : 2], count[0 : 2 * num : 2]
        c_start, c_count = start[1 : 2 * num : 2], count[1 : 2 * num : 2]
    else:
        q_start, q_count = c_start, c_count = start[:num], count[:num]
    counts = gs.group_counts(g, num_groups=num, weights=wf)
    return dict(
        cdf_values=zs,
        cdf_levels=levels,
        cdf_start=c_start,
        cdf_count=c_count,
        quantile_values=zs,
        levels=levels,
        knots=knots,
        quantile_start=q_start,
        quantile_count=q_count,
        proportions=_proportions(counts).astype(z.dtype),
    )


@functools.partial(jax.jit, static_argnames="num")
def _split_segments(gg: Array, order: Array, num: int) -> Array:
    """Segment ``2s`` (quantile half, ``N0 = n_s // 2`` rows) or ``2s + 1`` (CDF half)."""
    count = jnp.bincount(gg, length=num + 1)
    start = jnp.cumsum(count) - count
    pos = (
        jnp.zeros_like(gg).at[order].set(jnp.arange(gg.shape[0], dtype=gg.dtype) - start[gg[order]])
    )
    half = (pos >= count[gg] // 2).astype(jnp.int32)
    return jnp.where(gg < num, 2 * gg + half, 2 * num)


@functools.partial(jax.jit, static_argnames="grid_size")
def _compress(state: BarycenterState, grid_size: int) -> BarycenterState:
    """Replaces each group's samples by ``grid_size`` linearly interpolated quantiles."""
    num = state.proportions.shape[0]
    grid = jnp.linspace(0, 1, grid_size, dtype=state.cdf_values.dtype)
    linear_source = state.quantile_knots  # type-7 knots of every segment (fitted "linear")

    def table(values_start, values_count):
        linear = dataclasses.replace(
            state,
            quantile_start=values_start,
            quantile_count=values_count,
            quantile_knots=linear_source,
            interpolation="linear",
        )
        return jax.vmap(lambda s: _quantile_of_group(linear, s, grid))(jnp.arange(num))

    cdf_tab = table(state.cdf_start, state.cdf_count)
    q_tab = table(state.quantile_start, state.quantile_count)
    starts = (jnp.arange(num) * grid_size).astype(jnp.int32)
    counts = jnp.where(state.cdf_count > 0, grid_size, 0).astype(jnp.int32)
    q_counts = jnp.where(state.quantile_count > 0, grid_size, 0).astype(jnp.int32)
    levels = jnp.tile(grid, num)
    return dataclasses.replace(
        state,
        cdf_values=cdf_tab.reshape(-1),
        cdf_levels=levels,
        cdf_start=starts,
        cdf_count=counts,
        quantile_values=q_tab.reshape(-1),
        quantile_knots=levels,
        quantile_start=starts,
        quantile_count=q_counts,
        method="quantile_grid",
        interpolation="linear",
        uniform=True,
    )


def fit_barycenter(
    scores: ArrayLike,
    groups: ArrayLike | Sequence[ArrayLike],
    *,
    num_groups: int | Sequence[int],
    key: Array,
    weights: ArrayLike | None = None,
    jitter: float = 1e-5,
    split: bool = True,
    method: str = "exact",
    grid_size: int = 1024,
    interpolation: str | None = None,
    multi: str = "intersection",
) -> BarycenterState | SequentialBarycenterState:
    """Fits the Wasserstein-barycenter post-processor on unlabelled calibration scores.

    The optimal fair predictor in squared error (demographic parity, sensitive attribute known
    at prediction time) is

    .. math:: g^*(x, s) = \\sum_{s'} p_{s'} Q_{s'}\\big(F_s(f(x, s))\\big).

    The estimator (Algorithm 1 of the paper) adds i.i.d. jitter
    :math:`\\varepsilon \\sim U[-\\sigma, \\sigma]` to every calibration score, so that the
    group distributions are atomless and ranks are uniform; with ``split=True`` it splits each
    group's sample at random into halves :math:`A^0_s` (:math:`N^0_s = \\lfloor n_s/2
    \\rfloor` points, giving :math:`Q_s`) and :math:`A^1_s` (the other :math:`N^1_s`, giving
    :math:`F_s`); :func:`apply_barycenter` then outputs

    .. math::

        \\hat g(x, s) = \\sum_{s'} \\hat p_{s'} \\, A^0_{s'}\\Big[\\Big\\lceil
            N^0_{s'} \\, \\frac{k}{N^1_s} \\Big\\rceil\\Big], \\qquad
        k = \\#\\{a \\in A^1_s : a < f(x, s) + \\varepsilon\\}

    (sorted, 1-based, clipped to the range). The split makes rank and quantiles independent,
    which is what the paper's distribution-free guarantee uses: expected KS unfairness of order
    :math:`\\sum_s N_s^{-1/2}`, whatever ``f``. ``split=False`` uses the whole sample for both (as
    EquiPy does): twice the data per function, lower variance, at the cost of that independence.

    ``method="quantile_grid"`` compresses each group to ``grid_size`` quantiles (linear
    interpolation, CDF linear between them): state and apply memory ``O(G x grid_size)``
    instead of ``O(n)``, with a bias of the order of the grid spacing.

    Several sensitive attributes (``groups`` a sequence of id arrays, ``num_groups`` a sequence
    of sizes): ``multi="intersection"`` (default) gives exact parity on every combination
    (:func:`fairjax.groups.intersect`; combinations absent from the calibration data are allowed
    and get :math:`p = 0`); ``multi="sequential"`` applies one barycenter map per attribute in
    turn, each fitted on the output of the previous ones (Hu, Ratz, Charpentier, AAAI 2024, as in
    EquiPy's ``MultiWasserstein``): parity for each attribute's margins, with more data per
    group, but not on intersections.

    Args:
      scores: calibration scores :math:`f(x, s)` (no labels needed), shape ``(n,)``.
      groups: integer group ids ``(n,)``, or a sequence of id arrays, one per attribute.
      num_groups: static number of groups, or one number per attribute.
      key: a :func:`jax.random.key` for the jitter and the split (keyword-only).
      weights: optional non-negative sample weights ``(n,)``; rows of weight 0 are left out;
        weights enter :math:`p_s`, the CDFs and the quantile functions.
      jitter: half-width :math:`\\sigma \\ge 0` of the uniform jitter, in score units
        (1e-5 as in the paper's code; EquiPy uses 1e-4). 0 disables it: ties then keep their
        order and the guarantee needs continuous scores.
      split: split each group into a CDF half and a quantile half (the paper), or not (EquiPy).
      method: ``"exact"`` or ``"quantile_grid"``.
      grid_size: number of quantiles per group for ``"quantile_grid"`` (>= 2).
      interpolation: quantile function of the exact method, ``"step"`` (the paper's index,
        default) or ``"linear"`` (EquiPy's). The grid is always linear.
      multi: ``"intersection"`` or ``"sequential"``, for several attributes.

    Returns:
      A :class:`BarycenterState` (:class:`SequentialBarycenterState` for
      ``multi="sequential"``).

    Raises:
      ValueError: NaN scores, ids out of range, mismatched lengths, ``jitter < 0``, a group
        without calibration rows (named), or a group of one row with ``split=True``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_barycenter, apply_barycenter
      >>> from fairjax.metrics import ks_unfairness
      >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
      >>> s = (jax.random.uniform(k1, (4000,)) < 0.3).astype(jnp.int32)
      >>> f = jax.random.normal(k2, (4000,)) + 2.0 * s          # group 1 scores 2 higher
      >>> state = fit_barycenter(f[:2000], s[:2000], num_groups=2, key=k3)
      >>> fair = apply_barycenter(state, f[2000:], s[2000:], key=k3)
      >>> bool(ks_unfairness(f[2000:], s[2000:], num_groups=2) > 0.6)
      True
      >>> bool(ks_unfairness(fair, s[2000:], num_groups=2) < 0.1)
      True

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
      NeurIPS 2020 (arXiv:2006.07286), Algorithm 1, Theorems 2.3 and 4.4.
    """
    x = _check_scores(scores)
    n = x.shape[0]
    ids, sizes, attrs = _normalise_groups(groups, num_groups, n)
    key = _check_key(key)
    w = v.check_weights(weights, n)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not jitter >= 0:
        raise ValueError(f"`jitter` must be a number >= 0, got {jitter!r}.")
    if method not in ("exact", "quantile_grid"):
        raise ValueError(f"`method` must be 'exact' or 'quantile_grid', got {method!r}.")
    if method == "quantile_grid" and (not isinstance(grid_size, int) or grid_size < 2):
        raise ValueError(f"`grid_size` must be an int >= 2, got {grid_size!r}.")
    if interpolation is None:
        interpolation = "step"
    if interpolation not in ("step", "linear"):
        raise ValueError(f"`interpolation` must be 'step' or 'linear', got {interpolation!r}.")
    if multi not in ("intersection", "sequential"):
        raise ValueError(f"`multi` must be 'intersection' or 'sequential', got {multi!r}.")
    if n == 0:
        raise ValueError("`scores` must not be empty.")
    options = dict(
        jitter=float(jitter),
        split=split,
        method=method,
        grid_size=grid_size,
        interpolation=interpolation,
    )
    if multi == "intersection" or len(sizes) == 1:
        return _fit_one(x, ids, w, sizes=sizes, key=key, allow_empty=len(sizes) > 1, **options)
    stages, current = [], x
    for k, (attr, size) in enumerate(zip(attrs, sizes, strict=True)):
        k_fit, k_apply = jax.random.split(jax.random.fold_in(key, k))
        a = attr.astype(jnp.int32)
        stage = _fit_one(current, a, w, sizes=(size,), key=k_fit, allow_empty=False, **options)
        stages.append(stage)
        current = _apply_bucketed(stage, current, a, k_apply, jnp.ones((), current.dtype))
    return SequentialBarycenterState(tuple(stages))


# ----------------------------------------------------------------------------- apply


def _check_alpha(alpha: Any) -> Array:
    a = v.as_array(alpha, "alpha", ndim=0)
    if v.is_concrete(a) and not v.holds(lambda xp, x: (x >= 0) & (x <= 1), a):
        raise ValueError(f"`alpha` must lie in [0, 1] (1 = fully fair), got {float(a)!r}.")
    return a


def _check_present(state: BarycenterState, ids: Array) -> None:
    if not v.is_concrete(ids, state.cdf_count, state.quantile_count):
        return
    missing = (np.asarray(state.cdf_count) == 0) | (np.asarray(state.quantile_count) == 0)
    if missing.any():
        seen = np.bincount(np.asarray(ids), minlength=missing.shape[0])[: missing.shape[0]]
        bad = np.flatnonzero(missing & (seen > 0))
        if bad.size:
            names = ", ".join(_group_label(int(s), state.attribute_sizes) for s in bad[:5])
            raise ValueError(
                f"`groups` holds group(s) {names} that had no calibration data when the "
                "post-processor was fitted: their score distribution is unknown."
            )


def apply_barycenter(
    state: BarycenterState | SequentialBarycenterState,
    scores: ArrayLike,
    groups: ArrayLike | Sequence[ArrayLike],
    *,
    key: Array,
    alpha: float | ArrayLike = 1.0,
) -> Array:
    """Maps scores onto the fitted barycenter: fair predictions, optionally partially fair.

    .. math::

        g_\\alpha(x, s) = \\alpha \\, \\hat g(x, s) + (1 - \\alpha) f(x, s),
        \\qquad \\alpha \\in [0, 1],

    with :math:`\\hat g` the estimated optimal fair predictor (see :func:`fit_barycenter`):
    ``alpha=1`` is fully fair, ``alpha=0`` returns the scores unchanged (EquiPy's
    ``epsilon = 1 - alpha``). Within group ``s``, :math:`g_\\alpha` pushes :math:`\\nu_s` along
    the Wasserstein-2 geodesic to the barycenter :math:`\\bar\\nu`, a fraction ``alpha`` of the
    way: :math:`W_2(\\mathrm{law}(g_\\alpha|s), \\bar\\nu) = (1 - \\alpha) W_2(\\nu_s, \\bar\\nu)`,
    so the barycentric unfairness :math:`U = \\sum_s p_s W_2^2(\\cdot, \\bar\\nu)` becomes
    :math:`(1 - \\alpha)^2 U(f)`, while the price in squared distance to ``f`` is
    :math:`\\alpha^2 \\sum_s p_s W_2^2(\\nu_s, \\bar\\nu)` — the risk-fairness trade-off curve
    shown optimal by Chzhen and Schreuder (2022). KS unfairness is not linear in ``alpha``: it
    stays large until ``alpha`` is close to 1 when the group distributions barely overlap.

    A fresh jitter :math:`U[-\\sigma, \\sigma]` is drawn per query (ties between a query and the
    calibration values are thus broken at random); it only enters the rank, not the
    ``(1 - alpha) f`` term. Jit-compiles (``state`` is a PyTree) and vmaps, e.g. over ``alpha``.
    Under ``jit`` a query of a group with no calibration data cannot raise: it maps to the
    barycenter's minimum.

    Args:
      state: from :func:`fit_barycenter` (or :func:`load_barycenter`).
      scores: scores to post-process, shape ``(m,)``.
      groups: integer group ids ``(m,)``, or one id array per attribute as at fit time.
      key: a :func:`jax.random.key` for the jitter (keyword-only).
      alpha: fairness strength in [0, 1] (1 = fully fair).

    Returns:
      Post-processed predictions, shape ``(m,)``, in the scores' float dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_barycenter, apply_barycenter
      >>> s = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> f = jnp.array([0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0])
      >>> state = fit_barycenter(f, s, num_groups=2, key=jax.random.key(0), split=False,
      ...                        jitter=0.0)
      >>> apply_barycenter(state, f + 0.5, s, key=jax.random.key(1))  # both groups -> 5..8
      Array([5., 6., 7., 8., 5., 6., 7., 8.], dtype=float32)
      >>> apply_barycenter(state, f + 0.5, s, key=jax.random.key(1), alpha=0.5)
      Array([ 2.75,  3.75,  4.75,  5.75,  7.75,  8.75,  9.75, 10.75], dtype=float32)

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, NeurIPS 2020 (arXiv:2006.07286), Algorithm 1;
      Chzhen and Schreuder, *A minimax framework for quantifying risk-fairness trade-off in
      regression*, Annals of Statistics 2022.
    """
    y = _check_scores(scores)
    key = _check_key(key)
    a = _check_alpha(alpha)
    stages = state.stages if isinstance(state, SequentialBarycenterState) else None
    if stages is None:
        if not isinstance(state, BarycenterState):
            raise TypeError(f"`state` must come from fit_barycenter, got {type(state).__name__}.")
        sizes = state.attribute_sizes
        num = sizes if len(sizes) > 1 else sizes[0]
        ids, _, _ = _normalise_groups(groups, num, y.shape[0])
        _check_present(state, ids)
        return _apply_bucketed(state, y, ids, key, a)
    num = tuple(st.attribute_sizes[0] for st in stages)
    _, _, attrs = _normalise_groups(groups, num, y.shape[0])
    current = y
    for k, (stage, attr) in enumerate(zip(stages, attrs, strict=True)):
        _check_present(stage, attr)
        k_apply = jax.random.fold_in(key, k)
        current = _apply_bucketed(
            stage, current, attr.astype(jnp.int32), k_apply, jnp.ones((), y.dtype)
        )
    return a.astype(y.dtype) * current + (1 - a.astype(y.dtype)) * y


# ----------------------------------------------------------------------------- save / load


_KIND = "fairjax.postprocessing.barycenter"


def _put_state(arrays: dict[str, np.ndarray], prefix: str, state: BarycenterState) -> dict:
    """Stores a state's arrays under ``{prefix}/{field}``; returns its static fields as JSON.

    The codec of a :class:`BarycenterState` in every file that holds one (this module's files,
    the saved :class:`~fairjax.sklearn.WassersteinFairRegressor`).
    """
    if not isinstance(state, BarycenterState):
        raise TypeError(f"expected a BarycenterState, got {type(state).__name__}.")
    for name in _DATA_FIELDS:
        arrays[f"{prefix}/{name}"] = np.asarray(getattr(state, name))
    return {
        "method": state.method,
        "interpolation": state.interpolation,
        "uniform": bool(state.uniform),
        "attribute_sizes": [int(s) for s in state.attribute_sizes],
    }


def _get_state(arrays: dict[str, np.ndarray], prefix: str, spec: dict) -> BarycenterState:
    """The inverse of :func:`_put_state` (``KeyError``/``TypeError`` on a malformed spec)."""
    if not isinstance(spec, dict):
        raise TypeError(f"a state's static fields must be a JSON object, got {spec!r}.")
    method, interpolation = spec["method"], spec["interpolation"]
    if method not in ("exact", "quantile_grid") or interpolation not in ("step", "linear"):
        raise ValueError(f"unknown method {method!r} or interpolation {interpolation!r}.")
    sizes = spec["attribute_sizes"]
    if not isinstance(sizes, list) or not all(type(k) is int and k >= 1 for k in sizes):
        raise ValueError(f"`attribute_sizes` must be positive ints, got {sizes!r}.")
    data = {name: np.asarray(arrays[f"{prefix}/{name}"]) for name in _DATA_FIELDS}
    _check_layout(data, int(np.prod(sizes)))
    return BarycenterState(
        **{name: jnp.asarray(a) for name, a in data.items()},
        method=method,
        interpolation=interpolation,
        uniform=bool(spec["uniform"]),
        attribute_sizes=tuple(sizes),
    )


_io.register_codec("barycenter", BarycenterState, _put_state, _get_state)


def _check_layout(data: dict[str, np.ndarray], num: int) -> None:
    """Checks that stored arrays form a state of ``num`` groups (else ``ValueError``).

    A digest only proves the file is as written; a crafted file with a valid digest could
    otherwise hold segments that point outside the values, whose gathers JAX clamps silently.
    """
    for values, others in (("cdf_values", "cdf_levels"), ("quantile_values", "quantile_knots")):
        v_, o_ = data[values], data[others]
        if v_.ndim != 1 or o_.shape != v_.shape or v_.dtype.kind != "f":
            raise ValueError(f"`{values}` and `{others}` must be float vectors of one length.")
    if data["proportions"].shape != (num,) or data["jitter"].ndim != 0:
        raise ValueError(f"`proportions` must have shape ({num},) and `jitter` be a scalar.")
    for kind in ("cdf", "quantile"):
        start, count = data[f"{kind}_start"], data[f"{kind}_count"]
        if start.shape != (num,) or count.shape != (num,) or start.dtype.kind not in "iu":
            raise ValueError(f"`{kind}_start`/`{kind}_count` must be {num} integers each.")
        ends = start.astype(np.int64) + count.astype(np.int64)
        size = data[f"{kind}_values"].shape[0]
        if np.any(start < 0) or np.any(count < 0) or np.any(ends > size):
            raise ValueError(f"`{kind}` segments must lie within the {size} stored values.")


def save_barycenter(
    path: str | os.PathLike, state: BarycenterState | SequentialBarycenterState
) -> None:
    """Saves a fitted post-processor to ``.npz`` (arrays) with JSON metadata; no pickle.

    The file holds every array of the state(s) under ``stage{k}/{field}`` and a ``metadata``
    entry: UTF-8 JSON with the format version, the static fields and a SHA-256 digest of the
    metadata and the arrays, so :func:`load_barycenter` restores the state exactly and refuses
    a modified file.

    Args:
      path: destination file (``.npz`` is appended by NumPy if missing).
      state: a :class:`BarycenterState` or :class:`SequentialBarycenterState`.

    Example:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_barycenter, save_barycenter, load_barycenter
      >>> st = fit_barycenter(jnp.arange(6.0), jnp.array([0, 1] * 3), num_groups=2,
      ...                     key=jax.random.key(0))
      >>> path = os.path.join(tempfile.mkdtemp(), "post.npz")
      >>> save_barycenter(path, st)
      >>> bool(jnp.all(load_barycenter(path).cdf_values == st.cdf_values))
      True
    """
    sequential = isinstance(state, SequentialBarycenterState)
    stages = state.stages if sequential else (state,)
    if not all(isinstance(st, BarycenterState) for st in stages):
        raise TypeError(f"`state` must come from fit_barycenter, got {type(state).__name__}.")
    arrays: dict[str, np.ndarray] = {}
    meta_stages = [_put_state(arrays, f"stage{k}", st) for k, st in enumerate(stages)]
    meta = {"sequential": sequential, "stages": meta_stages}
    _io.save_arrays(path, arrays, meta, kind=_KIND, version=FORMAT_VERSION)


def load_barycenter(path: str | os.PathLike) -> BarycenterState | SequentialBarycenterState:
    """Loads a post-processor written by :func:`save_barycenter` (``allow_pickle=False``).

    Raises:
      ValueError: the file is not a fairjax barycenter file, has an unknown format version, is
        truncated or corrupt, or its arrays or metadata do not match the recorded digest
        (modified).
    """
    files, meta = _io.load_arrays(path, kind=_KIND, version=FORMAT_VERSION)
    try:
        stages = [_get_state(files, f"stage{k}", st) for k, st in enumerate(meta["stages"])]
        sequential = bool(meta["sequential"])
    except (KeyError, TypeError, ValueError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
    return SequentialBarycenterState(tuple(stages)) if sequential else stages[0]
