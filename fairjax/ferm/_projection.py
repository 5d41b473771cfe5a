"""Exact Euclidean projection onto the FERM constraint set, and its optax transformations."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from fairjax import _validation as v
from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _check_eps(eps: ArrayLike) -> None:
    v.check_scalar(eps, "eps", nonnegative=True)


def _result_dtype(x: Array) -> jnp.dtype:
    """The dtype of a returned parameter: the input's if floating (bfloat16 included), else the
    default float dtype (integer weights are promoted, never truncated)."""
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else v.float_dtype(x)


def _orthonormal_basis(U: Array) -> Array:
    _, s, vt = jnp.linalg.svd(U, full_matrices=False)
    keep = s > jnp.max(s, initial=0.0) * max(U.shape) * jnp.finfo(U.dtype).eps
    return jnp.where(keep[:, None], vt, 0.0)


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
      The projection, same shape as ``w``; the dtype of ``w`` when it is floating (computed in
      at least float32), the default float dtype for integer ``w`` (promoted, not truncated).

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
    v.check_finite(w, "w")
    _check_eps(eps)
    max_iter = v.check_scalar(max_iter, "max_iter", integer=True, positive=True)
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
        out = _project_slabs_batch(flat, Ud, jnp.asarray(eps, dtype), max_iter=max_iter)
    return out.reshape((*batch, w.shape[-1])).astype(_result_dtype(w))


# Jitted batch versions: one compilation per shape when called eagerly (nested jit is free).
_project_subspace_batch = jax.jit(jax.vmap(_project_subspace, in_axes=(0, None)))


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _project_slabs_batch(W: Array, U: Array, eps: Array, *, max_iter: int) -> Array:
    """:func:`_project_slabs` of every row of ``W``."""
    return jax.vmap(_project_slabs, in_axes=(0, None, None, None))(W, U, eps, max_iter)


def _constrained_axis_last(param: ArrayLike, U: Array, axis: int) -> Array:
    """The constrained parameter with its constrained axis last, checked against ``d``."""
    p = jnp.asarray(param)
    if p.ndim == 0:  # a scalar leaf (a bias) under the default mask
        raise ValueError(
            f"a constrained parameter is a scalar, but the directions have d = {U.shape[1]}; "
            "select the weight leaf with `mask=`."
        )
    p = jnp.moveaxis(p, axis, -1)
    if p.shape[-1] != U.shape[1]:
        raise ValueError(
            f"a constrained parameter has size {p.shape[-1]} on axis {axis}, but the "
            f"directions have d = {U.shape[1]}; select the weight leaf with `mask=`."
        )
    return p


def _leafwise(
    leaf: Callable[[Array, Array], Array], *, name: str, mask: Any
) -> optax.GradientTransformation:
    """A stateless transformation applying ``leaf(update, param)`` to every (masked) leaf."""

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                f"{name} needs the current params: call `tx.update(updates, state, params)`."
            )
        return jax.tree.map(leaf, updates, params), state

    tx = optax.GradientTransformation(init_fn, update_fn)
    return tx if mask is None else optax.masked(tx, mask)


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
    max_iter = v.check_scalar(max_iter, "max_iter", integer=True, positive=True)

    def leaf(update: Array, param: Array) -> Array:
        p = _constrained_axis_last(param, U, axis)
        new = p + jnp.moveaxis(jnp.asarray(update), axis, -1)
        out = _project_any(new, U, eps, max_iter) - p
        return jnp.moveaxis(out, -1, axis).astype(_result_dtype(jnp.asarray(update)))

    return _leafwise(leaf, name="project_orthogonal", mask=mask)


def _tangent(g: Array, p: Array, U: Array, eps: ArrayLike) -> Array:
    r"""Removes from the gradient ``g`` its part along the active directions at ``p``.

    The descent step ``-g`` is projected onto the tangent cone of the slabs at ``p``,
    :math:`T = \{d : \sigma_k \langle u_k, d \rangle \le 0` for the constraints on their
    boundary, :math:`\sigma_k = \mathrm{sign}\langle u_k, p \rangle\}`: by Moreau's
    decomposition :math:`-g = P_T(-g) + A^\top \mu`, with :math:`\mu \ge 0` the non-negative
    least-squares fit of :math:`-g` by the outward normals :math:`a_k = \sigma_k u_k`
    (:func:`_cone_residual`). With several directions that are not orthogonal, a constraint
    whose own normal the step leaves may still be held by the others: testing each row alone
    removes the wrong ones, and the constrained optimum is then no longer a fixed point.
    """
    if isinstance(eps, (int, float)) and eps == 0:
        return _project_subspace(g, U)
    e = jnp.asarray(eps, p.dtype)
    c = U @ p
    tol = 1e-4 * e + 10 * jnp.finfo(p.dtype).eps * (1.0 + jnp.abs(c))
    boundary = jnp.abs(c) >= e - tol
    A = jnp.where(boundary[:, None], jnp.where(c < 0, -1.0, 1.0)[:, None] * U, 0.0)
    tangent = -_cone_residual(-g, A)
    # A traced eps of 0: every constraint is an equality, removed whatever its sign.
    return jnp.where(e == 0, _project_subspace(g, U), tangent)


def _cone_residual(v: Array, A: Array) -> Array:
    r"""``v - A^T mu`` for ``mu = argmin_{mu >= 0} |v - A^T mu|`` (Lawson and Hanson's active-set
    NNLS): the projection of ``v`` onto the cone :math:`\{d : A d \le 0\}`. Zero rows of
    ``A`` take no part. Each step adds the constraint that ``v`` leaves the most and solves the
    least squares on the chosen set (a pseudo-inverse through ``eigh``, so dependent rows are
    fine); a multiplier that
    would turn negative is backed off to zero and its constraint dropped. As in
    :func:`project`, the iterations only find the active set, on ``stop_gradient`` copies (a
    ``while_loop`` has no reverse-mode derivative); one solve on that set gives the result and
    its derivative.
    """
    k = A.shape[0]
    Q0, b0 = jax.lax.stop_gradient((A @ A.T, A @ v))
    norms = jnp.sqrt(jnp.diag(Q0))
    tol = 100 * jnp.finfo(v.dtype).eps * norms * jax.lax.stop_gradient(jnp.linalg.norm(v))

    def masked(Q, b, P):
        M = jnp.where(P[:, None] & P[None, :], Q, 0.0) + jnp.diag(jnp.where(P, 0.0, 1.0))
        return M, jnp.where(P, b, 0.0)

    def solve(Q, b, P):  # least squares on the set (eigh of the symmetric M: dependent rows)
        M, rhs = masked(Q, b, P)
        w, V = jnp.linalg.eigh(M)
        cut = k * jnp.finfo(v.dtype).eps * jnp.max(jnp.abs(w))
        inv = jnp.where(jnp.abs(w) > cut, 1 / jnp.where(jnp.abs(w) > cut, w, 1), 0.0)
        return jnp.where(P, V @ (inv * (V.T @ rhs)), 0.0)

    def inner_cond(state):
        it, P, _, z = state
        return (it < k) & jnp.any(P & (z <= 0))

    def inner(state):  # back off along z - mu until a multiplier reaches 0; drop it
        it, P, mu, z = state
        ratio = jnp.where(P & (z <= 0), gs.safe_divide(mu, mu - z), jnp.inf)
        first = jnp.argmin(ratio)  # the multiplier that reaches 0 first leaves the set
        mu = jnp.where(P, mu + ratio[first] * (z - mu), 0.0)
        P = P.at[first].set(False) & (mu > 0)
        return it + 1, P, mu, solve(Q0, b0, P)

    def outer_cond(state):
        it, P, mu = state
        w = b0 - Q0 @ mu
        return (it < 3 * k) & jnp.any(~P & (norms > 0) & (w > tol))

    def outer(state):
        it, P, mu = state
        w = jnp.where(~P & (norms > 0), b0 - Q0 @ mu, -jnp.inf)
        P = P.at[jnp.argmax(w)].set(True)
        _, P, _, z = jax.lax.while_loop(inner_cond, inner, (0, P, mu, solve(Q0, b0, P)))
        return it + 1, P, jnp.where(P, jnp.maximum(z, 0.0), 0.0)

    start = (0, jnp.zeros((k,), bool), jnp.zeros((k,), v.dtype))
    _, P, _ = jax.lax.while_loop(outer_cond, outer, start)
    M, rhs = masked(A @ A.T, A @ v, P)
    mu = jnp.maximum(jnp.where(P, jnp.linalg.lstsq(M, rhs)[0], 0.0), 0.0)
    return v - A.T @ mu


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
    For ``eps > 0`` the descent step is projected onto the tangent cone of the slabs at the
    parameters (the constraints on their boundary, each one-sided): the components removed are
    the non-negative least-squares fit of the step by the outward normals, so a constraint held
    by the others is kept even where the step alone would leave it inwards. Differentiable
    (the active set is found without gradients, then one solve on it).

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

    def leaf(g: Array, param: Array) -> Array:
        p = _constrained_axis_last(param, U, axis)
        gm = jnp.moveaxis(jnp.asarray(g), axis, -1)
        dtype = v.float_dtype(p, gm)
        flat_g = gm.reshape((-1, p.shape[-1])).astype(dtype)
        flat_p = p.reshape((-1, p.shape[-1])).astype(dtype)
        out_dtype = _result_dtype(jnp.asarray(g))
        if U.shape[0] == 0:
            return jnp.asarray(g).astype(out_dtype)
        out = jax.vmap(_tangent, in_axes=(0, 0, None, None))(flat_g, flat_p, U.astype(dtype), eps)
        return jnp.moveaxis(out.reshape(gm.shape), -1, axis).astype(out_dtype)

    return _leafwise(leaf, name="project_gradient", mask=mask)
