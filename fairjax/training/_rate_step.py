r"""One step of the reduction behind :func:`fairjax.training.fit_rate_constrained`.

The pieces shared by the compiled loop (:mod:`fairjax.training._reduction`) and the loop over a
stream of batches: the checks of a ``(X, y, groups)`` batch, the exact gaps and error of the
decisions, the cost-sensitive costs at the multipliers, the surrogate step of the parameters
and the projected ascent of the multipliers.

Binary (``num_classes=None``): the model returns logits ``(n,)`` and decides ``logits > 0``;
the costs of the Lagrangian are one number per row, the cost of deciding 1 rather than 0.

``K`` classes: the model returns logits ``(n, K)`` and decides the arg-max class :math:`h_i`.
Every constraint is a one-vs-rest rate of a class :math:`k` (:func:`fairjax.metrics.
class_group_rates`), so the Lagrangian is linear in the one-hot decisions :math:`H_{ik}`:

.. math::

    \mathcal{L}(h, \mu) = \text{const} + \sum_i \sum_k C_{ik} H_{ik}, \qquad
    C_{ik} = -\frac{w_i [y_i = k]}{\sum_j w_j} + \sum_c \nu^{c}_{k, s_i}
    \frac{\partial r^{c}_{k, s_i}}{\partial H_{ik}},

and the best response predicts :math:`\arg\min_k C_{ik}` (cost-sensitive multiclass
classification). Its surrogate is the softmax cross-entropy toward that class, weighted by
the row's margin, the second-lowest cost minus the lowest (what a wrong class costs at least):
with two classes it is the binary surrogate :math:`|c_i|\,\ell(z_i, [c_i < 0])`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fairjax import _loop, criteria, groups, losses
from fairjax import _validation as v

from ._lagrangian import ConstrainedState
from ._penalized import Array, PyTree, _forward


def check_rate_batch(batch: PyTree, num_groups: int, name: str, num_classes=None) -> int:
    """Checks a ``(X, y, groups)`` batch: 0/1 labels (or, with ``num_classes``, class ids
    ``(n,)`` in ``[0, K)`` or one-hot ``(n, K)``) and integer group ids in ``[0, num_groups)``,
    one per row; returns the number of rows."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 3):
        raise ValueError(f"`{name}` must be a tuple (X, y, groups), got {type(batch).__name__}.")
    what = f"{name} labels"
    if num_classes is None:
        y = v.as_array(batch[1], what, ndim=1)
        v.check_binary(y, what)
    else:
        y = v.as_array(batch[1], what, ndim=(1, 2))
        if y.ndim == 2:
            if y.shape[1] != num_classes:
                raise ValueError(
                    f"one-hot `{what}` must have num_classes = {num_classes} columns, got "
                    f"{y.shape[1]}."
                )
            v.check_binary(y, what)
            if v.is_concrete(y) and not v.holds(lambda xp, a: xp.all(a.sum(axis=1) == 1), y):
                raise ValueError(f"one-hot `{what}` must have exactly one 1 in each row.")
        elif v.is_concrete(y) and not v.holds(
            lambda xp, a: xp.all((a == xp.round(a)) & (a >= 0) & (a < num_classes)), y
        ):
            raise ValueError(f"`{what}` must hold class ids in [0, {num_classes}).")
    s = v.check_groups(batch[2], num_groups=num_groups, n=y.shape[0])
    if s.ndim != 1:
        raise ValueError(f"`{name}` groups must be integer ids of shape (n,), got {s.shape}.")
    return y.shape[0]


def multiplier_shape(criterion, num_groups: int, num_classes=None) -> tuple[int, ...]:
    """The multipliers' shape: ``(G, G)``, ``(C, G, G)`` for two conditions, ``(K, C, G, G)``
    for ``K`` classes."""
    C, G = len(criterion.conditions), num_groups
    if num_classes is not None:
        return (num_classes, C, G, G)
    return (G, G) if C == 1 else (C, G, G)


def _class_ids(y: Array) -> Array:
    """Class ids ``(n,)`` of labels given as ids or one-hot ``(n, K)``."""
    return jnp.argmax(y, axis=1).astype(jnp.int32) if y.ndim == 2 else y.astype(jnp.int32)


def _one_vs_rest(y: Array, num_classes: int) -> Array:
    """``(K, n)``: the labels ``[y_i = k]`` of each class's one-vs-rest problem."""
    return jax.nn.one_hot(_class_ids(y), num_classes, dtype=jnp.result_type(float)).T


