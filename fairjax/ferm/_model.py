"""The fitted FERM classifier, the empirical kernel map, and their decision function."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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
        X = v.check_features(X, self.points.shape[1])
        return kn.kernel_matrix(self.kernel, X, self.points)


@jax.jit
def _apply_map(feature_map: Any, X: Array) -> Array:
    """A fitted feature map applied to X, compiled once per map type and shape."""
    return feature_map(X)


def _map_widths(feature_map: Any, name: str) -> tuple[int | None, int | None]:
    """The input width ``d`` and output width ``D`` of a known feature map (``None`` for a map
    of another type); raises where the shapes of its arrays disagree."""
    if isinstance(feature_map, KernelExpansion):
        pts = np.shape(feature_map.points)
        ok, d, D = len(pts) == 2, pts[-1:], pts[:1]
        shapes = {"points": pts}
    elif isinstance(feature_map, kn.NystromFeatures):
        L, P = np.shape(feature_map.landmarks), np.shape(feature_map.projection)
        ok = len(L) == 2 and len(P) == 2 and L[0] == P[0]
        d, D, shapes = L[-1:], P[-1:], {"landmarks": L, "projection": P}
    elif isinstance(feature_map, kn.RandomFourierFeatures):
        W, b = np.shape(feature_map.weights), np.shape(feature_map.offsets)
        ok = len(W) == 2 and len(b) == 1 and W[1] == b[0]
        d, D, shapes = W[:1], b, {"weights": W, "offsets": b}
    else:
        return None, None
    if not ok:
        described = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ValueError(
            f"`{name}.feature_map` ({type(feature_map).__name__}) has inconsistent shapes: "
            f"{described}."
        )
    return d[0], D[0]


def _check_model(model: Any, *, name: str = "model") -> tuple[int | None, int]:
    """Checks that a FERM model's arrays agree with each other and hold finite values.

    The weights must be ``(D,)`` with ``D`` the feature map's output width (the expansion
    points of a :class:`KernelExpansion`, the projection columns of a Nystrom map, the
    frequencies of a random-Fourier map, the input width of a linear model), the bias a
    scalar, the directions ``(K, D)``; every floating array (kernel parameters included) finite
    where concrete.

    Returns:
      ``(d, D)``: the input width the model expects (None for a feature map of another type)
      and its feature width.
    """
    if not isinstance(model, FERMModel):
        raise TypeError(f"`{name}` must be a FERMModel, got {type(model).__name__}.")
    w, b, U = (getattr(model, f) for f in ("weights", "bias", "directions"))
    if np.ndim(w) != 1 or np.ndim(b) != 0 or np.ndim(U) != 2 or np.shape(U)[1] != np.shape(w)[0]:
        raise ValueError(
            f"`{name}` has inconsistent shapes: weights {np.shape(w)} (want (D,)), bias "
            f"{np.shape(b)} (want ()), directions {np.shape(U)} (want (K, D))."
        )
    D = int(np.shape(w)[0])
    d, D_map = _map_widths(model.feature_map, name)
    if model.feature_map is None:
        d, D_map = D, D
    if D_map is not None and D_map != D:
        raise ValueError(
            f"`{name}` has {D} weights but its feature map "
            f"({type(model.feature_map).__name__}) gives {D_map} features."
        )
    leaves = jax.tree_util.tree_flatten_with_path(model._replace(n_iter=None))[0]
    for path, leaf in leaves:
        if isinstance(leaf, (jax.Array, np.ndarray, float, np.floating)):
            v.check_finite(jnp.asarray(leaf), name + jax.tree_util.keystr(path, simple=False))
    return d, D


def decision_function(model: FERMModel, X: ArrayLike) -> Array:
    """The real-valued output :math:`f(x) = \\langle w, \\phi(x)\\rangle + b` of a FERM model.

    Args:
      model: from :func:`fit_linear` or :func:`fit_kernel`.
      X: features ``(n, d)``, finite.

    Returns:
      Array of shape ``(n,)``; predict the positive class where it is > 0.

    Raises:
      ValueError: ``X`` has another width than the model's input or holds NaN or infinity, or
        the model's arrays disagree in shape or are not finite.
    """
    d, D = _check_model(model)
    X = v.as_array(X, "X", ndim=2)
    if d is not None and X.shape[1] != d:
        raise ValueError(f"`X` must have {d} features (the model's input), got {X.shape[1]}.")
    v.check_finite(X, "X")
    Phi = X if model.feature_map is None else _apply_map(model.feature_map, X)
    if Phi.ndim != 2 or Phi.shape[1] != D:
        raise ValueError(
            f"`model.feature_map` gives features of shape {Phi.shape}, the model has {D} weights."
        )
    return Phi.astype(model.weights.dtype) @ model.weights + model.bias
