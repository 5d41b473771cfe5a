"""Tests of fairjax.training (small synthetic data; Adult only in benchmarks)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import datasets, metrics, penalties, training


@functools.lru_cache
def _data():
    d = datasets.make_classification(
        jax.random.key(0), n_samples=600, n_features=4, num_groups=2, bias=1.0
    )
    train = (
        jnp.asarray(d.X_train),
        jnp.asarray(d.y_train, jnp.float32),
        jnp.asarray(d.groups_train),
    )
    test = (jnp.asarray(d.X_test), jnp.asarray(d.y_test, jnp.float32), jnp.asarray(d.groups_test))
    return train, test


def _logits(p, X):
    return X @ p["w"] + p["b"]


def _loss(p, batch):
    X, y, _ = batch
    return optax.sigmoid_binary_cross_entropy(_logits(p, X), y).mean() + 1e-3 * p["w"] @ p["w"]


def _penalty(p, batch):
    X, _, s = batch
    return penalties.sigmoid_rate_difference(_logits(p, X), s, num_groups=2)


def _hard_dp(p, batch):
    X, _, s = batch
    pred = (_logits(p, X) > 0).astype(jnp.float32)
    return metrics.demographic_parity_difference(pred, s, num_groups=2)


def _p0(d=4):
    return {"w": jnp.zeros(d), "b": jnp.zeros(())}


def test_penalized_composition_and_validation():
    train, _ = _data()
    p = {"w": jnp.ones(4) * 0.3, "b": jnp.asarray(0.1)}
    loss, pen = jax.jit(_loss)(p, train), jax.jit(_penalty)(p, train)
    obj = jax.jit(training.penalized(_loss, _penalty, 2.0))
    np.testing.assert_allclose(obj(p, train), loss + 2.0 * pen, rtol=1e-6)
    obj2 = jax.jit(training.penalized(_loss, [_penalty, _penalty], [1.0, 0.5]))
    np.testing.assert_allclose(obj2(p, train), loss + 1.5 * pen, rtol=1e-6)
    with pytest.raises(ValueError, match="one weight per penalty"):
        training.penalized(_loss, [_penalty, _penalty], [1.0])
    with pytest.raises(ValueError, match="`lam` must be >= 0"):
        training.penalized(_loss, _penalty, -1.0)


def test_make_step_matches_manual_optax_and_does_not_retrace():
    train, _ = _data()
    opt = optax.adam(0.1)
    obj = training.penalized(_loss, _penalty, 1.0)
    step = training.make_step(obj, opt)
    state = training.init_state(_p0(), opt)
    params, opt_state = _p0(), opt.init(_p0())
    grad = jax.jit(jax.grad(obj))
    for _ in range(3):
        state, _ = step(state, train)
        grads = grad(params, train)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(state.params["w"], params["w"], rtol=1e-6)
    assert int(state.step) == 3
    assert step._cache_size() == 1
    # the state is a PyTree: it passes through jit / tree_map
    assert len(jax.tree_util.tree_leaves(state)) > 2


def test_fit_full_batch_reduces_objective_and_penalty_lowers_dp():
    train, test = _data()
    opt = optax.adam(0.1)
    plain = training.fit(
        training.penalized(_loss, _penalty, 0.0), _p0(), train, optimizer=opt, num_epochs=150
    )
    fair = training.fit(
        training.penalized(_loss, _penalty, 5.0), _p0(), train, optimizer=opt, num_epochs=150
    )
    assert plain.train_loss[-1] < plain.train_loss[0]
    assert len(plain.train_loss) == 150 and len(plain.val_loss) == 0
    assert float(_hard_dp(fair.state.params, test)) < float(_hard_dp(plain.state.params, test))


def test_fit_minibatch_and_early_stopping():
    train, test = _data()
    obj = training.penalized(_loss, _penalty, 0.5)
    res = training.fit(
        obj,
        _p0(),
        train,
        optimizer=optax.sgd(0.5),
        num_epochs=200,
        batch_size=64,
        key=jax.random.key(1),
        validation_data=test,
        patience=3,
        min_delta=1e-4,
    )
    assert len(res.train_loss) < 200  # stopped early
    assert len(res.val_loss) == len(res.train_loss)
    assert res.best_epoch == int(np.argmin(res.val_loss))
    # the returned parameters are the best epoch's
    np.testing.assert_allclose(obj(res.state.params, test), res.val_loss.min(), rtol=1e-5)
    with pytest.raises(ValueError, match="`key` is required"):
        training.fit(obj, _p0(), train, optimizer=optax.sgd(0.1), batch_size=8)
    with pytest.raises(ValueError, match="`batch_size`"):
        training.fit(
            obj, _p0(), train, optimizer=optax.sgd(0.1), batch_size=0, key=jax.random.key(0)
        )
    with pytest.raises(ValueError, match="leading axis"):
        training.fit(obj, _p0(), (train[0], train[1][:5], train[2]), optimizer=optax.sgd(0.1))


def test_fit_constrained_reaches_target_and_reports_held_out():
    train, test = _data()
    target = 0.05
    unconstrained = float(
        _hard_dp(
            training.fit(
                _loss, _p0(), train, optimizer=optax.adam(0.05), num_epochs=400
            ).state.params,
            train,
        )
    )
    assert unconstrained > 2 * target  # the constraint binds
    res = training.fit_constrained(
        _loss,
        lambda p, b: penalties.sigmoid_rate_difference(
            _logits(p, b[0]), b[2], num_groups=2, temperature=0.5
        ),
        _p0(),
        train,
        target=target,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.2),
        num_steps=600,
        dual_constraint_fn=_hard_dp,
        validation_data=test,
        tolerance=0.05,
    )
    assert res.train_constraint <= target + 0.01
    np.testing.assert_allclose(res.validation_constraint, _hard_dp(res.state.params, test))
    assert res.satisfied == (res.validation_constraint <= target + 0.05)
    assert float(res.state.multiplier) > 0
    assert res.history["multiplier"].shape == (600,)
    assert np.all(res.history["multiplier"] >= 0)


def test_constrained_closed_form():
    # min (p-2)^2 s.t. p <= 1: p* = 1, mu* = 2 (KKT: 2(p-2) + mu = 0)
    res = training.fit_constrained(
        lambda p, b: (p - 2.0) ** 2,
        lambda p, b: p,
        jnp.asarray(0.0),
        None,
        target=1.0,
        optimizer=optax.sgd(0.1),
        multiplier_optimizer=optax.sgd(0.1),
        num_steps=600,
    )
    np.testing.assert_allclose([res.state.params, res.state.multiplier], [1.0, 2.0], atol=1e-3)
    assert res.satisfied or res.train_constraint <= 1.0 + 1e-3


def test_vmapped_sweep_equals_separate_trainings():
    train, _ = _data()
    lams = jnp.array([0.0, 0.3, 1.0, 3.0])
    opt = optax.adam(0.05)
    res = training.pareto_sweep(_loss, _penalty, _p0(), train, lams, optimizer=opt, num_steps=200)
    assert res.params["w"].shape == (4, 4)
    # Separate (unbatched) trainings, one compiled program with lambda as an argument; `fit`
    # runs the same full-batch steps (checked for one weight).
    one = jax.jit(functools.partial(training._train_fixed_steps, _loss, _penalty, opt, 200))
    by_fit = training.fit(
        training.penalized(_loss, _penalty, lams[1]), _p0(), train, optimizer=opt, num_epochs=200
    ).state.params
    np.testing.assert_allclose(res.params["w"][1], by_fit["w"], atol=1e-5)
    for k, lam in enumerate(lams):
        single = one(_p0(), train, lam)[0]
        np.testing.assert_allclose(res.params["w"][k], single["w"], atol=1e-5)
        np.testing.assert_allclose(res.params["b"][k], single["b"], atol=1e-5)
        np.testing.assert_allclose(res.penalty[k], jax.jit(_penalty)(single, train), atol=1e-5)
    # more weight, less penalty
    assert np.all(np.diff(np.asarray(res.penalty)) <= 1e-6)
    with pytest.raises(ValueError, match="`lams`"):
        training.pareto_sweep(_loss, _penalty, _p0(), train, jnp.ones((2, 2)), optimizer=opt)


def test_vmapped_sweep_equals_separate_trainings_float64():
    # In float32 a batched matmul X @ W sums in another order than the matvec X @ w of one
    # training, and Adam's normalisation amplifies the rounding over many steps (2e-4 on Adult
    # after 500 steps); in float64 the sweep and the separate trainings agree to rounding.
    jax.config.update("jax_enable_x64", True)
    try:
        train, _ = _data()
        train = (train[0].astype(jnp.float64), train[1].astype(jnp.float64), train[2])
        p0 = jax.tree.map(lambda a: a.astype(jnp.float64), _p0())
        lams = jnp.array([0.0, 0.3, 1.0, 3.0], jnp.float64)
        opt = optax.adam(0.05)
        res = training.pareto_sweep(_loss, _penalty, p0, train, lams, optimizer=opt, num_steps=500)
        one = jax.jit(functools.partial(training._train_fixed_steps, _loss, _penalty, opt, 500))
        for k, lam in enumerate(lams):
            single = one(p0, train, lam)[0]
            np.testing.assert_allclose(res.params["w"][k], single["w"], rtol=0, atol=1e-10)
            np.testing.assert_allclose(res.params["b"][k], single["b"], rtol=0, atol=1e-10)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_constrained_sweep_equals_separate_constrained_trainings():
    train, _ = _data()
    targets = jnp.array([0.02, 0.1])
    opts = dict(optimizer=optax.adam(0.05), multiplier_optimizer=optax.sgd(0.5), num_steps=150)
    res = training.constrained_sweep(_loss, _penalty, _p0(), train, targets, **opts)
    for k, t in enumerate(targets):
        single = training.fit_constrained(_loss, _penalty, _p0(), train, target=float(t), **opts)
        np.testing.assert_allclose(res.params["w"][k], single.state.params["w"], atol=1e-5)
        np.testing.assert_allclose(res.multiplier[k], single.state.multiplier, atol=1e-5)
        np.testing.assert_allclose(res.constraint[k], single.train_constraint, atol=1e-5)
    with pytest.raises(ValueError, match="`targets`"):
        training.constrained_sweep(_loss, _penalty, _p0(), train, 0.1, **opts)