def _check_outputs(z: Array, n: int, num_classes) -> None:
    want = (n,) if num_classes is None else (n, num_classes)
    if z.shape != want:
        raise ValueError(
            f"the model must return logits of shape {want} "
            f"({'binary' if num_classes is None else f'num_classes={num_classes}'}), "
            f"got {z.shape}."
        )


def decision_gaps(logits, batch, weights, num_groups, criterion, num_classes=None):
    """``r^c_g - r^c_g'`` of the decisions for every condition of the criterion and pair of
    non-empty groups (0 elsewhere): shape ``(C, G, G)``, or ``(K, C, G, G)`` with a class's
    one-vs-rest rates first; ``weights`` may be None."""
    _, y, s = batch
    dtype = jnp.result_type(float)

    def gaps(decisions, labels):
        rates, counts = criteria.group_rates(
            decisions, s, labels, criterion=criterion, num_groups=num_groups, weights=weights
        )
        return criteria.pairwise_gaps(rates, counts)

    if num_classes is None:
        return gaps((logits > 0).astype(dtype), y)
    chosen = jax.nn.one_hot(jnp.argmax(logits, axis=1), num_classes, dtype=dtype).T
    return jax.vmap(gaps)(chosen, _one_vs_rest(y, num_classes))


class RateCosts(NamedTuple):
    """The parts of the reduction's costs that do not depend on the multipliers (with a
    leading class axis ``K`` for ``K`` classes)."""

    y: Array  # (n,) labels as floats
    slope: Array  # (C, n): d r^c_{s_i} / d h_i, w_i / W^c_g on the rows c counts, else 0
    pairs: Array  # (C, G, G): the pairs of non-empty groups (the constraints that exist)
    error_cost: Array  # (n,): the 0-1 error's cost w_i (1 - 2 y_i) / W


def rate_costs(data, weights, criterion, num_groups, num_classes=None) -> RateCosts:
    """The costs of ``data``: binary, or with ``num_classes`` each class's one-vs-rest costs."""
    X, y, s = data
    if num_classes is not None:
        return jax.vmap(lambda yk: rate_costs((X, yk, s), weights, criterion, num_groups))(
            _one_vs_rest(y, num_classes)
        )
    dtype = jnp.result_type(float)
    y = y.astype(dtype)
    rows = criteria.condition_weights(criterion, y, weights, n=y.shape[0], dtype=dtype)
    counts = jnp.stack([groups.group_counts(s, num_groups=num_groups, weights=r) for r in rows])
    slope = rows * groups.safe_divide(jnp.ones_like(counts), counts)[:, s]
    pairs = (counts[:, :, None] > 0) & (counts[:, None, :] > 0)
    return RateCosts(y, slope, pairs, weights * (1 - 2 * y) / jnp.sum(weights))


def measure(z, data, weights, criterion, num_groups, num_classes=None):
    """The largest gap (and all of them, see :func:`decision_gaps`) and the weighted error of
    the decisions of the logits ``z`` on ``data`` (``weights`` may be None: unit weights). The
    error sums the weights of the misclassified rows, so iterates that misclassify rows of the
    same total weight tie exactly (with unit weights, up to 2^24 rows in float32). All NaN
    when a logit is NaN: a NaN logit decides nothing (``NaN > 0`` is False), and a diverged
    model must not read as one without a gap or an error."""
    gaps = decision_gaps(z, data, weights, num_groups, criterion, num_classes)
    if weights is None:
        weights = jnp.ones(z.shape[0], jnp.result_type(float))
    if num_classes is None:
        wrong = (z > 0) != (data[1] > 0.5)
    else:
        wrong = jnp.argmax(z, axis=1) != _class_ids(data[1])
    error = jnp.sum(jnp.where(wrong, weights, 0)) / jnp.sum(weights)
    undecided = jnp.any(jnp.isnan(z))
    gaps, error = (jnp.where(undecided, jnp.nan, a) for a in (gaps, error))
    return jnp.max(gaps), gaps, error


def ascend(multiplier_optimizer, state, gaps, target, pairs):
    """Projected ascent of the multipliers on the violations ``gaps - target``, onto
    ``mu >= 0``. A pair without rows of both groups in the batch (``pairs`` False) keeps its
    multiplier: 0 in full-batch training, where such a pair has no constraint."""
    mu = state.multiplier
    updates, mu_state = multiplier_optimizer.update(
        -(gaps.reshape(mu.shape) - target), state.multiplier_opt_state, mu
    )
    new = jnp.maximum(optax.apply_updates(mu, updates), 0)
    return jnp.where(pairs.reshape(mu.shape), new, mu), mu_state


