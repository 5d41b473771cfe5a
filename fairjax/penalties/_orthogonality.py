"""FERM's orthogonality penalty (Donini et al., NeurIPS 2018)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fairjax import _validation as v

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["orthogonality"]


def orthogonality(w: ArrayLike, u: ArrayLike, *, squared: bool = True) -> Array:
    r"""Penalty on the FERM constraint :math:`\langle w, u_k\rangle = 0`.

    .. math::

        P(w) = \sum_k \langle w, u_k\rangle^2 = \|U w\|_2^2 \quad (\text{squared}), \qquad
        P(w) = \|U w\|_2 \quad (\text{not squared}).

    With the FERM directions :math:`u_k` (:func:`fairjax.ferm.fairness_direction`),
    :math:`\langle w, u_k\rangle` is the gap between the mean outputs of a linear model on the
    positives of group :math:`g_k` and of the reference group, so the penalty is a smooth
    relaxation of equal opportunity; add ``lam * orthogonality(w, u)`` to a loss. For one
    direction the unsquared form is :math:`|\langle w, u\rangle|`. Its gradient at
    :math:`U w = 0` is defined as 0 (a subgradient) through the double-``where`` trick, so it
    is never NaN; use :func:`fairjax.ferm.project_orthogonal` for the exact constraint.

    Args:
      w: weights, shape ``(d,)``; or ``(d, m)`` (the penalty sums over the ``m`` columns).
      u: directions, shape ``(d,)`` or ``(K, d)``.
      squared: squared Euclidean norm (smooth, default) or the norm.

    Returns:
      A scalar, in the float dtype of the inputs.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.penalties import orthogonality
      >>> orthogonality(jnp.array([1.0, 2.0]), jnp.array([3.0, 0.0]))
      Array(9., dtype=float32)
      >>> orthogonality(jnp.array([1.0, 2.0]), jnp.array([3.0, 0.0]), squared=False)
      Array(3., dtype=float32)

    References:
      Donini, Oneto, Ben-David, Shawe-Taylor, Pontil, Empirical Risk Minimization under Fairness
      Constraints, NeurIPS 2018 (arXiv:1802.08626).
    """
    w = v.as_array(w, "w", ndim=(1, 2))
    u = v.as_array(u, "u", ndim=(1, 2))
    v.check_finite(w, "w")
    v.check_finite(u, "u")
    U = u[None, :] if u.ndim == 1 else u
    if U.shape[1] != w.shape[0]:
        raise ValueError(
            f"`u` must have d = {w.shape[0]} columns like `w` has rows, got shape {u.shape}."
        )
    dtype = v.float_dtype(w, u)
    c = U.astype(dtype) @ w.astype(dtype)
    sq = jnp.sum(c * c, axis=0)
    if squared:
        return jnp.sum(sq)
    # Double where: sqrt's gradient is infinite at 0; evaluate it only where sq != 0 (a test
    # that is True for NaN, so a NaN stays NaN).
    zero = sq == 0
    return jnp.sum(jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, sq))))
