"""Tests of fairjax.ferm._preprocessing (fit_projection, transform) against sklearn models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import ferm
from tests.ferm.common import data, np_direction


@pytest.mark.slow
@pytest.mark.parametrize("method", ["orthogonal", "pivot"])
def test_fit_projection_sklearn_models_are_fair(method):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    X, y, s = data()
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
    X, y, s = data()
    state = ferm.fit_projection(X, y, s, num_groups=2, method="pivot")
    u = np_direction(X, y, s, 2)[0]
    i = int(np.argmax(np.abs(u)))
    assert int(state.pivot) == i
    expect = np.delete(X - X[:, [i]] * (u / u[i])[None, :], i, axis=1)
    np.testing.assert_allclose(jax.jit(ferm.transform)(state, X), expect, atol=1e-5)
    with pytest.raises(ValueError, match="two groups"):
        X4, y4, s4 = data(G=4)
        ferm.fit_projection(X4, y4, s4, num_groups=4, method="pivot")


def test_pivot_refuses_a_direction_of_rounding_noise():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, 200)
    y = (rng.random(200) < 0.5).astype(np.float32)
    X = np.tile(np.array([3.0, 2.0, 1.0], np.float32), (200, 1))  # constant features
    # The means of each group agree but for float32 rounding (about 6e-8): pivoting divided
    # the other columns by that noise.
    assert np.abs(np.asarray(ferm.fairness_direction(X, y, s, num_groups=2))).max() > 0
    with pytest.raises(ValueError, match="direction is 0 up to rounding"):
        ferm.fit_projection(X, y, s, num_groups=2, method="pivot")
    # A small but real difference is kept: column 0 moves 1e-4 with the group.
    X[:, 0] += 1e-4 * s
    state = ferm.fit_projection(X, y, s, num_groups=2, method="pivot")
    assert int(state.pivot) == 0
    # A column in raw units (around 1e5) that is the same in both groups does not hide a real
    # entry of another column (a tolerance over the whole matrix refused this direction).
    X_mixed = np.c_[0.01 * rng.normal(size=200) + 0.1 * s, np.full(200, 1e5)].astype(np.float32)
    assert int(ferm.fit_projection(X_mixed, y, s, num_groups=2, method="pivot").pivot) == 0
    # Nor is an entry of rounding noise a pivot, however large it is next to real ones.
    X_big = np.c_[0.1 * s + rng.normal(size=200), np.full(200, 3e7)].astype(np.float32)
    u = np.asarray(ferm.fairness_direction(X_big, y, s, num_groups=2))[0]
    state = ferm.fit_projection(X_big, y, s, num_groups=2, method="pivot")
    assert int(state.pivot) == 0, u
    X[0, 1] = np.nan
    with pytest.raises(ValueError, match="`X` must be finite"):
        ferm.fit_projection(X, y, s, num_groups=2, method="pivot")


def test_orthogonal_projection_state_is_pytree():
    X, y, s = data(G=4)
    state = ferm.fit_projection(X, y, s, num_groups=4)
    leaves = jax.tree.leaves(state)
    assert len(leaves) == 2
    Z = jax.jit(ferm.transform)(state, X)
    np.testing.assert_allclose(ferm.fairness_direction(Z, y, s, num_groups=4), 0.0, atol=1e-5)


def test_fit_projection_deprecated_keywords():
    X, y, s = data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fit_projection: `condition='all'`"):
        old = ferm.fit_projection(X, y, s, num_groups=2, condition="all")
    new = ferm.fit_projection(X, y, s, num_groups=2, criterion="demographic_parity")
    np.testing.assert_array_equal(old.basis, new.basis)
    with pytest.raises(ValueError, match="two groups"):
        ferm.fit_projection(X, y, s, num_groups=2, criterion="equalized_odds", method="pivot")
