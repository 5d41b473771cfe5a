r"""Fair and transferable representation learning (Oneto et al., NeurIPS 2020).

A representation :math:`h_\theta: \mathcal X \to \mathbb R^r` (any JAX function of parameters,
here a plain ``jnp`` MLP, equally a Flax or Equinox module's ``apply``) is shared by ``T`` binary
tasks with linear heads :math:`f_t(x) = \langle w_t, h_\theta(x) \rangle + b_t`. It is trained on

.. math::

    J(\theta, W) = \frac1T \sum_{t=1}^T \hat L_t(f_t)
      + \frac{\rho}{2} \|W\|_F^2 + \lambda \, D\big(h_\theta \# \hat\mu_0, \dots,
        h_\theta \# \hat\mu_{G-1}\big),

with :math:`\hat L_t` the logistic loss of task ``t`` on its labelled rows, and :math:`D` a
distance between the group-conditional distributions of the representation:
:func:`fairjax.penalties.mmd` or :func:`fairjax.penalties.sinkhorn`. When these distributions
coincide, every head :math:`\langle w, h(x)\rangle + b` — also one trained later for a new task —
has the same score distribution in every group, so it satisfies demographic parity; the paper
bounds the unfairness of a new task's head by the distance between the group distributions.

:func:`transfer` is the protocol that measures it: freeze :math:`h_\theta`, fit a new logistic
head on a new task, report its accuracy and its demographic-parity and equal-opportunity gaps
(:mod:`fairjax.metrics`).

References:
  Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, *Exploiting MMD and Sinkhorn divergences for
  fair and transferable representation learning*, NeurIPS 2020 (the penalised objective here is a
  reconstruction from the authors' description, see ``docs/representation.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fairjax import _loop, losses, metrics, penalties
from fairjax import _validation as v

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PyTree = Any
Representation = Callable[[PyTree, Array], Array]

__all__ = [
    "MultiTaskBatch",
    "MultiTaskParams",
    "TrainResult",
    "TransferResult",
    "init_mlp",
    "init_params",
    "mlp",
    "multitask_batch",
    "multitask_objective",
    "train",
    "transfer",
]


# ----------------------------------------------------------------------------- containers


class MultiTaskParams(NamedTuple):
    """Parameters of a shared representation and its linear task heads (a PyTree).

    Attributes:
      representation: the representation network's parameters (any PyTree).
      weights: head weights :math:`W`, shape ``(r, T)``.
      bias: head biases, shape ``(T,)``.
    """

    representation: PyTree
    weights: Array
    bias: Array


class MultiTaskBatch(NamedTuple):
    """Rows of a multi-task data set (a PyTree; every array has the rows on axis 0).

    Attributes:
      x: inputs, shape ``(n, d)``.
      y: binary labels of every task, shape ``(n, T)``.
      groups: sensitive group ids, shape ``(n,)``.
      task_mask: ``(n, T)`` weights of each (row, task) in the task losses: 1 where the row is
        labelled for the task, 0 where not (tasks may be observed on different rows).
      weights: ``(n,)`` row weights of the fairness penalty (0 masks a padded row).
    """

    x: Array
    y: Array
    groups: Array
    task_mask: Array
    weights: Array


def multitask_batch(
    x: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    task_mask: ArrayLike | None = None,
    weights: ArrayLike | None = None,
) -> MultiTaskBatch:
    """Validates and packs the rows of a multi-task data set into a :class:`MultiTaskBatch`.

    Args:
      x: inputs, shape ``(n, d)``.
      y: binary labels, shape ``(n, T)`` (or ``(n,)`` for one task).
      groups: group ids ``(n,)`` in ``[0, num_groups)``.
      num_groups: static number of groups.
      task_mask: optional ``(n, T)`` 0/1 mask of the labelled (row, task) pairs; default all 1.
        The labels of unlabelled pairs are not read (they may be NaN).
      weights: optional ``(n,)`` row weights of the fairness penalty; default all 1.

    Returns:
      A :class:`MultiTaskBatch` in the inputs' float dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.representation import multitask_batch
      >>> b = multitask_batch(jnp.ones((3, 2)), jnp.array([1, 0, 1]), jnp.array([0, 1, 1]),
      ...                     num_groups=2)
      >>> b.y.shape, b.task_mask.shape
      ((3, 1), (3, 1))
    """
    x = v.as_array(x, "x", ndim=2)
    v.check_finite(x, "x")
    n = x.shape[0]
    y = v.as_array(y, "y", ndim=(1, 2))
    y = y[:, None] if y.ndim == 1 else y
    v.check_length(y, n, "y", "x")
    g = v.check_groups(groups, num_groups=num_groups, n=n)
    if g.ndim != 1:
        raise ValueError(f"`groups` must hold integer ids of shape ({n},), got {g.shape}.")
    dtype = v.float_dtype(x)
    if task_mask is None:
        mask = jnp.ones(y.shape, dtype)
    else:
        mask = v.as_array(task_mask, "task_mask")
        if mask.shape != y.shape:
            raise ValueError(f"`task_mask` must have the shape of `y` {y.shape}, got {mask.shape}.")
        v.check_binary(mask, "task_mask")
        mask = mask.astype(dtype)
    # Only the labelled pairs need a label: an unlabelled one may hold anything (NaN, -1).
    v.check_binary(y[mask > 0] if v.is_concrete(y, mask) else y, "y")
    w = v.check_weights(weights, n)
    w = jnp.ones((n,), dtype) if w is None else w.astype(dtype)
    return MultiTaskBatch(x.astype(dtype), y.astype(dtype), g, mask, w)


# ----------------------------------------------------------------------------- networks


def init_mlp(key: Array, sizes: Sequence[int], *, dtype: Any = None) -> list[tuple[Array, Array]]:
    """Parameters of a fully connected network with layer sizes ``sizes`` (He initialisation).

    Args:
      key: a PRNG key.
      sizes: ``(d, hidden_1, ..., r)``: input size, hidden sizes, representation size.
      dtype: float dtype (default: the default float dtype).

    Returns:
      A list of ``(W, b)`` pairs, ``W`` of shape ``(sizes[k], sizes[k + 1])``.

    Example:
      >>> import jax
      >>> from fairjax.representation import init_mlp, mlp
      >>> params = init_mlp(jax.random.key(0), (5, 16, 3))
      >>> mlp(params, jax.numpy.ones((4, 5))).shape
      (4, 3)
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"`sizes` must hold at least two positive sizes, got {sizes}.")
    dtype = dtype or jnp.result_type(float)
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (
            jax.random.normal(k, (a, b), dtype) * jnp.sqrt(2.0 / a).astype(dtype),
            jnp.zeros((b,), dtype),
        )
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp(params: Sequence[tuple[Array, Array]], x: ArrayLike) -> Array:
    r"""A ReLU network: :math:`h(x) = \mathrm{relu}(\dots \mathrm{relu}(x W_1 + b_1) \dots) W_L +
    b_L` (the last layer is linear).

    Args:
      params: from :func:`init_mlp`.
      x: inputs, shape ``(n, d)``.

    Returns:
      Representations, shape ``(n, r)``.
    """
    z = jnp.asarray(x)
    for k, (W, b) in enumerate(params):
        z = z @ W + b
        if k < len(params) - 1:
            z = jax.nn.relu(z)
    return z


