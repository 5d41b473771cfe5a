"""NaN in, NaN out: the one guard every penalty's value passes through.

A penalty reduces its inputs with selects on float comparisons (``count > 0`` for an empty
group, a tie tolerance, ``sq > 0`` before a square root). A comparison with NaN is False, so
such a select can turn a NaN input into a value that reads as "perfectly fair" (0), and a
trainer would then report a diverged model as satisfying its bound. Under ``jit`` (or
``grad``) the concrete-input validation cannot run, so the penalties route their value through
:func:`propagate_nan`, which makes a NaN anywhere in the inputs a NaN value with a NaN gradient.
"""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

Array = jax.Array


def propagate_nan(value: Array, *inputs: object, axis_name: Hashable | None = None) -> Array:
    """``value``, or NaN (with a NaN gradient) when a floating input holds a NaN.

    Without a NaN the result and its gradient are ``value``'s, bit for bit (a select). With
    one, the value is NaN and so is the gradient with respect to every floating input.
    ``None`` and non-floating inputs (integer group ids, boolean masks) are skipped; with
    ``axis_name`` a NaN on any device makes the value NaN on every device.
    """
    arrays = [jnp.asarray(a) for a in inputs if a is not None]
    arrays = [a for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    if not arrays:
        return value
    value = jnp.asarray(value)
    bad = jnp.any(jnp.stack([jnp.any(jnp.isnan(a)) for a in arrays]))
    if axis_name is not None:
        bad = jax.lax.psum(bad.astype(jnp.int32), axis_name) > 0
    # Double where: the inner one passes the inputs only when there is a NaN, so without one
    # the NaN factor's backward pass (0 * NaN) stops there and every gradient stays finite.
    total = sum(jnp.sum(jnp.where(bad, a, 0)).astype(value.dtype) for a in arrays)
    if axis_name is not None:
        # Summed over the devices too, so the result is replicated like ``value`` (shard_map
        # infers it) and every device's inputs get the NaN gradient.
        total = jax.lax.psum(total, axis_name)
    return jnp.where(bad, total * jnp.nan, value)
