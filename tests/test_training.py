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


def test_binary_cross_entropy_matches_optax_in_value_and_gradient():
    z = jnp.array([-1e4, -30.0, -3.0, -1e-3, -0.0, 0.0, 1e-3, 3.0, 30.0, 1e4])
    for y in (0.0, 1.0, 0.3):
        labels = jnp.full(z.shape, y)
        np.testing.assert_allclose(
            training.binary_cross_entropy(z, labels),
            optax.sigmoid_binary_cross_entropy(z, labels),
            rtol=1e-6,
        )
        grad = jax.grad(lambda z, y=labels: training.binary_cross_entropy(z, y).sum())(z)
        # sigma(z) - y, including 1/2 - y at z = 0 (where max(z, 0) and |z| have derivative 0
        # in JAX, and the loss written with them gives -y).
        np.testing.assert_allclose(grad, jax.nn.sigmoid(z) - y, atol=1e-7)
        assert np.all(np.isfinite(grad))
    assert training.binary_cross_entropy(jnp.arange(3), jnp.ones(3)).dtype == jnp.float32


def test_vmapped_sweep_equals_separate_trainings():
    train, _ = _data()
    lams = jnp.array([0.0, 0.3, 1.0, 3.0])
    opt = optax.adam(0.05)
    res = training.pareto_sweep(_loss, _penalty, _p0(), train, lams, optimizer=opt, num_steps=200)
    assert res.params["w"].shape == (4, 4)
    # Separate (unbatched) trainings, one compiled program with lambda as an argument; `fit`
    # runs the same full-batch steps (checked for one weight).
    one = jax.jit(functools.partial(training._train_fixed_steps, _loss, _penalty, opt, 200, None))
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
        one = jax.jit(
            functools.partial(training._train_fixed_steps, _loss, _penalty, opt, 500, None)
        )
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


def _model(p, batch):
    return _logits(p, batch[0]), p


def _loss_out(out, batch):
    z, p = out
    return optax.sigmoid_binary_cross_entropy(z, batch[1]).mean() + 1e-3 * p["w"] @ p["w"]


def _penalty_out(out, batch):
    return penalties.sigmoid_rate_difference(out[0], batch[2], num_groups=2)


def _hard_dp_out(out, batch):
    pred = (out[0] > 0).astype(jnp.float32)
    return metrics.demographic_parity_difference(pred, batch[2], num_groups=2)


def _count_products_with(X, fn, *args):
    """Matrix products in ``fn``'s jaxpr (nested calls included) that read the matrix ``X``."""

    def subjaxprs(params):
        for value in params.values():
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(v, "eqns"):
                    yield v
                elif hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                    yield v.jaxpr

    def count(jx):
        total = 0
        for eqn in jx.eqns:
            if eqn.primitive.name == "dot_general":
                total += any(getattr(x.aval, "shape", None) == X.shape for x in eqn.invars)
            total += sum(count(sub) for sub in subjaxprs(eqn.params))
        return total

    return count(jax.make_jaxpr(fn)(*args).jaxpr)


def test_model_runs_once_and_gives_the_same_objective():
    train, _ = _data()
    p = {"w": jnp.arange(4.0) / 10, "b": jnp.asarray(0.1)}
    by_params = training.penalized(_loss, _penalty, 2.0)
    by_model = training.penalized(_loss_out, _penalty_out, 2.0, model=_model)
    np.testing.assert_allclose(by_model(p, train), by_params(p, train), rtol=1e-6)
    g1, g2 = jax.grad(by_params)(p, train), jax.grad(by_model)(p, train)
    np.testing.assert_allclose(g2["w"], g1["w"], rtol=1e-5, atol=1e-7)
    # Without `model`, each term runs its own product with X and its own backward product;
    # with it, one forward and one backward product.
    X = train[0]
    assert _count_products_with(X, jax.grad(by_params), p, train) == 2 + 2
    assert _count_products_with(X, jax.grad(by_model), p, train) == 1 + 1


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


def _linear(p, batch):
    return batch[0] @ p["w"] + p["b"]


def _biased_start():
    """A start away from zero: its decisions differ between the groups from step 0."""
    return {"w": jnp.asarray([1.0, 0.5, -0.5, 0.2]), "b": jnp.asarray(0.3)}


def _biased(num_groups, seed=0):
    d = datasets.make_classification(
        jax.random.key(seed), n_samples=3000, n_features=4, num_groups=num_groups, bias=1.0
    )
    return d.batch("train"), d.batch("test")


