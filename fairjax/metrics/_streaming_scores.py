"""KS and Wasserstein-1 unfairness of scores read in chunks: exact, in bounded memory.

Both metrics are functions of the groups' weighted CDFs at the pooled score points. Scores
are float32 (as the in-memory metrics see them in JAX's default 32-bit mode), each mapped to a
32-bit unsigned key with the order of the floats; the first pass over the chunks counts each
group's weight and the rows in ``2^16`` key buckets (the top 16 bits of the key). Unlike the
in-memory metrics, which shift concrete float64 scores to their middle first, the chunks are
cast as they come: shift scores far from 0 (timestamps) before streaming them.

**KS** is found by the counting passes of the streamed audit (:mod:`._streaming`): buckets
that may hold the largest gap are split into ``2^8`` sub-buckets, at most twice, until the
CDFs are exact where the maximum is attained. Memory: ``O(G x 2^16)`` counts and one chunk.

**W1** needs every distinct score: with :math:`p_1 < \\dots < p_D` the distinct pooled scores,

.. math::

    W_1(\\nu_g, \\nu) = \\sum_{k < D} (p_{k+1} - p_k) \\, |F_g(p_k) - F(p_k)|.

The key space is cut into **ranges** of consecutive buckets holding at most
``max_rows_in_memory`` rows each (from the first pass's row counts; a bucket with more rows is
split by a counting pass into ``2^8`` sub-buckets, down to single keys, which need no rows in
memory: their rows are summed per group as they are read). One pass per range gathers its
rows' (key, group, weight), summed per distinct (key, group) chunk by chunk, sorts them, and
adds the range's terms of the sum; the groups' cumulative weights and the last point's CDF
gap are carried from one range to the next, so the sum is exact (float64). Passes:
``1 + (up to 2) + ranges``, ranges :math:`\\approx` rows / ``max_rows_in_memory`` (at most
twice that); memory ``O(max_rows_in_memory x (G + 2))`` numbers and one chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax._keys import FIRST_BITS, NEXT_BITS, bucket_first, bucket_last
from fairjax._keys import float_keys as _float_keys
from fairjax._keys import key_floats as _key_floats
from fairjax.metrics._streaming import (
    _exact_ks_points,
    _first_pass,
    _Reader,
    _refine_pass,
)

ArrayLike = jax.typing.ArrayLike

_SCORE_KEYS = ("scores", "groups", "weights")
_BLOCK = 1 << 16  # points per block of the W1 sum (bounds the (block, G, G) pairwise gaps)


def _read_scores(chunks: Any, num_groups: Any, allgather: Any):
    """The reader, group weights, first-pass histogram, rows per bucket, largest key (all
    summed over processes with ``allgather``) and the summing function (None alone)."""
    num_groups = v.check_scalar(num_groups, "num_groups", integer=True, positive=True)
    for name, f in (("chunks", chunks), ("allgather", allgather)):
        if not callable(f) and not (name == "allgather" and f is None):
            raise TypeError(f"`{name}` must be a function, got {type(f).__name__}.")
    read = _Reader(chunks, num_groups, required=("scores", "groups"), allowed=_SCORE_KEYS)
    _, cells, hist, brows, kmax = _first_pass(read, num_groups, allow_empty=allgather is not None)
    if hist is None:  # this process read no rows
        hist, brows = np.zeros((4 * num_groups, 1 << FIRST_BITS)), np.zeros(1 << FIRST_BITS)
    combine = None
    if allgather is not None:
        combine = lambda a: _gathered(allgather, a).sum(0)
        cells, hist, brows = combine(cells), combine(hist), combine(brows)
        kmax = int(_gathered(allgather, np.array([kmax])).max())
        if not brows.any():
            raise ValueError("`chunks` gave no rows on any process: a metric needs at least one.")
    if cells.sum() <= 0:
        raise ValueError("`weights` must not be all zero.")
    totals = cells.reshape(num_groups, 4).sum(1)
    return read, num_groups, totals, hist, brows.astype(np.int64), kmax, combine


def _gathered(allgather: Callable[[np.ndarray], Any], a: np.ndarray) -> np.ndarray:
    """``a`` (float64) of every process, stacked: ``(P, *a.shape)``. Sent as uint32 words, so
    that a gather that keeps only 32-bit types (JAX without x64) loses nothing."""
    a = np.ascontiguousarray(a, np.float64)
    words = np.asarray(allgather(a.view(np.uint32)))
    return np.ascontiguousarray(words.astype(np.uint32)).view(np.float64).reshape(-1, *a.shape)


def _result(value: float) -> jax.Array:
    """The metric in the in-memory metrics' result dtype."""
    return jnp.asarray(value, jnp.result_type(float))