def init_params(
    representation_params: PyTree, *, rep_dim: int, num_tasks: int, dtype: Any = None
) -> MultiTaskParams:
    """Multi-task parameters: the given representation and zero heads.

    Args:
      representation_params: the representation network's initial parameters.
      rep_dim: the representation size ``r``.
      num_tasks: the number of tasks ``T``.
      dtype: float dtype of the heads (default: the default float dtype).

    Returns:
      A :class:`MultiTaskParams`.
    """
    dtype = dtype or jnp.result_type(float)
    return MultiTaskParams(
        representation_params,
        jnp.zeros((rep_dim, num_tasks), dtype),
        jnp.zeros((num_tasks,), dtype),
    )


# ----------------------------------------------------------------------------- objective


_PENALTIES = {"mmd": penalties.mmd, "sinkhorn": penalties.sinkhorn}


def multitask_objective(
    represent: Representation,
    *,
    num_groups: int,
    lam: ArrayLike = 0.0,
    penalty: str | Callable[..., Array] = "mmd",
    penalty_kwargs: Mapping[str, Any] | None = None,
    l2: float = 0.0,
) -> Callable[[MultiTaskParams, MultiTaskBatch], Array]:
    r"""The penalised multi-task objective :math:`J(\theta, W)` of the module docstring.

    .. math::

        J = \frac1T \sum_t \frac{\sum_i m_{it}\, \ell(y_{it}, f_t(x_i))}{\sum_i m_{it}}
          + \frac{\rho}{2}\|W\|_F^2 + \lambda\, D(h_\theta(x), s; w)

    with :math:`\ell` the logistic loss, :math:`m` the task mask, :math:`\rho` = ``l2`` and
    :math:`D` the penalty on the representations of the batch, grouped by :math:`s`, with the
    row weights :math:`w` (0 for padding).

    Args:
      represent: ``represent(params, x) -> (n, r)``, any JAX function (e.g. :func:`mlp`, or a
        Flax module's ``apply``).
      num_groups: static number of sensitive groups.
      lam: the penalty weight :math:`\lambda \ge 0` (may be traced, e.g. vmapped).
      penalty: ``"mmd"`` (default), ``"sinkhorn"``, or a function
        ``penalty(h, groups, *, num_groups, weights) -> scalar``.
      penalty_kwargs: keyword options of the penalty (e.g. ``{"kernel": ...,
        "reference": "pairwise"}`` or ``{"epsilon": 0.05}``).
      l2: the ridge weight :math:`\rho \ge 0` on the head weights.

    Returns:
      ``objective(params, batch) -> scalar`` for :class:`MultiTaskParams` and
      :class:`MultiTaskBatch`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax import representation as rep
      >>> x = jax.random.normal(jax.random.key(0), (8, 3))
      >>> batch = rep.MultiTaskBatch(x, jnp.ones((8, 2)), jnp.arange(8) % 2,
      ...                            jnp.ones((8, 2)), jnp.ones(8))
      >>> params = rep.init_params(rep.init_mlp(jax.random.key(1), (3, 4)), rep_dim=4,
      ...                          num_tasks=2)
      >>> obj = rep.multitask_objective(rep.mlp, num_groups=2, lam=1.0)
      >>> round(float(obj(params, batch)) - float(jnp.log(2.0)), 6) >= 0  # heads start at 0
      True
    """
    if isinstance(penalty, str):
        if penalty not in _PENALTIES:
            raise ValueError(f"`penalty` must be 'mmd', 'sinkhorn' or a function, got {penalty!r}.")
        penalty_fn = _PENALTIES[penalty]
    elif callable(penalty):
        penalty_fn = penalty
    else:
        raise TypeError(f"`penalty` must be a name or a function, got {penalty!r}.")
    v.check_scalars(lam, "lam", nonnegative=True)
    v.check_scalar(l2, "l2", nonnegative=True)
    kwargs = dict(penalty_kwargs or {})

    def objective(params: MultiTaskParams, batch: MultiTaskBatch) -> Array:
        h = represent(params.representation, batch.x)
        logits = h @ params.weights + params.bias
        # An unlabelled pair's label is not read (it may be NaN): 0 * NaN in the backward pass
        # would make every gradient NaN.
        row_losses = losses.logistic(logits, jnp.where(batch.task_mask > 0, batch.y, 0))
        # Per-task mean over the rows labelled for the task (0 for a task without rows).
        per_task = jnp.sum(row_losses * batch.task_mask, axis=0)
        counts = jnp.sum(batch.task_mask, axis=0)
        task_loss = jnp.mean(jnp.where(counts > 0, per_task / jnp.where(counts > 0, counts, 1), 0))
        total = task_loss + 0.5 * l2 * jnp.sum(params.weights**2)
        if isinstance(lam, (int, float)) and lam == 0:
            return total  # no penalty to compute (and no kernel matrix) at lambda = 0
        fair = penalty_fn(h, batch.groups, num_groups=num_groups, weights=batch.weights, **kwargs)
        return total + lam * fair

    return objective


