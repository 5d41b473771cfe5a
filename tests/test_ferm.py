"""Tests of fairjax.ferm against closed forms, numpy, scipy QPs and sklearn."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import minimize

from fairjax import ferm, kernels


def _data(n=400, d=5, G=2, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, G, n).astype(np.int32)
    X = rng.normal(size=(n, d)) + 0.7 * s[:, None] * np.linspace(1, -1, d)[None, :]
    y = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int32)
    return X.astype(np.float32), y, s


def _np_direction(X, y, s, G):
    means = np.stack([X[(s == g) & (y == 1)].mean(0) for g in range(G)])
    return means[1:] - means[0]


# ------------------------------------------------------------------ fairness_direction


@pytest.mark.parametrize("G", [2, 4])
def test_direction_matches_numpy(G):
    X, y, s = _data(G=G)
    u = ferm.fairness_direction(X, y, s, num_groups=G)
    np.testing.assert_allclose(u, _np_direction(X, y, s, G), rtol=1e-5, atol=1e-5)


def test_direction_condition_all_and_pm1_labels():
    X, y, s = _data()
    u_all = ferm.fairness_direction(X, y, s, num_groups=2, condition="all")
    np.testing.assert_allclose(u_all[0], X[s == 1].mean(0) - X[s == 0].mean(0), atol=1e-5)
    u01 = ferm.fairness_direction(X, y, s, num_groups=2)
    upm = ferm.fairness_direction(X, 2 * y - 1, s, num_groups=2)
    np.testing.assert_allclose(u01, upm)


def test_direction_pooled_spans_same_subspace():
    X, y, s = _data(G=3)
    a = np.asarray(ferm.fairness_direction(X, y, s, num_groups=3))
    b = np.asarray(ferm.fairness_direction(X, y, s, num_groups=3, reference="pooled"))
    pa = a.T @ np.linalg.pinv(a.T)
    pb = b.T @ np.linalg.pinv(b.T)
    np.testing.assert_allclose(pa, pb, atol=1e-4)


def test_direction_jit_weights_mask_equals_subset():
    X, y, s = _data()
    w = np.ones(len(y), np.float32)
    w[::3] = 0.0
    f = jax.jit(lambda X, y, s, w: ferm.fairness_direction(X, y, s, num_groups=2, weights=w))
    keep = w > 0
    np.testing.assert_allclose(
        f(X, y, s, w), ferm.fairness_direction(X[keep], y[keep], s[keep], num_groups=2), atol=1e-5
    )


def test_direction_empty_group_is_zero_row_and_reference_skips_it():
    X, y, s = _data(G=2)
    s3 = s + 1  # group 0 is empty; groups 1, 2 hold the data
    u = ferm.fairness_direction(X, y, s3, num_groups=3)
    np.testing.assert_allclose(u[0], 0.0)  # the empty group 0
    np.testing.assert_allclose(u[1], _np_direction(X, y, s, 2)[0], atol=1e-5)


def test_direction_bad_inputs():
    X, y, s = _data()
    y_bad = y.copy()
    y_bad[s == 1] = 0
    with pytest.raises(ValueError, match=r"group\(s\) \[1\].*no positive"):
        ferm.fairness_direction(X, y_bad, s, num_groups=2)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="`X` must be finite"):
        ferm.fairness_direction(Xn, y, s, num_groups=2)
    with pytest.raises(ValueError, match="`y` must have one row per sample"):
        ferm.fairness_direction(X, y[:-1], s, num_groups=2)
    with pytest.raises(ValueError, match="`condition`"):
        ferm.fairness_direction(X, y, s, num_groups=2, condition="negative")


# ------------------------------------------------------------------ projection


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


@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("K", [1, 3])
def test_project_matches_qp(eps, K):
    rng = np.random.default_rng(K)
    with jax.enable_x64(True):
        U = rng.normal(size=(K, 6))
        U[-1] = U[0] + 0.5 * U[-1]  # correlated directions
        for trial in range(5):
            v = 2 * rng.normal(size=6)
            got = np.asarray(ferm.project(jnp.asarray(v), jnp.asarray(U), eps=eps))
            np.testing.assert_allclose(got, _qp_projection(v, U, eps), atol=1e-6)
            assert np.all(np.abs(U @ got) <= eps + 1e-9), trial


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


@pytest.mark.parametrize("G", [2, 4])
@pytest.mark.parametrize("eps", [0.0, 0.05])
def test_projected_training_satisfies_constraint(G, eps):
    X, y, s = _data(n=300, G=G, seed=G)
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
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(150):
        params, state = step(params, state)
    gaps = np.abs(np.asarray(U @ params["w"]))
    assert np.all(gaps <= eps + 1e-6), gaps
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


# ------------------------------------------------------------------ pre-processing


@pytest.mark.parametrize("method", ["orthogonal", "pivot"])
def test_fit_projection_sklearn_models_are_fair(method):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    X, y, s = _data(n=600)
    state = ferm.fit_projection(X, y, s, num_groups=2, method=method)
    Z = np.asarray(ferm.transform(state, X))
    assert Z.shape[1] == (X.shape[1] if method == "orthogonal" else X.shape[1] - 1)
    u = np.asarray(ferm.fairness_direction(X, y, s, num_groups=2))[0]
    for model in (LogisticRegression(), LinearSVC()):
        model.fit(Z, y)
        w_eff = np.asarray(ferm.effective_weights(state, jnp.asarray(model.coef_[0])))
        np.testing.assert_allclose(X @ w_eff, Z @ model.coef_[0], atol=1e-4)
        assert abs(w_eff @ u) < 1e-4 * (1 + np.linalg.norm(w_eff))
        dec = model.decision_function(Z)
        gap = dec[(s == 1) & (y == 1)].mean() - dec[(s == 0) & (y == 1)].mean()
        assert abs(gap) < 1e-4


def test_pivot_matches_paper_formula_and_jit():
    X, y, s = _data()
    state = ferm.fit_projection(X, y, s, num_groups=2, method="pivot")
    u = _np_direction(X, y, s, 2)[0]
    i = int(np.argmax(np.abs(u)))
    assert int(state.pivot) == i
    expect = np.delete(X - X[:, [i]] * (u / u[i])[None, :], i, axis=1)
    np.testing.assert_allclose(jax.jit(ferm.transform)(state, X), expect, atol=1e-5)
    with pytest.raises(ValueError, match="two groups"):
        X4, y4, s4 = _data(G=4)
        ferm.fit_projection(X4, y4, s4, num_groups=4, method="pivot")


def test_orthogonal_projection_state_is_pytree():
    X, y, s = _data(G=4)
    state = ferm.fit_projection(X, y, s, num_groups=4)
    leaves = jax.tree.leaves(state)
    assert len(leaves) == 2
    Z = jax.jit(ferm.transform)(state, X)
    np.testing.assert_allclose(ferm.fairness_direction(Z, y, s, num_groups=4), 0.0, atol=1e-5)


# ------------------------------------------------------------------ classifiers


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_linear_hinge_matches_sklearn_on_projected_data():
    from sklearn.svm import LinearSVC

    X, y, s = _data(n=500)
    C = 1.0
    model = ferm.fit_linear(X, y, s, num_groups=2, C=C, loss="hinge")
    state = ferm.fit_projection(X, y, s, num_groups=2)
    Z = np.asarray(ferm.transform(state, X))
    # sklearn penalises the intercept; a large intercept_scaling makes that negligible
    svc = LinearSVC(C=C, loss="hinge", intercept_scaling=10, tol=1e-6, max_iter=20000)
    svc.fit(Z, y)
    w_sk = np.asarray(ferm.effective_weights(state, jnp.asarray(svc.coef_[0])))
    ys = 2 * y - 1

    def obj(w, b):
        return C * np.maximum(1 - ys * (X @ w + b), 0).sum() + 0.5 * w @ w

    ours = obj(np.asarray(model.weights), float(model.bias))
    ref = obj(w_sk, svc.intercept_[0])
    assert ours <= ref * (1 + 2e-3)
    u = np.asarray(model.directions)
    assert np.all(np.abs(u @ np.asarray(model.weights)) < 1e-5)


@pytest.mark.parametrize("loss", ["squared_hinge", "logistic"])
def test_fit_linear_smooth_losses_eps(loss):
    X, y, s = _data(n=300)
    for eps in (0.0, 0.1):
        model = ferm.fit_linear(X, y, s, num_groups=2, loss=loss, eps=eps, steps=300)
        gap = abs(float(model.directions[0] @ model.weights))
        assert gap <= eps + 1e-5
    unconstrained = (
        ferm.fit_linear(X, y, s, num_groups=1 + 0 * 2, loss=loss, steps=300) if False else None
    )
    assert unconstrained is None


def test_fit_kernel_constraint_is_beta_dot_tau():
    X, y, s = _data(n=200, d=3)
    k = kernels.gaussian(bandwidth=1.5)
    model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=k, steps=150)
    K = np.asarray(kernels.kernel_matrix(k, X))
    tau = np.asarray(ferm.fairness_direction(K, y, s, num_groups=2))
    beta = np.asarray(model.dual_coef)
    assert abs(tau[0] @ beta) < 1e-4 * (1 + np.abs(beta).sum())
    f = np.asarray(ferm.decision_function(model, X))
    np.testing.assert_allclose(f, K @ beta + float(model.bias), atol=1e-3)
    gap = f[(s == 1) & (y == 1)].mean() - f[(s == 0) & (y == 1)].mean()
    assert abs(gap) < 1e-3


def test_fit_kernel_nystrom_landmarks_and_bad_input():
    X, y, s = _data(n=300, d=3)
    model = ferm.fit_kernel(
        X, y, s, num_groups=2, num_landmarks=50, key=jax.random.key(0), steps=100
    )
    assert model.weights.shape[0] <= 50
    with pytest.raises(ValueError, match="`key` is required"):
        ferm.fit_kernel(X, y, s, num_groups=2, num_landmarks=50)
    with pytest.raises(ValueError, match="`eps` must be"):
        ferm.fit_linear(X, y, s, num_groups=2, eps=-1.0)
    with pytest.raises(ValueError, match="`y` must hold binary labels"):
        ferm.fit_linear(X, y + 5, s, num_groups=2)
    with pytest.raises(ValueError, match="`loss`"):
        ferm.fit_linear(X, y, s, num_groups=2, loss="exp")