def ks_unfairness_streaming(
    chunks: Callable[[], Iterable[Mapping[str, ArrayLike | None]]],
    *,
    num_groups: int,
    allgather: Callable[[np.ndarray], ArrayLike] | None = None,
) -> jax.Array:
    """:func:`ks_unfairness` of scores read in chunks, exactly, never holding the rows.

    The largest Kolmogorov-Smirnov distance between two non-empty groups' weighted score
    distributions, as :func:`ks_unfairness` computes it on the chunks concatenated (to float
    rounding: the CDFs are sums in float64 here). Reads the chunks two to four times (the
    module docstring: counting passes over the float32 scores' keys); memory holds one chunk
    and ``O(G x 2^16)`` counts.

    Args:
      chunks: a function returning a fresh iterable of chunks, the same chunks in the same
        order at every call (called once per pass). A chunk is a mapping with ``"scores"``
        (finite, compared as float32) and ``"groups"`` (integer ids in ``[0, num_groups)``)
        and optionally ``"weights"`` (non-negative), each a 1-D array of the chunk's rows;
        every chunk holds the same keys.
      num_groups: the number of groups.
      allgather: with several processes, each reading its own chunks: a function that
        returns a NumPy array of every process stacked, ``(P, *a.shape)``, called by every
        process in the same order, e.g.
        ``functools.partial(jax.experimental.multihost_utils.process_allgather,
        tiled=False)``. The counts of each pass are then summed over the processes and
        every process returns the metric of all their rows. None: one process.

    Returns:
      Scalar in [0, 1] (0 with fewer than two non-empty groups).

    Raises:
      ValueError: a chunk with values of the wrong kind (named by its index and key), chunks
        that change between passes, no rows, or all weights zero.

    Example:
      >>> import numpy as np
      >>> from fairjax import metrics
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 3, 5000)
      >>> x = np.round(rng.normal(size=5000) + 0.3 * s, 2).astype(np.float32)
      >>> chunks = lambda: ({"scores": x[a : a + 1500], "groups": s[a : a + 1500]}
      ...                   for a in range(0, 5000, 1500))
      >>> streamed = metrics.ks_unfairness_streaming(chunks, num_groups=3)
      >>> in_memory = metrics.ks_unfairness(x, s, num_groups=3)
      >>> bool(abs(streamed - in_memory) < 1e-6)
      True
    """
    read, G, totals, hist, _, kmax, combine = _read_scores(chunks, num_groups, allgather)
    present = totals > 0
    if present.sum() < 2:
        return _result(0.0)
    _, mass = _exact_ks_points(read, hist, kmax, G, combine)
    cdfs = np.cumsum(mass[present], axis=1) / totals[present, None]
    return _result(float((cdfs.max(0) - cdfs.min(0)).max()))


# ----------------------------------------------------------------------------- W1 ranges


