"""Tests of fairjax.ferm._projection (project and the optax transforms) against scipy QPs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import minimize

from fairjax import ferm
from tests.ferm.common import D, data


def _qp_projection(v, U, eps):
    cons = [
        {"type": "ineq", "fun": lambda w, u=u: eps - u @ w, "jac": lambda w, u=u: -u} for u in U
    ] + [{"type": "ineq", "fun": lambda w, u=u: eps + u @ w, "jac": lambda w, u=u: u} for u in U]
    res = minimize(
        lambda w: 0.5 * np.sum((w - v) ** 2),
        np.zeros_like(v),
        jac=lambda w: w - v,
        constraints=cons,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


@pytest.mark.parametrize(("K", "eps"), [(1, 0.3), (3, 0.0), (3, 0.3)])  # K = 1, eps = 0: below
def test_project_matches_qp(eps, K):
    rng = np.random.default_rng(K)
    with jax.enable_x64(True):
        U = rng.normal(size=(K, 6))
        U[-1] = U[0] + 0.5 * U[-1]  # correlated directions
        V = 2 * rng.normal(size=(5, 6))  # five points, projected in one batched call
        got = np.asarray(ferm.project(jnp.asarray(V), jnp.asarray(U), eps=eps))
    for trial, (v, p) in enumerate(zip(V, got, strict=True)):
        np.testing.assert_allclose(p, _qp_projection(v, U, eps), atol=1e-6)
        assert np.all(np.abs(U @ p) <= eps + 1e-9), trial


def test_project_closed_form_and_idempotent():
    u = jnp.array([3.0, 4.0])
    vvec = jnp.array([1.0, 2.0])
    # eps = 0: v - u <v,u>/|u|^2
    np.testing.assert_allclose(ferm.project(vvec, u), vvec - u * (11 / 25), atol=1e-6)
    p = ferm.project(vvec, u, eps=0.5)
    np.testing.assert_allclose(p @ u, 0.5, atol=1e-6)
    np.testing.assert_allclose(ferm.project(p, u, eps=0.5), p, atol=1e-6)
    np.testing.assert_allclose(ferm.project(jnp.zeros(2), u, eps=0.5), 0.0)  # inside: unchanged


def test_project_zero_direction_and_traced_eps():
    U = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    w = jnp.array([2.0, 1.0, 1.0])
    np.testing.assert_allclose(ferm.project(w, U), [0.0, 1.0, 1.0], atol=1e-6)
    f = jax.jit(lambda e: ferm.project(w, U, eps=e))
    np.testing.assert_allclose(f(0.5), [0.5, 1.0, 1.0], atol=1e-6)
    assert np.all(np.isfinite(f(0.0)))


def test_project_bad_inputs():
    with pytest.raises(ValueError, match="`eps` must be"):
        ferm.project(jnp.ones(2), jnp.ones(2), eps=-0.1)
    with pytest.raises(ValueError, match="`w` must have a last axis"):
        ferm.project(jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match="`eps` must be"):
        ferm.project_orthogonal(jnp.ones(2), eps=-1.0)


@pytest.mark.parametrize(("G", "eps"), [(2, 0.0), (4, 0.05)])  # subspace; several slabs
def test_projected_training_satisfies_constraint(G, eps):
    X, y, s = data(G=G, seed=G)
    U = ferm.fairness_direction(X, y, s, num_groups=G)
    ys = 2.0 * y - 1.0
    Xj = jnp.asarray(X)

    def loss(p):
        return jnp.mean(jax.nn.softplus(-ys * (Xj @ p["w"] + p["b"])))

    tx = optax.chain(
        ferm.project_gradient(U, eps=eps, mask={"w": True, "b": False}),
        optax.adam(0.05),
        ferm.project_orthogonal(U, eps=eps, mask={"w": True, "b": False}),
    )
    params = {"w": jnp.ones(X.shape[1]), "b": jnp.zeros(())}

    @jax.jit
    def train(params):
        def step(carry, _):
            params, state = carry
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, tx.init(params)), None, length=60)[0][0]

    params = train(params)
    gaps = np.abs(np.asarray(U @ params["w"]))
    assert np.all(gaps <= eps + 1e-6), gaps
    assert float(loss(params)) < float(loss({"w": jnp.zeros(D), "b": jnp.zeros(())}))  # it learnt
    # the constraint is the gap in mean decision value on positives
    f = np.asarray(Xj @ params["w"] + params["b"])
    m0 = f[(s == 0) & (y == 1)].mean()
    for g in range(1, G):
        assert abs(f[(s == g) & (y == 1)].mean() - m0) <= eps + 1e-5


def test_project_orthogonal_dense_kernel_axis_and_needs_params():
    u = jnp.array([1.0, 1.0, 0.0])
    tx = ferm.project_orthogonal(u)
    W = jnp.ones((3, 2))  # (d_in, d_out): each column constrained
    upd, _ = tx.update(jnp.zeros((3, 2)), tx.init(W), W)
    np.testing.assert_allclose(u @ (W + upd), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="needs the current params"):
        tx.update(W, tx.init(W))
    with pytest.raises(ValueError, match="select the weight leaf"):
        tx.update({"w": W, "b": jnp.ones(2)}, tx.init(W), {"w": W, "b": jnp.ones(2)})
    # A scalar bias under the default mask: the same message (was a moveaxis error).
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    for make in (ferm.project_orthogonal, ferm.project_gradient):
        t = make(u)
        with pytest.raises(ValueError, match=r"is a scalar.*select the weight leaf"):
            t.update(params, t.init(params), params)


def test_project_gradient_is_zero_at_an_optimum_held_by_several_slabs():
    # min |w - t|^2 s.t. |U w| <= eps, three directions that are not orthogonal: at the
    # optimum every constraint is active with a non-negative multiplier, yet for two of them
    # the gradient alone points inwards (sign(c) U g > 0), so testing each row alone kept
    # those components and the optimum was not a fixed point of the Adam chain.
    rng = np.random.default_rng(0)
    U = rng.normal(size=(3, 6))
    rng.normal(size=6)
    t = 5 * rng.normal(size=6)
    w = np.asarray(ferm.project(jnp.asarray(t), jnp.asarray(U), eps=0.1), np.float64)
    g = 2 * (w - t)
    multipliers = -np.linalg.solve(U @ U.T, U @ g)
    assert np.all(multipliers >= 0)  # w is the optimum ...
    assert np.any(np.sign(U @ w) * (U @ g) > 0)  # ... that the row-by-row test missed
    tx = ferm.project_gradient(jnp.asarray(U, jnp.float32), eps=0.1)
    out = tx.update(jnp.asarray(g, jnp.float32), tx.init(None), jnp.asarray(w, jnp.float32))[0]
    np.testing.assert_allclose(np.asarray(out), 0.0, atol=1e-4 * np.linalg.norm(g))
    # Away from the boundary nothing is removed.
    inside = tx.update(jnp.asarray(g, jnp.float32), tx.init(None), jnp.zeros(6))[0]
    np.testing.assert_allclose(np.asarray(inside), g, rtol=1e-6)
    # Reverse mode through the update (the active-set search runs without gradients).
    at = jnp.asarray(w, jnp.float32)
    grad = jax.grad(lambda h: jnp.sum(tx.update(h, tx.init(None), at)[0] ** 2))
    assert np.all(np.isfinite(np.asarray(grad(jnp.asarray(g, jnp.float32)))))
