"""Fit the barycenter post-processor: jitter, split and sort each group's calibration scores."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax import ot1d
from fairjax._host import rows_by_group
from fairjax._shapes import pad_rows
from fairjax.postprocessing._apply import _apply_bucketed
from fairjax.postprocessing._host_math import _fma, _no_tiny, _uniform_host
from fairjax.postprocessing._state import (
    BarycenterState,
    SequentialBarycenterState,
    _any_invalid_row,
    _bucket,
    _check_scores,
    _group_label,
    _nan_floats_where,
    _normalise_groups,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


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
    host = v.on_cpu_host(x, g, w, key)
    uniform = w is None
    # Shape bucket: padded rows get weight 0 (the trash segment); the random draws are prefix-
    # stable (JAX's default partitionable threefry): real rows get the same jitter and split.
    size = _bucket(x.shape[0])
    if host and uniform and x.dtype == np.float32 and _no_tiny(jitter, x):
        z, gg, r, rows = _host_fit_inputs(x, g, key, jitter, num=num, split=split, size=size)
    else:
        wf = jnp.ones(x.shape, x.dtype) if w is None else w.astype(x.dtype)
        x, g, wf = pad_rows(x, size), pad_rows(g, size), pad_rows(wf, size)
        jit = jnp.asarray(jitter, x.dtype)
        z, gg, r, rows = _fit_inputs(x, g, wf, key, jit, num=num, split=split)
    if v.is_concrete(rows):
        _check_rows(np.asarray(rows), sizes, allow_empty=allow_empty, split=split)
    if split and v.on_cpu_host(gg, r):
        seg, n_seg = _host_split_segments(np.asarray(gg), np.asarray(r), num=num), 2 * num + 1
    elif split:
        seg = _split_segments(gg, ot1d.group_order(r, gg, num_groups=num + 1), num=num)
        n_seg = 2 * num + 1
    else:
        seg, n_seg = gg, num + 1
    if host and uniform:
        # Unit weights on the host: the layout depends on the sorted values only (ot1d's
        # closed-form path); the trash segment keeps levels 0 as if its rows had weight 0.
        layout = _clear_last_segment(ot1d.group_samples(z, seg, num_groups=n_seg))
        count = np.asarray(layout.count)
        rows = count[0 : 2 * num : 2] + count[1 : 2 * num : 2] if split else count[:num]
        # XLA divides by the total as the device path does (not bit-equal to NumPy's division).
        proportions = _proportions(jax.device_put(rows.astype(z.dtype)))
    else:
        layout = ot1d.group_samples(z, seg, num_groups=n_seg, weights=wf)
        proportions = _weighted_proportions(g, wf, num=num)
    interpolation = "linear" if method == "quantile_grid" else interpolation
    state = _assemble(
        layout,
        proportions,
        jax.device_put(np.asarray(jitter, x.dtype)),
        num=num,
        split=split,
        interpolation=interpolation,
        uniform=uniform,
        sizes=sizes,
    )
    if method == "quantile_grid":
        state = _compress(state, grid_size=grid_size)
    return state


def _clear_last_segment(layout: ot1d.GroupedSamples) -> ot1d.GroupedSamples:
    """The host layout with zero levels and knots on its last (trash) segment."""
    a = int(np.asarray(layout.start)[-1])  # a host read: no gather program
    levels, knots = np.array(layout.levels), np.array(layout.knots)
    levels[a:], knots[a:] = 0, 0
    levels, knots = jax.device_put((levels, knots))  # no copy program compiled per shape
    return layout._replace(levels=levels, knots=knots)


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
    # Only the split needs them; float32 whatever x64 says, as the host path and the
    # distributed fits draw them (under x64 the default float64 drew another split).
    r = jax.random.uniform(k_split, x.shape, jnp.float32) if split else None
    rows = jnp.bincount(gg, length=num + 1)[:num]
    return z, gg, r, rows


def _host_fit_inputs(x, g, key, jitter, *, num, split, size):
    """:func:`_fit_inputs` with NumPy for unit weights (float32 on the CPU host): the same
    draws (``jax.random`` eagerly, one compiled program per shape bucket, shared with
    :func:`apply_barycenter`'s draws) and the same jittered scores bit for bit (XLA's fused
    multiply-add, :func:`fairjax.postprocessing._host_math._fma`), without compiling a program."""
    n = x.shape[0]
    xh = np.zeros(size, np.float32)
    xh[:n] = np.asarray(x)
    gg = np.full(size, num, np.int32)  # padding: the trash segment
    gg[:n] = np.asarray(g)
    k_jitter, k_split = jax.random.split(key)
    z = _fma(_uniform_host(k_jitter, size, -1, 1), np.float32(jitter), xh)
    r = _uniform_host(k_split, size, 0, 1) if split else None
    rows = np.bincount(gg, minlength=num + 1)[:num]
    return z, gg, r, rows


def _assemble(layout, proportions, jitter, *, num, split, interpolation, uniform, sizes):
    """The state from the sorted segments: quantile halves ``2s``, CDF halves ``2s + 1``."""
    if split:
        q_slice, c_slice = slice(0, 2 * num, 2), slice(1, 2 * num, 2)
    else:
        q_slice = c_slice = slice(0, num)
    start, count = layout.start, layout.count
    put = jnp.asarray
    if v.is_concrete(start, count):  # host slices: no program compiled per slice
        start, count, put = np.asarray(start), np.asarray(count), jax.device_put
    return BarycenterState(
        cdf_values=layout.values,
        cdf_levels=layout.levels,
        cdf_start=put(start[c_slice]),
        cdf_count=put(count[c_slice]),
        quantile_values=layout.values,
        quantile_knots=layout.levels if interpolation == "step" else layout.knots,
        quantile_start=put(start[q_slice]),
        quantile_count=put(count[q_slice]),
        proportions=proportions,
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


@functools.partial(jax.jit, static_argnames="num")
def _weighted_proportions(g: Array, wf: Array, *, num: int) -> Array:
    """Group proportions from the weights, in the weights' dtype."""
    return _proportions(gs.group_counts(g, num_groups=num, weights=wf)).astype(wf.dtype)


