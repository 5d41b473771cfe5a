"""The one optimizer loop under every fairjax trainer (private: the trainers are the API).

``value_and_grad`` of an objective, an optax update, ``apply_updates``, in a ``lax.scan``: the
penalised and Lagrangian trainers, FERM's linear trainer, the representation trainer, the
estimators and the demo all run their steps through :func:`make_step` and :func:`run`, so a
change to how a step is taken (an ``apply`` hook, auxiliary outputs, a mini-batch schedule)
is made once.

The objective has the signature ``objective(params, x)``: ``x`` is what the loop feeds each
step (the scanned slice of ``xs``: a mini-batch, a PRNG key, ``None`` for a full-batch loop
over closed-over data).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array
PyTree = Any
Apply = Callable[[PyTree, PyTree], PyTree]


def make_step(
    objective: Callable[..., Any],
    optimizer: optax.GradientTransformation,
    *,
    has_aux: bool = False,
    apply: Apply | None = None,
) -> Callable[..., tuple[PyTree, PyTree, Any]]:
    """One optimizer update: ``step(params, opt_state, x) -> (params, opt_state, out)``.

    ``out`` is the objective's value before the update, or ``(value, aux)`` with ``has_aux``.
    ``apply(params, updates)`` replaces ``optax.apply_updates`` (e.g. a projection after the
    update).
    """
    grad = jax.value_and_grad(objective, has_aux=has_aux)
    apply = optax.apply_updates if apply is None else apply

    def step(params, opt_state, x=None):
        out, grads = grad(params, x)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return apply(params, updates), opt_state, out

    return step


def run(
    objective: Callable[..., Any],
    optimizer: optax.GradientTransformation,
    params: PyTree,
    *,
    num_steps: int | None = None,
    xs: PyTree = None,
    opt_state: PyTree = None,
    has_aux: bool = False,
    apply: Apply | None = None,
) -> tuple[PyTree, PyTree, Any]:
    """``num_steps`` optimizer updates in one ``lax.scan``; traceable (call it under ``jit``).

    Args:
      objective: ``objective(params, x) -> scalar`` (or ``(scalar, aux)`` with ``has_aux``).
      optimizer: any optax ``GradientTransformation``.
      params: initial parameters.
      num_steps: number of steps when ``xs`` is None.
      xs: per-step inputs with the steps on the leading axis (mini-batches, keys); ``None``
        feeds ``None`` to every step.
      opt_state: the optimizer state to start from (default ``optimizer.init(params)``).
      has_aux: the objective returns ``(value, aux)``.
      apply: replaces ``optax.apply_updates``.

    Returns:
      ``(params, opt_state, outs)``: ``outs`` stacks each step's value (and aux) before its
      update, with the steps on the leading axis.
    """
    step = make_step(objective, optimizer, has_aux=has_aux, apply=apply)
    state = optimizer.init(params) if opt_state is None else opt_state

    def body(carry, x):
        p, s, out = step(*carry, x)
        return (p, s), out

    (params, state), outs = jax.lax.scan(body, (params, state), xs, length=num_steps)
    return params, state, outs


def shuffled_batches(data: PyTree, key: Array, *, batch_size: int) -> PyTree:
    """The rows of ``data`` shuffled by ``key`` and cut into ``n // batch_size`` mini-batches.

    Leaves get a leading axis of mini-batches (``(num_batches, batch_size, ...)``), ready to be
    the ``xs`` of :func:`run`; the last ``n % batch_size`` shuffled rows are dropped.
    """
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    num_batches = n // batch_size
    perm = jax.random.permutation(key, n)[: num_batches * batch_size]
    return jax.tree_util.tree_map(
        lambda x: jnp.take(x, perm, axis=0).reshape(num_batches, batch_size, *x.shape[1:]), data
    )


class DivergenceWarning(RuntimeWarning):
    """A trainer returned parameters, or a final loss or constraint, that are not finite.

    Every fairjax trainer (``training.fit``, ``fit_constrained``, ``fit_rate_constrained``,
    ``fit_rate_constrained_mixture``, ``pareto_sweep``, ``constrained_sweep``,
    ``ferm.fit_linear``, ``representation.train``, the estimators) checks its result through
    :func:`finite` and warns with this class; results that have a ``finite`` field set it to
    False and report ``satisfied=False``. Filter it like any warning, e.g.
    ``warnings.simplefilter("error", DivergenceWarning)`` to make divergence an error.
    """


def finite(where: str, *trees: PyTree, batched: bool = False) -> Any:
    """Whether every floating leaf of ``trees`` is finite; warns :class:`DivergenceWarning` if not.

    The one divergence check of every trainer. With ``batched`` the leaves carry a leading
    axis of models (a sweep) and the answer is a boolean array with one entry per model.

    Args:
      where: the public trainer's name, for the message (e.g. ``"training.fit_constrained"``).
      *trees: the returned parameters and the final losses/constraints (PyTrees; ``None``
        and non-floating leaves are skipped).
      batched: leaves have a leading axis of models.

    Returns:
      A Python bool, or with ``batched`` a NumPy bool array of shape ``(K,)``. Under a trace
      (a trainer called inside the user's ``jit``, e.g. a jitted ``pareto_sweep``) the same
      answer as a traced JAX boolean, without a warning: a compiled program cannot warn.
    """
    raw = [
        leaf
        for leaf in jax.tree_util.tree_leaves(trees)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    if any(isinstance(leaf, jax.core.Tracer) for leaf in raw):
        if batched:
            rows = [jnp.isfinite(leaf.reshape(leaf.shape[0], -1)).all(axis=1) for leaf in raw]
            return jnp.stack(rows).all(axis=0) if rows else jnp.ones((0,), bool)
        return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in raw])) if raw else True
    leaves = [np.asarray(leaf) for leaf in raw]
    if batched:
        ok = np.ones(leaves[0].shape[0] if leaves else 0, bool)
        for leaf in leaves:
            ok &= np.isfinite(leaf.reshape(leaf.shape[0], -1)).all(axis=1)
        bad = f"models {np.flatnonzero(~ok).tolist()} of the sweep have"
        diverged = not ok.all()
    else:
        ok = all(bool(np.isfinite(leaf).all()) for leaf in leaves)
        bad, diverged = "the result has", not ok
    if diverged:
        warnings.warn(
            f"training diverged: fairjax.{where}: {bad} non-finite parameters, loss or "
            "constraint (NaN or infinity in the data, or a learning rate too large); "
            "the result does not satisfy any bound.",
            DivergenceWarning,
            stacklevel=3,
        )
    return ok
