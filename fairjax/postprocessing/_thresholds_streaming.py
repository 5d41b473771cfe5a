r"""Group thresholds fitted on data read in chunks, equal to the in-memory fit.

:func:`~fairjax.postprocessing.fit_thresholds` needs, per group, the vertices of the upper ROC
convex hull and the threshold of each (:func:`~fairjax.postprocessing.roc_hull`): the LP of the
fit only sees those. They are found here by counting passes over the chunks, without holding
the rows:

1. Every score is read as float32 and mapped to a 32-bit unsigned key with the order of the
   floats, so that a threshold on the scores is a threshold on the keys.
2. The first pass adds up, per group and label, the rows' weights in :math:`2^{16}` key
   buckets (the top 16 bits), and the smallest key of each non-empty bucket. Summed from the
   top bucket down, the weights give the **exact** ROC points :math:`(FP, TP)` at every
   bucket's lower end: the point that selects the bucket and every bucket above, whose
   threshold (the smallest score it selects) is the bucket's smallest key.
3. Inside a bucket with upper point :math:`U = (FP_U, TP_U)` and lower point
   :math:`L = U + (N_b, P_b)`, every ROC point :math:`Q` lies in the rectangle between them,
   so :math:`Q_x \ge FP_U` and :math:`Q_y \le TP_L`. The upper hull :math:`H` of the points
   known so far is concave and non-decreasing, hence
   :math:`H(Q_x) \ge H(FP_U) \ge TP_L \ge Q_y` whenever the corner :math:`(FP_U, TP_L)` lies
   on or below :math:`H`: then :math:`Q` lies in the region under the hull of known points,
   and cannot be a vertex of the full hull (:func:`roc_hull` drops points on a chord too). A
   bucket with one label only has its points on the segment :math:`UL`: the same. Only the
   other buckets, whose corner pokes above :math:`H`, are split by the next pass into
   :math:`2^8` sub-buckets (the next 8 key bits); the hull only rises as points are added, so
   a bucket once cleared stays cleared. After the third pass every bucket left to split is one
   key, a single float32 score (tied scores: one ROC point, as in :func:`roc_hull`).
4. A point of the known ones that lies under their hull is no vertex either: cleared buckets
   are joined across such points, and the buckets stay few. Points within a relative
   ``1e-6`` of the hull are kept apart (with non-integer weights, the float32 sums and cross
   products of :func:`roc_hull` may count them as vertices).
5. The resolved buckets form a small weighted data set: per bucket, one negative and one
   positive row at the bucket's smallest score, weighing the bucket's negatives and positives.
   Its ROC points are a subset of the data's that holds every hull vertex with its threshold,
   so :func:`~fairjax.postprocessing.fit_thresholds` on it builds the same hull and solves the
   same LP.

Cost: the first pass and two more in general; a pass splits at most ``4096 x num_groups``
buckets, and more wait for the next pass. Each pass reads every chunk once. Memory: one
chunk, ``2^16 x num_groups`` buckets in the first pass, at most ``2^20 x num_groups``
sub-buckets in a later one, and the resolved buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from fairjax import _validation as v
from fairjax import criteria
from fairjax._host import chunk_digest, end_pass
from fairjax._keys import FIRST_BITS, NEXT_BITS, bucket_first, bucket_of, float_keys, key_floats
from fairjax.postprocessing._hull import check_inputs
from fairjax.postprocessing._thresholds import (
    ThresholdState,
    check_groups_present,
    check_options,
    fit_thresholds,
)

ArrayLike = jax.typing.ArrayLike

_MAX_PARENTS = 4096  # buckets split in one pass, per group: 2^20 sub-buckets per group
_NEAR = 1e-6  # points this close to the hull (relative to the group's weight) are kept
_KEYS = ("scores", "labels", "groups", "weights")


# ----------------------------------------------------------------------------- reading


def _parts(chunk: Any, k: int) -> tuple[Any, Any, Any, Any]:
    """``(scores, labels, groups, weights or None)`` of a tuple or mapping chunk."""
    if isinstance(chunk, Mapping):
        missing = {"scores", "labels", "groups"} - set(chunk)
        unknown = set(chunk) - set(_KEYS)
        if missing or unknown:
            raise ValueError(
                f"chunk {k} must map 'scores', 'labels', 'groups' (and optionally 'weights') to "
                f"arrays; missing {sorted(missing)}, unknown {sorted(unknown)}."
            )
        return chunk["scores"], chunk["labels"], chunk["groups"], chunk.get("weights")
    if isinstance(chunk, (tuple, list)) and len(chunk) in (3, 4):
        return chunk[0], chunk[1], chunk[2], chunk[3] if len(chunk) == 4 else None
    raise TypeError(
        f"chunk {k} must be a tuple (scores, labels, groups[, weights]) or a mapping with those "
        f"keys, got {type(chunk).__name__}."
    )


def _all_zero(weights: Any) -> bool:
    """True for a non-empty 1-D numeric array of zeros (a chunk that adds nothing)."""
    if weights is None:
        return False
    try:
        w = np.asarray(weights)
    except (TypeError, ValueError):
        return False  # check_inputs reports it
    return w.ndim == 1 and w.size > 0 and w.dtype.kind in "biuf" and not w.any()


class _Reader:
    """Reads the chunks pass after pass (counting the passes), checking that they stay the
    same, and yields each chunk's rows of positive weight as NumPy arrays."""

    def __init__(self, chunks: Callable[[], Iterable[Any]], num_groups: int):
        if not callable(chunks):
            raise TypeError(
                "`chunks` must be a function that returns a fresh iterable of chunks "
                f"(it is called once per pass), got {type(chunks).__name__}."
            )
        self.chunks, self.num_groups = chunks, num_groups
        self.rows: int | None = None
        self.digest: int | None = None
        self.passes = 0

    def __call__(self):
        """Yields ``(keys uint32, labels int64, groups int64, weights float32 or None)``."""
        self.passes += 1
        rows = 0
        digest = 0  # of the rows that count, chained over the chunks
        for k, chunk in enumerate(self.chunks()):
            s, y, g, w = _parts(chunk, k)
            # check_inputs refuses all-zero weights, which one chunk of many may have
            zero = _all_zero(w)
            try:
                s, y, g, w = check_inputs(
                    s, y, g, None if zero else w, self.num_groups, allow_empty=True
                )
                if zero:
                    v.check_length(np.asarray(_parts(chunk, k)[3]), len(s), "weights", "the data")
            except (TypeError, ValueError) as err:
                raise type(err)(f"chunk {k}: {err}") from None
            rows += s.shape[0]
            if zero or not s.shape[0]:
                continue
            keys = float_keys(np.asarray(s).astype(np.float32))
            y, g = (np.asarray(y) == 1).astype(np.int64), np.asarray(g).astype(np.int64)
            if w is not None:
                w = np.asarray(w).astype(np.float32)  # as fit_thresholds casts them
                keep = w > 0  # rows of weight 0 make no ROC point
                keys, y, g, w = keys[keep], y[keep], g[keep], w[keep]
            digest = chunk_digest(digest, keys, y, g, w)
            yield keys, y, g, w
        self.rows, self.digest = end_pass(rows, digest, self.rows, self.digest)


