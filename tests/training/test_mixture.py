"""Tests of fairjax.training: fit_rate_constrained_mixture, best_mixture, mixture_decisions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import criteria, metrics, training

from .common import (
    _RATE_METRICS,
    _biased,
    _biased_start,
    _decisions,
    _linear,
    _lp_by_vertices,
    _p0,
    _rate_gaps_reference,
)


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


def test_best_mixture_names_bad_candidates():
    # A NaN error reached scipy ("Invalid input for linprog"), mismatched arrays NumPy's
    # "cannot reshape".
    gap = np.array([0.1, -0.05, 0.0])
    gaps = np.stack([gap, -gap], 1)
    with pytest.raises(ValueError, match=r"`candidates\['error'\]` must be finite"):
        training.best_mixture({"error": np.array([0.1, np.nan, 0.4]), "gaps": gaps}, target=0.02)
    with pytest.raises(ValueError, match="one row of gaps per classifier"):
        training.best_mixture({"error": np.array([0.1, 0.2]), "gaps": gaps}, target=0.02)


@pytest.mark.slow
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
        criterion=constraint,
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


@pytest.mark.slow
@pytest.mark.parametrize("constraint", ["demographic_parity", "equalized_odds"])
def test_rate_constrained_mixture_candidates_against_re_runs(constraint):
    # 5 candidates of 97 steps: steps floor(97 k / 5) and the last. Each candidate's error and
    # gaps are those of the iterate re-run to its step (gaps from a NumPy reference of the
    # rates), the mixture is the optimum of the linear program over them (by vertex
    # enumeration), its components are those iterates, and best_mixture re-solves it.
    train, _ = _biased(2)
    X, y, s = (np.asarray(a) for a in train)
    conditions = criteria.get(constraint).conditions
    start, target = _biased_start(), 0.03
    kw = dict(
        target=target,
        num_groups=2,
        optimizer=optax.adam(0.05),
        multiplier_optimizer=optax.sgd(0.1),
        criterion=constraint,
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


def test_mixture_decisions_of_a_nan_logit_are_nan():
    # A NaN row decides nothing: it read as a negative decision (class 0) in every metric.
    x = jnp.array([-1.0, jnp.nan, 2.0])
    params, q = jnp.array([1.0, -1.0]), jnp.array([0.75, 0.25])
    p = np.asarray(training.mixture_decisions(lambda w, z: z * w, params, q, x))
    np.testing.assert_array_equal(p, [0.25, np.nan, 0.75])
    drawn = np.asarray(
        training.mixture_decisions(lambda w, z: z * w, params, q, x, key=jax.random.key(0))
    )
    assert np.isnan(drawn[1]) and np.isin(drawn[[0, 2]], [0.0, 1.0]).all()

    def three_classes(w, z):
        return jnp.stack([z * w, -z * w, jnp.zeros_like(z)], axis=1)

    probs = np.asarray(training.mixture_decisions(three_classes, params, q, x))
    assert np.isnan(probs[1]).all() and np.isfinite(probs[[0, 2]]).all()
    # A component of probability 0 takes no part, its NaN decisions neither.
    unused = training.mixture_decisions(lambda w, z: z * w, jnp.array([1.0, jnp.nan]),
                                        jnp.array([1.0, 0.0]), jnp.array([-1.0, 2.0]))  # fmt: skip
    np.testing.assert_array_equal(unused, [0.0, 1.0])
    ids = training.mixture_decisions(three_classes, params, q, x, key=jax.random.key(0))
    assert ids.dtype == jnp.int32 and int(ids[1]) == -1 and (np.asarray(ids)[[0, 2]] >= 0).all()


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
    with pytest.raises(ValueError, match="`criterion`"):
        training.fit_rate_constrained_mixture(_linear, _p0(), train, criterion="odds", **kw)
    X, y, s = train
    with pytest.raises(ValueError, match="`data labels` must be binary"):
        training.fit_rate_constrained_mixture(_linear, _p0(), (X, 2 * y - 1, s), **kw)


@pytest.mark.slow
def test_rate_constrained_mixture_constraint_keyword_is_deprecated():
    train, _ = _biased(2)
    kw = dict(target=0.05, num_groups=2, optimizer=optax.adam(0.05), num_steps=20, num_candidates=5)
    new = training.fit_rate_constrained_mixture(
        _linear, _p0(), train, criterion="equal_opportunity", **kw
    )
    with pytest.warns(DeprecationWarning, match="criterion='equal_opportunity'"):
        old = training.fit_rate_constrained_mixture(
            _linear, _p0(), train, constraint="equal_opportunity", **kw
        )
    np.testing.assert_array_equal(old.probabilities, new.probabilities)
    np.testing.assert_array_equal(old.params["w"], new.params["w"])
    np.testing.assert_array_equal(old.candidates["gaps"], new.candidates["gaps"])


def test_best_mixture_docstring_has_no_tab_characters():
    assert "\t" not in training.best_mixture.__doc__
    assert "\\text{s.t.}" in training.best_mixture.__doc__
