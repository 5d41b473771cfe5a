"""Tests of fairjax.training: pareto_sweep and constrained_sweep (vmapped trainings)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import training
from fairjax.training._sweeps import _train_fixed_steps

from .common import (
    _data,
    _hard_dp,
    _hard_dp_out,
    _loss,
    _loss_out,
    _model,
    _p0,
    _penalty,
    _penalty_out,
)


@pytest.mark.slow
def test_vmapped_sweep_equals_separate_trainings():
    train, _ = _data()
    lams = jnp.array([0.0, 0.3, 1.0, 3.0])
    opt = optax.adam(0.05)
    res = training.pareto_sweep(_loss, _penalty, _p0(), train, lams, optimizer=opt, num_steps=200)
    assert res.params["w"].shape == (4, 4)
    # Separate (unbatched) trainings, one compiled program with lambda as an argument; `fit`
    # runs the same full-batch steps (checked for one weight).
    one = jax.jit(functools.partial(_train_fixed_steps, _loss, _penalty, opt, 200, None, None))
    by_fit = training.fit(
        training.penalized(_loss, _penalty, lams[1]), _p0(), train, optimizer=opt, num_epochs=200
    ).state.params
    np.testing.assert_allclose(res.params["w"][1], by_fit["w"], atol=1e-5)
    for k, lam in enumerate(lams):
        single = one(_p0(), train, None, None, lam)[0]
        np.testing.assert_allclose(res.params["w"][k], single["w"], atol=1e-5)
        np.testing.assert_allclose(res.params["b"][k], single["b"], atol=1e-5)
        np.testing.assert_allclose(res.penalty[k], jax.jit(_penalty)(single, train), atol=1e-5)
    # more weight, less penalty
    assert np.all(np.diff(np.asarray(res.penalty)) <= 1e-6)
    with pytest.raises(ValueError, match="`lams`"):
        training.pareto_sweep(_loss, _penalty, _p0(), train, jnp.ones((2, 2)), optimizer=opt)


@pytest.mark.slow
def test_vmapped_sweep_equals_separate_trainings_float64():
    # In float32 a batched matmul X @ W sums in another order than the matvec X @ w of one
    # training, and Adam's normalisation amplifies the rounding over many steps (on Adult after
    # 500 steps: up to 7e-6 with the smooth "squared" gap, 4e-5 where the "max" gap sits on its
    # kink); in float64 the sweep and the separate trainings agree to rounding.
    jax.config.update("jax_enable_x64", True)
    try:
        train, _ = _data()
        train = (train[0].astype(jnp.float64), train[1].astype(jnp.float64), train[2])
        p0 = jax.tree.map(lambda a: a.astype(jnp.float64), _p0())
        lams = jnp.array([0.0, 0.3, 1.0, 3.0], jnp.float64)
        opt = optax.adam(0.05)
        res = training.pareto_sweep(_loss, _penalty, p0, train, lams, optimizer=opt, num_steps=500)
        one = jax.jit(functools.partial(_train_fixed_steps, _loss, _penalty, opt, 500, None, None))
        for k, lam in enumerate(lams):
            single = one(p0, train, None, None, lam)[0]
            np.testing.assert_allclose(res.params["w"][k], single["w"], rtol=0, atol=1e-10)
            np.testing.assert_allclose(res.params["b"][k], single["b"], rtol=0, atol=1e-10)
    finally:
        jax.config.update("jax_enable_x64", False)


@pytest.mark.slow
def test_constrained_sweep_equals_separate_constrained_trainings():
    train, _ = _data()
    targets = jnp.array([0.02, 0.1])
    opts = dict(optimizer=optax.adam(0.05), multiplier_optimizer=optax.sgd(0.5), num_steps=150)
    res = training.constrained_sweep(_loss, _penalty, _p0(), train, targets, **opts)
    for k, t in enumerate(targets):
        single = training.fit_constrained(_loss, _penalty, _p0(), train, target=float(t), **opts)
        np.testing.assert_allclose(res.params["w"][k], single.params["w"], atol=1e-5)
        np.testing.assert_allclose(res.multiplier[k], single.state.multiplier, atol=1e-5)
        np.testing.assert_allclose(res.constraint[k], single.train_constraint, atol=1e-5)
    # The feasible iterate of lowest loss, per target, is the one fit_constrained returns.
    best = training.constrained_sweep(
        _loss, _penalty, _p0(), train, targets, iterate="best", **opts
    )
    for k, t in enumerate(targets):
        single = training.fit_constrained(
            _loss, _penalty, _p0(), train, target=float(t), iterate="best", **opts
        )
        np.testing.assert_allclose(best.params["w"][k], single.params["w"], atol=1e-5)
        np.testing.assert_allclose(best.constraint[k], single.train_constraint, atol=1e-5)
    assert not np.allclose(best.params["w"], res.params["w"])  # not the last iterates
    with pytest.raises(ValueError, match="`targets`"):
        training.constrained_sweep(_loss, _penalty, _p0(), train, 0.1, **opts)


# ----------------------------------------------------------------------------- model=


@pytest.mark.slow
def test_model_in_sweeps_and_constrained_training_matches_params_style():
    train, test = _data()
    opts = dict(optimizer=optax.adam(0.05), num_steps=150)
    lams = jnp.array([0.0, 1.0])
    a = training.pareto_sweep(_loss, _penalty, _p0(), train, lams, **opts)
    b = training.pareto_sweep(_loss_out, _penalty_out, _p0(), train, lams, model=_model, **opts)
    np.testing.assert_allclose(b.params["w"], a.params["w"], atol=1e-5)
    np.testing.assert_allclose(b.penalty, a.penalty, atol=1e-6)
    copts = dict(
        opts, multiplier_optimizer=optax.sgd(0.2), target=0.05, validation_data=test, iterate="best"
    )
    c = training.fit_constrained(
        _loss, _penalty, _p0(), train, dual_constraint_fn=_hard_dp, **copts
    )
    d = training.fit_constrained(
        _loss_out,
        _penalty_out,
        _p0(),
        train,
        dual_constraint_fn=_hard_dp_out,
        model=_model,
        **copts,
    )
    np.testing.assert_allclose(d.params["w"], c.params["w"], atol=1e-5)
    assert d.selected_step == c.selected_step < 150  # the same early feasible iterate
    np.testing.assert_allclose(d.history["loss"], c.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(d.validation_constraint, c.validation_constraint)


def test_mismatched_rows_and_empty_sweeps_get_clear_errors():
    # Before, a raw JAX broadcasting error from inside the compiled loop, or a reshape error.
    X, y = jnp.ones((10, 2)), jnp.ones(9)

    def loss(p, b):
        return jnp.mean((b[0] @ p - b[1]) ** 2)

    def pen(p, b):
        return jnp.sum(p**2)

    p0, opt = jnp.zeros(2), optax.sgd(0.1)
    rows = "must have the samples on its leading axis"
    with pytest.raises(ValueError, match=rows):
        training.pareto_sweep(loss, pen, p0, (X, y), jnp.array([0.0, 1.0]), optimizer=opt,
                              num_steps=2)  # fmt: skip
    with pytest.raises(ValueError, match=rows):
        training.constrained_sweep(loss, pen, p0, (X, y), jnp.array([0.1]), optimizer=opt,
                                   num_steps=2)  # fmt: skip
    with pytest.raises(ValueError, match=rows):
        training.fit_constrained(loss, pen, p0, (X, y), target=0.1, optimizer=opt, num_steps=2)
    data = (X, jnp.ones(10))
    with pytest.raises(ValueError, match=r"`lams` must have shape \(K,\), K >= 1"):
        training.pareto_sweep(loss, pen, p0, data, jnp.zeros(0), optimizer=opt, num_steps=2)
    with pytest.raises(ValueError, match=r"`targets` must have shape \(K,\), K >= 1"):
        training.constrained_sweep(loss, pen, p0, data, [], optimizer=opt, num_steps=2)
