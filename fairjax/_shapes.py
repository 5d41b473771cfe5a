"""Shape buckets: the padded sizes that let calls with different row counts share a program.

Every new array shape compiles a jitted program again. Entry points that take data of any size
(the post-processor's fit and apply, the scikit-learn estimators' fits) pad the rows to a
bucket and mask the padding, so that nearby sizes reuse one compiled program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["bucket", "pad_rows"]


def bucket(n: int, *, minimum: int = 256, per_octave: int = 16) -> int:
    """The padded size of ``n`` rows: ``minimum`` at least, then ``per_octave`` sizes per
    power of two, so the padding stays under ``1 / per_octave`` of ``n`` (6.25% by default).

    Example:
      >>> from fairjax._shapes import bucket
      >>> bucket(100), bucket(100_000), bucket(100_000, per_octave=8)
      (256, 102400, 106496)
    """
    if per_octave < 1 or per_octave & (per_octave - 1):
        raise ValueError(f"`per_octave` must be a power of two, got {per_octave}.")
    if n <= minimum:
        return minimum
    # n lies in (2^(b-1), 2^b]: steps of 2^(b-1) / per_octave.
    step = 1 << max((n - 1).bit_length() - per_octave.bit_length(), 0)
    return -(-n // step) * step


def pad_rows(a: jax.Array, size: int) -> jax.Array:
    """``a`` with zero rows appended along axis 0 up to ``size``.

    On a concrete array the padding is done by NumPy on the host (no program to compile for
    each new size); under a trace by ``jnp.pad``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax._shapes import pad_rows
      >>> pad_rows(jnp.array([1.0, 2.0]), 4)
      Array([1., 2., 0., 0.], dtype=float32)
    """
    if a.shape[0] == size:
        return a
    widths = [(0, size - a.shape[0])] + [(0, 0)] * (a.ndim - 1)
    if isinstance(a, jax.core.Tracer):
        return jnp.pad(a, widths)
    return jnp.asarray(np.pad(np.asarray(a), widths))
