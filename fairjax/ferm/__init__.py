r"""FERM: empirical risk minimisation under a fairness constraint written as orthogonality.

Donini, Oneto, Ben-David, Shawe-Taylor and Pontil, *Empirical Risk Minimization under Fairness
Constraints*, NeurIPS 2018 (arXiv:1802.08626).

**The constraint.** Equal opportunity asks the true-positive rate to be the same in every group.
Replacing the 0-1 loss inside that constraint by the linear loss turns it into equal *mean
outputs* on the positive examples of each group. For a model linear in a feature map,
:math:`f(x) = \langle w, \phi(x) \rangle + b`, and :math:`P_g` the positive examples of group
:math:`g`,

.. math::

    \frac{1}{|P_a|}\sum_{i \in P_a} f(x_i) - \frac{1}{|P_b|}\sum_{i \in P_b} f(x_i)
    = \langle w, u \rangle, \qquad
    u = \frac{1}{|P_a|}\sum_{i \in P_a} \phi(x_i) - \frac{1}{|P_b|}\sum_{i \in P_b} \phi(x_i),

(the bias cancels), so the eps-fair models are :math:`\{w : |\langle w, u \rangle| \le
\varepsilon\}`, and :math:`\varepsilon = 0` asks :math:`w \perp u`. With :math:`G` groups there
are :math:`G - 1` directions :math:`u_k` (:func:`fairness_direction`); conditioning on all
examples instead of the positives gives the demographic-parity version.

**What this module offers.**

* :func:`fairness_direction` — the ``(G - 1, d)`` directions from group means.
* :func:`project` — the exact Euclidean projection onto
  :math:`\{w : |\langle w, u_k\rangle| \le \varepsilon\ \forall k\}`, and
  :func:`project_orthogonal`, an optax ``GradientTransformation`` that keeps a parameter on that
  set after every update, so any optimizer trains any linear-in-features model under the exact
  constraint.
* :func:`fit_projection` / :func:`transform` — linear FERM as pre-processing: after the map every
  linear model satisfies the constraint (orthogonal projection, or the paper's pivot
  elimination).
* :func:`fit_linear` and :func:`fit_kernel` — (kernel) FERM classifiers trained with optax under
  the projection; :func:`decision_function` evaluates them.

The penalty form :math:`\|U w\|^2` is :func:`fairjax.penalties.orthogonality`.
"""

from __future__ import annotations

from fairjax.ferm._directions import fairness_direction
from fairjax.ferm._kernel import fit_kernel
from fairjax.ferm._linear import fit_linear
from fairjax.ferm._model import FERMModel, KernelExpansion, decision_function
from fairjax.ferm._persist import (
    load_model,
    load_projection,
    save_model,
    save_projection,
)
from fairjax.ferm._preprocessing import (
    OrthogonalProjection,
    PivotElimination,
    effective_weights,
    fit_projection,
    transform,
)
from fairjax.ferm._projection import project, project_gradient, project_orthogonal

__all__ = [
    "FERMModel",
    "KernelExpansion",
    "OrthogonalProjection",
    "PivotElimination",
    "decision_function",
    "effective_weights",
    "fairness_direction",
    "fit_kernel",
    "fit_linear",
    "fit_projection",
    "load_model",
    "load_projection",
    "project",
    "project_gradient",
    "project_orthogonal",
    "save_model",
    "save_projection",
    "transform",
]