# ----------------------------------------------------------------------------- training


class TrainResult(NamedTuple):
    """The outcome of :func:`train`.

    Attributes:
      params: the final parameters.
      losses: the objective on each step's batch (before the step), shape ``(num_steps,)``.
      finite: whether the final parameters and the last step's objective are finite (False:
        training diverged, and a :class:`fairjax.training.DivergenceWarning` was issued).
      model_state: the final state of a stateful objective (``None`` for a stateless one).
    """

    params: PyTree
    losses: Array
    finite: bool = True
    model_state: PyTree = None


@functools.partial(jax.jit, static_argnames=("objective", "optimizer", "num_steps", "batch_size"))
def _train(objective, optimizer, num_steps, batch_size, params, data, key, model_state=None):
    n = data.x.shape[0]
    stateful = model_state is not None

    def step_objective(p, x):
        k, state = x
        if batch_size is None:
            batch = data
        else:  # each step's key draws its mini-batch of distinct rows
            idx = jax.random.permutation(k, n)[:batch_size]
            batch = jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), data)
        if stateful:
            return objective(p, batch, jax.random.fold_in(k, 1), state)
        return objective(p, batch)

    step = _loop.make_step(step_objective, optimizer, has_aux=stateful)

    def body(carry, k):
        p, opt_state, state = carry
        p, opt_state, out = step(p, opt_state, (k, state))
        value, state = out if stateful else (out, state)
        return (p, opt_state, state), value

    keys = jax.random.split(key, num_steps)
    carry = (params, optimizer.init(params), model_state)
    (params, _, model_state), values = jax.lax.scan(body, carry, keys)
    return params, values, model_state


