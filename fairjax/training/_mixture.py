r"""Randomised classifiers: the best mixture of the reduction's iterates under a bound.

:func:`fit_rate_constrained_mixture` trains as :func:`fairjax.training.fit_rate_constrained`
does and keeps evenly spaced iterates; :func:`best_mixture` solves the linear program over their
errors and gaps; :func:`mixture_decisions` gives a mixture's expected (or drawn) decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, criteria
from fairjax import _validation as v

from ._lagrangian import ConstrainedState
from ._penalized import Array, ArrayLike, Model, PyTree, _forward
from ._reduction import _reducible, run_reduction

# fit_rate_constrained_mixture's default multiplier optimizer: twice as fast as
# fit_rate_constrained's, so that the iterates cross the bound and the mixture has candidates
# on both sides of it. One object, so that repeated calls hit the compiled program's cache.
_RATE_MIXTURE_MULTIPLIER_OPTIMIZER = optax.sgd(0.02)


class MixtureResult(NamedTuple):
    """The outcome of :func:`fit_rate_constrained_mixture`: a randomised classifier.

    Attributes:
      params: the parameters of the mixture's components, each leaf with a leading axis of
        size ``J``: the candidate iterates of positive weight, in step order.
      probabilities: the probability of each component, shape ``(J,)`` (float64, sum 1).
      steps: the step of each component, shape ``(J,)`` (``num_steps`` for the last iterate).
      state: the final :class:`ConstrainedState` (``state.params`` is the last iterate).
      history: as for :func:`fit_rate_constrained`: ``"constraint"`` and ``"error"`` of the
        iterate each step starts from.
      train_error: the mixture's expected (weighted) training error.
      train_constraint: the largest expected gap of the mixture on the training data.
      validation_constraint: the same on ``validation_data`` (NaN when none was given).
      satisfied: whether ``validation_constraint`` (else ``train_constraint``) is
        ``<= target + tolerance``; always False when ``finite`` is False.
      candidates: what the linear program chose from, one entry per candidate iterate (the
        last one last): ``"steps"``, ``"error"`` (weighted training error), ``"constraint"``
        (largest training gap) and ``"gaps"``, the pairwise gaps :math:`r^c_g - r^c_{g'}`,
        shape ``(J, C, G, G)`` for ``J`` candidates (``C = 2`` for equalized odds, else 1;
        ``(J, K, C, G, G)`` with ``num_classes=K``); with
        ``validation_data`` also ``"validation_gaps"``. :func:`best_mixture` re-solves the
        program from them at another bound, without training again.
      finite: whether the mixed parameters and the mixture's constraints are finite (False:
        training diverged, ``satisfied`` is False and a :class:`DivergenceWarning` was issued).
      model_state: for a stateful model, each component's model state (leaves with a leading
        axis ``J``, for :func:`mixture_decisions`); None for a stateless one.
    """

    params: PyTree
    probabilities: np.ndarray
    steps: np.ndarray
    state: ConstrainedState
    history: dict[str, np.ndarray]
    train_error: float
    train_constraint: float
    validation_constraint: float
    satisfied: bool
    candidates: dict[str, np.ndarray]
    finite: bool = True
    model_state: PyTree = None


def fit_rate_constrained_mixture(
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
    num_candidates: int = 200,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    regularizer: Callable[[PyTree], Array] | None = None,
    weights: ArrayLike | None = None,
    validation_data: PyTree | None = None,
    constraint_data: PyTree | None = None,
    eval_every: int = 100,
    tolerance: float = 0.0,
    constraint: str | None = None,
) -> MixtureResult:
    r"""Trains a randomised classifier to a bound on its expected group gap in decision rates.

    The training is :func:`fit_rate_constrained`'s; the model returned is a mixture of its
    iterates, as ExponentiatedGradient returns a mixture of its best responses (Agarwal et al.,
    2018). Each prediction draws a component :math:`j` with probability :math:`q_j`, so the
    expected decision on a row is :math:`p(x) = \sum_j q_j [f_{\theta_j}(x) > 0]`. Every rate
    :math:`r^c_g` and the error are means of the decisions, hence linear in :math:`q`: the
    mixture's expected rates are :math:`\sum_j q_j r^c_{g,j}`, and the best mixture of the
    candidates is the linear program

    .. math::

        \min_{q \in \Delta_J} \sum_j q_j\, e_j \quad \text{s.t.} \quad
        \sum_j q_j \left(r^c_{g,j} - r^c_{g',j}\right) \le \epsilon
        \quad \text{for every condition } c \text{ and pair } g \ne g',

    with :math:`e_j` the weighted training error of candidate :math:`j`. It is solved exactly
    (``scipy.optimize.linprog``, HiGHS) after the compiled training; a vertex solution mixes
    at most one more component than there are binding constraints. The guarantee is on the
    expected gap, as for ExponentiatedGradient: one draw of decisions deviates from it by
    sampling noise (on :math:`n_g` rows of a group, of order :math:`\sqrt{p(1-p)/n_g}`).

    A mixture is only as good as its candidates: it needs iterates on both sides of the bound
    (all on one side, the best it can do is to mix the nearest with one far below, such as the
    constant classifier of a zero start, at a high error). Hence two defaults that differ from
    :func:`fit_rate_constrained`'s: the multipliers move twice as fast (``optax.sgd(0.02)``),
    so that the iterates cross the bound instead of settling on it from one side, and the
    candidates are many (200). ``docs/training.md`` gives how they were chosen and the
    measured accuracies beside ExponentiatedGradient's.

    The candidates are ``num_candidates`` evenly spaced iterates, the parameters at steps
    :math:`\lfloor kN/J \rfloor`, :math:`k = 0, \dots, J - 1` (step 0 is ``params``), and the
    last iterate (all steps when ``num_candidates >= num_steps``); keeping them costs
    ``num_candidates + 1`` copies of the parameters on the device. If no mixture of them meets
    the bound on the training data, the bound is raised to the smallest largest expected gap
    any mixture attains (``train_constraint`` then exceeds ``target``; ``satisfied`` still
    compares the validation gap, or without validation data that one, with
    ``target + tolerance``). ``candidates`` holds every candidate's error and gaps, so
    :func:`best_mixture` can re-solve the program at another bound without training again.

    Mini-batches (``batch_size``, ``key``), streams of batches (``constraint_data``,
    ``eval_every``) and stateful models (``model_state``) train as in
    :func:`fit_rate_constrained`; the candidates' errors and gaps, which the linear program
    uses, are then measured after the training on the full data (for a stream, on
    ``constraint_data``, which it requires), in evaluation mode, each component with its own
    model state (``model_state`` of the result).

    Args:
      model: as in :func:`fit_rate_constrained`; so are ``params``, ``data``, ``target``,
        ``num_groups``, ``optimizer``, ``criterion``, ``num_classes`` (a ``K``-class
        mixture: its candidates' gaps are every class's), ``num_steps``, ``batch_size``, ``key``,
        ``model_state``, ``regularizer``, ``weights``, ``validation_data``,
        ``constraint_data``, ``eval_every`` and the deprecated ``constraint``.
      multiplier_optimizer: optax optimizer of the multipliers (default ``optax.sgd(0.02)``).
      num_candidates: the number of evenly spaced iterates the mixture may use, besides the
        last. Each is a copy of the parameters kept on the device through the training: for a
        large model, fewer.
      tolerance: slack on the bound for ``satisfied`` (the linear program uses ``target``).

    Returns:
      A :class:`MixtureResult`. :func:`mixture_decisions` gives its expected decisions (or
      draws decisions) on any batch.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from fairjax import datasets, metrics, training
      >>> d = datasets.make_classification(jax.random.key(0), n_samples=3000, n_features=4,
      ...                                  num_groups=2, bias=1.0)
      >>> batch = d.batch("train")
      >>> def model(p, b):
      ...     return b[0] @ p["w"] + p["b"]
      >>> res = training.fit_rate_constrained_mixture(
      ...     model, {"w": jnp.zeros(4), "b": jnp.zeros(())}, batch, target=0.05,
      ...     num_groups=2, optimizer=optax.adam(0.05), num_steps=1000)
      >>> float(res.probabilities.sum()), res.train_constraint <= 0.05
      (1.0, True)
      >>> p = training.mixture_decisions(model, res.params, res.probabilities, batch)
      >>> bool(metrics.demographic_parity_difference(p, batch[2], num_groups=2) <= 0.05 + 1e-6)
      True

    References:
      Agarwal, Beygelzimer, Dudík, Langford, Wallach, A Reductions Approach to Fair
      Classification, ICML 2018 (the randomised classifier and its linear program over the
      iterates).
    """
    crit = criteria.resolve(
        _reducible(criterion),
        where="training.fit_rate_constrained_mixture",
        constraint=constraint,
    )
    num_candidates = v.check_scalar(num_candidates, "num_candidates", integer=True, positive=True)
    state, _, _, history, _, candidates, steps, _ = run_reduction(
        model,
        params,
        data,
        target=target,
        num_groups=num_groups,
        num_classes=num_classes,
        optimizer=optimizer,
        criterion=crit,
        multiplier_optimizer=(
            _RATE_MIXTURE_MULTIPLIER_OPTIMIZER
            if multiplier_optimizer is None
            else multiplier_optimizer
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
        num_candidates=num_candidates,
    )
    cand_params, cand_states, train_gaps, errors, val_gaps = candidates
    stats = {
        "steps": np.asarray(steps),
        "error": np.asarray(errors),
        "constraint": np.asarray(train_gaps).reshape(len(steps), -1).max(axis=1),
        "gaps": np.asarray(train_gaps),
    }
    if val_gaps is not None:
        stats["validation_gaps"] = np.asarray(val_gaps)
    # Candidates with NaN decisions (NaN gaps or error) cannot enter the linear program; if
    # none is left, the last one is returned, and reported as diverged below.
    usable = np.isfinite(stats["error"]) & np.isfinite(stats["constraint"])
    q = np.zeros(len(usable))
    if usable.any():
        q[usable] = best_mixture(
            {"error": stats["error"][usable], "gaps": stats["gaps"][usable]}, target=target
        )
    else:
        q[-1] = 1.0
    keep = np.flatnonzero(q)
    train_gap = _expected_gap(q[keep], stats["gaps"][keep])
    val_gap = float("nan")
    if val_gaps is not None:
        val_gap = _expected_gap(q[keep], stats["validation_gaps"][keep])
    # Compared in the program's float dtype, as fit_rate_constrained does.
    dtype = jnp.result_type(float)
    measured = np.asarray(train_gap if validation_data is None else val_gap, dtype)
    mixed = jax.tree.map(lambda a: a[keep], cand_params)
    mixed_states = jax.tree.map(lambda a: a[keep], cand_states)
    # The last iterate too: the program may keep only early (finite) candidates of a run
    # whose data or steps are not finite.
    checked = (mixed, state.params, train_gap, None if val_gaps is None else val_gap)
    ok = _loop.finite("training.fit_rate_constrained_mixture", *checked)
    return MixtureResult(
        mixed,
        q[keep],
        stats["steps"][keep],
        state,
        history,
        float(q[keep] @ stats["error"][keep].astype(np.float64)),
        train_gap,
        val_gap,
        ok and bool(measured <= np.asarray(target, dtype) + np.asarray(tolerance, dtype)),
        stats,
        ok,
        mixed_states,
    )


def _expected_gap(probabilities: np.ndarray, gaps: np.ndarray) -> float:
    """The largest expected gap of a mixture, in float64, rounded to 12 decimals: a mixture on
    the bound sums gaps of both signs, and float64 rounding leaves it about 1e-17 off (the
    gaps themselves are float32, good to about 1e-8); without the rounding a bound of 0 met
    exactly would read as missed."""
    flat = gaps.reshape(len(probabilities), -1).astype(np.float64)
    return float(np.round(np.max(probabilities @ flat), 12))


def best_mixture(candidates: dict[str, np.ndarray], *, target: float) -> np.ndarray:
    r"""The mixture of candidate classifiers of lowest expected error under a bound on its gaps.

    Solves, over the probability simplex,

    .. math::

        \min_q \sum_j q_j\, e_j \quad \text{s.t.} \quad \sum_j q_j\, \Delta_{j,k} \le \epsilon
        \ \text{ for every gap } k,

    exactly (``scipy.optimize.linprog``, HiGHS), where :math:`\Delta_{j,k}` are the signed
    pairwise gaps :math:`r^c_g - r^c_{g'}` of candidate :math:`j`: both signs of each pair are
    bounded, so the expected gap :math:`|\sum_j q_j (r^c_{g,j} - r^c_{g',j})|` is. A vertex
    solution gives positive weight to at most one more candidate than there are binding
    gaps. If no mixture meets the bound, the bound is raised to the smallest largest gap any
    mixture attains, and the error minimised under that one.

    Args:
      candidates: :attr:`MixtureResult.candidates`, or any dict with ``"error"``, shape
        ``(K,)``, and ``"gaps"``, shape ``(K, ...)`` (every entry a signed gap; entries of
        value 0, like a pair of a group with itself, bound nothing).
      target: the bound :math:`\epsilon \ge 0`.

    Returns:
      The probabilities ``q``, shape ``(K,)``, float64: non-negative, sum 1, exactly 0 for the
      candidates left out.

    Example:
      >>> import numpy as np
      >>> from fairjax.training import best_mixture
      >>> gap = np.array([0.1, -0.05, 0.0])  # r_0 - r_1 of three classifiers
      >>> cand = {"error": np.array([0.1, 0.2, 0.4]), "gaps": np.stack([gap, -gap], 1)}
      >>> best_mixture(cand, target=0.02).round(4)  # 0.1 q_0 - 0.05 q_1 = 0.02
      array([0.4667, 0.5333, 0.    ])
    """
    errors = np.asarray(candidates["error"], np.float64).reshape(-1)
    gaps = np.asarray(candidates["gaps"], np.float64)
    rows = gaps.shape[0] if gaps.ndim > 1 else errors.size * (gaps.size % max(errors.size, 1) == 0)
    if errors.size == 0 or gaps.size == 0 or rows != errors.size:
        raise ValueError(
            f"`candidates` must hold one error and one row of gaps per classifier (at least "
            f"one), got {errors.size} errors and gaps of shape {gaps.shape}."
        )
    gaps = gaps.reshape(errors.size, -1)
    # NaN (a diverged candidate) would reach the linear program as "invalid input".
    v.check_finite(errors, "candidates['error']")
    v.check_finite(gaps, "candidates['gaps']")
    v.check_scalar(target, "target", nonnegative=True)
    from scipy.optimize import linprog

    num, m = gaps.shape
    simplex = {"A_eq": np.ones((1, num)), "b_eq": [1.0], "bounds": (0, None), "method": "highs"}
    res = linprog(errors, A_ub=gaps.T, b_ub=np.full(m, float(target)), **simplex)
    if res.status == 2:  # infeasible: min t s.t. q @ gaps <= t, then the error at that t
        lowest = linprog(
            np.r_[np.zeros(num), 1.0],
            A_ub=np.c_[gaps.T, -np.ones(m)],
            b_ub=np.zeros(m),
            A_eq=np.c_[np.ones((1, num)), 0.0],
            b_eq=[1.0],
            bounds=[(0, None)] * num + [(None, None)],
            method="highs",
        )
        if lowest.status != 0:
            raise RuntimeError(f"the mixture's linear program failed: {lowest.message}")
        res = linprog(errors, A_ub=gaps.T, b_ub=np.full(m, lowest.fun), **simplex)
        if res.status != 0:  # the smallest bound, rounded below what the solver admits
            res = lowest
            res.x = res.x[:num]
    if res.status != 0:
        raise RuntimeError(f"the mixture's linear program failed: {res.message}")
    q = np.where(res.x > 1e-12, res.x, 0.0)
    return q / q.sum()


def _component_decisions(params, model_state, batch, *, model, dtype):
    """Each component's decisions on ``batch``, ``(m, n)`` (or ``(m, n, K)`` one-hot)."""

    def decide(component):
        p, state = component
        logits = _forward(model, p, batch, None, state)[0]
        # A NaN logit decides nothing: NaN, not a negative decision (or class 0) that every
        # metric would count.
        if logits.ndim == 2:
            hot = jax.nn.one_hot(jnp.argmax(logits, axis=1), logits.shape[1], dtype=dtype)
            return jnp.where(jnp.isnan(logits).any(axis=1, keepdims=True), jnp.nan, hot)
        return jnp.where(jnp.isnan(logits), jnp.nan, (logits > 0).astype(dtype))

    return jax.lax.map(decide, (params, model_state))


# Compiled once per model (and shapes): an eager call's lax.map of a new closure recompiled.
_component_decisions_jit = jax.jit(_component_decisions, static_argnames=("model", "dtype"))


def mixture_decisions(
    model: Model,
    params: PyTree,
    probabilities: ArrayLike,
    batch: PyTree,
    *,
    key: Array | None = None,
    model_state: PyTree = None,
) -> Array:
    r"""The decisions of a randomised classifier: expected, or drawn with ``key``.

    .. math:: p(x) = \sum_j q_j \,[f_{\theta_j}(x) > 0]

    Every metric of :mod:`fairjax.metrics` is a mean of decisions, so on :math:`p` it is the
    mixture's expected value (e.g. ``demographic_parity_difference(p, groups)`` is its expected
    gap, ``1 - mean(|p - y|)`` its expected accuracy). With ``key``, each row draws its
    decision independently, 1 with probability :math:`p(x)`, as fairlearn's
    ``ExponentiatedGradient.predict`` does.

    For a ``K``-class model (logits ``(n, K)``) the expected decisions are the probabilities
    of each class, :math:`P_{ik} = \sum_j q_j [\arg\max f_{\theta_j}(x_i) = k]`, shape
    ``(n, K)`` (what :func:`fairjax.metrics.multiclass_parity_difference` takes for the
    mixture's expected gaps); with ``key`` each row draws a class id, shape ``(n,)``.

    Args:
      model: ``model(params, batch) -> logits`` of shape ``(n,)`` or ``(n, K)``.
      params: the components' parameters, each leaf with a leading axis ``(J,)`` (e.g.
        :attr:`MixtureResult.params`).
      probabilities: the components' probabilities, shape ``(J,)``, non-negative with sum 1
        (e.g. :attr:`MixtureResult.probabilities`; not checked, so that it can be traced).
      batch: the batch the model takes.
      key: optional PRNG key: draw decisions instead of returning probabilities.
      model_state: for a stateful ``model(params, batch, key, model_state) -> (logits,
        model_state)``, the components' states, each leaf with a leading axis ``(J,)`` (e.g.
        :attr:`MixtureResult.model_state`); the model runs in evaluation mode (``key=None``).

    Returns:
      Binary: shape ``(n,)``, the probability of a positive decision on each row, or with
      ``key`` 0/1 decisions, in the default float dtype. ``K`` classes: ``(n, K)`` class
      probabilities, or with ``key`` int32 class ids ``(n,)``. A row where a component's logit
      is NaN is NaN (a row of NaN), or with ``key`` a NaN decision (class id -1), never a
      negative decision.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.training import mixture_decisions
      >>> model = lambda w, x: x * w
      >>> x = jnp.array([-1.0, 1.0, 2.0])
      >>> mixture_decisions(model, jnp.array([1.0, -1.0]), jnp.array([0.75, 0.25]), x)
      Array([0.25, 0.75, 0.75], dtype=float32)
    """
    dtype = jnp.result_type(float)
    probabilities = jnp.asarray(probabilities, dtype)

    decide = _loop.bind_static(
        _component_decisions_jit, _component_decisions, model=model, dtype=dtype
    )
    decisions = decide(params, model_state, batch)
    if probabilities.ndim != 1 or decisions.shape[0] != probabilities.shape[0]:
        raise ValueError(
            f"`probabilities` must have shape ({decisions.shape[0]},) like the components of "
            f"`params`, got {probabilities.shape}."
        )
    # A component of probability 0 takes no part (its NaN decisions too: 0 * NaN). Clipped:
    # float64 probabilities summing to 1 may sum to 1 + 1e-7 in float32.
    used = (probabilities > 0).reshape((-1,) + (1,) * (decisions.ndim - 1))
    prob = jnp.clip(jnp.tensordot(probabilities, jnp.where(used, decisions, 0), axes=1), 0, 1)
    if key is None:
        return prob
    if prob.ndim == 2:
        u = jax.random.uniform(key, prob.shape[:1], dtype)[:, None]
        below = jnp.cumsum(prob, axis=1) < u * jnp.sum(prob, axis=1, keepdims=True)
        ids = jnp.minimum(jnp.sum(below, axis=1), prob.shape[1] - 1).astype(jnp.int32)
        return jnp.where(jnp.isnan(prob).any(axis=1), -1, ids)
    drawn = (jax.random.uniform(key, prob.shape, dtype) < prob).astype(dtype)
    return jnp.where(jnp.isnan(prob), jnp.nan, drawn)
