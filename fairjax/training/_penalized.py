"""Penalised training: a task loss plus weighted fairness terms, one optax step at a time.

:func:`penalized` composes the objective, :func:`make_step` takes one update of it and
:func:`fit` runs epochs of them (full batch or shuffled mini-batches) with early stopping; every
update goes through :mod:`fairjax._loop`. The shared vocabulary of the package (``Objective``,
``Model``, the ``model=`` convention) lives here too.
"""

from __future__ import annotations

import itertools
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


def _forward(
    model: Model | None, params: PyTree, batch: PyTree, key: Any, model_state: PyTree
) -> tuple[PyTree, PyTree]:
    """``(outputs, new model state)``. Stateless (``model_state is None``): ``model(params,
    batch)``. Stateful: ``model(params, batch, key, model_state) -> (outputs, model_state)``,
    with ``key=None`` meaning evaluation (no dropout, running statistics)."""
    if model_state is None:
        return _outputs(model, params, batch), None
    if model is None:
        raise ValueError("`model_state` needs a `model=` (the function that uses the state).")
    return model(params, batch, key, model_state)


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
      model_state: the auxiliary (non-trained) state of a stateful objective, e.g. batch-norm
        statistics (``None`` for a stateless one; see :func:`fit`).
    """

    params: PyTree
    opt_state: optax.OptState
    step: Array
    model_state: PyTree = None


def init_state(
    params: PyTree, optimizer: optax.GradientTransformation, model_state: PyTree = None
) -> TrainState:
    """The training state before the first update (``model_state``: see :func:`fit`).

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import init_state
      >>> init_state({"w": jnp.zeros(3)}, optax.sgd(0.1)).step
      Array(0, dtype=int32)
    """
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), model_state)


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
      lam: the weight :math:`\lambda \ge 0`, or one weight per penalty (a sequence or a 1-D
        array). May be traced, so ``jax.vmap`` over it trains one model per weight (see
        :func:`pareto_sweep`).
      model: optional ``model(params, batch) -> outputs`` :math:`f_\theta(B)`, evaluated once
        and passed to every term (one forward and one backward pass, however many terms).
        A stateful model (dropout, batch norm) is ``model(params, batch, key, model_state) ->
        (outputs, model_state)``: see :func:`fit`.

    Returns:
      ``objective(params, batch) -> scalar``; called as ``objective(params, batch, key,
      model_state)`` (what :func:`fit` does when given ``model_state``) it runs a stateful
      ``model`` and returns ``(scalar, new model_state)``.

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
    fns = (penalty_fn,) if callable(penalty_fn) else tuple(penalty_fn)
    lams = _penalty_weights(lam, len(fns))
    for k, fn in enumerate(fns):
        if not callable(fn):
            raise TypeError(f"penalty {k} must be a function of (params, batch), got {fn!r}.")
    for lk in lams:
        v.check_scalars(lk, "lam", nonnegative=True)

    def objective(
        params: PyTree, batch: PyTree, key: Any = None, model_state: PyTree = None
    ) -> Any:
        out, new_state = _forward(model, params, batch, key, model_state)
        total = loss_fn(out, batch)
        for fn, lk in zip(fns, lams, strict=True):
            total = total + lk * fn(out, batch)
        return total if model_state is None else (total, new_state)

    return objective


def _penalty_weights(lam: Any, num: int) -> tuple[Any, ...]:
    """One scalar weight per penalty: ``lam`` is a scalar (every penalty's weight), or a
    sequence or a 1-D array (traced too) of ``num`` weights."""
    if isinstance(lam, Sequence):
        lams = tuple(lam)
    elif np.ndim(lam) == 0:
        lams = (lam,) * num
    elif np.ndim(lam) == 1:
        lams = tuple(lam[k] for k in range(np.shape(lam)[0]))
    else:
        raise ValueError(
            f"`lam` must be a scalar or one weight per penalty, got shape {np.shape(lam)}."
        )
    if len(lams) != num:
        raise ValueError(f"`lam` must give one weight per penalty ({num}), got {len(lams)}.")
    for lk in lams:
        if np.ndim(lk) != 0:
            raise ValueError(f"`lam` must hold scalar weights, got one of shape {np.shape(lk)}.")
    return lams


def _raw_step(objective: Objective, optimizer: optax.GradientTransformation):
    """:func:`fairjax._loop.make_step` on a :class:`TrainState` (plain, not jitted); a state
    with a ``model_state`` calls ``objective(params, batch, key, model_state) -> (loss,
    model_state)``."""
    plain = _loop.make_step(objective, optimizer)
    stateful = _loop.make_step(lambda p, x: objective(p, *x), optimizer, has_aux=True)

    def step(state: TrainState, batch: PyTree, key: Any = None) -> tuple[TrainState, Array]:
        if state.model_state is None:
            params, opt_state, loss = plain(state.params, state.opt_state, batch)
            new = None
        else:
            x = (batch, key, state.model_state)
            params, opt_state, (loss, new) = stateful(state.params, state.opt_state, x)
        return TrainState(params, opt_state, state.step + 1, new), loss

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
      ``step(state, batch, key=None) -> (new_state, loss)`` where ``loss`` is the objective
      before the update; a ``state`` with a ``model_state`` (see :func:`init_state`) runs a
      stateful objective with the per-step ``key`` (see :func:`fit`).

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


# The compiled programs of :func:`fit` are cached per objective while it lives, and per
# optimizer and options (_loop.compiled_for): a second fit with the same objective and
# optimizer reuses them instead of compiling new closures.
def _chunk(state, data, key, *, objective, optimizer, batch_size, length, step_keys):
    """One compiled run of ``length`` steps ``-> (state, mean loss)`` under the loop's
    mini-batching convention (:func:`fairjax._loop.scan_steps`)."""
    state, losses = _loop.scan_steps(
        _raw_step(objective, optimizer),
        state,
        data,
        num_steps=length,
        batch_size=batch_size,
        key=key,
        step_keys=step_keys,
    )
    return state, jnp.mean(losses)


def _stream_step(state, batch, key, *, objective, optimizer):
    """One step on a batch of a stream (one compiled program per batch shape)."""
    return _raw_step(objective, optimizer)(state, batch, key)


def _array_chunks(objective, optimizer, state, data, *, total, per, batch_size, key):
    """Yields ``(state, mean loss)`` after each epoch (``per`` steps; the last may be shorter)."""
    chunks = {}  # one program per length (the last epoch may be shorter)
    done = 0
    while done < total:
        length = min(per, total - done)
        sub = None
        if key is not None:
            key, sub = jax.random.split(key)
        if length not in chunks:
            chunks[length] = _loop.compiled_for(
                _chunk,
                "objective",
                objective=objective,
                optimizer=optimizer,
                batch_size=batch_size,
                length=length,
                step_keys=state.model_state is not None,
            )
        chunk = chunks[length]
        state, loss = chunk(state, data, sub)
        done += length
        yield state, loss


def _stream_chunks(objective, optimizer, state, stream, *, total, per, key):
    """Yields ``(state, mean loss)`` every ``per`` batches of a Python iterator (one compiled
    step per batch shape), and after the last batch; at most ``total`` steps."""
    step = _loop.compiled_for(_stream_step, "objective", objective=objective, optimizer=optimizer)
    losses, t = [], 0
    for batch in itertools.islice(stream, total):
        sub = None if key is None else jax.random.fold_in(key, t)
        state, loss = step(state, batch, sub)
        losses.append(loss)
        t += 1
        if len(losses) == per:
            yield state, jnp.mean(jnp.stack(losses))
            losses = []
    if losses:
        yield state, jnp.mean(jnp.stack(losses))


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
            sys.stderr.write(f"\repoch {epoch + 1}/{self.total or '?'}  loss {loss:.4g}")
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
    num_steps: int | None = None,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    eval_every: int = 100,
    validation_data: PyTree | None = None,
    patience: int | None = None,
    min_delta: float = 0.0,
    progress: bool | None = None,
) -> FitResult:
    """Minimises ``objective`` over ``data``: full batch, shuffled mini-batches, or a stream.

    The budget follows the trainers' one convention (:func:`fit_constrained`,
    :func:`pareto_sweep`): ``num_steps`` updates, full batch by default, shuffled mini-batches
    with ``batch_size`` and ``key``. ``num_epochs`` (kept, the default budget) counts passes
    over the data instead: ``num_epochs * (n // batch_size)`` steps with mini-batches,
    ``num_epochs`` steps full batch; ``num_steps``, when given, wins. Each epoch (``n //
    batch_size`` steps; the last may be partial) is one compiled ``lax.scan``, so the Python
    loop runs once per epoch, for early stopping and the progress bar; each epoch shuffles the
    rows and drops the last ``n % batch_size`` of them (different ones every epoch). With
    ``patience``, training stops once the monitored loss (the validation objective if
    ``validation_data`` is given, else the epoch's mean training objective) has not improved by
    more than ``min_delta`` for ``patience`` epochs, and the best parameters are returned.

    **A stream of batches.** ``data`` may be a Python iterator or any iterable of batches that
    is not a PyTree container (a generator, a ``grain`` data loader): one compiled step per
    batch (one compilation per batch shape), ``num_steps`` at most (default: until the stream
    ends; ``num_epochs`` and ``batch_size`` do not apply), and an "epoch" of the history, the
    validation and ``patience`` is every ``eval_every`` steps. Pass a list of batches as
    ``iter(batches)`` (a list is a PyTree).

    **Random keys and state (dropout, batch norm).** With ``model_state`` (any PyTree; ``{}``
    for a model with dropout and no state) the objective is called
    ``objective(params, batch, key, model_state) -> (loss, new_model_state)``: ``key`` is a
    fresh PRNG key per step (split from ``key``, which is then required), the returned state is
    carried to the next step and not differentiated (e.g. batch-norm statistics), and the
    validation objective is called with ``key=None``, meaning evaluation (no dropout, running
    statistics). :func:`penalized` builds such an objective from a stateful ``model``. The
    final state is ``result.state.model_state``.

    Args:
      objective: ``objective(params, batch) -> scalar``, e.g. from :func:`penalized` (stateful
        form above with ``model_state``).
      params: initial parameters (any PyTree).
      data: PyTree of arrays with the ``n`` samples on the leading axis (e.g. ``(X, y, s)``),
        or an iterator/iterable of such batches.
      optimizer: any optax ``GradientTransformation``.
      num_epochs: maximum number of passes over the data (full-batch: number of steps).
      num_steps: maximum number of updates (overrides ``num_epochs``).
      batch_size: rows per mini-batch (``None``: full batch, one step per epoch).
      key: PRNG key for the shuffling and the per-step keys (required with ``batch_size`` or
        ``model_state``).
      model_state: initial auxiliary state of a stateful objective (``None``: stateless).
      eval_every: steps per history entry for a stream of batches.
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
      >>> stream = ((jnp.arange(4.0), 2 * jnp.arange(4.0)) for _ in range(200))
      >>> res = fit(mse, jnp.zeros(()), stream, optimizer=optax.adam(0.1))
      >>> round(float(res.state.params), 3), res.train_loss.shape
      (2.0, (2,))
    """
    stream = _loop.is_stream(data)
    if _loop.is_stream(validation_data):  # it is evaluated once per epoch, whole
        raise TypeError("`validation_data` must be a PyTree of arrays, not a stream of batches.")
    num_epochs = v.check_scalar(num_epochs, "num_epochs", integer=True, positive=True)
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True, optional=True)
    eval_every = v.check_scalar(eval_every, "eval_every", integer=True, positive=True)
    v.check_scalar(min_delta, "min_delta")
    patience = v.check_scalar(patience, "patience", integer=True, positive=True, optional=True)
    if model_state is not None and key is None:
        raise ValueError("`key` is required with `model_state` (it makes the per-step keys).")
    state = init_state(params, optimizer, model_state)
    if stream:
        if batch_size is not None:
            raise ValueError("`batch_size` does not apply to a stream of batches.")
        chunks = _stream_chunks(
            objective, optimizer, state, iter(data), total=num_steps, per=eval_every, key=key
        )
        total_epochs = None if num_steps is None else -(-num_steps // eval_every)
    else:
        n = _loop.num_rows(data)
        per = 1
        if batch_size is not None:
            batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)
            if key is None:
                raise ValueError("`key` is required with `batch_size` (it shuffles the rows).")
            per = n // batch_size
        total = num_epochs * per if num_steps is None else num_steps
        chunks = _array_chunks(
            objective, optimizer, state, data, total=total, per=per, batch_size=batch_size, key=key
        )
        total_epochs = -(-total // per)
    return _monitor(
        chunks,
        state,
        objective,
        validation_data,
        patience=patience,
        min_delta=min_delta,
        bar=_Progress(total_epochs, progress),
    )


def _validation_objective(params, model_state, batch, *, objective):
    if model_state is not None:
        return objective(params, batch, None, model_state)[0]
    return objective(params, batch)


def _monitor(chunks, state, objective, validation_data, *, patience, min_delta, bar):
    """The epoch loop of :func:`fit`: history, validation, early stopping, divergence check."""
    val_objective = _loop.compiled_for(_validation_objective, "objective", objective=objective)
    best_state, best, best_epoch, wait = state, np.inf, 0, 0
    train_hist, val_hist = [], []
    try:
        for e, (state, loss) in enumerate(chunks):
            train_hist.append(float(loss))
            monitored = train_hist[-1]
            if validation_data is not None:
                val = val_objective(state.params, state.model_state, validation_data)
                val_hist.append(float(val))
                monitored = val_hist[-1]
            bar.update(e, monitored)
            if patience is None:
                best_state, best_epoch = state, e
                continue
            # Epoch 0 is kept even when its loss is NaN, so that ``best_epoch`` always names the
            # returned state (never the untrained one); a NaN does not become the bar to beat.
            if e == 0 or monitored < best - min_delta:
                best_state, best_epoch, wait = state, e, 0
                best = monitored if np.isfinite(monitored) else np.inf
            else:
                wait += 1
                if wait >= patience:
                    break
    finally:
        bar.close()
    if not train_hist:
        raise ValueError("`data` is an empty stream: no batch to train on.")
    last = [h[best_epoch] for h in (train_hist, val_hist) if h]
    ok = _loop.finite("training.fit", best_state.params, last)
    return FitResult(best_state, np.asarray(train_hist), np.asarray(val_hist), best_epoch, ok)