def train(
    objective: Callable[..., Any],
    params: PyTree,
    data: MultiTaskBatch,
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
) -> TrainResult:
    """Minimises ``objective`` with an optax optimizer, in one compiled ``lax.scan``.

    Each step draws a mini-batch of ``batch_size`` distinct rows at random (or uses all rows),
    independently of the other steps, as in the protocol of Oneto et al. (the other trainers
    shuffle epoch by epoch). The batch size is static, so the penalty's kernel matrix has a
    fixed shape.

    With ``model_state`` (dropout, batch norm; any PyTree, ``{}`` for dropout alone) the
    objective is ``objective(params, batch, key, model_state) -> (value, new_model_state)``,
    with a fresh PRNG key per step and the state carried from step to step: the protocol of
    :func:`fairjax.training.fit`.

    Args:
      objective: e.g. from :func:`multitask_objective`.
      params: initial parameters, e.g. from :func:`init_params`.
      data: a :class:`MultiTaskBatch` of all training rows.
      optimizer: any optax ``GradientTransformation``.
      num_steps: number of optimizer steps.
      batch_size: rows per step; ``None`` uses every row.
      key: PRNG key for the mini-batches and the per-step keys (required with ``batch_size``
        or ``model_state``).
      model_state: initial state of a stateful objective (``None``: stateless).

    Returns:
      A :class:`TrainResult`.
    """
    if not isinstance(data, MultiTaskBatch):
        raise TypeError(f"`data` must be a MultiTaskBatch, got {type(data).__name__}.")
    n = data.x.shape[0]
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    if batch_size is not None:
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=n)
        if key is None:
            raise ValueError("`key` is required with `batch_size`.")
    if model_state is not None and key is None:
        raise ValueError("`key` is required with `model_state` (it makes the per-step keys).")
    key = jax.random.key(0) if key is None else key
    params, values, model_state = _train(
        objective, optimizer, int(num_steps), batch_size, params, data, key, model_state
    )
    ok = _loop.finite("representation.train", params, values[-1:])
    return TrainResult(params, values, ok, model_state)


# ----------------------------------------------------------------------------- transfer


class TransferResult(NamedTuple):
    """A new task's linear head on a frozen representation, and its test-set measurements.

    Attributes:
      weights: head weights, shape ``(r,)``.
      bias: head bias, a scalar.
      accuracy: test accuracy of the thresholded head (:math:`f(x) > 0`).
      dp_difference: its demographic-parity difference on the test set.
      eo_difference: its equal-opportunity difference (DEO) on the test set.

    The three measurements are NaN when a test logit is NaN (a representation or a head gone
    NaN), rather than counting its row as a negative decision.
    """

    weights: Array
    bias: Array
    accuracy: Array
    dp_difference: Array
    eo_difference: Array


