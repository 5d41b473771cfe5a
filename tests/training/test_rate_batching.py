"""Mini-batches, streams of batches, per-step keys and model state in the reduction trainers
(fit_rate_constrained and its mixture; #24 items 7-8, #22 item 4)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import metrics, training

from .common import _data, _logits, _minibatches, _p0
from .test_stateful import _flax_model

KEY = jax.random.PRNGKey(3)
OPT = optax.adam(0.05)
MOPT = optax.sgd(0.01)  # the reduction's default rate (docs/training.md)


def _model(p, batch):
    return _logits(p, batch[0])


def _dp(params, batch, model=_model):
    pred = (model(params, batch) > 0).astype(jnp.float32)
    return float(metrics.demographic_parity_difference(pred, batch[2], num_groups=2))


def _close(a, b, tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def _fit(data, **kw):
    kw = {"target": 0.02, "num_groups": 2, "optimizer": OPT, "multiplier_optimizer": MOPT} | kw
    return training.fit_rate_constrained(_model, _p0(), data, **kw)


@pytest.mark.slow
def test_one_mini_batch_of_all_rows_is_the_full_batch():
    train, _ = _data()
    n = train[0].shape[0]
    full = _fit(train, num_steps=40)
    mini = _fit(train, num_steps=40, batch_size=n, key=KEY)
    _close(full.params, mini.params, 1e-4)
    _close(full.state.multiplier, mini.state.multiplier, 1e-5)
    assert mini.train_constraint == pytest.approx(full.train_constraint, abs=1e-6)


def test_a_stream_of_the_full_batch_is_the_full_batch():
    train, test = _data()
    arrays = _fit(train, num_steps=30, validation_data=test)
    stream = _fit((train for _ in range(30)), num_steps=100, validation_data=test)
    _close(arrays.params, stream.params, 1e-5)
    np.testing.assert_allclose(stream.history["constraint"], arrays.history["constraint"])
    assert stream.selected_step == 30 and np.isnan(stream.train_constraint)
    assert stream.validation_constraint == pytest.approx(arrays.validation_constraint)
    # Measured on constraint_data (here the same rows), the ascent is the same.
    measured = _fit(iter([train] * 30), constraint_data=train, eval_every=1)
    _close(arrays.params, measured.params, 1e-5)
    assert measured.train_constraint == pytest.approx(arrays.train_constraint)
    np.testing.assert_array_equal(measured.history["eval_step"], np.arange(31))


@pytest.mark.slow
def test_minibatches_shuffle_the_rows_and_measure_the_result_on_all_of_them():
    train, test = _data()
    res = _fit(train, num_steps=50, batch_size=64, key=KEY, validation_data=test)
    assert res.history["constraint"].shape == (50,)
    assert res.train_constraint == pytest.approx(_dp(res.params, train), abs=1e-6)
    assert res.validation_constraint == pytest.approx(_dp(res.params, test), abs=1e-6)
    again = _fit(train, num_steps=50, batch_size=64, key=KEY)
    _close(res.params, again.params, 0)
    other = _fit(train, num_steps=50, batch_size=64, key=jax.random.PRNGKey(4))
    assert not np.allclose(np.asarray(res.params["w"]), np.asarray(other.params["w"]))


@pytest.mark.slow
def test_minibatch_and_stream_training_meet_the_bound_on_the_full_data():
    train, _ = _data()
    free = _fit(train, target=1.0, num_steps=300)
    assert free.train_constraint > 0.1  # the bound below binds
    mini = _fit(train, num_steps=600, batch_size=100, key=KEY)
    assert mini.train_constraint == pytest.approx(_dp(mini.params, train), abs=1e-6)
    assert mini.train_constraint <= 0.05
    stream = _fit(_minibatches(train, 100, 600), constraint_data=train, eval_every=5, num_steps=600)
    assert stream.selected_step == 600
    np.testing.assert_array_equal(stream.history["eval_step"], np.arange(0, 601, 5))
    assert stream.train_constraint == pytest.approx(_dp(stream.params, train), abs=1e-6)
    assert stream.history["eval_constraint"][-1] == pytest.approx(stream.train_constraint)
    assert stream.train_constraint <= 0.05


def _mixture(data, **kw):
    kw = {"target": 0.03, "num_groups": 2, "optimizer": OPT, "num_candidates": 10} | kw
    return training.fit_rate_constrained_mixture(_model, _p0(), data, **kw)


@pytest.mark.slow
def test_mixture_on_a_stream_or_mini_batches_measures_its_candidates_on_the_full_data():
    train, _ = _data()
    arrays = _mixture(train, num_steps=40)
    stream = _mixture(iter([train] * 40), num_steps=40, constraint_data=train, eval_every=1)
    np.testing.assert_array_equal(arrays.candidates["steps"], stream.candidates["steps"])
    for name in ("error", "gaps"):
        np.testing.assert_allclose(arrays.candidates[name], stream.candidates[name], atol=1e-6)
    np.testing.assert_allclose(arrays.probabilities, stream.probabilities, atol=1e-6)
    mini = _mixture(train, num_steps=40, batch_size=50, key=KEY)
    # The candidates' gaps are those of their parameters on all the rows.
    last = jax.tree.map(lambda a: a[-1], mini.params)
    if mini.steps[-1] == 40:
        assert mini.candidates["constraint"][-1] == pytest.approx(_dp(last, train), abs=1e-6)
    p = training.mixture_decisions(_model, mini.params, mini.probabilities, train)
    expected = metrics.demographic_parity_difference(p, train[2], num_groups=2)
    assert float(expected) == pytest.approx(mini.train_constraint, abs=1e-5)
    assert mini.model_state is None


def test_stream_and_minibatch_options_are_checked():
    train, _ = _data()
    with pytest.raises(ValueError, match="`key` is required with `batch_size`"):
        _fit(train, batch_size=10)
    with pytest.raises(ValueError, match="`key` is required with `model_state`"):
        _fit(train, model_state={})
    with pytest.raises(ValueError, match="`batch_size`"):
        _fit(train, batch_size=10_000, key=KEY)
    with pytest.raises(ValueError, match="neither `batch_size`, `weights`"):
        _fit(iter([train]), weights=jnp.ones(3))
    with pytest.raises(ValueError, match="iterate='best'"):
        _fit(iter([train]), iterate="best")
    with pytest.raises(ValueError, match="empty stream"):
        _fit(iter([]))
    with pytest.raises(ValueError, match="batch 1 of data"):
        _fit(iter([train, (train[0], train[1] + 2, train[2])]))
    with pytest.raises(ValueError, match="needs `constraint_data`"):
        _mixture(iter([train]))
    # On arrays, constraint_data would be ignored: it is refused, for every rate trainer.
    for trainer in (_fit, _mixture):
        with pytest.raises(ValueError, match="`constraint_data` is for a stream"):
            trainer(train, constraint_data=train)


@pytest.mark.slow
def test_flax_dropout_batchnorm_model_trains_to_a_bound_by_reduction_and_mixture():
    train, test = _data()
    model, params, rest = _flax_model(train[0].shape[1])

    def logits(p, batch, key, state):
        return model(p, batch, key, state)

    def evaluated(p, state, batch):
        return model(p, batch, None, state)[0]

    kw = dict(
        num_groups=2,
        optimizer=optax.adam(0.01),
        batch_size=100,
        key=jax.random.PRNGKey(1),
        model_state=rest,
        validation_data=test,
    )
    free = training.fit_rate_constrained(logits, params, train, target=1.0, num_steps=200, **kw)
    z = evaluated(free.params, free.state.model_state, train)
    unconstrained = float(metrics.demographic_parity_difference(z > 0, train[2], num_groups=2))
    assert free.train_constraint == pytest.approx(unconstrained, abs=1e-6)
    bound = 0.05
    res = training.fit_rate_constrained(
        logits,
        params,
        train,
        target=bound,
        num_steps=600,
        multiplier_optimizer=optax.sgd(0.01),
        **kw,
    )

    def floats(tree):  # the batch-norm statistics (the state also holds PRNG keys)
        leaves = jax.tree.leaves(tree)
        return [np.asarray(x) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)]

    before, after = floats(rest), floats(res.state.model_state)
    assert len(before) == 2
    assert all(not np.allclose(a, b) for a, b in zip(after, before, strict=True))
    z = evaluated(res.params, res.state.model_state, train)
    gap = float(metrics.demographic_parity_difference(z > 0, train[2], num_groups=2))
    assert res.train_constraint == pytest.approx(gap, abs=1e-6)
    assert res.train_constraint <= bound + 0.02 < unconstrained

    mix = training.fit_rate_constrained_mixture(
        logits, params, train, target=bound, num_steps=600, num_candidates=20, **kw
    )
    assert jax.tree.leaves(mix.model_state)[0].shape[0] == mix.probabilities.shape[0]
    p = training.mixture_decisions(
        logits, mix.params, mix.probabilities, train, model_state=mix.model_state
    )
    expected = float(metrics.demographic_parity_difference(p, train[2], num_groups=2))
    assert expected == pytest.approx(mix.train_constraint, abs=1e-5)
    assert mix.train_constraint <= bound + 1e-6
