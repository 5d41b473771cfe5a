"""Tests of fairjax.ferm against closed forms, numpy, scipy QPs and sklearn."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import minimize

from fairjax import ferm, kernels, losses

# One data shape (n, d) = (200, 4) for almost every test: each new shape or static option
# recompiles the jitted cores, and compilation, not computation, is what these tests pay for.
N, D = 200, 4


def _data(n=N, d=D, G=2, seed=0):
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
    u_all = ferm.fairness_direction(X, y, s, num_groups=2, criterion="demographic_parity")
    np.testing.assert_allclose(u_all[0], X[s == 1].mean(0) - X[s == 0].mean(0), atol=1e-5)
    u01 = ferm.fairness_direction(X, y, s, num_groups=2)
    upm = ferm.fairness_direction(X, 2 * y - 1, s, num_groups=2)
    np.testing.assert_allclose(u01, upm)


def test_direction_pooled_spans_same_subspace():
    X, y, s = _data(G=4)
    a = np.asarray(ferm.fairness_direction(X, y, s, num_groups=4))
    b = np.asarray(ferm.fairness_direction(X, y, s, num_groups=4, reference="pooled"))
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
    X, y, s = _data(G=G, seed=G)
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


# ------------------------------------------------------------------ pre-processing


@pytest.mark.parametrize("method", ["orthogonal", "pivot"])
def test_fit_projection_sklearn_models_are_fair(method):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    X, y, s = _data()
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


STEPS = 300  # the Adam steps of every fit_linear below (and of test_sklearn_ferm): one compile


def _hinge_objective(f, y, sqnorm, C=1.0, power=1):
    return C * np.sum(np.maximum(1 - (2 * y - 1) * f, 0) ** power) + 0.5 * sqnorm


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_linear_hinge_matches_sklearn_on_projected_data():
    from sklearn.svm import LinearSVC

    X, y, s = _data()
    model = ferm.fit_linear(X, y, s, num_groups=2, C=1.0, loss="hinge", num_steps=STEPS)
    state = ferm.fit_projection(X, y, s, num_groups=2)
    Z = np.asarray(ferm.transform(state, X))
    # sklearn penalises the intercept; a large intercept_scaling makes that negligible
    svc = LinearSVC(C=1.0, loss="hinge", intercept_scaling=10, tol=1e-6, max_iter=20000)
    svc.fit(Z, y)
    w_sk = np.asarray(ferm.effective_weights(state, jnp.asarray(svc.coef_[0])))
    w = np.asarray(model.weights)
    ours = _hinge_objective(X @ w + float(model.bias), y, w @ w)
    ref = _hinge_objective(X @ w_sk + svc.intercept_[0], y, w_sk @ w_sk)
    assert ours <= ref * (1 + 2e-3)
    assert np.all(np.abs(np.asarray(model.directions) @ w) < 1e-5)


@pytest.mark.parametrize(("loss", "eps"), [("squared_hinge", 0.02), ("logistic", 0.0)])
def test_fit_linear_smooth_losses_eps(loss, eps):
    X, y, s = _data()
    model = ferm.fit_linear(X, y, s, num_groups=2, loss=loss, eps=eps, num_steps=STEPS)
    gap = abs(float(model.directions[0] @ model.weights))
    assert gap <= eps + 1e-5
    if eps:  # the unconstrained gap is larger, so the slab constraint is active
        assert gap >= eps - 1e-3
    acc = np.mean((np.asarray(ferm.decision_function(model, X)) > 0) == y)
    assert acc > 0.8


@pytest.fixture(scope="module")
def kernel_fit():
    """One exact (SMO) kernel FERM fit shared by the kernel tests."""
    X, y, s = _data()
    k = kernels.gaussian(bandwidth=1.5)
    return X, y, s, k, ferm.fit_kernel(X, y, s, num_groups=2, kernel=k, C=1.0)


def _np_projected_kernel(K, y, s):
    """K' = K - tau tau^T / (c . tau), tau = K c: the kernel orthogonal to g = sum_j c_j k_j."""
    c = np.zeros(len(y))
    for g, sign in ((1, 1.0), (0, -1.0)):
        P = (s == g) & (y == 1)
        c[P] = sign / P.sum()
    tau = K @ c
    return K - np.outer(tau, tau) / (c @ tau), tau