def test_rate_constrained_with_an_inactive_bound_is_logistic_regression():
    # All multipliers stay 0 when the bound never binds, and the reduction's surrogate is then
    # the mean log-loss: the same iterates as plain optax training of it.
    train, _ = _biased(2)
    opt = optax.adam(0.05)

    def reg(p):
        return 1e-3 * jnp.sum(p["w"] ** 2)

    res = training.fit_rate_constrained(
        _linear,
        _p0(),
        train,
        target=1.0,
        num_groups=2,
        optimizer=opt,
        num_steps=100,
        regularizer=reg,
    )

    def loss(p):
        return training.binary_cross_entropy(_linear(p, train), train[1]).mean() + reg(p)

    want = training.fit(
        lambda p, b: loss(p), _p0(), train, optimizer=opt, num_epochs=100
    ).state.params
    np.testing.assert_allclose(res.params["w"], want["w"], atol=1e-5)
    np.testing.assert_allclose(res.params["b"], want["b"], atol=1e-5)
    np.testing.assert_array_equal(res.state.multiplier, 0)
    # A zero start decides 0 everywhere: its error is the rate of positive labels.
    assert res.history["error"][0] == pytest.approx(float(np.mean(np.asarray(train[1]))), abs=1e-7)


@pytest.mark.parametrize("num_groups", [2, 3])
@pytest.mark.parametrize(
    "constraint", ["demographic_parity", "equal_opportunity", "equalized_odds"]
)
def test_rate_constrained_reaches_the_bound_on_every_pair_of_groups(num_groups, constraint):
    train, test = _biased(num_groups)
    metric = {
        "demographic_parity": metrics.demographic_parity_difference,
        "equal_opportunity": metrics.equal_opportunity_difference,
        "equalized_odds": metrics.equalized_odds_difference,
    }[constraint]

    def gap(p, batch):
        pred = (_linear(p, batch) > 0).astype(jnp.float32)
        if constraint == "demographic_parity":
            return float(metric(pred, batch[2], num_groups=num_groups))
        return float(metric(batch[1], pred, batch[2], num_groups=num_groups))

    kw = dict(
        num_groups=num_groups,
        optimizer=optax.adam(0.05),
        num_steps=1000,
        constraint=constraint,
        validation_data=test,
    )
    free = training.fit_rate_constrained(_linear, _p0(), train, target=1.0, **kw)
    assert gap(free.params, train) > 0.15  # the data is biased: the bound below binds
    res = training.fit_rate_constrained(_linear, _p0(), train, target=0.05, tolerance=0.1, **kw)
    assert res.train_constraint == pytest.approx(gap(res.params, train), abs=1e-6)
    assert res.validation_constraint == pytest.approx(gap(res.params, test), abs=1e-6)
    assert res.train_constraint <= 0.05 + 0.01
    # The iterates settle within a small oscillation around the bound (on these data up to
    # 0.061 over the last 200 steps, 3 groups, demographic parity): the whole tail is checked.
    assert res.history["constraint"][-200:].max() <= 0.05 + 0.015
    assert res.satisfied
    pairs = (num_groups, num_groups)
    assert res.state.multiplier.shape == ((2, *pairs) if constraint == "equalized_odds" else pairs)
    assert res.history["constraint"].shape == (1000,)


@pytest.mark.parametrize(
    "constraint", ["demographic_parity", "equal_opportunity", "equalized_odds"]
)
def test_rate_constrained_weights_act_as_repeated_rows(constraint):
    # Integer weights are repeated rows, and rows of weight 0 are no rows: the same iterates
    # (full-batch). In float64, so that the order of the sums cannot flip a decision.
    with jax.enable_x64(True):
        train = tuple(
            jnp.asarray(a, jnp.float64 if a.dtype == jnp.float32 else a.dtype)
            for a in _biased(2)[0]
        )
        n = train[1].shape[0]
        counts = np.asarray(jax.random.randint(jax.random.key(1), (n,), 0, 3))
        repeated = tuple(jnp.asarray(np.repeat(np.asarray(a), counts, axis=0)) for a in train)
        p0 = jax.tree.map(lambda a: a.astype(jnp.float64), _p0())
        kw = dict(
            target=0.05,
            num_groups=2,
            optimizer=optax.adam(0.05),
            num_steps=200,
            constraint=constraint,
        )
        want = training.fit_rate_constrained(_linear, p0, repeated, **kw)
        got = training.fit_rate_constrained(_linear, p0, train, weights=counts, **kw)
    assert want.history["constraint"].max() > 0.15  # the bound binds: multipliers move
    assert np.abs(want.state.multiplier).max() > 0
    np.testing.assert_allclose(got.history["constraint"], want.history["constraint"], atol=1e-12)
    np.testing.assert_allclose(got.state.multiplier, want.state.multiplier, atol=1e-10)
    np.testing.assert_allclose(got.params["w"], want.params["w"], atol=1e-9)
    np.testing.assert_allclose(got.params["b"], want.params["b"], atol=1e-9)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _rate_step_reference(params, X, y, s, w, mu, lr, conditions):
    """One gradient step on the reduction's surrogate, in NumPy: row i's cost is
    w_i (1 - 2 y_i) / W plus, for the condition that counts it, nu_{s_i} w_i / W_{s_i}."""
    cost = w * (1 - 2 * y) / w.sum()
    for c, value in enumerate(conditions):
        rows = w * (np.ones_like(y) if value is None else (y == value))
        group_w = np.bincount(s, weights=rows, minlength=2)
        nu = mu[c].sum(1) - mu[c].sum(0)
        cost = cost + nu[s] * rows / group_w[s]
    labels = (cost < 0).astype(float)
    r = np.abs(cost) * (_sigmoid(X @ params["w"] + params["b"]) - labels)
    return {"w": params["w"] - lr * (X.T @ r), "b": params["b"] - lr * r.sum()}


