"""Apply the fitted barycenter map to new scores, optionally partially fair."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import ot1d
from fairjax._host import rows_by_group
from fairjax._shapes import pad_rows
from fairjax.postprocessing._host_math import _fma, _no_tiny, _round_once, _uniform_host
from fairjax.postprocessing._state import (
    BarycenterState,
    SequentialBarycenterState,
    _bucket,
    _cdf_samples,
    _check_scores,
    _cut,
    _group_label,
    _normalise_groups,
    _quantile_samples,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _rank(state: BarycenterState, g: Array, z: Array, key: Array) -> Array:
    """CDF level of each jittered query in its group, ties with calibration scores broken at
    random: :math:`u = F_s(z^-) + V \\, (F_s(z^+) - F_s(z^-))`, :math:`V \\sim U[0, 1]`.

    Exact method: :math:`F_s(z^-)` is the step CDF's left limit (the paper's rank
    :math:`k / N^1_s`); quantile grid: the CDF linear between consecutive grid points, whose
    repeated grid values (an atom) make a jump. Where ``z`` equals no calibration value the two
    limits are equal and ``u`` is the left limit (bit for bit with the exact method; the grid's
    CDF moves by its slope times one float spacing). Where it does (an atom that the
    jitter did not spread: ``jitter=0``, or a jitter below the float spacing at the scores'
    magnitude), ``u`` is uniform over the jump: the randomised probability integral transform,
    the limit of an infinitesimal jitter, whatever the scores' scale.
    """
    samples = _cdf_samples(state)
    if state.method == "exact":
        # Both limits of the step CDF from one search (a second only where a query ties).
        below, above = ot1d.group_cdf_limits(samples, g, z, uniform=state.uniform)
    else:
        below = ot1d.group_cdf(samples, g, z, interpolation="linear", uniform=state.uniform)
        # F(z+) is the CDF at the next float above z; above 0 that is the smallest normal
        # number, as XLA flushes subnormals to zero.
        up = jnp.where(z == 0, jnp.finfo(z.dtype).tiny, jnp.nextafter(z, jnp.inf))
        above = ot1d.group_cdf(samples, g, up, interpolation="linear", uniform=state.uniform)
    v = jax.random.uniform(key, z.shape, z.dtype)
    return jnp.where(above > below, below + v * (above - below), below)


@jax.jit
def _apply_one(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array) -> Array:
    """:math:`\\alpha \\sum_{s'} p_{s'} Q_{s'}(F_s(y + e)) + (1 - \\alpha) y` per query."""
    e = jax.random.uniform(key, y.shape, y.dtype, -1, 1) * state.jitter.astype(y.dtype)
    u = _rank(state, g, y + e, jax.random.fold_in(key, 1))
    fair = ot1d.barycenter_quantile(
        _quantile_samples(state),
        state.proportions,
        u,
        interpolation=state.interpolation,
        uniform=state.uniform,
    )
    alpha = jnp.asarray(alpha, y.dtype)
    # Under jit the value checks cannot run: an id out of range (clamped by indexing), a group
    # without calibration data or an alpha outside [0, 1] gives NaN, not a confident output.
    known = (state.cdf_count > 0) & (state.quantile_count > 0)
    valid = (g >= 0) & (g < known.shape[0]) & known[g] & (alpha >= 0) & (alpha <= 1)
    return jnp.where(valid, alpha * fair + (1 - alpha) * y, jnp.nan)


def _apply_bucketed(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array):
    """:func:`_apply_one` on queries padded to their shape bucket (one program per bucket), or
    :func:`_apply_host` where it gives the same numbers without compiling."""
    # attribute_sizes is metadata only: one program whatever the attributes' sizes.
    state = dataclasses.replace(state, attribute_sizes=(state.num_groups,))
    if _use_host(state, y, g, key, alpha):
        return _apply_host(state, y, g, key, alpha)
    m = y.shape[0]
    size = _bucket(m)
    return _cut(_apply_one(state, pad_rows(y, size), pad_rows(g, size), key, alpha), m)


# ----------------------------------------------------------------------------- host path

#: Up to this many queries the host path always runs: small batches take milliseconds either
#: way, and there the compilation is most of a call. A larger batch runs on the host the first
#: time its program (shape bucket, dtypes, state layout) is met in the process, and compiled
#: from the second time on: the compiled program applies faster (10^6 queries: 0.11 s against
#: 0.18 s on a 2-core CPU), which pays off its compilation (about a second) over repeated
#: calls, while a one-off apply (a test set post-processed once) does not wait for it.
_HOST_MAX_QUERIES = 2**16

#: The compiled programs a large batch has met (see :func:`_use_host`): their second call
#: compiles.
_PROGRAMS_MET: set[Any] = set()


def _program_signature(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array):
    """What selects :func:`_apply_one`'s compiled program for these arguments."""
    leaves, treedef = jax.tree_util.tree_flatten(state)
    shapes = tuple((a.shape, a.dtype) for a in leaves)
    arguments = (y.dtype, g.dtype, g.shape[1:], key.shape, key.dtype, alpha.shape, alpha.dtype)
    return treedef, shapes, _bucket(y.shape[0]), arguments


