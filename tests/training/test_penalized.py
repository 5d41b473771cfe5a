"""Tests of fairjax.training: penalized objectives, make_step, fit, binary_cross_entropy, model=."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import losses, penalties, training

from .common import (
    _count_products_with,
    _data,
    _hard_dp,
    _loss,
    _loss_out,
    _model,
    _p0,
    _penalty,
    _penalty_out,
)


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
    # An array of weights is split per penalty, as a list is (it was given whole to each
    # penalty, and the objective became a vector), traced under vmap too.
    for lams in (np.array([1.0, 0.5]), jnp.array([1.0, 0.5])):
        obj3 = training.penalized(_loss, [_penalty, _penalty], lams)
        np.testing.assert_allclose(obj3(p, train), obj2(p, train), rtol=1e-6)
    swept = jax.vmap(lambda lams: training.penalized(_loss, [_penalty, _penalty], lams)(p, train))(
        jnp.array([[1.0, 0.5], [0.0, 0.0]])
    )
    np.testing.assert_allclose(swept, [obj2(p, train), loss], rtol=1e-6)
    with pytest.raises(ValueError, match="one weight per penalty"):
        training.penalized(_loss, [_penalty, _penalty], np.array([1.0, 0.5, 2.0]))
    with pytest.raises(ValueError, match="one weight per penalty \\(1\\), got 2"):
        training.penalized(_loss, _penalty, np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="`lam` must be a scalar or one weight per penalty"):
        training.penalized(_loss, _penalty, np.ones((2, 2)))
    one = training.penalized(_loss, [_penalty], np.array([2.0]))  # as [2.0]
    np.testing.assert_allclose(one(p, train), obj(p, train), rtol=1e-6)
    with pytest.raises(ValueError, match="`lam` must be >= 0"):
        training.penalized(_loss, _penalty, -1.0)


@pytest.mark.slow
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


@pytest.mark.slow
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
    # A generator as validation data failed in JAX ("error interpreting argument").
    with pytest.raises(TypeError, match="`validation_data` must be a PyTree of arrays"):
        training.fit(obj, _p0(), train, optimizer=optax.sgd(0.1), validation_data=iter([test]))


def test_early_stopping_on_nan_validation_returns_the_state_its_best_epoch_names():
    train, test = _data()
    nan_test = (jnp.full_like(test[0], jnp.nan), *test[1:])
    with pytest.warns(training.DivergenceWarning):
        res = training.fit(
            _loss, _p0(), train, optimizer=optax.sgd(0.5), num_epochs=20, validation_data=nan_test,
            patience=2,
        )  # fmt: skip
    # Every monitored loss is NaN: the first epoch is returned, as best_epoch says (it was the
    # untrained initial state), the run stops after `patience` epochs, and it is not finite.
    assert res.best_epoch == 0 and len(res.val_loss) == 3 and np.isnan(res.val_loss).all()
    assert int(res.state.step) == 1 and not res.finite


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


@pytest.mark.slow
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


def test_binary_cross_entropy_is_the_logistic_loss():
    z = jnp.array([-30.0, -1.5, 0.0, 0.25, 40.0])
    y = jnp.array([1.0, 0.0, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(training.binary_cross_entropy(z, y), losses.logistic(z, y))


def test_logistic_regression_objectives():
    X = jnp.array([[1.0, 2.0], [0.5, -1.0], [-1.0, 0.0]])
    y, s = jnp.array([1.0, 0.0, 1.0]), jnp.array([0, 1, 1])
    p = {"w": jnp.array([0.3, -0.2]), "b": jnp.asarray(0.1)}
    model, loss_fn, penalty_fn = training.logistic_regression(2, l2=0.5, temperature=0.5)
    out = model(p, (X, y, s))
    z = X @ p["w"] + p["b"]
    np.testing.assert_allclose(out[0], z)
    want = np.mean(np.log1p(np.exp(np.asarray(z))) - np.asarray(y) * np.asarray(z))
    np.testing.assert_allclose(loss_fn(out, (X, y, s)), want + 0.5 * 0.13, rtol=1e-6)
    for reduction, fn in [
        ("max", penalty_fn),
        (
            "squared",
            training.logistic_regression(2, l2=0.5, temperature=0.5, reduction="squared")[2],
        ),
    ]:
        pen = penalties.sigmoid_rate_difference(
            z, s, num_groups=2, temperature=0.5, reduction=reduction
        )
        np.testing.assert_allclose(fn(out, (X, y, s)), pen)


def test_demo_pareto_is_a_deprecated_forward_to_the_cli(monkeypatch):
    from fairjax import cli

    def sentinel():
        return None

    monkeypatch.setattr(cli, "demo_pareto", sentinel, raising=False)
    assert "demo_pareto" not in training.__all__
    with pytest.warns(DeprecationWarning, match="fairjax.cli.demo_pareto"):
        assert training.demo_pareto is sentinel
    with pytest.raises(AttributeError, match="no_such_name"):
        training.no_such_name


def test_fit_takes_an_objective_that_does_not_hash():
    # The compiled epoch is keyed by the objective; one that defines __eq__ without __hash__
    # cannot key it and is compiled for the call, with the same result.
    class Objective:
        __hash__ = None

        def __eq__(self, other):
            return isinstance(other, Objective)

        def __call__(self, p, batch):
            return jnp.mean((batch[0] * p - batch[1]) ** 2)

    data = (jnp.arange(4.0), 2 * jnp.arange(4.0))
    opt = optax.adam(0.1)
    plain = training.fit(lambda p, b: Objective()(p, b), jnp.zeros(()), data, optimizer=opt)
    odd = training.fit(Objective(), jnp.zeros(()), data, optimizer=opt)
    np.testing.assert_array_equal(odd.train_loss, plain.train_loss)


def test_fit_does_not_keep_the_objective_alive():
    # The compiled programs are cached per objective while it lives: a loop that builds a new
    # objective (and the arrays it captures) per fit must not accumulate them, as a static
    # argument of jax.jit would (JAX's compile cache held them until it was cleared).
    import gc
    import weakref

    data = (jnp.arange(4.0), 2 * jnp.arange(4.0))
    captured = jnp.ones(1000)

    def make():
        def objective(p, b):
            return jnp.mean((b[0] * p - b[1]) ** 2) + 0 * captured.sum()

        return objective

    objective = make()
    training.fit(objective, jnp.zeros(()), data, optimizer=optax.sgd(0.01), num_steps=3)
    alive = weakref.ref(objective)
    del objective
    gc.collect()
    assert alive() is None