def _rate_gaps_reference(params, X, y, s, w, conditions):
    decisions = (X @ params["w"] + params["b"] > 0).astype(float)
    gaps = []
    for value in conditions:
        rows = w * (np.ones_like(y) if value is None else (y == value))
        rates = np.array([(rows * decisions)[s == g].sum() / rows[s == g].sum() for g in (0, 1)])
        gaps.append(rates[:, None] - rates[None, :])
    return np.stack(gaps)


@pytest.mark.parametrize(
    "constraint", ["demographic_parity", "equal_opportunity", "equalized_odds"]
)
def test_rate_constrained_steps_against_a_reference(constraint):
    # Two SGD steps with weights, against NumPy: step 1 sets the multipliers from the gaps of
    # the start, step 2's gradient gives each row the multipliers of its own condition (for
    # equalized odds: the true-positive-rate ones to positive labels, the false-positive-rate
    # ones to negative labels), and the second multiplier step uses the gaps of step 1.
    conditions = {
        "demographic_parity": (None,),
        "equal_opportunity": (1,),
        "equalized_odds": (1, 0),
    }[constraint]
    train, _ = _biased(2)
    start = _biased_start()
    X, y, s = (np.asarray(a, np.float64) for a in train)
    s = s.astype(int)
    w = np.asarray(jax.random.randint(jax.random.key(2), y.shape, 1, 4), np.float64)
    lr, eta, target = 2.0, 2.0, 0.02
    res = training.fit_rate_constrained(
        _linear,
        start,
        train,
        target=target,
        num_groups=2,
        optimizer=optax.sgd(lr),
        multiplier_optimizer=optax.sgd(eta),
        num_steps=2,
        weights=w,
        constraint=constraint,
    )
    p0 = {k: np.asarray(v, np.float64) for k, v in start.items()}
    mu0 = np.zeros((len(conditions), 2, 2))
    p1 = _rate_step_reference(p0, X, y, s, w, mu0, lr, conditions)
    mu1 = np.maximum(eta * (_rate_gaps_reference(p0, X, y, s, w, conditions) - target), 0)
    p2 = _rate_step_reference(p1, X, y, s, w, mu1, lr, conditions)
    gaps1 = _rate_gaps_reference(p1, X, y, s, w, conditions)
    mu2 = np.maximum(mu1 + eta * (gaps1 - target), 0)
    assert mu1.max() > 0.1  # the multipliers are active at step 2
    assert np.any(
        (X @ p1["w"] + p1["b"] > 0) != (X @ p0["w"] + p0["b"] > 0)
    )  # step 1 moved decisions: step 2's multiplier update tells the iterates apart
    np.testing.assert_allclose(res.params["w"], p2["w"], atol=1e-4)
    np.testing.assert_allclose(res.params["b"], p2["b"], atol=1e-4)
    np.testing.assert_allclose(
        res.state.multiplier, mu2.reshape(res.state.multiplier.shape), atol=1e-5
    )
    np.testing.assert_allclose(
        res.history["constraint"],
        [_rate_gaps_reference(p, X, y, s, w, conditions).max() for p in (p0, p1)],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        res.history["error"],
        [np.sum(w * ((X @ p["w"] + p["b"] > 0) != y)) / w.sum() for p in (p0, p1)],
        atol=1e-6,
    )