def test_fit_kernel_constraint_is_beta_dot_tau(kernel_fit):
    X, y, s, k, model = kernel_fit
    assert isinstance(model.feature_map, ferm.KernelExpansion)
    K = np.asarray(kernels.kernel_matrix(k, X))
    _, tau = _np_projected_kernel(K, y, s)  # tau_i = mean_{P_1} k(x_j, x_i) - mean_{P_0} ...
    np.testing.assert_allclose(model.directions[0], tau, atol=1e-5)
    beta = np.asarray(model.dual_coef)
    assert abs(tau @ beta) < 1e-4 * (1 + np.abs(beta).sum())
    f = np.asarray(ferm.decision_function(model, X))
    np.testing.assert_allclose(f, K @ beta + float(model.bias), atol=1e-3)
    gap = f[(s == 1) & (y == 1)].mean() - f[(s == 0) & (y == 1)].mean()
    assert abs(gap) < 1e-3


def test_fit_kernel_smo_matches_libsvm_on_projected_kernel(kernel_fit):
    from sklearn.svm import SVC

    X, y, s, k, model = kernel_fit
    K = np.asarray(kernels.kernel_matrix(k, X), np.float64)
    Kp, _ = _np_projected_kernel(K, y, s)
    svc = SVC(kernel="precomputed", C=1.0, tol=1e-6).fit(Kp, y)
    a = np.zeros(len(y))
    a[svc.support_] = svc.dual_coef_[0]  # f = Kp @ a + b, positive for classes_[1] = 1
    ref_f = Kp @ a + svc.intercept_[0]
    beta = np.asarray(model.dual_coef, np.float64)
    f = K @ beta + float(model.bias)
    ours = _hinge_objective(f, y, beta @ K @ beta)
    ref = _hinge_objective(ref_f, y, a @ Kp @ a)
    assert ours <= ref * (1 + 1e-3), (ours, ref)
    assert np.mean(np.sign(f) == np.sign(ref_f)) > 0.98
    np.testing.assert_allclose(f, ref_f, atol=0.05)


def test_fit_kernel_squared_hinge_matches_lbfgs(kernel_fit):
    from scipy.linalg import null_space

    X, y, s, k, _ = kernel_fit
    model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=k, loss="squared_hinge", tol=1e-4)
    K = np.asarray(kernels.kernel_matrix(k, X), np.float64)
    _, tau = _np_projected_kernel(K, y, s)
    # Reference in explicit features K = L L^T, f = L w + b, ||f||_H = ||w||, tau . beta = u . w
    # with u = L^T c: a well-conditioned smooth problem for L-BFGS, w = Nb z with u . w = 0.
    lam, V = np.linalg.eigh(K)
    L = V * np.sqrt(np.maximum(lam, 0))
    c = np.linalg.lstsq(K, tau, rcond=None)[0]
    Nb = null_space((L.T @ c)[None, :])
    ys = 2.0 * y - 1

    def obj(p):
        w, b = Nb @ p[:-1], p[-1]
        r = np.maximum(1 - ys * (L @ w + b), 0)
        g_f = -2 * ys * r
        return np.sum(r**2) + 0.5 * w @ w, np.append(Nb.T @ (L.T @ g_f + w), g_f.sum())

    ref = minimize(obj, np.zeros(Nb.shape[1] + 1), jac=True, method="L-BFGS-B").fun
    beta = np.asarray(model.dual_coef, np.float64)
    ours = _hinge_objective(K @ beta + float(model.bias), y, beta @ K @ beta, power=2)
    assert ours <= ref * (1 + 1e-3), (ours, ref)
    assert abs(tau @ beta) < 1e-4 * (1 + np.abs(beta).sum())


