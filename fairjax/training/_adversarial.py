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
from fairjax.groups import group_means
from fairjax.training._penalized import binary_cross_entropy

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
PyTree = Any

__all__ = [
    "AdversarialResult",
    "adversarial_objective",
    "fit_adversarial",
    "gradient_reversal",
    "laftr_objective",
]

_VARIANTS = ("reversal", "projection")
_CRITERIA = ("demographic_parity", "equalized_odds")
_ADVERSARY_INPUTS = ("output", "representation")


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
    # A negative scale would make the reversal an ordinary gradient (checked where known).
    v.check_scalar(scale, "scale", nonnegative=True)
    return _reverse(x, scale)


@jax.custom_vjp
def _reverse(x: ArrayLike, scale: ArrayLike) -> Array:
    """:func:`gradient_reversal` of any scale: the projection variant's ``c + lam`` may be
    negative (its coefficient ``c`` is a signed projection)."""
    return jnp.asarray(x)


def _reversal_fwd(x, scale):
    return jnp.asarray(x), scale


def _reversal_bwd(scale, g):
    return (-scale * g, jnp.zeros_like(scale))


_reverse.defvjp(_reversal_fwd, _reversal_bwd)


def _adversary_inputs(seen: Array, labels: Array, criterion: str) -> Array:
    """What the adversary sees: the logit (or representation), and the label for equalized odds.

    ``seen`` is the logit ``(n,)`` (Zhang et al.) or a representation ``(n, k)``; the result
    is ``(n, 1)`` or ``(n, k)``, with the label appended as a last column for equalized odds.
    """
    seen = seen[:, None] if seen.ndim == 1 else seen
    if criterion == "demographic_parity":
        return seen
    return jnp.concatenate([seen, labels.astype(seen.dtype)[:, None]], axis=1)


