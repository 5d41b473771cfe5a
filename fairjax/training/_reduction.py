r"""Rate constraints by reduction: cost-sensitive steps against exact gaps in decision rates.

:func:`fit_rate_constrained` trains a binary classifier to a bound on the gaps between its groups'
decision rates, with the rates of a :mod:`fairjax.criteria` criterion; the compiled loop here
also keeps the candidate iterates of :func:`fairjax.training.fit_rate_constrained_mixture`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, criteria
from fairjax import _validation as v

from ._lagrangian import ConstrainedResult, check_iterate, initial_state
from ._penalized import Array, ArrayLike, Model, PyTree
from ._rate_step import RateProblem, check_rate_batch, multiplier_shape, rate_costs, rate_step
from ._rate_step import evaluate as _evaluate
from ._rate_stream import run_rate_stream

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
    num_classes: int | None = None,
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
    iterate; of equal errors the earliest wins. With full batches and a stateless model the
    bound then holds on the training data by construction (with mini-batches each step is
    judged on its own batch: see below); when no iterate is feasible the last one is returned.
    A zero start (the constant classifier, gap 0) is always feasible, so look at
    ``selected_step``.

    **K classes.** With ``num_classes=K`` the model returns logits ``(n, K)``, decides the
    arg-max class, and the bound is on every class's one-vs-rest rate gap (the rates of
    :func:`fairjax.metrics.class_group_rates`: each class's selection rate for demographic
    parity, its true-positive rate for equal opportunity, and so on); labels are class ids
    ``(n,)`` or one-hot ``(n, K)``. The Lagrangian stays linear in the one-hot decisions, so
    the best response is cost-sensitive multiclass classification (the lowest-cost class of
    each row); its surrogate is the softmax cross-entropy toward that class, weighted by the
    row's cost margin (the binary surrogate when ``K = 2``). The multipliers then have shape
    ``(K, C, G, G)``.

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
      num_classes: ``K`` for a ``K``-class model (``None``: binary, logits ``(n,)``).
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
      constraint_data: for a stream, the ``(X, y, groups)`` on which the gaps are measured
        (refused with arrays, whose gaps are measured on ``data``).
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
    check_iterate(iterate)
    state, chosen, chosen_step, history, gaps, _, _, stream = run_reduction(
        model,
        params,
        data,
        target=target,
        num_groups=num_groups,
        num_classes=num_classes,
        optimizer=optimizer,
        criterion=crit,
        multiplier_optimizer=(
            _RATE_MULTIPLIER_OPTIMIZER if multiplier_optimizer is None else multiplier_optimizer
        ),
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
        model_state=model_state,
        regularizer=regularizer,
        weights=weights,
        validation_data=validation_data,
        constraint_data=constraint_data,
        eval_every=eval_every,
        tolerance=tolerance,
        iterate=iterate,
    )
    train_gap = float(gaps[0])
    val_gap = float("nan") if validation_data is None else float(gaps[1])
    measured = train_gap if validation_data is None else val_gap
    bound = np.asarray(target, gaps.dtype) + np.asarray(tolerance, gaps.dtype)
    # The gaps are NaN where a logit is (a NaN logit decides nothing); the parameters are
    # checked too. A stream without constraint_data has no training gap (NaN): not a
    # divergence.
    measured_gaps = gaps[1:] if stream and constraint_data is None else gaps
    # The last iterate too: a run that diverged after its best step is no success.
    ok = _loop.finite("training.fit_rate_constrained", chosen, measured_gaps, state.params)
    nan = float("nan")
    return ConstrainedResult(
        chosen,
        state,
        history,
        int(chosen_step),
        train_gap if ok else nan,
        val_gap if ok else nan,
        ok and bool(np.asarray(measured, gaps.dtype) <= bound),
        ok,
    )


def run_reduction(
    model,
    params,
    data,
    *,
    target,
    num_groups,
    num_classes,
    optimizer,
    criterion,
    multiplier_optimizer,
    num_steps,
    batch_size,
    key,
    model_state,
    regularizer,
    weights,
    validation_data,
    constraint_data,
    eval_every,
    tolerance,
    iterate="last",
    num_candidates=None,
):
    """The options of :func:`fit_rate_constrained` and the mixture checked, and the reduction
    run on arrays (the compiled program) or on a stream. ``num_candidates`` keeps evenly
    spaced iterates for the mixture. Returns ``(state, params, step, history, gaps,
    candidates, candidate_steps, stream)``."""
    v.check_scalar(target, "target", nonnegative=True)
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    v.check_scalar(tolerance, "tolerance", nonnegative=True)
    if num_classes is not None:
        num_classes = v.check_scalar(num_classes, "num_classes", integer=True, low=2)
    if model_state is not None and key is None:
        raise ValueError("`key` is required with `model_state` (it makes the per-step keys).")
    candidate_steps = ()
    if num_candidates is not None:
        kept = min(num_candidates, num_steps)
        candidate_steps = tuple(sorted({k * num_steps // kept for k in range(kept)}))
    problem = RateProblem(
        model, regularizer, optimizer, multiplier_optimizer, criterion, num_groups, num_classes
    )
    options = dict(
        target=target,
        num_steps=num_steps,
        validation_data=validation_data,
        key=key,
        model_state=model_state,
        candidate_steps=candidate_steps,
    )
    if _loop.is_stream(data):
        if batch_size is not None or weights is not None or iterate == "best":
            raise ValueError(
                "a stream of batches takes neither `batch_size`, `weights` nor iterate='best' "
                "(each batch is one step's mini-batch, of unweighted rows)."
            )
        eval_every = v.check_scalar(eval_every, "eval_every", integer=True, positive=True)
        run = run_rate_stream(
            problem, params, data, constraint_data=constraint_data, eval_every=eval_every, **options
        )
        return (*run, True)
    _loop.refuse_constraint_data(constraint_data)
    _warn_one_group(data)
    if batch_size is not None:
        n = _loop.num_rows(data)
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)
        if key is None:
            raise ValueError("`key` is required with `batch_size` (it shuffles the rows).")
    run = _run_rate_constrained(
        problem,
        params,
        data,
        weights=weights,
        tolerance=tolerance,
        track_best=iterate == "best",
        batch_size=batch_size,
        **options,
    )
    return (*run, (*candidate_steps, num_steps), False)


def _warn_one_group(data) -> None:
    """Warns where the rows of concrete ``data`` belong to one group: every gap is then 0, and
    a bound met that way says nothing (a wrong column, or a filtered subset)."""
    groups = data[2] if isinstance(data, (tuple, list)) and len(data) == 3 else None
    if groups is None or not v.is_concrete(groups) or np.ndim(groups) != 1:
        return
    present = np.unique(np.asarray(groups)).size
    if present < 2:
        warnings.warn(
            f"the training rows belong to {present} group: every gap is 0, so the bound holds "
            "without constraining anything (check the group ids).",
            UserWarning,
            stacklevel=4,
        )


def _run_rate_constrained(
    problem: RateProblem,
    params,
    data,
    *,
    target,
    num_steps,
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
    G, K = problem.num_groups, problem.num_classes
    n = check_rate_batch(data, G, "data", K)
    if validation_data is not None:
        check_rate_batch(validation_data, G, "validation_data", K)
    weights = v.check_weights(weights, n)
    weights = jnp.ones(n, dtype) if weights is None else weights.astype(dtype)
    bound = np.asarray(target, dtype) + np.asarray(tolerance, dtype)
    *out, history, gaps, candidates = _rate_constrained_program(
        problem=problem,
        num_steps=num_steps,
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
    static_argnames=("problem", "num_steps", "track_best", "candidate_steps", "batch_size"),
)
def _rate_constrained_program(
    *,
    problem,
    num_steps,
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
    (``(K, C, G, G)`` for ``K`` classes) each, measured on the full data in evaluation mode
    (validation gaps None without ``val``); None when ``candidate_steps`` is empty."""
    dtype = jnp.result_type(float)
    criterion, G, K = problem.criterion, problem.num_groups, problem.num_classes
    full_costs = rate_costs(data, weights, criterion, G, K)
    step = rate_step(problem)
    evaluate = functools.partial(_evaluate, problem)

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

    shape = multiplier_shape(criterion, G, K)
    state = initial_state(
        params,
        jnp.zeros(shape, dtype),
        problem.optimizer,
        problem.multiplier_optimizer,
        model_state,
    )
    inf = jnp.asarray(jnp.inf, dtype)
    best = (params, inf, jnp.asarray(-1, jnp.int32), inf)
    gaps_shape = (
        (len(criterion.conditions), G, G) if K is None else (K, len(criterion.conditions), G, G)
    )
    kept, slot_of_step = _init_kept(
        params, model_state, candidate_steps, num_steps, gaps_shape, dtype
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
        last_kept = (state.params, state.model_state, last_gaps, error)
        remeasure = batch_size is not None or model_state is not None
        candidates = _candidates(kept, last_kept, evaluate, data, weights, val, remeasure)
    return state, chosen, step_index, history, jnp.stack(final), candidates


def _candidates(kept, last, evaluate, data, weights, val, remeasure):
    """``(params, model_states, train_gaps, errors, validation_gaps)`` of the kept iterates,
    the scratch slot replaced by the ``last`` iterate; with ``remeasure`` (iterates measured on
    mini-batches or in training mode) their gaps and errors measured again on the full data."""
    kept = jax.tree.map(lambda buf, x: buf.at[-1].set(x), kept, last)
    if remeasure:
        _, gaps, errors = jax.lax.map(lambda pm: evaluate(*pm, data, weights), (kept[0], kept[1]))
        kept = (kept[0], kept[1], gaps, errors)
    val_gaps = None
    if val is not None:
        val_gaps = jax.lax.map(lambda pm: evaluate(*pm, val)[1], (kept[0], kept[1]))
    return (*kept, val_gaps)
