r"""Constrained training: the Lagrangian of a bound on a fairness term, by gradient descent-ascent.

:func:`lagrangian` writes :math:`L(\theta) + \mu (C(\theta) - \varepsilon)`,
:func:`make_constrained_step` takes one simultaneous primal-dual update (the primal one through
:mod:`fairjax._loop`, the projected ascent on :math:`\mu \ge 0` here) and
:func:`fit_constrained` runs them in one compiled program.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop
from fairjax import _validation as v
from fairjax._nan import propagate_nan

from ._penalized import Array, ArrayLike, Model, Objective, PyTree, _forward


class ConstrainedState(NamedTuple):
    """Immutable state of primal-dual training (a PyTree).

    Attributes:
      params: model parameters.
      multiplier: Lagrange multipliers :math:`\\mu \\ge 0`, shape ``()`` or ``(m,)`` (``(G, G)``
        in :func:`fit_rate_constrained`, ``(2, G, G)`` there for equalized odds).
      opt_state: optax state of the parameters' optimizer.
      multiplier_opt_state: optax state of the multipliers' optimizer.
      step: number of updates, int32 scalar.
      model_state: the auxiliary state of a stateful ``model`` (batch-norm statistics; see
        :func:`fit_constrained`), ``None`` for a stateless one.
    """

    params: PyTree
    multiplier: Array
    opt_state: optax.OptState
    multiplier_opt_state: optax.OptState
    step: Array
    model_state: PyTree = None


def initial_state(
    params: PyTree,
    multiplier: Array,
    optimizer: optax.GradientTransformation,
    multiplier_optimizer: optax.GradientTransformation,
    model_state: PyTree = None,
) -> ConstrainedState:
    """The primal-dual state before the first update (both optimizers initialised, step 0)."""
    return ConstrainedState(
        params,
        multiplier,
        optimizer.init(params),
        multiplier_optimizer.init(multiplier),
        jnp.zeros((), jnp.int32),
        model_state,
    )


def lagrangian(
    loss_fn: Objective,
    constraint_fn: Objective,
    target: ArrayLike,
    *,
    model: Model | None = None,
) -> Callable[[PyTree, Array, PyTree], Array]:
    r"""The Lagrangian of ``min L(θ) s.t. C(θ) <= ε``, as a function of ``(params, mu, batch)``.

    .. math:: \mathcal{L}(\theta, \mu) = L(\theta) + \sum_j \mu_j \big(C_j(\theta) -
       \varepsilon_j\big), \qquad \mu \ge 0.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      constraint_fn: ``constraint_fn(params, batch) -> scalar or (m,)``, differentiable.
      target: :math:`\varepsilon`, scalar or ``(m,)``.
      model: optional ``model(params, batch) -> outputs``; the loss and the constraint then
        take ``(outputs, batch)`` and the model runs once (see :func:`penalized`).

    Returns:
      ``lagrangian(params, multiplier, batch) -> scalar``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.training import lagrangian
      >>> lag = lagrangian(lambda p, b: p**2, lambda p, b: p, 0.5)
      >>> lag(jnp.asarray(2.0), jnp.asarray(3.0), None)
      Array(8.5, dtype=float32)
    """

    def fn(params: PyTree, multiplier: Array, batch: PyTree) -> Array:
        return _lagrangian_terms(loss_fn, constraint_fn, target, model, params, multiplier, batch)[
            0
        ]

    return fn


def _lagrangian_terms(
    loss_fn, constraint_fn, target, model, params, multiplier, batch, key=None, model_state=None
):
    """The Lagrangian, with the task loss, the model outputs and the new model state as
    auxiliary values."""
    out, new_state = _forward(model, params, batch, key, model_state)
    loss = loss_fn(out, batch)
    slack = constraint_fn(out, batch) - target
    return loss + jnp.sum(multiplier * slack), (loss, out, new_state)


def make_constrained_step(
    loss_fn: Objective,
    constraint_fn: Objective,
    *,
    target: ArrayLike,
    optimizer: optax.GradientTransformation,
    multiplier_optimizer: optax.GradientTransformation,
    dual_constraint_fn: Objective | None = None,
    model: Model | None = None,
) -> Callable[[ConstrainedState, PyTree], tuple[ConstrainedState, dict[str, Array]]]:
    r"""One simultaneous primal-dual update (not jitted; wrap it in ``jit`` or ``lax.scan``).

    .. math::

        \theta \leftarrow \theta + u_\theta\big(\nabla_\theta \mathcal{L}(\theta, \mu)\big),
        \qquad
        \mu \leftarrow \max\big(0,\; \mu + u_\mu(-(\tilde C(\theta) - \varepsilon))\big),

    where :math:`u_\theta, u_\mu` are the optax updates (the multiplier's optimizer is given the
    negated violation as its "gradient", so its descent is ascent on :math:`\mu`) and
    :math:`\tilde C` is ``dual_constraint_fn`` (default: ``constraint_fn``). Using the exact,
    non-differentiable metric for :math:`\tilde C` and a smooth surrogate for :math:`C` is the
    proxy-Lagrangian of Cotter et al.: the multiplier keeps growing until the *real* constraint
    holds on the training batch. With ``model``, every term takes ``(outputs, batch)`` and
    the model runs once per step: its outputs at :math:`\theta` serve the gradient, the
    reported loss and :math:`\tilde C`.

    Returns:
      ``step(state, batch, key=None, dual_value=None) -> (state, info)`` with ``info`` holding
      the ``"loss"``, the ``"constraint"`` (:math:`\tilde C`) and the ``"multiplier"`` before
      the update. A ``state`` with a ``model_state`` runs a stateful ``model`` with the per-step
      ``key`` (see :func:`fit_constrained`); ``dual_value``, when given, replaces
      :math:`\tilde C` on the batch in the multiplier's update (e.g. the constraint measured on
      the full data).
    """
    dual_fn = constraint_fn if dual_constraint_fn is None else dual_constraint_fn
    terms = functools.partial(_lagrangian_terms, loss_fn, constraint_fn, target, model)

    # The primal update: x is (multiplier, batch, key, model state); aux is (task loss, model
    # outputs, new model state).
    primal = _loop.make_step(lambda p, x: terms(p, *x), optimizer, has_aux=True)

    def step(state: ConstrainedState, batch: PyTree, key: Any = None, dual_value: Any = None):
        x = (state.multiplier, batch, key, state.model_state)
        params, opt_state, (_, (loss, out, model_state)) = primal(state.params, state.opt_state, x)
        out = jax.lax.stop_gradient(out)
        value = jnp.asarray(dual_fn(out, batch), state.multiplier.dtype)
        if dual_value is not None:
            value = jnp.asarray(dual_value, state.multiplier.dtype)
        violation = value - jnp.asarray(target, state.multiplier.dtype)
        m_updates, m_state = multiplier_optimizer.update(
            -violation, state.multiplier_opt_state, state.multiplier
        )
        # Projection onto mu >= 0 (the dual feasible set).
        multiplier = jnp.maximum(optax.apply_updates(state.multiplier, m_updates), 0)
        info = {
            "loss": loss,
            "constraint": value,
            "multiplier": state.multiplier,
        }
        new = ConstrainedState(params, multiplier, opt_state, m_state, state.step + 1, model_state)
        return new, info

    return step


class ConstrainedResult(NamedTuple):
    """The outcome of :func:`fit_constrained` and :func:`fit_rate_constrained`.

    Attributes:
      params: the returned model: the iterate chosen by ``iterate=``.
      state: the final :class:`ConstrainedState` (to resume training; ``state.params`` is the
        last iterate).
      history: dict of arrays of shape ``(num_steps,)``, one entry per step for the parameters
        the step starts from: ``loss``, ``constraint`` (the dual constraint on the training
        data) and ``multiplier`` for :func:`fit_constrained`; ``constraint`` (the largest rate
        gap on the training data) and ``error`` (the weighted training error) for
        :func:`fit_rate_constrained`.
      selected_step: the step whose parameters ``params`` are (``num_steps`` for the last
        iterate).
      train_constraint: the dual constraint (for :func:`fit_rate_constrained`, the largest rate
        gap) of ``params`` on the training data; NaN when ``finite`` is False (a constraint
        of hard decisions reads 0 for NaN logits, which decide nothing).
      validation_constraint: the same on ``validation_data`` (NaN when none was given, or
        when ``finite`` is False).
      satisfied: whether ``validation_constraint`` (else ``train_constraint``) is
        ``<= target + tolerance``; always False when ``finite`` is False.
      finite: whether ``params``, the measured constraints and the last iterate
        (``state.params``) are finite (False: training diverged, and a
        :class:`DivergenceWarning` was issued; with ``iterate="best"`` a run that diverged
        after its best step is not reported as a success either, though ``params`` holds
        that step's finite parameters).
    """

    params: PyTree
    state: ConstrainedState
    history: dict[str, np.ndarray]
    selected_step: int
    train_constraint: float
    validation_constraint: float
    satisfied: bool
    finite: bool = True


def check_iterate(iterate: str) -> None:
    """Raises unless ``iterate`` is ``"best"`` or ``"last"``, the iterates a trainer returns."""
    if iterate not in ("best", "last"):
        raise ValueError(f"`iterate` must be 'best' or 'last', got {iterate!r}.")


_EMPTY = object()  # an exhausted stream


def constraint_shape(
    constraint_fn: Objective,
    model: Model | None,
    params: PyTree,
    batch: PyTree,
    key,
    model_state,
    name: str = "constraint_fn",
) -> tuple[int, ...]:
    """The shape of ``constraint_fn``'s value on ``batch``, traced (not computed). With a
    ``model``, a function that fails on the outputs is named, with the calling convention."""

    def value(p, b):
        out, _ = _forward(model, p, b, key, model_state)
        return constraint_fn(out, b)

    try:
        return tuple(jax.eval_shape(value, params, batch).shape)
    except (TypeError, IndexError, KeyError, AttributeError) as err:
        if model is None:
            raise
        raise TypeError(
            f"`{name}` failed on the model's outputs. With `model=`, it is called as "
            f"{name}(outputs, batch), not (params, batch). The error: {type(err).__name__}: {err}"
        ) from err


def _check_target(target: Any, shape: tuple[int, ...] | None) -> Any:
    """``target`` as a float, or a float array of one bound per constraint."""
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return target
    target = np.asarray(target, dtype=float)
    if target.ndim and shape is not None and target.shape != shape:
        raise ValueError(
            f"`target` must be a scalar or one bound per constraint (constraint_fn returns "
            f"shape {shape}), got shape {target.shape}."
        )
    return float(target) if target.ndim == 0 else target


def fit_constrained(
    loss_fn: Objective,
    constraint_fn: Objective,
    params: PyTree,
    data: PyTree,
    *,
    target: float,
    optimizer: optax.GradientTransformation,
    multiplier_optimizer: optax.GradientTransformation | None = None,
    num_steps: int = 1000,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    dual_constraint_fn: Objective | None = None,
    validation_data: PyTree | None = None,
    constraint_data: PyTree | None = None,
    eval_every: int = 100,
    tolerance: float = 0.0,
    init_multiplier: float = 0.0,
    iterate: str = "last",
    model: Model | None = None,
) -> ConstrainedResult:
    r"""Trains to a target: :math:`\min_\theta L(\theta)` subject to :math:`C(\theta) \le \epsilon`.

    Simultaneous gradient descent-ascent on the Lagrangian (:func:`lagrangian`),
    :func:`make_constrained_step` run ``num_steps`` times inside one compiled ``lax.scan``:
    descent on the parameters with ``optimizer``, projected ascent on :math:`\mu \ge 0` with
    ``multiplier_optimizer``. Afterwards the constraint is measured on the training data and,
    when given, on held-out ``validation_data``, which is what a requested bound is about.

    Mini-batches follow the trainers' one convention (:func:`fit`, :func:`pareto_sweep`): full
    batch by default; with ``batch_size`` and ``key`` each step takes a shuffled mini-batch
    (epoch by epoch, every row once per ``n // batch_size`` steps) and both the primal step and
    the multiplier's ascent use that mini-batch's terms; the returned constraint is measured
    on the full ``data``.

    **A stream of batches.** ``data`` may be a Python iterator or an iterable of batches (a
    generator, a ``grain`` loader; see :func:`fit`): one compiled step per batch, at most
    ``num_steps``. Given ``constraint_data`` (the full training data, or a large sample of it),
    the dual constraint is measured there every ``eval_every`` steps (and at the end), and the
    multiplier's ascent uses that measurement (held between measurements) instead of the
    batch's; ``history["eval_step"]`` and ``history["eval_constraint"]`` record them, and
    ``train_constraint`` is the final one (NaN without ``constraint_data``). ``iterate="best"``
    needs array data.

    **Random keys and state (dropout, batch norm).** With ``model_state`` (any PyTree, ``{}``
    for dropout alone) the ``model`` is ``model(params, batch, key, model_state) -> (outputs,
    new_model_state)``, with a fresh PRNG key per step (from ``key``, then required) and the
    state carried from step to step; the constraint is measured with ``key=None``, meaning
    evaluation (no dropout, running statistics). The final state is
    ``result.state.model_state``.

    The iterates of simultaneous descent-ascent circle the saddle point: the last one (the
    default, ``iterate="last"``) may sit on either side of the bound. ``iterate="best"`` returns
    the feasible iterate with the lowest task loss instead: among the iterates (the parameters
    each step starts from, and the last iterate) whose dual constraint :math:`\tilde C` on the
    training data was at most ``target + tolerance``, the one whose ``loss_fn`` was smallest,
    the earliest of equal losses (tracked inside the compiled loop, one extra copy of the
    parameters), or the last iterate when none was feasible. Full batch and a stateless model,
    it guarantees the bound (up to ``tolerance``) on the training data. With ``batch_size`` the
    choice is made on the batch each step sees, and a stateful model's in training mode (its
    chosen parameters are then measured with the final ``state.model_state``): the bound is not
    guaranteed on the full data, and ``satisfied`` says whether it holds. The feasible iterate
    of lowest loss can be an early one, before the primal-dual dynamics settle. A smooth
    constraint that converges onto the bound sits on it only up to rounding (in float32, a few
    1e-7 above or below): with ``tolerance=0`` the converged iterates may all count as
    infeasible, so give a tolerance of that order.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      constraint_fn: differentiable ``constraint_fn(params, batch) -> scalar or (m,)``, e.g. a
        :func:`fairjax.penalties.sigmoid_rate_difference` of the logits.
      params: initial parameters.
      data: training batch (PyTree of arrays).
      target: :math:`\varepsilon`, the requested bound.
      optimizer: optax optimizer of the parameters.
      multiplier_optimizer: optax optimizer of the multiplier (default ``optax.sgd(1.0)``).
      num_steps: number of updates (at most, for a stream).
      batch_size: rows per mini-batch (``None``: full batch).
      key: PRNG key of the shuffling and of the per-step keys.
      model_state: initial state of a stateful ``model`` (``None``: stateless).
      dual_constraint_fn: the constraint the multiplier enforces, e.g. the exact
        :func:`fairjax.metrics.demographic_parity_difference` of the decisions; default
        ``constraint_fn``.
      validation_data: held-out batch on which constraint satisfaction is reported.
      constraint_data: for a stream, the data on which the constraint is measured (refused
        with arrays, whose constraint is measured on ``data``).
      eval_every: for a stream, steps between measurements on ``constraint_data``.
      tolerance: slack on the bound: for reporting ``satisfied``, and for which iterates count
        as feasible with ``iterate="best"``.
      init_multiplier: initial :math:`\mu`.
      iterate: ``"last"`` (default) or ``"best"``: the feasible iterate of lowest loss.
      model: optional ``model(params, batch) -> outputs``; every term then takes
        ``(outputs, batch)`` and the model runs once per step (see :func:`penalized`).

    Returns:
      A :class:`ConstrainedResult`.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.training import fit_constrained
      >>> res = fit_constrained(
      ...     lambda p, b: (p - 2.0) ** 2, lambda p, b: p, jnp.asarray(0.0), None,
      ...     target=1.0, optimizer=optax.sgd(0.1), multiplier_optimizer=optax.sgd(0.1),
      ...     num_steps=500)
      >>> round(float(res.params), 2), round(float(res.state.multiplier), 2)
      (1.0, 2.0)

    References:
      Cotter, Jiang, Sridharan, Two-Player Games for Efficient Non-Convex Constrained
      Optimization, ALT 2019 (proxy-Lagrangian); Cotter et al., JMLR 2019 (rate constraints).
    """
    check_iterate(iterate)
    if multiplier_optimizer is None:
        multiplier_optimizer = _MULTIPLIER_OPTIMIZER
    v.check_scalars(target, "target")
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    v.check_scalar(tolerance, "tolerance", nonnegative=True)
    v.check_scalar(init_multiplier, "init_multiplier", nonnegative=True)
    if model_state is not None and key is None:
        raise ValueError("`key` is required with `model_state` (it makes the per-step keys).")
    stream, data, batch_size, shape = _data_and_shape(
        constraint_fn, dual_constraint_fn, model, params, data, batch_size, key, model_state
    )
    target = _check_target(target, shape)
    build = make_constrained_step
    if isinstance(target, (int, float)):
        # The same functions and target give the same step function, hence the same compiled
        # program: a second call does not compile again. (An array target is not hashable.)
        build, target = _cached_constrained_step, float(target)
    step = build(
        loss_fn,
        constraint_fn,
        target=target,
        optimizer=optimizer,
        multiplier_optimizer=multiplier_optimizer,
        dual_constraint_fn=dual_constraint_fn,
        model=model,
    )
    dual_fn = constraint_fn if dual_constraint_fn is None else dual_constraint_fn
    # One multiplier per constraint (a scalar target bounds each of a vector's constraints).
    mu0 = jnp.full(
        np.broadcast_shapes(shape or (), np.shape(target)), init_multiplier, jnp.result_type(float)
    )
    if stream:
        if iterate == "best" or batch_size is not None:
            raise ValueError("a stream of batches takes neither `batch_size` nor iterate='best'.")
        return _fit_stream(
            step,
            dual_fn,
            model,
            params,
            iter(data),
            initial_state(params, mu0, optimizer, multiplier_optimizer, model_state),
            num_steps=num_steps,
            key=key,
            constraint_data=constraint_data,
            validation_data=validation_data,
            eval_every=v.check_scalar(eval_every, "eval_every", integer=True, positive=True),
            bound=np.asarray(target) + tolerance,
        )
    _loop.refuse_constraint_data(constraint_data)
    state, (best, best_step), history, measured = _fit_program(
        step,
        loss_fn,
        dual_fn,
        model,
        params,
        data,
        validation_data,
        optimizer,
        multiplier_optimizer,
        mu0,
        jnp.asarray(target, jnp.result_type(float)) + tolerance,
        num_steps,
        iterate == "best",
        batch_size,
        key,
        model_state,
    )
    return _constrained_result(
        state, best, best_step, history, measured, iterate, num_steps, target, tolerance
    )


def _data_and_shape(constraint_fn, dual_fn, model, params, data, batch_size, key, model_state):
    """:func:`fit_constrained`'s data checked: ``(stream, data, batch_size, shape)``, with the
    constraint's shape read from the data, or from a stream's first batch (put back)."""
    stream = _loop.is_stream(data)
    if not stream and jax.tree_util.tree_leaves(data):
        _loop.num_rows(data)  # the arrays' rows agree (a clear error, not a JAX one)
    if not stream and batch_size is not None:
        n = _loop.num_rows(data)
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)
        if key is None:
            raise ValueError("`key` is required with `batch_size` (it shuffles the rows).")
    if not stream:
        shape = constraint_shape(constraint_fn, model, params, data, key, model_state)
        if dual_fn is not None and model is not None:  # named too, if it fails
            constraint_shape(dual_fn, model, params, data, key, model_state, "dual_constraint_fn")
        return stream, data, batch_size, shape
    data, shape = iter(data), None
    first = next(data, _EMPTY)
    if first is not _EMPTY:
        data = itertools.chain([first], data)
        shape = constraint_shape(constraint_fn, model, params, first, key, model_state)
    return stream, data, batch_size, shape


def _constrained_result(
    state, best, best_step, history, measured, iterate, num_steps, target, tolerance
):
    """:func:`fit_constrained`'s result from its program's outputs: the chosen iterate (the
    last, or the best feasible one), its constraints and whether it meets the bound."""
    chosen, chosen_step, pick = state.params, num_steps, 0
    if iterate == "best" and int(best_step) >= 0:
        chosen, chosen_step, pick = best, int(best_step), 1
    train_v = np.asarray(measured["train"][pick])
    val_v = None if measured["validation"] is None else np.asarray(measured["validation"][pick])
    checked = train_v if val_v is None else val_v
    # The bound in the constraint's own precision, as the selection of iterate="best" uses it.
    bound = np.asarray(target, checked.dtype) + np.asarray(tolerance, checked.dtype)
    history = {k: np.asarray(val) for k, val in history.items()}
    # The last iterate too: a run that diverged after its best step is no success.
    ok = _loop.finite("training.fit_constrained", chosen, train_v, val_v, state.params)
    return ConstrainedResult(
        chosen,
        state,
        history,
        chosen_step,
        _reported(train_v, ok),
        _reported(val_v, ok),
        # Every constraint within its own bound (a vector target has one per constraint).
        ok and bool(np.all(checked <= bound)),
        ok,
    )


def _reported(values, finite: bool) -> float:
    """The largest of the measured constraints, NaN when none was measured or the result
    diverged (its measured values, e.g. hard decisions of NaN logits, mean nothing)."""
    return float(np.max(values)) if values is not None and finite else float("nan")


def _fit_stream(
    step,
    dual_fn,
    model,
    params,
    stream,
    state,
    *,
    num_steps,
    key,
    constraint_data,
    validation_data,
    eval_every,
    bound,
) -> ConstrainedResult:
    """:func:`fit_constrained` on a Python iterator of batches (one compiled step per batch)."""
    step = jax.jit(step)
    measure = _loop.bind_static(_measure_one_jit, _measure_one, dual_fn=dual_fn, model=model)

    infos, eval_steps, eval_values, dual = [], [], [], None
    for t, batch in enumerate(itertools.islice(stream, num_steps)):
        if constraint_data is not None and t % eval_every == 0:
            dual = measure(state.params, state.model_state, constraint_data)
            eval_steps.append(t)
            eval_values.append(np.asarray(dual))
        sub = None if key is None else jax.random.fold_in(key, t)
        state, info = step(state, batch, sub, dual)
        infos.append(info)
    if not infos:
        raise ValueError("`data` is an empty stream: no batch to train on.")
    history = {k: np.stack([np.asarray(i[k]) for i in infos]) for k in infos[0]}
    train_v = val_v = None
    if constraint_data is not None:
        train_v = np.asarray(measure(state.params, state.model_state, constraint_data))
        eval_steps.append(len(infos))
        eval_values.append(train_v)
        history["eval_step"] = np.asarray(eval_steps)
        history["eval_constraint"] = np.stack(eval_values)
    if validation_data is not None:
        val_v = np.asarray(measure(state.params, state.model_state, validation_data))
    ok = _loop.finite("training.fit_constrained", state.params, train_v, val_v)
    reported = val_v if val_v is not None else train_v
    satisfied = ok and reported is not None and bool(np.all(reported <= bound))
    return ConstrainedResult(
        state.params,
        state,
        history,
        len(infos),
        _reported(train_v, ok),
        _reported(val_v, ok),
        satisfied,
        ok,
    )


# Default multiplier optimizer of fit_constrained and constrained_sweep: one object, so that it
# is the same static argument on every call.
_MULTIPLIER_OPTIMIZER = optax.sgd(1.0)

# make_constrained_step, memoised on its (hashable) arguments; bounded, as it keeps the user's
# functions alive.
_cached_constrained_step = functools.lru_cache(maxsize=32)(make_constrained_step)


@functools.partial(
    jax.jit,
    static_argnames=(
        "step",
        "loss_fn",
        "dual_fn",
        "model",
        "optimizer",
        "mopt",
        "num_steps",
        "track_best",
        "batch_size",
    ),
)
def _fit_program(
    step,
    loss_fn,
    dual_fn,
    model,
    params,
    data,
    validation_data,
    optimizer,
    mopt,
    mu0,
    target,
    num_steps,
    track_best,
    batch_size=None,
    key=None,
    model_state=None,
):
    """All of :func:`fit_constrained`'s device work as one compiled program: the primal-dual
    loop, then the dual constraint of the last (and, with ``track_best``, of the best) iterate
    on the training and the validation data (separate jitted calls would compile again)."""
    last_terms = functools.partial(_task_and_dual_terms, loss_fn, dual_fn, model)
    state, (best, best_step), history = _run_constrained(
        step,
        params,
        data,
        optimizer,
        mopt,
        mu0,
        target,
        num_steps,
        track_best,
        last_terms,
        batch_size,
        key,
        model_state,
    )
    iterates = (state.params, best) if track_best else (state.params,)
    measure = functools.partial(_measure, dual_fn, model, iterates, state.model_state)

    # The training batch may itself be None (an objective without data); no validation is.
    validation = None if validation_data is None else measure(validation_data)
    measured = {"train": measure(data), "validation": validation}
    return state, (best, best_step), history, measured


@functools.partial(
    jax.jit,
    static_argnames=(
        "step",
        "optimizer",
        "multiplier_optimizer",
        "num_steps",
        "track_best",
        "last_terms",
        "batch_size",
    ),
)
def _run_constrained(
    step,
    params,
    data,
    optimizer,
    multiplier_optimizer,
    mu0,
    target,
    num_steps,
    track_best,
    last_terms=None,
    batch_size=None,
    key=None,
    model_state=None,
):
    """``num_steps`` primal-dual steps in one scan, with ``track_best`` tracking the feasible
    iterate of lowest loss: among the parameters each step starts from and, measured by
    ``last_terms(params, data, model_state) -> (loss, dual constraint)`` after the loop, the
    last iterate. The steps follow :func:`fairjax._loop.scan_steps` (full batch, or shuffled
    mini-batches of ``batch_size`` by ``key``); with mini-batches the iterates are compared on
    their own mini-batch's loss and constraint, the last one on the full ``data``.

    Returns the final state, ``(best_params, best_step)`` (``best_step = num_steps`` when the
    last iterate is the best, ``-1`` when no iterate was feasible or ``track_best`` is False;
    ``best_params`` are then the initial ones) and the per-step history.
    """
    state = initial_state(params, mu0, optimizer, multiplier_optimizer, model_state)
    loss_dtype = jnp.result_type(float)
    best = (params, jnp.asarray(jnp.inf, loss_dtype), jnp.asarray(-1, jnp.int32))

    def body(carry, batch, key):
        state, best = carry
        new, info = step(state, batch, key)
        if track_best:
            # info holds the loss and the dual constraint of state.params (before the update).
            better = jnp.all(info["constraint"] <= target) & (info["loss"] < best[1])
            candidate = (state.params, info["loss"].astype(loss_dtype), state.step)
            best = jax.tree.map(lambda c, b: jnp.where(better, c, b), candidate, best)
        return (new, best), info

    (state, best), history = _loop.scan_steps(
        body,
        (state, best),
        data,
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
        step_keys=model_state is not None,
    )
    if track_best:
        loss, constraint = last_terms(state.params, data, state.model_state)
        better = jnp.all(constraint <= target) & (loss < best[1])
        last = (state.params, loss.astype(loss_dtype), jnp.asarray(num_steps, jnp.int32))
        best = jax.tree.map(lambda c, b: jnp.where(better, c, b), last, best)
    return state, (best[0], best[2]), history


def _measure(dual_fn, model, iterates, model_state, batch):
    """The dual constraint of each of ``iterates`` on ``batch`` (evaluation mode); NaN where
    the model's outputs hold a NaN: a constraint of hard decisions reads NaN logits as
    negative decisions, a gap of 0 that would pass for satisfied."""

    def one(p):
        out = _forward(model, p, batch, None, model_state)[0]
        return propagate_nan(jnp.asarray(dual_fn(out, batch)), *jax.tree.leaves(out))

    return tuple(one(p) for p in iterates)


def _measure_one(params, model_state, batch, *, dual_fn, model):
    return _measure(dual_fn, model, (params,), model_state, batch)[0]


_measure_one_jit = jax.jit(_measure_one, static_argnames=("dual_fn", "model"))


def _task_and_dual_terms(loss_fn, dual_fn, model, params, batch, model_state=None):
    """The task loss and the dual constraint of ``params`` (one forward pass, in evaluation
    mode for a stateful model)."""
    out, _ = _forward(model, params, batch, None, model_state)
    return loss_fn(out, batch), jnp.asarray(dual_fn(out, batch))