_RATE_METRICS = {
    "demographic_parity": lambda y, pred, s, G: metrics.demographic_parity_difference(
        pred, s, num_groups=G
    ),
    "equal_opportunity": lambda y, pred, s, G: metrics.equal_opportunity_difference(
        y, pred, s, num_groups=G
    ),
    "equalized_odds": lambda y, pred, s, G: metrics.equalized_odds_difference(
        y, pred, s, num_groups=G
    ),
}


def _decisions(params, X):
    return (X @ np.asarray(params["w"]) + np.asarray(params["b"]) > 0).astype(np.float32)


def _expected_best(res_last, X, y, w, bound):
    """The step ``iterate="best"`` must pick, from an ``iterate="last"`` run: among the iterates
    each step starts from and the last one, those with a gap <= bound, the earliest of lowest
    weighted error (recomputed here for the last iterate, exact for integer weights)."""
    pred = _decisions(res_last.params, X)
    last_error = np.float32(np.sum(w * (pred != y))) / np.float32(w.sum())
    errors = np.append(res_last.history["error"], last_error)
    gaps = np.append(res_last.history["constraint"], np.float32(res_last.train_constraint))
    feasible = np.flatnonzero(gaps <= bound)
    return errors, gaps, feasible, int(feasible[np.argmin(errors[feasible])])


@pytest.mark.parametrize(
    ("constraint", "target", "num_steps"),
    [
        ("demographic_parity", 0.02, 400),
        ("equal_opportunity", 0.02, 400),
        ("equalized_odds", 0.05, 400),
        ("equalized_odds", 0.05, 50),
    ],
)
def test_rate_constrained_best_iterate_is_the_feasible_one_of_lowest_error(
    constraint, target, num_steps
):
    # Three groups and a tight bound: the iterates swing around it. The chosen iterate must be
    # the one the loop reached after `selected_step` updates (re-run to that step), feasible on
    # the training data, and the earliest of lowest training error among the feasible iterates,
    # the last one included (at 50 steps it is the best one for equalized odds).
    train, _ = _biased(3)
    X, y, s = (np.asarray(a) for a in train)
    start = _biased_start()
    kw = dict(
        target=target,
        num_groups=3,
        optimizer=optax.adam(0.05),
        num_steps=num_steps,
        constraint=constraint,
        tolerance=0.005,
    )
    res = training.fit_rate_constrained(_linear, start, train, iterate="best", **kw)
    last = training.fit_rate_constrained(_linear, start, train, **kw)
    np.testing.assert_array_equal(res.history["constraint"], last.history["constraint"])
    np.testing.assert_array_equal(res.history["error"], last.history["error"])
    bound = np.float32(target) + np.float32(0.005)
    errors, gaps, feasible, k = _expected_best(last, X, y, np.ones_like(y), bound)
    assert 0 < len(feasible) < num_steps  # some iterates were infeasible: the choice matters
    assert res.selected_step == k
    if num_steps == 400:
        assert 0 < k < num_steps
        again = training.fit_rate_constrained(_linear, start, train, **{**kw, "num_steps": k})
        np.testing.assert_allclose(res.params["w"], again.params["w"], atol=1e-6)
        np.testing.assert_allclose(res.params["b"], again.params["b"], atol=1e-6)
    else:
        assert k == num_steps  # the last iterate is feasible and better than every other
        assert errors[-1] < errors[feasible[:-1]].min()
    if k == num_steps:
        np.testing.assert_array_equal(res.params["w"], last.params["w"])
    pred = _decisions(res.params, X)
    assert float(np.mean(pred != y)) == pytest.approx(errors[k], abs=1e-6)
    assert res.train_constraint == pytest.approx(gaps[k], abs=1e-6)
    assert res.train_constraint == pytest.approx(
        float(_RATE_METRICS[constraint](y, pred, s, 3)), abs=1e-6
    )
    assert res.train_constraint <= bound
    assert res.satisfied
    # The final state is the last iterate's either way.
    np.testing.assert_array_equal(res.state.params["w"], last.params["w"])
    np.testing.assert_array_equal(res.state.multiplier, last.state.multiplier)


