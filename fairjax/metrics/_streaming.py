"""The audit report of data read in chunks: group sums, exact KS by counting passes, and a
Poisson bootstrap.

Every statistic of :func:`audit_report` except the KS distance is a function of sums over rows:
per group and per confusion cell (label, decision), the rows and their total weight. A pass
over the chunks adds them up, so the data is summarised by a table of ``4 G`` weighted
counts, and the report is computed from that table by the very metrics of the in-memory audit
(the table is a weighted data set of ``4 G`` rows: the metrics give the same values on it).

The KS distance needs the groups' CDFs at the score where they are furthest apart. Scores are
float32 (as in the in-memory audit); each is mapped to a 32-bit unsigned key with the order of
the floats, and the keys are resolved by counting passes: the first pass counts each group's
weight in ``2^16`` key buckets (the top 16 bits); that gives the exact CDFs at every bucket's
upper end and a lower bound :math:`L` on the KS distance. Within a bucket the gap between two
groups can grow by at most their weight inside it, so only buckets whose upper bound
:math:`\\max_a F_a(\\text{end}) - \\min_b F_b(\\text{start})` exceeds :math:`L` can hold the
maximum; the next pass splits only those into ``2^8`` sub-buckets (the next 8 bits), and so on
until buckets are single keys. The maximum over the evaluated points is the exact KS distance
(up to the float rounding of the CDFs), in at most two passes after the first.

The bootstrap is a **Poisson bootstrap** (Hanley and MacGibbon 2006; Chamandy et al. 2012):
each row gets an independent Poisson(1) multiplicity in each resample, instead of the
multinomial counts of :func:`bootstrap` (which need the number of rows in advance and couple
all rows). Both are valid bootstraps of the same statistics; their intervals agree to Monte
Carlo error, not draw for draw. Because the multiplicities of distinct rows are independent,
the sum of the Poisson(1) multiplicities of the :math:`m` rows of one cell is Poisson(:math:`m`):
with unit weights a resample of the whole data is one Poisson draw per cell of the table, at a
cost independent of the number of rows. With sample weights the weighted sums are drawn row by
row (``O(n x resamples)``), with draws tied to the rows' global positions, so the result does
not depend on the chunk sizes. For the KS distance the resamples are evaluated on a grid of
``grid_size`` score cells cut at the pooled quantiles (from the first pass): each resample's KS
distance is the largest gap at the cells' ends, at most the exact one, short of it by at most
the largest weight share of a group inside one cell.

References:
  Hanley, MacGibbon, *Creating non-parametric bootstrap samples using Poisson frequencies*,
  Computer Methods and Programs in Biomedicine 83, 2006. Chamandy, Muralidharan, Najmi, Naidu,
  *Estimating uncertainty for massive data streams*, Google technical report, 2012.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax._host import chunk_digest, end_pass
from fairjax._keys import FIRST_BITS, NEXT_BITS, bucket_last, bucket_of
from fairjax._keys import float_keys as _float_keys
from fairjax._keys import key_floats as _key_floats
from fairjax.metrics._audit import (
    _all_metrics,
    _point_stats,
    assemble_report,
    check_criteria,
    check_report_options,
)

ArrayLike = jax.typing.ArrayLike

_BLOCK = 4096  # rows per block of the row-by-row Poisson draws (weighted data)
_KEYS = ("y_true", "y_pred", "groups", "scores", "weights")


def _chunk(
    chunk: Any,
    k: int,
    layout: tuple[bool, ...] | None,
    num_groups: int,
    required: tuple[str, ...] = ("y_pred", "groups"),
    allowed: tuple[str, ...] = _KEYS,
):
    """A validated chunk: ``(y_t, y_p, g, x, w)`` as NumPy arrays (None where absent; without
    decisions, ``y_t`` and ``y_p`` are zeros: every row in the first confusion cell)."""
    if not isinstance(chunk, Mapping) or not set(required) <= set(chunk):
        need = " and ".join(repr(c) for c in required)
        raise TypeError(f"chunk {k} must be a mapping with {need} arrays.")
    unknown = set(chunk) - set(allowed)
    if unknown:
        raise ValueError(f"chunk {k} has unknown keys {sorted(unknown)}; expected {allowed}.")
    arrays = [None if chunk.get(c) is None else np.asarray(chunk[c]) for c in _KEYS]
    has = tuple(a is not None for a in arrays)
    if layout is not None and has != layout:
        raise ValueError(f"chunk {k} holds {_present(has)}, the first chunk {_present(layout)}.")
    y_t, y_p, g, x, w = arrays
    if g.ndim != 1:
        raise ValueError(f"`groups` of chunk {k} must be 1-D integer ids, got shape {g.shape}.")
    n = g.shape[0]
    for name, a in zip(_KEYS, arrays, strict=True):
        if a is not None and (a.ndim != 1 or a.shape[0] != n):
            raise ValueError(f"`{name}` of chunk {k} must have shape ({n},), got {a.shape}.")
    for name, a in (("y_true", y_t), ("y_pred", y_p)):
        if a is not None and not np.isin(a, (0, 1)).all():
            raise ValueError(f"`{name}` of chunk {k} must hold 0/1 values.")
    if not np.issubdtype(g.dtype, np.integer):  # before the range: a min of strings raises
        raise ValueError(
            f"`groups` of chunk {k} must hold integer ids in [0, {num_groups}), got dtype "
            f"{g.dtype} (encode labels as ids first: np.unique(labels, return_inverse=True))."
        )
    if g.size and (g.min() < 0 or g.max() >= num_groups):
        raise ValueError(f"`groups` of chunk {k} must hold integer ids in [0, {num_groups}).")
    if x is not None and not np.isfinite(x).all():
        raise ValueError(f"`scores` of chunk {k} must be finite.")
    if w is not None and not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError(f"`weights` of chunk {k} must be finite and non-negative.")
    y_p = np.zeros(n, np.int64) if y_p is None else y_p.astype(np.int64)
    y_t = y_p if y_t is None else y_t.astype(np.int64)  # unlabelled: the label cells unused
    x = None if x is None else x.astype(np.float32)
    return y_t, y_p, g.astype(np.int64), x, None if w is None else w.astype(np.float32), has


def _present(has: tuple[bool, ...]) -> str:
    return ", ".join(c for c, h in zip(_KEYS, has, strict=True) if h)


class _Reader:
    """Reads the chunks pass after pass, checking that they stay the same."""

    def __init__(
        self,
        chunks: Callable[[], Iterable[Any]],
        num_groups: int,
        required: tuple[str, ...] = ("y_pred", "groups"),
        allowed: tuple[str, ...] = _KEYS,
    ):
        self.chunks, self.num_groups = chunks, num_groups
        self.required, self.allowed = required, allowed
        self.layout: tuple[bool, ...] | None = None
        self.rows: int | None = None
        self.digest: int | None = None

    def __call__(self):
        """Yields ``(offset, y_t, y_p, g, x, w)`` per non-empty chunk."""
        offset, digest = 0, 0
        for k, chunk in enumerate(self.chunks()):
            *arrays, has = _chunk(
                chunk, k, self.layout, self.num_groups, self.required, self.allowed
            )
            self.layout = has
            if arrays[1].shape[0]:
                digest = chunk_digest(digest, *arrays)
                yield offset, *arrays
            offset += arrays[1].shape[0]
        self.rows, self.digest = end_pass(offset, digest, self.rows, self.digest)


def _first_pass(read: _Reader, num_groups: int, *, allow_empty: bool = False):
    """Rows per group, weight per (group, label, decision) cell and, with scores, per cell and
    top-16-bit key bucket, the rows per bucket and the largest key. No rows raise, unless
    ``allow_empty`` (a process whose share is empty)."""
    G, B = num_groups, 1 << FIRST_BITS
    rows = np.zeros(G, np.int64)
    cells = np.zeros(4 * G, np.float64)
    hist, brows, kmax = None, None, 0
    for _, y_t, y_p, g, x, w in read():
        rows += np.bincount(g, minlength=G)
        c = 4 * g + 2 * y_t + y_p
        cells += np.bincount(c, w, minlength=4 * G)
        if x is not None:
            keys = _float_keys(x)
            kmax = max(kmax, int(keys.max()))
            top = bucket_of(keys, FIRST_BITS)
            h = np.bincount(c * B + top, w, minlength=4 * G * B)
            hist = h if hist is None else hist + h
            r = np.bincount(top, minlength=B)
            brows = r if brows is None else brows + r
    if read.rows == 0 and not allow_empty:
        raise ValueError("`chunks` gave no rows: a metric needs at least one.")
    return rows, cells, None if hist is None else hist.reshape(4 * G, B), brows, kmax


# ----------------------------------------------------------------------------- exact KS


def _refine_pass(
    read: _Reader,
    parents: np.ndarray,
    bits: int,
    num_groups: int,
    *,
    rows: bool = False,
    combine: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Group weights (``rows=True``: rows) of the ``2^8`` sub-buckets of each bucket in
    ``parents`` (sorted ``bits - 8``-bit prefixes): shape ``(G, len(parents) * 256)``;
    ``combine`` sums them over processes."""
    K, S = parents.size, 1 << NEXT_BITS
    out = np.zeros(num_groups * K * S, np.float64)
    for _, _, _, g, x, w in read():
        top = bucket_of(_float_keys(x), bits)
        idx = np.minimum(np.searchsorted(parents, top >> NEXT_BITS), K - 1)
        hit = parents[idx] == top >> NEXT_BITS
        code = (g[hit] * K + idx[hit]) * S + (top[hit] & (S - 1))
        out += np.bincount(code, None if w is None or rows else w[hit], minlength=out.size)
    out = out if combine is None else combine(out)
    return out.reshape(num_groups, K * S)


