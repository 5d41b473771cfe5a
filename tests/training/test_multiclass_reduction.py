"""The reduction for K classes: cost-sensitive multiclass best responses (#20 item 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import criteria, metrics, training
from fairjax.training import _rate_step

K, G = 3, 2


def _data(n=600, seed=0):
    """Three classes whose frequencies differ by group, and features that show the group."""
    rng = np.random.default_rng(seed)
    s = (rng.uniform(size=n) < 0.4).astype(np.int32)
    z = rng.normal(size=(n, 2))
    x = np.c_[z, 2 * s - 1 + 0.5 * rng.normal(size=n)].astype(np.float32)
    score = np.c_[z[:, 0], z[:, 1], -z[:, 0] - z[:, 1]]
    score += np.array([0.0, 1.5, -1.5]) * (2 * s[:, None] - 1)
    y = np.argmax(score + rng.gumbel(size=(n, 3)), axis=1).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y), jnp.asarray(s)


def _model(p, batch):
    return batch[0] @ p["w"] + p["b"]


def _p0():
    return {"w": jnp.zeros((3, K)), "b": jnp.zeros(K)}


def _gap(p, batch, criterion="demographic_parity"):
    pred = jnp.argmax(_model(p, batch), axis=1)
    return float(
        metrics.multiclass_parity_difference(
            batch[1], pred, batch[2], num_classes=K, criterion=criterion, num_groups=G
        )
    )


def _lagrangian(decisions, y, s, w, mu, crit):
    """Brute-force reference: the weighted 0-1 error plus sum mu (r_g - r_g') of class ids."""
    H = jax.nn.one_hot(decisions, K)
    error = np.sum(w * (decisions != y)) / np.sum(w)
    Y = jax.nn.one_hot(y, K)
    total = error
    for k in range(K):
        rates, counts = criteria.group_rates(
            H[:, k], s, Y[:, k], criterion=crit, num_groups=G, weights=w
        )
        gaps = np.asarray(criteria.pairwise_gaps(rates, counts))  # (C, G, G)
        total += float(np.sum(np.asarray(mu[k]) * gaps))
    return total


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demographic_parity", "equalized_odds"])
def test_decision_costs_are_the_lagrangians_differences(name):
    crit = criteria.get(name)
    rng = np.random.default_rng(1)
    n = 14
    y = jnp.asarray(rng.integers(0, K, n))
    s = jnp.asarray(np.r_[0, 1, rng.integers(0, G, n - 2)])
    w = jnp.asarray(rng.uniform(0.5, 2.0, n), jnp.float32)
    mu = jnp.asarray(rng.uniform(0, 1, (K, len(crit.conditions), G, G)), jnp.float32)
    costs = _rate_step.rate_costs((None, y, s), w, crit, G, K)
    # A pair with an empty group (no rows of class k in it, for equalized odds) is no
    # constraint: the trainer keeps its multiplier at 0.
    mu = jnp.where(costs.pairs, mu, 0)
    net = jnp.sum(mu, axis=-1) - jnp.sum(mu, axis=-2)
    got = np.asarray(_rate_step.decision_costs(costs, net, s, K))  # (K, n)
    base = rng.integers(0, K, n)
    for i in range(n):
        values = []
        for k in range(K):
            d = base.copy()
            d[i] = k
            values.append(_lagrangian(jnp.asarray(d), y, s, w, mu, crit))
        np.testing.assert_allclose(np.diff(values), np.diff(got[:, i]), atol=2e-6)


@pytest.mark.slow
def test_an_inactive_bound_is_multinomial_logistic_regression():
    data = _data()
    opt = optax.adam(0.05)
    res = training.fit_rate_constrained(
        _model, _p0(), data, target=1.0, num_groups=G, num_classes=K, optimizer=opt,
        num_steps=30,
    )  # fmt: skip
    assert float(jnp.abs(res.state.multiplier).max()) == 0

    def loss(p, _):
        z = _model(p, data)
        return optax.softmax_cross_entropy_with_integer_labels(z, data[1]).mean()

    p, state = _p0(), opt.init(_p0())
    for _ in range(30):
        g = jax.grad(loss)(p, None)
        u, state = opt.update(g, state, p)
        p = optax.apply_updates(p, u)
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(p), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_hot_labels_are_class_ids():
    x, y, s = _data(200)
    kw = dict(target=0.05, num_groups=G, num_classes=K, optimizer=optax.adam(0.05), num_steps=20)
    a = training.fit_rate_constrained(_model, _p0(), (x, y, s), **kw)
    b = training.fit_rate_constrained(_model, _p0(), (x, jax.nn.one_hot(y, K), s), **kw)
    for u, w in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_allclose(u, w, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["demographic_parity", "equal_opportunity"])
def test_every_class_meets_the_bound(name):
    train = _data()
    test = _data(seed=1)
    kw = dict(num_groups=G, num_classes=K, optimizer=optax.adam(0.05), criterion=name)
    free = training.fit_rate_constrained(_model, _p0(), train, target=1.0, num_steps=400, **kw)
    assert _gap(free.params, train, name) > 0.15
    res = training.fit_rate_constrained(
        _model, _p0(), train, target=0.03, num_steps=1500, validation_data=test, **kw
    )
    assert res.state.multiplier.shape == (K, len(criteria.get(name).conditions), G, G)
    assert res.train_constraint == pytest.approx(_gap(res.params, train, name), abs=1e-6)
    assert res.validation_constraint == pytest.approx(_gap(res.params, test, name), abs=1e-6)
    # The last iterate sits on the bound (within the oscillation of the multipliers) ...
    assert res.train_constraint <= 0.03 + 0.01
    # ... and beats the constant classifier of the most frequent class.
    constant = 1 - np.bincount(np.asarray(train[1])).max() / train[1].shape[0]
    assert res.history["error"][-1] < constant - 0.05


@pytest.mark.slow
def test_multiclass_mixture_meets_the_bound_in_expectation():
    train = _data()
    res = training.fit_rate_constrained_mixture(
        _model, _p0(), train, target=0.02, num_groups=G, num_classes=K,
        optimizer=optax.adam(0.05), num_steps=600, num_candidates=50,
    )  # fmt: skip
    assert res.candidates["gaps"].shape[1:] == (K, 1, G, G)
    P = training.mixture_decisions(_model, res.params, res.probabilities, train)
    assert P.shape == (train[0].shape[0], K)
    np.testing.assert_allclose(np.asarray(P).sum(axis=1), 1, atol=1e-5)
    expected = metrics.multiclass_parity_difference(None, P, train[2], num_classes=K, num_groups=G)
    assert float(expected) == pytest.approx(res.train_constraint, abs=1e-5)
    assert res.train_constraint <= 0.02 + 1e-6
    drawn = training.mixture_decisions(
        _model, res.params, res.probabilities, train, key=jax.random.key(0)
    )
    assert drawn.dtype == jnp.int32 and drawn.shape == (train[0].shape[0],)
    freq = np.bincount(np.asarray(drawn), minlength=K) / drawn.shape[0]
    np.testing.assert_allclose(freq, np.asarray(P).mean(axis=0), atol=0.05)


def test_multiclass_inputs_are_checked():
    x, y, s = _data(50)
    kw = dict(target=0.05, num_groups=G, optimizer=optax.adam(0.05), num_steps=2)
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\)"):
        training.fit_rate_constrained(_model, _p0(), (x, y + 1, s), num_classes=K, **kw)
    with pytest.raises(ValueError, match="num_classes = 3 columns"):
        training.fit_rate_constrained(_model, _p0(), (x, jnp.ones((50, 2)), s), num_classes=K,
                                      **kw)  # fmt: skip
    with pytest.raises(ValueError, match="exactly one 1"):
        training.fit_rate_constrained(_model, _p0(), (x, jnp.ones((50, 3)), s), num_classes=K,
                                      **kw)  # fmt: skip
    with pytest.raises(ValueError, match=r"logits of shape \(50, 3\)"):
        training.fit_rate_constrained(
            lambda p, b: b[0] @ p["w"][:, 0], _p0(), (x, y, s), num_classes=K, **kw
        )
    with pytest.raises(ValueError, match="num_classes"):
        training.fit_rate_constrained(_model, _p0(), (x, y, s), num_classes=1, **kw)
