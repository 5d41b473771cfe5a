"""Tests of fairjax.metrics' score metrics (KS and Wasserstein unfairness) against scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from fairjax import metrics as fm
from tests.metrics._cases import (
    check_bad_input,
    check_same_under_jit,
    check_sharded_equals_single_device,
    check_zero_weights_equal_subset_and_empty_group,
)


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
    ],
)
def test_zero_weights_equal_subset_and_empty_group(metric):
    check_zero_weights_equal_subset_and_empty_group(metric)


def test_single_nonempty_group_gives_zero_gap():
    s = jnp.array([1, 1, 1])
    assert float(fm.ks_unfairness(jnp.array([0.1, 0.2, 0.3]), s, num_groups=3)) == 0.0


BAD_INPUTS = [
    (lambda: fm.ks_unfairness([np.inf, 1.0], [0, 1], num_groups=2), "scores"),
    (lambda: fm.ks_unfairness([[1.0, 2.0]], [0], num_groups=2), "scores"),
    # Concrete ids infer num_groups; traced ones (under jit) need it.
    (lambda: jax.jit(lambda g: fm.ks_unfairness(jnp.ones(2), g))(jnp.array([0, 1])), "num_groups"),
    (lambda: fm.wasserstein_unfairness([1.0], [0], num_groups=1, reference="x"), "reference"),
]


@pytest.mark.parametrize(("call", "match"), BAD_INPUTS)
def test_bad_input_names_the_argument(call, match):
    check_bad_input(call, match)


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p, s, sc, w: fm.ks_unfairness(sc, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.wasserstein_unfairness(sc, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.wasserstein_unfairness(
            sc, s, num_groups=3, weights=w, reference="pairwise"
        ),
    ],
)
def test_every_metric_same_under_jit(call):
    check_same_under_jit(call)


SHARDED_METRICS = {
    "ks": lambda t, p, s, sc, w, ax: fm.ks_unfairness(sc, s, num_groups=3, weights=w, axis_name=ax),
    "w1": lambda t, p, s, sc, w, ax: fm.wasserstein_unfairness(
        sc, s, num_groups=3, weights=w, axis_name=ax
    ),
}


@pytest.mark.parametrize("name", sorted(SHARDED_METRICS))
def test_sharded_equals_single_device(name):
    check_sharded_equals_single_device(SHARDED_METRICS[name])


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


@pytest.mark.parametrize("num_groups", [2, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_host_sort_path_equals_jitted_path(num_groups, ties):
    # Eager calls with concrete CPU inputs sort on the host with NumPy; under jit they trace the
    # XLA sort. The values must be the same bits: tied scores, and an empty last group.
    rng = np.random.default_rng(num_groups + 10 * ties)
    n = 3000
    groups = rng.integers(0, num_groups - 1 if num_groups > 2 else 2, n).astype(np.int32)
    # float32 scores (float64 NumPy scores are shifted on the host first, under jit not: the
    # same distances to rounding, not to the bit; see the test of scores far from zero)
    scores = (rng.normal(size=n) + 0.3 * groups).astype(np.float32)
    if ties:
        scores = np.round(scores, 1).astype(np.float32)
    calls = [
        lambda sc, s: fm.ks_unfairness(sc, s, num_groups=num_groups),
        lambda sc, s: fm.wasserstein_unfairness(sc, s, num_groups=num_groups),
        lambda sc, s: fm.wasserstein_unfairness(sc, s, num_groups=num_groups, reference="pairwise"),
    ]
    for call in calls:
        host = np.asarray(call(scores, groups))
        traced = np.asarray(jax.jit(call)(scores, groups))
        np.testing.assert_array_equal(host, traced)
    np.testing.assert_allclose(
        fm.ks_unfairness(scores, groups, num_groups=num_groups),
        ks_reference(scores, groups, 2),
        rtol=1e-6,
    )


@pytest.mark.parametrize("where", ["scores", "weights"])
@pytest.mark.parametrize(
    "metric",
    [
        lambda x, s, w: fm.ks_unfairness(x, s, num_groups=3, weights=w),
        lambda x, s, w: fm.wasserstein_unfairness(x, s, num_groups=3, weights=w),
        lambda x, s, w: fm.wasserstein_unfairness(
            x, s, num_groups=3, weights=w, reference="pairwise"
        ),
        lambda x, s, w: fm.demographic_parity_ratio(x, s, num_groups=3, weights=w),
    ],
)
def test_nan_under_jit_gives_nan(metric, where):
    # Under jit the value checks cannot run: a NaN weight gave W1 0.0 and a DP ratio of 0.96,
    # a NaN score a finite KS and a DP ratio of 1.0 (reported by a probe).
    rng = np.random.default_rng(4)
    s = rng.integers(0, 3, 60)
    x, w = rng.uniform(size=60), rng.uniform(size=60)
    (x if where == "scores" else w)[5] = np.nan
    assert np.isnan(float(jax.jit(metric)(x, s, w)))


def test_float64_scores_far_from_zero_keep_their_differences():
    # Without x64, float64 scores of 1e8 + k became one float32 value (spacing 8 at 1e8), and
    # KS and W1 read 0 for groups that do not overlap (a probe). A common shift, which neither
    # distance sees, keeps them apart.
    g = np.array([0, 0, 1, 1])
    for base in (1e8, 1.7e9):  # and epoch timestamps, 10 s apart
        x = base + np.array([0.0, 1.0, 2.0, 3.0]) * (10 if base > 1e9 else 1)
        ks = fm.ks_unfairness(x, g, num_groups=2)
        w1 = fm.wasserstein_unfairness(x, g, num_groups=2, reference="pairwise")
        assert float(ks) == scipy.stats.ks_2samp(x[:2], x[2:]).statistic == 1.0
        assert float(w1) == pytest.approx(scipy.stats.wasserstein_distance(x[:2], x[2:]), rel=1e-6)
        decisions = (x > x[1]).astype(int)
        report = fm.audit_report(None, decisions, g, num_groups=2, scores=x, num_resamples=0)
        assert report["metrics"]["ks_unfairness"]["estimate"] == 1.0
        whole = x.astype(np.int64)  # epoch seconds as integers (float32 holds 2**24 exactly)
        assert float(fm.ks_unfairness(whole, g, num_groups=2)) == 1.0
