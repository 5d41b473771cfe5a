"""Linear FERM: a classifier trained with optax under the exact constraint."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, criteria, losses
from fairjax import _validation as v
from fairjax.ferm._directions import _CRITERIA, _legacy_criterion, fairness_direction
from fairjax.ferm._model import FERMModel, _apply_map
from fairjax.ferm._projection import (
    _check_eps,
    _orthonormal_basis,
    project_gradient,
    project_orthogonal,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_LOSSES = ("hinge", "squared_hinge", "logistic")


# The default step budget of fit_linear and fit_kernel's feature-space solver.
_NUM_STEPS = 1000


def _step_budget(num_steps: int, steps: int | None, *, where: str, stacklevel: int = 3) -> int:
    """``num_steps``, or the deprecated ``steps=`` with a warning (at the public caller's line)."""
    if steps is None:
        return v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    if num_steps != _NUM_STEPS:
        raise ValueError(f"{where}: give the step budget once, with `num_steps=`.")
    warnings.warn(
        f"{where}: `steps=` is deprecated; use `num_steps=`.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return v.check_scalar(steps, "steps", integer=True, positive=True)


def _fit_options(
    criterion, condition, num_steps: int, steps: int | None, learning_rate, *, where: str
) -> tuple[criteria.Criterion, int]:
    """The criterion (old ``condition=`` deprecated) and step budget of a FERM trainer, checked.

    Shared by :func:`fit_linear` and ``fit_kernel``: ``where`` names the public caller in the
    messages and warnings.
    """
    crit = criteria.resolve(
        criterion,
        where=where,
        default="equal_opportunity",
        allowed=_CRITERIA,
        stacklevel=4,
        **_legacy_criterion(condition, None),
    )
    num_steps = _step_budget(num_steps, steps, where=where, stacklevel=4)
    v.check_scalar(learning_rate, "learning_rate", positive=True)
    return crit, num_steps


def _optimizer(
    U: Array, *, eps: float, num_steps: int, learning_rate: Array, fit_intercept: bool,
    max_iter: int,
) -> tuple[optax.GradientTransformation, Callable | None]:  # fmt: skip
    """Projected Adam: the optax transformation, and the ``apply`` hook of the loop (or None).

    ``eps == 0``: the gradient and the updated weights are projected onto the complement of
    span(U) through an orthonormal basis computed once (the iteration of the ``eps > 0`` chain,
    without a pseudo-inverse per step: cheaper to run and to compile); the projection after the
    update is the loop's ``apply`` hook.
    """
    schedule = optax.cosine_decay_schedule(learning_rate, num_steps, alpha=1e-3)
    adam = optax.chain(
        optax.adam(schedule),
        optax.masked(optax.set_to_zero(), {"w": False, "b": not fit_intercept}),
    )
    if eps != 0:
        mask = {"w": True, "b": False}
        tx = optax.chain(
            project_gradient(U, eps=eps, mask=mask),
            adam,
            project_orthogonal(U, eps=eps, mask=mask, max_iter=max_iter),
        )
        return tx, None
    B = _orthonormal_basis(U)

    def proj(w):
        return w - B.T @ (B @ w)

    def project_grad(g, state, params=None):
        del params
        return {"w": proj(g["w"]), "b": g["b"]}, state

    def apply(params, updates):
        new = optax.apply_updates(params, updates)
        return {"w": proj(new["w"]), "b": new["b"]}

    project_first = optax.GradientTransformation(lambda _: optax.EmptyState(), project_grad)
    return optax.chain(project_first, adam), apply


@functools.partial(
    jax.jit, static_argnames=("eps", "loss", "num_steps", "fit_intercept", "max_iter")
)
def _train(
    Phi: Array,
    ysign: Array,
    sw: Array,
    U: Array,
    *,
    C: Array,
    eps: float,
    loss: str,
    num_steps: int,
    learning_rate: Array,
    fit_intercept: bool,
    max_iter: int = 100,
) -> tuple[Array, Array, Array]:
    """Projected Adam on C * sum_i sw_i loss(f_i, y_i) + 0.5 ||w||^2 (divided by sum sw).

    ``num_steps`` is the step budget of the loop; ``max_iter`` caps the coordinate-descent
    sweeps of each slab projection (``eps > 0``), an inner solver's iterations.
    """
    ell = losses.LOSSES[loss]
    total = jnp.sum(sw)
    # fairjax.losses.logistic takes 0/1 targets; the margin losses take the -1/+1 labels as is.
    targets = (ysign + 1) / 2 if loss == "logistic" else ysign

    def objective(params, _):
        f = Phi @ params["w"] + params["b"]
        data = C * jnp.sum(sw * ell(f, targets))
        return (data + 0.5 * jnp.sum(params["w"] ** 2)) / total

    tx, apply = _optimizer(
        U, eps=eps, num_steps=num_steps, learning_rate=learning_rate,
        fit_intercept=fit_intercept, max_iter=max_iter,
    )  # fmt: skip
    params = {"w": jnp.zeros(Phi.shape[1], Phi.dtype), "b": jnp.zeros((), Phi.dtype)}
    params, _, values = _loop.run(objective, tx, params, num_steps=num_steps, apply=apply)
    return params["w"], params["b"], values


def _prepare(X, y, groups, num_groups, weights, eps, C, loss):
    criteria.check_option(loss, "loss", _LOSSES)
    _check_eps(eps)
    v.check_scalar(C, "C", positive=True)
    X = v.as_array(X, "X", ndim=2)
    v.check_nonempty(X, "X")
    v.check_finite(X, "X")
    y = v.as_array(y, "y", ndim=1)
    v.check_length(y, X.shape[0], "y", "X")
    if v.is_concrete(y):
        values = set(np.unique(np.asarray(y)).tolist())
        if not values <= {0, 1} and not values <= {-1, 1}:
            raise ValueError(
                f"`y` must hold binary labels in {{0, 1}} or {{-1, +1}}, got {sorted(values)[:6]}."
            )
    ysign = jnp.where(y == 1, 1.0, -1.0)
    w = v.check_weights(weights, X.shape[0])
    dtype = v.float_dtype(X, w)
    sw = jnp.ones(X.shape[0], dtype) if w is None else w.astype(dtype)
    return X.astype(dtype), ysign.astype(dtype), sw


def fit_linear(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    C: float = 1.0,
    eps: float = 0.0,
    loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
    criterion: str | criteria.Criterion | None = None,
    weights: ArrayLike | None = None,
    feature_map: Any = None,
    fit_intercept: bool = True,
    num_steps: int = _NUM_STEPS,
    learning_rate: float = 0.1,
    condition: Literal["positive", "all"] | None = None,
    steps: int | None = None,
) -> FERMModel:
    r"""Linear FERM, trained with optax under the exact constraint.

    .. math::

        \min_{w, b}\; C \sum_i s_i\, \ell\big(y_i(\langle w, \phi(x_i)\rangle + b)\big)
        + \tfrac12\|w\|^2
        \quad\text{s.t.}\quad |\langle w, u_k\rangle| \le \varepsilon,

    with :math:`\ell` the hinge, squared hinge or logistic loss (``C`` has the SVM meaning),
    :math:`u_k` the :func:`fairness_direction` of :math:`\phi(X)`, solved by full-batch Adam
    with a cosine-decayed step and :func:`project_orthogonal` after every step (``num_steps``
    steps), so the returned weights satisfy the constraint exactly. The hinge loss is
    non-smooth: the optimum is approached, not reached; the constraint always holds.

    Args:
      X: features ``(n, d)``.
      y: labels ``(n,)`` in {0, 1} or {-1, +1}; 1 is the positive class.
      groups: group ids ``(n,)`` or membership ``(n, G)``.
      num_groups: static number of groups.
      C: inverse regularisation strength (> 0).
      eps: constraint tolerance (>= 0): the largest allowed gap in mean output between the
        reference group and any other, on the positives.
      loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"``.
      criterion: the criterion whose rows' mean outputs the constraint equalises, as in
        :func:`fairness_direction` (default ``"equal_opportunity"``).
      weights: optional sample weights ``(n,)``.
      feature_map: optional fitted map :math:`\phi` (from :mod:`fairjax.kernels`); default the
        identity.
      fit_intercept: learn the bias ``b``.
      num_steps: the step budget: the number of Adam steps.
      learning_rate: initial Adam step size.
      condition: deprecated, use ``criterion=``: ``"positive"`` is ``"equal_opportunity"``,
        ``"all"`` is ``"demographic_parity"``.
      steps: deprecated, use ``num_steps=``.

    Returns:
      A :class:`FERMModel`; evaluate it with :func:`decision_function`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax import ferm
      >>> X = jax.random.normal(jax.random.key(0), (200, 3))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> y = (X[:, 0] + X[:, 1] > 0).astype(jnp.int32)
      >>> model = ferm.fit_linear(X, y, s, num_groups=2, num_steps=200)
      >>> u = ferm.fairness_direction(X, y, s, num_groups=2)
      >>> bool(jnp.abs(u @ model.weights)[0] < 1e-5)
      True

    References:
      Donini et al., NeurIPS 2018, problem (4) with the linear-loss constraint.
    """
    crit, num_steps = _fit_options(
        criterion, condition, num_steps, steps, learning_rate, where="ferm.fit_linear"
    )
    X, ysign, sw = _prepare(X, y, groups, num_groups, weights, eps, C, loss)
    Phi = X if feature_map is None else _apply_map(feature_map, X)
    U = fairness_direction(Phi, ysign, groups, num_groups=num_groups, criterion=crit,
                           weights=weights)  # fmt: skip
    w, b, values = _train(
        Phi,
        ysign,
        sw,
        U.astype(Phi.dtype),
        C=jnp.asarray(C, Phi.dtype),
        eps=float(eps),
        loss=loss,
        num_steps=num_steps,
        learning_rate=jnp.asarray(learning_rate, Phi.dtype),
        fit_intercept=fit_intercept,
    )
    _loop.finite("ferm.fit_linear", w, b, values[-1:])  # warns DivergenceWarning if not
    return FERMModel(feature_map, w, b, U, jnp.asarray(num_steps))
