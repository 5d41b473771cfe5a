"""One mini-batching convention (num_steps, batch_size, key) and streams of batches, for fit,
fit_constrained, pareto_sweep and constrained_sweep (#24 item 8, #22 item 4)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import training

from .common import _data, _hard_dp, _loss, _minibatches, _p0, _penalty

KEY = jax.random.PRNGKey(7)


def _close(a, b, tol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.mark.slow
def test_fit_num_steps_and_num_epochs_are_one_budget():
    train, _ = _data()
    n = train[0].shape[0]
    opt = optax.adam(0.05)
    kw = dict(optimizer=opt, batch_size=100, key=KEY)
    by_epochs = training.fit(_loss, _p0(), train, num_epochs=3, **kw)
    by_steps = training.fit(_loss, _p0(), train, num_steps=3 * (n // 100), **kw)
    _close(by_epochs.state.params, by_steps.state.params, 0)
    assert int(by_steps.state.step) == 3 * (n // 100)
    partial = training.fit(_loss, _p0(), train, num_steps=2 * (n // 100) + 1, **kw)
    assert int(partial.state.step) == 2 * (n // 100) + 1 and partial.train_loss.shape == (3,)


@pytest.mark.slow
def test_one_batch_of_all_rows_equals_full_batch_in_every_trainer():
    train, _ = _data()
    n = train[0].shape[0]
    opt, mopt = optax.adam(0.05), optax.sgd(0.5)
    kw = dict(target=0.02, optimizer=opt, multiplier_optimizer=mopt, num_steps=60)
    full = training.fit_constrained(_loss, _penalty, _p0(), train, **kw)
    mini = training.fit_constrained(_loss, _penalty, _p0(), train, batch_size=n, key=KEY, **kw)
    _close(full.params, mini.params, 1e-4)
    lams = jnp.array([0.0, 2.0])
    a = training.pareto_sweep(_loss, _penalty, _p0(), train, lams, optimizer=opt, num_steps=40)
    b = training.pareto_sweep(
        _loss, _penalty, _p0(), train, lams, optimizer=opt, num_steps=40, batch_size=n, key=KEY
    )
    _close(a.params, b.params, 1e-4)
    c = training.constrained_sweep(
        _loss,
        _penalty,
        _p0(),
        train,
        jnp.array([0.02, 0.1]),
        optimizer=opt,
        num_steps=40,
        batch_size=n,
        key=KEY,
    )
    d = training.constrained_sweep(
        _loss, _penalty, _p0(), train, jnp.array([0.02, 0.1]), optimizer=opt, num_steps=40
    )
    _close(c.params, d.params, 1e-4)


@pytest.mark.slow
def test_minibatch_sweep_equals_separate_minibatch_sweeps():
    train, _ = _data()
    kw = dict(optimizer=optax.adam(0.05), num_steps=30, batch_size=64, key=KEY)
    both = training.pareto_sweep(_loss, _penalty, _p0(), train, jnp.array([0.0, 3.0]), **kw)
    one = training.pareto_sweep(_loss, _penalty, _p0(), train, jnp.array([3.0]), **kw)
    _close(jax.tree.map(lambda x: x[1], both.params), jax.tree.map(lambda x: x[0], one.params))
    # Mini-batches are not the full batch: the trajectory differs.
    full = training.pareto_sweep(
        _loss, _penalty, _p0(), train, jnp.array([3.0]), optimizer=optax.adam(0.05), num_steps=30
    )
    assert not np.allclose(np.asarray(full.params["w"]), np.asarray(one.params["w"]))


@pytest.mark.slow
def test_minibatch_fit_constrained_meets_the_bound_on_the_full_data():
    train, _ = _data()
    res = training.fit_constrained(
        _loss,
        _penalty,
        _p0(),
        train,
        target=0.03,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.5),
        num_steps=400,
        batch_size=128,
        key=KEY,
        dual_constraint_fn=_penalty,
        tolerance=0.01,
    )
    assert res.history["loss"].shape == (400,)
    assert res.train_constraint == pytest.approx(float(_penalty(res.params, train)), abs=1e-6)
    assert res.train_constraint <= 0.04


def test_fit_constrained_checks_its_batching_options():
    train, _ = _data()
    fit = functools.partial(
        training.fit_constrained, _loss, _penalty, _p0(), train, target=0.03,
        optimizer=optax.adam(0.05),
    )  # fmt: skip
    with pytest.raises(ValueError, match="`key` is required"):
        fit(batch_size=8)
    # constraint_data is read only from a stream: on arrays it would be ignored, so refused.
    with pytest.raises(ValueError, match="`constraint_data` is for a stream"):
        fit(constraint_data=train)


@pytest.mark.slow
def test_fit_on_a_stream_equals_the_same_steps_on_arrays():
    train, test = _data()
    opt = optax.adam(0.05)
    arrays = training.fit(_loss, _p0(), train, optimizer=opt, num_steps=25)
    stream = training.fit(
        _loss,
        _p0(),
        (train for _ in range(40)),
        optimizer=opt,
        num_steps=25,
        eval_every=10,
        validation_data=test,
    )
    _close(arrays.state.params, stream.state.params, 1e-5)
    assert stream.train_loss.shape == (3,) and stream.val_loss.shape == (3,)
    assert int(stream.state.step) == 25
    batches = iter([train] * 4)
    assert int(training.fit(_loss, _p0(), batches, optimizer=opt).state.step) == 4
    with pytest.raises(ValueError, match="empty stream"):
        training.fit(_loss, _p0(), iter([]), optimizer=opt)


@pytest.mark.slow
def test_fit_constrained_on_a_stream_measures_the_constraint_on_the_full_data():
    train, test = _data()
    opt, mopt = optax.adam(0.05), optax.sgd(0.5)
    res = training.fit_constrained(
        _loss,
        _penalty,
        _p0(),
        _minibatches(train, 64, 300),
        target=0.03,
        optimizer=opt,
        multiplier_optimizer=mopt,
        num_steps=1000,
        dual_constraint_fn=_hard_dp,
        constraint_data=train,
        eval_every=50,
        validation_data=test,
        tolerance=0.02,
    )
    assert res.selected_step == 300 and res.history["loss"].shape == (300,)
    np.testing.assert_array_equal(res.history["eval_step"], np.arange(0, 301, 50))
    assert res.train_constraint == pytest.approx(float(_hard_dp(res.params, train)))
    assert res.history["eval_constraint"][-1] == pytest.approx(res.train_constraint)
    assert res.validation_constraint == pytest.approx(float(_hard_dp(res.params, test)))
    assert float(res.state.multiplier) > 0  # the full-data constraint was violated, pushed
    # The multiplier ascends on the full-data measurement, held between measurements.
    mu = res.history["multiplier"]
    violation = res.history["eval_constraint"][:-1] - 0.03
    # the projection happens at every step: recompute it step by step
    m, manual = 0.0, []
    for s in range(300):
        manual.append(m)
        m = max(0.0, m + 0.5 * violation[s // 50])
    np.testing.assert_allclose(mu, manual, atol=1e-5)
    # Without constraint_data: the batch's constraint, and no train measurement.
    plain = training.fit_constrained(
        _loss,
        _penalty,
        _p0(),
        iter([train] * 20),
        target=0.03,
        optimizer=opt,
        multiplier_optimizer=mopt,
    )
    arrays = training.fit_constrained(
        _loss,
        _penalty,
        _p0(),
        train,
        target=0.03,
        optimizer=opt,
        multiplier_optimizer=mopt,
        num_steps=20,
    )
    _close(plain.params, arrays.params, 1e-5)
    assert np.isnan(plain.train_constraint) and not plain.satisfied