def _exact_ks_points(
    read: _Reader,
    hist: np.ndarray,
    kmax: int,
    num_groups: int,
    combine: Callable[[np.ndarray], np.ndarray] | None = None,
):
    """Points and group weights on which the groups' CDFs are exact and the KS distance is
    attained: ``(keys (P,), weights (G, P))``, each point's weight being the group's weight
    since the previous point. ``combine`` sums each pass's counts over processes (``hist``
    and ``kmax`` must be the combined ones)."""
    G = num_groups
    mass = hist.reshape(G, 4, -1).sum(1)  # (G, buckets)
    total = mass.sum(1, keepdims=True)
    present = total[:, 0] > 0
    scale = np.where(total > 0, 1 / np.where(total > 0, total, 1), 0)
    prefixes, bits = np.arange(mass.shape[1], dtype=np.int64), FIRST_BITS
    before = np.cumsum(mass, 1) - mass  # each group's weight below each bucket
    kept_keys, kept_mass, best = [], [], -np.inf
    while True:
        start, end = before * scale, (before + mass) * scale
        hi = np.where(present[:, None], end, -np.inf).max(0)
        best = max(best, float((hi - np.where(present[:, None], end, np.inf).min(0)).max()))
        bound = hi - np.where(present[:, None], start, np.inf).min(0)
        split = (mass.sum(0) > 0) & (bound > best) if bits < 32 else np.zeros(hi.shape, bool)
        done = ~split & (mass.sum(0) > 0)
        ends = np.minimum(bucket_last(prefixes[done], bits), kmax)
        kept_keys.append(ends)
        kept_mass.append(mass[:, done])
        if not split.any():
            break
        parents, base = prefixes[split], before[:, split]
        bits += NEXT_BITS
        mass = _refine_pass(read, parents, bits, G, combine=combine)
        S = 1 << NEXT_BITS
        within = mass.reshape(G, -1, S)
        before = np.repeat(base, S, axis=1) + (np.cumsum(within, 2) - within).reshape(G, -1)
        prefixes = (parents[:, None] * S + np.arange(S)).reshape(-1)
    keys = np.concatenate(kept_keys)
    order = np.argsort(keys, kind="stable")
    return keys[order], np.concatenate(kept_mass, axis=1)[:, order]


