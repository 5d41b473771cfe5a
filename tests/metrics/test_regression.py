"""Group losses of regression models against a NumPy reference and fairlearn's MetricFrame."""

import numpy as np
import pytest

from fairjax import metrics


def _data(num_groups, seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    s = rng.integers(0, num_groups, size=n)
    pred = y + rng.normal(scale=0.2 + 0.3 * s, size=n)  # a worse fit for higher ids
    w = rng.uniform(0.0, 2.0, size=n)
    return y, pred, s, w


def _np_group_losses(y, pred, s, w, G, loss):
    err = (pred - y) ** 2 if loss == "squared" else np.abs(pred - y)
    return np.array([np.sum(w[s == g] * err[s == g]) / np.sum(w[s == g]) for g in range(G)])


@pytest.mark.parametrize("G", [2, 3, 5])
@pytest.mark.parametrize("loss", ["squared", "absolute"])
def test_equal_numpy_reference_with_weights(G, loss):
    y, pred, s, w = _data(G)
    ref = _np_group_losses(y, pred, s, w, G, loss)
    got_max = metrics.worst_group_loss(y, pred, s, num_groups=G, weights=w, loss=loss)
    got_gap = metrics.group_loss_difference(y, pred, s, num_groups=G, weights=w, loss=loss)
    np.testing.assert_allclose(float(got_max), ref.max(), rtol=1e-5)
    np.testing.assert_allclose(float(got_gap), ref.max() - ref.min(), rtol=1e-5, atol=1e-6)


def test_equal_fairlearn_metricframe():
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    y, pred, s, _ = _data(3, seed=1)
    for fn, loss in ((mean_squared_error, "squared"), (mean_absolute_error, "absolute")):
        frame = fairlearn_metrics.MetricFrame(
            metrics=fn, y_true=y, y_pred=pred, sensitive_features=s
        )
        got = metrics.group_loss_difference(y, pred, s, num_groups=3, loss=loss)
        np.testing.assert_allclose(float(got), frame.difference(), rtol=1e-5)
        worst = metrics.worst_group_loss(y, pred, s, num_groups=3, loss=loss)
        np.testing.assert_allclose(float(worst), frame.group_max(), rtol=1e-5)


def test_empty_groups_are_left_out():
    y, pred, s, _ = _data(2, seed=2)
    one = metrics.group_loss_difference(y, pred, s, num_groups=2)
    padded = metrics.group_loss_difference(y, pred, s, num_groups=4)  # groups 2 and 3 empty
    assert float(one) == pytest.approx(float(padded))
    assert float(metrics.group_loss_difference(y, pred, np.zeros_like(s), num_groups=2)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "huber"}, "`loss`"),
        ({"y_true": np.array([1.0, np.nan, 0.0, 1.0])}, "`y_true`"),
        ({"y_pred": np.array([1.0, 2.0])}, "`y_true`"),
        ({"groups": np.array([0, 1, 2, 0])}, "`groups`"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    args = {
        "y_true": np.array([1.0, 2.0, 0.0, 1.0]),
        "y_pred": np.array([1.0, 2.5, 0.0, 1.0]),
        "groups": np.array([0, 1, 1, 0]),
    }
    loss = kwargs.pop("loss", "squared")
    args.update(kwargs)
    for fn in (metrics.worst_group_loss, metrics.group_loss_difference):
        with pytest.raises((ValueError, TypeError), match=match):
            fn(args["y_true"], args["y_pred"], args["groups"], num_groups=2, loss=loss)


# ----------------------------------------------------------------------------- audit report


@pytest.mark.slow  # compiles the report and its bootstrap (~4 s on a busy CPU)
def test_regression_audit_report_equals_numpy_and_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    y, pred, s, w = _data(3, seed=4, n=400)
    s = np.where(s == 1, 3, s)  # group 1 has no rows: left out of the table and the gaps
    names = ["a", "b", "c", "d"]
    report = metrics.regression_audit_report(
        y, pred, s, num_groups=4, weights=w, group_names=names, num_resamples=50
    )
    present = [0, 2, 3]
    with np.errstate(invalid="ignore"):  # group 1: 0 / 0
        mae = _np_group_losses(y, pred, s, w, 4, "absolute")[present]
        rmse = np.sqrt(_np_group_losses(y, pred, s, w, 4, "squared")[present])
    assert [g["group"] for g in report["groups"]] == ["a", "c", "d"]
    for row, g, a, r in zip(report["groups"], present, mae, rmse, strict=True):
        assert row["rows"] == int(np.sum(s == g))
        np.testing.assert_allclose(row["mae"], a, rtol=1e-5)
        np.testing.assert_allclose(row["rmse"], r, rtol=1e-5)
        mean = np.average(pred[s == g], weights=w[s == g])
        np.testing.assert_allclose(row["mean_prediction"], mean, rtol=1e-5)
    m = report["metrics"]
    np.testing.assert_allclose(m["worst_group_mae"]["estimate"], mae.max(), rtol=1e-5)
    np.testing.assert_allclose(m["mae_difference"]["estimate"], np.ptp(mae), rtol=1e-5)
    np.testing.assert_allclose(m["worst_group_rmse"]["estimate"], rmse.max(), rtol=1e-5)
    np.testing.assert_allclose(m["rmse_difference"]["estimate"], np.ptp(rmse), rtol=1e-5)
    worst = names[present[int(np.argmax(mae))]]
    assert m["worst_group_mae"]["group"] == worst
    assert m["mae_difference"]["between"] == [names[present[int(np.argmin(mae))]], worst]
    # Between groups, the distributions of the predictions: weighted W1 (scipy) and KS.
    w1 = {
        (a, b): scipy_stats.wasserstein_distance(pred[s == a], pred[s == b], w[s == a], w[s == b])
        for i, a in enumerate(present)
        for b in present[i + 1 :]
    }
    a, b = max(w1, key=w1.get)
    np.testing.assert_allclose(m["wasserstein_unfairness"]["estimate"], w1[(a, b)], rtol=1e-4)
    assert set(m["wasserstein_unfairness"]["between"]) == {names[a], names[b]}
    ks = metrics.ks_unfairness(pred, s, num_groups=4, weights=w)
    np.testing.assert_allclose(m["ks_unfairness"]["estimate"], float(ks), rtol=1e-6)
    for v in m.values():
        assert v["lower"] <= v["estimate"] + 1e-5 and v["estimate"] <= v["upper"] + 1e-5
    assert report["overall"]["rows"] == report["n"] == 400 and report["task"] == "regression"


def test_regression_audit_report_zero_weight_group_has_missing_errors():
    # All of group 1's rows have weight 0: its errors are over an empty set, not 0 (which
    # would read as a perfect group), and the worst group is chosen among the others.
    y, pred, s, w = _data(3, n=200)
    w = np.where(s == 1, 0.0, w)
    report = metrics.regression_audit_report(y, pred, s, num_groups=3, weights=w, num_resamples=0)
    row = report["groups"][1]
    assert row["rows"] == int(np.sum(s == 1)) and row["count"] == 0.0
    assert all(row[k] is None for k in ("mean_target", "mean_prediction", "mae", "rmse"))
    assert report["groups"][2]["mae"] is not None
    assert report["metrics"]["worst_group_mae"]["group"] in ("0", "2")


def test_regression_audit_report_bad_input():
    y, pred, s, _ = _data(2, n=20)
    with pytest.raises(ValueError, match="y_true"):
        metrics.regression_audit_report(y[:-1], pred, s, num_groups=2)
    with pytest.raises(ValueError, match="y_pred"):
        metrics.regression_audit_report(y, np.where(s == 0, np.nan, pred), s, num_groups=2)
    with pytest.raises(ValueError, match="group_names"):
        metrics.regression_audit_report(y, pred, s, num_groups=2, group_names=["a"])
    with pytest.raises(ValueError, match="num_resamples"):
        metrics.regression_audit_report(y, pred, s, num_groups=2, num_resamples=1)
    with pytest.raises(ValueError, match="groups"):
        metrics.regression_audit_report(y, pred, np.eye(2)[s], num_groups=2)