def test_rate_constrained_best_iterate_with_weights_and_validation():
    # Weighted error and weighted gaps choose the iterate; the validation gap is the chosen
    # iterate's, unweighted.
    train, test = _biased(2)
    X, y, s = (np.asarray(a) for a in train)
    w = np.asarray(jax.random.randint(jax.random.key(2), y.shape, 1, 4), np.float32)
    kw = dict(
        target=0.02,
        num_groups=2,
        optimizer=optax.adam(0.05),
        num_steps=400,
        weights=w,
        validation_data=test,
        tolerance=0.01,
    )
    start = _biased_start()
    res = training.fit_rate_constrained(_linear, start, train, iterate="best", **kw)
    last = training.fit_rate_constrained(_linear, start, train, **kw)
    bound = np.float32(0.02) + np.float32(0.01)
    errors, _, feasible, k = _expected_best(last, X, y, w, bound)
    assert 0 < len(feasible) < 400
    assert res.selected_step == k < 400
    pred = _decisions(res.params, X)
    assert np.sum(w * (pred != y)) / w.sum() == pytest.approx(errors[k], abs=1e-6)
    weighted = _rate_gaps_reference(res.params, X, y, s.astype(int), w, (None,))
    assert res.train_constraint == pytest.approx(weighted.max(), abs=1e-6)
    assert res.train_constraint <= bound
    Xt, _, st = (np.asarray(a) for a in test)
    assert res.validation_constraint == pytest.approx(
        float(metrics.demographic_parity_difference(_decisions(res.params, Xt), st, num_groups=2)),
        abs=1e-6,
    )
    assert res.validation_constraint != last.validation_constraint


def test_rate_constrained_best_iterate_counts_a_gap_equal_to_the_bound():
    # With the multipliers frozen (rate 0) the iterates do not depend on the target, so the
    # target can be set to the gap of the iterate of lowest error: that iterate is feasible
    # (gap <= bound, with equality) and is chosen.
    train, _ = _biased(2)
    X, y, _ = (np.asarray(a) for a in train)
    kw = dict(
        num_groups=2,
        optimizer=optax.adam(0.05),
        num_steps=100,
        multiplier_optimizer=optax.sgd(0.0),
    )
    free = training.fit_rate_constrained(_linear, _p0(), train, target=1.0, **kw)
    j = int(np.argmin(free.history["error"]))
    target = float(free.history["constraint"][j])
    res = training.fit_rate_constrained(_linear, _p0(), train, target=target, iterate="best", **kw)
    _, _, _, k = _expected_best(free, X, y, np.ones_like(y), np.float32(target))
    assert res.selected_step == k
    assert free.history["constraint"][k] == np.float32(target) or k == 100
    assert res.train_constraint <= np.float32(target)


def test_rate_constrained_best_iterate_falls_back_to_the_last():
    # A biased start and a bound of 0 that five steps cannot reach: no iterate is feasible.
    train, _ = _biased(2)
    start = _biased_start()
    kw = dict(target=0.0, num_groups=2, optimizer=optax.adam(0.01), num_steps=5)
    res = training.fit_rate_constrained(_linear, start, train, iterate="best", **kw)
    last = training.fit_rate_constrained(_linear, start, train, **kw)
    assert res.history["constraint"].min() > 0.1
    assert last.train_constraint > 0.1
    assert res.selected_step == 5
    np.testing.assert_array_equal(res.params["w"], last.params["w"])
    assert res.train_constraint == last.train_constraint
    assert not res.satisfied


def test_rate_constrained_rejects_bad_options():
    train, _ = _biased(2)
    kw = dict(num_groups=2, optimizer=optax.adam(0.05), num_steps=2)
    with pytest.raises(ValueError, match="`constraint`"):
        training.fit_rate_constrained(_linear, _p0(), train, target=0.1, constraint="odds", **kw)
    with pytest.raises(ValueError, match="`target`"):
        training.fit_rate_constrained(_linear, _p0(), train, target=-0.1, **kw)
    with pytest.raises(ValueError, match="`iterate`"):
        training.fit_rate_constrained(_linear, _p0(), train, target=0.1, iterate="first", **kw)
    n = train[1].shape[0]
    with pytest.raises(ValueError, match="`weights` must have one row per sample"):
        training.fit_rate_constrained(_linear, _p0(), train, target=0.1, weights=np.ones(3), **kw)
    for bad, message in [
        (-np.ones(n), "`weights` must be non-negative"),
        (np.full(n, np.nan), "`weights` must be finite"),
        (np.zeros(n), "`weights` must not be all zero"),
        (np.full(n, 3e38 / n * 2), "`weights` sum to .* beyond the range of float32"),
    ]:
        with pytest.raises(ValueError, match=message):
            training.fit_rate_constrained(_linear, _p0(), train, target=0.1, weights=bad, **kw)
    X, y, s = train
    for data, message in [
        ((X, 2 * y - 1, s), "`data labels` must be binary"),
        ((X, y, s + 5), r"`groups` ids must lie in \[0, num_groups=2\)"),
        ((X, y, s[:-1]), "`groups` must have one row per sample"),
        ((X, y), "`data` must be a tuple"),
    ]:
        with pytest.raises(ValueError, match=message):
            training.fit_rate_constrained(_linear, _p0(), data, target=0.1, **kw)
    with pytest.raises(ValueError, match="`validation_data labels` must be binary"):
        training.fit_rate_constrained(
            _linear, _p0(), train, target=0.1, validation_data=(X, 2 * y - 1, s), **kw
        )


