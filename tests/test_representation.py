"""Tests of fairjax.representation on tiny synthetic multi-task data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import metrics, penalties
from fairjax import representation as rep


def _data(n=160, seed=0):
    """Two tasks; feature 0 is the group (a direct proxy), features 1-2 carry the tasks."""
    rng = np.random.default_rng(seed)
    s = (rng.uniform(size=n) < 0.5).astype(np.int32)
    z = rng.normal(size=(n, 2))
    x = np.c_[2.0 * s + 0.3 * rng.normal(size=n), z, rng.normal(size=n)].astype(np.float32)
    y1 = (z[:, 0] + 1.5 * s + 0.3 * rng.normal(size=n) > 0.7).astype(np.int32)
    y2 = (z[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int32)
    y3 = (z[:, 0] + z[:, 1] + 1.0 * s > 0.5).astype(np.int32)  # the new task of transfer
    return x, np.c_[y1, y2], y3, s


@pytest.mark.slow
def test_objective_matches_a_manual_computation():
    x, y, _, s = _data(40)
    mask = np.ones_like(y, np.float32)
    mask[::3, 1] = 0  # task 1 unlabelled on a third of the rows
    batch = rep.multitask_batch(x, y, s, num_groups=2, task_mask=mask)
    params = rep.init_params(rep.init_mlp(jax.random.key(0), (4, 5, 3)), rep_dim=3, num_tasks=2)
    params = params._replace(weights=jnp.full((3, 2), 0.3), bias=jnp.array([0.1, -0.2]))
    h = rep.mlp(params.representation, x)
    z = np.asarray(h @ params.weights + params.bias, np.float64)
    ll = np.log1p(np.exp(-z)) * y + np.log1p(np.exp(z)) * (1 - y)
    task = np.mean([np.sum(ll[:, t] * mask[:, t]) / mask[:, t].sum() for t in range(2)])
    l2, lam = 0.1, 2.0
    ref = task + 0.5 * l2 * 0.3**2 * 6 + lam * float(penalties.mmd(h, s, num_groups=2))
    obj = rep.multitask_objective(rep.mlp, num_groups=2, lam=lam, l2=l2)
    np.testing.assert_allclose(obj(params, batch), ref, rtol=1e-5)
    # An unlabelled pair may hold a NaN label: it is not read (it was multiplied by 0: NaN).
    y_nan = np.where(mask > 0, y, np.nan)
    nan_batch = rep.multitask_batch(x, y_nan, s, num_groups=2, task_mask=mask)
    np.testing.assert_allclose(obj(params, nan_batch), ref, rtol=1e-5)
    grads = jax.grad(obj)(params, nan_batch)  # and the gradient is finite (0 * NaN was NaN)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    # A custom penalty function and a named one with options
    custom = rep.multitask_objective(
        rep.mlp,
        num_groups=2,
        lam=lam,
        l2=l2,
        penalty=lambda h, g, *, num_groups, weights: jnp.ones(()),
    )
    np.testing.assert_allclose(custom(params, batch), task + 0.5 * l2 * 0.54 + lam, rtol=1e-5)


@pytest.mark.slow
def test_penalty_reduces_group_discrepancy_and_transfer_gap():
    x, y, y3, s = _data(160)
    batch = rep.multitask_batch(x, y, s, num_groups=2)
    init = rep.init_params(rep.init_mlp(jax.random.key(1), (4, 8, 4)), rep_dim=4, num_tasks=2)
    results = {}
    for lam in (0.0, 5.0):
        obj = rep.multitask_objective(rep.mlp, num_groups=2, lam=lam, l2=1e-3)
        res = rep.train(obj, init, batch, optimizer=optax.adam(0.02), num_steps=150)
        assert res.losses.shape == (150,)
        assert float(res.losses[-1]) < float(res.losses[0])
        h = rep.mlp(res.params.representation, x)
        tr = rep.transfer(
            rep.mlp, res.params.representation, (x, y3, s), (x, y3, s), num_groups=2, num_steps=150
        )
        results[lam] = (float(penalties.mmd(h, s, num_groups=2)), tr)
    (d0, t0), (d1, t1) = results[0.0], results[5.0]
    assert d1 < 0.5 * d0
    assert float(t1.dp_difference) < float(t0.dp_difference)


def test_transfer_measures_with_fairjax_metrics():
    x, _, y3, s = _data(120, seed=2)
    res = rep.transfer(lambda p, z: z * p, 1.0, (x, y3, s), (x, y3, s), num_groups=2)
    pred = (x @ res.weights + res.bias > 0).astype(np.int32)
    np.testing.assert_allclose(res.accuracy, np.mean(pred == y3))
    np.testing.assert_allclose(
        res.dp_difference, metrics.demographic_parity_difference(pred, s, num_groups=2)
    )
    np.testing.assert_allclose(
        res.eo_difference, metrics.equal_opportunity_difference(y3, pred, s, num_groups=2)
    )
    assert float(res.accuracy) > 0.85


def test_transfer_refuses_nan_rows_and_a_nan_representation_measures_nan():
    x, _, y3, s = _data(60, seed=2)
    xn = x.copy()
    xn[0, 1] = np.nan
    for train, test in (((xn, y3, s), (x, y3, s)), ((x, y3, s), (xn, y3, s))):
        with pytest.raises(ValueError, match="`x` must be finite"):
            rep.transfer(lambda p, z: z, None, train, test, num_groups=2)
    with pytest.raises(ValueError, match="`y` must be binary"):
        rep.transfer(lambda p, z: z, None, (x, y3, s), (x, y3 + 1, s), num_groups=2)
    # A representation gone NaN: every head decision would read negative and the gaps 0.
    res = rep.transfer(lambda p, z: z * p, jnp.nan, (x, y3, s), (x, y3, s), num_groups=2)
    assert np.isnan([res.accuracy, res.dp_difference, res.eo_difference]).all()


@pytest.mark.slow
def test_minibatch_training_runs_with_penalty_options():
    x, y, _, s = _data(64)
    batch = rep.multitask_batch(x, y, s, num_groups=2)
    init = rep.init_params(rep.init_mlp(jax.random.key(2), (4, 3)), rep_dim=3, num_tasks=2)
    obj = rep.multitask_objective(
        rep.mlp,
        num_groups=2,
        lam=1.0,
        penalty_kwargs={"estimator": "unbiased", "reference": "pairwise"},
    )
    res = rep.train(
        obj,
        init,
        batch,
        optimizer=optax.adam(0.01),
        num_steps=5,
        batch_size=32,
        key=jax.random.key(3),
    )
    assert np.all(np.isfinite(np.asarray(res.losses)))
    # The named penalties are the library's (Sinkhorn's own tests live in its test file).
    assert rep._PENALTIES == {"mmd": penalties.mmd, "sinkhorn": penalties.sinkhorn}


@pytest.mark.slow
def test_a_stateful_objective_gets_a_key_per_step_and_carries_its_state():
    x, y, _, s = _data(64)
    batch = rep.multitask_batch(x, y, s, num_groups=2)
    init = rep.init_params(rep.init_mlp(jax.random.key(2), (4, 3)), rep_dim=3, num_tasks=2)
    plain = rep.multitask_objective(rep.mlp, num_groups=2, lam=1.0)

    def objective(params, b, key, state):  # input dropout; the state counts the steps
        keep = jax.random.bernoulli(key, 0.9, b.x.shape)
        dropped = b._replace(x=jnp.where(keep, b.x / 0.9, 0))
        return plain(params, dropped), {"steps": state["steps"] + 1}

    kw = dict(optimizer=optax.adam(0.01), num_steps=6, batch_size=32)
    state = {"steps": jnp.asarray(0)}
    res = rep.train(objective, init, batch, key=jax.random.key(3), model_state=state, **kw)
    assert int(res.model_state["steps"]) == 6 and res.finite
    other = rep.train(objective, init, batch, key=jax.random.key(4), model_state=state, **kw)
    assert not np.allclose(res.losses, other.losses)
    # Without model_state the result has none.
    stateless = rep.train(plain, init, batch, key=jax.random.key(3), **kw)
    assert stateless.model_state is None
    with pytest.raises(ValueError, match="`key` is required with `model_state`"):
        rep.train(objective, init, batch, model_state=state, optimizer=optax.adam(0.01),
                  num_steps=2)  # fmt: skip


def test_bad_inputs():
    x, y, _, s = _data(20)
    with pytest.raises(ValueError, match="`penalty` must be"):
        rep.multitask_objective(rep.mlp, num_groups=2, penalty="wasserstein")
    with pytest.raises(ValueError, match="`lam` must be >= 0"):
        rep.multitask_objective(rep.mlp, num_groups=2, lam=-1.0)
    with pytest.raises(ValueError, match="`task_mask` must have the shape"):
        rep.multitask_batch(x, y, s, num_groups=2, task_mask=np.ones((20, 3)))
    with pytest.raises(ValueError, match="`y` must be binary"):
        rep.multitask_batch(x, y + 1, s, num_groups=2)
    for bad in (-np.ones(y.shape), np.full(y.shape, np.nan)):
        with pytest.raises(ValueError, match="`task_mask` must be binary"):
            rep.multitask_batch(x, y, s, num_groups=2, task_mask=bad)
    with pytest.raises(ValueError, match="`y` must be binary"):  # a NaN label where labelled
        rep.multitask_batch(x, np.where(y > 0, np.nan, y), s, num_groups=2)
    with pytest.raises(ValueError, match="`sizes`"):
        rep.init_mlp(jax.random.key(0), (3,))
    batch = rep.multitask_batch(x, y, s, num_groups=2)
    obj = rep.multitask_objective(rep.mlp, num_groups=2)
    with pytest.raises(ValueError, match="`key` is required"):
        rep.train(obj, None, batch, optimizer=optax.sgd(0.1), num_steps=1, batch_size=4)
    with pytest.raises(TypeError, match="MultiTaskBatch"):
        rep.train(obj, None, (x, y), optimizer=optax.sgd(0.1), num_steps=1)
