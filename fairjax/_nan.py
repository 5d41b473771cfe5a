"""NaN in, NaN out: the one guard every penalty's value (and each dependence measure's) passes
through.

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


def propagate_nan(
    value: Array, *inputs: object, axis_name: Hashable | None = None, infinite: bool = False
) -> Array:
    """``value``, or NaN (with a NaN gradient) when a floating input holds a NaN.

    Without a NaN the result and its gradient are ``value``'s, bit for bit (a select). With
    one, the value is NaN and so is the gradient with respect to every floating input.
    ``None`` and non-floating inputs (integer group ids, boolean masks) are skipped; with
    ``axis_name`` a NaN on any device makes the value NaN on every device.

    The test is one plain sum of each input, in its own dtype, NaN exactly when the input
    holds a NaN or infinities of both signs (inputs no penalty has a finite value for). It
    reads each input once; a NaN test followed by a sum of the selected inputs read them
    twice, one pass after the other. With ``infinite=True`` an infinity of either sign counts
    as a NaN (the test sums ``0 * a``, which never overflows): for measures of the values
    themselves (a dependence measure of scores), where an infinite score is a diverged model
    with no finite value, unlike a logit of +inf, which a sigmoid reads as a sure decision.
    """
    arrays = [jnp.asarray(a) for a in inputs if a is not None]
    arrays = [a for a in arrays if jnp.issubdtype(a.dtype, jnp.floating)]
    if not arrays:
        return value
    value = jnp.asarray(value)
    tested = [0 * a if infinite else a for a in arrays]
    sums = jnp.stack([jnp.sum(a).astype(jnp.result_type(a.dtype, jnp.float32)) for a in tested])
    if axis_name is not None:
        # Summed over the devices: the test, the result and the NaN gradient are the same on
        # every device (shard_map infers the result replicated, like ``value``).
        sums = jax.lax.psum(sums, axis_name)
    bad = jnp.any(jnp.isnan(sums))  # each input on its own: two finite sums never make a NaN
    total = jnp.sum(sums).astype(value.dtype)  # only read, and differentiated, when ``bad``
    # The factor is 1 without a NaN, so the unselected branch passes a zero cotangent to the
    # inputs (1 * 0), not 0 * NaN; with one, every input's gradient is NaN * cotangent.
    factor = jax.lax.stop_gradient(jnp.where(bad, jnp.nan, 1).astype(value.dtype))
    return jnp.where(bad, factor * total, value)