def _lp_by_vertices(errors, gaps, bound):
    """min q @ errors over the simplex with q @ gaps <= bound, by enumerating the vertices of
    the feasible set (each: J linearly independent active constraints, the sum to 1 among
    them), in NumPy: the reference of the mixture's linear program."""
    import itertools

    num, m = gaps.shape
    rows = np.vstack([-np.eye(num), gaps.T])  # -q_j <= 0 and q @ gaps <= bound
    rhs = np.concatenate([np.zeros(num), np.full(m, bound)])
    best = np.inf
    for active in itertools.combinations(range(num + m), num - 1):
        A = np.vstack([np.ones(num), rows[list(active)]])
        if abs(np.linalg.det(A)) < 1e-12:
            continue
        q = np.linalg.solve(A, np.concatenate([[1.0], rhs[list(active)]]))
        if np.all(rows @ q <= rhs + 1e-12):
            best = min(best, q @ errors)
    return best


@pytest.mark.parametrize("num_conditions", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_best_mixture_solves_its_linear_program(num_conditions, seed):
    # Random candidates with two groups: per condition, the gaps r_0 - r_1 and r_1 - r_0.
    rng = np.random.default_rng(seed)
    num = 6
    d = rng.uniform(-0.3, 0.3, size=(num, num_conditions))
    gaps = np.concatenate([d, -d], axis=1)
    errors = rng.uniform(0.1, 0.4, size=num)
    bound = 0.05
    q = training.best_mixture({"error": errors, "gaps": gaps}, target=bound)
    assert np.all(q >= 0) and q.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.max(q @ gaps) <= bound + 1e-12
    assert q @ errors == pytest.approx(_lp_by_vertices(errors, gaps, bound), abs=1e-12)
    # A vertex: at most one component more than there are binding constraints.
    assert np.count_nonzero(q) <= 1 + np.sum(np.isclose(q @ gaps, bound, atol=1e-12))


def test_best_mixture_without_a_feasible_mixture_takes_the_smallest_gap():
    # Every candidate favours group 0 by more than the bound: the smallest largest gap of any
    # mixture is the smallest candidate's, 0.12, shared by candidates 1 and 3 (the one of lower
    # error wins).
    d = np.array([0.2, 0.12, 0.3, 0.12])
    errors = np.array([0.1, 0.3, 0.05, 0.2])
    q = training.best_mixture({"error": errors, "gaps": np.stack([d, -d], axis=1)}, target=0.05)
    np.testing.assert_allclose(q, [0, 0, 0, 1], atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("constraint", "target", "any_iterate_feasible"),
    [("demographic_parity", 0.02, False), ("equalized_odds", 0.05, True)],
)
def test_rate_constrained_mixture_is_the_best_mixture_of_its_iterates(
    constraint, target, any_iterate_feasible, weighted
):
    # Three groups and a fast multiplier rate, so the iterates swing across the bound; every
    # step is a candidate. The components are the iterates of those steps (re-run to one of
    # them); the expected gap and error are those of the expected decisions (metrics on soft
    # predictions); the bound holds in expectation; and the mixture beats every deterministic
    # choice: for demographic parity no iterate meets the bound, for equalized odds the mixture's
    # error is below that of every iterate that does.
    train, test = _biased(3)
    X, y, s = (np.asarray(a) for a in train)
    w = np.ones_like(y)
    if weighted:
        w = np.asarray(jax.random.randint(jax.random.key(2), y.shape, 1, 4), np.float32)
    num_steps = 200
    kw = dict(
        target=target,
        num_groups=3,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.1),
        num_steps=num_steps,
        constraint=constraint,
        weights=w,
        validation_data=test,
    )
    start = _biased_start()
    res = training.fit_rate_constrained_mixture(
        _linear, start, train, num_candidates=num_steps, **kw
    )
    last = training.fit_rate_constrained(_linear, start, train, **kw)
    np.testing.assert_array_equal(res.history["constraint"], last.history["constraint"])
    np.testing.assert_array_equal(res.state.params["w"], last.params["w"])

    assert res.probabilities.dtype == np.float64 and np.all(res.probabilities > 0)
    assert res.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert len(res.probabilities) >= 2  # a randomised classifier, not one iterate
    assert np.all(np.diff(res.steps) > 0) and 0 <= res.steps[0] and res.steps[-1] <= num_steps
    assert res.params["w"].shape == (len(res.probabilities), 4)
    k = int(res.steps[0]) if res.steps[0] > 0 else int(res.steps[1])
    j = list(res.steps).index(k)
    again = training.fit_rate_constrained(_linear, start, train, **{**kw, "num_steps": k})
    np.testing.assert_allclose(res.params["w"][j], again.params["w"], atol=1e-6)

    p = np.asarray(training.mixture_decisions(_linear, res.params, res.probabilities, train))
    assert res.train_error == pytest.approx(np.sum(w * np.abs(p - y)) / w.sum(), abs=1e-6)
    if constraint == "demographic_parity":
        expected = metrics.demographic_parity_difference(p, s, num_groups=3, weights=w)
    else:
        expected = metrics.equalized_odds_difference(y, p, s, num_groups=3, weights=w)
    assert res.train_constraint == pytest.approx(float(expected), abs=1e-6)
    assert res.train_constraint <= np.float32(target)
    _, yt, st = (np.asarray(a) for a in test)
    pt = training.mixture_decisions(_linear, res.params, res.probabilities, test)
    assert res.validation_constraint == pytest.approx(
        float(_RATE_METRICS[constraint](yt, pt, st, 3)), abs=1e-6
    )
    assert res.satisfied == (res.validation_constraint <= np.float32(target))

    errors = np.append(
        last.history["error"], np.sum(w * (_decisions(last.params, X) != y)) / w.sum()
    )
    gaps = np.append(last.history["constraint"], last.train_constraint)
    feasible = gaps <= np.float32(target)
    assert feasible.any() == any_iterate_feasible
    if any_iterate_feasible:
        assert res.train_error < errors[feasible].min() - 1e-3


