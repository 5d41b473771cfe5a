"""Per-step PRNG keys and auxiliary state (dropout, batch norm) in the trainers (#24 item 7)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import metrics, penalties, training

from .common import _data


def test_stateful_objective_gets_fresh_keys_and_carries_its_state():
    seen = []

    def objective(p, batch, key, state):
        seen.append(key)
        noise = jax.random.normal(key, ())
        return jnp.sum((p - batch) ** 2) + 0 * noise, {"steps": state["steps"] + 1}

    res = training.fit(
        objective,
        jnp.zeros(2),
        jnp.ones((4, 2)),
        optimizer=optax.sgd(0.1),
        num_steps=7,
        model_state={"steps": jnp.asarray(0)},
        key=jax.random.PRNGKey(0),
    )
    assert int(res.state.model_state["steps"]) == 7
    with pytest.raises(ValueError, match="`key` is required with `model_state`"):
        training.fit(
            objective,
            jnp.zeros(2),
            jnp.ones((4, 2)),
            optimizer=optax.sgd(0.1),
            model_state={"steps": 0},
        )
    # The old two-argument objective still works, and penalized serves both forms.
    obj = training.penalized(
        lambda z, b: jnp.mean(z**2), lambda z, b: jnp.mean(z), 0.5, model=lambda p, b: b * p
    )
    assert float(obj(jnp.asarray(2.0), jnp.ones(3))) == pytest.approx(5.0)


def _flax_model(d):
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(d, 16, rngs=rngs)
            self.norm = nnx.BatchNorm(16, rngs=rngs)
            self.drop = nnx.Dropout(0.3, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x, *, train, rngs=None):
            h = nnx.relu(self.norm(self.hidden(x), use_running_average=not train))
            return self.out(self.drop(h, deterministic=not train, rngs=rngs))[:, 0]

    graphdef, params, rest = nnx.split(Net(nnx.Rngs(0)), nnx.Param, ...)

    def model(params, batch, key, state):
        """The stateful-model protocol: key=None is evaluation."""
        net = nnx.merge(graphdef, params, state, copy=True)
        train = key is not None
        logits = net(batch[0], train=train, rngs=nnx.Rngs(dropout=key) if train else None)
        return logits, nnx.split(net, nnx.Param, ...)[2]

    return model, params, rest


def _bce(z, batch):
    return optax.sigmoid_binary_cross_entropy(z, batch[1]).mean()


def _gap(z, batch):
    return penalties.sigmoid_rate_difference(z, batch[2], num_groups=2)


def _dp(z, batch):
    return metrics.demographic_parity_difference(
        (z > 0).astype(jnp.float32), batch[2], num_groups=2
    )


@pytest.mark.slow
def test_flax_dropout_batchnorm_model_trains_with_fit_and_to_a_bound():
    train, test = _data()
    model, params, rest = _flax_model(train[0].shape[1])
    key = jax.random.PRNGKey(1)

    def floats(tree):
        return [
            np.asarray(x) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)
        ]

    before = floats(rest)  # the batch-norm mean and variance
    objective = training.penalized(_bce, _gap, 1.0, model=model)
    # The same optimizer, mini-batches, keys, model state and validation data for both trainings.
    shared = dict(
        optimizer=optax.adam(0.01),
        batch_size=100,
        key=key,
        model_state=rest,
        validation_data=test,
    )
    res = training.fit(objective, params, train, num_steps=200, **shared)
    assert res.finite and res.val_loss[-1] < res.val_loss[0]
    after = floats(res.state.model_state)
    assert len(after) == len(before) == 2
    assert all(not np.allclose(a, b) for a, b in zip(after, before, strict=True))
    # Dropout is on in training (two keys, two outputs) and off in evaluation (key=None).
    p = res.state.params
    z1, _ = model(p, train, jax.random.PRNGKey(2), res.state.model_state)
    z2, _ = model(p, train, jax.random.PRNGKey(3), res.state.model_state)
    e1, _ = model(p, train, None, res.state.model_state)
    e2, _ = model(p, train, None, res.state.model_state)
    assert not np.allclose(z1, z2) and np.array_equal(e1, e2)
    unconstrained = float(_dp(e1, train))

    bound = 0.05
    con = training.fit_constrained(
        _bce,
        _gap,
        params,
        train,
        target=bound,
        multiplier_optimizer=optax.sgd(0.5),
        num_steps=400,
        model=model,
        dual_constraint_fn=_dp,
        **shared,
    )
    z, _ = model(con.params, train, None, con.state.model_state)
    assert con.train_constraint == pytest.approx(float(_dp(z, train)))
    assert con.train_constraint <= bound + 0.02 < unconstrained
