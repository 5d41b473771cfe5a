"""The one optimizer loop under every fairjax trainer (private: the trainers are the API).

``value_and_grad`` of an objective, an optax update, ``apply_updates``, in a ``lax.scan``: the
penalised and Lagrangian trainers, FERM's linear trainer, the representation trainer, the
estimators and the demo all run their steps through :func:`make_step` and :func:`run`, so a
change to how a step is taken (an ``apply`` hook, auxiliary outputs, a mini-batch schedule)
is made once.

The objective has the signature ``objective(params, x)``: ``x`` is what the loop feeds each
step (the scanned slice of ``xs``: a mini-batch, a PRNG key, ``None`` for a full-batch loop
over closed-over data).

The one mini-batching convention of the trainers is :func:`scan_steps`: ``num_steps`` updates,
full batch by default, or with ``batch_size`` and ``key`` shuffled mini-batches drawn epoch by
epoch (every row once per epoch of ``n // batch_size`` steps), with an optional per-step PRNG
key for the objective (dropout); :func:`train_steps` runs a stateless or stateful objective
under it. :func:`is_stream` tells a PyTree of arrays from a Python iterator of batches.
:func:`bind_static` and :func:`compiled_for` give a trainer's compiled program for its static
arguments (objective, optimizer), so that repeated calls compile once.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
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


def num_rows(data: PyTree, name: str = "data") -> int:
    """The common leading-axis length of the arrays of ``data`` (a clear error otherwise)."""
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError(f"`{name}` must hold at least one array.")
    n = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(n) != 1 or -1 in n:
        raise ValueError(
            f"every array of `{name}` must have the samples on its leading axis, got {sorted(n)}."
        )
    return n.pop()


def is_stream(data: Any) -> bool:
    """Whether ``data`` is a stream of batches (an iterator, or an iterable such as a data loader
    that JAX treats as a leaf, not a PyTree container, and that is not an array) rather than a
    PyTree of arrays."""
    if isinstance(data, Iterator):
        return True
    if data is None or isinstance(data, (str, bytes)) or hasattr(data, "shape"):
        return False
    leaves = jax.tree_util.tree_leaves(data)
    return isinstance(data, Iterable) and len(leaves) == 1 and leaves[0] is data


def refuse_constraint_data(constraint_data: Any) -> None:
    """Raise where arrays come with ``constraint_data``, which only a stream of batches reads
    (on arrays the constraint is measured on ``data`` itself): ignored, it would mislead."""
    if constraint_data is not None:
        raise ValueError(
            "`constraint_data` is for a stream of batches: on arrays the constraint is measured "
            "on `data` itself. Drop it, or pass `data` as an iterator of batches."
        )


def scan_steps(
    body: Callable[[Any, PyTree, Any], tuple[Any, Any]],
    carry: Any,
    data: PyTree,
    *,
    num_steps: int,
    batch_size: int | None = None,
    key: Array | None = None,
    step_keys: bool = False,
) -> tuple[Any, Any]:
    """``num_steps`` calls of ``body(carry, batch, step_key) -> (carry, out)`` in ``lax.scan``.

    The mini-batching convention of every trainer. Full batch (``batch_size=None``): every step
    sees ``data`` itself. With ``batch_size``: the rows are shuffled by ``key`` once per epoch and
    cut into ``n // batch_size`` mini-batches of static size (the last ``n % batch_size`` rows of
    each shuffle are dropped, different ones every epoch); epochs follow one another until
    ``num_steps`` steps are taken (the last epoch may be partial). With ``step_keys`` each step
    also gets its own PRNG key (split from ``key``; e.g. for dropout), else ``None``.

    Returns ``(carry, outs)`` with each step's ``out`` stacked on a leading axis of
    ``num_steps``. Traceable: call it under ``jit``.
    """
    if key is None and (batch_size is not None or step_keys):
        raise ValueError("`key` is required with `batch_size` or a per-step key.")
    shuffle_key = step_key = key
    if key is not None:
        shuffle_key, step_key = jax.random.split(key)
    keys = jax.random.split(step_key, num_steps) if step_keys else None

    def one(c, x):
        return body(c, *x)

    if batch_size is None:
        return jax.lax.scan(lambda c, k: body(c, data, k), carry, keys, length=num_steps)
    per_epoch = num_rows(data) // batch_size
    full, rest = divmod(num_steps, per_epoch)
    epoch_keys = jax.random.split(shuffle_key, full + 1)
    outs = []
    if full:

        def epoch(c, x):
            ek, sk = x
            return jax.lax.scan(one, c, (shuffled_batches(data, ek, batch_size=batch_size), sk))

        sk = (
            None
            if keys is None
            else keys[: full * per_epoch].reshape(full, per_epoch, *keys.shape[1:])
        )
        carry, out = jax.lax.scan(epoch, carry, (epoch_keys[:full], sk))
        outs.append(jax.tree.map(lambda a: a.reshape(full * per_epoch, *a.shape[2:]), out))
    if rest:
        batches = shuffled_batches(data, epoch_keys[full], batch_size=batch_size)
        batches = jax.tree.map(lambda a: a[:rest], batches)
        sk = None if keys is None else keys[full * per_epoch :]
        carry, out = jax.lax.scan(one, carry, (batches, sk))
        outs.append(out)
    if len(outs) == 1:
        return carry, outs[0]
    return carry, jax.tree.map(lambda *a: jnp.concatenate(a), *outs)


class DivergenceWarning(RuntimeWarning):
    """A trainer returned parameters, or a final loss or constraint, that are not finite.

    Every fairjax trainer (``training.fit``, ``fit_constrained``, ``fit_rate_constrained``,
    ``fit_rate_constrained_mixture``, ``pareto_sweep``, ``constrained_sweep``,
    ``ferm.fit_linear``, ``representation.train``, the estimators) checks its result through
    :func:`finite` and warns with this class; results that have a ``finite`` field set it to
    False and report ``satisfied=False``. Filter it like any warning, e.g.
    ``warnings.simplefilter("error", DivergenceWarning)`` to make divergence an error.
    """


def train_steps(
    objective: Callable[..., Any],
    optimizer: optax.GradientTransformation,
    params: PyTree,
    data: PyTree,
    model_state: PyTree = None,
    *,
    num_steps: int,
    batch_size: int | None = None,
    key: Array | None = None,
) -> tuple[PyTree, PyTree, Array]:
    """``num_steps`` updates of ``objective`` under :func:`scan_steps`, stateless or stateful.

    Without ``model_state``, ``objective(params, batch) -> value``; with it (dropout, batch
    norm), ``objective(params, batch, key, model_state) -> (value, new_model_state)``, given a
    fresh key per step and the state carried from step to step. Returns ``(params,
    model_state, values)``, ``values`` the objective before each step, shape ``(num_steps,)``.
    """
    stateful = model_state is not None
    if stateful:
        step = make_step(lambda p, x: objective(p, *x), optimizer, has_aux=True)
    else:
        step = make_step(objective, optimizer)

    def body(carry, batch, step_key):
        p, opt_state, state = carry
        if stateful:
            p, opt_state, (value, state) = step(p, opt_state, (batch, step_key, state))
        else:
            p, opt_state, value = step(p, opt_state, batch)
        return (p, opt_state, state), value

    (params, _, model_state), values = scan_steps(
        body,
        (params, optimizer.init(params), model_state),
        data,
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
        step_keys=stateful,
    )
    return params, model_state, values


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


def bind_static(jitted: Callable[..., Any], fn: Callable[..., Any], **static: Any):
    """``jitted`` (``jax.jit(fn, static_argnames=...)``) with its static keyword arguments
    bound: one compiled program per distinct objective, optimizer and options, reused by every
    later call with the same objects. Where one of them does not hash (an object that defines
    ``__eq__`` without ``__hash__``), it cannot key the compile cache: ``fn`` is compiled for
    this call alone."""
    try:
        hash(tuple(static.values()))
    except TypeError:
        return jax.jit(functools.partial(fn, **static))
    return functools.partial(jitted, **static)


#: The programs of :func:`compiled_for`, per owner (weakly held): dropped with their owner.
_OWNED_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_for(fn: Callable[..., Any], owner: str, **static: Any) -> Callable[..., Any]:
    """``fn`` compiled with its keyword arguments ``static`` bound, cached per ``static[owner]``
    (a user's function, e.g. :func:`fairjax.training.fit`'s objective) and kept only while
    that function lives.

    A static argument of ``jax.jit`` stays in JAX's compile cache, with every array the
    function captures; here the program (and its cache) is dropped with the function, so a
    loop that builds a new objective per call does not accumulate them, while repeated calls
    with the same objective compile once. A function that cannot be weakly referenced or
    hashed, or unhashable options, get a program for this call alone."""
    key_fn = static[owner]
    rest = {k: val for k, val in static.items() if k != owner}
    try:
        table = _OWNED_PROGRAMS.setdefault(key_fn, {})
        key = tuple(rest.items())
        program = table.get(key)
    except TypeError:
        return jax.jit(functools.partial(fn, **static))
    if program is None:
        ref = weakref.ref(key_fn)

        def bound(*args):
            return fn(*args, **{owner: ref()}, **rest)

        program = table[key] = jax.jit(bound)
    return program