def _use_host(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array) -> bool:
    """Apply with NumPy: concrete inputs on the CPU backend, the exact method with unit
    weights, float32 scores and state, and no magnitude where XLA would flush subnormals.

    The compiled program's search loops take about a second to compile on the CPU, where a
    host apply of up to ``_HOST_MAX_QUERIES`` queries takes milliseconds; a larger batch runs
    on the host the first time its program is met, compiled after. Calls under ``jit`` or on
    an accelerator run the compiled program.
    """
    if not (
        v.on_cpu_host(y, g, key, alpha, *jax.tree_util.tree_leaves(state))
        # One group: XLA folds the program's sums and divisions differently (0 + x to x, a
        # division by the one count to a product), which the host does not reproduce.
        and state.num_groups > 1
        and state.method == "exact"
        and state.uniform
        and y.dtype == np.float32
        and state.cdf_values.dtype == np.float32
        and state.quantile_values.dtype == np.float32
        and state.proportions.dtype == np.float32
    ):
        return False
    values = [state.cdf_values]
    if state.quantile_values is not state.cdf_values:
        values.append(state.quantile_values)
    if not _no_tiny(state.jitter, y, state.proportions, *values):
        return False
    if y.shape[0] <= _HOST_MAX_QUERIES:
        return True
    signature = _program_signature(state, y, g, key, alpha)
    if signature in _PROGRAMS_MET:
        return False
    _PROGRAMS_MET.add(signature)
    return True


def _order_keys(x: np.ndarray, tags) -> np.ndarray:
    """int64 keys in the order of the float32 values ``x`` (-0.0 as +0.0), ``tags`` (below
    2^32) in their low 32 bits: sorting them sorts by value, then by tag."""
    k = (x + np.float32(0)).view(np.int32).astype(np.int64)  # + 0 makes -0.0 +0.0
    k ^= (k >> 63) & 0x7FFFFFFF  # negative floats: larger magnitude, smaller key
    k <<= 32
    k |= tags
    return k