@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_rate_constrained_mixture_candidates_against_re_runs(constraint):
    # 5 candidates of 97 steps: steps floor(97 k / 5) and the last. Each candidate's error and
    # gaps are those of the iterate re-run to its step (gaps from a NumPy reference of the
    # rates), the mixture is the optimum of the linear program over them (by vertex
    # enumeration), its components are those iterates, and best_mixture re-solves it.
    train, _ = _biased(2)
    X, y, s = (np.asarray(a) for a in train)
    conditions = training._RATE_CONDITIONS[constraint]
    start, target = _biased_start(), 0.03
    kw = dict(
        target=target,
        num_groups=2,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.1),
        constraint=constraint,
    )
    res = training.fit_rate_constrained_mixture(
        _linear, start, train, num_steps=97, num_candidates=5, **kw
    )
    cand = res.candidates
    np.testing.assert_array_equal(cand["steps"], [0, 19, 38, 58, 77, 97])
    ones = np.ones_like(y)
    iterates = {0: start}
    for k in cand["steps"][1:]:
        iterates[int(k)] = training.fit_rate_constrained(
            _linear, start, train, num_steps=int(k), **kw
        ).params
    for i, k in enumerate(cand["steps"]):
        p = {n: np.asarray(a, np.float64) for n, a in iterates[int(k)].items()}
        gaps = _rate_gaps_reference(p, X, y, s.astype(int), ones, conditions)
        np.testing.assert_allclose(cand["gaps"][i], gaps, atol=1e-6)
        assert cand["error"][i] == pytest.approx(np.mean(_decisions(p, X) != y), abs=1e-6)
        if k < 97:
            assert cand["error"][i] == res.history["error"][k]
            assert cand["constraint"][i] == res.history["constraint"][k]
    flat = cand["gaps"].reshape(6, -1).astype(np.float64)
    assert res.train_error == pytest.approx(
        _lp_by_vertices(cand["error"].astype(np.float64), flat, target), abs=1e-9
    )
    assert len(res.steps) >= 2 and res.train_constraint <= target
    for j, k in enumerate(res.steps):
        np.testing.assert_allclose(res.params["w"][j], iterates[int(k)]["w"], atol=1e-6)
    q = training.best_mixture(cand, target=target)
    np.testing.assert_allclose(q[np.isin(cand["steps"], res.steps)], res.probabilities)
    loose = training.best_mixture(cand, target=1.0)  # no bound: the candidate of least error
    assert loose[np.argmin(cand["error"])] == 1.0