# ----------------------------------------------------------------------------- buckets


class _Buckets(NamedTuple):
    """Non-empty key buckets ``[lo, lo + 2^(32 - bits))`` of every group, with the weight of
    their negatives and positives, their smallest key, and whether they are cleared (hold no
    hull vertex inside; a cleared bucket may span several aligned ones)."""

    group: np.ndarray  # int64
    lo: np.ndarray  # int64, first key
    bits: np.ndarray  # int64, resolved key bits
    neg: np.ndarray  # float64
    pos: np.ndarray  # float64
    low: np.ndarray  # int64, smallest key present
    done: np.ndarray  # bool, cleared

    def take(self, idx: np.ndarray) -> _Buckets:
        return _Buckets(*(a[idx] for a in self))

    @staticmethod
    def concat(parts: list[_Buckets]) -> _Buckets:
        return _Buckets(*(np.concatenate(a) for a in zip(*parts, strict=True)))


def _count(cells: np.ndarray, keys: np.ndarray, y: np.ndarray, w, size: int, acc) -> None:
    """Adds the rows' weights per (cell, label) to ``acc[0]`` and their smallest key per cell
    to ``acc[1]``."""
    np.add.at(acc[0], 2 * cells + y, 1.0 if w is None else w.astype(np.float64))
    np.minimum.at(acc[1], cells, keys.astype(np.uint32))


def _nonempty(acc, where: Callable[[np.ndarray], tuple]) -> _Buckets:
    """The non-empty cells as buckets; ``where(cells)`` gives their ``(group, lo, bits)``."""
    keep = np.flatnonzero((acc[0][0::2] > 0) | (acc[0][1::2] > 0))
    neg, pos, low = acc[0][2 * keep], acc[0][2 * keep + 1], acc[1][keep].astype(np.int64)
    return _Buckets(*where(keep), neg, pos, low, np.zeros(keep.size, bool))


def _new_acc(size: int):
    return np.zeros(2 * size), np.full(size, np.iinfo(np.uint32).max, np.uint32)