def _key_ranges(
    read: _Reader, brows: np.ndarray, budget: int, combine: Callable[..., np.ndarray] | None
) -> list[tuple[int, int]]:
    """Inclusive key ranges, in order, each holding at most ``budget`` rows or one key.

    Starts from the first pass's ``2^16`` buckets; buckets with more than ``budget`` rows are
    split into ``2^8`` sub-buckets by a counting pass, level after level (at most two), then
    consecutive (sub-)buckets are packed greedily."""
    prefixes = np.flatnonzero(brows)
    segs = [(int(p), FIRST_BITS, int(brows[p])) for p in prefixes]
    bits = FIRST_BITS
    while bits < 32:
        big = np.array([p for p, b, r in segs if b == bits and r > budget], np.int64)
        if not big.size:
            break
        bits += NEXT_BITS
        S = 1 << NEXT_BITS
        rows = _refine_pass(read, big, bits, read.num_groups, rows=True, combine=combine)
        rows = rows.sum(0).reshape(-1, S)
        children = {int(p): rows[i] for i, p in enumerate(big)}
        out = []
        for p, b, r in segs:
            if b == bits - NEXT_BITS and p in children:
                out += [(p * S + j, bits, int(c)) for j, c in enumerate(children[p]) if c]
            else:
                out.append((p, b, r))
        segs = out
    ranges, start, end, held = [], None, 0, 0
    for p, b, r in segs:
        lo, hi = bucket_first(p, b), bucket_last(p, b)
        if start is not None and held + r > budget:
            ranges.append((start, end))
            start = None
        if start is None:
            start, held = lo, 0
        end, held = hi, held + r
    ranges.append((start, end))
    return ranges


