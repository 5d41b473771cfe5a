"""A differentiable parity penalty for K-class models: softmax rates, one-vs-rest."""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax.metrics import class_group_rates

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["softmax_rate_difference"]


def softmax_rate_difference(
    logits: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    criterion: str | criteria.Criterion = "demographic_parity",
    temperature: float = 1.0,
    reduction: str = "max",
    axis_name: Hashable | None = None,
) -> Array:
    r"""Group gaps in each class's rate, with the softmax of the logits for the decisions.

    The smooth surrogate of :func:`fairjax.metrics.multiclass_parity_difference`: the class
    probabilities :math:`P = \operatorname{softmax}(z / T)` stand for the decisions in
    :func:`fairjax.metrics.class_group_rates`, and the penalty is the largest gap between
    groups of each class's (one-vs-rest) rate. As :math:`T \to 0` the softmax becomes the
    argmax and the penalty the metric of the hard decisions; at :math:`T = 1` it is the gap
    of the model's expected decisions. ``reduction="max"`` penalises the worst class (and
    condition), ``"mean"`` the mean over classes of each class's worst condition.

    Args:
      logits: ``(n, K)`` scores of the ``K`` classes.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: class ids ``(n,)`` or one-hot ``(n, K)``; required when the criterion
        conditions on labels.
      weights: optional non-negative sample weights ``(n,)``.
      criterion: a criterion of :mod:`fairjax.criteria` or its name.
      temperature: :math:`T > 0`.
      reduction: ``"max"`` or ``"mean"``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``.

    Returns:
      A scalar in [0, 1], differentiable in ``logits``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.penalties import softmax_rate_difference
      >>> z = jnp.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0]])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> hard = softmax_rate_difference(z, s, num_groups=2, temperature=1e-3)
      >>> print(f"{float(hard):.2f}")  # the metric of the argmax decisions
      0.50
      >>> bool(jnp.all(jnp.isfinite(jax.grad(softmax_rate_difference)(z, s, num_groups=2))))
      True
    """
    z = v.as_array(logits, "logits", ndim=2)
    v.check_finite(z, "logits")  # named here: the softmax below would make it y_pred's NaN
    v.check_scalar(temperature, "temperature", positive=True)
    criteria.check_option(reduction, "reduction", ("max", "mean"))
    probs = jax.nn.softmax(z.astype(v.float_dtype(z)) / temperature, axis=-1)
    rates, counts = class_group_rates(
        probs,
        groups,
        labels,
        num_classes=z.shape[1],
        criterion=criterion,
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
    )
    gaps = jnp.max(criteria.largest_gap(rates, counts), axis=0)  # (K,)
    return jnp.max(gaps) if reduction == "max" else jnp.mean(gaps)
