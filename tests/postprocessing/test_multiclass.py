"""Multiclass parity by post-processing: the rule against the primal LP, rates, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linprog

from fairjax.postprocessing import (
    MulticlassParityState,
    apply_multiclass_parity,
    fit_multiclass_parity,
)


def _data(n, k, num_groups, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    g = rng.choice(
        num_groups, size=n, p=np.linspace(1, 2, num_groups) / np.linspace(1, 2, num_groups).sum()
    )
    logits = rng.normal(size=(n, k)) + shift * np.outer(g, np.linspace(1, -1, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return p, g


def _primal(p, g, w, num_groups, tolerance):
    """The primal LP, written directly: max sum_i w_i <p_i, gamma_i>, rates within tol/2 of q."""
    n, k = p.shape
    W = np.bincount(g, weights=w, minlength=num_groups)
    nv = n * k + k
    cost = np.r_[-(w[:, None] * p).reshape(-1), np.zeros(k)]
    A_eq = sparse.hstack([sparse.kron(sparse.eye(n), np.ones((1, k))), sparse.csr_matrix((n, k))])
    rows, cols, vals = [], [], []
    r = 0
    for a in range(num_groups):
        for c in range(k):
            idx = np.flatnonzero(g == a) * k + c
            for sign in (1, -1):  # sign * (m_ac - q_c) <= tol / 2
                rows += [r] * (len(idx) + 1)
                cols += [*idx, n * k + c]
                vals += [*(sign * w[g == a] / W[a]), -sign]
                r += 1
    A_ub = sparse.csr_matrix((vals, (rows, cols)), shape=(r, nv))
    res = linprog(cost, A_ub=A_ub, b_ub=np.full(r, tolerance / 2), A_eq=A_eq, b_eq=np.ones(n),
                  bounds=[(0, None)] * (n * k) + [(None, None)] * k, method="highs")  # fmt: skip
    assert res.status == 0
    return -res.fun


def _rates(d, g, w, num_groups):
    W = np.bincount(g, weights=w, minlength=num_groups)
    return np.stack([(w[g == a, None] * d[g == a]).sum(0) / W[a] for a in range(num_groups)])


@pytest.mark.parametrize("num_groups, k, tolerance", [(2, 3, 0.0), (3, 4, 0.0), (3, 3, 0.1)])
def test_the_rule_attains_the_primal_optimum_and_its_rates(num_groups, k, tolerance):
    p, g = _data(240, k, num_groups, seed=num_groups + k)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(g))
    state = fit_multiclass_parity(p, g, num_groups=num_groups, tolerance=tolerance, weights=w)
    d = np.asarray(apply_multiclass_parity(state, p, g), np.float64)
    value = float((w[:, None] * p * d).sum())
    best = _primal(p, g, w, num_groups, tolerance)
    # a vertex has at most G K fractional rows: the deterministic rule differs on those only
    slack = num_groups * k * w.max()
    assert abs(value - best) <= slack
    rates = _rates(d, g, w, num_groups)
    np.testing.assert_allclose(rates, np.asarray(state.class_rates), atol=2e-6)
    W = np.bincount(g, weights=w)
    gap = (rates.max(0) - rates.min(0)).max()
    assert gap <= tolerance + num_groups * k * w.max() / W.min()
    unconstrained = np.eye(k)[p.argmax(1)]
    assert (rates.max(0) - rates.min(0)).max() < (
        _rates(unconstrained, g, w, num_groups).max(0)
        - _rates(unconstrained, g, w, num_groups).min(0)
    ).max()


def test_parity_holds_on_held_out_rows_and_tolerance_one_is_the_argmax():
    p, g = _data(6000, 3, 2, seed=3)
    state = fit_multiclass_parity(p[:3000], g[:3000], num_groups=2)
    for sl, bound in ((slice(None, 3000), 0.01), (slice(3000, None), 0.05)):
        d = np.asarray(apply_multiclass_parity(state, p[sl], g[sl]))
        r = _rates(d, g[sl], np.ones(len(d)), 2)
        assert np.abs(r[0] - r[1]).max() <= bound
    free = fit_multiclass_parity(p, g, num_groups=2, tolerance=1.0)
    d = np.asarray(apply_multiclass_parity(free, p, g))
    np.testing.assert_array_equal(d.argmax(1), p.argmax(1))


def test_integer_weights_act_as_repeated_rows():
    # the LP's optimum may not be unique and ties fall either way: compare the rules' values
    p, g = _data(120, 3, 2, seed=5)
    reps = np.random.default_rng(0).integers(1, 4, len(g))
    a = fit_multiclass_parity(p, g, num_groups=2, weights=reps.astype(float))
    pr, gr = np.repeat(p, reps, 0), np.repeat(g, reps)
    b = fit_multiclass_parity(pr, gr, num_groups=2)
    da = np.repeat(np.asarray(apply_multiclass_parity(a, p, g)), reps, 0)
    db = np.asarray(apply_multiclass_parity(b, pr, gr))
    slack = 2 * 3 * reps.max()  # G K tie rows, each repeated at most reps.max() times
    assert abs(float((pr * da).sum()) - float((pr * db).sum())) <= slack
    assert abs(float((pr * da).sum()) - _primal(p, g, reps.astype(float), 2, 0.0)) <= slack


def test_apply_is_jittable_and_nan_rows_stay_nan():
    p, g = _data(200, 3, 2)
    state = fit_multiclass_parity(p, g, num_groups=2)
    eager = apply_multiclass_parity(state, p, g)
    jitted = jax.jit(lambda s, x, a: apply_multiclass_parity(s, x, a))(state, p, jnp.asarray(g))
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))
    q = np.array(p, np.float32)
    q[3, 1] = np.nan
    q[5] = np.inf  # no decision either (it used to pick class 0; reported by a probe)
    d = np.asarray(apply_multiclass_parity(state, q, g))
    assert np.isnan(d[[3, 5]]).all() and not np.isnan(np.delete(d, [3, 5], 0)).any()


def test_num_groups_defaults_to_the_largest_id_plus_one():
    # The documented default crashed: the ids were checked before it was computed (probe).
    p, g = _data(200, 3, 2)
    default, given = fit_multiclass_parity(p, g), fit_multiclass_parity(p, g, num_groups=2)
    for a, b in zip(default, given, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="groups"):
        fit_multiclass_parity(p, -np.ones(200, int))


def test_bad_inputs_name_the_argument():
    p, g = _data(50, 3, 2)
    bad = p.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="probabilities"):
        fit_multiclass_parity(bad, g, num_groups=2)
    with pytest.raises(ValueError, match="probabilities"):
        fit_multiclass_parity(p[:, :1], g, num_groups=2)
    with pytest.raises(ValueError, match="tolerance"):
        fit_multiclass_parity(p, g, num_groups=2, tolerance=1.5)
    with pytest.raises(ValueError, match="groups"):
        fit_multiclass_parity(p, g[:10], num_groups=2)
    with pytest.raises(ValueError, match="weights"):
        fit_multiclass_parity(p, g, num_groups=2, weights=-np.ones(50))
    state = fit_multiclass_parity(p, g, num_groups=2)
    assert isinstance(state, MulticlassParityState)
    with pytest.raises(ValueError, match="columns"):
        apply_multiclass_parity(state, p[:, :2], g)
