"""Tests of fairjax.ferm._kernel (fit_kernel) against libsvm, L-BFGS and numpy projected kernels."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.optimize import minimize

from fairjax import ferm, kernels
from tests.ferm.common import STEPS, N, data, hinge_objective, np_projected_kernel


@pytest.fixture(scope="module")
def kernel_fit():
    """One exact (SMO) kernel FERM fit shared by the kernel tests."""
    X, y, s = data()
    k = kernels.gaussian(bandwidth=1.5)
    return X, y, s, k, ferm.fit_kernel(X, y, s, num_groups=2, kernel=k, C=1.0)


@pytest.mark.slow
def test_fit_kernel_constraint_is_beta_dot_tau(kernel_fit):
    X, y, s, k, model = kernel_fit
    assert isinstance(model.feature_map, ferm.KernelExpansion)
    K = np.asarray(kernels.kernel_matrix(k, X))
    _, tau = np_projected_kernel(K, y, s)  # tau_i = mean_{P_1} k(x_j, x_i) - mean_{P_0} ...
    np.testing.assert_allclose(model.directions[0], tau, atol=1e-5)
    beta = np.asarray(model.dual_coef)
    assert abs(tau @ beta) < 1e-4 * (1 + np.abs(beta).sum())
    f = np.asarray(ferm.decision_function(model, X))
    np.testing.assert_allclose(f, K @ beta + float(model.bias), atol=1e-3)
    gap = f[(s == 1) & (y == 1)].mean() - f[(s == 0) & (y == 1)].mean()
    assert abs(gap) < 1e-3


@pytest.mark.slow
def test_fit_kernel_smo_matches_libsvm_on_projected_kernel(kernel_fit):
    from sklearn.svm import SVC

    X, y, s, k, model = kernel_fit
    K = np.asarray(kernels.kernel_matrix(k, X), np.float64)
    Kp, _ = np_projected_kernel(K, y, s)
    svc = SVC(kernel="precomputed", C=1.0, tol=1e-6).fit(Kp, y)
    a = np.zeros(len(y))
    a[svc.support_] = svc.dual_coef_[0]  # f = Kp @ a + b, positive for classes_[1] = 1
    ref_f = Kp @ a + svc.intercept_[0]
    beta = np.asarray(model.dual_coef, np.float64)
    f = K @ beta + float(model.bias)
    ours = hinge_objective(f, y, beta @ K @ beta)
    ref = hinge_objective(ref_f, y, a @ Kp @ a)
    assert ours <= ref * (1 + 1e-3), (ours, ref)
    assert np.mean(np.sign(f) == np.sign(ref_f)) > 0.98
    np.testing.assert_allclose(f, ref_f, atol=0.05)


@pytest.mark.slow
def test_fit_kernel_squared_hinge_matches_lbfgs(kernel_fit):
    from scipy.linalg import null_space

    X, y, s, k, _ = kernel_fit
    model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=k, loss="squared_hinge", tol=1e-4)
    K = np.asarray(kernels.kernel_matrix(k, X), np.float64)
    _, tau = np_projected_kernel(K, y, s)
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
    ours = hinge_objective(K @ beta + float(model.bias), y, beta @ K @ beta, power=2)
    assert ours <= ref * (1 + 1e-3), (ours, ref)
    assert abs(tau @ beta) < 1e-4 * (1 + np.abs(beta).sum())


def test_fit_kernel_unconstrained_matches_sklearn_svc():
    from sklearn.svm import SVC

    X, y, _ = data()
    model = ferm.fit_kernel(X, y, np.zeros(N, np.int32), num_groups=1, C=1.0)
    ref = SVC(kernel="rbf", gamma=0.5, C=1.0, tol=1e-6).fit(X, y)  # bandwidth 1 = gamma 0.5
    f = np.asarray(ferm.decision_function(model, X))
    assert np.mean(np.sign(f) == np.sign(ref.decision_function(X))) > 0.98
    np.testing.assert_allclose(f, ref.decision_function(X), atol=0.05)


@pytest.mark.slow
def test_fit_kernel_four_groups_all_constraints_hold():
    X, y, s = data(G=4)
    model = ferm.fit_kernel(X, y, s, num_groups=4)
    beta = np.asarray(model.dual_coef)
    gaps = np.asarray(model.directions) @ beta
    assert gaps.shape == (3,)
    assert np.all(np.abs(gaps) < 1e-4 * (1 + np.abs(beta).sum())), gaps


@pytest.mark.slow
def test_fit_kernel_nystrom_landmarks_and_bad_input():
    X, y, s = data()
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
    # One class: the dual forced alpha = 0 and the model predicted the other class.
    with pytest.raises(ValueError, match="`y` must hold both classes"):
        ferm.fit_kernel(X, np.ones_like(y), s, num_groups=2)


def test_fit_kernel_constraint_holds_in_float64_under_x64():
    # The direction coefficients were computed in float32: tau . beta was 9e-8, not 1e-15.
    X, y, s = data()
    with jax.enable_x64(True):
        X64 = np.asarray(X, np.float64)
        model = ferm.fit_kernel(X64, y, s, num_groups=2)
        K = kernels.kernel_matrix(kernels.gaussian(bandwidth=1.0), X64)
        tau = ferm.fairness_direction(K, y, s, num_groups=2)
        assert model.dual_coef.dtype == np.float64
        assert float(np.max(np.abs(np.asarray(tau @ model.dual_coef)))) < 1e-10


def test_fit_kernel_deprecated_condition():
    X, y, s = data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_kernel: `condition='positive'`"):
        old = ferm.fit_kernel(X, y, s, num_groups=2, condition="positive")
    new = ferm.fit_kernel(X, y, s, num_groups=2, criterion="equal_opportunity")
    np.testing.assert_array_equal(old.dual_coef, new.dual_coef)


@pytest.mark.slow
def test_fit_kernel_equalized_odds_constraints_hold():
    X, y, s = data()
    model = ferm.fit_kernel(X, y, s, num_groups=2, criterion="equalized_odds")
    beta = np.asarray(model.dual_coef)
    gaps = np.asarray(model.directions) @ beta
    assert gaps.shape == (2,)
    assert np.all(np.abs(gaps) < 1e-4 * (1 + np.abs(beta).sum())), gaps
    f = np.asarray(ferm.decision_function(model, X))
    for label in (0, 1):
        gap = f[(s == 1) & (y == label)].mean() - f[(s == 0) & (y == label)].mean()
        assert abs(gap) < 1e-3


def test_fit_kernel_warns_when_smo_stops_at_its_cap():
    # max_iter reached before tol: the weights differed from the optimum by 1.09, silently.
    X, y, s = data()
    with pytest.warns(RuntimeWarning, match="SMO stopped at max_iter=3"):
        capped = ferm.fit_kernel(X, y, s, num_groups=2, max_iter=3)
    assert int(capped.n_iter) == 3
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ferm.fit_kernel(X, y, s, num_groups=2)  # converges: no warning
