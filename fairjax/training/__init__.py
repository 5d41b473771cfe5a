r"""Training with fairness terms: penalised objectives, primal-dual constraints, Pareto sweeps.

Four ways to trade accuracy for fairness, all pure functions over optax:

- **Penalised** (:func:`penalized`, :func:`make_step`, :func:`fit`): minimise
  :math:`L(\theta) + \lambda P(\theta)` for a task loss :math:`L` and a differentiable fairness
  term :math:`P` (:mod:`fairjax.penalties`), full-batch or mini-batch, with early stopping.
- **Constrained** (:func:`fit_constrained`): ask for :math:`C(\theta) \le \varepsilon` (e.g. a
  demographic-parity gap of at most 0.02) and find the saddle point of the Lagrangian
  :math:`L(\theta) + \mu\,(C(\theta) - \varepsilon)`, :math:`\mu \ge 0`, by gradient descent on
  :math:`\theta` and projected gradient ascent on :math:`\mu`.
- **Rate constraints by reduction** (:func:`fit_rate_constrained`): a bound on a gap between
  the groups' decision rates (a :mod:`fairjax.criteria` criterion), with each
  primal step on the cost-sensitive problem of the current multipliers (ExponentiatedGradient's
  reduction, as gradient steps); :func:`fit_rate_constrained_mixture` returns, like
  ExponentiatedGradient, a randomised classifier: the best mixture of the iterates under the
  bound in expectation.
- **Pareto sweeps** (:func:`pareto_sweep`): train one model per penalty weight
  :math:`\lambda_1, \dots, \lambda_K` at once with :func:`jax.vmap` — one compilation, one
  program that reads the data once per step for all K models.

A model is any function of parameters (a PyTree: a dict of arrays, a Flax/Equinox module's
parameters); a *batch* is any PyTree of arrays with the samples on the leading axis; an
*objective* is a function ``objective(params, batch) -> scalar``.

:func:`penalized`, :func:`lagrangian`, :func:`make_constrained_step`, :func:`fit_constrained`,
:func:`pareto_sweep` and :func:`constrained_sweep` also take ``model=``: a function
``model(params, batch) -> outputs`` (e.g.
the logits). With it, the loss, penalty and constraint functions receive ``(outputs, batch)``
instead of ``(params, batch)``, and the model runs once per step for all of them. Without it,
each term that calls the model runs its own forward pass, and reverse-mode differentiation runs
one backward pass per term (XLA merges identical forward computations, never the backward
ones).

Budgets: the trainers that take a fixed number of optimizer updates call it ``num_steps``;
:func:`fit` takes ``num_epochs``, passes over the data (one update each full-batch, ``n //
batch_size`` updates each with mini-batches). Every update goes through one private loop,
:mod:`fairjax._loop`.

One mini-batching convention: every trainer here also takes ``num_steps`` (``fit`` alongside
``num_epochs``, which counts ``n // batch_size`` steps per pass), full batch by default and
shuffled mini-batches with ``batch_size`` and ``key``; :func:`fit` and :func:`fit_constrained`
also take a Python iterator of batches (``constraint_data=``, ``eval_every=`` for the
constraint). ``model_state=`` selects the stateful protocol of a model with dropout or batch
norm, ``model(params, batch, key, model_state) -> (outputs, model_state)`` with a fresh key per
step and ``key=None`` for evaluation (``fit``: the objective takes the same arguments).
"""

from fairjax._loop import DivergenceWarning

from ._adversarial import (
    AdversarialResult,
    adversarial_objective,
    fit_adversarial,
    gradient_reversal,
    laftr_objective,
)
from ._lagrangian import (
    ConstrainedResult,
    ConstrainedState,
    fit_constrained,
    lagrangian,
    make_constrained_step,
)
from ._logistic import logistic_regression
from ._mixture import MixtureResult, best_mixture, fit_rate_constrained_mixture, mixture_decisions
from ._penalized import (
    FitResult,
    TrainState,
    binary_cross_entropy,
    fit,
    init_state,
    make_step,
    penalized,
)
from ._reduction import fit_rate_constrained
from ._sweeps import ConstrainedSweepResult, SweepResult, constrained_sweep, pareto_sweep

__all__ = [
    "AdversarialResult",
    "ConstrainedResult",
    "ConstrainedState",
    "ConstrainedSweepResult",
    "DivergenceWarning",
    "FitResult",
    "MixtureResult",
    "SweepResult",
    "TrainState",
    "adversarial_objective",
    "best_mixture",
    "binary_cross_entropy",
    "constrained_sweep",
    "fit",
    "fit_adversarial",
    "fit_constrained",
    "fit_rate_constrained",
    "fit_rate_constrained_mixture",
    "gradient_reversal",
    "init_state",
    "laftr_objective",
    "lagrangian",
    "logistic_regression",
    "make_constrained_step",
    "make_step",
    "mixture_decisions",
    "pareto_sweep",
    "penalized",
]


def __getattr__(name: str):
    """``demo_pareto`` moved to :func:`fairjax.cli.demo_pareto` (a deprecated forward)."""
    if name == "demo_pareto":
        import warnings

        from fairjax import cli

        warnings.warn(
            "fairjax.training.demo_pareto is deprecated; use fairjax.cli.demo_pareto.",
            DeprecationWarning,
            stacklevel=2,
        )
        return cli.demo_pareto
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
