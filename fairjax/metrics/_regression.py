"""Group losses of a regression model: the worst group's loss and the gap between groups."""

from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp

from fairjax import criteria
from fairjax import groups as gs
from fairjax.metrics._common import check_regression_inputs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["group_loss_difference", "worst_group_loss"]

_LOSSES = ("squared", "absolute")


@functools.partial(jax.jit, static_argnames=("num_groups", "loss", "axis_name"))
def _group_losses(y_true, y_pred, groups, weights, num_groups, loss, axis_name):
    dtype = jnp.result_type(y_pred.dtype, y_true.dtype, jnp.float32)
    err = y_pred.astype(dtype) - y_true.astype(dtype)
    per_row = err * err if loss == "squared" else jnp.abs(err)
    means, counts = gs.group_means(
        per_row,
        groups,
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
        return_counts=True,
    )
    return means, counts > 0


def _checked(y_true, y_pred, groups, num_groups, weights, loss):
    criteria.check_option(loss, "loss", _LOSSES)
    return check_regression_inputs(y_true, y_pred, groups, num_groups, weights)


def worst_group_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    loss: str = "squared",
    axis_name: Hashable | None = None,
) -> Array:
    """The largest mean loss of a group: the quantity bounded group loss constrains.

    .. math:: \\max_g \\frac{\\sum_{i \\in g} w_i \\, \\ell(\\hat y_i, y_i)}{\\sum_{i \\in g} w_i}

    over non-empty groups, with :math:`\\ell` the squared error (``loss="squared"``, the
    group's MSE) or the absolute error (``"absolute"``, its MAE). Agarwal, Dudík and Wu's
    *bounded group loss* asks it to be at most a bound :math:`\\zeta`; to train to it, give
    the per-group losses (:func:`fairjax.groups.group_means` of
    :func:`fairjax.losses.squared`, shape ``(G,)``) to :func:`fairjax.training.fit_constrained`
    as a vector constraint with ``target=zeta`` (one multiplier per group).

    Args:
      y_true: real targets, shape ``(n,)``.
      y_pred: predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      loss: ``"squared"`` or ``"absolute"``.
      axis_name: mapped axis name inside ``shard_map``/``pmap`` (the sums are ``psum``-ed).

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import worst_group_loss
      >>> y = jnp.array([0.0, 1.0, 2.0, 3.0])
      >>> worst_group_loss(y, y + jnp.array([0.0, 0.0, 1.0, 3.0]), jnp.array([0, 0, 1, 1]),
      ...                  num_groups=2)  # group 1: (1 + 9) / 2
      Array(5., dtype=float32)

    References:
      Agarwal, Dudík, Wu, *Fair regression: quantitative definitions and reduction-based
      algorithms*, ICML 2019.
    """
    true, pred, grp, w = _checked(y_true, y_pred, groups, num_groups, weights, loss)
    means, present = _group_losses(true, pred, grp, w, num_groups, loss, axis_name)
    return jnp.max(jnp.where(present, means, 0.0))


def group_loss_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    loss: str = "squared",
    axis_name: Hashable | None = None,
) -> Array:
    """The gap between the largest and the smallest mean loss of a group.

    .. math:: \\max_g L_g - \\min_g L_g, \\qquad L_g = \\text{the weighted mean loss of group } g

    over non-empty groups (0 with fewer than two), with the squared or absolute error: the
    regression analogue of an accuracy gap (fairlearn's ``MetricFrame(...).difference()`` of
    ``mean_squared_error`` or ``mean_absolute_error``).

    Args:
      y_true: real targets, shape ``(n,)``.
      y_pred: predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      loss: ``"squared"`` or ``"absolute"``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``.

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import group_loss_difference
      >>> y = jnp.array([0.0, 1.0, 2.0, 3.0])
      >>> group_loss_difference(y, y + jnp.array([0.0, 1.0, 1.0, 3.0]), jnp.array([0, 0, 1, 1]),
      ...                       num_groups=2, loss="absolute")  # MAE 0.5 vs 2
      Array(1.5, dtype=float32)
    """
    true, pred, grp, w = _checked(y_true, y_pred, groups, num_groups, weights, loss)
    means, present = _group_losses(true, pred, grp, w, num_groups, loss, axis_name)
    big = jnp.finfo(means.dtype).max
    hi = jnp.max(jnp.where(present, means, -big))
    lo = jnp.min(jnp.where(present, means, big))
    return jnp.where(jnp.sum(present) >= 2, hi - lo, 0.0)
