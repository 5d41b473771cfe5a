"""Penalised training: a task loss plus weighted fairness terms, one optax step at a time.

:func:`penalized` composes the objective, :func:`make_step` takes one update of it and
:func:`fit` runs epochs of them (full batch or shuffled mini-batches) with early stopping; every
update goes through :mod:`fairjax._loop`. The shared vocabulary of the package (``Objective``,
``Model``, the ``model=`` convention) lives here too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, losses
from fairjax import _validation as v

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PyTree = Any
Objective = Callable[[PyTree, PyTree], Array]
Model = Callable[[PyTree, PyTree], PyTree]


def _outputs(model: Model | None, params: PyTree, batch: PyTree) -> PyTree:
    """What the loss and fairness terms receive: ``model(params, batch)``, or the parameters."""
    return params if model is None else model(params, batch)


# ----------------------------------------------------------------------------- task loss


def binary_cross_entropy(logits: ArrayLike, labels: ArrayLike) -> Array:
    r"""Logistic loss of each logit against a 0/1 (or soft) label, elementwise.

    .. math:: \ell(z, y) = \log(1 + e^{z}) - y z

    The task loss of the trainers of this package: :func:`fairjax.losses.logistic` (same
    values), kept here under its historical name. Stable for any finite logit; the gradient is
    :math:`\sigma(z) - y`.

    Args:
      logits: logits of any shape.
      labels: 0/1 or soft targets, broadcastable to the logits.

    Returns:
      The elementwise loss (float dtype of the logits, at least float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.training import binary_cross_entropy
      >>> binary_cross_entropy(jnp.array([0.0, 2.0, -100.0]), jnp.array([1.0, 1.0, 1.0]))
      Array([  0.6931472,   0.126928 , 100.       ], dtype=float32)
    """
    return losses.logistic(logits, labels)


# ----------------------------------------------------------------------------- penalised


class TrainState(NamedTuple):
    """Immutable training state (a PyTree: passes through jit, vmap and device_put).

    Attributes:
      params: the model parameters (any PyTree).
      opt_state: the optax optimizer state.
      step: number of updates applied, an int32 scalar.
    """

    params: PyTree
    opt_state: optax.OptState
    step: Array


def init_state(params: PyTree, optimizer: optax.GradientTransformation) -> TrainState:
    """The training state before the first update.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import init_state
      >>> init_state({"w": jnp.zeros(3)}, optax.sgd(0.1)).step
      Array(0, dtype=int32)
    """
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))


def penalized(
    loss_fn: Objective,
    penalty_fn: Objective | Sequence[Objective],
    lam: ArrayLike | Sequence[ArrayLike],
    *,
    model: Model | None = None,
) -> Objective:
    r"""Composes a task loss and fairness penalties into one objective of ``(params, batch)``.

    .. math:: J(\theta; B) = L(f_\theta; B) + \sum_k \lambda_k P_k(f_\theta; B)

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``, the task loss (e.g. mean cross-entropy);
        ``loss_fn(outputs, batch)`` with ``model``.
      penalty_fn: ``penalty_fn(params, batch) -> scalar``, or a sequence of them (e.g. a
        :func:`fairjax.penalties.sigmoid_rate_difference` of the model's logits);
        ``penalty_fn(outputs, batch)`` with ``model``.
      lam: the weight :math:`\lambda \ge 0`, or one weight per penalty. May be a traced scalar,
        so ``jax.vmap`` over it trains one model per weight (see :func:`pareto_sweep`).
      model: optional ``model(params, batch) -> outputs`` :math:`f_\theta(B)`, evaluated once
        and passed to every term (one forward and one backward pass, however many terms).

    Returns:
      ``objective(params, batch) -> scalar``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.training import penalized
      >>> obj = penalized(lambda p, b: jnp.sum(p**2), lambda p, b: jnp.sum(p), 0.5)
      >>> obj(jnp.array([1.0, 2.0]), None)
      Array(6.5, dtype=float32)
      >>> scores = lambda w, x: x * w  # the model: its outputs go to both terms
      >>> obj = penalized(lambda z, x: jnp.sum(z**2), lambda z, x: jnp.sum(z), 0.5, model=scores)
      >>> obj(jnp.asarray(2.0), jnp.array([1.0, 2.0]))
      Array(23., dtype=float32)
    """
    if callable(penalty_fn):
        fns, lams = (penalty_fn,), (lam,)
    else:
        fns = tuple(penalty_fn)
        lams = tuple(lam) if isinstance(lam, Sequence) else (lam,) * len(fns)
        if len(lams) != len(fns):
            raise ValueError(
                f"`lam` must give one weight per penalty ({len(fns)}), got {len(lams)}."
            )
    for k, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"penalty {k} must be a function of (params, batch), got {fn!r}.")
    for lk in lams:
        v.check_scalars(lk, "lam", nonnegative=True)

    def objective(params: PyTree, batch: PyTree) -> Array:
        out = _outputs(model, params, batch)
        total = loss_fn(out, batch)
        for fn, lk in zip(fns, lams, strict=True):
            total = total + lk * fn(out, batch)
        return total

    return objective


def _raw_step(objective: Objective, optimizer: optax.GradientTransformation):
    """:func:`fairjax._loop.make_step` on a :class:`TrainState` (plain, not jitted)."""
    update = _loop.make_step(objective, optimizer)

    def step(state: TrainState, batch: PyTree) -> tuple[TrainState, Array]:
        params, opt_state, loss = update(state.params, state.opt_state, batch)
        return TrainState(params, opt_state, state.step + 1), loss

    return step


def make_step(
    objective: Objective, optimizer: optax.GradientTransformation, *, jit: bool = True
) -> Callable[[TrainState, PyTree], tuple[TrainState, Array]]:
    r"""One optimizer update on a batch: :math:`\theta \leftarrow \theta + u(\nabla J(\theta))`.

    Args:
      objective: ``objective(params, batch) -> scalar`` (e.g. from :func:`penalized`).
      optimizer: any optax ``GradientTransformation`` (chains, schedules, projections).
      jit: compile the step (default); ``False`` returns the plain function, e.g. to use inside
        your own ``lax.scan`` or ``vmap``.

    Returns:
      ``step(state, batch) -> (new_state, loss)`` where ``loss`` is the objective before the
      update.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import init_state, make_step
      >>> step = make_step(lambda p, b: jnp.sum((p - b) ** 2), optax.sgd(0.25))
      >>> state, loss = step(init_state(jnp.zeros(2), optax.sgd(0.25)), jnp.ones(2))
      >>> state.params, loss
      (Array([0.5, 0.5], dtype=float32), Array(2., dtype=float32))
    """
    step = _raw_step(objective, optimizer)
    return jax.jit(step) if jit else step


class FitResult(NamedTuple):
    """The outcome of :func:`fit`.

    Attributes:
      state: the final :class:`TrainState` (the best one seen when early stopping restored it).
      train_loss: mean training objective per epoch, shape ``(epochs_run,)``.
      val_loss: validation objective per epoch, shape ``(epochs_run,)`` (empty without
        validation data).
      best_epoch: the epoch (0-based) whose parameters are returned.
      finite: whether the returned parameters and their epoch's losses are finite (False:
        training diverged, and a :class:`DivergenceWarning` was issued).
    """

    state: TrainState
    train_loss: np.ndarray
    val_loss: np.ndarray
    best_epoch: int
    finite: bool = True


def _num_rows(data: PyTree) -> int:
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("`data` must hold at least one array.")
    n = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(n) != 1 or -1 in n:
        raise ValueError(
            f"every array of `data` must have the samples on its leading axis, got {sorted(n)}."
        )
    return n.pop()


def _epoch(objective: Objective, optimizer: optax.GradientTransformation, batch_size: int | None):
    """One compiled epoch ``epoch(state, data, key) -> (state, mean loss)``: one full-batch
    step, or a scan over the rows shuffled by ``key`` in mini-batches of ``batch_size``."""
    step = _raw_step(objective, optimizer)

    @jax.jit
    def epoch(state, data, key):
        if batch_size is None:
            return step(state, data)
        batches = _loop.shuffled_batches(data, key, batch_size=batch_size)
        params, opt_state, losses = _loop.run(
            objective, optimizer, state.params, xs=batches, opt_state=state.opt_state
        )
        num_batches = jax.tree_util.tree_leaves(batches)[0].shape[0]
        return TrainState(params, opt_state, state.step + num_batches), jnp.mean(losses)

    return epoch


class _Progress:
    """A progress line on stderr: tqdm when installed, else a plain line; silent if not a tty."""

    def __init__(self, total: int, enabled: bool | None):
        if enabled is None:
            enabled = sys.stderr.isatty() and not os.environ.get("CI")
        self.enabled, self.bar, self.total = bool(enabled), None, total
        if self.enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, leave=False, unit="epoch")

    def update(self, epoch: int, loss: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}")
        else:
            sys.stderr.write(f"\repoch {epoch + 1}/{self.total}  loss {loss:.4g}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


def fit(
    objective: Objective,
    params: PyTree,
    data: PyTree,
    *,
    optimizer: optax.GradientTransformation,
    num_epochs: int = 100,
    batch_size: int | None = None,
    key: Array | None = None,
    validation_data: PyTree | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    progress: bool | None = None,
) -> FitResult:
    """Minimises ``objective`` over ``data``, full-batch or in shuffled mini-batches.

    Each epoch is one compiled program (a ``lax.scan`` over the mini-batches), so the Python
    loop only runs once per epoch, for early stopping and the progress bar. Mini-batches have a
    static size: each epoch shuffles the rows and drops the last ``n % batch_size`` of them
    (different ones every epoch). With ``patience``, training stops once the monitored loss (the
    validation objective if ``validation_data`` is given, else the epoch's mean training
    objective) has not improved by more than ``min_delta`` for ``patience`` epochs, and the best
    parameters are returned.

    Args:
      objective: ``objective(params, batch) -> scalar``, e.g. from :func:`penalized`.
      params: initial parameters (any PyTree).
      data: PyTree of arrays with the ``n`` samples on the leading axis (e.g. ``(X, y, s)``).
      optimizer: any optax ``GradientTransformation``.
      num_epochs: maximum number of passes over the data (full-batch: number of steps).
      batch_size: rows per mini-batch (``None``: full batch, one step per epoch).
      key: PRNG key for the shuffling (required with ``batch_size``).
      validation_data: optional PyTree like ``data``; its objective is logged and monitored.
      patience: epochs without improvement before stopping; ``None`` never stops early.
      min_delta: the improvement that counts.
      progress: show a progress bar (tqdm if installed); ``None``: only on a terminal.

    Returns:
      A :class:`FitResult`.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import fit
      >>> data = (jnp.arange(4.0), 2 * jnp.arange(4.0))
      >>> mse = lambda w, b: jnp.mean((w * b[0] - b[1]) ** 2)
      >>> res = fit(mse, jnp.zeros(()), data, optimizer=optax.adam(0.1), num_epochs=200)
      >>> round(float(res.state.params), 3)
      2.0
    """
    n = _num_rows(data)
    num_epochs = v.check_scalar(num_epochs, "num_epochs", integer=True, positive=True)
    v.check_scalar(min_delta, "min_delta")
    if batch_size is not None:
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)
        if key is None:
            raise ValueError("`key` is required with `batch_size` (it shuffles the rows).")
    patience = v.check_scalar(patience, "patience", integer=True, positive=True, optional=True)
    epoch = _epoch(objective, optimizer, batch_size)
    val_objective = jax.jit(objective)
    state = init_state(params, optimizer)
    best_state, best, best_epoch, wait = state, np.inf, 0, 0
    train_hist, val_hist = [], []
    bar = _Progress(num_epochs, progress)
    try:
        for e in range(num_epochs):
            sub = None
            if key is not None:
                key, sub = jax.random.split(key)
            state, loss = epoch(state, data, sub)
            train_hist.append(float(loss))
            monitored = train_hist[-1]
            if validation_data is not None:
                val_hist.append(float(val_objective(state.params, validation_data)))
                monitored = val_hist[-1]
            bar.update(e, monitored)
            if patience is None:
                best_state, best_epoch = state, e
                continue
            if monitored < best - min_delta:
                best_state, best, best_epoch, wait = state, monitored, e, 0
            else:
                wait += 1
                if wait >= patience:
                    break
    finally:
        bar.close()
    last = [h[best_epoch] for h in (train_hist, val_hist) if h]
    ok = _loop.finite("training.fit", best_state.params, last)
    return FitResult(best_state, np.asarray(train_hist), np.asarray(val_hist), best_epoch, ok)
