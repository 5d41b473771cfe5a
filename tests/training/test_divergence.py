"""Divergence is never reported as success (issue 18, item 3).

One convention for every trainer: a result whose parameters or final loss/constraint are not
finite warns :class:`fairjax.training.DivergenceWarning` (a ``RuntimeWarning``) naming the
trainer; results with a ``finite`` field set it to False, and ``satisfied`` is then False.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import ferm, metrics, penalties, representation, training
from fairjax.training import DivergenceWarning

N = 40


def _data(nan: bool):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3)).astype(np.float32)
    s = np.arange(N) % 2
    y = ((X[:, 0] + s) > 0.5).astype(np.float32)
    if nan:
        X[5, 1] = np.nan  # one NaN: under jit no validation sees it
    return jnp.asarray(X), jnp.asarray(y), jnp.asarray(s)


def _p0():
    return {"w": jnp.zeros(3), "b": jnp.zeros(())}


def _logits(p, X):
    return X @ p["w"] + p["b"]


def _loss(p, b):
    return optax.sigmoid_binary_cross_entropy(_logits(p, b[0]), b[1]).mean()


def _gap(p, b):
    return penalties.sigmoid_rate_difference(_logits(p, b[0]), b[2], num_groups=2)


def _exact_gap(p, b):  # the gap of the hard decisions: a NaN model decides 0 everywhere
    return metrics.demographic_parity_difference((_logits(p, b[0]) > 0) * 1.0, b[2], num_groups=2)


def _linear(p, b):
    return _logits(p, b[0])


OPT = optax.sgd(0.1)


def _fit(d):
    return training.fit(lambda p, b: _loss(p, b) + _gap(p, b), _p0(), d, optimizer=OPT,
                        num_epochs=3)  # fmt: skip


def _fit_early(d):
    return training.fit(_loss, _p0(), d, optimizer=OPT, num_epochs=3, patience=1)


def _fit_constrained(d):
    return training.fit_constrained(_loss, _gap, _p0(), d, target=0.05, optimizer=OPT,
                                    num_steps=5)  # fmt: skip


def _fit_constrained_exact(d):
    return training.fit_constrained(_loss, _gap, _p0(), d, target=0.05, optimizer=OPT,
                                    num_steps=5, dual_constraint_fn=_exact_gap)  # fmt: skip


def _fit_rate(d):
    return training.fit_rate_constrained(_linear, _p0(), d, target=0.05, num_groups=2,
                                         optimizer=OPT, num_steps=5)  # fmt: skip


def _fit_mixture(d):
    return training.fit_rate_constrained_mixture(
        _linear, _p0(), d, target=0.05, num_groups=2, optimizer=OPT, num_steps=5,
        num_candidates=3)  # fmt: skip


def _pareto(d):
    return training.pareto_sweep(_loss, _gap, _p0(), d, jnp.array([0.0, 1.0]), optimizer=OPT,
                                 num_steps=5)  # fmt: skip


def _constrained_sweep(d):
    return training.constrained_sweep(_loss, _gap, _p0(), d, jnp.array([0.05, 0.1]),
                                      optimizer=OPT, num_steps=5)  # fmt: skip


def _representation(d):
    X, y, s = d
    batch = representation.MultiTaskBatch(X, y[:, None], s, jnp.ones((N, 1)), jnp.ones(N))
    obj = representation.multitask_objective(representation.mlp, num_groups=2, lam=1.0)
    net = representation.init_mlp(jax.random.key(0), (3, 4))
    init = representation.init_params(net, rep_dim=4, num_tasks=1)
    return representation.train(obj, init, batch, optimizer=OPT, num_steps=3)


TRAINERS = {
    "fit": _fit,
    "fit_early_stopping": _fit_early,
    "fit_constrained": _fit_constrained,
    "fit_constrained_exact_dual": _fit_constrained_exact,
    "fit_rate_constrained": _fit_rate,
    "fit_rate_constrained_mixture": _fit_mixture,
    "pareto_sweep": _pareto,
    "constrained_sweep": _constrained_sweep,
    "representation.train": _representation,
}


@pytest.mark.parametrize("name", list(TRAINERS))
def test_nan_in_the_data_is_reported_as_divergence(name):
    with pytest.warns(DivergenceWarning, match="training diverged"):
        res = TRAINERS[name](_data(nan=True))
    assert not np.all(res.finite)
    if hasattr(res, "satisfied"):
        assert res.satisfied is False


@pytest.mark.parametrize("name", list(TRAINERS))
def test_finite_training_is_not_flagged(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        res = TRAINERS[name](_data(nan=False))
    assert np.all(res.finite)


def test_a_sweep_names_the_models_that_diverged():
    X, y, s = _data(nan=False)
    # lam = 1e38 overflows the penalised objective of the second model only.
    with pytest.warns(DivergenceWarning, match=r"models \[1\]"):
        res = training.pareto_sweep(_loss, lambda p, b: jnp.sum(p["w"] ** 2) * 1e30, _p0(),
                                    (X, y, s), jnp.array([0.0, 1e38]), optimizer=optax.sgd(1.0),
                                    num_steps=5)  # fmt: skip
    assert res.finite.tolist() == [True, False]


def test_ferm_fit_linear_warns_on_divergence():
    X, y, s = _data(nan=False)
    with pytest.warns(DivergenceWarning, match="ferm.fit_linear"):
        ferm.fit_linear(X * 1e18, y, s, num_groups=2, learning_rate=1e30, num_steps=20)


def test_estimator_warns_on_divergence():
    pytest.importorskip("sklearn")
    from fairjax.sklearn import FairLogisticRegression

    X, y, s = _data(nan=False)
    est = FairLogisticRegression(learning_rate=3e38, max_iter=20)  # Adam: steps of ~3e38
    with pytest.warns(DivergenceWarning, match="FairLogisticRegression"):
        est.fit(np.asarray(X), np.asarray(y), sensitive_features=np.asarray(s))


def test_divergence_warning_is_a_filterable_runtime_warning():
    assert issubclass(DivergenceWarning, RuntimeWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        with pytest.raises(DivergenceWarning):
            _fit_constrained(_data(nan=True))


def test_a_jitted_sweep_traces_the_divergence_check():
    # A trainer called inside the user's jit: the check is a traced boolean (no warning).
    X = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
    y = (X[:, 0] > 0).astype(jnp.float32)
    s = (X[:, 1] > 0).astype(jnp.int32)

    def loss(p, b):
        return jnp.mean((b[0] @ p - b[1]) ** 2)

    def pen(p, b):
        return jnp.sum(p**2)

    def sweep(lams):
        return training.pareto_sweep(
            loss, pen, jnp.zeros(3), (X, y, s), lams, optimizer=optax.sgd(0.1), num_steps=5
        )

    out = jax.jit(sweep)(jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(out.finite), [True, True])
    bad = jax.jit(sweep)(jnp.array([0.0, jnp.nan]))
    np.testing.assert_array_equal(np.asarray(bad.finite), [True, False])


@pytest.mark.parametrize("iterate", ["last", "best"])
def test_diverged_results_report_nan_constraints_and_are_never_satisfied(iterate):
    # Hard decisions of NaN logits decide nothing (NaN > 0 is False), so their gap reads 0:
    # a diverged result reports its constraints as NaN, whichever iterate it returns (the
    # best feasible iterate was the zero start, "satisfied", before).
    d = _data(nan=True)
    kwargs = dict(optimizer=OPT, num_steps=5, iterate=iterate)
    with pytest.warns(DivergenceWarning):
        rate = training.fit_rate_constrained(_linear, _p0(), d, target=0.05, num_groups=2, **kwargs)
    with pytest.warns(DivergenceWarning):
        exact = training.fit_constrained(
            _loss, _gap, _p0(), d, target=0.05, dual_constraint_fn=_exact_gap, **kwargs
        )
    with pytest.warns(DivergenceWarning):
        sweep = training.constrained_sweep(
            _loss, _gap, _p0(), d, jnp.array([0.05, 0.1]), dual_constraint_fn=_exact_gap, **kwargs
        )
    for res in (rate, exact):
        assert res.satisfied is False and res.finite is False
        assert np.isnan(res.train_constraint)
    assert np.isnan(np.asarray(sweep.constraint)).all() and not np.any(sweep.finite)
