r"""Per-example task losses for binary classification and regression, optax style.

Each loss takes the model's outputs and the targets and returns one value per example, leaving
the reduction to the caller; :func:`weighted_mean` reduces them with sample weights and a
``where=`` mask (a masked-out or zero-weight row contributes nothing,
and an all-masked batch gives 0, not NaN).

| loss | value of one example | labels |
|---|---|---|
| :func:`logistic` | :math:`\log(1 + e^{z}) - y z` | ``y`` in [0, 1] |
| :func:`hinge` | :math:`\max(0, 1 - t z)` | ``y`` in {0, 1} or {-1, +1} |
| :func:`squared_hinge` | :math:`\max(0, 1 - t z)^2` | ``y`` in {0, 1} or {-1, +1} |
| :func:`squared` | :math:`(z - y)^2` | real |

For the margin losses :math:`t = +1` where ``y == 1`` and :math:`-1` elsewhere, so 0/1 and
-1/+1 labels give the same loss; a NaN label gives a NaN loss, as in the other losses. A loss
keeps its input's float dtype, as optax's do: integer inputs give float32, and bfloat16 or
float16 stay (where a squared error of 300 overflows float16: cast to float32 first for a loss
that must not).

Example:
  >>> import jax.numpy as jnp
  >>> from fairjax import losses
  >>> z, y = jnp.array([2.0, -1.0, 0.5]), jnp.array([1.0, 0.0, 0.0])
  >>> losses.weighted_mean(losses.hinge(z, y), weights=jnp.array([1.0, 1.0, 2.0]))
  Array(0.75, dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax._nan import propagate_nan

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "LOSSES",
    "hinge",
    "logistic",
    "squared",
    "squared_hinge",
    "weighted_mean",
]


def _float(z: ArrayLike, name: str = "the input") -> Array:
    z = jnp.asarray(z)
    # A static check (the dtype is known at trace time): a complex array would lose its
    # imaginary part in the cast below.
    if jnp.issubdtype(z.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {z.dtype}.")
    return z.astype(jnp.result_type(z.dtype, float))


def logistic(logits: ArrayLike, labels: ArrayLike) -> Array:
    r"""Logistic loss (binary cross-entropy) of each logit against a 0/1 or soft label.

    .. math:: \ell(z, y) = \log(1 + e^{z}) - y z = \max(z, 0) - y z + \log(1 + e^{-|z|})

    The values of ``optax.sigmoid_binary_cross_entropy``, with one exponential and one
    logarithm per element instead of two of each (cheaper where a linear model's step is
    dominated by elementwise work). Stable for any logit: an infinite logit costs 0 on its
    label's side and infinity on the other (its gradient in the labels is NaN). The gradient
    is :math:`\sigma(z) - y`, :math:`1/2 - y` at :math:`z = 0`.

    Args:
      logits: scores on the logit scale, any shape.
      labels: targets in [0, 1], broadcastable to ``logits``.

    Returns:
      The loss of each element, in the logits' float dtype (see the module: integers give
      float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.losses import logistic
      >>> logistic(jnp.array([0.0, 2.0, -100.0]), jnp.array([1.0, 1.0, 1.0]))
      Array([  0.6931472,   0.126928 , 100.       ], dtype=float32)

    References:
      Cox, *The regression analysis of binary sequences*, JRSS B, 1958.
    """
    z = _float(logits, "`logits`")
    y = _float(labels, "`labels`")
    # -1/+1 labels would give a negative "loss" (-0.03 at a logit of 4): refused where known.
    v.check_unit_interval(y, "labels", nan_ok=True)
    y = y.astype(z.dtype)
    # The branches as selects on one sign test, not max(z, 0) and |z|: their derivatives at
    # z = 0 are 0 in JAX, which would give the gradient -y instead of 1/2 - y at the zero
    # logits of a zero initialisation.
    positive = z >= 0
    coefficient = jnp.where(positive, 1 - y, -y)
    # 0 * inf where an infinite logit meets its own label: that loss is 0, not NaN;
    # finite logits keep the product, so gradients in the labels are unchanged.
    linear = jnp.where(jnp.isinf(z) & (coefficient == 0), 0, coefficient * z)
    return linear + jnp.log1p(jnp.exp(-jnp.where(positive, z, -z)))


def _margin(scores: ArrayLike, labels: ArrayLike) -> Array:
    """``t z`` with ``t = +1`` where ``labels == 1`` and ``-1`` elsewhere (NaN for a NaN
    label, which is no label)."""
    z = _float(scores, "`scores`")
    y = _float(labels, "`labels`")
    return jnp.where(y == 1, z, jnp.where(jnp.isnan(y), jnp.nan, -z))


def hinge(scores: ArrayLike, labels: ArrayLike) -> Array:
    r"""Hinge loss of each score: :math:`\max(0, 1 - t z)`, :math:`t = \pm 1` from the label.

    Args:
      scores: decision values, any shape.
      labels: binary labels, 0/1 or -1/+1 (``1`` is the positive class), broadcastable.

    Returns:
      The loss of each element, in the scores' float dtype (see the module: integers give
      float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.losses import hinge
      >>> hinge(jnp.array([2.0, 0.5, 0.5]), jnp.array([1, 1, -1]))
      Array([0. , 0.5, 1.5], dtype=float32)

    References:
      Cortes, Vapnik, *Support-vector networks*, Machine Learning, 1995.
    """
    return jnp.maximum(1.0 - _margin(scores, labels), 0.0)


def squared_hinge(scores: ArrayLike, labels: ArrayLike) -> Array:
    r"""Squared hinge loss of each score: :math:`\max(0, 1 - t z)^2` (differentiable).

    Args:
      scores: decision values, any shape.
      labels: binary labels, 0/1 or -1/+1 (``1`` is the positive class), broadcastable.

    Returns:
      The loss of each element, in the scores' float dtype (see the module: integers give
      float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.losses import squared_hinge
      >>> squared_hinge(jnp.array([2.0, 0.5, 0.5]), jnp.array([1, 1, 0]))
      Array([0.  , 0.25, 2.25], dtype=float32)
    """
    return jnp.square(hinge(scores, labels))


def squared(predictions: ArrayLike, targets: ArrayLike) -> Array:
    r"""Squared error of each prediction: :math:`(z - y)^2`.

    Args:
      predictions: predicted values, any shape.
      targets: targets, broadcastable to ``predictions``.

    Returns:
      The loss of each element, in the predictions' float dtype (see the module: integers
      give float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.losses import squared
      >>> squared(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]))
      Array([1., 4.], dtype=float32)
    """
    z = _float(predictions, "`predictions`")
    return jnp.square(z - _float(targets, "`targets`").astype(z.dtype))


#: Every loss by name, for functions that take ``loss="..."``.
LOSSES = {
    "logistic": logistic,
    "hinge": hinge,
    "squared_hinge": squared_hinge,
    "squared": squared,
}


def weighted_mean(
    values: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""The weighted mean of per-example losses, :math:`\sum_i w_i m_i \ell_i / \sum_i w_i m_i`.

    Args:
      values: per-example losses, shape ``(n,)``, or ``(n, ...)`` (several losses per
        example, e.g. per task): the mean is over every entry, each weighted by its row's
        weight.
      weights: optional non-negative sample weights ``(n,)`` (default 1).
      where: optional boolean mask ``(n,)`` (rows) or of the shape of ``values`` (entries):
        where it is False is left out (optax's ``where=``).

    Returns:
      A scalar; 0 when every row is masked or has zero weight (never NaN), with finite
      gradients.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.losses import weighted_mean
      >>> weighted_mean(jnp.array([1.0, 3.0, 100.0]), where=jnp.array([True, True, False]))
      Array(2., dtype=float32)
    """
    x = _float(values, "`values`")
    # float16 sums overflow at 65,504 (70,000 rows of weight 1): they are taken in float32, as
    # jnp.mean takes them, and the mean is given back in the values' dtype.
    acc = jnp.promote_types(x.dtype, jnp.float32)
    w = jnp.ones(x.shape, acc) if weights is None else _rows(_weights(weights, x, acc), x)
    if where is not None:
        mask = v.as_array(where, "where")
        if mask.shape != x.shape and mask.shape != x.shape[:1]:
            raise ValueError(
                f"`where` must have shape {x.shape[:1]} (rows) or {x.shape} (entries) of "
                f"`values`, got {mask.shape}."
            )
        if (
            mask.dtype != jnp.bool_
            and v.is_concrete(mask)
            and not v.holds(lambda xp, a: xp.all((a == 0) | (a == 1)), mask)
        ):
            raise ValueError("`where` must be a boolean mask (or hold only 0 and 1).")
        w = jnp.where(_rows(mask, x), w, 0)
    w = jnp.broadcast_to(w, x.shape)  # each entry counts with its row's weight
    # A masked row may hold inf or NaN (padding): select it out rather than multiply by 0.
    total = jnp.sum(jnp.where(w > 0, w * x.astype(acc), 0))
    mean = gs.safe_divide(total, jnp.sum(w))
    # NaN in, NaN out (under jit, where the weights cannot be checked): a NaN weight would
    # otherwise leave the numerator and turn the mean into 0.
    mean = mean if weights is None else propagate_nan(mean, w)
    return mean.astype(x.dtype)


def _rows(a: Array, x: Array) -> Array:
    """A per-row ``(n,)`` array broadcast over the trailing axes of ``x`` ``(n, ...)``."""
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))


def _weights(weights: ArrayLike, x: Array, dtype) -> Array:
    """Sample weights of one row each, finite and non-negative where they are concrete."""
    w = v.as_array(weights, "weights")
    if w.shape != x.shape[:1]:
        raise ValueError(
            f"`weights` must have shape {x.shape[:1]} (one per row of `values`), got {w.shape}."
        )
    v.check_finite(w, "weights")
    if v.is_concrete(w) and not v.holds(lambda xp, a: xp.all(a >= 0), w):
        raise ValueError(f"`weights` must be non-negative, got minimum {float(jnp.min(w)):g}.")
    return w.astype(dtype)
