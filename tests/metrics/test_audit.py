"""metrics.audit_report: the audit's report against the metrics it gathers, on arrays."""

import jax
import numpy as np
import pytest

from fairjax import metrics

RESAMPLES = 50


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    n = 300
    s = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    score = np.clip(0.4 * y + 0.2 * (s == 0) + rng.uniform(0, 0.5, n), 0, 1)
    pred = (score > 0.5).astype(np.int32)
    w = rng.uniform(0.5, 2.0, n)
    return dict(y=y, pred=pred, s=s, score=score, w=w)


@pytest.mark.slow
@pytest.mark.slow
def test_report_holds_the_metrics_and_the_table(data):
    y, pred, s, w = data["y"], data["pred"], data["s"], data["w"]
    report = metrics.audit_report(
        y, pred, s, num_groups=3, scores=data["score"], weights=w, num_resamples=RESAMPLES
    )
    expected = {
        "demographic_parity_difference": metrics.demographic_parity_difference(
            pred, s, num_groups=3, weights=w
        ),
        "demographic_parity_ratio": metrics.demographic_parity_ratio(
            pred, s, num_groups=3, weights=w
        ),
        "equal_opportunity_difference": metrics.equal_opportunity_difference(
            y, pred, s, num_groups=3, weights=w
        ),
        "equalized_odds_difference": metrics.equalized_odds_difference(
            y, pred, s, num_groups=3, weights=w
        ),
        "ks_unfairness": metrics.ks_unfairness(data["score"], s, num_groups=3, weights=w),
    }
    assert list(report["metrics"]) == list(expected)
    for name, value in expected.items():
        m = report["metrics"][name]
        np.testing.assert_allclose(m["estimate"], float(value), rtol=1e-5, atol=1e-6)
        assert m["lower"] <= m["estimate"] + 1e-6 <= m["upper"] + 2e-6
    table = metrics.by_group(y, pred, s, num_groups=3, weights=w)
    assert report["n"] == 300 and report["num_groups"] == 3
    assert [g["group"] for g in report["groups"]] == ["0", "1", "2"]
    for g, row in enumerate(report["groups"]):
        assert row["rows"] == int(np.sum(s == g))
        for k in ("count", "selection_rate", "accuracy", "tpr", "fpr", "base_rate"):
            np.testing.assert_allclose(row[k], float(table[k][g]), rtol=1e-6)
    np.testing.assert_allclose(
        report["overall"]["accuracy"], np.average(y == pred, weights=w), rtol=1e-6
    )
    assert report["bootstrap"] == {"num_resamples": RESAMPLES, "confidence_level": 0.95}


@pytest.mark.slow
@pytest.mark.slow
def test_empty_groups_and_empty_rates_are_left_out(data):
    y, pred = data["y"].copy(), data["pred"]
    s = np.where(data["s"] == 1, 3, data["s"])  # group 1 has no rows
    y[s == 2] = 1  # group 2 has no negative label: its FPR is missing
    report = metrics.audit_report(
        y, pred, s, num_groups=4, group_names=["a", "b", "c", "d"], num_resamples=RESAMPLES
    )
    assert [g["group"] for g in report["groups"]] == ["a", "c", "d"]
    assert report["num_groups"] == 3
    c = report["groups"][1]
    assert c["fpr"] is None and c["tpr"] is not None
    assert "ks_unfairness" not in report["metrics"]


@pytest.mark.slow
@pytest.mark.slow
def test_key_drives_the_intervals(data):
    args = data["y"], data["pred"], data["s"]
    a = metrics.audit_report(*args, num_groups=3, num_resamples=RESAMPLES)
    b = metrics.audit_report(*args, num_groups=3, num_resamples=RESAMPLES, key=jax.random.key(0))
    c = metrics.audit_report(*args, num_groups=3, num_resamples=RESAMPLES, key=jax.random.key(1))
    assert a == b
    assert a["metrics"] != c["metrics"]


def test_bad_inputs(data):
    y, pred, s = data["y"], data["pred"], data["s"]
    with pytest.raises(ValueError, match="y_true"):
        metrics.audit_report(y[:-1], pred, s, num_groups=3)
    with pytest.raises(ValueError, match="scores"):
        metrics.audit_report(y, pred, s, num_groups=3, scores=data["score"][:-1])
    with pytest.raises(ValueError, match="group_names"):
        metrics.audit_report(y, pred, s, num_groups=3, group_names=["a"])
    with pytest.raises(ValueError, match="num_resamples"):
        metrics.audit_report(y, pred, s, num_groups=3, num_resamples=1)
    with pytest.raises(ValueError, match="confidence_level"):
        metrics.audit_report(y, pred, s, num_groups=3, confidence_level=1.0)
