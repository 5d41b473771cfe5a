"""Float32 arithmetic of the compiled barycenter programs, restated in NumPy for the CPU host
paths of :func:`fit_barycenter` and :func:`apply_barycenter`: the same bits as XLA's code (its
fused multiply-adds, its ``jax.random`` draws), where no subnormal number is involved."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

Array = jax.Array

#: Nonzero magnitudes below this (and jitters below it) take the compiled path: XLA flushes
#: subnormal floats to zero, which the host path's float64 arithmetic would not.
_HOST_TINY = 2.0**-40
_LOW29 = np.uint64((1 << 29) - 1)
_HALF29 = np.uint64(1 << 28)


def _no_tiny(*arrays: Any) -> bool:
    """No nonzero magnitude below ``_HOST_TINY`` (the products of the host path stay normal)."""
    for arr in arrays:
        a = np.asarray(arr)
        if a.dtype != np.float32:
            a = a.astype(np.float32)
        if a.size == 0:
            continue
        # Twice the float32 bits without the sign, minus 1: zeros wrap to the largest uint32,
        # every other value orders by magnitude.
        bits = a.reshape(-1).view(np.uint32) << np.uint32(1)
        bits -= np.uint32(1)
        if bits.min() < (np.float32(_HOST_TINY).view(np.uint32) << np.uint32(1)) - np.uint32(1):
            return False
    return True


def _fma(a: np.ndarray, b, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once to float32, as XLA's CPU code computes it (LLVM contracts a
    product and a sum into a fused multiply-add).

    The float32 product is exact in float64; the float64 sum is rounded once more to float32,
    which is the single rounding except where the float64 sum is exactly halfway between two
    float32 values (the last 29 of its 52 fraction bits are ``100...0``). There the sum's exact
    rounding error (Knuth's two-sum) moves it one float64 step towards the exact value (round
    to odd), so the float32 rounding goes the same way as the fused one.
    """
    if np.ndim(a) == 0:  # the product is exact: either order
        a, b = b, a
    s = np.asarray(a).astype(np.float64)
    s *= np.float64(b) if np.ndim(b) == 0 else np.asarray(b)
    s += c
    return _round_once(s, a, b, c)


def _round_once(s: np.ndarray, a, b, c) -> np.ndarray:
    """float32 of the float64 sum ``s = a * b + c`` (``a * b`` exact in float64), rounded as
    the exact value would be (see :func:`_fma`)."""
    mid = (s.view(np.uint64) & _LOW29) == _HALF29
    if mid.any():
        a64 = np.broadcast_to(np.asarray(a, np.float64), s.shape)[mid]
        pm = a64 * np.broadcast_to(np.asarray(b, np.float64), s.shape)[mid]
        cm = np.broadcast_to(np.asarray(c, np.float64), s.shape)[mid]
        sm = s[mid]
        bv = sm - pm
        err = (pm - (sm - bv)) + (cm - bv)
        s[mid] = np.where(err != 0, np.nextafter(sm, np.where(err > 0, np.inf, -np.inf)), sm)
    return s.astype(np.float32)


def _uniform_host(key: Array, size: int, low: float, high: float) -> np.ndarray:
    """``jax.random.uniform`` float32 draws of ``size`` rows on the host: one compiled program
    per size, whatever the bounds (shared by the fit's and the apply's draws)."""
    draws = jax.random.uniform(key, (size,), np.float32, np.float32(low), np.float32(high))
    return np.asarray(draws)