def _first_pass(read: _Reader, num_groups: int) -> _Buckets:
    """Every group's weights per label in the buckets of the top 16 key bits."""
    B = 1 << FIRST_BITS
    acc = _new_acc(num_groups * B)
    for keys, y, g, w in read():
        k = keys.astype(np.int64)
        _count(g * B + bucket_of(k, FIRST_BITS), k, y, w, num_groups * B, acc)
    if not read.rows:
        raise ValueError("`chunks` gave no rows: the fit needs calibration rows.")
    if not acc[0].any():
        raise ValueError("`weights` must not be all zero.")
    return _nonempty(acc, lambda c: (c // B, bucket_first(c % B, FIRST_BITS), c * 0 + FIRST_BITS))


def _split_pass(read: _Reader, parents: _Buckets) -> _Buckets:
    """The ``2^8`` sub-buckets of each parent bucket (any resolved bits, any groups)."""
    order = np.argsort((parents.group << 32) | parents.lo)
    p = parents.take(order)
    code = (p.group << 32) | p.lo
    width = np.int64(1) << (32 - p.bits)
    shift = 32 - p.bits - NEXT_BITS
    S, K = 1 << NEXT_BITS, code.size
    acc = _new_acc(K * S)
    for keys, y, g, w in read():
        k = keys.astype(np.int64)
        row = (g << 32) | k
        i = np.maximum(np.searchsorted(code, row, side="right") - 1, 0)
        hit = (row >= code[i]) & (row - code[i] < width[i])
        i, k = i[hit], k[hit]
        cells = i * S + ((k - p.lo[i]) >> shift[i])
        _count(cells, k, y[hit], None if w is None else w[hit], K * S, acc)

    def where(cells):
        parent = cells // S
        lo = p.lo[parent] + ((cells % S) << shift[parent])
        return p.group[parent], lo, p.bits[parent] + NEXT_BITS

    return _nonempty(acc, where)


# ----------------------------------------------------------------------------- hulls


def _upper_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the upper hull of points sorted by ``x`` then ``y`` (both non-decreasing),
    by Andrew's monotone chain; a point on a chord is dropped, as in :func:`roc_hull`."""
    hx: list[float] = []
    hy: list[float] = []
    for px, py in zip(x.tolist(), y.tolist(), strict=True):
        while len(hx) >= 2 and (hx[-1] - hx[-2]) * (py - hy[-2]) >= (hy[-1] - hy[-2]) * (
            px - hx[-2]
        ):
            hx.pop()
            hy.pop()
        hx.append(px)
        hy.append(py)
    if len(hx) >= 2 and hx[1] == hx[0]:  # a vertical first edge: keep its top only
        del hx[0], hy[0]
    return np.asarray(hx), np.asarray(hy)


def _examine(b: _Buckets, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Of buckets sorted by group then decreasing key: which may hold a hull vertex inside
    (not cleared, both labels, upper-left corner above the hull of the known points), and
    which have their lower point on or near that hull."""
    split, near = np.zeros(b.group.size, bool), np.zeros(b.group.size, bool)
    ends = np.searchsorted(b.group, np.arange(num_groups + 1))
    for g in range(num_groups):
        sl = slice(ends[g], ends[g + 1])
        if ends[g] == ends[g + 1]:
            continue
        fp, tp = np.cumsum(b.neg[sl]), np.cumsum(b.pos[sl])
        hx, hy = _upper_hull(np.r_[0.0, fp], np.r_[0.0, tp])
        # Float64 sums and slopes: a corner within a rounding margin of the hull counts as
        # above (splitting more than needed costs work, not exactness).
        scale = fp[-1] + tp[-1]
        above = tp > np.interp(fp - b.neg[sl], hx, hy) - 1e-9 * scale
        split[sl] = ~b.done[sl] & (b.bits[sl] < 32) & (b.neg[sl] > 0) & (b.pos[sl] > 0) & above
        # Points near the hull are kept, not merged: fit_thresholds decides whether they are
        # vertices, as on the gathered rows (with non-integer weights its float32 cross
        # products round at a relative ~2^-22 of the group's weight).
        near[sl] = tp >= np.interp(fp, hx, hy) - _NEAR * scale
    return split, near


def _merge(b: _Buckets, near: np.ndarray) -> _Buckets:
    """Runs of cleared buckets joined where the point between two is not near the hull: that
    point lies under the hull of the others, so no vertex is lost and the buckets stay few."""
    join = np.zeros(b.group.size, bool)
    join[1:] = (b.group[1:] == b.group[:-1]) & b.done[1:] & b.done[:-1] & ~near[:-1]
    first = np.flatnonzero(~join)
    return _Buckets(
        b.group[first],
        np.minimum.reduceat(b.lo, first),
        b.bits[first],
        np.add.reduceat(b.neg, first),
        np.add.reduceat(b.pos, first),
        np.minimum.reduceat(b.low, first),
        b.done[first],
    )


def _resolve(read: _Reader, num_groups: int, crit: str) -> _Buckets:
    """The buckets, refined until none may hold a hull vertex inside (the module doc)."""
    b = _first_pass(read, num_groups)
    P = np.bincount(b.group, b.pos, minlength=num_groups)
    N = np.bincount(b.group, b.neg, minlength=num_groups)
    check_groups_present(P, N, crit)
    while True:
        b = b.take(np.lexsort((-b.lo, b.group)))
        split, near = _examine(b, num_groups)
        b = _merge(b._replace(done=~split), near)
        todo = np.flatnonzero(~b.done)
        if not todo.size:
            return b
        # Over the budget of one pass, a bucket waits (uncleared) for the next pass.
        now = np.zeros(b.done.size, bool)
        now[todo[: _MAX_PARENTS * num_groups]] = True
        b = _Buckets.concat([b.take(np.flatnonzero(~now)), _split_pass(read, b.take(now))])


# ----------------------------------------------------------------------------- entry point


def fit_thresholds_streaming(
    chunks: Callable[[], Iterable[Any]],
    *,
    num_groups: int,
    criterion: str | criteria.Criterion = "demographic_parity",
    tolerance: float | ArrayLike = 0.0,
    objective: str = "accuracy",
    false_positive_cost: float | ArrayLike = 1.0,
    false_negative_cost: float | ArrayLike = 1.0,
) -> ThresholdState:
    r"""Group-specific randomised thresholds fitted on data read in chunks, never gathered.

    The same fit as :func:`fit_thresholds` (same options, same LP, same
    :class:`ThresholdState`) on calibration data too large for memory: counting passes over
    the chunks find every group's ROC-hull vertices and their thresholds exactly (the module
    documentation: first the top 16 bits of the scores' keys, then 8 more bits at a time,
    only in the buckets that may hold a vertex), and the LP is solved on them. Memory holds
    one chunk and ``O(2^16 x num_groups)`` counts, whatever the number of rows; the chunks
    are read once per pass, three times in general.

    Scores are compared in float32: the result equals ``fit_thresholds`` on the concatenated
    chunks with the scores cast to float32, bit for bit with unit or integer weights (each
    group's weight below :math:`2^{24}`, where float32 counts are exact), to float rounding
    with other weights.

    Args:
      chunks: a function returning a fresh iterable of chunks, the same chunks in the same
        order at every call (called once per pass). A chunk is a tuple
        ``(scores, labels, groups)`` or ``(scores, labels, groups, weights)``, or a mapping
        with those keys (``"weights"`` optional), each a 1-D array of the chunk's rows:
        finite scores, binary labels, integer group ids in ``[0, num_groups)``, non-negative
        weights. Chunks may have any sizes, and may be empty.
      num_groups: the number of groups.
      criterion: as in :func:`fit_thresholds`.
      tolerance: the largest allowed gap between two groups' rates, in ``[0, 1]``.
      objective: ``"accuracy"``, ``"balanced_accuracy"`` or ``"weighted_errors"``.
      false_positive_cost: cost of a false positive (``objective="weighted_errors"``).
      false_negative_cost: cost of a false negative (``objective="weighted_errors"``).

    Returns:
      A :class:`ThresholdState`; apply it with :func:`apply_thresholds`.

    Raises:
      ValueError: bad input in a chunk (named by its index, with the message of
        :func:`fit_thresholds`), no rows, chunks that change between passes, or a group
        without the rows its rates count.

    Example:
      >>> import numpy as np
      >>> from fairjax.postprocessing import fit_thresholds, fit_thresholds_streaming
      >>> rng = np.random.default_rng(0)
      >>> g = rng.integers(0, 2, 250)
      >>> s = rng.random(250).astype(np.float32)
      >>> y = (rng.random(250) < s * (0.6 + 0.3 * g)).astype(int)
      >>> chunks = lambda: ((s[a : a + 60], y[a : a + 60], g[a : a + 60])
      ...                   for a in range(0, 250, 60))
      >>> streamed = fit_thresholds_streaming(chunks, num_groups=2, criterion="equal_opportunity")
      >>> in_memory = fit_thresholds(s, y, g, num_groups=2, criterion="equal_opportunity")
      >>> bool(np.array_equal(streamed.lower, in_memory.lower))
      True
    """
    num_groups, crit = check_options(
        num_groups, criterion, objective, tolerance, false_positive_cost, false_negative_cost
    )
    b = _resolve(_Reader(chunks, num_groups), num_groups, crit)
    score = key_floats(b.low)
    weight = np.stack([b.neg, b.pos], axis=1).reshape(-1)
    keep = weight > 0
    return fit_thresholds(
        np.repeat(score, 2)[keep],
        np.tile([0, 1], score.size)[keep],
        np.repeat(b.group, 2)[keep].astype(np.int32),
        num_groups=num_groups,
        criterion=crit,
        tolerance=tolerance,
        objective=objective,
        weights=weight[keep].astype(np.float32),
        false_positive_cost=false_positive_cost,
        false_negative_cost=false_negative_cost,
    )
