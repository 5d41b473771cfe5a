"""Tests of fairjax.training: fit_rate_constrained (the reduction to cost-sensitive steps)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import metrics, training

from .common import (
    _RATE_METRICS,
    _biased,
    _biased_start,
    _decisions,
    _expected_best,
    _linear,
    _p0,
    _rate_gaps_reference,
    _rate_step_reference,
)


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


@pytest.mark.slow
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
        criterion=constraint,
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


@pytest.mark.slow
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
            criterion=constraint,
        )
        want = training.fit_rate_constrained(_linear, p0, repeated, **kw)
        got = training.fit_rate_constrained(_linear, p0, train, weights=counts, **kw)
    assert want.history["constraint"].max() > 0.15  # the bound binds: multipliers move
    assert np.abs(want.state.multiplier).max() > 0
    np.testing.assert_allclose(got.history["constraint"], want.history["constraint"], atol=1e-12)
    np.testing.assert_allclose(got.state.multiplier, want.state.multiplier, atol=1e-10)
    np.testing.assert_allclose(got.params["w"], want.params["w"], atol=1e-9)
    np.testing.assert_allclose(got.params["b"], want.params["b"], atol=1e-9)


@pytest.mark.parametrize(
    "constraint",
    ["demographic_parity", "equal_opportunity", "false_positive_parity", "equalized_odds"],
)
def test_rate_constrained_steps_against_a_reference(constraint):
    # Two SGD steps with weights, against NumPy: step 1 sets the multipliers from the gaps of
    # the start, step 2's gradient gives each row the multipliers of its own condition (for
    # equalized odds: the true-positive-rate ones to positive labels, the false-positive-rate
    # ones to negative labels), and the second multiplier step uses the gaps of step 1.
    conditions = {
        "demographic_parity": (None,),
        "equal_opportunity": (1,),
        "false_positive_parity": (0,),
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
        criterion=constraint,
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


@pytest.mark.slow
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
        criterion=constraint,
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    with pytest.raises(ValueError, match="`criterion`"):
        training.fit_rate_constrained(_linear, _p0(), train, target=0.1, criterion="odds", **kw)
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


@pytest.mark.slow
def test_rate_constrained_false_positive_parity_bounds_the_false_positive_rates():
    # The rates of negative labels only: the reported gaps are those of a NumPy reference of
    # the false-positive rates of the iterates' decisions, and the bound is reached.
    train, test = _biased(3)
    X, y, s = (np.asarray(a) for a in train)
    kw = dict(
        num_groups=3, optimizer=optax.adam(0.05), num_steps=300, criterion="false_positive_parity"
    )
    res = training.fit_rate_constrained(
        _linear, _biased_start(), train, target=0.05, validation_data=test, **kw
    )
    assert res.state.multiplier.shape == (3, 3)

    def fpr_gap(params, X, y, s):
        pred = _decisions(params, X)
        rates = [pred[(s == g) & (y == 0)].mean() for g in range(3)]
        return max(rates) - min(rates)

    assert res.train_constraint == pytest.approx(fpr_gap(res.params, X, y, s), abs=1e-6)
    Xt, yt, st = (np.asarray(a) for a in test)
    assert res.validation_constraint == pytest.approx(fpr_gap(res.params, Xt, yt, st), abs=1e-6)
    start = _biased_start()
    assert res.history["constraint"][0] == pytest.approx(fpr_gap(start, X, y, s), abs=1e-6)
    free = training.fit_rate_constrained(_linear, start, train, target=1.0, **kw)
    assert free.train_constraint > 0.1  # the bound is active
    assert res.train_constraint <= 0.05 + 0.015


def test_rate_constrained_constraint_keyword_is_deprecated():
    train, _ = _biased(2)
    kw = dict(target=0.05, num_groups=2, optimizer=optax.adam(0.05), num_steps=20)
    new = training.fit_rate_constrained(_linear, _p0(), train, criterion="equalized_odds", **kw)
    with pytest.warns(DeprecationWarning, match="criterion='equalized_odds'"):
        old = training.fit_rate_constrained(
            _linear, _p0(), train, constraint="equalized_odds", **kw
        )
    for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="give the criterion once"):
        training.fit_rate_constrained(
            _linear, _p0(), train, criterion="equalized_odds", constraint="equalized_odds", **kw
        )
    # An unknown value is refused before any deprecation warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="`constraint` must be one of"):
            training.fit_rate_constrained(_linear, _p0(), train, constraint="odds", **kw)


@pytest.mark.parametrize(
    ("complement", "same"),
    [
        ("false_negative_rate_parity", "equal_opportunity"),
        ("true_negative_rate_parity", "false_positive_parity"),
    ],
)
def test_rate_constrained_fnr_and_tnr_parity_train_as_their_complements(complement, same):
    # FNR = 1 - TPR and TNR = 1 - FPR: the same pairwise gaps, so the same training; the
    # reported gap is the complement criterion's metric of the returned model.
    train, _ = _biased(2)
    kwargs = dict(target=0.05, num_groups=2, optimizer=optax.adam(0.05), num_steps=50)
    a = training.fit_rate_constrained(
        _linear, _biased_start(), train, criterion=complement, **kwargs
    )
    b = training.fit_rate_constrained(_linear, _biased_start(), train, criterion=same, **kwargs)
    np.testing.assert_array_equal(a.params["w"], b.params["w"])
    X, y, s = train
    gap = metrics.criterion_difference(
        y, _decisions(a.params, np.asarray(X)), s, criterion=complement, num_groups=2
    )
    assert a.train_constraint == pytest.approx(float(gap), abs=1e-6)


def test_rate_constrained_rejects_a_ratio_criterion():
    train, _ = _biased(2)
    with pytest.raises(ValueError, match="fractional_rate_difference"):
        training.fit_rate_constrained(
            _linear,
            _biased_start(),
            train,
            target=0.05,
            num_groups=2,
            optimizer=optax.adam(0.05),
            num_steps=5,
            criterion="predictive_parity",
        )


def test_rate_constrained_warns_when_every_row_is_of_one_group():
    # Every gap of one group is 0: a bound met that way constrains nothing, and says so.
    X, y, s = _biased(2)[0]
    one = (X, y, jnp.zeros_like(s))
    opts = dict(target=0.01, num_groups=2, optimizer=optax.adam(0.05), num_steps=5)
    for trainer in (training.fit_rate_constrained, training.fit_rate_constrained_mixture):
        with pytest.warns(UserWarning, match="training rows belong to 1 group"):
            res = trainer(_linear, _p0(), one, **opts)
        assert res.satisfied and res.train_constraint == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        training.fit_rate_constrained(_linear, _p0(), (X, y, s), **opts)
