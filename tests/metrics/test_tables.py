"""Tests of fairjax.metrics' per-group tables (against fairlearn's MetricFrame) and bootstrap."""

import functools

import fairlearn.metrics as flm
import jax
import numpy as np
import pytest

from fairjax import metrics as fm
from tests.metrics._cases import (
    check_bad_input,
    check_same_under_jit,
    check_sharded_equals_single_device,
    random_case,
)


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
    # Of decisions, the Brier score is the error rate.
    np.testing.assert_allclose(table["brier_score"], 1 - table["accuracy"], rtol=1e-5)
    assert "rmse" not in table


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


@pytest.mark.parametrize(
    ("call", "match"),
    [(lambda: fm.by_group([1], [1], [0], num_groups=1, task="ranking"), "task")],
)
def test_bad_input_names_the_argument(call, match):
    check_bad_input(call, match)


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p, s, sc, w: fm.by_group(t, p, s, num_groups=3, weights=w),
        lambda t, p, s, sc, w: fm.by_group(t, sc, s, num_groups=3, weights=w, task="regression"),
    ],
)
def test_every_metric_same_under_jit(call):
    check_same_under_jit(call)


def test_sharded_equals_single_device():
    check_sharded_equals_single_device(
        lambda t, p, s, sc, w, ax: fm.by_group(t, p, s, num_groups=3, weights=w, axis_name=ax)
    )


# ----------------------------------------------------------------------------- bootstrap memory


def _score_case(n, G):
    rng = np.random.default_rng(0)
    s = np.arange(n) % G
    y = rng.integers(0, 2, n)
    return y, s, rng.uniform(size=n).astype(np.float32)


# metric name -> (metric(G), its data(y, s, scores), bytes of its dominant intermediate (n, G))
MEMORY_CASES = {
    "demographic_parity": (
        lambda G: functools.partial(fm.demographic_parity_difference, num_groups=G),
        lambda y, s, x: (y, s),
        lambda n, G: 4 * n,
    ),
    "ks": (
        lambda G: functools.partial(fm.ks_unfairness, num_groups=G),
        lambda y, s, x: (x, s),
        lambda n, G: 4 * n * G,
    ),
    "wasserstein_pooled": (
        lambda G: functools.partial(fm.wasserstein_unfairness, num_groups=G),
        lambda y, s, x: (x, s),
        lambda n, G: 4 * n * G,
    ),
    "wasserstein_pairwise": (
        lambda G: functools.partial(fm.wasserstein_unfairness, num_groups=G, reference="pairwise"),
        lambda y, s, x: (x, s),
        lambda n, G: 4 * (n - 1) * G * G,  # |F_a - F_b| between consecutive pooled points
    ),
    "by_group": (
        lambda G: functools.partial(fm.by_group, num_groups=G),
        lambda y, s, x: (y, y, s),
        lambda n, G: 4 * n,
    ),
}


def _chosen_batch(monkeypatch, metric, data, **kw):
    """The ``batch_size`` bootstrap passes to its compiled program (which is not run)."""
    from fairjax.metrics import _tables

    seen = {}

    class Chosen(Exception):
        pass

    def record(*args, **options):
        seen.update(options)
        raise Chosen

    monkeypatch.setattr(_tables, "_resamples_jit", record)
    with pytest.raises(Chosen):
        fm.bootstrap(metric, *data, key=jax.random.key(0), **kw)
    return seen["batch_size"]


@pytest.mark.parametrize("name", sorted(MEMORY_CASES))
@pytest.mark.parametrize(("n", "G", "limit"), [(2000, 100, 2**28), (5000, 30, 2**24)])
def test_the_default_batch_keeps_the_largest_intermediate_within_the_limit(
    monkeypatch, name, n, G, limit
):
    """Issue 18.15: batch x n x G of the KS/W1 CDFs, not batch x n, is what must be bounded."""
    from fairjax.metrics import _tables

    make, pick, dominant = MEMORY_CASES[name]
    data = pick(*_score_case(n, G))
    per_resample = _tables._resample_bytes(make(G), *data, weights=np.ones(n, np.float32))
    assert per_resample >= dominant(n, G)  # the trace sees the (n, G) (or (n, G, G)) arrays
    batch = _chosen_batch(monkeypatch, make(G), data, num_resamples=1000, memory_limit=limit)
    assert batch * dominant(n, G) <= max(limit, dominant(n, G))  # 1 when one resample exceeds
    assert batch * per_resample <= limit or batch == 1
    assert batch == 1000 or (batch + 1) * per_resample > limit  # the largest such batch


def test_the_issue_case_stays_within_the_default_limit(monkeypatch):
    """n = 2,000, 100 groups, 400 resamples: the KS CDFs took 994 MB; now <= 256 MiB."""
    _, s, x = _score_case(2000, 100)
    metric = functools.partial(fm.ks_unfairness, num_groups=100)
    batch = _chosen_batch(monkeypatch, metric, (x, s), num_resamples=400)
    assert batch * 2000 * 100 * 4 <= 2**28 and batch < 400


@pytest.mark.slow
def test_the_batch_does_not_change_the_result():
    _, s, x = _score_case(300, 4)
    metric = functools.partial(fm.ks_unfairness, num_groups=4)
    key = jax.random.key(3)
    small = fm.bootstrap(metric, x, s, key=key, num_resamples=20, memory_limit=300 * 4 * 4 * 3)
    whole = fm.bootstrap(metric, x, s, key=key, num_resamples=20, batch_size=20)
    np.testing.assert_allclose(small.samples, whole.samples, rtol=1e-6)


def test_memory_limit_must_be_a_positive_int():
    _, s, x = _score_case(30, 2)
    metric = functools.partial(fm.ks_unfairness, num_groups=2)
    key = jax.random.key(3)
    with pytest.raises(ValueError, match="memory_limit"):
        fm.bootstrap(metric, x, s, key=key, memory_limit=0)
    with pytest.raises(ValueError, match="memory_limit"):
        fm.bootstrap(metric, x, s, key=key, memory_limit=2.5)


def test_labels_and_num_groups_give_rows_that_match_their_names():
    # A categorical of categories a, b, c observed as a and c, with num_groups=3: the table had
    # 3 rows and 2 names (as_frame and group_table crashed in pandas), and 'c' sat in row 1.
    pd = pytest.importorskip("pandas")
    cat = pd.Categorical(["a", "a", "c", "c", "c", "c"], categories=["a", "b", "c"])
    y_true, y_pred = np.array([1, 0, 1, 1, 0, 1]), np.array([1, 0, 1, 0, 1, 1])
    table = fm.by_group(y_true, y_pred, cat, num_groups=3)
    assert table.names == ["a", "b", "c"]
    assert table["count"].tolist() == [2.0, 0.0, 4.0]  # the category codes are the rows
    assert list(fm.by_group(y_true, y_pred, cat, num_groups=3, as_frame=True).index) == table.names
    assert fm.group_table(y_true, y_pred, cat, num_groups=3).names == ["a", "b", "c"]
    assert fm.by_group(y_true, y_pred, cat).names == ["a", "c"]  # observed, as before
    # Strings have no unobserved labels: a table of more groups than labels is refused, by
    # name; a scalar metric, which shows no names, still takes them (a batch lacking a label).
    text = np.asarray(cat).astype(str)
    with pytest.raises(ValueError, match="fewer than num_groups=3"):
        fm.by_group(y_true, y_pred, text, num_groups=3)
    gap = fm.demographic_parity_difference(y_pred, text, num_groups=3)
    assert float(gap) == float(fm.demographic_parity_difference(y_pred, text))
