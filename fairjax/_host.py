"""NumPy helpers of the CPU host paths (concrete inputs on the CPU backend)."""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["chunk_digest", "end_pass", "rows_by_group"]


def rows_by_group(ids: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each group, in index order, and where each group's rows start.

    ``order[bounds[k] : bounds[k + 1]]`` are the rows of group ``k`` (ids in
    ``[0, num_groups)``), increasing. One stable argsort: of 8- or 16-bit keys when the ids fit,
    which NumPy runs as a radix sort (one pass per byte), several times faster than a stable
    sort of 32-bit keys or a boolean mask per group.

    Args:
      ids: integer group ids, shape ``(n,)``.
      num_groups: the number of groups.

    Returns:
      ``(order, bounds)``: int64 arrays of shapes ``(n,)`` and ``(num_groups + 1,)``.

    Example:
      >>> import numpy as np
      >>> from fairjax._host import rows_by_group
      >>> order, bounds = rows_by_group(np.array([1, 0, 1, 0, 2]), 3)
      >>> order.tolist(), bounds.tolist()
      ([1, 3, 0, 2, 4], [0, 2, 4, 5])
    """
    narrow = next((t for t in (np.int8, np.int16) if num_groups <= np.iinfo(t).max), np.int32)
    order = np.argsort(np.asarray(ids).astype(narrow, copy=False), kind="stable")
    bounds = np.zeros(num_groups + 1, np.int64)
    np.cumsum(np.bincount(ids, minlength=num_groups), out=bounds[1:])
    return order, bounds


def chunk_digest(digest: int, *arrays: np.ndarray | None) -> int:
    """``digest`` extended with the bytes of ``arrays`` (``None`` skipped): a CRC-32 chained
    over a stream's chunks, in order.

    The streamed fits and metrics read their chunks several times, the same chunks in the same
    order at every pass, bit for bit; each pass's digest is compared with the first pass's, so
    that a stream that re-samples or re-scores its rows between passes is refused rather than
    giving a result that holds on no pass. A stream that recomputes its scores on every pass
    must recompute them bit for bit (or compute them once and store them).

    Args:
      digest: the digest so far (0 to start).
      *arrays: the chunk's arrays.

    Returns:
      The new digest, a Python int.

    Example:
      >>> import numpy as np
      >>> from fairjax._host import chunk_digest
      >>> a, b = np.array([1.5, 2.5], np.float32), np.array([0, 1])
      >>> chunk_digest(chunk_digest(0, a[:1], b[:1]), a[1:], b[1:]) == chunk_digest(0, a, b)
      False
      >>> chunk_digest(0, a, b) == chunk_digest(0, a.copy(), b.copy())
      True
    """
    for a in arrays:
        if a is not None:
            digest = zlib.crc32(np.ascontiguousarray(a), digest)
    return digest


def end_pass(
    rows: int, digest: int, first_rows: int | None, first_digest: int | None
) -> tuple[int, int]:
    """The end of a pass over a stream: the first pass's row count and digest
    (:func:`chunk_digest`), after checking this pass against them.

    Args:
      rows: the rows this pass read.
      digest: this pass's digest.
      first_rows: the first pass's rows, or None if this pass is the first.
      first_digest: the first pass's digest.

    Returns:
      ``(first_rows, first_digest)``: this pass's own values when it is the first.

    Raises:
      ValueError: a later pass read another number of rows, or other values.
    """
    if first_rows is None:
        return rows, digest
    if rows != first_rows:
        raise ValueError(f"`chunks` gave {rows} rows on a later pass, {first_rows} first.")
    if digest != first_digest:
        raise ValueError(
            "`chunks` changed between passes: the same number of rows, but other values (the "
            "data is read several times; `chunks` must give the same chunks, in the same "
            "order and bit for bit, at every call: store scores a model recomputes)."
        )
    return first_rows, first_digest