def transfer(
    represent: Representation,
    representation_params: PyTree,
    train_data: tuple[ArrayLike, ArrayLike, ArrayLike],
    test_data: tuple[ArrayLike, ArrayLike, ArrayLike],
    *,
    num_groups: int,
    l2: float = 1e-3,
    num_steps: int = 300,
    learning_rate: float = 0.05,
) -> TransferResult:
    r"""The transfer protocol: freeze :math:`h`, fit a new task's head, measure it.

    The representation of the new task's training rows is computed once and held fixed; a
    logistic-regression head :math:`f(x) = \langle w, h(x)\rangle + b` is fitted to it by
    full-batch Adam on :math:`\frac1n\sum_i \ell(y_i, f(x_i)) + \frac{\rho}{2}\|w\|^2`; its
    decisions :math:`[f(x) > 0]` on the test rows give the accuracy, the demographic-parity
    difference and the equal-opportunity difference (:mod:`fairjax.metrics`). The sensitive
    attribute is used only for the measurement.

    Args:
      represent: the representation function ``represent(params, x) -> (n, r)``.
      representation_params: its trained parameters (not updated).
      train_data: ``(x, y, groups)`` of the new task, ``x`` ``(n, d)``, binary ``y`` ``(n,)``.
      test_data: ``(x, y, groups)`` to measure on.
      num_groups: static number of groups.
      l2: ridge weight :math:`\rho` of the head.
      num_steps: Adam steps.
      learning_rate: Adam step size.

    Returns:
      A :class:`TransferResult`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.representation import transfer
      >>> x = jax.random.normal(jax.random.key(0), (40, 2))
      >>> y = (x[:, 0] > 0).astype(jnp.int32)
      >>> s = (x[:, 1] > 0).astype(jnp.int32)
      >>> res = transfer(lambda p, z: z, None, (x, y, s), (x, y, s), num_groups=2)
      >>> float(res.accuracy) > 0.9
      True
    """
    if len(train_data) != 3 or len(test_data) != 3:
        raise ValueError("`train_data` and `test_data` must be (x, y, groups) triples.")
    v.check_scalar(l2, "l2", nonnegative=True)
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    v.check_scalar(learning_rate, "learning_rate", positive=True)
    x_tr, y_tr = v.as_array(train_data[0], "x", ndim=2), v.as_array(train_data[1], "y", ndim=1)
    x_te, y_te = v.as_array(test_data[0], "x", ndim=2), v.as_array(test_data[1], "y", ndim=1)
    v.check_length(y_tr, x_tr.shape[0], "y", "x")
    v.check_length(y_te, x_te.shape[0], "y", "x")
    v.check_binary(y_tr, "y")
    v.check_binary(y_te, "y")
    v.check_finite(x_tr, "x")
    v.check_finite(x_te, "x")
    s_te = v.check_groups(test_data[2], num_groups=num_groups, n=x_te.shape[0])
    h_tr = jax.lax.stop_gradient(represent(representation_params, x_tr))
    h_te = jax.lax.stop_gradient(represent(representation_params, x_te))
    w, b = _fit_head(h_tr, y_tr.astype(h_tr.dtype), l2, int(num_steps), learning_rate)
    logits = h_te @ w + b
    y_pred = (logits > 0).astype(jnp.int32)
    # A NaN logit (a representation or head gone NaN) decides nothing: its decision would read
    # as negative and the gaps as 0, so every measurement is NaN instead (an infinite one
    # decides).
    nan = jnp.where(jnp.any(jnp.isnan(logits)), jnp.nan, 0.0)
    return TransferResult(
        w,
        b,
        jnp.mean(y_pred == y_te) + nan,
        metrics.demographic_parity_difference(y_pred, s_te, num_groups=num_groups) + nan,
        metrics.equal_opportunity_difference(y_te, y_pred, s_te, num_groups=num_groups) + nan,
    )


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _fit_head(h, y, l2, num_steps, learning_rate):
    def objective(p, _):
        w, b = p
        z = h @ w + b
        return jnp.mean(losses.logistic(z, y)) + 0.5 * l2 * jnp.sum(w**2)

    p0 = (jnp.zeros((h.shape[1],), h.dtype), jnp.zeros((), h.dtype))
    p, _, _ = _loop.run(objective, optax.adam(learning_rate), p0, num_steps=num_steps)
    return p