def decision_costs(costs: RateCosts, net: Array, s: Array, num_classes=None) -> Array:
    """The Lagrangian's cost of each decision at the multipliers' net weights ``net``: binary,
    ``(n,)``, the cost of deciding 1 rather than 0; ``K`` classes, ``(K, n)``, the cost of
    deciding each class up to a constant per row (the error's part is
    :math:`w_i (1 - 2 [y_i = k]) / 2W`, the 0-1 error :math:`w_i (1 - [y_i = k]) / W` less
    :math:`w_i / 2W`)."""
    if num_classes is None:
        return costs.error_cost + jnp.sum(net[:, s] * costs.slope, axis=0)
    return 0.5 * costs.error_cost + jnp.sum(net[:, :, s] * costs.slope, axis=1)


def _surrogate_value(z, costs, net, s, num_classes):
    """The weighted surrogate of the cost-sensitive best response (module docstring)."""
    cost = decision_costs(costs, net, s, num_classes)
    if num_classes is None:
        return jnp.sum(jnp.abs(cost) * losses.logistic(z, (cost < 0).astype(z.dtype)))
    lowest = jnp.sort(cost, axis=0)[:2]
    margin = lowest[1] - lowest[0]
    target = jnp.argmin(cost, axis=0)
    return jnp.sum(margin * optax.softmax_cross_entropy_with_integer_labels(z, target))


class RateProblem(NamedTuple):
    """What fixes a reduction's step and its measurements: the model and its regularizer, the
    two optimizers, the criterion and the numbers of groups and classes (None: binary). Its
    fields are hashable, so the compiled loop takes it as one static argument."""

    model: Callable
    regularizer: Callable | None
    optimizer: optax.GradientTransformation
    multiplier_optimizer: optax.GradientTransformation
    criterion: Any
    num_groups: int
    num_classes: int | None


def rate_step(problem: RateProblem):
    """One simultaneous update of the reduction (not jitted):
    ``step(state, data, weights, key, target, costs=None, gaps=None) -> (state, measured)``.

    The parameters take one optimizer step on the surrogate of the cost-sensitive problem at
    the current multipliers; the multipliers ascend on the exact gaps of the same forward
    pass's decisions on ``data`` (or on ``gaps``, measured elsewhere, when given). ``costs``
    default to those of ``data`` (a mini-batch: its own group counts). ``measured`` is
    ``(largest gap, gaps, weighted error)`` of the decisions on ``data``.
    """
    criterion, num_groups, num_classes = problem.criterion, problem.num_groups, problem.num_classes
    shape = multiplier_shape(criterion, num_groups, num_classes)
    shape = shape if len(shape) > 2 else (1, *shape)

    def surrogate(params, x):
        net, data, costs, key, model_state = x
        z, model_state = _forward(problem.model, params, data, key, model_state)
        _check_outputs(z, data[2].shape[0], num_classes)
        value = _surrogate_value(z, costs, net, data[2], num_classes)
        if problem.regularizer is not None:
            value = value + problem.regularizer(params)
        return value, (z, model_state)

    primal = _loop.make_step(surrogate, problem.optimizer, has_aux=True)

    def step(state, data, weights, key, target, costs=None, gaps=None):
        if costs is None:
            costs = rate_costs(data, weights, criterion, num_groups, num_classes)
        mu = state.multiplier.reshape(shape)
        net = jnp.sum(mu, axis=-1) - jnp.sum(mu, axis=-2)
        x = (net, data, costs, key, state.model_state)
        p, opt_state, (_, (z, model_state)) = primal(state.params, state.opt_state, x)
        z = jax.lax.stop_gradient(z)
        measured = measure(z, data, weights, criterion, num_groups, num_classes)
        ascend_on = measured[1] if gaps is None else gaps
        mu, mu_state = ascend(problem.multiplier_optimizer, state, ascend_on, target, costs.pairs)
        new = ConstrainedState(p, mu, opt_state, mu_state, state.step + 1, model_state)
        return new, measured

    return step


def evaluate(problem: RateProblem, params, model_state, data, weights=None):
    """:func:`measure` of ``params`` on ``data`` in evaluation mode (a stateful model runs
    with ``key=None``)."""
    z = _forward(problem.model, params, data, None, model_state)[0]
    _check_outputs(z, data[2].shape[0], problem.num_classes)
    return measure(z, data, weights, problem.criterion, problem.num_groups, problem.num_classes)