def test_rate_constrained_mixture_satisfied_and_tolerance():
    # A bound of 0 is met exactly by a mixture (a zero start's step 0 is the constant
    # classifier); the validation gap of the same mixture is above it, so `satisfied` follows
    # the tolerance.
    train, test = _biased(2)
    kw = dict(num_groups=2, optimizer=optax.adam(0.05), num_steps=95, validation_data=test)
    res = training.fit_rate_constrained_mixture(_linear, _p0(), train, target=0.0, **kw)
    assert res.train_constraint == 0.0 and res.train_error <= res.history["error"][0]
    assert res.validation_constraint > 0.0 and not res.satisfied
    slack = res.validation_constraint
    again = training.fit_rate_constrained_mixture(
        _linear, _p0(), train, target=0.0, tolerance=slack, **kw
    )
    np.testing.assert_array_equal(again.probabilities, res.probabilities)
    assert again.satisfied


def test_rate_constrained_mixture_without_a_feasible_mixture():
    # A biased start and a bound of 0 that five steps cannot reach: every candidate favours the
    # same group, so the mixture is the candidate of smallest gap and the result says it
    # misses the bound.
    train, _ = _biased(2)
    kw = dict(target=0.0, num_groups=2, optimizer=optax.adam(0.01), num_steps=5)
    res = training.fit_rate_constrained_mixture(_linear, _biased_start(), train, **kw)
    last = training.fit_rate_constrained(_linear, _biased_start(), train, **kw)
    gaps = np.append(last.history["constraint"], last.train_constraint)
    assert res.train_constraint == pytest.approx(gaps.min(), abs=1e-6) and gaps.min() > 0.1
    assert not res.satisfied


def test_mixture_decisions_draws_each_row_with_its_probability():
    def model(w, x):
        return x * w

    x = jnp.repeat(jnp.array([-2.0, -1.0, 1.0, 2.0]), 20_000)
    params, q = jnp.array([1.0, -1.0, 1.5]), jnp.array([0.5, 0.3, 0.2])
    p = training.mixture_decisions(model, params, q, x)
    # Component j decides 1 where x w_j > 0: on x < 0 only component 1 (0.3), on x > 0 the
    # others (0.7).
    np.testing.assert_allclose(np.unique(np.asarray(p)), [0.3, 0.7], atol=1e-6)
    draws = training.mixture_decisions(model, params, q, x, key=jax.random.key(0))
    assert set(np.unique(np.asarray(draws)).tolist()) == {0.0, 1.0}
    for value in (-2.0, -1.0, 1.0, 2.0):
        rows = np.asarray(x == value)
        mean, rate = float(np.asarray(draws)[rows].mean()), 0.3 if value < 0 else 0.7
        assert abs(mean - rate) < 4 * np.sqrt(rate * (1 - rate) / rows.sum())
    again = training.mixture_decisions(model, params, q, x, key=jax.random.key(0))
    np.testing.assert_array_equal(draws, again)
    one = training.mixture_decisions(model, params[:1], jnp.ones(1), x, key=jax.random.key(1))
    np.testing.assert_array_equal(one, (x > 0).astype(jnp.float32))
    with pytest.raises(ValueError, match="`probabilities` must have shape \\(3,\\)"):
        training.mixture_decisions(model, params, q[:2], x)
    jitted = jax.jit(training.mixture_decisions, static_argnums=0)
    np.testing.assert_array_equal(jitted(model, params, q, x), p)


def test_rate_constrained_mixture_rejects_bad_options():
    train, _ = _biased(2)
    kw = dict(target=0.1, num_groups=2, optimizer=optax.adam(0.05))
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="`num_candidates`"):
            training.fit_rate_constrained_mixture(_linear, _p0(), train, num_candidates=bad, **kw)
    with pytest.raises(ValueError, match="`num_steps`"):
        training.fit_rate_constrained_mixture(_linear, _p0(), train, num_steps=0, **kw)
    res = training.fit_rate_constrained_mixture(
        _linear, _p0(), train, num_steps=np.int64(3), num_candidates=np.int32(7), **kw
    )
    np.testing.assert_array_equal(res.candidates["steps"], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="`constraint`"):
        training.fit_rate_constrained_mixture(_linear, _p0(), train, constraint="odds", **kw)
    X, y, s = train
    with pytest.raises(ValueError, match="`data labels` must be binary"):
        training.fit_rate_constrained_mixture(_linear, _p0(), (X, 2 * y - 1, s), **kw)
