r"""Rate constraints by reduction: cost-sensitive steps against exact gaps in decision rates.

:func:`fit_rate_constrained` trains a binary classifier to a bound on the gaps between its groups'
decision rates, with the rates of a :mod:`fairjax.criteria` criterion; the compiled loop here
also keeps the candidate iterates of :func:`fairjax.training.fit_rate_constrained_mixture`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, criteria, groups, losses
from fairjax import _validation as v

from ._lagrangian import ConstrainedResult, ConstrainedState, initial_state
from ._penalized import Array, ArrayLike, Model, PyTree, _forward

# The reduction trains to the criteria of rates of positive decisions, and to the two whose rate
# is one minus one of those (FNR = 1 - TPR, TNR = 1 - FPR): the same pairwise gaps, so the same
# constraints and the same cost-sensitive best responses. The other confusion-matrix criteria
# are not reduced here: PPV, FOR and treatment equality have denominators that depend on the
# decisions (no linear cost-sensitive form), and accuracy parity's costs are not yet written;
# train to them with fit_constrained and penalties.fractional_rate_difference.
_COMPLEMENTS = {
    "false_negative_rate_parity": "equal_opportunity",
    "true_negative_rate_parity": "false_positive_parity",
}


def _reducible(criterion):
    """The criterion the reduction trains to for ``criterion``: FNR/TNR parity become equal
    opportunity / false-positive parity (the same gaps); others are returned as they are."""
    name = criterion.name if isinstance(criterion, criteria.Criterion) else criterion
    if isinstance(name, str) and name in _COMPLEMENTS:
        if not isinstance(criterion, criteria.Criterion) or criterion == criteria.CRITERIA[name]:
            return _COMPLEMENTS[name]
    return criterion


# One object, so that repeated calls with the default hit the compiled program's cache (a new
# optax transformation per call would be a new static argument, and a new compilation).
_RATE_MULTIPLIER_OPTIMIZER = optax.sgd(0.01)


def fit_rate_constrained(
    model: Model,
    params: PyTree,
    data: PyTree,
    *,
    target: float,
    num_groups: int,
    optimizer: optax.GradientTransformation,
    criterion: str | criteria.Criterion | None = None,
    multiplier_optimizer: optax.GradientTransformation | None = None,
    num_steps: int = 500,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    regularizer: Callable[[PyTree], Array] | None = None,
    weights: ArrayLike | None = None,
    validation_data: PyTree | None = None,
    constraint_data: PyTree | None = None,
    eval_every: int = 100,
    tolerance: float = 0.0,
    iterate: str = "last",
    constraint: str | None = None,
) -> ConstrainedResult:
    r"""Trains a binary classifier to a bound on its group gaps in decision rates, by reduction.

    The bound is on the hard decisions :math:`h_i = [f(x_i) > 0]`: for every condition
    :math:`c` of the criterion (:mod:`fairjax.criteria`: all rows, positive or negative labels)
    and every pair of groups, :math:`r^c_g - r^c_{g'} \le \epsilon`, where :math:`r^c_g` is
    group :math:`g`'s rate of positive decisions among the rows of condition :math:`c`. With
    row weights :math:`w_i` (default 1) every rate and the error are weighted means. The
    Lagrangian of the weighted 0-1 error under these constraints is linear in the decisions,

    .. math::

        \mathcal{L}(h, \mu) = \text{const} + \sum_i c_i h_i, \qquad
        c_i = \frac{w_i (1 - 2 y_i)}{\sum_j w_j}
        + \sum_c \nu^c_{s_i} \frac{\partial r^c_{s_i}}{\partial h_i}, \qquad
        \nu^c_g = \sum_{g'} (\mu^c_{g g'} - \mu^c_{g' g}),

    so the best response to the multipliers is cost-sensitive classification: predict 1 where
    :math:`c_i < 0` (the reduction of fairlearn's ExponentiatedGradient). Each step here is one
    optimizer step on its logistic surrogate, the weighted log-loss
    :math:`\sum_i |c_i|\, \ell(f(x_i), [c_i < 0])` (plus ``regularizer``), and at the same time
    one projected ascent step on the multipliers with the exact gaps of the same iterate's
    decisions (one forward pass serves both), all in one compiled ``lax.scan``. With all
    multipliers 0 the surrogate is the (weighted) mean log-loss. The result is one
    deterministic model; :func:`fit_rate_constrained_mixture` returns a randomised one.

    A multiplier above about :math:`n_g / n` outweighs the error cost of every row of group
    :math:`g` and flips all of its labels, so the multipliers' rate must be small
    (``docs/training.md`` gives measured rates, limits and the Adult figures).

    ``iterate="best"`` returns, instead of the last iterate, the iterate of lowest (weighted)
    training error among those whose largest training gap is at most ``target + tolerance``:
    the candidates are the parameters each step starts from (step 0 is ``params``) and the last
    iterate; of equal errors the earliest wins. The bound then holds on the training data by
    construction; when no iterate is feasible the last one is returned. A zero start (the
    constant classifier, gap 0) is always feasible, so look at ``selected_step``.

    **Mini-batches, streams, random keys and state** follow the trainers' one convention
    (:func:`fit_constrained`). With ``batch_size`` and ``key`` each step takes a shuffled
    mini-batch (epoch by epoch): its costs use the mini-batch's own group counts, and the
    multipliers ascend on the mini-batch's gaps (a pair of groups not both present in it keeps
    its multiplier). ``data`` may also be a Python iterator or iterable of ``(X, y, groups)``
    batches (one compiled step per batch, at most ``num_steps``); given ``constraint_data``
    (the full training data, or a large sample), the gaps are measured there every
    ``eval_every`` steps and the multipliers ascend on that measurement, held in between
    (``history["eval_step"]``, ``history["eval_constraint"]``); measure often (a few steps
    apart): gaps held for long make the multipliers overshoot. With ``model_state`` the
    ``model`` is stateful, ``model(params, batch, key, model_state) -> (logits,
    new_model_state)``, with a fresh key per step (dropout) and the state carried from step to
    step (batch norm); ``key=None`` means evaluation. ``history`` and the choice of
    ``iterate="best"`` are measured on the batch each step sees (for a stateful model, in
    training mode); ``train_constraint`` and ``validation_constraint`` are measured on the full
    data, in evaluation mode (with ``iterate="best"`` a stateful model's chosen parameters are
    evaluated with the final ``state.model_state``).

    .. versionchanged:: 0.1.0
       ``constraint=`` became ``criterion=`` (the old keyword warns), and
       ``"false_positive_parity"`` is accepted; ``batch_size``, ``key``, ``model_state`` and
       streams of batches (``constraint_data``, ``eval_every``) are accepted.

    Args:
      model: ``model(params, batch) -> logits`` of shape ``(n,)``; the decision is
        ``logits > 0`` (with ``model_state``: ``model(params, batch, key, model_state) ->
        (logits, model_state)``).
      params: initial parameters (a PyTree).
      data: the training batch ``(X, y, groups)`` (as :meth:`fairjax.datasets.Dataset.batch`
        returns): the model sees the whole tuple; ``y`` holds 0/1 labels and ``groups``
        integer ids in ``[0, num_groups)``. Or an iterator/iterable of such batches.
      target: the bound :math:`\epsilon \ge 0` on every pairwise gap (the largest is the
        criterion's difference in :mod:`fairjax.metrics`).
      num_groups: static number of groups.
      optimizer: optax optimizer of the parameters.
      criterion: a :mod:`fairjax.criteria` criterion or its name: ``"demographic_parity"``
        (default), ``"equal_opportunity"``, ``"false_positive_parity"``, ``"equalized_odds"``,
        or ``"false_negative_rate_parity"`` / ``"true_negative_rate_parity"`` (the same gaps
        as equal opportunity / false-positive parity, trained as those). Criteria whose
        denominator depends on the decisions (``"predictive_parity"``, ...) have no
        cost-sensitive form: train to them with :func:`fit_constrained` and
        :func:`fairjax.penalties.fractional_rate_difference`.
      multiplier_optimizer: optax optimizer of the multipliers (default ``optax.sgd(0.01)``).
      num_steps: number of updates (at most, for a stream).
      batch_size: rows per mini-batch (``None``: full batch).
      key: PRNG key of the shuffling and of the per-step keys.
      model_state: initial state of a stateful ``model`` (``None``: stateless; ``{}`` for
        dropout alone).
      regularizer: optional ``regularizer(params) -> scalar`` added to the surrogate.
      weights: optional non-negative row weights ``(n,)`` of the training data (a row of
        weight 0 changes nothing; integer weights act as repeated rows). Not with a stream.
      validation_data: held-out ``(X, y, groups)`` on which the gap is reported (unweighted).
      constraint_data: for a stream, the ``(X, y, groups)`` on which the gaps are measured.
      eval_every: for a stream, steps between measurements on ``constraint_data``.
      tolerance: slack on the bound: ``satisfied`` admits a gap up to ``target + tolerance``,
        and with ``iterate="best"`` so does the choice of feasible iterates.
      iterate: ``"last"`` (default) or ``"best"``: the feasible iterate of lowest training
        error.
      constraint: deprecated spelling of ``criterion``.

    Returns:
      A :class:`ConstrainedResult`: ``params`` is the chosen iterate, ``selected_step`` its
      step (``num_steps`` for the last), ``state`` the final state, whose ``multiplier`` is the
      ``(num_groups, num_groups)`` matrix :math:`\mu_{g g'}` (for ``"equalized_odds"``,
      ``(2, num_groups, num_groups)``: positive, then negative labels). ``history`` holds, for
      the iterate each step starts from, ``"constraint"``, its largest gap on the training
      data, and ``"error"``, its (weighted) training error. ``train_constraint`` and
      ``validation_constraint`` are the largest gaps of the returned model.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from fairjax import datasets, training
      >>> d = datasets.make_classification(jax.random.key(0), n_samples=3000, n_features=4,
      ...                                  num_groups=2, bias=1.0)
      >>> batch = d.batch("train")
      >>> def model(p, b):
      ...     return b[0] @ p["w"] + p["b"]
      >>> res = training.fit_rate_constrained(
      ...     model, {"w": jnp.zeros(4), "b": jnp.zeros(())}, batch, target=0.05,
      ...     num_groups=2, optimizer=optax.adam(0.05), num_steps=1000)
      >>> round(res.train_constraint, 2)
      0.05

    References:
      Agarwal, Beygelzimer, Dudík, Langford, Wallach, A Reductions Approach to Fair
      Classification, ICML 2018; Cotter, Jiang, Sridharan, Two-Player Games for Efficient
      Non-Convex Constrained Optimization, ALT 2019 (proxy-Lagrangian: the multipliers follow the
      exact, non-differentiable constraint).
    """
    crit = criteria.resolve(
        _reducible(criterion), where="training.fit_rate_constrained", constraint=constraint
    )
    if iterate not in ("best", "last"):
        raise ValueError(f"`iterate` must be 'best' or 'last', got {iterate!r}.")
    num_steps, batch_size, stream = check_rate_options(
        data,
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
        model_state=model_state,
        target=target,
        tolerance=tolerance,
        weights=weights,
    )
    mopt = _RATE_MULTIPLIER_OPTIMIZER if multiplier_optimizer is None else multiplier_optimizer
    options = dict(
        target=target,
        num_groups=num_groups,
        optimizer=optimizer,
        criterion=crit,
        multiplier_optimizer=mopt,
        num_steps=num_steps,
        regularizer=regularizer,
        validation_data=validation_data,
        key=key,
        model_state=model_state,
    )
    if stream:
        if iterate == "best":
            raise ValueError("a stream of batches does not take iterate='best'.")
        run = run_rate_stream(
            model,
            params,
            data,
            constraint_data=constraint_data,
            eval_every=v.check_scalar(eval_every, "eval_every", integer=True, positive=True),
            candidate_steps=(),
            **options,
        )
        state, chosen, chosen_step, history, gaps = run[:5]
    else:
        state, chosen, chosen_step, history, gaps, _ = _run_rate_constrained(
            model,
            params,
            data,
            weights=weights,
            tolerance=tolerance,
            track_best=iterate == "best",
            candidate_steps=(),
            batch_size=batch_size,
            **options,
        )
    train_gap = float(gaps[0])
    val_gap = float("nan") if validation_data is None else float(gaps[1])
    measured = train_gap if validation_data is None else val_gap
    bound = np.asarray(target, gaps.dtype) + np.asarray(tolerance, gaps.dtype)
    # The gaps are of hard decisions (NaN logits decide 0 everywhere: no gap), so the check
    # that matters is on the parameters.
    # A stream without constraint_data has no training gap (NaN): not a divergence.
    measured_gaps = gaps[1:] if stream and constraint_data is None else gaps
    ok = _loop.finite("training.fit_rate_constrained", chosen, measured_gaps)
    return ConstrainedResult(
        chosen,
        state,
        history,
        int(chosen_step),
        train_gap,
        val_gap,
        ok and bool(np.asarray(measured, gaps.dtype) <= bound),
        ok,
    )


def check_rate_options(
    data, *, num_steps, batch_size, key, model_state, target, tolerance, weights
) -> tuple[int, int | None, bool]:
    """Validates the options shared by :func:`fit_rate_constrained` and the mixture; returns
    ``(num_steps, batch_size, stream)``."""
    v.check_scalar(target, "target", nonnegative=True)
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    v.check_scalar(tolerance, "tolerance", nonnegative=True)
    if model_state is not None and key is None:
        raise ValueError("`key` is required with `model_state` (it makes the per-step keys).")
    stream = _loop.is_stream(data)
    if stream:
        if batch_size is not None or weights is not None:
            raise ValueError(
                "a stream of batches takes neither `batch_size` nor `weights` (each batch is "
                "one step's mini-batch, of unweighted rows)."
            )
    elif batch_size is not None:
        n = _loop.num_rows(data)
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)
        if key is None:
            raise ValueError("`key` is required with `batch_size` (it shuffles the rows).")
    return num_steps, batch_size, stream


def _run_rate_constrained(
    model,
    params,
    data,
    *,
    target,
    num_groups,
    optimizer,
    criterion,
    multiplier_optimizer,
    num_steps,
    regularizer,
    weights,
    validation_data,
    tolerance,
    track_best,
    candidate_steps,
    batch_size=None,
    key=None,
    model_state=None,
):
    """Validates the arrays of :func:`fit_rate_constrained` and
    :func:`fit_rate_constrained_mixture` and runs their compiled program (see
    :func:`_rate_constrained_program`); ``history`` comes back as NumPy arrays."""
    dtype = jnp.result_type(float)
    n = _check_rate_batch(data, num_groups, "data")
    if validation_data is not None:
        _check_rate_batch(validation_data, num_groups, "validation_data")
    weights = v.check_weights(weights, n)
    weights = jnp.ones(n, dtype) if weights is None else weights.astype(dtype)
    bound = np.asarray(target, dtype) + np.asarray(tolerance, dtype)
    *out, history, gaps, candidates = _rate_constrained_program(
        model=model,
        regularizer=regularizer,
        optimizer=optimizer,
        multiplier_optimizer=multiplier_optimizer,
        num_steps=num_steps,
        num_groups=num_groups,
        criterion=criterion,
        track_best=track_best,
        candidate_steps=candidate_steps,
        batch_size=batch_size,
        params=params,
        data=data,
        weights=weights,
        val=validation_data,
        target=jnp.asarray(target, dtype),
        bound=jnp.asarray(bound),
        key=key,
        model_state=model_state,
    )
    return (*out, {k: np.asarray(h) for k, h in history.items()}, gaps, candidates)


def _check_rate_batch(batch: PyTree, num_groups: int, name: str) -> int:
    """Checks a ``(X, y, groups)`` batch of :func:`fit_rate_constrained`: 0/1 labels and
    integer group ids in ``[0, num_groups)``, one per row; returns the number of rows."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 3):
        raise ValueError(f"`{name}` must be a tuple (X, y, groups), got {type(batch).__name__}.")
    y = v.as_array(batch[1], f"{name} labels", ndim=1)
    v.check_binary(y, f"{name} labels")
    s = v.check_groups(batch[2], num_groups=num_groups, n=y.shape[0])
    if s.ndim != 1:
        raise ValueError(f"`{name}` groups must be integer ids of shape (n,), got {s.shape}.")
    return y.shape[0]


def _decision_gaps(logits, batch, weights, num_groups, criterion):
    """``r^c_g - r^c_g'`` of the decisions ``logits > 0`` for every condition of the criterion
    and pair of non-empty groups (0 elsewhere), shape ``(C, G, G)``; ``weights`` may be None."""
    _, y, s = batch
    decisions = (logits > 0).astype(jnp.result_type(float))
    rates, counts = criteria.group_rates(
        decisions, s, y, criterion=criterion, num_groups=num_groups, weights=weights
    )
    return criteria.pairwise_gaps(rates, counts)


class _Costs(NamedTuple):
    """The parts of the reduction's costs that do not depend on the multipliers."""

    y: Array  # (n,) labels as floats
    slope: Array  # (C, n): d r^c_{s_i} / d h_i, w_i / W^c_g on the rows c counts, else 0
    pairs: Array  # (C, G, G): the pairs of non-empty groups (the constraints that exist)
    error_cost: Array  # (n,): the 0-1 error's cost w_i (1 - 2 y_i) / W


def _costs(data, weights, criterion, num_groups) -> _Costs:
    _, y, s = data
    dtype = jnp.result_type(float)
    y = y.astype(dtype)
    rows = criteria.condition_weights(criterion, y, weights, n=y.shape[0], dtype=dtype)
    counts = jnp.stack([groups.group_counts(s, num_groups=num_groups, weights=r) for r in rows])
    slope = rows * groups.safe_divide(jnp.ones_like(counts), counts)[:, s]
    pairs = (counts[:, :, None] > 0) & (counts[:, None, :] > 0)
    return _Costs(y, slope, pairs, weights * (1 - 2 * y) / jnp.sum(weights))


def _measure(z, data, weights, criterion, num_groups):
    """The largest gap (and all of them, ``(C, G, G)``) and the weighted error of the decisions
    ``z > 0`` on ``data`` (``weights`` may be None: unit weights). The error sums the weights
    of the misclassified rows, so iterates that misclassify rows of the same total weight tie
    exactly (with unit weights, up to 2^24 rows in float32)."""
    gaps = _decision_gaps(z, data, weights, num_groups, criterion)
    if weights is None:
        weights = jnp.ones(z.shape[0], jnp.result_type(float))
    wrong = (z > 0) != (data[1] > 0.5)
    error = jnp.sum(jnp.where(wrong, weights, 0)) / jnp.sum(weights)
    return jnp.max(gaps), gaps, error


def _ascend(multiplier_optimizer, state, gaps, target, pairs):
    """Projected ascent of the multipliers on the violations ``gaps - target``, onto
    ``mu >= 0``. A pair without rows of both groups in the batch (``pairs`` False) keeps its
    multiplier: 0 in full-batch training, where such a pair has no constraint."""
    mu = state.multiplier
    updates, mu_state = multiplier_optimizer.update(
        -(gaps.reshape(mu.shape) - target), state.multiplier_opt_state, mu
    )
    new = jnp.maximum(optax.apply_updates(mu, updates), 0)
    return jnp.where(pairs.reshape(mu.shape), new, mu), mu_state


def _rate_step(*, model, regularizer, optimizer, multiplier_optimizer, criterion, num_groups):
    """One simultaneous update of the reduction (not jitted):
    ``step(state, data, weights, key, target, costs=None, gaps=None) -> (state, measured)``.

    The parameters take one optimizer step on the logistic surrogate of the cost-sensitive
    problem at the current multipliers; the multipliers ascend on the exact gaps of the same
    forward pass's decisions on ``data`` (or on ``gaps``, measured elsewhere, when given).
    ``costs`` default to those of ``data`` (a mini-batch: its own group counts). ``measured``
    is ``(largest gap, gaps (C, G, G), weighted error)`` of the decisions on ``data``.
    """
    C, G = len(criterion.conditions), num_groups

    def surrogate(params, x):
        net, data, costs, key, model_state = x
        cost = costs.error_cost + jnp.sum(net[:, data[2]] * costs.slope, axis=0)
        labels = (cost < 0).astype(costs.y.dtype)
        z, model_state = _forward(model, params, data, key, model_state)
        value = jnp.sum(jnp.abs(cost) * losses.logistic(z, labels))
        value = value if regularizer is None else value + regularizer(params)
        return value, (z, model_state)

    primal = _loop.make_step(surrogate, optimizer, has_aux=True)

    def step(state, data, weights, key, target, costs=None, gaps=None):
        costs = _costs(data, weights, criterion, G) if costs is None else costs
        mu = state.multiplier.reshape(C, G, G)
        net = jnp.sum(mu, axis=2) - jnp.sum(mu, axis=1)
        x = (net, data, costs, key, state.model_state)
        p, opt_state, (_, (z, model_state)) = primal(state.params, state.opt_state, x)
        measured = _measure(jax.lax.stop_gradient(z), data, weights, criterion, G)
        ascend_on = measured[1] if gaps is None else gaps
        mu, mu_state = _ascend(multiplier_optimizer, state, ascend_on, target, costs.pairs)
        new = ConstrainedState(p, mu, opt_state, mu_state, state.step + 1, model_state)
        return new, measured

    return step


def _evaluate(model, criterion, num_groups, params, model_state, data, weights=None):
    """:func:`_measure` of ``params`` on ``data`` in evaluation mode (a stateful model runs
    with ``key=None``)."""
    z = _forward(model, params, data, None, model_state)[0]
    return _measure(z, data, weights, criterion, num_groups)


def _select(better, candidate, current):
    return jax.tree.map(lambda c, b: jnp.where(better, c, b), candidate, current)


def _init_kept(params, model_state, candidate_steps, num_steps, shape, dtype):
    """Buffers for the candidate iterates (one slot each, plus a scratch slot) and the slot
    each step writes to; ``(None, None)`` without candidates."""
    if not candidate_steps:
        return None, None
    num_kept = len(candidate_steps)
    slot_of_step = np.full(num_steps, num_kept, np.int32)
    slot_of_step[list(candidate_steps)] = np.arange(num_kept)
    kept = jax.tree.map(
        lambda x: jnp.zeros((num_kept + 1, *jnp.shape(x)), jnp.result_type(x)),
        (params, model_state, jnp.zeros(shape, dtype), jnp.zeros((), dtype)),
    )
    return kept, jnp.asarray(slot_of_step)


@functools.partial(
    jax.jit,
    static_argnames=(
        "model",
        "regularizer",
        "optimizer",
        "multiplier_optimizer",
        "num_steps",
        "num_groups",
        "criterion",
        "track_best",
        "candidate_steps",
        "batch_size",
    ),
)
def _rate_constrained_program(
    *,
    model,
    regularizer,
    optimizer,
    multiplier_optimizer,
    num_steps,
    num_groups,
    criterion,
    track_best,
    candidate_steps,
    batch_size,
    params,
    data,
    weights,
    val,
    target,
    bound,
    key,
    model_state,
):
    """:func:`fit_rate_constrained`'s loop and the final gaps of the returned iterate (the last
    one, or with ``track_best`` the feasible one of lowest training error), one compiled
    program. Returns ``(state, params, step, history, gaps, candidates)``.

    The steps follow :func:`fairjax._loop.scan_steps`: full batch, or shuffled mini-batches of
    ``batch_size`` by ``key`` (each with its own costs and gaps); a stateful model gets a
    per-step key. Iterates are compared, and ``history`` is measured, on the batch each step
    sees (for a stateful model, in training mode); the returned gaps are measured on the full
    data in evaluation mode.

    ``candidate_steps``, a sorted tuple of steps in ``[0, num_steps)`` (empty: none), names
    the iterates kept for :func:`fit_rate_constrained_mixture`, with the last iterate after
    them: ``candidates`` is ``(params, model_states, train_gaps, errors, validation_gaps)`` of
    those iterates, leaves with a leading axis ``len(candidate_steps) + 1``, gaps ``(C, G, G)``
    each, measured on the full data in evaluation mode (validation gaps None without ``val``);
    None when ``candidate_steps`` is empty."""
    dtype = jnp.result_type(float)
    C, G = len(criterion.conditions), num_groups
    full_costs = _costs(data, weights, criterion, G)
    step = _rate_step(
        model=model,
        regularizer=regularizer,
        optimizer=optimizer,
        multiplier_optimizer=multiplier_optimizer,
        criterion=criterion,
        num_groups=G,
    )
    evaluate = functools.partial(_evaluate, model, criterion, G)

    def improves(gap, error, best):
        return (gap <= bound) & (error < best[1])

    def body(carry, batch, step_key):
        state, best, kept = carry
        # Simultaneous updates: the parameters' gradient and the multipliers' gaps both come
        # from the logits of the current parameters (one forward pass of the model per step).
        if batch_size is None:
            new, (gap, gaps, error) = step(state, data, weights, step_key, target, full_costs)
        else:
            new, (gap, gaps, error) = step(state, *batch, step_key, target)
        if track_best:
            candidate = (state.params, error, state.step, gap)
            best = _select(improves(gap, error, best), candidate, best)
        if kept is not None:
            # Every step writes its iterate to a slot: its own if it is a candidate, else a
            # scratch slot past the end (one in-place update per step, no branch).
            kept = jax.tree.map(
                lambda buf, x: jax.lax.dynamic_update_index_in_dim(
                    buf, x, slot_of_step[state.step], 0
                ),
                kept,
                (state.params, state.model_state, gaps, error),
            )
        return (new, best, kept), {"constraint": gap, "error": error}

    mu0 = jnp.zeros((G, G) if C == 1 else (C, G, G), dtype)
    state = initial_state(params, mu0, optimizer, multiplier_optimizer, model_state)
    inf = jnp.asarray(jnp.inf, dtype)
    best = (params, inf, jnp.asarray(-1, jnp.int32), inf)
    kept, slot_of_step = _init_kept(
        params, model_state, candidate_steps, num_steps, (C, G, G), dtype
    )
    (state, best, kept), history = _loop.scan_steps(
        body,
        (state, best, kept),
        (data, weights),
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
        step_keys=model_state is not None,
    )
    # The last iterate (after the last update) is measured here, and is a candidate too.
    gap, last_gaps, error = evaluate(state.params, state.model_state, data, weights)
    last = (state.params, error, jnp.asarray(num_steps, jnp.int32), gap)
    if track_best:
        # The last iterate wins if it is better or if no iterate was feasible.
        last = _select(improves(gap, error, best) | (best[2] < 0), last, best)
    chosen, _, step_index, gap = last
    if track_best and (batch_size is not None or model_state is not None):
        # Chosen on its batch (or in training mode): its gap on the full data, evaluated.
        gap = evaluate(chosen, state.model_state, data, weights)[0]
    final = [gap]
    if val is not None:
        final.append(evaluate(chosen, state.model_state, val)[0])
    candidates = None
    if kept is not None:
        # The scratch slot is replaced by the last iterate.
        kept = jax.tree.map(
            lambda buf, x: buf.at[-1].set(x),
            kept,
            (state.params, state.model_state, last_gaps, error),
        )
        if batch_size is not None or model_state is not None:
            # Measured on mini-batches or in training mode: measure again, on the full data.
            _, gaps, errors = jax.lax.map(
                lambda pm: evaluate(*pm, data, weights), (kept[0], kept[1])
            )
            kept = (kept[0], kept[1], gaps, errors)
        val_gaps = None
        if val is not None:
            val_gaps = jax.lax.map(lambda pm: evaluate(*pm, val)[1], (kept[0], kept[1]))
        candidates = (*kept, val_gaps)
    return state, chosen, step_index, history, jnp.stack(final), candidates


# ----------------------------------------------------------------------------- streams


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def run_rate_stream(
    model,
    params,
    stream,
    *,
    target,
    num_groups,
    optimizer,
    criterion,
    multiplier_optimizer,
    num_steps,
    regularizer,
    validation_data,
    key,
    model_state,
    constraint_data,
    eval_every,
    candidate_steps,
):
    """Runs the reduction on ``stream``. Returns ``(state, params, num_taken, history, gaps,
    candidates, candidate_steps)`` like the compiled program (``gaps``: the last iterate's
    largest gap on ``constraint_data``, NaN without it, then on ``validation_data``), with the
    steps of the kept candidates (those the stream reached, then the last iterate)."""
    dtype = jnp.result_type(float)
    for data, name in ((constraint_data, "constraint_data"), (validation_data, "validation_data")):
        if data is not None:
            _check_rate_batch(data, num_groups, name)
    if candidate_steps and constraint_data is None:
        raise ValueError(
            "a mixture trained on a stream needs `constraint_data`: its candidates' errors and "
            "gaps are measured there."
        )
    C, G = len(criterion.conditions), num_groups
    step = jax.jit(
        _rate_step(
            model=model,
            regularizer=regularizer,
            optimizer=optimizer,
            multiplier_optimizer=multiplier_optimizer,
            criterion=criterion,
            num_groups=G,
        )
    )
    evaluate = jax.jit(functools.partial(_evaluate, model, criterion, G))
    mu0 = jnp.zeros((G, G) if C == 1 else (C, G, G), dtype)
    state = initial_state(params, mu0, optimizer, multiplier_optimizer, model_state)
    target = jnp.asarray(target, dtype)
    wanted, kept = set(candidate_steps), {}
    gaps, errors, eval_steps, eval_values, dual = [], [], [], [], None
    for t, batch in enumerate(itertools.islice(iter(stream), num_steps)):
        n = _check_rate_batch(batch, G, f"batch {t} of data")
        if constraint_data is not None and t % eval_every == 0:
            largest, dual, _ = evaluate(state.params, state.model_state, constraint_data)
            eval_steps.append(t)
            eval_values.append(largest)
        if t in wanted:
            kept[t] = (state.params, state.model_state)
        sub = None if key is None else jax.random.fold_in(key, t)
        state, (gap, _, error) = step(state, batch, jnp.ones(n, dtype), sub, target, None, dual)
        gaps.append(gap)
        errors.append(error)
    if not gaps:
        raise ValueError("`data` is an empty stream: no batch to train on.")
    taken = len(gaps)
    history = {"constraint": np.asarray(gaps), "error": np.asarray(errors)}
    final = [np.asarray(np.nan, dtype)]
    if constraint_data is not None:
        final[0] = evaluate(state.params, state.model_state, constraint_data)[0]
        history["eval_step"] = np.asarray([*eval_steps, taken])
        history["eval_constraint"] = np.asarray([*eval_values, final[0]])
    if validation_data is not None:
        final.append(evaluate(state.params, state.model_state, validation_data)[0])
    candidates, steps = None, None
    if candidate_steps:
        steps = [*sorted(kept), taken]
        items = [kept[t] for t in sorted(kept)] + [(state.params, state.model_state)]
        train = [evaluate(p, ms, constraint_data) for p, ms in items]
        val = None
        if validation_data is not None:
            val = jnp.stack([evaluate(p, ms, validation_data)[1] for p, ms in items])
        candidates = (
            _stack([p for p, _ in items]),
            _stack([ms for _, ms in items]),
            jnp.stack([m[1] for m in train]),
            jnp.stack([m[2] for m in train]),
            val,
        )
    return state, state.params, taken, history, np.asarray(final), candidates, steps
