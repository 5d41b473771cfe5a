"""Kernels as values, kernel matrices and explicit (approximate) feature maps.

A kernel is an immutable PyTree value (a NamedTuple with a ``__call__``) passed as ``kernel=``:
its hyper-parameters are leaves, so a kernel can be jitted, vmapped over and differentiated with
respect to its bandwidth. Every kernel evaluates on a pair of points,
``kernel(x, y) -> scalar``, and on two sets of points through :func:`kernel_matrix`, which uses
the kernel's vectorised ``matrix`` method (for radial kernels a squared-distance matrix computed
with one matrix product).

Radial kernels are :math:`k(x, y) = \\kappa(\\|x - y\\|^2)` for a profile :math:`\\kappa`; a new
radial kernel (Laplace, inverse multiquadric, ...) only defines ``profile``. Sums of kernels
(multi-bandwidth) are :class:`Sum`.

Explicit feature maps turn a kernel method into a linear one, :math:`k(x, y) \\approx
\\langle \\phi(x), \\phi(y) \\rangle`:

* :func:`random_fourier_features` (Rahimi & Recht, NeurIPS 2007) for the Gaussian kernel;
* :func:`nystrom` (Williams & Seeger, NeurIPS 2001) for any kernel, from landmark points. With
  every training point as a landmark it is exact on the training set.

Both return a fitted feature map, an immutable NamedTuple whose ``__call__`` maps ``(n, d)``
inputs to ``(n, D)`` features.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from fairjax import _validation as v

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "Gaussian",
    "Kernel",
    "Linear",
    "NystromFeatures",
    "RandomFourierFeatures",
    "Sum",
    "gaussian",
    "kernel_matrix",
    "linear",
    "nystrom",
    "random_fourier_features",
    "squared_distances",
]


@runtime_checkable
class Kernel(Protocol):
    """What every kernel provides: a pair evaluation and a vectorised matrix."""

    def __call__(self, x: Array, y: Array) -> Array:  # pragma: no cover - protocol
        """``k(x, y)`` for two points of shape ``(d,)``."""
        ...

    def matrix(self, X: Array, Y: Array) -> Array:  # pragma: no cover - protocol
        """``K[i, j] = k(X[i], Y[j])``, shape ``(n, m)``."""
        ...


def squared_distances(X: ArrayLike, Y: ArrayLike | None = None) -> Array:
    """Pairwise squared Euclidean distances :math:`D_{ij} = \\|x_i - y_j\\|^2`.

    Computed as :math:`\\|x\\|^2 + \\|y\\|^2 - 2 x^\\top y` (one matrix product) and clipped at 0,
    because rounding can make the expansion slightly negative.

    Args:
      X: points, shape ``(n, d)``.
      Y: points, shape ``(m, d)``; default ``X``.

    Returns:
      Array of shape ``(n, m)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.kernels import squared_distances
      >>> squared_distances(jnp.array([[0.0, 0.0], [3.0, 4.0]]))
      Array([[ 0., 25.],
             [25.,  0.]], dtype=float32)
    """
    X = v.as_array(X, "X", ndim=2)
    Y = X if Y is None else v.as_array(Y, "Y", ndim=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"`X` and `Y` must have the same number of features, got {X.shape[1]} and {Y.shape[1]}."
        )
    dtype = v.float_dtype(X, Y)
    X, Y = X.astype(dtype), Y.astype(dtype)
    sq = jnp.sum(X * X, axis=1)[:, None] + jnp.sum(Y * Y, axis=1)[None, :] - 2.0 * (X @ Y.T)
    # The expansion can round below 0 for nearby points; a distance is never negative.
    return jnp.maximum(sq, 0.0)


class Linear(NamedTuple):
    """The linear kernel :math:`k(x, y) = \\langle x, y \\rangle`."""

    def __call__(self, x: Array, y: Array) -> Array:
        return jnp.dot(x, y)

    def matrix(self, X: Array, Y: Array) -> Array:
        return X @ Y.T


class Gaussian(NamedTuple):
    """Gaussian (RBF) kernel :math:`k(x, y) = \\exp(-\\|x - y\\|^2 / (2 h^2))`.

    ``bandwidth`` is :math:`h`; scikit-learn's ``gamma`` is :math:`1 / (2 h^2)`.
    """

    bandwidth: ArrayLike = 1.0

    def profile(self, sq: Array) -> Array:
        """:math:`\\kappa(r^2) = \\exp(-r^2 / (2 h^2))`."""
        h = jnp.asarray(self.bandwidth, sq.dtype)
        return jnp.exp(-sq / (2.0 * h * h))

    def __call__(self, x: Array, y: Array) -> Array:
        return self.profile(jnp.sum((x - y) ** 2))

    def matrix(self, X: Array, Y: Array) -> Array:
        return self.profile(squared_distances(X, Y))


class Sum(NamedTuple):
    """Sum of kernels :math:`k = \\sum_m k_m` (e.g. Gaussians of several bandwidths)."""

    kernels: tuple

    def __call__(self, x: Array, y: Array) -> Array:
        return sum(k(x, y) for k in self.kernels)

    def matrix(self, X: Array, Y: Array) -> Array:
        return sum(k.matrix(X, Y) for k in self.kernels)


def linear() -> Linear:
    """The linear kernel :math:`k(x, y) = x^\\top y`.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import kernels
      >>> kernels.linear()(jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0]))
      Array(11., dtype=float32)
    """
    return Linear()


def gaussian(*, bandwidth: ArrayLike = 1.0) -> Gaussian:
    """The Gaussian kernel :math:`k(x, y) = \\exp(-\\|x - y\\|^2 / (2 h^2))`, ``h = bandwidth``.

    Args:
      bandwidth: :math:`h > 0` (a float, or a traced scalar to tune or differentiate it).
        scikit-learn's ``gamma`` corresponds to ``bandwidth = (2 * gamma) ** -0.5``.

    Returns:
      A :class:`Gaussian` kernel value.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import kernels
      >>> k = kernels.gaussian(bandwidth=1.0)
      >>> k(jnp.array([0.0, 0.0]), jnp.array([1.0, 1.0]))  # exp(-2 / 2)
      Array(0.36787945, dtype=float32)
    """
    if v.is_concrete(bandwidth) and not float(bandwidth) > 0:
        raise ValueError(f"`bandwidth` must be > 0, got {bandwidth}.")
    return Gaussian(bandwidth)


def kernel_matrix(kernel: Kernel, X: ArrayLike, Y: ArrayLike | None = None) -> Array:
    """The kernel matrix :math:`K_{ij} = k(x_i, y_j)`.

    Args:
      kernel: a kernel value, e.g. ``kernels.gaussian(bandwidth=1.5)``.
      X: points, shape ``(n, d)``.
      Y: points, shape ``(m, d)``; default ``X``.

    Returns:
      Array of shape ``(n, m)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import kernels
      >>> X = jnp.array([[0.0], [1.0]])
      >>> kernels.kernel_matrix(kernels.gaussian(bandwidth=1.0), X)
      Array([[1.        , 0.60653067],
             [0.60653067, 1.        ]], dtype=float32)
    """
    if not isinstance(kernel, Kernel):
        raise TypeError(
            f"`kernel` must be a fairjax kernel (e.g. kernels.gaussian()), got "
            f"{type(kernel).__name__}."
        )
    X = v.as_array(X, "X", ndim=2)
    Y = X if Y is None else v.as_array(Y, "Y", ndim=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"`X` and `Y` must have the same number of features, got {X.shape[1]} and {Y.shape[1]}."
        )
    dtype = v.float_dtype(X, Y)
    return kernel.matrix(X.astype(dtype), Y.astype(dtype))


class RandomFourierFeatures(NamedTuple):
    """A fitted random Fourier feature map :math:`\\phi(x) = \\sqrt{2/D}\\cos(W^\\top x + b)`.

    Attributes:
      weights: frequencies :math:`W`, shape ``(d, D)``, i.i.d. :math:`N(0, h^{-2})`.
      offsets: phases :math:`b`, shape ``(D,)``, i.i.d. uniform on :math:`[0, 2\\pi)`.
    """

    weights: Array
    offsets: Array

    def __call__(self, X: ArrayLike) -> Array:
        X = v.as_array(X, "X", ndim=2)
        if X.shape[1] != self.weights.shape[0]:
            raise ValueError(f"`X` must have {self.weights.shape[0]} features, got {X.shape[1]}.")
        num = self.weights.shape[1]
        dtype = v.float_dtype(X, self.weights)
        z = X.astype(dtype) @ self.weights.astype(dtype) + self.offsets.astype(dtype)
        return jnp.sqrt(jnp.asarray(2.0 / num, dtype)) * jnp.cos(z)


def random_fourier_features(
    key: Array, dim: int, *, num_features: int, bandwidth: float = 1.0, dtype=None
) -> RandomFourierFeatures:
    """Random Fourier features for the Gaussian kernel of bandwidth ``h``.

    By Bochner's theorem :math:`\\exp(-\\|x-y\\|^2/(2h^2)) = E_{w, b}[2\\cos(w^\\top x + b)
    \\cos(w^\\top y + b)]` with :math:`w \\sim N(0, h^{-2} I)`, :math:`b \\sim U[0, 2\\pi)`, so
    :math:`\\langle \\phi(x), \\phi(y) \\rangle` is an unbiased Monte-Carlo estimate of the
    kernel with error :math:`O(D^{-1/2})`.

    Args:
      key: a PRNG key.
      dim: input dimension ``d``.
      num_features: number of features ``D``.
      bandwidth: Gaussian bandwidth ``h > 0``.
      dtype: float dtype of the map (default: the default float dtype).

    Returns:
      A :class:`RandomFourierFeatures` map; call it on ``(n, d)`` inputs.

    Example:
      >>> import jax
      >>> from fairjax import kernels
      >>> phi = kernels.random_fourier_features(jax.random.key(0), 3, num_features=64)
      >>> phi(jax.numpy.ones((5, 3))).shape
      (5, 64)

    References:
      Rahimi & Recht, Random Features for Large-Scale Kernel Machines, NeurIPS 2007.
    """
    if num_features < 1:
        raise ValueError(f"`num_features` must be >= 1, got {num_features}.")
    if not float(bandwidth) > 0:
        raise ValueError(f"`bandwidth` must be > 0, got {bandwidth}.")
    dtype = dtype or jnp.result_type(float)
    kw, kb = jax.random.split(key)
    weights = jax.random.normal(kw, (dim, num_features), dtype) / bandwidth
    offsets = jax.random.uniform(kb, (num_features,), dtype, 0.0, 2.0 * jnp.pi)
    return RandomFourierFeatures(weights, offsets)


class NystromFeatures(NamedTuple):
    """A fitted Nystrom feature map :math:`\\phi(x) = \\Lambda^{-1/2} V^\\top k(L, x)`.

    Attributes:
      kernel: the kernel value.
      landmarks: landmark points ``L``, shape ``(m, d)``.
      projection: :math:`V \\Lambda^{-1/2}` on the kept eigenpairs, shape ``(m, r)`` (``r``
        the numerical rank when fitted eagerly; ``r = m`` with zero columns under ``jit``).
    """

    kernel: Kernel
    landmarks: Array
    projection: Array

    def __call__(self, X: ArrayLike) -> Array:
        X = v.as_array(X, "X", ndim=2)
        K = kernel_matrix(self.kernel, X, self.landmarks)
        return K @ self.projection.astype(K.dtype)


def nystrom(kernel: Kernel, landmarks: ArrayLike, *, rcond: float = 1e-6) -> NystromFeatures:
    """Nystrom feature map from landmark points.

    With :math:`K_{LL} = V \\Lambda V^\\top`, :math:`\\phi(x) = \\Lambda^{-1/2} V^\\top
    k(L, x)`, so :math:`\\langle\\phi(x), \\phi(y)\\rangle = k(x, L) K_{LL}^{+} k(L, y)`, exact
    when ``x`` or ``y`` is a landmark. Eigenvalues below ``rcond * max eigenvalue`` are dropped
    (their features are 0), which is the pseudo-inverse and keeps the map finite.

    Args:
      kernel: a kernel value.
      landmarks: landmark points, shape ``(m, d)`` (a random subset of the data, or all of it).
      rcond: relative eigenvalue cut-off.

    Returns:
      A :class:`NystromFeatures` map producing ``(n, r)`` features, ``r <= m`` the number of
      eigenvalues above the cut-off (``r = m`` under ``jit``, with zero features).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import kernels
      >>> L = jnp.array([[0.0], [1.0], [3.0]])
      >>> k = kernels.gaussian(bandwidth=1.0)
      >>> phi = kernels.nystrom(k, L)
      >>> bool(jnp.allclose(phi(L) @ phi(L).T, kernels.kernel_matrix(k, L), atol=1e-5))
      True

    References:
      Williams & Seeger, Using the Nystrom Method to Speed Up Kernel Machines, NeurIPS 2001.
    """
    L = v.as_array(landmarks, "landmarks", ndim=2)
    v.check_finite(L, "landmarks")
    K = kernel_matrix(kernel, L)
    evals, evecs = jnp.linalg.eigh(0.5 * (K + K.T))
    keep = evals > rcond * jnp.max(evals)
    # Double where: 1/sqrt is only evaluated on kept (positive) eigenvalues.
    inv_sqrt = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, evals, 1.0)), 0.0)
    projection = evecs * inv_sqrt[None, :]
    if v.is_concrete(keep):
        # Outside jit the dropped (all-zero) feature columns are removed: rank r <= m features.
        # eigh sorts eigenvalues in ascending order, so the kept ones are the last r.
        rank = max(int(jnp.sum(keep)), 1)
        projection = projection[:, -rank:]
    return NystromFeatures(kernel, L.astype(K.dtype), projection)