def adversarial_objective(
    model: Callable[..., Any],
    adversary: Callable[[PyTree, Array], Array],
    *,
    lam: ArrayLike,
    variant: str = "reversal",
    criterion: str = "demographic_parity",
    adversary_input: str = "output",
    stateful: bool = False,
) -> Callable[..., Any]:
    r"""The objective of adversarial debiasing for the one loop: ``objective(params, batch)``.

    ``params = (model_params, adversary_params)``; ``batch = (x, y, s)`` with binary labels
    ``y`` and integer groups ``s``. ``model(p, x)`` returns logits ``(n,)``;
    ``adversary(q, z)`` returns group logits ``(n, G)`` from ``z`` (``(n, 1)``: the logit; with
    ``criterion="equalized_odds"``, ``(n, 2)``: the logit and the label). With
    ``adversary_input="representation"`` the adversary reads a hidden representation instead
    of the output, as in domain-adversarial training (Ganin and Lempitsky) and FFB's
    ``adv_gr``: ``model(p, x)`` then returns ``(logits, features)``, features ``(n, k)``, and
    the adversary sees ``z = features`` (``(n, k + 1)`` with the label for equalized odds),
    through the reversal. Its value is
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
      adversary_input: ``"output"`` (the logit; Zhang et al.) or ``"representation"`` (the
        features the model returns beside its logits).
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
    if adversary_input not in _ADVERSARY_INPUTS:
        raise ValueError(
            f"`adversary_input` must be one of {_ADVERSARY_INPUTS}, got {adversary_input!r}."
        )
    v.check_scalars(lam, "lam", nonnegative=True)

    def losses(mp, ap, batch, scale, key, model_state):
        x, y, s = batch
        if stateful:
            out, model_state = model(mp, x, key, model_state)
        else:
            out = model(mp, x)
        logits, seen = out if adversary_input == "representation" else (out, out)
        task = jnp.mean(binary_cross_entropy(logits, y))
        z = _adversary_inputs(_reverse(seen, scale), y, criterion)
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
    adversary_input: str = "output",
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
      variant, criterion, adversary_input: as in :func:`adversarial_objective`.

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
    x, y, s = _check_data(data)
    stateful = model_state is not None
    if batch_size is not None:
        batch_size = v.check_scalar(batch_size, "batch_size", integer=True, low=1, high=len(y))
    if key is None and (batch_size is not None or stateful):
        raise ValueError(
            "`key` is required with `batch_size` or `model_state` (it shuffles the rows and "
            "makes the per-step keys)."
        )
    options = dict(variant=variant, criterion=criterion, adversary_input=adversary_input)
    # Validated here, as the objective checks its options (the compiled run gets lam traced).
    adversarial_objective(model, adversary, lam=lam, stateful=stateful, **options)
    _check_adversary_classes(
        model, adversary, params, (x, y, s), model_state, adversary_input, criterion
    )
    run = _loop.bind_static(
        _adversarial_run_jit,
        _adversarial_run,
        model=model,
        adversary=adversary,
        optimizer=optimizer,
        num_steps=num_steps,
        batch_size=batch_size,
        stateful=stateful,
        **options,
    )
    params, losses, model_state = run(params, (x, y, s), jnp.asarray(lam), key, model_state)
    ok = _loop.finite("training.fit_adversarial", params, losses[-1:])
    return AdversarialResult(params, losses, model_state, ok)


def _adversarial_run(
    params,
    data,
    lam,
    key,
    model_state,
    *,
    model,
    adversary,
    optimizer,
    num_steps,
    batch_size,
    stateful,
    variant,
    criterion,
    adversary_input,
):
    """:func:`fit_adversarial`'s training loop, one compiled program per model, adversary,
    optimizer and options (an eager call built new closures and recompiled each time)."""
    objective = adversarial_objective(
        model,
        adversary,
        lam=lam,
        variant=variant,
        criterion=criterion,
        adversary_input=adversary_input,
        stateful=stateful,
    )
    params, model_state, losses = _loop.train_steps(
        objective,
        optimizer,
        params,
        data,
        model_state,
        num_steps=num_steps,
        batch_size=batch_size,
        key=key,
    )
    return params, losses, model_state


_adversarial_run_jit = jax.jit(
    _adversarial_run,
    static_argnames=(
        "model", "adversary", "optimizer", "num_steps", "batch_size", "stateful", "variant",
        "criterion", "adversary_input",
    ),
)  # fmt: skip


def _check_adversary_classes(model, adversary, params, data, model_state, adversary_input, crit):
    """Concrete group ids within the adversary's logits (found on one row, abstractly): an id
    past them made every loss NaN, which the divergence warning blamed on the data or the
    learning rate."""
    x, y, s = data
    if not (v.is_concrete(s) and s.size):
        return

    def logits(mp, ap):
        if model_state is None:
            out = model(mp, x[:1])
        else:
            out = model(mp, x[:1], jax.random.key(0), model_state)[0]
        seen = out[1] if adversary_input == "representation" else out
        return adversary(ap, _adversary_inputs(seen, y[:1], crit))

    try:
        num = jax.eval_shape(lambda p: logits(*p), params).shape[-1]
    except Exception:  # the objective's own first call reports what is wrong
        return
    top = int(jnp.max(s))
    if top >= num:
        raise ValueError(
            f"`s` holds group id {top}, but the adversary outputs {num} logits (ids 0 to "
            f"{num - 1}); give it one logit per group."
        )


def _check_data(data: Any) -> tuple[Array, Array, Array]:
    """``(x, y, s)`` as arrays: one row each, binary labels, integer groups (ids checked
    against the adversary's classes only by its loss)."""
    if not isinstance(data, tuple | list) or len(data) != 3:
        raise ValueError("`data` must be an (x, y, s) triple.")
    x = v.as_array(data[0], "x")
    y, s = v.as_array(data[1], "y", ndim=1), v.as_array(data[2], "s", ndim=1)
    if x.ndim == 0:
        raise ValueError("`x` must have one row per example, got a scalar.")
    v.check_length(y, x.shape[0], "y", "x")
    v.check_length(s, x.shape[0], "s", "x")
    v.check_binary(y, "y")
    if not (jnp.issubdtype(s.dtype, jnp.integer) or s.dtype == jnp.bool_):
        raise TypeError(f"`s` must hold integer group ids, got dtype {s.dtype}.")
    if v.is_concrete(s) and s.size and int(jnp.min(s)) < 0:
        raise ValueError(f"`s` must hold group ids >= 0, got {int(jnp.min(s))}.")
    # Boolean groups are ids 0 and 1 (optax's cross-entropy takes integer labels only).
    return x, y, s.astype(jnp.int32) if s.dtype == jnp.bool_ else s


_LAFTR_LOSSES = ("group_l1", "cross_entropy")
_LAFTR_CRITERIA = ("demographic_parity", "equal_opportunity", "equalized_odds")
_RECONSTRUCTIONS = ("mse", "rmse")


def _laftr_cells(criterion: str) -> tuple[int | None, ...]:
    """The label values whose groups the adversary's error is averaged over (None: all rows)."""
    return {"demographic_parity": (None,), "equal_opportunity": (1,), "equalized_odds": (0, 1)}[
        criterion
    ]


def laftr_objective(
    encoder: Callable[..., Array],
    classifier: Callable[..., Array],
    adversary: Callable[..., Array],
    *,
    adversary_weight: ArrayLike,
    prediction_weight: ArrayLike = 1.0,
    decoder: Callable[..., Array] | None = None,
    reconstruction_weight: ArrayLike = 1.0,
    adversary_loss: str = "group_l1",
    criterion: str = "demographic_parity",
    reconstruction: str = "mse",
    stochastic: bool = False,
) -> Callable[..., Array]:
    r"""LAFTR's objective (adversarially learned fair representations) for the one loop.

    An encoder :math:`f` maps the features to a representation :math:`z = f(x)`; a classifier
    :math:`g` predicts the label from :math:`z`, an optional decoder :math:`k` reconstructs
    :math:`x` from :math:`(z, s)`, and an adversary :math:`h` guesses the binary group
    :math:`s` from :math:`z`. Madras et al. solve

    .. math::
       \min_{f, g, k} \max_{h}\; \alpha\, L_C(g(z), y) + \beta\, L_{Dec}(k(z, s), x)
       + \gamma\, L_{Adv}(h(z), s),

    where the adversary's objective for demographic parity is one minus its group-normalised
    :math:`\ell_1` error, :math:`L_{Adv} = 1 - \sum_{a \in \{0,1\}} \frac{1}{|D_a|}
    \sum_{i \in D_a} |h(z_i) - s_i|` (``adversary_loss="group_l1"``; :math:`D_a` the rows of
    group :math:`a`; for equalized odds the sum runs over the four cells
    :math:`D_a^y`, for equal opportunity over the cells with :math:`y = 1`). Minimising that
    error over the encoder bounds the demographic-parity gap of *any* classifier of :math:`z`
    (their Theorem 2). ``adversary_loss="cross_entropy"`` uses the adversary's binary
    cross-entropy instead, as FFB's LAFTR does.

    Here the min-max is one objective for the one optimizer loop (:mod:`fairjax._loop`): the
    adversary reads :math:`z` through :func:`gradient_reversal`, so one descent step on

    .. math:: \alpha L_C + \beta L_{Dec} + \gamma\, E_{Adv}

    (:math:`E_{Adv}` the adversary's error: the group-normalised :math:`\ell_1` sum or the
    cross-entropy) lowers the adversary's error over :math:`h` and raises it over :math:`f`,
    simultaneous gradient descent-ascent (FFB's form; Madras et al. alternate the two players'
    steps). The returned value is that sum, not the encoder's objective.

    Shapes: ``batch = (x, y, s)`` with features ``(n, d)``, binary labels ``(n,)`` and binary
    groups ``(n,)``; ``encoder(p, x) -> z (n, k)``, ``classifier(p, z) -> logits (n,)``,
    ``adversary(p, z) -> logits (n,)``, ``decoder(p, z, s) -> x_hat (n, d)``. ``params`` is a
    dict with the keys ``"encoder"``, ``"classifier"``, ``"adversary"`` (and ``"decoder"``
    when a decoder is given). With ``stochastic=True`` (dropout) every network takes a PRNG key
    as its last argument and ``batch = (x, y, s, key)``; each network gets its own key, split
    from the batch's. Predictions are ``classifier(p["classifier"], encoder(p["encoder"],
    x))``. Groups other than 0 and 1 raise where concrete; under ``jit`` they make the
    objective NaN (and its gradient 0), which the trainers report as divergence.

    Args:
      encoder, classifier, adversary: the networks (see Shapes).
      adversary_weight: :math:`\gamma \ge 0`, the penalty weight (may be traced: vmap it).
      prediction_weight: :math:`\alpha`.
      decoder: optional reconstruction network (``None``: no reconstruction term).
      reconstruction_weight: :math:`\beta` (used with a decoder).
      adversary_loss: ``"group_l1"`` (Madras et al.) or ``"cross_entropy"`` (FFB).
      criterion: ``"demographic_parity"``, ``"equal_opportunity"`` or ``"equalized_odds"``
        (the cells of the group-normalised error; with ``"cross_entropy"`` only
        ``"demographic_parity"``).
      reconstruction: ``"mse"`` (mean squared error) or ``"rmse"`` (its square root, with
        ``1e-6`` added inside as in FFB's ``RMSELoss``).
      stochastic: the networks take a key (see Shapes).

    Returns:
      ``objective(params, batch) -> scalar``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.training import laftr_objective
      >>> lin = lambda p, z: z @ p
      >>> obj = laftr_objective(lin, lin, lin, adversary_weight=1.0)
      >>> params = {"encoder": jnp.eye(3)[:, :2], "classifier": jnp.ones(2),
      ...           "adversary": jnp.zeros(2)}
      >>> x = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
      >>> y, s = jnp.array([1.0, 0.0, 1.0]), jnp.array([0, 1, 1])
      >>> round(float(obj(params, (x, y, s))), 4)  # BCE 0.7732 + the error 0.5 + 0.5
      1.7732

    References:
      Madras, Creager, Pitassi, Zemel, *Learning adversarially fair and transferable
      representations*, ICML 2018; Han et al., *FFB: A Fair Fairness Benchmark for
      In-Processing Group Fairness Methods*, ICLR 2024 (the cross-entropy form).
    """
    if adversary_loss not in _LAFTR_LOSSES:
        raise ValueError(
            f"`adversary_loss` must be one of {_LAFTR_LOSSES}, got {adversary_loss!r}."
        )
    if criterion not in _LAFTR_CRITERIA:
        raise ValueError(f"`criterion` must be one of {_LAFTR_CRITERIA}, got {criterion!r}.")
    if adversary_loss == "cross_entropy" and criterion != "demographic_parity":
        raise ValueError(
            '`criterion` must be "demographic_parity" with adversary_loss="cross_entropy" '
            f"(the cross-entropy is not conditioned on the label), got {criterion!r}."
        )
    if reconstruction not in _RECONSTRUCTIONS:
        raise ValueError(
            f"`reconstruction` must be one of {_RECONSTRUCTIONS}, got {reconstruction!r}."
        )
    cells = _laftr_cells(criterion)

    def objective(params, batch):
        if stochastic:
            x, y, s, key = batch
            keys = jax.random.split(key, 4)
            call = lambda f, i, *a: f(*a, keys[i])
        else:
            x, y, s = batch
            call = lambda f, i, *a: f(*a)
        s = jnp.asarray(s)
        # Groups other than 0 and 1 would drop out of the adversary's error without a word:
        # refused where concrete, and a NaN objective (divergence) under jit.
        binary = jnp.all((s == 0) | (s == 1))
        if v.is_concrete(binary) and not bool(binary):
            raise ValueError("the batch's groups `s` must be binary, 0 or 1 (LAFTR's adversary).")
        z = call(encoder, 0, params["encoder"], x)
        logits = call(classifier, 1, params["classifier"], z)
        value = prediction_weight * jnp.mean(binary_cross_entropy(logits, y))
        guess = call(adversary, 2, params["adversary"], gradient_reversal(z))
        target = s.astype(guess.dtype)
        if adversary_loss == "cross_entropy":
            error = jnp.mean(binary_cross_entropy(guess, target))
        else:
            miss = jnp.abs(jax.nn.sigmoid(guess) - target)
            error = sum(
                jnp.sum(
                    group_means(
                        miss,
                        s.astype(jnp.int32),
                        num_groups=2,
                        labels=None if c is None else y,
                        label_value=0 if c is None else c,
                    )
                )
                for c in cells
            )
        value = value + adversary_weight * error
        if decoder is not None:
            x_hat = call(decoder, 3, params["decoder"], z, s)
            mse = jnp.mean((x_hat - x) ** 2)
            rec = mse if reconstruction == "mse" else jnp.sqrt(mse + 1e-6)
            value = value + reconstruction_weight * rec
        return jnp.where(binary, value, jnp.nan)

    return objective
