r"""Rate constraints by reduction: cost-sensitive steps against exact gaps in decision rates.

:func:`fit_rate_constrained` trains a binary classifier to a bound on the gaps between its groups'
decision rates, with the rates of a :mod:`fairjax.criteria` criterion; the compiled loop here
also keeps the candidate iterates of :func:`fairjax.training.fit_rate_constrained_mixture`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, criteria, groups, losses
from fairjax import _validation as v

from ._lagrangian import ConstrainedResult, ConstrainedState, initial_state
from ._penalized import Array, ArrayLike, Model, PyTree

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
    regularizer: Callable[[PyTree], Array] | None = None,
    weights: ArrayLike | None = None,
    validation_data: PyTree | None = None,
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

    .. versionchanged:: 0.1.0
       ``constraint=`` became ``criterion=`` (the old keyword warns), and
       ``"false_positive_parity"`` is accepted.

    Args:
      model: ``model(params, batch) -> logits`` of shape ``(n,)``; the decision is
        ``logits > 0``.
      params: initial parameters (a PyTree).
      data: the training batch ``(X, y, groups)`` (as :meth:`fairjax.datasets.Dataset.batch`
        returns): the model sees the whole tuple; ``y`` holds 0/1 labels and ``groups``
        integer ids in ``[0, num_groups)``.
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
      num_steps: number of updates.
      regularizer: optional ``regularizer(params) -> scalar`` added to the surrogate.
      weights: optional non-negative row weights ``(n,)`` of the training data (a row of
        weight 0 changes nothing; integer weights act as repeated rows).
      validation_data: held-out ``(X, y, groups)`` on which the gap is reported (unweighted).
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
    state, chosen, chosen_step, history, gaps, _ = _run_rate_constrained(
        model,
        params,
        data,
        target=target,
        num_groups=num_groups,
        optimizer=optimizer,
        criterion=crit,
        multiplier_optimizer=(
            _RATE_MULTIPLIER_OPTIMIZER if multiplier_optimizer is None else multiplier_optimizer
        ),
        num_steps=num_steps,
        regularizer=regularizer,
        weights=weights,
        validation_data=validation_data,
        tolerance=tolerance,
        track_best=iterate == "best",
        candidate_steps=(),
    )
    train_gap = float(gaps[0])
    val_gap = float("nan") if validation_data is None else float(gaps[1])
    measured = train_gap if validation_data is None else val_gap
    bound = np.asarray(target, gaps.dtype) + np.asarray(tolerance, gaps.dtype)
    # The gaps are of hard decisions (NaN logits decide 0 everywhere: no gap), so the check
    # that matters is on the parameters.
    ok = _loop.finite("training.fit_rate_constrained", chosen, gaps)
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
):
    """Validates the arguments of :func:`fit_rate_constrained` and
    :func:`fit_rate_constrained_mixture` and runs their compiled program (see
    :func:`_rate_constrained_program`); ``history`` comes back as NumPy arrays."""
    v.check_scalar(target, "target", nonnegative=True)
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    v.check_scalar(tolerance, "tolerance", nonnegative=True)
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
        params=params,
        data=data,
        weights=weights,
        val=validation_data,
        target=jnp.asarray(target, dtype),
        bound=jnp.asarray(bound),
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
    total: Array  # the sum of the weights
    error_cost: Array  # (n,): the 0-1 error's cost w_i (1 - 2 y_i) / W


def _costs(data, weights, criterion, num_groups) -> _Costs:
    _, y, s = data
    dtype = jnp.result_type(float)
    y = y.astype(dtype)
    rows = criteria.condition_weights(criterion, y, weights, n=y.shape[0], dtype=dtype)
    counts = jnp.stack([groups.group_counts(s, num_groups=num_groups, weights=r) for r in rows])
    slope = rows * groups.safe_divide(jnp.ones_like(counts), counts)[:, s]
    pairs = (counts[:, :, None] > 0) & (counts[:, None, :] > 0)
    total = jnp.sum(weights)
    return _Costs(y, slope, pairs, total, weights * (1 - 2 * y) / total)


def _measure(z, data, weights, costs, criterion, num_groups):
    """The largest gap (and all of them, ``(C, G, G)``) and the weighted training error of the
    decisions ``z > 0``. The error sums the weights of the misclassified rows, so iterates that
    misclassify rows of the same total weight tie exactly (with unit weights, up to 2^24 rows
    in float32)."""
    gaps = _decision_gaps(z, data, weights, num_groups, criterion)
    error = jnp.sum(jnp.where((z > 0) != (costs.y > 0.5), weights, 0)) / costs.total
    return jnp.max(gaps), gaps, error


def _surrogate(model, regularizer, data, costs, params, net):
    """The weighted log-loss of the relabelled rows at the multipliers' net weights ``net``
    (``(C, G)``), with the logits as auxiliary output."""
    cost = costs.error_cost + jnp.sum(net[:, data[2]] * costs.slope, axis=0)
    labels = (cost < 0).astype(costs.y.dtype)
    z = model(params, data)
    value = jnp.sum(jnp.abs(cost) * losses.logistic(z, labels))
    return (value if regularizer is None else value + regularizer(params)), z


def _ascend(multiplier_optimizer, state, gaps, target, pairs):
    """Projected ascent of the multipliers on the violations ``gaps - target``: onto
    ``mu >= 0``, and 0 for a pair with an empty group (no constraint; the ascent alone keeps
    it there for SGD, not for every optimizer)."""
    mu = state.multiplier
    updates, mu_state = multiplier_optimizer.update(
        -(gaps.reshape(mu.shape) - target), state.multiplier_opt_state, mu
    )
    mu = jnp.maximum(optax.apply_updates(mu, updates), 0)
    return jnp.where(pairs.reshape(mu.shape), mu, 0), mu_state


def _select(better, candidate, current):
    return jax.tree.map(lambda c, b: jnp.where(better, c, b), candidate, current)


def _init_kept(params, candidate_steps, num_steps, shape, dtype):
    """Buffers for the candidate iterates (one slot each, plus a scratch slot) and the slot
    each step writes to; ``(None, None)`` without candidates."""
    if not candidate_steps:
        return None, None
    num_kept = len(candidate_steps)
    slot_of_step = np.full(num_steps, num_kept, np.int32)
    slot_of_step[list(candidate_steps)] = np.arange(num_kept)
    kept = jax.tree.map(
        lambda x: jnp.zeros((num_kept + 1, *jnp.shape(x)), jnp.result_type(x)),
        (params, jnp.zeros(shape, dtype), jnp.zeros((), dtype)),
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
    params,
    data,
    weights,
    val,
    target,
    bound,
):
    """:func:`fit_rate_constrained`'s loop and the final gaps of the returned iterate (the last
    one, or with ``track_best`` the feasible one of lowest training error), one compiled
    program. Returns ``(state, params, step, history, gaps, candidates)``.

    ``candidate_steps``, a sorted tuple of steps in ``[0, num_steps)`` (empty: none), names
    the iterates kept for :func:`fit_rate_constrained_mixture`, with the last iterate after
    them: ``candidates`` is ``(params, train_gaps, errors, validation_gaps)`` of those
    iterates, leaves with a leading axis ``len(candidate_steps) + 1``, gaps ``(C, G, G)`` each
    (validation gaps None without ``val``); None when ``candidate_steps`` is empty."""
    dtype = jnp.result_type(float)
    C, G = len(criterion.conditions), num_groups
    costs = _costs(data, weights, criterion, G)
    measure = functools.partial(
        _measure, data=data, weights=weights, costs=costs, criterion=criterion, num_groups=G
    )
    surrogate = functools.partial(_surrogate, model, regularizer, data, costs)
    primal = _loop.make_step(surrogate, optimizer, has_aux=True)

    def improves(gap, error, best):
        return (gap <= bound) & (error < best[1])

    def body(carry, _):
        state, best, kept = carry
        # Simultaneous updates: the parameters' gradient and the multipliers' gaps both come
        # from the logits of the current parameters (one forward pass of the model per step).
        mu = state.multiplier.reshape(C, G, G)
        net = jnp.sum(mu, axis=2) - jnp.sum(mu, axis=1)
        p, opt_state, (_, z) = primal(state.params, state.opt_state, net)
        gap, gaps, error = measure(jax.lax.stop_gradient(z))
        mu, mu_state = _ascend(multiplier_optimizer, state, gaps, target, costs.pairs)
        new = ConstrainedState(p, mu, opt_state, mu_state, state.step + 1)
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
                (state.params, gaps, error),
            )
        return (new, best, kept), {"constraint": gap, "error": error}

    mu0 = jnp.zeros((G, G) if C == 1 else (C, G, G), dtype)
    state = initial_state(params, mu0, optimizer, multiplier_optimizer)
    inf = jnp.asarray(jnp.inf, dtype)
    best = (params, inf, jnp.asarray(-1, jnp.int32), inf)
    kept, slot_of_step = _init_kept(params, candidate_steps, num_steps, (C, G, G), dtype)
    (state, best, kept), history = jax.lax.scan(body, (state, best, kept), None, length=num_steps)
    # The last iterate (after the last update) is measured here, and is a candidate too.
    gap, last_gaps, error = measure(model(state.params, data))
    last = (state.params, error, jnp.asarray(num_steps, jnp.int32), gap)
    if track_best:
        # The last iterate wins if it is better or if no iterate was feasible.
        last = _select(improves(gap, error, best) | (best[2] < 0), last, best)
    chosen, _, step, gap = last
    final = [gap]
    if val is not None:
        final.append(jnp.max(_decision_gaps(model(chosen, val), val, None, G, criterion)))
    candidates = None
    if kept is not None:
        # The scratch slot is replaced by the last iterate.
        candidates = jax.tree.map(
            lambda buf, x: buf.at[-1].set(x), kept, (state.params, last_gaps, error)
        )
        val_gaps = None
        if val is not None:
            val_gaps = jax.lax.map(
                lambda p: _decision_gaps(model(p, val), val, None, G, criterion), candidates[0]
            )
        candidates = (*candidates, val_gaps)
    return state, chosen, step, history, jnp.stack(final), candidates
