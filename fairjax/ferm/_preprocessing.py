"""Linear FERM as pre-processing: a map after which every linear model meets the constraint."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax.ferm._directions import _CRITERIA, _legacy_criterion, fairness_direction
from fairjax.ferm._projection import _orthonormal_basis

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class OrthogonalProjection(NamedTuple):
    """Fitted linear-FERM map ``x -> x - B^T B x`` (projection onto the complement of span u).

    Attributes:
      directions: the fairness directions, shape ``(K, d)``.
      basis: orthonormal rows spanning the directions (zero rows for dependent ones), ``(K, d)``.
    """

    directions: Array
    basis: Array


class PivotElimination(NamedTuple):
    """Fitted pivot elimination of the paper: ``x~_j = x_j - x_i u_j / u_i`` for ``j != i``.

    Attributes:
      direction: the fairness direction ``u``, shape ``(d,)``.
      pivot: the eliminated coordinate ``i`` (int32 scalar), ``argmax |u_i|``.
    """

    direction: Array
    pivot: Array


def fit_projection(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    criterion: str | criteria.Criterion | None = None,
    method: Literal["orthogonal", "pivot"] = "orthogonal",
    weights: ArrayLike | None = None,
    condition: Literal["positive", "all"] | None = None,
    label_value: float | int | None = None,
) -> OrthogonalProjection | PivotElimination:
    r"""Fits linear FERM as a data transformation (Donini et al. 2018, Section 5).

    After :func:`transform`, *every* linear model :math:`x \mapsto \langle w', \tilde x\rangle +
    b` is, in the original coordinates, a model with weights orthogonal to every fairness
    direction, so it has equal mean output on the positives of each group on the training data,
    whatever learner produced :math:`w'` (scikit-learn's included).

    * ``method="orthogonal"`` (default): :math:`\tilde x = (I - B^\top B)x`, with :math:`B` an
      orthonormal basis of :math:`\mathrm{span}\{u_k\}`. Keeps the dimension, is well conditioned
      and works for any number of groups; the effective weights are :math:`(I - B^\top B) w'`.
    * ``method="pivot"``: the paper's elimination, for two groups: pivot
      :math:`i = \arg\max_j |u_j|` and :math:`\tilde x_j = x_j - x_i u_j / u_i` for :math:`j \ne
      i` (one feature fewer). The official code pivots on ``argmax u``; ``argmax |u|`` is the
      robust choice (largest divisor).

    Args:
      X: training features ``(n, d)``.
      y: labels ``(n,)``.
      groups: group ids ``(n,)`` or membership ``(n, G)``.
      num_groups: static number of groups.
      criterion: as in :func:`fairness_direction` (default ``"equal_opportunity"``).
      method: ``"orthogonal"`` or ``"pivot"``.
      weights: optional sample weights ``(n,)``.
      condition: deprecated, use ``criterion=`` (see :func:`fairness_direction`).
      label_value: deprecated, use ``criterion=`` (see :func:`fairness_direction`).

    Returns:
      An :class:`OrthogonalProjection` or :class:`PivotElimination` (immutable PyTrees).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import ferm
      >>> X = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
      >>> y, s = jnp.array([1, 1, 1, 0]), jnp.array([0, 0, 1, 1])
      >>> state = ferm.fit_projection(X, y, s, num_groups=2)
      >>> Z = ferm.transform(state, X)
      >>> print(jnp.round(ferm.fairness_direction(Z, y, s, num_groups=2), 6))
      [[0. 0.]]

    .. versionchanged:: 0.1.0
       ``criterion=`` replaces ``condition=`` and ``label_value=``.

    References:
      Donini et al., NeurIPS 2018, Section 5 (linear FERM as a change of features).
    """
    crit = criteria.resolve(
        criterion,
        where="ferm.fit_projection",
        default="equal_opportunity",
        allowed=_CRITERIA,
        **_legacy_criterion(condition, label_value),
    )
    criteria.check_option(method, "method", ("orthogonal", "pivot"))
    U = fairness_direction(X, y, groups, num_groups=num_groups, criterion=crit, weights=weights)
    if method == "orthogonal":
        return OrthogonalProjection(U, _orthonormal_basis(U))
    if U.shape[0] != 1:
        raise ValueError(
            'method="pivot" eliminates one coordinate, for one direction (two groups and a '
            f"criterion with one condition), got {U.shape[0]} directions; use "
            'method="orthogonal".'
        )
    u = U[0]
    if v.is_concrete(u) and not bool(jnp.any(u != 0)):
        raise ValueError("the fairness direction is 0: there is nothing to eliminate.")
    return PivotElimination(u, jnp.argmax(jnp.abs(u)).astype(jnp.int32))


def transform(state: OrthogonalProjection | PivotElimination, X: ArrayLike) -> Array:
    """Applies a fitted linear-FERM map to ``X``.

    Args:
      state: from :func:`fit_projection`.
      X: features ``(n, d)``.

    Returns:
      ``(n, d)`` for the orthogonal projection, ``(n, d - 1)`` for pivot elimination.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import ferm
      >>> state = ferm.PivotElimination(jnp.array([2.0, 1.0]), jnp.array(0))
      >>> ferm.transform(state, jnp.array([[4.0, 3.0]]))  # x_1 - x_0 * u_1 / u_0
      Array([[1.]], dtype=float32)
    """
    X = v.as_array(X, "X", ndim=2)
    v.check_finite(X, "X")
    if isinstance(state, OrthogonalProjection):
        B = state.basis
        if X.shape[1] != B.shape[1]:
            raise ValueError(f"`X` must have {B.shape[1]} features, got {X.shape[1]}.")
        dtype = v.float_dtype(X, B)
        X, B = X.astype(dtype), B.astype(dtype)
        return X - (X @ B.T) @ B
    if isinstance(state, PivotElimination):
        u, i = state.direction, state.pivot
        d = u.shape[0]
        if X.shape[1] != d:
            raise ValueError(f"`X` must have {d} features, got {X.shape[1]}.")
        dtype = v.float_dtype(X, u)
        X, u = X.astype(dtype), u.astype(dtype)
        Z = X - X[:, i][:, None] * (u / u[i])[None, :]
        keep = jnp.arange(d - 1)
        keep = jnp.where(keep < i, keep, keep + 1)  # every column but the pivot (static size)
        return Z[:, keep]
    raise TypeError(f"`state` must come from fit_projection, got {type(state).__name__}.")


def effective_weights(state: OrthogonalProjection | PivotElimination, w: ArrayLike) -> Array:
    r"""The weights in the original coordinates of a linear model fitted on transformed data.

    :math:`\langle w', \tilde x\rangle = \langle w, x\rangle` with :math:`w` returned here; it
    satisfies :math:`U w = 0`.

    Args:
      state: from :func:`fit_projection`.
      w: weights learned on :func:`transform`'s output, shape ``(d,)`` or ``(d - 1,)`` (pivot).

    Returns:
      Array of shape ``(d,)``.
    """
    w = v.as_array(w, "w", ndim=1)
    if isinstance(state, OrthogonalProjection):
        B = state.basis.astype(v.float_dtype(w, state.basis))
        return w - B.T @ (B @ w)
    if isinstance(state, PivotElimination):
        u, i = state.direction, state.pivot
        d = u.shape[0]
        keep = jnp.arange(d - 1)
        keep = jnp.where(keep < i, keep, keep + 1)
        full = jnp.zeros((d,), v.float_dtype(w, u)).at[keep].set(w)
        return full.at[i].set(-(full @ u) / u[i])
    raise TypeError(f"`state` must come from fit_projection, got {type(state).__name__}.")
