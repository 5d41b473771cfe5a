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

import functools
import os
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _persistence as _io
from fairjax import _validation as v
from fairjax import groups as gs
from fairjax import kernels as kn

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

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

_CONDITIONS = ("positive", "all")
_REFERENCES = ("first", "pooled")
_LOSSES = ("hinge", "squared_hinge", "logistic")


# --------------------------------------------------------------------------------------------
# The fairness directions
# --------------------------------------------------------------------------------------------


def _check_option(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")


def _check_eps(eps: ArrayLike) -> None:
    if v.is_concrete(eps):
        e = np.asarray(eps)
        if e.ndim != 0:
            raise ValueError(f"`eps` must be a scalar, got shape {e.shape}.")
        if not np.isfinite(e) or float(e) < 0:
            raise ValueError(f"`eps` must be a finite number >= 0, got {float(e)}.")


def fairness_direction(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    condition: Literal["positive", "all"] = "positive",
    reference: Literal["first", "pooled"] = "first",
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
) -> Array:
    r"""The FERM fairness directions: differences of group means of the features.

    With :math:`m_g` the (weighted) mean of the rows of ``X`` over group :math:`g`, restricted to
    the positive examples (``condition="positive"``, equal opportunity) or to all examples
    (``condition="all"``, demographic parity):

    * ``reference="first"``: :math:`u_k = m_{g_k} - m_r`, with :math:`r` the first non-empty
      group and :math:`g_1 < g_2 < \dots` the other groups. For two groups this is the paper's
      :math:`u = m_1 - m_0`, and :math:`\langle w, u_k\rangle` is exactly the gap in mean output
      between group :math:`g_k` and group :math:`r`, so ``eps`` has that meaning.
    * ``reference="pooled"``: :math:`u_k = m_k - \bar m`, :math:`k = 0..G-2`, with
      :math:`\bar m` the mean over all (positive) rows.

    Both span the same subspace (so ``eps = 0`` gives the same constraint). A group with no rows
    (zero weight) contributes a zero row: the constraint is vacuous for it. A group that has rows
    but no positive example makes the equal-opportunity direction undefined: on concrete inputs
    this raises ``ValueError``; under ``jit`` it is treated like an empty group.

    For kernel FERM, pass the kernel matrix ``K`` (rows: the points the means run over, columns:
    the expansion points) as ``X``: row :math:`k` is then :math:`\tau_k` with
    :math:`\tau_{k,i} = \text{mean}_{j \in P_{g_k}} k(x_j, x_i) -
    \text{mean}_{j \in P_r} k(x_j, x_i)`.

    Args:
      X: features, shape ``(n, d)``.
      y: labels, shape ``(n,)``; rows with ``y == label_value`` are the positives.
      groups: integer group ids ``(n,)`` in ``[0, num_groups)`` or a membership matrix ``(n, G)``.
      num_groups: static number of groups ``G`` (required for integer ids).
      condition: ``"positive"`` (equal opportunity) or ``"all"`` (demographic parity).
      reference: ``"first"`` or ``"pooled"``, see above.
      label_value: the positive label (1 for both {0, 1} and {-1, +1} labels).
      weights: optional non-negative sample weights ``(n,)``.

    Returns:
      Array of shape ``(G - 1, d)`` (``(0, d)`` for a single group).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ferm import fairness_direction
      >>> X = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
      >>> y = jnp.array([1, 1, 1, 0])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> fairness_direction(X, y, s, num_groups=2)  # mean(P_1) - mean(P_0)
      Array([[-2.,  2.]], dtype=float32)

    References:
      Donini et al., NeurIPS 2018, Sections 3-4 (linear loss, the vector u).
    """
    _check_option(condition, "condition", _CONDITIONS)
    _check_option(reference, "reference", _REFERENCES)
    X = v.as_array(X, "X", ndim=2)
    n = X.shape[0]
    v.check_finite(X, "X")
    y = v.as_array(y, "y", ndim=1)
    v.check_length(y, n, "y", "X")
    g = v.check_groups(groups, num_groups=num_groups, n=n)
    G = g.shape[1] if g.ndim == 2 else num_groups
    v.check_weights(weights, n)
    U, counts, rows = _direction_core(
        X, y, g, weights, num_groups=G, condition=condition, reference=reference,
        label_value=label_value,
    )  # fmt: skip
    if condition == "positive" and v.is_concrete(X, y, g, weights):
        counts, rows = np.asarray(counts), np.asarray(rows)
        bad = [k for k in range(G) if rows[k] > 0 and counts[k] == 0]
        if bad:
            raise ValueError(
                f"group(s) {bad} have rows but no positive example (`y == {label_value}`), so "
                "their equal-opportunity direction is undefined; merge or drop them, or use "
                'condition="all".'
            )
    return U


@functools.partial(jax.jit, static_argnames=("num_groups", "condition", "reference", "label_value"))
def _direction_core(X, y, g, weights, *, num_groups, condition, reference, label_value):
    """The directions, the (conditional) group counts and the group row counts (one compile)."""
    G = num_groups
    labels = y if condition == "positive" else None
    counts = gs.group_counts(
        g, num_groups=G, labels=labels, label_value=label_value, weights=weights
    )
    rows = gs.group_counts(g, num_groups=G, weights=weights)
    means = gs.group_means(
        X, g, num_groups=G, labels=labels, label_value=label_value, weights=weights
    )
    present = counts > 0
    if G == 1:
        return jnp.zeros((0, X.shape[1]), means.dtype), counts, rows
    if reference == "first":
        ref = jnp.argmax(present)  # the first non-empty group (0 when all are empty)
        diffs = jnp.where(present[:, None], means - means[ref], 0.0)
        idx = jnp.arange(G - 1)
        idx = jnp.where(idx < ref, idx, idx + 1)  # every group but the reference, in order
        return diffs[idx], counts, rows
    pooled = gs.safe_divide(counts @ means, jnp.sum(counts))
    return jnp.where(present[:, None], means - pooled, 0.0)[: G - 1], counts, rows


# --------------------------------------------------------------------------------------------
# Exact projection onto the constraint set, and the optax transformation
# --------------------------------------------------------------------------------------------


def _as_directions(directions: ArrayLike, name: str = "directions") -> Array:
    U = v.as_array(directions, name, ndim=(1, 2))
    v.check_finite(U, name)
    return U[None, :] if U.ndim == 1 else U


def _project_subspace(w: Array, U: Array) -> Array:
    """Orthogonal projection onto the complement of span(U) (rows), via the pseudo-inverse."""
    return w - jnp.linalg.pinv(U) @ (U @ w)


def _project_slabs(w: Array, U: Array, eps: Array, max_iter: int) -> Array:
    r"""Exact projection onto :math:`\{w : |U w|_\infty \le \varepsilon\}`.

    Dual: :math:`w = v - U^\top\lambda`, :math:`\lambda = \arg\min \tfrac12 \lambda^\top Q \lambda
    - \lambda^\top c + \varepsilon\|\lambda\|_1`, :math:`Q = U U^\top`, :math:`c = U v`.
    Coordinate descent (Hildreth's method) finds the active set; one linear solve on the active
    set then makes the KKT conditions hold to rounding error.
    """
    k = U.shape[0]
    Q = U @ U.T
    c = U @ w
    diag = jnp.diag(Q)
    # The iterations only find the active set, which is locally constant: they run on
    # stop_gradient copies (a while_loop has no reverse-mode derivative), and the derivative of
    # the projection flows through the exact active-set solve below.
    Q0, c0, eps0 = jax.lax.stop_gradient((Q, c, eps))
    diag0 = jnp.diag(Q0)
    scale = jnp.maximum(jnp.max(diag0), jnp.finfo(w.dtype).tiny)

    def soft(x):
        return jnp.sign(x) * jnp.maximum(jnp.abs(x) - eps0, 0.0)

    def sweep(lam):
        def coord(j, lam):
            r = c0[j] - Q0[j] @ lam + Q0[j, j] * lam[j]
            # A zero direction (empty group) has Q_jj = 0 and no constraint: lambda_j = 0.
            new = gs.safe_divide(soft(r), Q0[j, j])
            return lam.at[j].set(new)

        return jax.lax.fori_loop(0, k, coord, lam)

    def cond(state):
        it, _, delta = state
        return (it < max_iter) & (delta > 1e-7)

    def body(state):
        it, lam, _ = state
        new = sweep(lam)
        delta = jnp.max(jnp.abs(new - lam) * jnp.sqrt(diag0)) / jnp.sqrt(scale)
        return it + 1, new, delta

    _, lam, _ = jax.lax.while_loop(cond, body, (0, jnp.zeros((k,), w.dtype), jnp.inf))

    # Polish: on the active set A, (Q lam)_A = c_A - eps sign(lam_A) exactly.
    active = (lam != 0) & (diag > 0)
    sigma = jnp.sign(lam)
    A = jnp.where(active[:, None] & active[None, :], Q, 0.0) + jnp.diag(jnp.where(active, 0.0, 1.0))
    rhs = jnp.where(active, c - eps * sigma, 0.0)
    polished = jnp.linalg.lstsq(A, rhs)[0]
    resid = c - Q @ polished
    ok = jnp.all(jnp.where(active, jnp.sign(polished) == sigma, True)) & jnp.all(
        jnp.where(active | (diag == 0), True, jnp.abs(resid) <= eps * (1 + 1e-5) + 1e-7)
    )
    lam = jnp.where(ok, polished, lam)
    return w - U.T @ lam


def project(
    w: ArrayLike, directions: ArrayLike, *, eps: ArrayLike = 0.0, max_iter: int = 1000
) -> Array:
    r"""Exact Euclidean projection onto the FERM constraint set.

    .. math:: \Pi(v) = \arg\min_w \tfrac12\|w - v\|^2 \quad\text{s.t.}\quad
       |\langle w, u_k \rangle| \le \varepsilon, \; k = 1..K.

    For ``eps = 0`` (a Python number) the set is the orthogonal complement of
    :math:`\mathrm{span}\{u_k\}` and :math:`\Pi(v) = v - U^{+} U v` (pseudo-inverse, so linearly
    dependent or zero directions are fine). For ``eps > 0`` it is an intersection of slabs; one
    direction has the closed form :math:`v - u\, S_\varepsilon(\langle v, u\rangle)/\|u\|^2`
    (soft-thresholding), and several are solved exactly through the dual, a ``K``-dimensional
    :math:`\ell_1`-regularised quadratic program: coordinate descent (Hildreth's method, at most
    ``max_iter`` sweeps) finds the active constraints and a linear solve on them gives the
    projection to rounding error.

    Args:
      w: the point to project, shape ``(d,)``, or a batch ``(..., d)``.
      directions: ``(K, d)`` or ``(d,)`` fairness directions :math:`u_k`.
      eps: tolerance :math:`\varepsilon \ge 0` (may be traced).
      max_iter: maximum coordinate-descent sweeps for ``eps > 0``.

    Returns:
      The projection, same shape and dtype as ``w``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ferm import project
      >>> project(jnp.array([1.0, 1.0]), jnp.array([1.0, 0.0]))
      Array([0., 1.], dtype=float32)
      >>> project(jnp.array([1.0, 1.0]), jnp.array([1.0, 0.0]), eps=0.25)
      Array([0.25, 1.  ], dtype=float32)
    """
    w = v.as_array(w, "w")
    U = _as_directions(directions)
    if w.ndim == 0 or w.shape[-1] != U.shape[1]:
        raise ValueError(
            f"`w` must have a last axis of size d = {U.shape[1]} like `directions`, got shape "
            f"{w.shape}."
        )
    _check_eps(eps)
    return _project_any(w, U, eps, max_iter)


def _project_any(w: Array, U: Array, eps: ArrayLike, max_iter: int) -> Array:
    dtype = v.float_dtype(w)
    batch = w.shape[:-1]
    flat = w.reshape((-1, w.shape[-1])).astype(dtype)
    Ud = U.astype(dtype)
    if U.shape[0] == 0:
        out = flat
    elif isinstance(eps, (int, float)) and eps == 0:
        out = _project_subspace_batch(flat, Ud)
    else:
        out = _project_slabs_batch(flat, Ud, jnp.asarray(eps, dtype), max_iter)
    return out.reshape((*batch, w.shape[-1])).astype(w.dtype)


# Jitted batch versions: one compilation per shape when called eagerly (nested jit is free).
_project_subspace_batch = jax.jit(jax.vmap(_project_subspace, in_axes=(0, None)))
_project_slabs_batch = jax.jit(
    jax.vmap(_project_slabs, in_axes=(0, None, None, None)), static_argnums=3
)


def _constrained_axis_last(param: ArrayLike, U: Array, axis: int) -> Array:
    """The constrained parameter with its constrained axis last, checked against ``d``."""
    p = jnp.moveaxis(jnp.asarray(param), axis, -1)
    if p.shape[-1] != U.shape[1]:
        raise ValueError(
            f"a constrained parameter has size {p.shape[-1]} on axis {axis}, but the "
            f"directions have d = {U.shape[1]}; select the weight leaf with `mask=`."
        )
    return p


def project_orthogonal(
    directions: ArrayLike,
    *,
    eps: ArrayLike = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
    axis: int = 0,
    max_iter: int = 1000,
) -> optax.GradientTransformation:
    r"""An optax transformation that keeps parameters on the FERM constraint set.

    It returns the update :math:`\Pi(p + \Delta) - p`, where :math:`\Delta` is the incoming update
    and :math:`\Pi` the exact projection of :func:`project`, so after
    ``optax.apply_updates`` the parameter satisfies :math:`|\langle w, u_k\rangle| \le
    \varepsilon` (up to float rounding). Put it last in a chain::

        optax.chain(optax.adam(1e-2), project_orthogonal(u, mask={"w": True, "b": False}))

    This is projected gradient descent when the inner optimizer is SGD. Its state is empty.

    Args:
      directions: ``(K, d)`` or ``(d,)`` directions :math:`u_k` (e.g. from
        :func:`fairness_direction`).
      eps: tolerance :math:`\varepsilon \ge 0`.
      mask: which leaves are constrained: a PyTree of bools shaped like the params, or a function
        of the params returning one (as in ``optax.masked``); default: every leaf.
      axis: the feature axis (of size ``d``) of each constrained leaf. A leaf of shape ``(d,)``
        is one weight vector; a ``(d, m)`` dense kernel has ``m`` columns, each constrained.
      max_iter: maximum coordinate-descent sweeps of the projection (``eps > 0``, ``K > 1``).

    Returns:
      An ``optax.GradientTransformation``; ``update`` requires ``params``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from fairjax.ferm import project_orthogonal
      >>> u = jnp.array([1.0, 1.0])
      >>> tx = optax.chain(optax.sgd(0.1), project_orthogonal(u, mask={"w": True, "b": False}))
      >>> params = {"w": jnp.array([1.0, 0.0]), "b": jnp.array(0.0)}
      >>> state = tx.init(params)
      >>> grads = {"w": jnp.array([0.0, -1.0]), "b": jnp.array(1.0)}
      >>> updates, state = tx.update(grads, state, params)
      >>> params = optax.apply_updates(params, updates)
      >>> round(float(params["w"] @ u), 6), round(float(params["b"]), 6)
      (0.0, -0.1)

    References:
      Donini et al., NeurIPS 2018, the constraint of problem (4) with the linear loss.
    """
    U = _as_directions(directions)
    _check_eps(eps)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def leaf(update: Array, param: Array) -> Array:
        p = _constrained_axis_last(param, U, axis)
        new = p + jnp.moveaxis(jnp.asarray(update), axis, -1)
        out = _project_any(new, U, eps, max_iter) - p
        return jnp.moveaxis(out, -1, axis).astype(jnp.asarray(update).dtype)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "project_orthogonal needs the current params: call "
                "`tx.update(updates, state, params)`."
            )
        return jax.tree.map(leaf, updates, params), state

    tx = optax.GradientTransformation(init_fn, update_fn)
    return tx if mask is None else optax.masked(tx, mask)


