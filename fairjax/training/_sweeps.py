r"""Sweeps: one model per penalty weight or per target, all trained at once with ``jax.vmap``.

:func:`pareto_sweep` traces a Pareto front over the penalty weight :math:`\lambda` and
:func:`constrained_sweep` over the requested bound :math:`\varepsilon`; each is one compiled,
batched program that reads the data once per step for all models.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fairjax import _loop
from fairjax import _validation as v

from ._lagrangian import (
    _MULTIPLIER_OPTIMIZER,
    _run_constrained,
    _task_and_dual_terms,
    check_iterate,
    constraint_shape,
    make_constrained_step,
)
from ._penalized import Array, ArrayLike, Model, Objective, PyTree, _forward, penalized


class SweepResult(NamedTuple):
    """The outcome of :func:`pareto_sweep`: one model per penalty weight.

    Attributes:
      params: the parameters, each leaf with a leading axis of size ``K``.
      lams: the penalty weights, shape ``(K,)``.
      loss: the task loss of each model on the training data, shape ``(K,)``.
      penalty: the penalty of each model on the training data, shape ``(K,)``.
      finite: per model, whether its parameters, loss and penalty are finite, a NumPy bool
        array of shape ``(K,)`` (a :class:`DivergenceWarning` names the models that are not).
      model_state: a stateful model's final state, each leaf with a leading axis of size
        ``K`` (``None`` for a stateless model): what the loss and penalty were measured with.

    .. versionchanged:: 0.1.0
       ``model_state`` (a stateful model's trained state was dropped).
    """

    params: PyTree
    lams: Array
    loss: Array
    penalty: Array
    finite: Any = True
    model_state: PyTree = None


def _train_fixed_steps(
    loss_fn, penalty_fn, optimizer, num_steps, model, batch_size, params, data, key, ms, lam
):
    """Penalised training for ``num_steps`` steps under the loop's mini-batching convention
    (pure, vmappable over ``lam``); a stateful ``model`` when ``ms`` is not None."""
    objective = penalized(loss_fn, penalty_fn, lam, model=model)
    params, ms, _ = _loop.train_steps(
        objective,
        optimizer,
        params,
        data,
        ms,
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
    )
    out, _ = _forward(model, params, data, None, ms)
    return params, loss_fn(out, data), penalty_fn(out, data), ms


def pareto_sweep(
    loss_fn: Objective,
    penalty_fn: Objective,
    params: PyTree,
    data: PyTree,
    lams: ArrayLike,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int = 1000,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    model: Model | None = None,
) -> SweepResult:
    r"""Trains one model per penalty weight, all at once with ``jax.vmap`` (one compilation).

    For each :math:`\lambda_k` it minimises :math:`L(\theta) + \lambda_k P(\theta)` from the
    same initial parameters with ``num_steps`` updates of ``optimizer``; the K trainings are one
    batched program, so the data is read once per step for all models and the result equals K
    separate calls of the same training (up to floating-point reassociation). Mini-batches,
    per-step keys and a stateful ``model`` follow the convention of :func:`fit` and
    :func:`fit_constrained` (``batch_size``, ``key``, ``model_state``); every model sees the
    same mini-batches and keys. The returned loss and penalty are measured on the full data.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      penalty_fn: ``penalty_fn(params, batch) -> scalar``.
      params: initial parameters, shared by every model.
      data: the training batch (PyTree of arrays).
      lams: penalty weights, shape ``(K,)``.
      optimizer: optax optimizer.
      num_steps: number of updates per model.
      batch_size: rows per mini-batch (``None``: full batch); needs ``key``.
      key: PRNG key of the shuffling and of the per-step keys.
      model_state: initial state of a stateful ``model`` (see :func:`fit_constrained`).
      model: optional ``model(params, batch) -> outputs``; the loss and the penalty then
        take ``(outputs, batch)`` and the model runs once per step (see :func:`penalized`).

    Returns:
      A :class:`SweepResult`; ``jax.tree.map(lambda x: x[k], result.params)`` is model ``k``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import pareto_sweep
      >>> res = pareto_sweep(lambda p, b: (p - 1.0) ** 2, lambda p, b: p**2, jnp.asarray(0.0),
      ...                    None, jnp.array([0.0, 1.0, 3.0]), optimizer=optax.sgd(0.1),
      ...                    num_steps=200)
      >>> res.params.round(4)  # minimiser 1 / (1 + lam)
      Array([1.  , 0.5 , 0.25], dtype=float32)
    """
    v.check_scalars(lams, "lams", nonnegative=True)
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    lams = jnp.asarray(lams)
    if lams.ndim != 1 or not lams.size:
        raise ValueError(f"`lams` must have shape (K,), K >= 1, got {lams.shape}.")
    if not jnp.issubdtype(lams.dtype, jnp.floating):
        lams = lams.astype(jnp.result_type(float))
    batch_size = _check_batching(data, batch_size, key, model_state)
    p, loss, pen, ms = _sweep(
        loss_fn=loss_fn,
        penalty_fn=penalty_fn,
        optimizer=optimizer,
        num_steps=num_steps,
        model=model,
        batch_size=batch_size,
        params=params,
        data=data,
        key=key,
        model_state=model_state,
        lams=lams,
    )
    ok = _loop.finite("training.pareto_sweep", p, loss, pen, batched=True)
    return SweepResult(p, lams, loss, pen, ok, ms)


def _check_batching(data, batch_size, key, model_state):
    """The mini-batching arguments of the sweeps, checked as :func:`fit_constrained` does."""
    if (batch_size is not None or model_state is not None) and key is None:
        raise ValueError("`key` is required with `batch_size` or `model_state`.")
    if batch_size is None:
        if jax.tree_util.tree_leaves(data):
            _loop.num_rows(data)  # the arrays' rows agree (a clear error, not a JAX one)
        return None
    n = _loop.num_rows(data)
    return v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)


@functools.partial(
    jax.jit,
    static_argnames=("loss_fn", "penalty_fn", "optimizer", "num_steps", "model", "batch_size"),
)
def _sweep(
    *,
    loss_fn,
    penalty_fn,
    optimizer,
    num_steps,
    model,
    batch_size,
    params,
    data,
    key,
    model_state,
    lams,
):
    train = functools.partial(
        _train_fixed_steps, loss_fn, penalty_fn, optimizer, num_steps, model, batch_size
    )
    return jax.vmap(train, in_axes=(None, None, None, None, 0))(
        params, data, key, model_state, lams
    )


class ConstrainedSweepResult(NamedTuple):
    """The outcome of :func:`constrained_sweep`: one model per target.

    Attributes:
      params: the parameters, each leaf with a leading axis of size ``K``.
      multiplier: the final multipliers, shape ``(K,)``.
      targets: the targets, shape ``(K,)``.
      constraint: the dual constraint of each model on the training data, shape ``(K,)``;
        NaN for a model that is not ``finite``.
      finite: per model, whether its parameters, multiplier and constraint are finite, a
        NumPy bool array of shape ``(K,)`` (a :class:`DivergenceWarning` names the models
        that are not).
      model_state: a stateful model's final state, each leaf with a leading axis of size
        ``K`` (``None`` for a stateless model): what the constraint was measured with.

    .. versionchanged:: 0.1.0
       ``model_state`` (a stateful model's trained state was dropped).
    """

    params: PyTree
    multiplier: Array
    targets: Array
    constraint: Array
    finite: Any = True
    model_state: PyTree = None


def constrained_sweep(
    loss_fn: Objective,
    constraint_fn: Objective,
    params: PyTree,
    data: PyTree,
    targets: ArrayLike,
    *,
    optimizer: optax.GradientTransformation,
    multiplier_optimizer: optax.GradientTransformation | None = None,
    num_steps: int = 1000,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    dual_constraint_fn: Objective | None = None,
    iterate: str = "last",
    tolerance: float = 0.0,
    model: Model | None = None,
) -> ConstrainedSweepResult:
    r"""Primal-dual training to each of K targets :math:`\varepsilon_k` at once (``jax.vmap``).

    The batched version of :func:`fit_constrained` (scalar constraint): one compiled program
    trains one model per target, e.g. a front indexed by the requested DP gap instead of by
    :math:`\lambda`.

    Args:
      loss_fn: as in :func:`fit_constrained`; so are ``constraint_fn``, ``params``, ``data``,
        ``optimizer``, ``multiplier_optimizer``, ``num_steps``, ``batch_size``, ``key``,
        ``model_state``, ``dual_constraint_fn``, ``iterate``, ``tolerance`` (here only for
        ``iterate="best"``) and ``model`` (array data only: no stream).
      targets: the bounds, shape ``(K,)``.

    Returns:
      A :class:`ConstrainedSweepResult`.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import constrained_sweep
      >>> res = constrained_sweep(lambda p, b: (p - 2.0) ** 2, lambda p, b: p, jnp.asarray(0.0),
      ...                         None, jnp.array([0.5, 1.0, 3.0]), optimizer=optax.sgd(0.1),
      ...                         multiplier_optimizer=optax.sgd(0.1), num_steps=500)
      >>> res.params.round(2)  # min((p-2)^2) s.t. p <= target
      Array([0.5, 1. , 2. ], dtype=float32)
    """
    v.check_scalars(targets, "targets")
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    v.check_scalar(tolerance, "tolerance", nonnegative=True)
    targets = jnp.asarray(targets)
    if targets.ndim != 1 or not targets.size:
        raise ValueError(f"`targets` must have shape (K,), K >= 1, got {targets.shape}.")
    targets = targets.astype(jnp.result_type(float))
    check_iterate(iterate)
    if multiplier_optimizer is None:
        multiplier_optimizer = _MULTIPLIER_OPTIMIZER
    dual_fn = constraint_fn if dual_constraint_fn is None else dual_constraint_fn
    batch_size = _check_batching(data, batch_size, key, model_state)
    if constraint_shape(constraint_fn, model, params, data, key, model_state) != ():
        raise ValueError(
            "`constraint_fn` must return a scalar in a sweep (one target per model); for "
            "several constraints use fit_constrained."
        )
    p, mu, c, ms = _constrained_sweep(
        loss_fn=loss_fn,
        constraint_fn=constraint_fn,
        dual_fn=dual_fn,
        optimizer=optimizer,
        mopt=multiplier_optimizer,
        num_steps=num_steps,
        iterate=iterate,
        model=model,
        batch_size=batch_size,
        params=params,
        data=data,
        key=key,
        model_state=model_state,
        targets=targets,
        tolerance=jnp.asarray(tolerance, targets.dtype),
    )
    ok = _loop.finite("training.constrained_sweep", p, mu, c, batched=True)
    # A diverged model's constraint means nothing (hard decisions of NaN logits read 0).
    return ConstrainedSweepResult(p, mu, targets, jnp.where(ok, c, jnp.nan), ok, ms)


@functools.partial(
    jax.jit,
    static_argnames=(
        "loss_fn",
        "constraint_fn",
        "dual_fn",
        "optimizer",
        "mopt",
        "num_steps",
        "iterate",
        "model",
        "batch_size",
    ),
)
def _constrained_sweep(
    *,
    loss_fn,
    constraint_fn,
    dual_fn,
    optimizer,
    mopt,
    num_steps,
    iterate,
    model,
    batch_size,
    params,
    data,
    key,
    model_state,
    targets,
    tolerance,
):
    def one(target):
        step = make_constrained_step(
            loss_fn,
            constraint_fn,
            target=target,
            optimizer=optimizer,
            multiplier_optimizer=mopt,
            dual_constraint_fn=dual_fn,
            model=model,
        )
        mu0 = jnp.zeros((), targets.dtype)
        state, (best, best_step), _ = _run_constrained(
            step,
            params,
            data,
            optimizer,
            mopt,
            mu0,
            target + tolerance,
            num_steps,
            iterate == "best",
            functools.partial(_task_and_dual_terms, loss_fn, dual_fn, model),
            batch_size,
            key,
            model_state,
        )
        chosen = state.params
        if iterate == "best":
            chosen = jax.tree.map(lambda b, last: jnp.where(best_step >= 0, b, last), best, chosen)
        out, _ = _forward(model, chosen, data, None, state.model_state)
        return chosen, state.multiplier, dual_fn(out, data), state.model_state

    return jax.vmap(one)(targets)
