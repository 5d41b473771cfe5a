"""Group labels of any kind (strings, pandas categoricals, ids without num_groups) in every
metric, against fairlearn with the same labels (#24 item 5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import metrics

fm = pytest.importorskip("fairlearn.metrics")
pd = pytest.importorskip("pandas")
skm = pytest.importorskip("sklearn.metrics")

RNG = np.random.default_rng(5)
N = 300
LABELS = RNG.choice(np.array(["young", "old", "mid-age", "unknown"]), N, p=[0.5, 0.3, 0.15, 0.05])
Y = RNG.integers(0, 2, N)
PRED = (RNG.random(N) < 0.3 + 0.2 * (LABELS == "old")).astype(int)
SCORE = RNG.random(N) + 0.2 * (LABELS == "young")
W = RNG.random(N)
KINDS = {
    "str": LABELS,
    "object": LABELS.astype(object),
    "series": pd.Series(LABELS),
    "categorical": pd.Categorical(LABELS, categories=["young", "mid-age", "old", "unknown"]),
}
CODES, NAMES = pd.factorize(LABELS, sort=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_rate_metrics_equal_fairlearn_with_the_same_labels(kind):
    g = KINDS[kind]
    sf = dict(sensitive_features=LABELS)
    pairs = [
        (
            metrics.demographic_parity_difference(PRED, g),
            fm.demographic_parity_difference(Y, PRED, **sf),
        ),
        (metrics.demographic_parity_ratio(PRED, g), fm.demographic_parity_ratio(Y, PRED, **sf)),
        (
            metrics.equalized_odds_difference(Y, PRED, g),
            fm.equalized_odds_difference(Y, PRED, **sf),
        ),
        (
            metrics.demographic_parity_difference(PRED, g, weights=W),
            fm.demographic_parity_difference(Y, PRED, sample_weight=W, **sf),
        ),
    ]
    tpr = fm.MetricFrame(metrics=fm.true_positive_rate, y_true=Y, y_pred=PRED, **sf)
    pairs.append((metrics.equal_opportunity_difference(Y, PRED, g), tpr.difference()))
    for ours_fn, theirs_fn in [
        (metrics.accuracy_difference, skm.accuracy_score),
        (metrics.false_negative_rate_difference, fm.false_negative_rate),
        (metrics.true_negative_rate_difference, fm.true_negative_rate),
        (metrics.predictive_parity_difference, skm.precision_score),
    ]:
        frame = fm.MetricFrame(metrics=theirs_fn, y_true=Y, y_pred=PRED, **sf)
        pairs.append((ours_fn(Y, PRED, g), frame.difference()))
    mse = fm.MetricFrame(metrics=skm.mean_squared_error, y_true=Y, y_pred=SCORE, **sf)
    pairs.append((metrics.group_loss_difference(Y, SCORE, g), mse.difference()))
    pairs.append((metrics.worst_group_loss(Y, SCORE, g), mse.group_max()))
    for ours, theirs in pairs:
        assert float(ours) == pytest.approx(float(theirs), abs=1e-6)


@pytest.mark.parametrize("kind", ["str", "categorical"])
def test_score_metrics_with_labels_equal_the_integer_ids(kind):
    g = KINDS[kind]
    for fn in (metrics.ks_unfairness, metrics.wasserstein_unfairness):
        ids = fn(SCORE, CODES, num_groups=len(NAMES))
        assert float(fn(SCORE, g)) == pytest.approx(float(ids), abs=1e-6)
        assert float(fn(SCORE, CODES)) == pytest.approx(float(ids), abs=1e-6)  # inferred G


def test_group_table_is_a_metric_frame():
    t = metrics.group_table(Y, PRED, pd.Categorical(LABELS), as_frame=True)
    frame = fm.MetricFrame(
        metrics={
            "accuracy": skm.accuracy_score,
            "selection_rate": fm.selection_rate,
            "tpr": fm.true_positive_rate,
            "fpr": fm.false_positive_rate,
        },
        y_true=Y,
        y_pred=PRED,
        sensitive_features=pd.Series(pd.Categorical(LABELS), name="group"),
    )
    assert list(t.by_group.index) == list(frame.by_group.index) == sorted(NAMES)
    for col in frame.by_group.columns:
        np.testing.assert_allclose(
            t.by_group[col].to_numpy(), frame.by_group[col].to_numpy(), atol=1e-6
        )
        assert t.overall[col] == pytest.approx(frame.overall[col], abs=1e-6)
        assert t.difference[col] == pytest.approx(frame.difference()[col], abs=1e-6)
        assert t.ratio[col] == pytest.approx(frame.ratio()[col], abs=1e-6)
    assert "rmse" not in t.by_group.columns and "brier_score" in t.by_group.columns
    plain = metrics.group_table(Y, PRED, LABELS, as_frame=False)
    assert plain.names == sorted(NAMES) and isinstance(plain.by_group["accuracy"], np.ndarray)


def test_by_group_names_rmse_deprecation_and_frames():
    table = metrics.by_group(Y, PRED, LABELS)
    assert table.names == sorted(NAMES) and "rmse" not in table
    with pytest.warns(DeprecationWarning, match="brier_score"):
        rmse = table["rmse"]
    np.testing.assert_allclose(rmse, np.sqrt(table["brier_score"]))
    reg = metrics.by_group(Y, SCORE, LABELS, task="regression", as_frame=True)
    assert "rmse" in reg.columns and list(reg.index) == sorted(NAMES)


def test_labels_need_num_groups_only_under_jit_and_bad_labels_are_named():
    ids = jnp.asarray(CODES)
    with pytest.raises(ValueError, match=r"`num_groups` is required.*traced ids"):
        jax.jit(lambda g: metrics.demographic_parity_difference(PRED, g))(ids)
    with pytest.raises(ValueError, match="missing labels"):
        metrics.demographic_parity_difference(PRED[:3], np.array(["a", None, "b"], object))
    with pytest.raises(ValueError, match="4 labels, more than num_groups=2"):
        metrics.demographic_parity_difference(PRED, LABELS, num_groups=2)