def test_fit_kernel_unconstrained_matches_sklearn_svc():
    from sklearn.svm import SVC

    X, y, _ = _data()
    model = ferm.fit_kernel(X, y, np.zeros(N, np.int32), num_groups=1, C=1.0)
    ref = SVC(kernel="rbf", gamma=0.5, C=1.0, tol=1e-6).fit(X, y)  # bandwidth 1 = gamma 0.5
    f = np.asarray(ferm.decision_function(model, X))
    assert np.mean(np.sign(f) == np.sign(ref.decision_function(X))) > 0.98
    np.testing.assert_allclose(f, ref.decision_function(X), atol=0.05)


def test_fit_kernel_four_groups_all_constraints_hold():
    X, y, s = _data(G=4)
    model = ferm.fit_kernel(X, y, s, num_groups=4)
    beta = np.asarray(model.dual_coef)
    gaps = np.asarray(model.directions) @ beta
    assert gaps.shape == (3,)
    assert np.all(np.abs(gaps) < 1e-4 * (1 + np.abs(beta).sum())), gaps


def test_fit_kernel_nystrom_landmarks_and_bad_input():
    X, y, s = _data()
    model = ferm.fit_kernel(
        X, y, s, num_groups=2, num_landmarks=50, key=jax.random.key(0), num_steps=STEPS
    )
    assert isinstance(model.feature_map, kernels.NystromFeatures)
    assert model.weights.shape[0] <= 50
    assert abs(float(model.directions[0] @ model.weights)) <= 1e-5
    with pytest.raises(ValueError, match="`key` is required"):
        ferm.fit_kernel(X, y, s, num_groups=2, num_landmarks=50)
    with pytest.raises(ValueError, match='solver="smo"'):
        ferm.fit_kernel(X, y, s, num_groups=2, eps=0.1, solver="smo")
    with pytest.raises(ValueError, match="`solver`"):
        ferm.fit_kernel(X, y, s, num_groups=2, solver="newton")
    with pytest.raises(ValueError, match="`eps` must be"):
        ferm.fit_linear(X, y, s, num_groups=2, eps=-1.0)
    with pytest.raises(ValueError, match="`y` must hold binary labels"):
        ferm.fit_linear(X, y + 5, s, num_groups=2)
    with pytest.raises(ValueError, match="`loss`"):
        ferm.fit_linear(X, y, s, num_groups=2, loss="exp")
    with pytest.raises(ValueError, match="`X` must be finite"):
        ferm.fit_kernel(np.where(X == X[0, 0], np.nan, X), y, s, num_groups=2)


# ------------------------------------------------------------------ criteria and deprecations


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"condition": "positive"}, "equal_opportunity"),
        ({"condition": "all"}, "demographic_parity"),
        ({"label_value": 1}, "equal_opportunity"),
        ({"label_value": 0}, "false_positive_parity"),
        ({"condition": "positive", "label_value": 0}, "false_positive_parity"),
        ({"condition": "all", "label_value": 0}, "demographic_parity"),
    ],
)
def test_direction_deprecated_keywords_warn_and_agree(old, new):
    X, y, s = _data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fairness_direction: .* is deprecated"):
        u_old = ferm.fairness_direction(X, y, s, num_groups=2, **old)
    u_new = ferm.fairness_direction(X, y, s, num_groups=2, criterion=new)
    np.testing.assert_array_equal(u_old, u_new)


def test_direction_criteria_closed_forms():
    X, y, s = _data(G=3)
    for c, rows in (("false_positive_parity", y == 0), ("demographic_parity", y >= 0)):
        u = ferm.fairness_direction(X, 2 * y - 1, s, num_groups=3, criterion=c)  # -1/+1 labels
        means = np.stack([X[(s == g) & rows].mean(0) for g in range(3)])
        np.testing.assert_allclose(u, means[1:] - means[0], atol=1e-5)
    eo = ferm.fairness_direction(X, y, s, num_groups=3, criterion="equalized_odds")
    np.testing.assert_array_equal(
        eo,
        np.concatenate([
            ferm.fairness_direction(X, y, s, num_groups=3, criterion="equal_opportunity"),
            ferm.fairness_direction(X, y, s, num_groups=3, criterion="false_positive_parity"),
        ]),
    )  # fmt: skip
    with pytest.raises(ValueError, match="`criterion` must be one of"):
        ferm.fairness_direction(X, y, s, num_groups=3, criterion="parity")
    with pytest.raises(ValueError, match="give the criterion once"):
        ferm.fairness_direction(
            X, y, s, num_groups=3, criterion="equal_opportunity", condition="all"
        )
    y_bad = y.copy()
    y_bad[s == 1] = 1
    with pytest.raises(ValueError, match=r"group\(s\) \[1\].*no negative"):
        ferm.fairness_direction(X, y_bad, s, num_groups=3, criterion="false_positive_parity")


