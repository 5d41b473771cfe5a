"""Linear FERM as pre-processing: a map after which every linear model meets the constraint."""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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


def _check_projection(state: object, name: str = "state") -> int:
    """Checks a fitted linear-FERM map (shapes that agree, a valid pivot, finite values where
    concrete) and returns the input width ``d``."""
    if isinstance(state, OrthogonalProjection):
        U, B = np.shape(state.directions), np.shape(state.basis)
        if len(U) != 2 or B != U:
            raise ValueError(
                f"`{name}` has inconsistent shapes: directions {U}, basis {B} (want both (K, d))."
            )
        d = U[1]
    elif isinstance(state, PivotElimination):
        u, i = state.direction, state.pivot
        if (
            np.ndim(u) != 1
            or np.ndim(i) != 0
            or not jnp.issubdtype(jnp.result_type(i), jnp.integer)
        ):
            raise ValueError(
                f"`{name}` has direction of shape {np.shape(u)} (want (d,)) and pivot of shape "
                f"{np.shape(i)} (want an integer scalar)."
            )
        d = np.shape(u)[0]
        if v.is_concrete(u, i) and not (0 <= int(i) < d and float(u[int(i)]) != 0):
            raise ValueError(f"`{name}.pivot` must index a non-zero entry of the direction.")
    else:
        raise TypeError(f"`{name}` must come from fit_projection, got {type(state).__name__}.")
    for field, value in zip(state._fields, state, strict=True):
        v.check_finite(jnp.asarray(value), f"{name}.{field}")
    return d


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
      robust choice (largest divisor). Entries within rounding of 0 (about
      :math:`16\,\epsilon \max_i |X_{ij}|`, as constant features give) are not pivots, and a
      direction of such entries alone is refused.

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
    if not (v.is_concrete(u) and v.is_concrete(X)):
        return PivotElimination(u, jnp.argmax(jnp.abs(u)).astype(jnp.int32))
    # A difference of column means carries rounding of about eps * max|X_j|: an entry no
    # larger is 0 (constant features give 6e-8 in float32), and dividing by it would amplify
    # noise. Per column, so that a column in raw units (1e5) does not hide a real entry.
    scale = np.max(np.abs(np.asarray(X, u.dtype)), axis=0, initial=0.0)
    magnitude = np.abs(np.asarray(u))
    size = np.where(magnitude > 16 * float(jnp.finfo(u.dtype).eps) * scale, magnitude, 0)
    if not size.any():
        raise ValueError(
            "the fairness direction is 0 up to rounding (the groups' means of `X` agree): "
            "there is nothing to eliminate."
        )
    return PivotElimination(u, jnp.asarray(np.argmax(size), jnp.int32))


def transform(state: OrthogonalProjection | PivotElimination, X: ArrayLike) -> Array:
    """Applies a fitted linear-FERM map to ``X``.

    Args:
      state: from :func:`fit_projection`.
      X: features ``(n, d)``.

    Returns:
      ``(n, d)`` for the orthogonal projection, ``(n, d - 1)`` for pivot elimination.

    Raises:
      ValueError: ``X`` is not ``(n, d)`` or holds NaN or infinity, or ``state`` is
        inconsistent (shapes, pivot, non-finite values).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import ferm
      >>> state = ferm.PivotElimination(jnp.array([2.0, 1.0]), jnp.array(0))
      >>> ferm.transform(state, jnp.array([[4.0, 3.0]]))  # x_1 - x_0 * u_1 / u_0
      Array([[1.]], dtype=float32)
    """
    d = _check_projection(state)
    X = v.check_features(X, d)
    v.check_finite(X, "X")
    if isinstance(state, OrthogonalProjection):
        B = state.basis
        dtype = v.float_dtype(X, B)
        X, B = X.astype(dtype), B.astype(dtype)
        return X - (X @ B.T) @ B
    u, i = state.direction, state.pivot
    dtype = v.float_dtype(X, u)
    X, u = X.astype(dtype), u.astype(dtype)
    Z = X - X[:, i][:, None] * (u / u[i])[None, :]
    keep = jnp.arange(d - 1)
    keep = jnp.where(keep < i, keep, keep + 1)  # every column but the pivot (static size)
    return Z[:, keep]


def effective_weights(state: OrthogonalProjection | PivotElimination, w: ArrayLike) -> Array:
    r"""The weights in the original coordinates of a linear model fitted on transformed data.

    :math:`\langle w', \tilde x\rangle = \langle w, x\rangle` with :math:`w` returned here; it
    satisfies :math:`U w = 0`.

    Args:
      state: from :func:`fit_projection`.
      w: weights learned on :func:`transform`'s output, shape ``(d,)`` or ``(d - 1,)`` (pivot).

    Returns:
      Array of shape ``(d,)``, floating (integer ``w`` is promoted).

    Raises:
      ValueError: ``w`` has another width than :func:`transform`'s output or holds NaN or
        infinity, or ``state`` is inconsistent.
    """
    d = _check_projection(state)
    w = v.as_array(w, "w", ndim=1)
    width = d if isinstance(state, OrthogonalProjection) else d - 1
    if w.shape[0] != width:
        raise ValueError(
            f"`w` must have {width} entries (the width of transform's output), got {w.shape[0]}."
        )
    v.check_finite(w, "w")
    if isinstance(state, OrthogonalProjection):
        B = state.basis.astype(v.float_dtype(w, state.basis))
        return w - B.T @ (B @ w)
    u, i = state.direction, state.pivot
    keep = jnp.arange(d - 1)
    keep = jnp.where(keep < i, keep, keep + 1)
    full = jnp.zeros((d,), v.float_dtype(w, u)).at[keep].set(w)
    return full.at[i].set(-(full @ u) / u[i])