# ----------------------------------------------------------------------------- bootstrap


def _grid(hist: np.ndarray, kmax: int, grid_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells of at most ``grid_size`` runs of first-pass buckets cut at the pooled weight's
    quantiles: each bucket's cell id and each cell's end key."""
    pooled = np.cumsum(hist.sum(0))
    levels = pooled[-1] * np.arange(1, grid_size + 1) / grid_size
    last = np.unique(np.minimum(np.searchsorted(pooled, levels), pooled.size - 1))
    last[-1] = pooled.size - 1
    cell_of = np.searchsorted(last, np.arange(pooled.size))
    ends = np.minimum(bucket_last(last, FIRST_BITS), kmax)
    return cell_of, ends


def _weighted_resamples(read, cell_of, num_cells, num_resamples, seed) -> np.ndarray:
    """Per resample, the weight of every (group, label, decision, cell) class under row-by-row
    Poisson(1) multiplicities: ``(num_resamples, classes)``. The draws of row ``i`` come from
    the block ``i // _BLOCK`` of a generator seeded with ``seed``: independent of the chunks."""
    total = None
    for offset, y_t, y_p, g, x, w in read():
        c = 4 * g + 2 * y_t + y_p
        if x is not None:
            c = c * num_cells + cell_of[bucket_of(_float_keys(x), FIRST_BITS)]
        size = (4 * int(g.max() + 1)) * num_cells
        if total is None:
            total = np.zeros((num_resamples, 0))
        if total.shape[1] < size:
            total = np.pad(total, ((0, 0), (0, size - total.shape[1])))
        for a in range(offset // _BLOCK, (offset + c.size - 1) // _BLOCK + 1):
            lo, hi = max(a * _BLOCK, offset), min((a + 1) * _BLOCK, offset + c.size)
            draws = np.random.default_rng([seed, a]).poisson(1.0, (num_resamples, _BLOCK))
            part = draws[:, lo - a * _BLOCK : hi - a * _BLOCK] * w[lo - offset : hi - offset]
            cls = c[lo - offset : hi - offset]
            order = np.argsort(cls, kind="stable")
            uniq, first = np.unique(cls[order], return_index=True)
            total[:, uniq] += np.add.reduceat(part[:, order], first, axis=1)
    return total


def _intervals(arrays, counts, resampled, *, seed, num_groups, labelled, level, num, criteria):
    """Percentile intervals of all metrics over Poisson resamples of the weighted classes:
    ``resampled`` holds each resample's class weights, or is None for unit weights (a class of
    ``m`` rows then weighs Poisson(``m``), drawn here)."""
    keep = np.flatnonzero(counts > 0 if resampled is None else resampled.any(0))
    arrays = [jnp.asarray(np.asarray(a)[keep]) for a in arrays]
    per = max(1, keep.size * num_groups * 4 * 4)  # bytes of the KS CDFs of one resample
    batch = max(1, min(num, 2**28 // per))
    rng = np.random.default_rng(seed)
    metric = _all_metrics(num_groups, labelled, criteria)
    parts = []
    for start in range(0, num, batch):
        if resampled is None:
            w = rng.poisson(counts[keep], (batch, keep.size))
        else:
            w = resampled[start : start + batch, keep]
            w = np.concatenate([w, np.repeat(w[:1], batch - w.shape[0], 0)])  # one shape
        out = _resample_batch(tuple(arrays), jnp.asarray(w, jnp.float32), metric=metric)
        parts.append({k: np.asarray(x)[: min(batch, num - start)] for k, x in out.items()})
    alpha = (1 - level) / 2
    samples = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    lower = {k: jnp.quantile(jnp.asarray(x), alpha, axis=0) for k, x in samples.items()}
    upper = {k: jnp.quantile(jnp.asarray(x), 1 - alpha, axis=0) for k, x in samples.items()}
    return lower, upper


@functools.partial(jax.jit, static_argnames="metric")
def _resample_batch(arrays: tuple, weights: jax.Array, *, metric: Callable[..., Any]):
    """``metric`` on each row of ``weights`` (resamples of the classes), vmapped."""
    return jax.vmap(lambda w: metric(*arrays, weights=w))(weights)


# ----------------------------------------------------------------------------- entry point


def audit_report_streaming(
    chunks: Callable[[], Iterable[Mapping[str, ArrayLike | None]]],
    *,
    num_groups: int,
    group_names: Sequence[str] | None = None,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    min_group_size: int = 30,
    key: jax.Array | None = None,
    grid_size: int = 1024,
    criteria: Sequence[str] = (),
) -> dict[str, Any]:
    """The report of :func:`audit_report` on data read in chunks, in constant memory.

    Reads the chunks once for the group statistics and the rate gaps (sums over rows), and,
    with scores, at most twice more for the exact KS distance (the module docstring: counting
    passes over the keys of the float32 scores); the data is never held in memory, only one
    chunk and ``O(G x 2^18)`` counts. The point estimates and the per-group table equal those
    of :func:`audit_report` on the chunks concatenated, to float rounding (the sums are
    accumulated in float64 here, in the data's float32 order there). The intervals come from
    a **Poisson bootstrap** (module docstring), a different valid bootstrap from the
    multinomial one of :func:`audit_report`: intervals agree to Monte Carlo error, not
    digit for digit; they do not depend on the chunk sizes. The report's ``bootstrap`` entry
    says ``"method": "poisson"``.

    Args:
      chunks: a function returning a fresh iterable of chunks, the same chunks in the same
        order at every call (called once per pass). A chunk is a mapping with ``"y_pred"``
        (0/1 decisions) and ``"groups"`` (integer ids in ``[0, num_groups)``) and optionally
        ``"y_true"`` (0/1 labels), ``"scores"`` (finite, audited as float32) and ``"weights"``
        (non-negative), each a 1-D array of the chunk's rows; every chunk holds the same keys.
      num_groups: the number of groups.
      group_names: a name per group id (default ``"0"``, ``"1"``, ...).
      num_resamples: Poisson bootstrap resamples (at least 2), or 0 for no intervals.
      confidence_level: coverage of the intervals, in ``(0, 1)``.
      min_group_size: groups with fewer rows are listed under ``small_groups``.
      key: PRNG key of the bootstrap (default ``jax.random.key(0)``).
      grid_size: score cells on which the bootstrap evaluates the KS distance.
      criteria: confusion-matrix criteria to add, as in :func:`audit_report`.

    Returns:
      The dict of :func:`audit_report`.

    Raises:
      ValueError: a chunk with values of the wrong kind (named by its index), chunks that
        change between passes, no rows, or a bad setting.

    Example:
      >>> import numpy as np
      >>> from fairjax import metrics
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 1000)
      >>> y = rng.integers(0, 2, 1000)
      >>> pred = (rng.random(1000) < 0.3 + 0.2 * s).astype(int)
      >>> chunks = lambda: ({"y_true": y[a : a + 300], "y_pred": pred[a : a + 300],
      ...                    "groups": s[a : a + 300]} for a in range(0, 1000, 300))
      >>> streamed = metrics.audit_report_streaming(chunks, num_groups=2, num_resamples=0)
      >>> in_memory = metrics.audit_report(y, pred, s, num_groups=2, num_resamples=0)
      >>> streamed["groups"] == in_memory["groups"]
      True
    """
    num_groups = v.check_scalar(num_groups, "num_groups", integer=True, positive=True)
    names, num_resamples, level, min_group_size = check_report_options(
        num_groups, group_names, num_resamples, confidence_level, min_group_size
    )
    grid_size = v.check_scalar(grid_size, "grid_size", integer=True, positive=True)
    read = _Reader(chunks, num_groups)
    G = num_groups
    rows, cells, hist, _, kmax = _first_pass(read, G)
    labelled, weighted = read.layout[0], read.layout[4]
    criteria = check_criteria(criteria, labelled)
    if cells.sum() <= 0:
        raise ValueError("`weights` must not be all zero.")
    # The table as a weighted data set: one row per (group, label, decision) cell.
    g4, t4, p4 = (a.reshape(-1) for a in np.indices((G, 2, 2)))
    lab = jnp.asarray(t4) if labelled else None
    stats = _point_stats(
        lab, jnp.asarray(p4), jnp.asarray(g4, jnp.int32), None,
        jnp.asarray(cells, jnp.float32), num_groups=G, criteria=criteria,
    )  # fmt: skip
    stats["rows"] = rows
    if hist is not None:
        keys, mass = _exact_ks_points(read, hist, kmax, G)
        gk = np.repeat(np.arange(G), keys.size)
        xk = np.tile(_key_floats(keys), G)
        ks = _point_stats(
            None, jnp.zeros(gk.size, jnp.int32), jnp.asarray(gk, jnp.int32), jnp.asarray(xk),
            jnp.asarray(mass.reshape(-1), jnp.float32), num_groups=G,
        )  # fmt: skip
        stats["ks"] = ks["ks"]
        stats["metrics"] = stats["metrics"] | {"ks_unfairness": ks["metrics"]["ks_unfairness"]}
    lower = upper = dict.fromkeys(stats["metrics"])
    if num_resamples:
        key = jax.random.key(0) if key is None else v.check_key(key)
        num_cells, counts, cell_of = 1, cells, None
        arrays = [jnp.asarray(p4), jnp.asarray(g4, jnp.int32)] + ([lab] if labelled else [])
        if hist is not None:  # classes: (group, label, decision, score cell)
            cell_of, ends = _grid(hist, kmax, grid_size)
            num_cells = ends.size
            counts = np.zeros((4 * G, num_cells))
            np.add.at(counts, (slice(None), cell_of), hist)
            counts = counts.reshape(-1)
            arrays = [jnp.repeat(a, num_cells) for a in arrays]
            arrays.append(jnp.asarray(np.tile(_key_floats(ends), 4 * G)))
        resampled = None
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        if weighted:
            resampled = _weighted_resamples(read, cell_of, num_cells, num_resamples, seed)
            resampled = np.pad(resampled, ((0, 0), (0, counts.size - resampled.shape[1])))
        lower, upper = _intervals(
            arrays, counts, resampled, seed=seed, num_groups=G, labelled=labelled,
            level=level, num=num_resamples, criteria=criteria,
        )  # fmt: skip
    info = {"num_resamples": num_resamples, "confidence_level": level, "method": "poisson"}
    return assemble_report(
        stats, lower, upper, names, labelled=labelled, min_group_size=min_group_size,
        bootstrap_info=info,
    )  # fmt: skip
