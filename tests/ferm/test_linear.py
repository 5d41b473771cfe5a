"""Tests of fairjax.ferm._linear (fit_linear) against sklearn's LinearSVC on projected data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import ferm, losses
from tests.ferm.common import STEPS, data, hinge_objective


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_linear_hinge_matches_sklearn_on_projected_data():
    from sklearn.svm import LinearSVC

    X, y, s = data()
    model = ferm.fit_linear(X, y, s, num_groups=2, C=1.0, loss="hinge", num_steps=STEPS)
    state = ferm.fit_projection(X, y, s, num_groups=2)
    Z = np.asarray(ferm.transform(state, X))
    # sklearn penalises the intercept; a large intercept_scaling makes that negligible
    svc = LinearSVC(C=1.0, loss="hinge", intercept_scaling=10, tol=1e-6, max_iter=20000)
    svc.fit(Z, y)
    w_sk = np.asarray(ferm.effective_weights(state, jnp.asarray(svc.coef_[0])))
    w = np.asarray(model.weights)
    ours = hinge_objective(X @ w + float(model.bias), y, w @ w)
    ref = hinge_objective(X @ w_sk + svc.intercept_[0], y, w_sk @ w_sk)
    assert ours <= ref * (1 + 2e-3)
    assert np.all(np.abs(np.asarray(model.directions) @ w) < 1e-5)


@pytest.mark.parametrize(("loss", "eps"), [("squared_hinge", 0.02), ("logistic", 0.0)])
def test_fit_linear_smooth_losses_eps(loss, eps):
    X, y, s = data()
    model = ferm.fit_linear(X, y, s, num_groups=2, loss=loss, eps=eps, num_steps=STEPS)
    gap = abs(float(model.directions[0] @ model.weights))
    assert gap <= eps + 1e-5
    if eps:  # the unconstrained gap is larger, so the slab constraint is active
        assert gap >= eps - 1e-3
    acc = np.mean((np.asarray(ferm.decision_function(model, X)) > 0) == y)
    assert acc > 0.8


def test_fit_linear_deprecated_condition():
    X, y, s = data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_linear: `condition='all'`"):
        old = ferm.fit_linear(X, y, s, num_groups=2, condition="all", num_steps=STEPS)
    new = ferm.fit_linear(X, y, s, num_groups=2, criterion="demographic_parity", num_steps=STEPS)
    np.testing.assert_array_equal(old.weights, new.weights)
    np.testing.assert_array_equal(old.directions, new.directions)


@pytest.mark.slow
def test_deprecated_steps_warns_and_agrees():
    X, y, s = data()
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