def test_fit_projection_deprecated_keywords():
    X, y, s = _data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_projection: `condition='all'`"):
        old = ferm.fit_projection(X, y, s, num_groups=2, condition="all")
    new = ferm.fit_projection(X, y, s, num_groups=2, criterion="demographic_parity")
    np.testing.assert_array_equal(old.basis, new.basis)
    with pytest.raises(ValueError, match="two groups"):
        ferm.fit_projection(X, y, s, num_groups=2, criterion="equalized_odds", method="pivot")


def test_fit_linear_and_kernel_deprecated_condition():
    X, y, s = _data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_linear: `condition='all'`"):
        old = ferm.fit_linear(X, y, s, num_groups=2, condition="all", num_steps=STEPS)
    new = ferm.fit_linear(X, y, s, num_groups=2, criterion="demographic_parity", num_steps=STEPS)
    np.testing.assert_array_equal(old.weights, new.weights)
    np.testing.assert_array_equal(old.directions, new.directions)
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_kernel: `condition='positive'`"):
        old = ferm.fit_kernel(X, y, s, num_groups=2, condition="positive")
    new = ferm.fit_kernel(X, y, s, num_groups=2, criterion="equal_opportunity")
    np.testing.assert_array_equal(old.dual_coef, new.dual_coef)


def test_fit_kernel_equalized_odds_constraints_hold():
    X, y, s = _data()
    model = ferm.fit_kernel(X, y, s, num_groups=2, criterion="equalized_odds")
    beta = np.asarray(model.dual_coef)
    gaps = np.asarray(model.directions) @ beta
    assert gaps.shape == (2,)
    assert np.all(np.abs(gaps) < 1e-4 * (1 + np.abs(beta).sum())), gaps
    f = np.asarray(ferm.decision_function(model, X))
    for label in (0, 1):
        gap = f[(s == 1) & (y == label)].mean() - f[(s == 0) & (y == label)].mean()
        assert abs(gap) < 1e-3


def test_deprecated_steps_warns_and_agrees():
    X, y, s = _data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_linear: `steps=` is deprecated"):
        old = ferm.fit_linear(X, y, s, num_groups=2, steps=STEPS)
    new = ferm.fit_linear(X, y, s, num_groups=2, num_steps=STEPS)
    np.testing.assert_array_equal(old.weights, new.weights)
    assert int(old.n_iter) == STEPS
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_kernel: `steps=` is deprecated"):
        old = ferm.fit_kernel(X, y, s, num_groups=2, solver="adam", steps=STEPS)
    new = ferm.fit_kernel(X, y, s, num_groups=2, solver="adam", num_steps=STEPS)
    np.testing.assert_array_equal(old.weights, new.weights)
    with pytest.raises(ValueError, match="give the step budget once"):
        ferm.fit_linear(X, y, s, num_groups=2, steps=STEPS, num_steps=10)


def test_linear_trainer_losses_are_fairjax_losses():
    """The trainer's logistic loss on margins, log(1 + exp(-t z)): the old formula, to rounding."""
    z = jnp.linspace(-30.0, 30.0, 61)
    for t in (1.0, -1.0):
        np.testing.assert_allclose(
            losses.logistic(z, (t + 1) / 2), jax.nn.softplus(-t * z), rtol=1e-6, atol=1e-7
        )
        np.testing.assert_array_equal(losses.hinge(z, t), jnp.maximum(1.0 - t * z, 0.0))
