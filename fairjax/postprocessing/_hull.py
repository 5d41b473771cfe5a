r"""Each group's ROC convex hull, in one static-shape layout, and searches along it.

Sort the rows of a group by decreasing score. Selecting the rows with score at least
:math:`\tau` gives a weighted count of false positives :math:`FP(\tau)` and true positives
:math:`TP(\tau)`; over the distinct scores (and :math:`\tau = \pm\infty`) these are the points of
the group's ROC curve. A *randomised* threshold rule, positive with a probability that is a
non-decreasing function of the score, is a mixture of deterministic thresholds, so the operating
points such rules reach are the convex hull of the ROC points. Every rule that maximises a
criterion-constrained objective sits on the hull's upper boundary, or between it and the diagonal
(reached by mixing a boundary point with a constant coin flip): see
:func:`fairjax.postprocessing.fit_thresholds`.

:func:`roc_hull` computes the upper boundary of every group at once with Andrew's monotone chain,
one pass over the rows (a ``lax.fori_loop``; the stack is a fixed-size array), and stores the
vertices flat, group after group (a start and a count per group, like
:class:`fairjax.ot1d.GroupedSamples`), so shapes are static whatever the group sizes.

Reference: Provost, Fawcett, *Robust classification for imprecise environments*, Machine
Learning 42, 2001 (the ROC convex hull); Andrew, *Another efficient algorithm for convex hulls
in two dimensions*, Information Processing Letters 9, 1979.
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
from fairjax._shapes import bucket, pad_rows

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class ROCHull(NamedTuple):
    """The upper ROC convex hull of every group, flat (see :func:`roc_hull`). A PyTree.

    Arrays of vertices have length ``m + G``, ``m >= n`` the rows padded to a shape bucket.
    Vertex ``start[g] + k`` (``k < count[g]``) is the ``k``-th vertex of group ``g``, in order
    of decreasing threshold: vertex 0 selects nobody (threshold :math:`+\\infty`), the last one
    everybody (threshold :math:`-\\infty`). Entries past the last group's vertices are padding.

    Attributes:
      false_positives: weighted count of negatives with score at least the vertex's threshold,
        shape ``(n + G,)``.
      true_positives: weighted count of positives selected, shape ``(n + G,)``.
      thresholds: the vertex's threshold :math:`\\tau` (select ``score >= tau``), ``(n + G,)``.
      start: first vertex of each group, int32 ``(G,)``.
      count: number of vertices of each group, int32 ``(G,)``.
      positives: weighted count of positives of each group ``(G,)``.
      negatives: weighted count of negatives of each group ``(G,)``.
    """

    false_positives: Array
    true_positives: Array
    thresholds: Array
    start: Array
    count: Array
    positives: Array
    negatives: Array

    @property
    def fpr(self) -> Array:
        """False-positive rate of each vertex ``(n + G,)`` (0 for padding)."""
        return gs.safe_divide(self.false_positives, self.negatives[self._group()])

    @property
    def tpr(self) -> Array:
        """True-positive rate of each vertex ``(n + G,)`` (0 for padding)."""
        return gs.safe_divide(self.true_positives, self.positives[self._group()])

    def _group(self) -> Array:
        idx = jnp.arange(self.thresholds.shape[0])
        return jnp.clip(jnp.searchsorted(self.start, idx, side="right") - 1, 0)


def _on_or_below(dx: Array, ey: Array, dy: Array, ex: Array) -> Array:
    """``dx * ey - dy * ex >= 0`` for non-negative ``dx, ey, dy, ex``: point ``b`` on or below
    the chord from ``a`` to ``c`` (``d = b - a``, ``e = c - a``).

    Float products of counts round once they pass the float's integer range (``2^24`` in
    float32), so a point on a chord could be kept or a vertex dropped by rounding alone. When
    the four differences are integers below ``2^24`` (unit or integer weights, fewer than
    ``2^24`` of them per group), the sign is computed exactly instead, in int32 digits of 12
    bits: ``u v = u_1 v_1 2^24 + (u_1 v_0 + u_0 v_1) 2^12 + u_0 v_0``, every partial product
    below ``2^24``, then the carries propagated, so the sign of the difference is the sign of
    its top digit. The result then depends only on the points, not on their rounding, and the
    same hull comes out of any subset of the rows that holds its vertices.
    """
    parts = (dx, ey, dy, ex)
    integral = functools.reduce(
        jnp.logical_and, [(p == jnp.floor(p)) & (p < 2.0**24) for p in parts]
    )
    u1, u0, v1, v0, w1, w0, z1, z0 = (
        d for p in parts for d in _digits(jnp.where(integral, p, 0).astype(jnp.int32))
    )
    top = u1 * v1 - w1 * z1
    mid = (u1 * v0 + u0 * v1) - (w1 * z0 + w0 * z1)
    low = u0 * v0 - w0 * z0
    mid = mid + (low >> 12)  # arithmetic shifts: floor divisions, for the carries
    top = top + (mid >> 12)
    return jnp.where(integral, top >= 0, dx * ey - dy * ex >= 0)


def _digits(u: Array) -> tuple[Array, Array]:
    return u >> 12, u & 4095


def _hull_pass(neg: Array, pos: Array, first: Array, valid: Array):
    """One pass of Andrew's monotone chain over rows sorted by group, then decreasing score.

    Accumulates each group's weighted false and true positives (``neg``, ``pos``: the rows'
    weights of negatives and positives) and keeps every group's upper hull, group after group,
    on a stack: ``rows[:top + 1]`` are the vertices' rows, ``fp``, ``tp`` their coordinates.
    A row that is not ``valid`` (inside a run of tied scores) adds its weight but makes no
    point. A middle point is removed when it is on or below the chord of its neighbours (cross
    product >= 0), so hull vertices are distinct and slopes strictly decreasing.
    Returns ``(fp, tp, rows, top)``.
    """
    m = neg.shape[0]

    def body(i, carry):
        fp, tp, rows, top, base, cx, cy = carry
        base = jnp.where(first[i], top + 1, base)
        cx = jnp.where(first[i], 0, cx) + neg[i]
        cy = jnp.where(first[i], 0, cy) + pos[i]

        def pop(t):
            a, b = t - 1, t
            below = _on_or_below(fp[b] - fp[a], cy - tp[a], tp[b] - tp[a], cx - fp[a])
            return valid[i] & ~same & (t - base >= 1) & below

        # A point equal to the stack's top (rows of zero weight: padding, masked rows) is
        # skipped, so the earlier vertex keeps its threshold.
        same = (top >= base) & (cx == fp[top]) & (cy == tp[top])
        top = jax.lax.while_loop(pop, lambda t: t - 1, top)
        slot = top + 1
        keep = valid[i] & ~same
        rows = rows.at[slot].set(jnp.where(keep, i, rows[slot]))
        fp = fp.at[slot].set(jnp.where(keep, cx, fp[slot]))
        tp = tp.at[slot].set(jnp.where(keep, cy, tp[slot]))
        return fp, tp, rows, top + keep.astype(top.dtype), base, cx, cy

    zeros = jnp.zeros_like(neg)
    zero = jnp.zeros((), neg.dtype)
    init = (zeros, zeros, jnp.zeros(m, jnp.int32), jnp.int32(-1), jnp.int32(0), zero, zero)
    fp, tp, rows, top, *_ = jax.lax.fori_loop(0, m, body, init)
    return fp, tp, rows, top


def _with_origins(scores, labels, groups, weights, num_groups, xp):
    """The rows and one virtual row per group at score +inf with weight 0: the point (0, 0)."""
    dtype = scores.dtype
    return (
        xp.concatenate([scores, xp.full(num_groups, np.inf, dtype)]),
        xp.concatenate([labels.astype(dtype), xp.zeros(num_groups, dtype)]),
        xp.concatenate([groups.astype(np.int32), xp.arange(num_groups, dtype=np.int32)]),
        xp.concatenate([weights.astype(dtype), xp.zeros(num_groups, dtype)]),
    )


def prepare(scores, labels, groups, weights, *, num_groups: int):
    """The rows of :func:`check_inputs` for the compiled hull: ``(arrays, presorted)``.

    Weights default to ones; rows are padded with weight 0 to a shape bucket (rows of weight
    0 make no ROC point, so nearby sizes share one program). When the arrays are concrete on
    the CPU backend, NumPy also adds the virtual rows and sorts by group then decreasing score
    (``presorted=True``): XLA's CPU sort is several times slower than NumPy's.
    """
    n = scores.shape[0]
    dtype = v.float_dtype(scores)
    size = bucket(n)
    if not v.on_cpu_host(scores, labels, groups, weights):
        w = jnp.ones(n, dtype) if weights is None else weights.astype(dtype)
        rows = (scores.astype(dtype), labels, groups.astype(jnp.int32), w)
        return tuple(pad_rows(r, size) for r in rows), False
    rows = _host_rows(scores, labels, groups, weights, dtype)
    return _host_sorted(*(np.pad(r, (0, size - n)) for r in rows), num_groups), True


def _host_rows(scores, labels, groups, weights, dtype):
    """The rows as NumPy arrays, scores and weights (ones by default) in ``dtype``."""
    n = scores.shape[0]
    w = np.ones(n, dtype) if weights is None else np.asarray(weights).astype(dtype)
    return np.asarray(scores).astype(dtype), np.asarray(labels), np.asarray(groups), w


def _host_sorted(s, y, g, w, num_groups):
    """The rows and the virtual origin rows, sorted by group then decreasing score (NumPy)."""
    s, y, g, w = _with_origins(s, y, g, w, num_groups, np)
    order = np.argsort(-s)  # ties need no order: a run of tied scores makes one point
    small = np.int16 if num_groups < 2**15 else np.int32  # NumPy's radix sort for int16
    order = order[np.argsort(g[order].astype(small), kind="stable")]
    return tuple(r[order] for r in (s, y, g, w))


def roc_hull_host(scores, labels, groups, weights, *, num_groups: int) -> ROCHull:
    """:func:`roc_hull` with NumPy on the host, for concrete rows on the CPU backend.

    The same vertices as the compiled pass, without padding: arrays of vertices have length
    ``sum(count)``. Instead of one sequential pass, every ROC point that lies on or below the
    chord of its current neighbours is dropped at once, and again until none is: a dropped
    point is never a vertex (it lies under the hull of points still there), a vertex is never
    dropped, so what stays is the strict upper hull, which is unique. Cumulative counts are
    summed in float64 and the chord test is computed in float64: exact, like the compiled test,
    for integer counts below :math:`2^{24}`. Returns NumPy arrays (the vertices, then the
    group's weighted positives and negatives, in the scores' float dtype).
    """
    dtype = v.float_dtype(scores)
    s, y, g, w = _host_sorted(*_host_rows(scores, labels, groups, weights, dtype), num_groups)
    pos = np.where(y == 1, w, 0).astype(np.float64)
    neg = np.where(y == 1, 0, w).astype(np.float64)
    first = np.searchsorted(g, np.arange(num_groups))  # each group's origin row
    sizes = np.diff(np.r_[first, g.size])
    fp, tp = np.cumsum(neg), np.cumsum(pos)  # then each group's from its origin row on
    fp -= np.repeat(fp[first] - neg[first], sizes)
    tp -= np.repeat(tp[first] - pos[first], sizes)
    # One point per run of tied scores (its last row); a point equal to the one before it in
    # the group (rows of zero weight) is skipped, so the earlier one keeps its threshold.
    last = np.r_[(g[1:] != g[:-1]) | (s[1:] != s[:-1]), True]
    idx = np.flatnonzero(last)
    same = (g[idx[1:]] == g[idx[:-1]]) & (fp[idx[1:]] == fp[idx[:-1]])
    same &= tp[idx[1:]] == tp[idx[:-1]]
    idx = idx[np.r_[True, ~same]]
    while idx.size > 2:
        x, yy, gg = fp[idx], tp[idx], g[idx]
        inner = (gg[1:-1] == gg[:-2]) & (gg[1:-1] == gg[2:])
        dx, dy = x[1:-1] - x[:-2], yy[1:-1] - yy[:-2]
        ex, ey = x[2:] - x[:-2], yy[2:] - yy[:-2]
        drop = inner & (dx * ey - dy * ex >= 0)
        if not drop.any():
            break
        idx = idx[np.r_[True, ~drop, True]]
    vg = g[idx]
    count = np.bincount(vg, minlength=num_groups).astype(np.int32)
    start = (np.cumsum(count) - count).astype(np.int32)
    thresholds = s[idx].astype(dtype)
    thresholds[start + count - 1] = -np.inf  # the last vertex selects everybody
    return ROCHull(
        false_positives=fp[idx].astype(dtype),
        true_positives=tp[idx].astype(dtype),
        thresholds=thresholds,
        start=start,
        count=count,
        positives=np.bincount(g, pos, minlength=num_groups).astype(dtype),
        negatives=np.bincount(g, neg, minlength=num_groups).astype(dtype),
    )


@functools.partial(jax.jit, static_argnames=("num_groups", "presorted"))
def _roc_hull(
    scores: Array,
    labels: Array,
    groups: Array,
    weights: Array,
    *,
    num_groups: int,
    presorted: bool = False,
):
    """The hull; ``presorted``: the arrays come from :func:`presort`."""
    if presorted:
        s, y, g, w = scores, labels, groups, weights
    else:
        s, y, g, w = _with_origins(scores, labels, groups, weights, num_groups, jnp)
        g, neg_s, order = jax.lax.sort((g, -s, jnp.arange(s.shape[0])), num_keys=2)
        s, y, w = -neg_s, y[order], w[order]
    first = jnp.concatenate([jnp.array([True]), g[1:] != g[:-1]])
    last_of_tie = jnp.concatenate([(g[1:] != g[:-1]) | (s[1:] != s[:-1]), jnp.array([True])])
    fp, tp, stack, top = _hull_pass(w * (1 - y), w * y, first, last_of_tie)
    positives = gs.group_sums(w * y, g, num_groups=num_groups)
    negatives = gs.group_sums(w * (1 - y), g, num_groups=num_groups)
    used = jnp.arange(stack.shape[0]) <= top
    vg = jnp.where(used, g[stack], num_groups)
    count = jnp.bincount(vg, length=num_groups + 1)[:num_groups].astype(jnp.int32)
    start = (jnp.cumsum(count) - count).astype(jnp.int32)
    thresholds = jnp.where(used, s[stack], jnp.inf)
    # The last vertex of a group selects everybody, also scores below the calibration ones.
    end = jnp.zeros(stack.shape[0], bool).at[start + count - 1].set(count > 0)
    thresholds = jnp.where(end, -jnp.inf, thresholds)
    return ROCHull(
        false_positives=jnp.where(used, fp, 0),
        true_positives=jnp.where(used, tp, 0),
        thresholds=thresholds,
        start=start,
        count=count,
        positives=positives,
        negatives=negatives,
    )


def check_inputs(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    weights: ArrayLike | None,
    num_groups,
    *,
    allow_empty: bool = False,
    host: bool = False,
):
    """Validated ``(scores, labels, groups, weights)`` (weights may be None); ``allow_empty``
    accepts zero rows (one chunk of a stream); ``host`` keeps NumPy input as NumPy arrays (for
    the host path: see :func:`fairjax._validation.as_array`)."""
    s = v.as_array(scores, "scores", ndim=1, host=host)
    if not allow_empty:
        v.check_nonempty(s, "scores")
    v.check_finite(s, "scores")
    n = s.shape[0]
    y = v.as_array(labels, "labels", ndim=1, host=host)
    v.check_length(y, n, "labels", "scores")
    v.check_binary(y, "labels")
    g = v.check_groups(groups, num_groups=num_groups, n=n, host=host)
    if g.ndim != 1:
        raise TypeError(
            f"thresholds need hard group ids: `groups` must be integer ids of shape ({n},), "
            f"got shape {g.shape}."
        )
    return s, y, g, v.check_weights(weights, n, host=host)


def roc_hull(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    weights: ArrayLike | None = None,
) -> ROCHull:
    """Every group's upper ROC convex hull, with the threshold of each vertex.

    Tied scores make one ROC point (a threshold selects all of them or none); a vertex on the
    chord of its neighbours is dropped, so slopes decrease strictly along a hull. With unit or
    integer weights (each group's weight below :math:`2^{24}`) that test is exact, free of
    float rounding. Jittable
    (``num_groups`` static); ``O(n log n)`` to sort, then one sequential pass.

    Args:
      scores: scores ``(n,)``, higher meaning more likely positive; finite.
      labels: binary labels ``(n,)``.
      groups: integer group ids ``(n,)`` in ``[0, num_groups)``.
      num_groups: static number of groups.
      weights: optional non-negative sample weights ``(n,)``.

    Returns:
      A :class:`ROCHull`.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.postprocessing import roc_hull
      >>> hull = roc_hull(jnp.array([0.9, 0.8, 0.4, 0.3]), jnp.array([1, 0, 1, 0]),
      ...                 jnp.array([0, 0, 0, 0]), num_groups=1)
      >>> int(hull.count[0]), hull.fpr[:3].tolist(), hull.tpr[:3].tolist()
      (4, [0.0, 0.0, 0.5], [0.0, 0.5, 1.0])

    References:
      Provost, Fawcett, *Robust classification for imprecise environments*, Machine Learning
      42, 2001.
    """
    num_groups = v.check_num_groups(num_groups)
    rows, presorted = prepare(
        *check_inputs(scores, labels, groups, weights, num_groups), num_groups=num_groups
    )
    return _roc_hull(*rows, num_groups=num_groups, presorted=presorted)


# ----------------------------------------------------------------------------- searches


def search(keys: Array, start: Array, count: Array, query: Array, *, side: str) -> Array:
    """Insertion index of ``query`` in the sorted segment ``keys[start:start + count]``.

    ``side="left"``: the number of entries ``< query``; ``"right"``: ``<= query``. A binary
    search with a static number of steps, so it vmaps over groups, queries and tolerances.
    """
    steps = math.ceil(math.log2(keys.shape[0] + 1)) + 1
    lo, hi = jnp.zeros_like(count), count

    def step(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) // 2
        k = keys[jnp.clip(start + mid, 0, keys.shape[0] - 1)]
        right = (k < query) if side == "left" else (k <= query)
        active = lo < hi
        return jnp.where(active & right, mid + 1, lo), jnp.where(active & ~right, mid, hi)

    lo, _ = jax.lax.fori_loop(0, steps, step, (lo, hi))
    return lo


def interpolate(
    u: Array, val: Array, start: Array, count: Array, q: Array, *, side: str
) -> tuple[Array, Array, Array, Array]:
    """Piecewise-linear ``val`` at ``u = q`` along one group's vertices (``u`` non-decreasing).

    ``side="right"`` uses the last vertex with ``u <= q`` and the next; ``"left"`` the first
    vertex with ``u >= q`` and the one before (they differ only where ``u`` repeats). Beyond
    the ends the end vertex is used.

    Returns:
      ``(k0, k1, lam, value)``: absolute vertex indices, the weight of ``k1`` in ``[0, 1]``
      and the interpolated value.
    """
    last = start + count - 1
    if side == "right":
        k0 = jnp.clip(start + search(u, start, count, q, side="right") - 1, start, last)
        k1 = jnp.minimum(k0 + 1, last)
    else:
        k1 = jnp.clip(start + search(u, start, count, q, side="left"), start, last)
        k0 = jnp.maximum(k1 - 1, start)
    lam = jnp.clip(gs.safe_divide(q - u[k0], u[k1] - u[k0]), 0, 1)
    return k0, k1, lam, val[k0] + lam * (val[k1] - val[k0])
