"""Tests of fairjax.metrics against fairlearn, scipy and hand-worked cases."""

import functools

import fairlearn.metrics as flm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from fairjax import metrics as fm


def random_case(num_groups, n=400, seed=0, proba=False):
    rng = np.random.default_rng(seed + 10 * num_groups)
    groups = rng.integers(0, num_groups, n)
    y_true = rng.integers(0, 2, n)
    # Group-dependent prediction rates, so the gaps are not all near zero.
    p = 0.2 + 0.6 * groups / max(num_groups - 1, 1)
    y_pred = (rng.uniform(size=n) < p).astype(int)
    weights = rng.uniform(0.1, 3.0, n)
    return y_true, y_pred, groups, weights


FAIRLEARN_PAIRS = [
    (fm.equal_opportunity_difference, flm.equal_opportunity_difference, True),
    (fm.equalized_odds_difference, flm.equalized_odds_difference, True),
    (fm.demographic_parity_difference, flm.demographic_parity_difference, False),
    (fm.demographic_parity_ratio, flm.demographic_parity_ratio, False),
]


@pytest.mark.parametrize("num_groups", [2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("ours", "theirs", "needs_labels"), FAIRLEARN_PAIRS)
def test_matches_fairlearn(num_groups, weighted, ours, theirs, needs_labels):
    y_true, y_pred, groups, weights = random_case(num_groups, seed=int(weighted))
    w = weights if weighted else None
    want = theirs(y_true, y_pred, sensitive_features=groups, sample_weight=w)
    args = (y_true, y_pred, groups) if needs_labels else (y_pred, groups)
    got = ours(*args, num_groups=num_groups, weights=w)
    assert abs(float(got) - want) < 1e-6
    jitted = jax.jit(functools.partial(ours, num_groups=num_groups))(*args, weights=w)
    assert abs(float(jitted) - float(got)) < 1e-7


def test_equalized_odds_mean_matches_fairlearn():
    y_true, y_pred, groups, weights = random_case(3, seed=4)
    want = flm.equalized_odds_difference(
        y_true, y_pred, sensitive_features=groups, sample_weight=weights, agg="mean"
    )
    got = fm.equalized_odds_difference(
        y_true, y_pred, groups, num_groups=3, weights=weights, agg="mean"
    )
    assert abs(float(got) - want) < 1e-6


def test_by_group_matches_fairlearn_metricframe():
    y_true, y_pred, groups, weights = random_case(3, seed=5)
    frame = flm.MetricFrame(
        metrics={
            "accuracy": lambda t, p, sample_weight: np.average(t == p, weights=sample_weight),
            "selection_rate": flm.selection_rate,
            "tpr": flm.true_positive_rate,
            "fpr": flm.false_positive_rate,
            "count": lambda t, p, sample_weight: np.sum(sample_weight),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
        sample_params={
            k: {"sample_weight": weights}
            for k in ["accuracy", "selection_rate", "tpr", "fpr", "count"]
        },
    )
    table = fm.by_group(y_true, y_pred, groups, num_groups=3, weights=weights)
    for name in ["accuracy", "selection_rate", "tpr", "fpr", "count"]:
        np.testing.assert_allclose(table[name], frame.by_group[name].to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(table["rmse"], np.sqrt(1 - table["accuracy"]), rtol=1e-5)


def test_by_group_regression():
    rng = np.random.default_rng(6)
    groups = rng.integers(0, 2, 100)
    y_true = rng.normal(size=100)
    y_pred = y_true + rng.normal(size=100) + groups
    table = fm.by_group(y_true, y_pred, groups, num_groups=2, task="regression")
    for g in range(2):
        err = (y_pred - y_true)[groups == g]
        np.testing.assert_allclose(table["rmse"][g], np.sqrt(np.mean(err**2)), rtol=1e-5)
        np.testing.assert_allclose(table["mae"][g], np.mean(np.abs(err)), rtol=1e-5)
        np.testing.assert_allclose(table["mean_prediction"][g], y_pred[groups == g].mean(), 1e-5)


def ks_reference(scores, groups, num_groups):
    dists = [
        scipy.stats.ks_2samp(scores[groups == a], scores[groups == b]).statistic
        for a in range(num_groups)
        for b in range(a + 1, num_groups)
    ]
    return max(dists)


@pytest.mark.parametrize("num_groups", [2, 3, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_ks_matches_scipy(num_groups, ties):
    rng = np.random.default_rng(num_groups)
    groups = rng.integers(0, num_groups, 300)
    scores = rng.normal(size=300) + 0.3 * groups
    if ties:
        scores = np.round(scores, 1)  # many ties, across and within groups
    got = fm.ks_unfairness(scores.astype(np.float32), groups, num_groups=num_groups)
    assert abs(float(got) - ks_reference(scores.astype(np.float32), groups, num_groups)) < 1e-6


@pytest.mark.parametrize("num_groups", [2, 3])
def test_wasserstein_matches_scipy(num_groups):
    rng = np.random.default_rng(7)
    groups = rng.integers(0, num_groups, 250)
    scores = rng.normal(size=250) + 0.5 * groups
    weights = rng.uniform(0.2, 2.0, 250)
    pooled = max(
        scipy.stats.wasserstein_distance(
            scores[groups == g], scores, u_weights=weights[groups == g], v_weights=weights
        )
        for g in range(num_groups)
    )
    pairwise = max(
        scipy.stats.wasserstein_distance(
            scores[groups == a], scores[groups == b], weights[groups == a], weights[groups == b]
        )
        for a in range(num_groups)
        for b in range(num_groups)
    )
    kw = dict(num_groups=num_groups, weights=weights)
    np.testing.assert_allclose(fm.wasserstein_unfairness(scores, groups, **kw), pooled, rtol=1e-5)
    np.testing.assert_allclose(
        fm.wasserstein_unfairness(scores, groups, reference="pairwise", **kw), pairwise, rtol=1e-5
    )


@pytest.mark.parametrize(
    "metric",
    [
        lambda s, g, w: fm.ks_unfairness(s, g, num_groups=3, weights=w),
        lambda s, g, w: fm.wasserstein_unfairness(s, g, num_groups=3, weights=w),
        lambda s, g, w: fm.demographic_parity_difference(
            (s > 0).astype(int), g, num_groups=3, weights=w
        ),
    ],
)
def test_zero_weights_equal_subset_and_empty_group(metric):
    rng = np.random.default_rng(8)
    groups = rng.integers(0, 3, 120)
    scores = (rng.normal(size=120) + groups).astype(np.float32)
    keep = (rng.uniform(size=120) < 0.7) & (groups != 2)  # group 2 becomes empty
    masked = metric(scores, groups, keep.astype(np.float32))
    subset = metric(scores[keep], groups[keep], None)
    assert np.isfinite(float(masked))
    np.testing.assert_allclose(masked, subset, rtol=1e-6, atol=1e-7)


def test_single_nonempty_group_gives_zero_gap():
    y = jnp.array([1, 0, 1])
    s = jnp.array([1, 1, 1])
    assert float(fm.demographic_parity_difference(y, s, num_groups=3)) == 0.0
    assert float(fm.demographic_parity_ratio(y, s, num_groups=3)) == 1.0
    assert float(fm.ks_unfairness(jnp.array([0.1, 0.2, 0.3]), s, num_groups=3)) == 0.0


def test_probabilities_give_expected_rates():
    proba = jnp.array([0.2, 0.6, 0.5, 0.5])
    s = jnp.array([0, 0, 1, 1])
    np.testing.assert_allclose(fm.demographic_parity_difference(proba, s, num_groups=2), 0.1)


def test_grad_of_soft_metric_is_finite_with_empty_group():
    s = jnp.array([0, 0, 1, 1])
    y = jnp.array([1, 1, 1, 1])

    def f(p, w):
        return fm.equal_opportunity_difference(y, p, s, num_groups=3, weights=w)

    g = jax.grad(f)(jnp.array([0.2, 0.6, 0.5, 0.4]), jnp.ones(4))
    assert np.all(np.isfinite(g))


def test_bootstrap_covers_and_is_reproducible():
    y_true, y_pred, groups, _ = random_case(2, n=2000, seed=9)
    metric = functools.partial(fm.equal_opportunity_difference, num_groups=2)
    res = fm.bootstrap(metric, y_true, y_pred, groups, key=jax.random.key(0), num_resamples=300)
    again = fm.bootstrap(metric, y_true, y_pred, groups, key=jax.random.key(0), num_resamples=300)
    np.testing.assert_array_equal(res.samples, again.samples)
    assert res.samples.shape == (300,)
    assert float(res.lower) < float(res.estimate) < float(res.upper)
    # The bootstrap standard error of a difference of two proportions is close to the analytic one.
    tpr = [y_pred[(groups == g) & (y_true == 1)].mean() for g in range(2)]
    npos = [((groups == g) & (y_true == 1)).sum() for g in range(2)]
    se = np.sqrt(sum(t * (1 - t) / m for t, m in zip(tpr, npos, strict=True)))
    assert 0.8 * se < float(np.std(res.samples)) < 1.2 * se


def test_bootstrap_of_a_table():
    y_true, y_pred, groups, _ = random_case(3, n=300, seed=10)
    metric = functools.partial(fm.by_group, num_groups=3)
    res = fm.bootstrap(metric, y_true, y_pred, groups, key=jax.random.key(1), num_resamples=50)
    assert res.samples["tpr"].shape == (50, 3)
    assert np.all(res.lower["accuracy"] <= res.upper["accuracy"])


BAD_INPUTS = [
    (lambda: fm.demographic_parity_difference([1, 0, 1], [0, 1], num_groups=2), "groups"),
    (lambda: fm.demographic_parity_difference([1, 0], [0, 2], num_groups=2), "groups"),
    (lambda: fm.demographic_parity_difference([1.0, np.nan], [0, 1], num_groups=2), "y_pred"),
    (lambda: fm.demographic_parity_difference([3.0, 1.0], [0, 1], num_groups=2), "y_pred"),
    (lambda: fm.equal_opportunity_difference([2, 0], [1, 0], [0, 1], num_groups=2), "y_true"),
    (lambda: fm.equal_opportunity_difference([1, 0, 1], [1, 0], [0, 1], num_groups=2), "y_true"),
    (lambda: fm.ks_unfairness([np.inf, 1.0], [0, 1], num_groups=2), "scores"),
    (lambda: fm.ks_unfairness([[1.0, 2.0]], [0], num_groups=2), "scores"),
    (lambda: fm.ks_unfairness([1.0, 2.0], [0, 1]), "num_groups"),
    (lambda: fm.wasserstein_unfairness([1.0], [0], num_groups=1, reference="x"), "reference"),
    (lambda: fm.equalized_odds_difference([1], [1], [0], num_groups=1, agg="max"), "agg"),
    (lambda: fm.by_group([1], [1], [0], num_groups=1, task="ranking"), "task"),
    (lambda: fm.demographic_parity_difference([], [], num_groups=1), "empty"),
    (lambda: fm.demographic_parity_difference(["a"], [0], num_groups=1), "y_pred"),
]


@pytest.mark.parametrize(("call", "match"), BAD_INPUTS)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p, s, sc, w: fm.demographic_parity_difference(p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.demographic_parity_ratio(p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.equal_opportunity_difference(t, p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.equalized_odds_difference(t, p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.ks_unfairness(sc, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.wasserstein_unfairness(sc, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.wasserstein_unfairness(
            sc, s, num_groups=3, weights=w, reference="pairwise"
        ),
        lambda t, p, s, sc, w: fm.by_group(t, p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.by_group(t, sc, s, num_groups=3, weights=w, task="regression"),
    ],
)
def test_every_metric_same_under_jit(call):
    y_true, y_pred, groups, weights = random_case(3, n=200, seed=11)
    scores = np.random.default_rng(11).normal(size=200).astype(np.float32) + groups
    args = (y_true, y_pred, groups, scores, weights.astype(np.float32))
    eager = call(*args)
    jitted = jax.jit(call)(*args)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), eager, jitted)


SHARDED_METRICS = {
    "dp": lambda t, p, s, sc, w, ax: fm.demographic_parity_difference(
        p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "dp_ratio": lambda t, p, s, sc, w, ax: fm.demographic_parity_ratio(
        p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "eo": lambda t, p, s, sc, w, ax: fm.equal_opportunity_difference(
        t, p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "eodds": lambda t, p, s, sc, w, ax: fm.equalized_odds_difference(
        t, p, s, num_groups=3, weights=w, axis_name=ax
    ),
    "ks": lambda t, p, s, sc, w, ax: fm.ks_unfairness(sc, s, num_groups=3, weights=w, axis_name=ax),
    "w1": lambda t, p, s, sc, w, ax: fm.wasserstein_unfairness(
        sc, s, num_groups=3, weights=w, axis_name=ax
    ),
    "table": lambda t, p, s, sc, w, ax: fm.by_group(t, p, s, num_groups=3, weights=w, axis_name=ax),
}


@pytest.mark.parametrize("name", sorted(SHARDED_METRICS))
def test_sharded_equals_single_device(name):
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    try:
        shard_map = jax.shard_map
    except AttributeError:  # pragma: no cover - older jax
        from jax.experimental.shard_map import shard_map

    devices = np.array(jax.devices())
    if devices.size < 8:
        pytest.skip("needs 8 devices (tests set XLA_FLAGS for 8 host devices)")
    call = SHARDED_METRICS[name]
    y_true, y_pred, groups, weights = random_case(3, n=800, seed=12)
    scores = np.random.default_rng(12).normal(size=800).astype(np.float32) + groups
    args = (y_true, y_pred, groups, scores, weights.astype(np.float32))
    single = call(*args, None)

    mesh = Mesh(devices, ("batch",))
    rows = NamedSharding(mesh, PartitionSpec("batch"))
    sharded_args = [jax.device_put(jnp.asarray(a), rows) for a in args]
    through_jit = jax.jit(lambda *a: call(*a, None))(*sharded_args)
    spec = PartitionSpec("batch")
    mapped = shard_map(
        lambda *a: call(*a, "batch"),
        mesh=mesh,
        in_specs=(spec,) * 5,
        out_specs=PartitionSpec(),
    )
    inside = jax.jit(mapped)(*sharded_args)
    for got in (through_jit, inside):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, single
        )


def test_wasserstein_stays_accurate_over_many_rows():
    # 3 * 10^5 float32 rows: a running float32 sum of the W1 integrand drifts; blocked sums don't.
    rng = np.random.default_rng(13)
    groups = rng.integers(0, 2, 300_000)
    scores = (rng.normal(size=300_000) + 0.5 * groups).astype(np.float32)
    want = max(
        scipy.stats.wasserstein_distance(
            scores[groups == g].astype(np.float64), scores.astype(np.float64)
        )
        for g in range(2)
    )
    got = float(fm.wasserstein_unfairness(scores, groups, num_groups=2))
    assert abs(got - want) < 1.5e-6 * want  # a running float32 sum is 4.6e-6 off here
