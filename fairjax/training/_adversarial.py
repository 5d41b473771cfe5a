r"""Adversarial debiasing: a predictor trained against an adversary that guesses the group.

The predictor :math:`f_\theta` minimises its task loss :math:`L_P(\theta)`; an adversary
:math:`a_\phi` reads the predictor's output (and the label, for equalized odds) and minimises
its cross-entropy :math:`L_A(\theta, \phi)` at predicting the sensitive group. Two ways to set
them against each other, both one objective for the one optimizer loop
(:mod:`fairjax._loop`), so any optax optimizer, schedule or ``vmap`` over weights applies:

- ``variant="reversal"`` (Ganin & Lempitsky 2015; FFB's ``adv_gr``): the adversary's input
  passes a gradient-reversal layer (:func:`gradient_reversal`), so one descent step on
  :math:`L_P + \lambda L_A` moves :math:`\phi` down :math:`\nabla_\phi L_A` and
  :math:`\theta` along :math:`-\nabla_\theta L_P + \lambda \nabla_\theta L_A`.
- ``variant="projection"`` (Zhang, Lemoine, Mitchell 2018): the predictor's update is
  :math:`\nabla_\theta L_P - \mathrm{proj}_{\nabla_\theta L_A} \nabla_\theta L_P
  - \lambda \nabla_\theta L_A`, which removes the component of the task gradient that would
  help the adversary. It is the gradient of :math:`L_P` with the reversal scaled by
  :math:`c + \lambda`, :math:`c = \langle \nabla L_P, \nabla L_A\rangle / \|\nabla L_A\|^2`
  (held constant within the step), so it runs through the same loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fairjax import _loop
from fairjax import _validation as v
from fairjax.training._penalized import binary_cross_entropy

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PyTree = Any

__all__ = ["AdversarialResult", "adversarial_objective", "fit_adversarial", "gradient_reversal"]

_VARIANTS = ("reversal", "projection")
_CRITERIA = ("demographic_parity", "equalized_odds")


@jax.custom_vjp
def gradient_reversal(x: ArrayLike, scale: ArrayLike = 1.0) -> Array:
    r"""The identity forward; its gradient multiplied by :math:`-\text{scale}` backward.

    Placed between a feature extractor and an adversary, one descent step on the sum of
    their losses trains the adversary and pushes the features *against* it (Ganin and
    Lempitsky). ``scale`` receives no gradient.

    Args:
      x: any array.
      scale: a non-negative scalar (may be traced, e.g. a vmapped penalty weight).

    Returns:
      ``x``, unchanged.

    Example:
      >>> import jax
      >>> from fairjax.training import gradient_reversal
      >>> float(jax.grad(lambda x: 3.0 * gradient_reversal(x, 2.0))(1.0))
      -6.0

    References:
      Ganin, Lempitsky, *Unsupervised domain adaptation by backpropagation*, ICML 2015.
    """
    return jnp.asarray(x)


def _reversal_fwd(x, scale):
    return jnp.asarray(x), scale


def _reversal_bwd(scale, g):
    return (-scale * g, jnp.zeros_like(scale))


gradient_reversal.defvjp(_reversal_fwd, _reversal_bwd)


def _adversary_inputs(logits: Array, labels: Array, criterion: str) -> Array:
    """What the adversary sees: the logit, and the label for equalized odds (Zhang et al.)."""
    if criterion == "demographic_parity":
        return logits[:, None]
    return jnp.stack([logits, labels.astype(logits.dtype)], axis=1)


def adversarial_objective(
    model: Callable[..., Any],
    adversary: Callable[[PyTree, Array], Array],
    *,
    lam: ArrayLike,
    variant: str = "reversal",
    criterion: str = "demographic_parity",
    stateful: bool = False,
) -> Callable[..., Any]:
    r"""The objective of adversarial debiasing for the one loop: ``objective(params, batch)``.

    ``params = (model_params, adversary_params)``; ``batch = (x, y, s)`` with binary labels
    ``y`` and integer groups ``s``. ``model(p, x)`` returns logits ``(n,)``;
    ``adversary(q, z)`` returns group logits ``(n, G)`` from ``z`` (``(n, 1)``: the logit; with
    ``criterion="equalized_odds"``, ``(n, 2)``: the logit and the label). Its value is
    :math:`L_P + \lambda L_A` with ``"reversal"`` and :math:`L_P + L_A` with ``"projection"``
    (binary cross-entropy of the predictor, softmax cross-entropy of the adversary); its
    gradient is that of the chosen variant (module docstring).

    With ``stateful=True`` the predictor has dropout or batch norm: ``model(p, x, key,
    model_state) -> (logits, new_model_state)`` (``key=None``: evaluation), and the objective
    is ``objective(params, batch, key, model_state) -> (value, new_model_state)``, the
    protocol of the trainers' ``model_state=`` (every evaluation of the predictor within one
    step uses the same key, hence the same dropout mask).

    Args:
      model: the predictor.
      adversary: the adversary.
      lam: the adversary's weight :math:`\lambda \ge 0` (may be traced: vmap it).
      variant: ``"reversal"`` or ``"projection"``.
      criterion: ``"demographic_parity"`` or ``"equalized_odds"``.
      stateful: the predictor takes a key and a model state (see above).

    Returns:
      ``objective(params, batch) -> scalar`` (stateful: ``objective(params, batch, key,
      model_state) -> (scalar, model_state)``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.training import adversarial_objective
      >>> model = lambda w, x: x @ w
      >>> adversary = lambda q, z: z * q
      >>> obj = adversarial_objective(model, adversary, lam=1.0)
      >>> x, y, s = jnp.eye(2), jnp.array([1.0, 0.0]), jnp.array([1, 0])
      >>> bool(jnp.isfinite(obj((jnp.ones(2), jnp.ones(2)), (x, y, s))))
      True

    References:
      Zhang, Lemoine, Mitchell, *Mitigating unwanted biases with adversarial learning*,
      AIES 2018; Ganin, Lempitsky, ICML 2015; Han et al., *FFB: A Fair Fairness Benchmark for
      In-Processing Group Fairness Methods*, ICLR 2024.
    """
    if variant not in _VARIANTS:
        raise ValueError(f"`variant` must be one of {_VARIANTS}, got {variant!r}.")
    if criterion not in _CRITERIA:
        raise ValueError(f"`criterion` must be one of {_CRITERIA}, got {criterion!r}.")

    def losses(mp, ap, batch, scale, key, model_state):
        x, y, s = batch
        if stateful:
            logits, model_state = model(mp, x, key, model_state)
        else:
            logits = model(mp, x)
        task = jnp.mean(binary_cross_entropy(logits, y))
        z = _adversary_inputs(gradient_reversal(logits, scale), y, criterion)
        adv = optax.softmax_cross_entropy_with_integer_labels(adversary(ap, z), s).mean()
        return task, adv, model_state

    def value(params, batch, key=None, model_state=None):
        mp, ap = params
        if variant == "reversal":
            task, adv, model_state = losses(
                mp, ap, batch, jnp.ones((), jnp.float32), key, model_state
            )
            return task + lam * adv, model_state
        # projection: c = <grad L_P, grad L_A> / |grad L_A|^2 over the predictor, held fixed
        g_task = jax.grad(lambda p: losses(p, ap, batch, 0.0, key, model_state)[0])(mp)
        g_adv = jax.grad(lambda p: -losses(p, ap, batch, 1.0, key, model_state)[1])(mp)
        pairs = zip(jax.tree.leaves(g_task), jax.tree.leaves(g_adv), strict=True)
        dot = sum(jnp.vdot(a, b) for a, b in pairs)
        norm2 = sum(jnp.vdot(b, b) for b in jax.tree.leaves(g_adv))
        c = jax.lax.stop_gradient(jnp.where(norm2 > 0, dot / jnp.where(norm2 > 0, norm2, 1), 0))
        task, adv, model_state = losses(mp, ap, batch, c + lam, key, model_state)
        return task + adv, model_state

    if stateful:
        return value

    def objective(params, batch):
        return value(params, batch)[0]

    return objective


class AdversarialResult(NamedTuple):
    """The outcome of :func:`fit_adversarial`.

    Attributes:
      params: the trained ``(model_params, adversary_params)``.
      losses: the objective on each step's batch before the step, shape ``(num_steps,)``.
      model_state: the predictor's final model state (``None`` when stateless).
      finite: whether the parameters and the last loss are finite (False: training diverged,
        and a :class:`DivergenceWarning` was issued).
    """

    params: PyTree
    losses: Array
    model_state: PyTree = None
    finite: bool = True


def fit_adversarial(
    model: Callable[..., Any],
    adversary: Callable[[PyTree, Array], Array],
    params: PyTree,
    data: tuple[ArrayLike, ArrayLike, ArrayLike],
    *,
    lam: ArrayLike,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    batch_size: int | None = None,
    key: Array | None = None,
    model_state: PyTree = None,
    variant: str = "reversal",
    criterion: str = "demographic_parity",
) -> AdversarialResult:
    """Adversarial debiasing by :func:`adversarial_objective` in the one loop.

    Mini-batches follow the trainers' one convention (:func:`fit`): full batch by default;
    with ``batch_size`` and ``key`` the rows are shuffled once per epoch and cut into
    ``n // batch_size`` mini-batches. With ``model_state`` the predictor is stateful (dropout,
    batch norm): ``model(p, x, key, model_state) -> (logits, new_model_state)`` with a fresh key
    per step (from ``key``, then required) and the state carried from step to step.

    Args:
      model, adversary: as in :func:`adversarial_objective`.
      params: ``(model_params, adversary_params)``.
      data: ``(x, y, s)``: features ``(n, d)``, binary labels ``(n,)``, integer groups ``(n,)``.
      lam: the adversary's weight.
      optimizer: an optax optimizer for both parameter sets.
      num_steps: optimizer updates.
      batch_size: rows per mini-batch; ``None``: full batch.
      key: PRNG key of the shuffling and of the per-step keys.
      model_state: initial state of a stateful predictor (``None``: stateless).
      variant, criterion: as in :func:`adversarial_objective`.

    Returns:
      An :class:`AdversarialResult`.

    .. versionchanged:: 0.1.0
       Returns an :class:`AdversarialResult` (was ``(params, losses)``); mini-batches are
       drawn epoch by epoch (were drawn independently at each step); ``model_state=``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from fairjax.training import fit_adversarial
      >>> x = jax.random.normal(jax.random.key(0), (64, 3))
      >>> y = (x[:, 0] > 0).astype(jnp.float32); s = (x[:, 1] > 0).astype(jnp.int32)
      >>> model = lambda w, x: x @ w
      >>> adversary = lambda q, z: z @ q
      >>> params = (jnp.zeros(3), jnp.zeros((1, 2)))
      >>> res = fit_adversarial(model, adversary, params, (x, y, s), lam=0.5,
      ...                       optimizer=optax.adam(0.05), num_steps=50)
      >>> res.losses.shape
      (50,)
    """
    num_steps = v.check_scalar(num_steps, "num_steps", integer=True, positive=True)
    x, y, s = (jnp.asarray(a) for a in data)
    stateful = model_state is not None
    if batch_size is not None:
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=len(y))
    if key is None and (batch_size is not None or stateful):
        raise ValueError(
            "`key` is required with `batch_size` or `model_state` (it shuffles the rows and "
            "makes the per-step keys)."
        )
    objective = adversarial_objective(
        model, adversary, lam=lam, variant=variant, criterion=criterion, stateful=stateful
    )
    step = _loop.make_step(lambda p, a: objective(p, *a), optimizer, has_aux=stateful)

    def body(carry, batch, step_key):
        p, opt_state, state = carry
        if stateful:
            p, opt_state, (value, state) = step(p, opt_state, (batch, step_key, state))
        else:
            p, opt_state, value = step(p, opt_state, (batch,))
        return (p, opt_state, state), value

    (params, _, model_state), losses = _loop.scan_steps(
        body,
        (params, optimizer.init(params), model_state),
        (x, y, s),
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
        step_keys=stateful,
    )
    ok = _loop.finite("training.fit_adversarial", params, losses[-1:])
    return AdversarialResult(params, losses, model_state, ok)
