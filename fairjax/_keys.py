"""Order-preserving integer keys of float32 values, for exact selection by counting.

A float32 value maps to a uint32 key with the same order (flip every bit of a negative, the
sign bit of a positive; -0.0 counts as +0.0), so that quantiles, CDFs and thresholds of floats
are found by counting rows per key bucket: the top bits of the keys cut the real line into
buckets of equal numbers of floats, each refined by the next bits. Used by the streamed audit
(:mod:`fairjax.metrics`) and the streamed threshold fit (:mod:`fairjax.postprocessing`).
"""

from __future__ import annotations

import numpy as np

FIRST_BITS = 16  # key bits resolved by the first counting pass (2^16 buckets)
NEXT_BITS = 8  # key bits resolved by each later pass (2^8 sub-buckets of a bucket)


def float_keys(x: np.ndarray) -> np.ndarray:
    """uint32 keys with the order of the float32 values ``x`` (-0.0 as +0.0).

    Example:
      >>> import numpy as np
      >>> from fairjax._keys import float_keys, key_floats
      >>> x = np.array([-2.0, -0.0, 0.0, 1e-30, 3.5], np.float32)
      >>> k = float_keys(x)
      >>> bool(np.all(np.diff(k.astype(np.int64)) >= 0)), key_floats(k).tolist()
      (True, [-2.0, 0.0, 0.0, 1.0000000031710769e-30, 3.5])
    """
    u = np.where(x == 0, np.float32(0), x).astype(np.float32).view(np.uint32)
    return np.where(u >> 31, ~u, u | np.uint32(1 << 31)).astype(np.uint32)


def key_floats(k: np.ndarray) -> np.ndarray:
    """The float32 values of :func:`float_keys` keys."""
    k = np.asarray(k, np.uint32)
    return np.where(k >> 31, k ^ np.uint32(1 << 31), ~k).astype(np.uint32).view(np.float32)


def bucket_of(keys: np.ndarray, bits: int) -> np.ndarray:
    """The bucket of each key among the ``2^bits`` buckets of its top ``bits`` bits (int64)."""
    return (np.asarray(keys) >> (32 - bits)).astype(np.int64)


def bucket_first(prefix, bits):
    """The first key of the bucket ``prefix`` of the top ``bits`` bits (ints or int64 arrays)."""
    return prefix << (32 - bits)


def bucket_last(prefix, bits):
    """The last key of the bucket ``prefix`` of the top ``bits`` bits (ints or int64 arrays)."""
    return ((prefix + 1) << (32 - bits)) - 1
