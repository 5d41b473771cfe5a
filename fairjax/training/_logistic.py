r"""A ready-made fair logistic regression for the trainers: linear model, log-loss, DP penalty."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import losses, penalties

from ._penalized import Array, PyTree

Outputs = tuple[Array, PyTree]


def logistic_regression(
    num_groups: int, *, l2: float, temperature: float, reduction: str = "max"
) -> tuple[
    Callable[[PyTree, PyTree], Outputs],
    Callable[[Outputs, PyTree], Array],
    Callable[[Outputs, PyTree], Array],
]:
    r"""A linear logistic regression with a demographic-parity penalty, in ``model=`` style.

    On batches ``(X, y, s)`` (features ``(n, d)``, 0/1 labels ``(n,)``, group ids ``(n,)``) and
    parameters ``{"w": (d,), "b": ()}``:

    .. math::

        z = X w + b, \qquad
        L = \frac{1}{n} \sum_i \ell(z_i, y_i) + \lambda_2 \lVert w \rVert^2, \qquad
        P = \operatorname{sigmoid\_rate\_difference}(z, s)

    with :math:`\ell` the logistic loss (:func:`fairjax.losses.logistic`) and :math:`P` the
    smooth demographic-parity gap of :func:`fairjax.penalties.sigmoid_rate_difference`. The
    model returns ``(logits, params)`` so the loss can read the weights; pass it as
    ``model=`` to :func:`penalized`, :func:`pareto_sweep`, :func:`fit_constrained` or
    :func:`constrained_sweep`, and the model runs once per step for both terms.

    Args:
      num_groups: static number of groups.
      l2: the weight :math:`\lambda_2` of the squared norm of ``w``.
      temperature: the sigmoid's temperature in the penalty.
      reduction: the penalty's reduction over groups (``"max"``, ``"mean"``, ...; see
        :func:`fairjax.penalties.sigmoid_rate_difference`).

    Returns:
      ``(model, loss_fn, penalty_fn)``: ``model(params, batch) -> (logits, params)``,
      ``loss_fn(outputs, batch) -> scalar`` and ``penalty_fn(outputs, batch) -> scalar``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax import training
      >>> model, loss_fn, penalty_fn = training.logistic_regression(2, l2=1e-4, temperature=0.5)
      >>> X = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
      >>> batch = (X, jnp.array([1.0, 0.0, 1.0, 0.0]), jnp.array([0, 0, 1, 1]))
      >>> res = training.pareto_sweep(loss_fn, penalty_fn, {"w": jnp.zeros(2), "b": jnp.zeros(())},
      ...                             batch, jnp.array([0.0, 1.0]), optimizer=optax.adam(0.1),
      ...                             num_steps=100, model=model)
      >>> res.params["w"].shape
      (2, 2)
    """
    v.check_scalar(l2, "l2", nonnegative=True)
    v.check_scalar(temperature, "temperature", positive=True)

    def model(p: PyTree, batch: PyTree) -> Outputs:
        return batch[0] @ p["w"] + p["b"], p

    def loss_fn(out: Outputs, batch: PyTree) -> Array:
        z, p = out
        return losses.logistic(z, batch[1]).mean() + l2 * jnp.sum(p["w"] ** 2)

    def penalty_fn(out: Outputs, batch: PyTree) -> Array:
        return penalties.sigmoid_rate_difference(
            out[0], batch[2], num_groups=num_groups, temperature=temperature, reduction=reduction
        )

    return model, loss_fn, penalty_fn
