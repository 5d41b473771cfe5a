"""Adversarial debiasing: gradient reversal, the projection variant, training on toy data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax.training._adversarial import (
    adversarial_objective,
    fit_adversarial,
    gradient_reversal,
)


def _model(w, x):
    return x @ w


def _adversary(q, z):
    return z @ q[0] + q[1]


def _data(n=400, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    s = (jax.random.uniform(k1, (n,)) < 0.5).astype(jnp.int32)
    x = jax.random.normal(k2, (n, 3)) + jnp.stack([s * 1.5, jnp.zeros(n), jnp.ones(n)], 1)
    y = ((x[:, 0] + x[:, 1]) > 0.75).astype(jnp.float32)
    return x, y, s


def _params(z_dim=1):
    return jnp.zeros(3), (jnp.zeros((z_dim, 2)), jnp.zeros(2))


def test_gradient_reversal_is_identity_forward_and_negated_backward():
    x = jnp.array([1.0, -2.0])
    np.testing.assert_array_equal(gradient_reversal(x, 3.0), x)
    g = jax.grad(lambda v: jnp.sum(gradient_reversal(v, 3.0) ** 2))(x)
    np.testing.assert_allclose(g, -3.0 * 2 * x)
    # under vmap over the scale (a sweep of weights)
    gs = jax.vmap(lambda c: jax.grad(lambda v: jnp.sum(gradient_reversal(v, c)))(x))(
        jnp.array([0.0, 1.0])
    )
    np.testing.assert_allclose(gs, [[0.0, 0.0], [-1.0, -1.0]])


def test_reversal_gradients_split_the_players():
    # adversary: +grad of lam*L_A; predictor: grad L_P - lam * grad L_A
    x, y, s = _data(64)
    params = (jnp.array([0.3, -0.2, 0.1]), (jnp.array([[0.5, -0.5]]), jnp.zeros(2)))
    lam = 0.7

    def parts(mp, ap):
        logits = _model(mp, x)
        task = optax.sigmoid_binary_cross_entropy(logits, y).mean()
        adv = optax.softmax_cross_entropy_with_integer_labels(
            _adversary(ap, logits[:, None]), s
        ).mean()
        return task, adv

    g_mp, g_ap = jax.grad(adversarial_objective(_model, _adversary, lam=lam))(params, (x, y, s))
    gt = jax.grad(lambda p: parts(p, params[1])[0])(params[0])
    ga = jax.grad(lambda p: parts(p, params[1])[1])(params[0])
    np.testing.assert_allclose(g_mp, gt - lam * ga, rtol=1e-5, atol=1e-7)
    ga_adv = jax.grad(lambda q: parts(params[0], q)[1])(params[1])
    for got, want in zip(jax.tree.leaves(g_ap), jax.tree.leaves(ga_adv), strict=False):
        np.testing.assert_allclose(got, lam * want, rtol=1e-5, atol=1e-7)


def test_projection_gradient_is_orthogonal_to_the_adversary_at_lam_zero():
    x, y, s = _data(64)
    params = (jnp.array([0.3, -0.2, 0.1]), (jnp.array([[0.5, -0.5]]), jnp.zeros(2)))
    obj = adversarial_objective(_model, _adversary, lam=0.0, variant="projection")
    g_mp, _ = jax.grad(obj)(params, (x, y, s))

    def adv(p):
        logits = _model(p, x)
        z = _adversary(params[1], logits[:, None])
        return optax.softmax_cross_entropy_with_integer_labels(z, s).mean()

    ga = jax.grad(adv)(params[0])
    assert abs(float(jnp.vdot(g_mp, ga))) < 1e-6 * float(jnp.linalg.norm(ga) ** 2 + 1)
    assert float(jnp.linalg.norm(g_mp)) > 1e-4  # the task still moves the predictor


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["reversal", "projection"])
def test_training_against_the_adversary_narrows_the_gap(variant):
    x, y, s = _data()

    def gap(w):
        d = _model(w, x) > 0
        return abs(float(d[s == 1].mean() - d[s == 0].mean()))

    def train(lam):
        (w, _), losses, *_ = fit_adversarial(
            _model, _adversary, _params(), (x, y, s), lam=lam,
            optimizer=optax.adam(0.05), num_steps=300, variant=variant,
        )  # fmt: skip
        assert np.isfinite(np.asarray(losses)).all()
        return w

    assert gap(train(5.0)) < 0.6 * gap(train(0.0))


@pytest.mark.slow
def test_minibatches_equalized_odds_and_errors():
    x, y, s = _data(128)
    (w, _), losses, *_ = fit_adversarial(
        _model, _adversary, _params(z_dim=2), (x, y, s), lam=0.5, optimizer=optax.adam(0.05),
        num_steps=20, batch_size=32, key=jax.random.key(1), criterion="equalized_odds",
    )  # fmt: skip
    assert losses.shape == (20,) and np.isfinite(np.asarray(w)).all()
    with pytest.raises(ValueError, match="key"):
        fit_adversarial(_model, _adversary, _params(), (x, y, s), lam=0.5,
                        optimizer=optax.sgd(0.1), num_steps=2, batch_size=8)  # fmt: skip
    with pytest.raises(ValueError, match="variant"):
        adversarial_objective(_model, _adversary, lam=1.0, variant="minmax")
    with pytest.raises(ValueError, match="criterion"):
        adversarial_objective(_model, _adversary, lam=1.0, criterion="equal_opportunity")


@pytest.mark.slow
def test_minibatches_follow_the_trainers_convention_and_one_batch_is_the_full_batch():
    x, y, s = _data(96)
    kw = dict(lam=0.5, optimizer=optax.adam(0.05), num_steps=12)
    full = fit_adversarial(_model, _adversary, _params(), (x, y, s), **kw)
    one = fit_adversarial(
        _model, _adversary, _params(), (x, y, s), batch_size=96, key=jax.random.key(2), **kw
    )
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(one.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert full.finite and full.model_state is None and full.losses.shape == (12,)
    with pytest.raises(ValueError, match="batch_size"):
        fit_adversarial(_model, _adversary, _params(), (x, y, s), batch_size=0, key=KEY, **kw)


KEY = jax.random.key(5)


def _dropout_model(w, x, key, state):
    """A stateful predictor: dropout on the inputs in training, a step counter as state."""
    if key is not None:
        x = jnp.where(jax.random.bernoulli(key, 0.8, x.shape), x / 0.8, 0)
    return x @ w, {"steps": state["steps"] + (key is not None)}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["reversal", "projection"])
def test_a_stateful_predictor_gets_a_key_per_step_and_carries_its_state(variant):
    x, y, s = _data(128)
    kw = dict(lam=0.5, optimizer=optax.adam(0.05), num_steps=10, variant=variant)
    state = {"steps": jnp.asarray(0)}
    res = fit_adversarial(
        _dropout_model, _adversary, _params(), (x, y, s), model_state=state, key=KEY, **kw
    )
    # The projection variant runs the predictor three times a step, the reversal once; the
    # state comes from the last run of each step.
    assert int(res.model_state["steps"]) == 10 and res.finite
    again = fit_adversarial(
        _dropout_model, _adversary, _params(), (x, y, s), model_state=state, key=KEY, **kw
    )
    np.testing.assert_array_equal(res.losses, again.losses)
    other = fit_adversarial(
        _dropout_model, _adversary, _params(), (x, y, s), model_state=state,
        key=jax.random.key(6), **kw,
    )  # fmt: skip
    assert not np.allclose(res.losses, other.losses)  # the keys drive the dropout
    with pytest.raises(ValueError, match="`key` is required"):
        fit_adversarial(_dropout_model, _adversary, _params(), (x, y, s), model_state=state, **kw)
