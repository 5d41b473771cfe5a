"""The reduction of :func:`fairjax.training.fit_rate_constrained` on a stream of batches.

One compiled step per batch of a Python iterator (a generator, a data loader); the gaps that the
multipliers ascend on are measured on ``constraint_data`` every ``eval_every`` steps when it is
given, else on each batch. The candidate iterates of the mixture are kept as they pass and
measured on ``constraint_data`` after the training.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _loop

from ._lagrangian import initial_state
from ._rate_step import RateProblem, check_rate_batch, multiplier_shape, rate_step
from ._rate_step import evaluate as _evaluate


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


# Module-level programs keyed by the problem (model, optimizer, options), so that a second
# fit on a stream reuses them (new jitted closures recompiled on every call).
def _stream_step(state, data, weights, key, target, costs, gaps, *, problem):
    return rate_step(problem)(state, data, weights, key, target, costs, gaps)


def _stream_evaluate(params, model_state, data, *, problem):
    return _evaluate(problem, params, model_state, data)


_stream_step_jit = jax.jit(_stream_step, static_argnames=("problem",))
_evaluate_jit = jax.jit(_stream_evaluate, static_argnames=("problem",))


def run_rate_stream(
    problem: RateProblem,
    params,
    stream,
    *,
    target,
    num_steps,
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
    G, num_classes = problem.num_groups, problem.num_classes
    for data, name in ((constraint_data, "constraint_data"), (validation_data, "validation_data")):
        if data is not None:
            check_rate_batch(data, G, name, num_classes)
    if candidate_steps and constraint_data is None:
        raise ValueError(
            "a mixture trained on a stream needs `constraint_data`: its candidates' errors and "
            "gaps are measured there."
        )
    step = _loop.bind_static(_stream_step_jit, _stream_step, problem=problem)
    evaluate = _loop.bind_static(_evaluate_jit, _stream_evaluate, problem=problem)
    mu0 = jnp.zeros(multiplier_shape(problem.criterion, G, num_classes), dtype)
    state = initial_state(params, mu0, problem.optimizer, problem.multiplier_optimizer, model_state)
    target = jnp.asarray(target, dtype)
    wanted, kept = set(candidate_steps), {}
    gaps, errors, eval_steps, eval_values, dual = [], [], [], [], None
    for t, batch in enumerate(itertools.islice(iter(stream), num_steps)):
        n = check_rate_batch(batch, G, f"batch {t} of data", num_classes)
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