@functools.partial(jax.jit, static_argnames="num")
def _split_segments(gg: Array, order: Array, *, num: int) -> Array:
    """Segment ``2s`` (quantile half, ``N0 = n_s // 2`` rows) or ``2s + 1`` (CDF half)."""
    count = jnp.bincount(gg, length=num + 1)
    start = jnp.cumsum(count) - count
    pos = (
        jnp.zeros_like(gg)
        .at[order]
        .set((jnp.arange(gg.shape[0], dtype=gg.dtype) - start[gg[order]]).astype(gg.dtype))
    )
    half = (pos >= count[gg] // 2).astype(jnp.int32)
    return jnp.where(gg < num, 2 * gg + half, 2 * num)


def _host_split_segments(gg: np.ndarray, r: np.ndarray, *, num: int) -> np.ndarray:
    """:func:`_split_segments` of the stable order of ``r`` within each group, with NumPy and
    without sorting: a group's quantile half is its ``n_s // 2`` smallest keys, found by one
    partition (ties at the boundary go to the lower row indices, as in the stable order)."""
    seg = np.full(gg.shape, 2 * num, np.int32)  # the trash segment
    by_group, bounds = rows_by_group(gg, num + 1)  # index order within each group
    for k in range(num):
        rows = by_group[bounds[k] : bounds[k + 1]]
        half = rows.size // 2
        cdf_half = np.ones(rows.size, bool)
        if half:
            keys = r[rows]
            kth = np.partition(keys, half - 1)[half - 1]
            below = keys < kth
            cdf_half &= ~below
            ties = np.flatnonzero(keys == kth)[: half - int(np.count_nonzero(below))]
            cdf_half[ties] = False
        seg[rows] = 2 * k + cdf_half
    return seg


@functools.partial(jax.jit, static_argnames="grid_size")
def _compress(state: BarycenterState, *, grid_size: int) -> BarycenterState:
    """Replaces each group's samples by ``grid_size`` linearly interpolated quantiles."""
    num = state.proportions.shape[0]
    grid = jnp.linspace(0, 1, grid_size, dtype=state.cdf_values.dtype)
    knots = state.quantile_knots  # type-7 knots of every segment (fitted "linear")

    def table(start, count):
        samples = ot1d.GroupedSamples(state.quantile_values, knots, knots, start, count)
        quantiles = functools.partial(
            ot1d.group_quantile, interpolation="linear", uniform=state.uniform
        )
        return jax.vmap(lambda s: quantiles(samples, s, grid))(jnp.arange(num))

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
    On the CPU backend, concrete float32 scores with unit weights are jittered and sorted with
    NumPy on the host: the same draws and state, bit for bit, as under ``jit``.

    ``method="quantile_grid"`` compresses each group to ``grid_size`` quantiles (linear
    interpolation, CDF linear between them): state and apply memory ``O(G x grid_size)``
    instead of ``O(n)``, with a bias of the order of the grid spacing.

    Several sensitive attributes (``groups`` a sequence of id arrays, ``num_groups`` a sequence
    of sizes): ``multi="intersection"`` (default) gives exact parity on every combination
    (:func:`fairjax.groups.intersect`; combinations absent from the calibration data are allowed
    and get :math:`p = 0`); ``multi="sequential"`` applies one barycenter map per attribute in
    turn, each fitted on the output of the previous ones (Hu, Ratz, Charpentier, AAAI 2024, as in
    EquiPy's ``MultiWasserstein``), with more data per group: the last attribute gets exact
    parity, an earlier one only as far as the later maps keep it, which holds when the
    attributes are independent, not when they are correlated (see ``docs/wasserstein.md``);
    never parity on intersections. With correlated attributes use ``"intersection"``.

    Args:
      scores: calibration scores :math:`f(x, s)` (no labels needed), shape ``(n,)``.
      groups: integer group ids ``(n,)``, or a sequence of id arrays, one per attribute.
      num_groups: static number of groups, or one number per attribute.
      key: a :func:`jax.random.key` for the jitter and the split (keyword-only).
      weights: optional non-negative sample weights ``(n,)``; rows of weight 0 are left out;
        weights enter :math:`p_s`, the CDFs and the quantile functions.
      jitter: half-width :math:`\\sigma \\ge 0` of the uniform jitter, in score units
        (1e-5 as in the paper's code; EquiPy uses 1e-4); 0 disables it. Whatever its size, a
        query that still ties with calibration scores (atoms when ``jitter=0``, or when
        :math:`\\sigma` is below the float spacing at the scores' magnitude: float32 scores
        above ~100) gets a level drawn uniformly over the CDF's jump
        (:func:`apply_barycenter`), so the output is fair at any scale.
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
        without calibration rows (named), or a group of one row with ``split=True``. Under
        ``jit``, where nothing can raise, a NaN score or weight gives a state of NaN floats.

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
    key = v.check_key(key)
    w = v.check_weights(weights, n)
    v.check_scalar(jitter, "jitter", nonnegative=True)
    if method not in ("exact", "quantile_grid"):
        raise ValueError(f"`method` must be 'exact' or 'quantile_grid', got {method!r}.")
    if method == "quantile_grid":
        grid_size = v.check_scalar(grid_size, "grid_size", integer=True, low=2)
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
        state = _fit_one(x, ids, w, sizes=sizes, key=key, allow_empty=len(sizes) > 1, **options)
        return _nan_state_if_invalid(state, x, w, attrs, sizes)
    stages, current = [], x
    for k, (attr, size) in enumerate(zip(attrs, sizes, strict=True)):
        k_fit, k_apply = jax.random.split(jax.random.fold_in(key, k))
        a = attr.astype(jnp.int32)
        stage = _fit_one(current, a, w, sizes=(size,), key=k_fit, allow_empty=False, **options)
        stages.append(stage)
        current = _apply_bucketed(stage, current, a, k_apply, jnp.ones((), current.dtype))
    return _nan_state_if_invalid(SequentialBarycenterState(tuple(stages)), x, w, attrs, sizes)


def _nan_state_if_invalid(state, x: Array, w: Array | None, attrs: list, sizes: tuple):
    """NaN in, NaN out under ``jit``, where the value checks cannot run: a NaN score or weight,
    or a group id out of range (an intersection would wrap it to another cell), makes every
    float of the state NaN, so no output of it reads as fair (the other rows' points gave a
    state that looked whole, and mostly finite outputs)."""
    if v.is_concrete(x, *attrs) and (w is None or v.is_concrete(w)):
        return state  # the checks saw the values
    return _nan_floats_where(_any_invalid_row(x, w, attrs, sizes), state)