def _range_weights(read: _Reader, lo: int, hi: int, num_groups: int):
    """Distinct keys in ``[lo, hi]`` and each group's weight at each: ``(D,)``, ``(D, G)``.

    Each chunk's rows in the range are summed per distinct (key, group) as they are read, so
    memory holds at most the range's rows, and a single key's rows in ``G`` numbers per chunk.
    """
    G = num_groups
    codes, sums = [], []
    for _, _, _, g, x, w in read():
        keys = _float_keys(x)
        sel = (keys >= lo) & (keys <= hi)
        if not sel.any():
            continue
        code = keys[sel].astype(np.uint64) * np.uint64(G) + g[sel].astype(np.uint64)
        u, inv = np.unique(code, return_inverse=True)
        codes.append(u)
        sums.append(np.bincount(inv, None if w is None else w[sel], minlength=u.size))
    if not codes:
        return np.zeros(0, np.uint32), np.zeros((0, G))
    u, inv = np.unique(np.concatenate(codes), return_inverse=True)
    weight = np.bincount(inv, np.concatenate(sums), minlength=u.size)
    keys, at = np.unique(u // np.uint64(G), return_inverse=True)
    table = np.zeros((keys.size, G))
    table[at, (u % np.uint64(G)).astype(np.int64)] = weight
    return keys.astype(np.uint32), table


def _gather_range(allgather: Callable[..., Any], keys: np.ndarray, table: np.ndarray):
    """:func:`_range_weights` of all processes merged: their distinct keys and weights."""
    sizes = _gathered(allgather, np.array([keys.size]))[:, 0].astype(np.int64)
    pad = int(sizes.max())
    k = _gathered(allgather, np.pad(keys.astype(np.float64), (0, pad - keys.size)))
    t = _gathered(allgather, np.pad(table, ((0, pad - keys.size), (0, 0))))
    keys = np.concatenate([k[p, :n] for p, n in enumerate(sizes)]).astype(np.uint32)
    keys, at = np.unique(keys, return_inverse=True)
    merged = np.zeros((keys.size, table.shape[1]))
    np.add.at(merged, at, np.concatenate([t[p, :n] for p, n in enumerate(sizes)]))
    return keys, merged


def _gaps(cum: np.ndarray, totals: np.ndarray, reference: str) -> np.ndarray:
    """``|F_g - F|`` per point ``(D, G)``, or ``|F_a - F_b|`` ``(D, G, G)``, from the groups'
    cumulative weights ``cum`` ``(D, G)``."""
    cdfs = cum / np.where(totals > 0, totals, 1)
    if reference == "pooled":
        return np.abs(cdfs - cum.sum(1, keepdims=True) / totals.sum())
    return np.abs(cdfs[:, :, None] - cdfs[:, None, :])


def wasserstein_unfairness_streaming(
    chunks: Callable[[], Iterable[Mapping[str, ArrayLike | None]]],
    *,
    num_groups: int,
    reference: Literal["pooled", "pairwise"] = "pooled",
    max_rows_in_memory: int = 10_000_000,
    allgather: Callable[[np.ndarray], ArrayLike] | None = None,
) -> jax.Array:
    """:func:`wasserstein_unfairness` of scores read in chunks, exactly, in bounded memory.

    With ``reference="pooled"`` (default) the largest Wasserstein-1 distance of a non-empty
    group's weighted score distribution to the pooled one,
    :math:`\\max_g \\int |F_g(t) - F(t)| \\, dt`; with ``"pairwise"``,
    :math:`\\max_{a, b} \\int |F_a - F_b|`: the value :func:`wasserstein_unfairness` gives on
    the chunks concatenated, to float rounding (the sum is in float64 here). The integral is
    summed range of scores by range of scores, each range's rows sorted in memory (module
    docstring): memory holds one chunk and at most ``max_rows_in_memory`` rows of a range
    (as ``(G + 2)`` numbers each); the chunks are read once per range, after two to four
    passes that plan the ranges, so about ``rows / max_rows_in_memory`` more passes.

    Args:
      chunks: a function returning a fresh iterable of chunks, as for
        :func:`ks_unfairness_streaming`: mappings with ``"scores"`` (finite, compared as
        float32), ``"groups"`` (integer ids in ``[0, num_groups)``) and optionally
        ``"weights"`` (non-negative).
      num_groups: the number of groups.
      reference: ``"pooled"`` or ``"pairwise"``.
      max_rows_in_memory: most rows of one score range held at once (at least 1); with
        ``allgather``, of all processes together (each process receives them all).
      allgather: several processes, as for :func:`ks_unfairness_streaming`; the rows of each
        range are then gathered from all processes, summed per distinct score.

    Returns:
      Non-negative scalar, in the units of the scores.

    Raises:
      ValueError: a chunk with values of the wrong kind (named by its index and key), chunks
        that change between passes, no rows, all weights zero, or a bad setting.

    Example:
      >>> import numpy as np
      >>> from fairjax import metrics
      >>> rng = np.random.default_rng(1)
      >>> g = rng.choice(2, 4000, p=[0.8, 0.2])
      >>> f = (rng.random(4000) + 0.1 * g).astype(np.float32)
      >>> w = rng.exponential(size=4000)
      >>> def chunks():  # four chunks of 1000 rows
      ...     for a in range(0, 4000, 1000):
      ...         yield {"scores": f[a : a + 1000], "groups": g[a : a + 1000],
      ...                "weights": w[a : a + 1000]}
      >>> streamed = metrics.wasserstein_unfairness_streaming(
      ...     chunks, num_groups=2, max_rows_in_memory=500)  # 8 ranges or more
      >>> in_memory = metrics.wasserstein_unfairness(f, g, num_groups=2, weights=w)
      >>> bool(abs(streamed - in_memory) < 1e-6)
      True
    """
    if reference not in ("pooled", "pairwise"):
        raise ValueError(f"`reference` must be 'pooled' or 'pairwise', got {reference!r}.")
    budget = v.check_scalar(max_rows_in_memory, "max_rows_in_memory", integer=True, positive=True)
    read, G, totals, _, brows, _, combine = _read_scores(chunks, num_groups, allgather)
    present = totals > 0
    total = np.zeros(G if reference == "pooled" else (G, G))
    before = np.zeros(G)  # each group's weight below the current range
    last = None  # the previous range's last point and its gaps
    for lo, hi in _key_ranges(read, brows, int(budget), combine):
        keys, table = _range_weights(read, lo, hi, G)
        if allgather is not None:
            keys, table = _gather_range(allgather, keys, table)
        if not keys.size:
            continue
        points = _key_floats(keys).astype(np.float64)
        for a in range(0, keys.size, _BLOCK):
            cum = before + np.cumsum(table[a : a + _BLOCK], axis=0)
            gaps = _gaps(cum, totals, reference)
            pts = points[a : a + _BLOCK]
            if last is not None:
                total += (pts[0] - last[0]) * last[1]
            spacing = np.diff(pts).reshape(-1, *(1,) * (gaps.ndim - 1))
            total += (spacing * gaps[:-1]).sum(0)
            before, last = cum[-1], (pts[-1], gaps[-1])
    mask = present if reference == "pooled" else present[:, None] & present[None, :]
    return _result(float(np.where(mask, total, 0).max()))