def _tangent(g: Array, p: Array, U: Array, eps: ArrayLike) -> Array:
    """Removes from the gradient ``g`` its part along the active directions at ``p``."""
    if isinstance(eps, (int, float)) and eps == 0:
        return _project_subspace(g, U)
    e = jnp.asarray(eps, p.dtype)
    c = U @ p
    tol = 1e-4 * e + 10 * jnp.finfo(p.dtype).eps * (1.0 + jnp.abs(c))
    # Active: on the boundary, and the descent step -g would push |<w, u_k>| outwards.
    active = (jnp.abs(c) >= e - tol) & (jnp.sign(c) * (U @ g) <= 0)
    active = active | (e == 0)
    A = jnp.where(active[:, None], U, 0.0)
    return _project_subspace(g, A)


def project_gradient(
    directions: ArrayLike,
    *,
    eps: ArrayLike = 0.0,
    mask: Any | Callable[[Any], Any] | None = None,
    axis: int = 0,
) -> optax.GradientTransformation:
    r"""Removes from a gradient its components along the active fairness directions.

    Use it *before* an adaptive optimizer (Adam, RMSProp, ...) and :func:`project_orthogonal`
    after it. A diagonal preconditioner bends a gradient that is parallel to :math:`u` (the
    situation at the constrained optimum) into a direction that the final projection does not
    cancel, so the iterates drift; with the gradient first restricted to the face of the
    constraint set, the constrained optimum is a fixed point again::

        optax.chain(project_gradient(u), optax.adam(1e-2), project_orthogonal(u))

    For ``eps = 0`` the gradient is projected onto the complement of :math:`\mathrm{span}\{u_k\}`.
    For ``eps > 0`` only constraints on their boundary whose descent step points outwards are
    removed (Rosen's gradient projection on the active face).

    Args:
      directions: ``(K, d)`` or ``(d,)`` directions.
      eps: tolerance, as in :func:`project_orthogonal`.
      mask: which leaves are constrained (PyTree of bools or a function of params).
      axis: the feature axis of each constrained leaf.

    Returns:
      An ``optax.GradientTransformation``; ``update`` requires ``params``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from fairjax.ferm import project_gradient
      >>> tx = project_gradient(jnp.array([1.0, 0.0]))
      >>> w = jnp.array([0.0, 1.0])
      >>> tx.update(jnp.array([2.0, 3.0]), tx.init(w), w)[0]
      Array([0., 3.], dtype=float32)
    """
    U = _as_directions(directions)
    _check_eps(eps)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def leaf(g: Array, param: Array) -> Array:
        p = _constrained_axis_last(param, U, axis)
        gm = jnp.moveaxis(jnp.asarray(g), axis, -1)
        dtype = v.float_dtype(p, gm)
        flat_g = gm.reshape((-1, p.shape[-1])).astype(dtype)
        flat_p = p.reshape((-1, p.shape[-1])).astype(dtype)
        if U.shape[0] == 0:
            return g
        out = jax.vmap(_tangent, in_axes=(0, 0, None, None))(flat_g, flat_p, U.astype(dtype), eps)
        return jnp.moveaxis(out.reshape(gm.shape), -1, axis).astype(jnp.asarray(g).dtype)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "project_gradient needs the current params: call "
                "`tx.update(updates, state, params)`."
            )
        return jax.tree.map(leaf, updates, params), state

    tx = optax.GradientTransformation(init_fn, update_fn)
    return tx if mask is None else optax.masked(tx, mask)