def _ranks(sample: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, k)``: an order of the queries ``q`` and, in that order, the number of values
    of the sorted ``sample`` below each (``#{a < q}``, :func:`numpy.searchsorted` on the left).

    Many queries: one sort of the sample's and the queries' order keys together (the query's
    index in the low bits, all ones for the sample, so that a sample value equal to a query
    sorts after it); the queries come out sorted, so every later read of the sample is
    sequential. Few queries: one search each, in their own order.
    """
    m, n = q.shape[0], sample.shape[0]
    if m * 16 < n:
        return np.arange(m), np.searchsorted(sample, q, side="left")
    low = 0xFFFFFFFF
    keys = np.concatenate([_order_keys(sample, low), _order_keys(q, np.arange(m))])
    keys.sort()
    keys &= low
    pos = np.flatnonzero(keys != low)
    return keys[pos], pos - np.arange(m)


def _step_levels(k: np.ndarray, count: int) -> np.ndarray:
    return k.astype(np.float32) / np.float32(count)


def _host_quantile(vals, start, count, last, u, interpolation):
    """:func:`fairjax.ot1d.group_quantile` of one segment, unit weights, in float32, for
    levels ``u`` in [0, 1] (where its clips change nothing, they are left out)."""
    if count < 2:  # one value (or none: the clipped read of the compiled path)
        return np.full(u.shape, vals[min(max(start, 0), last)], np.float32)
    seg = vals[start : start + count]
    if interpolation == "step":
        eps = np.float32(4 * np.finfo(np.float32).eps)
        i = np.ceil(u * np.float32(count) * (np.float32(1) - eps)).astype(np.int32)
        i -= 1
        np.clip(i, 0, count - 1, out=i)
        return np.take(seg, i)
    h = u * np.float32(count - 1)
    i = h.astype(np.int32)  # floor: h >= 0
    np.minimum(i, count - 2, out=i)
    lo = np.take(seg, i)  # take: faster than indexing here
    frac = h.astype(np.float64)
    frac -= i  # h - i, exact, in [0, 1]: h <= count - 1
    i += 1
    hi = np.take(seg, i)
    hi -= lo  # float32, as compiled
    s = frac * hi  # exact in float64 (frac has at most 24 significant bits)
    s += lo
    return _round_once(s, frac, hi, lo)


@jax.jit
def _mix(alpha: Array, fair: Array, y: Array) -> Array:
    """The last line of :func:`_apply_one`, compiled the same way."""
    alpha = jnp.asarray(alpha, y.dtype)
    return alpha * fair + (1 - alpha) * y


def _apply_host(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array) -> Array:
    """:func:`_apply_one` with NumPy on the host, the same numbers bit for bit.

    The same random draws (``jax.random`` on the padded shape, then cut: one compiled program
    per shape bucket, shared by the fit's jitter draw) and the same float32 arithmetic, each
    product-sum rounded once as XLA's fused multiply-adds (:func:`_fma`). The ranks are exact
    integers either way; here the queries of each group are sorted together with its sample
    (:func:`_ranks`), so the tie counts and the quantile reads are sequential.
    """
    m = y.shape[0]
    size = _bucket(m)
    yh, gh = np.asarray(y), np.asarray(g)
    jitter = np.float32(np.asarray(state.jitter))
    # z only ranks queries (keys order -0.0 as +0.0): without jitter it is y itself.
    z = _fma(_uniform_host(key, size, -1, 1)[:m], jitter, yh) if jitter != 0 else yh
    cv, cs, cc = (np.asarray(a) for a in (state.cdf_values, state.cdf_start, state.cdf_count))
    qv = np.asarray(state.quantile_values)
    qs, qc = np.asarray(state.quantile_start), np.asarray(state.quantile_count)
    p = np.asarray(state.proportions)
    num = cs.shape[0]
    q_last = max(qv.shape[0] - 1, 0)

    def fair(u):  # sum_t p_t Q_t(u), in the order and roundings of barycenter_quantile
        acc = None
        for t in range(num):
            q = _host_quantile(qv, int(qs[t]), int(qc[t]), q_last, u, state.interpolation)
            # fma(p, q, +0) = p * q rounded, with -0 made +0
            acc = p[t] * q + np.float32(0) if acc is None else _fma(p[t], q, acc)
        return acc

    out = np.zeros(m, np.float32)
    ties = None  # the tie-break draws, drawn once if some query ties
    order_g, bounds = rows_by_group(gh, num)
    members = [order_g[a:b] for a, b in itertools.pairwise(bounds.tolist())]
    for s in range(num):
        idx = members[s]
        n = int(cc[s])
        if idx.size == 0:
            continue
        if n == 0:  # no calibration data (only under allow_empty): level 0, as compiled
            out[idx] = fair(np.zeros(idx.shape, np.float32))
            continue
        sample = cv[cs[s] : cs[s] + n]
        zq = np.take(z, idx)
        order, k = _ranks(sample, zq)
        idx, zs = np.take(idx, order), np.take(zq, order)
        kc = np.minimum(k, n - 1)
        tied = (k < n) & (sample[kc] == zs)
        u = _step_levels(k, n)
        if tied.any():
            # Right limit: the end of the run of sample values equal to the query (searched
            # for a few tied queries, read off the runs of the sample for many).
            if 32 * np.count_nonzero(tied) < n:
                above = _step_levels(np.searchsorted(sample, zs[tied], side="right"), n)
            else:
                change = np.flatnonzero(sample[1:] != sample[:-1]) + 1
                ends = np.append(change, n)
                run_end = np.repeat(ends, np.diff(np.concatenate([[0], ends])))
                above = _step_levels(run_end[kc[tied]], n)
            below = u[tied]
            if ties is None:
                ties = _uniform_host(jax.random.fold_in(key, 1), size, 0, 1)[:m]
            spread = above > below
            u[np.flatnonzero(tied)[spread]] = _fma(
                ties[idx[tied][spread]], above[spread] - below[spread], below[spread]
            )
        out[idx] = fair(u)
    if np.asarray(alpha) == 1:  # alpha * fair + 0 * y is fair exactly (finite scores)
        return jax.device_put(out)
    return _mix(alpha, jax.device_put(out), jax.device_put(yh))


def _check_alpha(alpha: Any) -> Array:
    v.check_scalar(alpha, "alpha", low=0, high=1)
    a = v.as_array(alpha, "alpha", ndim=0)
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

    A fresh jitter :math:`U[-\\sigma, \\sigma]` is drawn per query; it only enters the rank, not
    the ``(1 - alpha) f`` term. A jittered query :math:`z` that equals calibration scores of its
    group (an atom the jitter did not spread: ``jitter=0``, or :math:`\\sigma` below the float
    spacing at the scores' magnitude) gets the level :math:`F_s(z^-) + V (F_s(z) - F_s(z^-))`,
    :math:`V \\sim U[0, 1]`: ties are broken at random, the limit of an infinitesimal jitter, so
    parity holds whatever the scores' scale; other queries get :math:`F_s(z^-)` as before.
    Jit-compiles (``state`` is a PyTree) and vmaps, e.g. over ``alpha``. Under ``jit``, where
    nothing can raise, a query of a group with no calibration data or out of range, or an
    ``alpha`` outside [0, 1], gives NaN. Concrete float32 inputs on the CPU backend (exact
    method, unit weights) are applied with NumPy on the host, with the same random draws and the
    same output bit for bit, without compiling: always up to 65,536 queries; a larger batch the
    first time its shape is met in the process, and by the compiled program from the second time
    (about a second to compile, then faster).

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
    key = v.check_key(key)
    a = _check_alpha(alpha)
    stages = state.stages if isinstance(state, SequentialBarycenterState) else None
    if stages is None:
        if not isinstance(state, BarycenterState):
            raise TypeError(f"`state` must come from fit_barycenter, got {type(state).__name__}.")
        sizes = state.attribute_sizes
        num = sizes if len(sizes) > 1 else sizes[0]
        ids, _, attrs = _normalise_groups(groups, num, y.shape[0])
        if len(attrs) > 1 and not v.is_concrete(*attrs):
            # Under jit an attribute value out of range made the id of another cell: -1 makes
            # the row NaN (see _apply_one), as a single attribute's id out of range does.
            inside = [(a >= 0) & (a < k) for a, k in zip(attrs, sizes, strict=True)]
            ids = jnp.where(functools.reduce(jnp.logical_and, inside), ids, -1)
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
    mixed = a.astype(y.dtype) * current + (1 - a.astype(y.dtype)) * y
    return mixed if v.is_concrete(a) else jnp.where((a >= 0) & (a <= 1), mixed, jnp.nan)
