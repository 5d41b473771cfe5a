"""The fitted FERM classifier, the empirical kernel map, and their decision function."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from fairjax import _validation as v
from fairjax import kernels as kn

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class FERMModel(NamedTuple):
    r"""A fitted FERM classifier :math:`f(x) = \langle w, \phi(x)\rangle + b`.

    Attributes:
      feature_map: ``None`` for a linear model on ``x``, else a fitted map: a
        :class:`KernelExpansion` (exact kernel FERM) or one from :mod:`fairjax.kernels`
        (``NystromFeatures`` or ``RandomFourierFeatures``).
      weights: :math:`w`, shape ``(D,)``.
      bias: :math:`b`, scalar.
      directions: the fairness directions in feature space, ``(G - 1, D)``.
      n_iter: the number of optimizer iterations run (Adam steps, or SMO iterations).
    """

    feature_map: Any
    weights: Array
    bias: Array
    directions: Array
    n_iter: Any = None

    @property
    def dual_coef(self) -> Array:
        r"""Representer coefficients :math:`\beta` with :math:`f(x) = \sum_i \beta_i k(x_i, x) + b`.

        Defined for kernel models (``fit_kernel``): the weights themselves for a
        :class:`KernelExpansion`, :math:`\beta = V\Lambda^{-1/2} w` for a Nystrom map. The
        constraint reads :math:`\beta \cdot \tau_k = 0`.
        """
        if isinstance(self.feature_map, KernelExpansion):
            return self.weights
        if not isinstance(self.feature_map, kn.NystromFeatures):
            raise AttributeError("dual_coef exists for kernel FERM models only.")
        return self.feature_map.projection @ self.weights


class KernelExpansion(NamedTuple):
    r"""The empirical kernel map :math:`\phi(x) = (k(x_1, x), \dots, k(x_n, x))`.

    A :class:`FERMModel` with this map and weights :math:`\beta` is the kernel expansion
    :math:`f(x) = \sum_i \beta_i k(x_i, x) + b` (what :func:`fit_kernel`'s exact solver returns).

    Attributes:
      kernel: the kernel value.
      points: the expansion points :math:`x_i` (the training inputs), shape ``(n, d)``.
    """

    kernel: Any
    points: Array

    def __call__(self, X: ArrayLike) -> Array:
        X = v.as_array(X, "X", ndim=2)
        if X.shape[1] != self.points.shape[1]:
            raise ValueError(f"`X` must have {self.points.shape[1]} features, got {X.shape[1]}.")
        return kn.kernel_matrix(self.kernel, X, self.points)


@jax.jit
def _apply_map(feature_map: Any, X: Array) -> Array:
    """A fitted feature map applied to X, compiled once per map type and shape."""
    return feature_map(X)


def decision_function(model: FERMModel, X: ArrayLike) -> Array:
    """The real-valued output :math:`f(x) = \\langle w, \\phi(x)\\rangle + b` of a FERM model.

    Args:
      model: from :func:`fit_linear` or :func:`fit_kernel`.
      X: features ``(n, d)``.

    Returns:
      Array of shape ``(n,)``; predict the positive class where it is > 0.
    """
    X = v.as_array(X, "X", ndim=2)
    Phi = X if model.feature_map is None else _apply_map(model.feature_map, X)
    return Phi.astype(model.weights.dtype) @ model.weights + model.bias
