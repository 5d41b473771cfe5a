"""Tests of fairjax.training: the Lagrangian, fit_constrained and its iterate choice."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import penalties, training

from . import common
from .common import _data, _hard_dp, _logits, _loss, _p0, _penalty


@pytest.mark.slow
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
    np.testing.assert_allclose(res.validation_constraint, _hard_dp(res.params, test))
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
    np.testing.assert_allclose([res.params, res.state.multiplier], [1.0, 2.0], atol=1e-3)
    assert res.satisfied or res.train_constraint <= 1.0 + 1e-3


@pytest.mark.slow
def test_fit_constrained_returns_the_feasible_iterate_of_lowest_loss():
    train, _ = _data()
    target = 0.05
    opts = dict(
        target=target,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.5),
        num_steps=300,
        dual_constraint_fn=_hard_dp,
    )
    best = training.fit_constrained(_loss, _penalty, _p0(), train, iterate="best", **opts)
    last = training.fit_constrained(_loss, _penalty, _p0(), train, **opts)
    hist = best.history
    feasible = hist["constraint"] <= target
    assert feasible.any() and not feasible.all()
    k = best.selected_step
    assert feasible[k] and hist["loss"][k] == hist["loss"][feasible].min()
    # `params` are the iterate of that step: its loss and constraint are the recorded ones.
    np.testing.assert_allclose(_loss(best.params, train), hist["loss"][k], rtol=1e-6)
    np.testing.assert_allclose(best.train_constraint, hist["constraint"][k], atol=1e-7)
    assert best.train_constraint <= target
    # "last" returns the final iterate, which is also the state's.
    assert last.selected_step == 300
    np.testing.assert_array_equal(last.params["w"], last.state.params["w"])
    np.testing.assert_array_equal(best.state.params["w"], last.state.params["w"])
    # Infeasible throughout (a target below 0 cannot hold): the last iterate is returned.
    never = training.fit_constrained(
        _loss, _penalty, _p0(), train, iterate="best", **{**opts, "target": -1.0}
    )
    assert never.selected_step == 300
    with pytest.raises(ValueError, match="`iterate`"):
        training.fit_constrained(_loss, _penalty, _p0(), train, iterate="first", **opts)


def test_best_iterate_can_be_the_last_one():
    # min (p-2)^2 s.t. p <= 5: the bound never binds and the loss falls at every step, so the
    # last iterate (after the last update) is the feasible one of lowest loss, for
    # fit_constrained and for constrained_sweep alike.
    args = (lambda p, b: (p - 2.0) ** 2, lambda p, b: p, jnp.asarray(0.0), None)
    opts = dict(optimizer=optax.sgd(0.01), multiplier_optimizer=optax.sgd(0.1), num_steps=50)
    best = training.fit_constrained(*args, target=5.0, iterate="best", **opts)
    last = training.fit_constrained(*args, target=5.0, **opts)
    assert np.all(np.diff(best.history["loss"]) < 0)
    assert best.selected_step == 50
    assert float(best.params) == float(last.params)
    swept = training.constrained_sweep(*args, jnp.array([5.0, 6.0]), iterate="best", **opts)
    np.testing.assert_array_equal(swept.params, [float(last.params)] * 2)


def test_best_iterate_tolerance_admits_iterates_converged_onto_the_bound():
    # min (p-2)^2 s.t. p <= 1: the iterates converge onto p = 1 from both sides, within float32
    # rounding; with no tolerance only early iterates (p < 1) count as feasible.
    opts = dict(
        target=1.0,
        optimizer=optax.sgd(0.1),
        multiplier_optimizer=optax.sgd(0.1),
        num_steps=600,
        iterate="best",
    )
    args = (lambda p, b: (p - 2.0) ** 2, lambda p, b: p, jnp.asarray(0.0), None)
    strict = training.fit_constrained(*args, **opts)
    loose = training.fit_constrained(*args, tolerance=1e-5, **opts)
    assert float(strict.params) < 0.99 and strict.selected_step < 50
    np.testing.assert_allclose(loose.params, 1.0, atol=1e-4)
    assert loose.selected_step > 100 and loose.satisfied


def test_satisfied_checks_each_constraint_against_its_own_target():
    # Two constraints p_0 <= 0.5 and p_1 <= 3 on min |p - 2|^2: p* = (0.5, 2).
    res = training.fit_constrained(
        lambda p, b: jnp.sum((p - 2.0) ** 2),
        lambda p, b: p,
        jnp.zeros(2),
        None,
        target=jnp.array([0.5, 3.0]),
        optimizer=optax.sgd(0.1),
        multiplier_optimizer=optax.sgd(0.1),
        num_steps=600,
        tolerance=1e-3,
    )
    np.testing.assert_allclose(res.params, [0.5, 2.0], atol=1e-3)
    # max(constraint) = 2 exceeds the first target but each constraint meets its own.
    assert res.train_constraint > 0.5 and res.satisfied is True


def test_target_shapes_a_scalar_bounds_every_constraint_and_a_list_is_one_per_constraint():
    # A scalar target with a vector constraint failed in the scan ("carry input and carry
    # output must have equal types"), a list in the Lagrangian, a wrong length in a broadcast.
    kw = dict(optimizer=optax.sgd(0.1), multiplier_optimizer=optax.sgd(0.1), num_steps=600)
    loss, both = (lambda p, b: jnp.sum((p - 2.0) ** 2)), (lambda p, b: p)
    scalar = training.fit_constrained(loss, both, jnp.zeros(2), None, target=0.5, **kw)
    np.testing.assert_allclose(scalar.params, [0.5, 0.5], atol=1e-3)
    assert scalar.state.multiplier.shape == (2,)
    listed = training.fit_constrained(loss, both, jnp.zeros(2), None, target=[0.5, 3.0], **kw)
    np.testing.assert_allclose(listed.params, [0.5, 2.0], atol=1e-3)
    with pytest.raises(ValueError, match="`target` must be a scalar or one bound per"):
        training.fit_constrained(loss, both, jnp.zeros(2), None, target=[0.5, 1.0, 3.0], **kw)
    with pytest.raises(ValueError, match="`target` must be a scalar or one bound per"):
        training.fit_constrained(loss, lambda p, b: p[0], jnp.zeros(2), None, target=[1, 2], **kw)
    # A matrix of constraints takes a matrix of bounds, or one bound for all.
    eye = training.fit_constrained(
        loss, lambda p, b: jnp.diag(p), jnp.zeros(2), None, target=0.5, **kw
    )
    assert eye.state.multiplier.shape == (2, 2)
    with pytest.raises(ValueError, match="`constraint_fn` must return a scalar in a sweep"):
        training.constrained_sweep(loss, both, jnp.zeros(2), None, jnp.array([0.5, 1.0]), **kw)


def test_nan_data_to_measure_on_and_a_run_that_diverges_after_its_best_step_are_no_success():
    # Hard decisions of NaN logits read as negative decisions: all-NaN validation data gave a
    # constraint of 0 and satisfied=True. A run that diverged after its best feasible step
    # reported finite and satisfied with iterate="best" (the mixture trainer said diverged).
    train, _ = _data()
    kw = dict(
        target=0.05,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.5),
        dual_constraint_fn=common._hard_dp_out,
        model=common._model,
    )
    objectives = (common._loss_out, common._penalty_out)
    nan_val = (jnp.full_like(train[0], jnp.nan), train[1], train[2])
    with pytest.warns(training.DivergenceWarning):
        res = training.fit_constrained(
            *objectives, _p0(), train, num_steps=20, validation_data=nan_val, **kw
        )
    assert np.isnan(res.validation_constraint) and not res.satisfied and not res.finite
    blows_up = optax.sgd(lambda t: jnp.where(t < 40, 0.5, jnp.nan))
    for trainer in ("fit_constrained", "fit_rate_constrained"):
        with pytest.warns(training.DivergenceWarning):
            if trainer == "fit_constrained":
                res = training.fit_constrained(
                    *objectives, _p0(), train, num_steps=80, iterate="best",
                    **{**kw, "optimizer": blows_up},
                )  # fmt: skip
            else:
                res = training.fit_rate_constrained(
                    _logits_of_batch, _p0(), train, target=0.05, num_groups=2,
                    optimizer=blows_up, num_steps=80, iterate="best",
                )  # fmt: skip
        assert res.selected_step < 40 and not res.finite and not res.satisfied, trainer


def _logits_of_batch(p, batch):
    return _logits(p, batch[0])


def test_a_params_function_given_with_model_is_named_with_the_calling_convention():
    # With model=, the constraints take (outputs, batch); a (params, batch) function failed
    # deep in JAX ("string indexing", reported by a new-user walkthrough).
    train, _ = _data()
    fit = dict(target=0.05, optimizer=optax.adam(0.05), num_steps=2, model=common._model)
    with pytest.raises(TypeError, match=r"`dual_constraint_fn` failed on the model's outputs"):
        training.fit_constrained(common._loss_out, common._penalty_out, _p0(), train,
                                 dual_constraint_fn=_hard_dp, **fit)  # fmt: skip
    with pytest.raises(TypeError, match=r"called as constraint_fn\(outputs, batch\)"):
        training.fit_constrained(common._loss_out, _penalty, _p0(), train, **fit)