# --------------------------------------------------------------------------------------------
# Linear FERM as pre-processing
# --------------------------------------------------------------------------------------------


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


def _orthonormal_basis(U: Array) -> Array:
    _, s, vt = jnp.linalg.svd(U, full_matrices=False)
    keep = s > jnp.max(s, initial=0.0) * max(U.shape) * jnp.finfo(U.dtype).eps
    return jnp.where(keep[:, None], vt, 0.0)


def fit_projection(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    condition: Literal["positive", "all"] = "positive",
    method: Literal["orthogonal", "pivot"] = "orthogonal",
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
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
      condition: ``"positive"`` (equal opportunity) or ``"all"`` (demographic parity).
      method: ``"orthogonal"`` or ``"pivot"``.
      label_value: the positive label.
      weights: optional sample weights ``(n,)``.

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
    """
    _check_option(method, "method", ("orthogonal", "pivot"))
    U = fairness_direction(
        X,
        y,
        groups,
        num_groups=num_groups,
        condition=condition,
        label_value=label_value,
        weights=weights,
    )
    if method == "orthogonal":
        return OrthogonalProjection(U, _orthonormal_basis(U))
    if U.shape[0] != 1:
        raise ValueError(
            f'method="pivot" eliminates one coordinate for two groups, got {U.shape[0] + 1} '
            'groups; use method="orthogonal".'
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


# --------------------------------------------------------------------------------------------
# FERM classifiers trained with optax under the projection
# --------------------------------------------------------------------------------------------


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


def _loss_fn(loss: str) -> Callable[[Array], Array]:
    if loss == "hinge":
        return lambda m: jnp.maximum(1.0 - m, 0.0)
    if loss == "squared_hinge":
        return lambda m: jnp.square(jnp.maximum(1.0 - m, 0.0))
    return lambda m: jax.nn.softplus(-m)  # log(1 + exp(-m)), stable for large |m|


@functools.partial(jax.jit, static_argnames=("eps", "loss", "steps", "fit_intercept", "max_iter"))
def _train(
    Phi: Array,
    ysign: Array,
    sw: Array,
    U: Array,
    *,
    C: Array,
    eps: float,
    loss: str,
    steps: int,
    learning_rate: Array,
    fit_intercept: bool,
    max_iter: int = 100,
) -> tuple[Array, Array, Array]:
    """Projected Adam on C * sum_i sw_i loss(y_i f_i) + 0.5 ||w||^2 (divided by sum sw)."""
    ell = _loss_fn(loss)
    total = jnp.sum(sw)

    def objective(params):
        f = Phi @ params["w"] + params["b"]
        data = C * jnp.sum(sw * ell(ysign * f))
        return (data + 0.5 * jnp.sum(params["w"] ** 2)) / total

    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=1e-3)
    adam = optax.chain(
        optax.adam(schedule),
        optax.masked(optax.set_to_zero(), {"w": False, "b": not fit_intercept}),
    )
    if eps == 0:
        # The same iteration as the chain below, with the projection onto the complement of
        # span(U) through an orthonormal basis computed once instead of a pseudo-inverse per
        # step (cheaper to run and to compile).
        B = _orthonormal_basis(U)

        def proj(w):
            return w - B.T @ (B @ w)

        def update(g, state, params):
            g = {"w": proj(g["w"]), "b": g["b"]}
            updates, state = adam.update(g, state, params)
            new = optax.apply_updates(params, updates)
            return {"w": proj(new["w"]), "b": new["b"]}, state

        init = adam.init
    else:
        tx = optax.chain(
            project_gradient(U, eps=eps, mask={"w": True, "b": False}),
            adam,
            project_orthogonal(U, eps=eps, mask={"w": True, "b": False}, max_iter=max_iter),
        )

        def update(g, state, params):
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state

        init = tx.init
    params = {"w": jnp.zeros(Phi.shape[1], Phi.dtype), "b": jnp.zeros((), Phi.dtype)}
    state = init(params)
    grad = jax.value_and_grad(objective)

    def step(carry, _):
        params, state = carry
        val, g = grad(params)
        params, state = update(g, state, params)
        return (params, state), val

    (params, _), values = jax.lax.scan(step, (params, state), None, length=steps)
    return params["w"], params["b"], values


def _prepare(X, y, groups, num_groups, weights, eps, C, loss):
    _check_option(loss, "loss", _LOSSES)
    _check_eps(eps)
    if v.is_concrete(C) and not float(C) > 0:
        raise ValueError(f"`C` must be > 0, got {C}.")
    X = v.as_array(X, "X", ndim=2)
    v.check_finite(X, "X")
    y = v.as_array(y, "y", ndim=1)
    v.check_length(y, X.shape[0], "y", "X")
    if v.is_concrete(y):
        values = set(np.unique(np.asarray(y)).tolist())
        if not values <= {0, 1} and not values <= {-1, 1}:
            raise ValueError(
                f"`y` must hold binary labels in {{0, 1}} or {{-1, +1}}, got {sorted(values)[:6]}."
            )
    ysign = jnp.where(y == 1, 1.0, -1.0)
    w = v.check_weights(weights, X.shape[0])
    dtype = v.float_dtype(X, w)
    sw = jnp.ones(X.shape[0], dtype) if w is None else w.astype(dtype)
    return X.astype(dtype), ysign.astype(dtype), sw


def fit_linear(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    C: float = 1.0,
    eps: float = 0.0,
    loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
    condition: Literal["positive", "all"] = "positive",
    weights: ArrayLike | None = None,
    feature_map: Any = None,
    fit_intercept: bool = True,
    steps: int = 1000,
    learning_rate: float = 0.1,
) -> FERMModel:
    r"""Linear FERM, trained with optax under the exact constraint.

    .. math::

        \min_{w, b}\; C \sum_i s_i\, \ell\big(y_i(\langle w, \phi(x_i)\rangle + b)\big)
        + \tfrac12\|w\|^2
        \quad\text{s.t.}\quad |\langle w, u_k\rangle| \le \varepsilon,

    with :math:`\ell` the hinge, squared hinge or logistic loss (``C`` has the SVM meaning),
    :math:`u_k` the :func:`fairness_direction` of :math:`\phi(X)`, solved by full-batch Adam
    with a cosine-decayed step and :func:`project_orthogonal` after every step (``steps``
    steps), so the returned weights satisfy the constraint exactly. The hinge loss is
    non-smooth: the optimum is approached, not reached; the constraint always holds.

    Args:
      X: features ``(n, d)``.
      y: labels ``(n,)`` in {0, 1} or {-1, +1}; 1 is the positive class.
      groups: group ids ``(n,)`` or membership ``(n, G)``.
      num_groups: static number of groups.
      C: inverse regularisation strength (> 0).
      eps: constraint tolerance (>= 0): the largest allowed gap in mean output between the
        reference group and any other, on the positives.
      loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"``.
      condition: ``"positive"`` (equal opportunity) or ``"all"`` (demographic parity).
      weights: optional sample weights ``(n,)``.
      feature_map: optional fitted map :math:`\phi` (from :mod:`fairjax.kernels`); default the
        identity.
      fit_intercept: learn the bias ``b``.
      steps: number of Adam steps.
      learning_rate: initial Adam step size.

    Returns:
      A :class:`FERMModel`; evaluate it with :func:`decision_function`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax import ferm
      >>> X = jax.random.normal(jax.random.key(0), (200, 3))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> y = (X[:, 0] + X[:, 1] > 0).astype(jnp.int32)
      >>> model = ferm.fit_linear(X, y, s, num_groups=2, steps=200)
      >>> u = ferm.fairness_direction(X, y, s, num_groups=2)
      >>> bool(jnp.abs(u @ model.weights)[0] < 1e-5)
      True

    References:
      Donini et al., NeurIPS 2018, problem (4) with the linear-loss constraint.
    """
    X, ysign, sw = _prepare(X, y, groups, num_groups, weights, eps, C, loss)
    Phi = X if feature_map is None else _apply_map(feature_map, X)
    U = fairness_direction(
        Phi, ysign, groups, num_groups=num_groups, condition=condition, weights=weights
    )
    w, b, _ = _train(
        Phi,
        ysign,
        sw,
        U.astype(Phi.dtype),
        C=jnp.asarray(C, Phi.dtype),
        eps=float(eps),
        loss=loss,
        steps=steps,
        learning_rate=jnp.asarray(learning_rate, Phi.dtype),
        fit_intercept=fit_intercept,
    )
    return FERMModel(feature_map, w, b, U, jnp.asarray(steps))


# --------------------------------------------------------------------------------------------
# Exact kernel FERM: the projected kernel and an SMO dual solver
# --------------------------------------------------------------------------------------------


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


def _direction_coefficients(
    n: int, y: Array, groups: Array, *, num_groups: int | None, condition: str, weights
) -> Array:
    r"""The rows :math:`c_k` with ``fairness_direction(X) = C @ X`` for every ``X`` (linear in X).

    Read off as the transpose of the linear map ``X -> fairness_direction(X)`` at ``X = 1``.
    """

    def direction(col):
        return fairness_direction(
            col, y, groups, num_groups=num_groups, condition=condition, weights=weights
        )[:, 0]

    ones = jnp.ones((n, 1), jnp.float32 if weights is None else v.float_dtype(weights))
    out, pullback = jax.vjp(direction, ones)
    return jax.vmap(lambda e: pullback(e)[0][:, 0])(jnp.eye(out.shape[0], dtype=out.dtype))


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _smo(
    K: Array, ysign: Array, upper: Array, ridge: Array, tol: Array, *, max_iter: int
) -> tuple[Array, Array, Array, Array]:
    r"""SMO with second-order working-set selection for the SVM dual.

    .. math:: \min_\alpha \tfrac12 \alpha^\top (Y K Y + \mathrm{diag}(r))\alpha - 1^\top\alpha
       \quad\text{s.t.}\quad y^\top\alpha = 0,\; 0 \le \alpha_i \le c_i,

    (Platt 1998; Fan, Chen and Lin, JMLR 2005, WSS 2), stopped when the maximal KKT violation
    :math:`\max_{I_{up}} -y_t G_t - \min_{I_{low}} -y_t G_t` is at most ``tol`` (libsvm's rule).
    One iteration moves one pair along :math:`(y_i, -y_j)`, which keeps :math:`y^\top\alpha`,
    with the exact clipped line minimum; the gradient :math:`G` is updated with two kernel rows.

    Returns:
      ``(alpha, b, iterations, gap)``.
    """
    dtype = K.dtype
    kdiag = jnp.diag(K) + ridge
    pos = ysign > 0

    def select(alpha, G):
        yG = -ysign * G
        up = jnp.where(pos, alpha < upper, alpha > 0)
        low = jnp.where(pos, alpha > 0, alpha < upper)
        i = jnp.argmax(jnp.where(up, yG, -jnp.inf))
        m = yG[i]
        M = jnp.min(jnp.where(low, yG, jnp.inf))
        return yG, up, low, i, m, M

    def cond(state):
        it, _, _, gap = state
        return (it < max_iter) & (gap > tol)

    def body(state):
        it, alpha, G, _ = state
        yG, _, low, i, m, M = select(alpha, G)
        Ki = K[i]
        b = m - yG  # > 0 for the candidates j: the first-order decrease along (y_i, -y_j)
        a = kdiag[i] + kdiag - 2.0 * Ki
        a = jnp.where(a > 0, a, 1e-12)  # a non-positive curvature (rounding) gets a tiny one
        cand = low & (yG < m)
        j = jnp.argmin(jnp.where(cand, -(b * b) / a, jnp.inf))
        # Largest feasible step t >= 0 along alpha_i += t y_i, alpha_j -= t y_j.
        room_i = jnp.where(pos[i], upper[i] - alpha[i], alpha[i])
        room_j = jnp.where(pos[j], alpha[j], upper[j] - alpha[j])
        t = jnp.clip(b[j] / a[j], 0.0, jnp.minimum(room_i, room_j))
        t = jnp.where(jnp.any(cand), t, 0.0)
        yi, yj = ysign[i], ysign[j]
        alpha = alpha.at[i].add(t * yi).at[j].add(-t * yj)
        G = G + t * ysign * (Ki - K[j])
        G = G.at[i].add(t * yi * ridge[i]).at[j].add(-t * yj * ridge[j])
        return it + 1, alpha, G, m - M

    n = K.shape[0]
    alpha0 = jnp.zeros((n,), dtype)
    G0 = -jnp.ones((n,), dtype)
    it, alpha, G, _ = jax.lax.while_loop(
        cond, body, (jnp.asarray(0), alpha0, G0, jnp.asarray(jnp.inf, dtype))
    )
    yG, _, _, _, m, M = select(alpha, G)
    gap = m - M
    free = (alpha > 0) & (alpha < upper)
    nfree = jnp.sum(free)
    # b from the free support vectors (y_i f(x_i) = 1 there), else the middle of [M, m].
    b = jnp.where(
        nfree > 0, gs.safe_divide(jnp.sum(jnp.where(free, yG, 0.0)), nfree), 0.5 * (m + M)
    )
    b = jnp.where(jnp.isfinite(b), b, 0.0)
    return alpha, b, it, gap


@functools.partial(jax.jit, static_argnames=("num_groups", "condition"))
def _projected_kernel(X, ysign, groups, weights, kernel, *, num_groups, condition):
    r"""The kernel matrix projected off the fairness directions, and what maps back to beta.

    :math:`k'(x, z) = k(x, z) - g(x)^\top M^{+} g(z)`, :math:`g_k = \sum_j c_{kj} k(x_j, \cdot)`,
    :math:`M = c K c^\top`: the kernel of the features projected onto the complement of the
    :math:`g_k` in the RKHS. Returns ``(K', c, tau = c K, M^+)``.
    """
    n = X.shape[0]
    K = kn.kernel_matrix(kernel, X)
    K = 0.5 * (K + K.T)
    coef = _direction_coefficients(
        n, ysign, groups, num_groups=num_groups, condition=condition, weights=weights
    ).astype(K.dtype)
    tau = coef @ K  # (G - 1, n): tau_k = fairness_direction(K), the constraint is tau @ beta = 0
    M = tau @ coef.T
    if M.shape[0] == 1:  # one direction (two groups): 1 / M, or 0 for a zero direction
        pinv = jnp.where(M > 0, 1.0 / jnp.where(M > 0, M, 1.0), 0.0)
    else:
        pinv = jnp.linalg.pinv(M, hermitian=True)
    return K - tau.T @ (pinv @ tau), coef, tau, pinv


def _fit_kernel_exact(X, ysign, sw, groups, weights, kernel, *, C, tol, num_groups, condition,
                      loss, max_iter) -> FERMModel:  # fmt: skip
    """Exact kernel FERM with ``eps = 0``: an SVM on the projected kernel, solved by SMO.

    Three jitted pieces (projection, SMO, back-map) so that the SMO compilation is shared by
    every loss, number of groups and condition of a given ``n``.
    """
    K, coef, tau, pinv = _projected_kernel(
        X, ysign, groups, weights, kernel, num_groups=num_groups, condition=condition
    )
    cw = jnp.asarray(C, K.dtype) * sw.astype(K.dtype)
    if loss == "hinge":
        upper, ridge = cw, jnp.zeros_like(cw)
    else:  # squared hinge: no upper bound, 1 / (2 C_i) on the diagonal; a zero weight fixes 0
        upper = jnp.where(cw > 0, jnp.inf, 0.0)
        ridge = jnp.where(cw > 0, 0.5 / jnp.where(cw > 0, cw, 1.0), 0.0)
    ys = ysign.astype(K.dtype)
    alpha, b, it, _ = _smo(K, ys, upper, ridge, jnp.asarray(tol, K.dtype), max_iter=max_iter)
    beta = _back_to_beta(alpha * ys, coef, tau, pinv)
    return FERMModel(KernelExpansion(kernel, X), beta, b, tau, it)


@jax.jit
def _back_to_beta(a, coef, tau, pinv):
    """The expansion of f on k (not k'): beta = a - c^T M^+ tau a, so that tau @ beta = 0."""
    return a - coef.T @ (pinv @ (tau @ a))


def fit_kernel(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    kernel: kn.Kernel | None = None,
    C: float = 1.0,
    eps: float = 0.0,
    loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
    condition: Literal["positive", "all"] = "positive",
    weights: ArrayLike | None = None,
    num_landmarks: int | None = None,
    key: Array | None = None,
    solver: Literal["auto", "smo", "adam"] = "auto",
    tol: float = 1e-3,
    max_iter: int | None = None,
    steps: int = 1000,
    learning_rate: float = 0.1,
) -> FERMModel:
    r"""Kernel FERM: :math:`f(x) = \sum_i \beta_i k(x_i, x) + b` with :math:`\beta\cdot\tau_k = 0`.

    .. math::

        \min_{f \in \mathcal H, b}\; C \sum_i s_i\, \ell\big(y_i (f(x_i) + b)\big)
        + \tfrac12\|f\|_{\mathcal H}^2
        \quad\text{s.t.}\quad |\langle f, g_k\rangle_{\mathcal H}| \le \varepsilon,

    with :math:`g_k = \sum_j c_{kj} k(x_j, \cdot)` the group-mean difference of the kernel
    sections over the positives (:math:`c_k` the coefficients of :func:`fairness_direction`), so
    that :math:`\langle f, g_k\rangle = \beta\cdot\tau_k`,
    :math:`\tau_{k,i} = \text{mean}_{j\in P_{g_k}} k(x_j, x_i) - \text{mean}_{j \in P_r}
    k(x_j, x_i)`: the paper's constraint.

    **Exact solver** (``solver="smo"``, the default for ``eps = 0`` with the hinge or squared
    hinge loss and no landmarks). With :math:`\varepsilon = 0` the feasible :math:`f` are those
    orthogonal to every :math:`g_k`, and :math:`\langle f, \phi(x)\rangle = \langle f, P\phi(x)
    \rangle` for them, with :math:`P` the orthogonal projection onto the complement of
    :math:`\mathrm{span}\{g_k\}`; since :math:`\|Pf\| \le \|f\|`, kernel FERM *is* the
    unconstrained SVM with the projected kernel

    .. math:: k'(x, z) = k(x, z) - g(x)^\top M^{+} g(z), \qquad M_{kl} = \langle g_k, g_l
       \rangle = (c K c^\top)_{kl},

    a rank-:math:`(G-1)` update of the kernel matrix. Its dual (box constraints
    :math:`0 \le \alpha_i \le C s_i` and :math:`y^\top\alpha = 0`; for the squared hinge no
    upper bound and :math:`1/(2 C s_i)` added to the diagonal) is solved by SMO with
    second-order working-set selection (Fan, Chen and Lin 2005, the algorithm of libsvm) inside
    one ``jax.lax.while_loop``, to a maximal KKT violation ``tol``. The kernel expansion
    :math:`\beta = Y\alpha - c^\top M^{+}\tau\, Y\alpha` then satisfies :math:`\tau\beta = 0`
    to rounding error. Cost: the :math:`n \times n` kernel matrix and :math:`O(n)` per SMO
    iteration; no factorisation. Fine up to ~10^4 points.

    **Feature-space solver** (``solver="adam"``, used for ``eps > 0``, the logistic loss or
    ``num_landmarks``). The kernel is made explicit with the Nystrom map
    :math:`\phi(x) = \Lambda^{-1/2}V^\top k(L, x)` of :func:`fairjax.kernels.nystrom` and
    :func:`fit_linear` runs in feature space (projected Adam, ``steps`` steps): with every
    training point as a landmark :math:`\phi(X)\phi(X)^\top = K`, :math:`\beta = V\Lambda^{-1/2}
    w`, :math:`\|f\|_{\mathcal H} = \|w\|` and :math:`\langle w, u_k\rangle = \beta\cdot
    \tau_k`. With ``num_landmarks=m`` a random subset of ``m`` points is used (Nystrom
    approximation, :math:`O(n m^2)`): use it beyond ~10^4 points.

    Args:
      X: features ``(n, d)``.
      y: labels ``(n,)`` in {0, 1} or {-1, +1}.
      groups: group ids ``(n,)`` or membership ``(n, G)``.
      num_groups: static number of groups.
      kernel: a kernel value (default ``kernels.gaussian(bandwidth=1.0)``).
      C, eps, loss, condition, weights, steps, learning_rate: as in :func:`fit_linear`
        (``steps`` and ``learning_rate`` apply to the Adam solver).
      num_landmarks: ``None`` for the exact kernel, else the number of Nystrom landmarks.
      key: PRNG key to draw landmarks (required with ``num_landmarks``).
      solver: ``"auto"``, ``"smo"`` (exact; ``eps = 0``, hinge or squared hinge, no landmarks)
        or ``"adam"``.
      tol: SMO stopping tolerance on the maximal KKT violation (libsvm's default 1e-3).
      max_iter: maximal SMO iterations (default ``max(10^5, 100 n)``).

    Returns:
      A :class:`FERMModel`: with SMO, ``feature_map`` is the :class:`KernelExpansion` on the
      training points and ``weights`` is :math:`\beta`; with Adam, the Nystrom map. Its
      ``dual_coef`` is :math:`\beta` in both cases.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax import ferm, kernels
      >>> X = jax.random.normal(jax.random.key(0), (100, 2))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> y = (X[:, 0] * X[:, 1] > 0).astype(jnp.int32)
      >>> model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=kernels.gaussian())
      >>> ferm.decision_function(model, X).shape
      (100,)
      >>> bool(abs(model.directions[0] @ model.dual_coef) < 1e-4)  # beta . tau = 0
      True

    References:
      Donini et al., NeurIPS 2018, Section 4 (kernel FERM, the vector tau).
      Fan, Chen, Lin, Working Set Selection Using Second Order Information for Training Support
      Vector Machines, JMLR 6, 2005 (the SMO working-set rule).
    """
    _check_option(solver, "solver", ("auto", "smo", "adam"))
    X, ysign, sw = _prepare(X, y, groups, num_groups, weights, eps, C, loss)
    kernel = kn.gaussian(bandwidth=1.0) if kernel is None else kernel
    exact_ok = num_landmarks is None and loss != "logistic" and float(eps) == 0.0
    if solver == "smo" and not exact_ok:
        raise ValueError(
            'solver="smo" solves the exact problem with eps = 0 and the hinge or squared hinge '
            'loss, without landmarks; use solver="adam".'
        )
    if solver != "adam" and exact_ok:
        if not float(tol) > 0:
            raise ValueError(f"`tol` must be > 0, got {tol}.")
        n = X.shape[0]
        # Validation on concrete inputs (e.g. a group without positives), at the cost of a column.
        fairness_direction(
            jnp.ones((n, 1), X.dtype), ysign, groups, num_groups=num_groups,
            condition=condition, weights=weights,
        )  # fmt: skip
        return _fit_kernel_exact(
            X, ysign, sw, jnp.asarray(groups), weights, kernel, C=C, tol=tol,
            num_groups=num_groups, condition=condition, loss=loss,
            max_iter=int(max_iter) if max_iter is not None else max(100_000, 100 * n),
        )  # fmt: skip
    if num_landmarks is None:
        landmarks = X
    else:
        if key is None:
            raise ValueError("`key` is required to draw `num_landmarks` landmarks.")
        m = min(int(num_landmarks), X.shape[0])
        landmarks = _draw_landmarks(key, X, m)
    v.check_finite(landmarks, "landmarks")
    phi = _nystrom(kernel, landmarks)
    return fit_linear(
        X,
        y,
        groups,
        num_groups=num_groups,
        C=C,
        eps=eps,
        loss=loss,
        condition=condition,
        weights=weights,
        feature_map=phi,
        steps=steps,
        learning_rate=learning_rate,
    )


@jax.jit
def _apply_map(feature_map: Any, X: Array) -> Array:
    """A fitted feature map applied to X, compiled once per map type and shape."""
    return feature_map(X)


@functools.partial(jax.jit, static_argnums=2)
def _draw_landmarks(key: Array, X: Array, m: int) -> Array:
    return X[jax.random.choice(key, X.shape[0], (m,), replace=False)]


@jax.jit
def _nystrom(kernel: Any, landmarks: Array) -> kn.NystromFeatures:
    """The Nystrom map under jit: all ``m`` columns kept, those of dropped eigenvalues zero."""
    return kn.nystrom(kernel, landmarks)


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


# --------------------------------------------------------------------------------------------
# Save / load: .npz + JSON metadata, no pickle (fairjax._persistence)
# --------------------------------------------------------------------------------------------

#: Kind tags of the files written by :func:`save_projection` and :func:`save_model`.
_PROJECTION_KIND = "fairjax.ferm.projection"
_MODEL_KIND = "fairjax.ferm.model"
_PROJECTIONS = {"orthogonal": OrthogonalProjection, "pivot": PivotElimination}
#: Kernels described by name and numeric parameters (exact types: a subclass may compute
#: something else, so it is refused rather than saved as its parent).
_KERNELS = {
    "linear": kn.Linear,
    "gaussian": kn.Gaussian,
    "laplace": kn.Laplace,
    "inverse_multiquadric": kn.InverseMultiquadric,
}
_FEATURE_MAPS = {
    "kernel_expansion": KernelExpansion,
    "nystrom": kn.NystromFeatures,
    "random_fourier": kn.RandomFourierFeatures,
}


def _tag(value: Any, table: dict[str, type]) -> str | None:
    return next((tag for tag, cls in table.items() if type(value) is cls), None)


def _put_kernel(arrays: dict, name: str, kernel: Any) -> dict:
    if type(kernel) is kn.Sum:
        parts = [_put_kernel(arrays, f"{name}/{i}", k) for i, k in enumerate(kernel.kernels)]
        return {"kernel": "sum", "kernels": parts}
    tag = _tag(kernel, _KERNELS)
    if tag is None:
        raise TypeError(
            f"cannot save a kernel of type {type(kernel).__name__}: only the kernels of "
            "fairjax.kernels (linear, gaussian, laplace, inverse_multiquadric and their sums) "
            "are described by name and parameters; any other callable would need pickle."
        )
    fields = {f: _io.put_value(arrays, f"{name}/{f}", getattr(kernel, f)) for f in kernel._fields}
    return {"kernel": tag, "params": fields}


def _get_kernel(arrays: dict, spec: dict) -> Any:
    if spec["kernel"] == "sum":
        return kn.Sum(tuple(_get_kernel(arrays, s) for s in spec["kernels"]))
    cls = _KERNELS[spec["kernel"]]
    params = spec["params"]
    if set(params) != set(cls._fields):
        raise ValueError(f"kernel {spec['kernel']!r} has fields {cls._fields}, got {list(params)}.")
    return cls(**{f: _io.get_value(arrays, s) for f, s in params.items()})


def _put_fields(arrays: dict, name: str, obj: Any) -> dict:
    return {
        f: _put_kernel(arrays, f"{name}/{f}", x) if f == "kernel" else
        _io.put_value(arrays, f"{name}/{f}", x)
        for f, x in zip(obj._fields, obj, strict=True)
    }  # fmt: skip


def _get_fields(arrays: dict, cls: type, fields: dict) -> Any:
    if set(fields) != set(cls._fields):
        raise ValueError(f"{cls.__name__} has fields {cls._fields}, got {list(fields)}.")
    return cls(**{
        f: _get_kernel(arrays, s) if f == "kernel" else _io.get_value(arrays, s)
        for f, s in fields.items()
    })  # fmt: skip


def _put_model(arrays: dict, name: str, model: FERMModel) -> dict:
    """JSON spec of a :class:`FERMModel`, its arrays stored under ``name/...``."""
    if not isinstance(model, FERMModel):
        raise TypeError(f"`model` must be a FERMModel, got {type(model).__name__}.")
    fmap = model.feature_map
    if fmap is None:
        map_spec = None
    else:
        tag = _tag(fmap, _FEATURE_MAPS)
        if tag is None:
            raise TypeError(
                f"cannot save a feature map of type {type(fmap).__name__}: only None (linear), "
                "KernelExpansion, kernels.NystromFeatures and kernels.RandomFourierFeatures are "
                "saved (an arbitrary callable would need pickle)."
            )
        map_spec = {"map": tag, "fields": _put_fields(arrays, f"{name}/feature_map", fmap)}
    spec = {"feature_map": map_spec}
    for f in ("weights", "bias", "directions"):
        spec[f] = _io.put_value(arrays, f"{name}/{f}", getattr(model, f))
    n_iter = model.n_iter
    spec["n_iter"] = None if n_iter is None else _io.put_value(arrays, f"{name}/n_iter", n_iter)
    return spec


def _get_model(arrays: dict, spec: dict) -> FERMModel:
    map_spec = spec["feature_map"]
    fmap = None
    if map_spec is not None:
        fmap = _get_fields(arrays, _FEATURE_MAPS[map_spec["map"]], map_spec["fields"])
    w, b, U = (_io.get_value(arrays, spec[f]) for f in ("weights", "bias", "directions"))
    n_iter = None if spec["n_iter"] is None else _io.get_value(arrays, spec["n_iter"])
    if np.ndim(w) != 1 or np.ndim(b) != 0 or np.ndim(U) != 2 or np.shape(U)[1] != np.shape(w)[0]:
        raise ValueError(
            f"inconsistent shapes: weights {np.shape(w)}, bias {np.shape(b)}, "
            f"directions {np.shape(U)}."
        )
    return FERMModel(fmap, w, b, U, n_iter)


_io.register_codec("ferm_model", FERMModel, _put_model, lambda a, _, spec: _get_model(a, spec))


def save_projection(
    path: str | os.PathLike, state: OrthogonalProjection | PivotElimination
) -> None:
    """Saves a fitted linear-FERM map to ``.npz`` with JSON metadata; no pickle.

    The file holds the state's arrays and a ``metadata`` entry (UTF-8 JSON: the kind of file,
    its format version, the method and a SHA-256 digest of metadata and arrays), so
    :func:`load_projection` restores the state exactly (same dtypes, bit-equal arrays) and
    refuses a modified or truncated file, or one of another kind.

    Args:
      path: destination file (NumPy appends ``.npz`` when missing).
      state: from :func:`fit_projection`.

    Example:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> from fairjax import ferm
      >>> X = jax.random.normal(jax.random.key(0), (50, 3))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> state = ferm.fit_projection(X, jnp.ones(50), s, num_groups=2)
      >>> path = os.path.join(tempfile.mkdtemp(), "projection.npz")
      >>> ferm.save_projection(path, state)
      >>> bool(jnp.all(ferm.transform(ferm.load_projection(path), X) == ferm.transform(state, X)))
      True
    """
    method = _tag(state, _PROJECTIONS)
    if method is None:
        raise TypeError(
            "`state` must be an OrthogonalProjection or PivotElimination (from fit_projection), "
            f"got {type(state).__name__}."
        )
    arrays: dict[str, np.ndarray] = {}
    fields = _put_fields(arrays, "state", state)
    _io.save_arrays(path, arrays, {"method": method, "fields": fields}, kind=_PROJECTION_KIND)


def load_projection(path: str | os.PathLike) -> OrthogonalProjection | PivotElimination:
    """Loads a map written by :func:`save_projection` (``allow_pickle=False``).

    Args:
      path: the ``.npz`` file.

    Returns:
      The :class:`OrthogonalProjection` or :class:`PivotElimination`, bit-equal to the saved one.

    Raises:
      ValueError: the file is not a readable ``.npz``, is not a FERM projection file (e.g. a
        saved model or post-processor), has a newer format version, or is corrupt or modified
        (its arrays or metadata do not match the recorded digest).
    """
    arrays, meta = _io.load_arrays(path, kind=_PROJECTION_KIND)
    try:
        state = _get_fields(arrays, _PROJECTIONS[meta["method"]], meta["fields"])
        if isinstance(state, OrthogonalProjection):
            ok = state.directions.ndim == 2 and state.basis.shape == state.directions.shape
        else:
            ok = state.direction.ndim == 1 and state.pivot.ndim == 0
            ok = ok and 0 <= int(state.pivot) < state.direction.shape[0]
        if not ok:
            raise ValueError("inconsistent array shapes or pivot")
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
    return state


def save_model(path: str | os.PathLike, model: FERMModel) -> None:
    """Saves a fitted FERM classifier to ``.npz`` with JSON metadata; no pickle.

    Linear models and kernel models are saved: the feature map may be ``None``, a
    :class:`KernelExpansion`, a Nystrom or a random-Fourier map, over the kernels of
    :mod:`fairjax.kernels` (linear, Gaussian, Laplace, inverse multiquadric and their sums),
    which the metadata describes by name with their parameters stored as arrays. A kernel or
    feature map of another type is refused (``TypeError``): it could only be saved as code.

    Args:
      path: destination file (NumPy appends ``.npz`` when missing).
      model: from :func:`fit_linear` or :func:`fit_kernel`.

    Raises:
      TypeError: ``model`` is not a :class:`FERMModel`, or holds a kernel or feature map that
        cannot be described without pickle.

    Example:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> from fairjax import ferm, kernels
      >>> X = jax.random.normal(jax.random.key(0), (60, 2))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> y = (X[:, 0] * X[:, 1] > 0).astype(jnp.int32)
      >>> model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=kernels.gaussian())
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> ferm.save_model(path, model)
      >>> loaded = ferm.load_model(path)
      >>> bool(jnp.all(ferm.decision_function(loaded, X) == ferm.decision_function(model, X)))
      True
    """
    arrays: dict[str, np.ndarray] = {}
    spec = _put_model(arrays, "model", model)
    _io.save_arrays(path, arrays, {"model": spec}, kind=_MODEL_KIND)


def load_model(path: str | os.PathLike) -> FERMModel:
    """Loads a classifier written by :func:`save_model` (``allow_pickle=False``).

    Args:
      path: the ``.npz`` file.

    Returns:
      The :class:`FERMModel`, with bit-equal arrays, so :func:`decision_function` gives the
      same outputs.

    Raises:
      ValueError: the file is not a readable ``.npz``, is not a FERM model file, has a newer
        format version, or is corrupt or modified.
    """
    arrays, meta = _io.load_arrays(path, kind=_MODEL_KIND)
    try:
        return _get_model(arrays, meta["model"])
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
