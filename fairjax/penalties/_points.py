"""The input check that the distribution penalties share: points, groups, compute dtype."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs

Array = jax.Array


def points_and_groups(
    values: Any, groups: Any, num_groups: int | None, weights: Any, *, name: str, ndim: Any
) -> tuple[Array, Array, jnp.dtype]:
    """Checked points (``name``, finite, non-empty, rank ``ndim``), the membership ``(n, G)``
    and the float dtype to compute in: the points' and the weights', not the membership's
    (integer ids make a default-float membership, float64 under x64)."""
    x = v.as_array(values, name, ndim=ndim)
    v.check_finite(x, name)
    if x.shape[0] == 0:
        raise ValueError(f"`{name}` must not be empty.")
    g = v.check_groups(groups, num_groups=num_groups, n=x.shape[0])
    return x, gs.membership(g, num_groups=num_groups), v.float_dtype(x, g, weights)
