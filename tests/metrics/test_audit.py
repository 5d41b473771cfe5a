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


def test_a_group_of_zero_weight_has_missing_rates_not_zeros(data):
    # Group 1 keeps its rows, all of weight 0: its rates are over an empty set, and a rate of
    # 0 (the metrics' placeholder) would read as a group never selected.
    y, pred, s = data["y"], data["pred"], data["s"]
    w = np.where(s == 1, 0.0, data["w"])
    report = metrics.audit_report(y, pred, s, num_groups=3, weights=w, num_resamples=0)
    b = report["groups"][1]
    assert b["group"] == "1" and b["rows"] == int(np.sum(s == 1)) and b["count"] == 0.0
    assert all(b[k] is None for k in ("selection_rate", "accuracy", "tpr", "fpr", "base_rate"))
    assert report["groups"][0]["selection_rate"] is not None
    expected = metrics.demographic_parity_difference(pred, s, num_groups=3, weights=w)
    np.testing.assert_allclose(
        report["metrics"]["demographic_parity_difference"]["estimate"], float(expected)
    )


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
    with pytest.raises(ValueError, match="min_group_size"):
        metrics.audit_report(y, pred, s, num_groups=3, min_group_size=-1)


def _brute_force_pair(rates, present, names):
    """The two groups of the largest |r_a - r_b| by enumerating every pair (lowest first)."""
    best, pair = -1.0, None
    for a in np.flatnonzero(present):
        for b in np.flatnonzero(present):
            if rates[b] - rates[a] > best:
                best, pair = rates[b] - rates[a], [names[a], names[b]]
    return pair


@pytest.mark.slow  # compiles the report's program for a new shape (~5 s on a busy CPU)
def test_each_gap_names_its_pair_of_groups(data):
    # Issue 24, item 11: which pair of groups gives each gap. Unequal groups, weights.
    y, pred, s, w, score = data["y"], data["pred"], data["s"], data["w"], data["score"]
    names = ["a", "b", "c"]
    report = metrics.audit_report(
        y, pred, s, num_groups=3, scores=score, weights=w, group_names=names, num_resamples=0
    )
    m = report["metrics"]

    def rate(mask_rows):
        return np.array([np.average(pred[(s == g) & mask_rows], weights=w[(s == g) & mask_rows])
                         for g in range(3)])  # fmt: skip

    everyone = np.ones_like(y, bool)
    dp_pair = _brute_force_pair(rate(everyone), [True] * 3, names)
    assert m["demographic_parity_difference"]["between"] == dp_pair
    assert m["demographic_parity_ratio"]["between"] == dp_pair
    tpr, fpr = rate(y == 1), rate(y == 0)
    assert m["equal_opportunity_difference"]["between"] == _brute_force_pair(tpr, [1] * 3, names)
    kind = "tpr" if np.ptp(tpr) >= np.ptp(fpr) else "fpr"
    assert m["equalized_odds_difference"]["rate"] == kind
    expected = _brute_force_pair({"tpr": tpr, "fpr": fpr}[kind], [1] * 3, names)
    assert m["equalized_odds_difference"]["between"] == expected
    # KS: the pair whose two-sample weighted KS distance is the reported one.
    grid = np.sort(score)

    def cdf(g):
        return np.array([w[(s == g) & (score <= t)].sum() for t in grid]) / w[s == g].sum()

    ks = {(a, b): np.max(np.abs(cdf(a) - cdf(b))) for a in range(3) for b in range(a + 1, 3)}
    a, b = max(ks, key=ks.get)
    assert set(m["ks_unfairness"]["between"]) == {names[a], names[b]}
    np.testing.assert_allclose(m["ks_unfairness"]["estimate"], ks[(a, b)], rtol=1e-5)
    # Without bootstrap there are no intervals.
    assert all(v["lower"] is None and v["upper"] is None for v in m.values())


@pytest.mark.slow  # compiles the report's program for a new shape (~5 s on a busy CPU)
def test_small_groups_are_listed(data):
    y, pred = data["y"][:60], data["pred"][:60]
    s = np.r_[np.zeros(50, int), np.ones(8, int), np.full(2, 2)]
    report = metrics.audit_report(y, pred, s, num_groups=3, num_resamples=0, min_group_size=10)
    assert report["small_groups"] == ["1", "2"] and report["min_group_size"] == 10
    none = metrics.audit_report(y, pred, s, num_groups=3, num_resamples=0, min_group_size=0)
    assert none["small_groups"] == []


@pytest.mark.slow  # compiles the report's program for a new shape (~5 s on a busy CPU)
def test_without_labels_only_the_label_free_metrics(data):
    # Issue 24, item 12: no labels, no label metrics, and the report says which it left out.
    pred, s, score = data["pred"], data["s"], data["score"]
    report = metrics.audit_report(None, pred, s, num_groups=3, scores=score, num_resamples=0)
    full = metrics.audit_report(data["y"], pred, s, num_groups=3, scores=score, num_resamples=0)
    assert list(report["metrics"]) == [
        "demographic_parity_difference", "demographic_parity_ratio", "ks_unfairness",
    ]  # fmt: skip
    assert report["omitted"] == ["equal_opportunity_difference", "equalized_odds_difference"]
    assert full["omitted"] == []
    for name, value in report["metrics"].items():
        assert value == full["metrics"][name]
    assert set(report["groups"][0]) == {"group", "rows", "count", "selection_rate"}
    assert report["groups"][0]["selection_rate"] == full["groups"][0]["selection_rate"]


@pytest.mark.slow  # compiles the report's program for a new shape (~5 s on a busy CPU)
def test_numbers_are_written_at_the_precision_computed():
    # Issue 24, item 12: float32 2/3 was written 0.6666666865348816.
    y = np.array([1, 0, 1, 0, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])
    s = np.array([0, 0, 0, 1, 1, 1])
    report = metrics.audit_report(y, pred, s, num_groups=2, num_resamples=0)
    assert report["precision"] == "float32"
    rate = report["groups"][0]["selection_rate"]
    assert rate == 0.6666667 and np.float32(rate) == np.float32(2 / 3)
    assert report["metrics"]["demographic_parity_difference"]["estimate"] == 0.6666667
    # Every number reads back as the float32 it was computed as, with no more digits.
    for row in report["groups"]:
        for x in row.values():
            if isinstance(x, float):
                assert x == float(np.format_float_positional(np.float32(x), unique=True))


# ----------------------------------------------------------------------------- criteria=

# The NumPy reference of each criterion's per-group rate (None: no denominator) from the
# definitions, and the metric of its report row.
_CELL_RATES = {
    "predictive_parity": ("ppv", lambda y, h: (y * h, h)),
    "false_omission_rate_parity": ("false_omission_rate", lambda y, h: (y * (1 - h), 1 - h)),
    "false_negative_rate_parity": ("fnr", lambda y, h: ((1 - h) * y, y)),
    "true_negative_rate_parity": ("tnr", lambda y, h: ((1 - h) * (1 - y), 1 - y)),
    "accuracy_parity": ("accuracy", lambda y, h: (y * h + (1 - y) * (1 - h), np.ones_like(y))),
    "treatment_equality": ("fn_fp_ratio", lambda y, h: (y * (1 - h), (1 - y) * h)),
}
_NAMED = {
    "predictive_parity": metrics.predictive_parity_difference,
    "false_omission_rate_parity": metrics.false_omission_rate_difference,
    "false_negative_rate_parity": metrics.false_negative_rate_difference,
    "true_negative_rate_parity": metrics.true_negative_rate_difference,
    "accuracy_parity": metrics.accuracy_difference,
    "treatment_equality": metrics.treatment_equality_difference,
}


@pytest.mark.slow  # compiles the report's program for a new shape (~5 s on a busy CPU)
def test_criteria_rows_equal_the_named_metrics_and_stream_alike(data):
    y, pred, s, w = data["y"], data["pred"].copy(), data["s"], data["w"]
    flip = np.random.default_rng(7).uniform(size=len(y)) < 0.2  # errors of both kinds
    pred = np.where(flip, 1 - pred, pred)
    pred[s == 2] = 0  # group c has no positive decision: no PPV, no FP (left out of two gaps)
    names = ["a", "b", "c"]
    kw = dict(num_groups=3, weights=w, group_names=names)
    report = metrics.audit_report(y, pred, s, num_resamples=RESAMPLES, criteria="all", **kw)
    base = metrics.audit_report(y, pred, s, num_resamples=0, **kw)
    assert list(base["metrics"]) == list(report["metrics"])[:4]  # the defaults are unchanged
    for crit, (column, cells) in _CELL_RATES.items():
        m = report["metrics"][_NAMED[crit].__name__]
        want = _NAMED[crit](y, pred, s, num_groups=3, weights=w)
        np.testing.assert_allclose(m["estimate"], float(want), rtol=1e-6)
        assert m["lower"] <= m["estimate"] + 1e-6 and m["estimate"] <= m["upper"] + 1e-6
        rates = []
        for g, row in enumerate(report["groups"]):
            num, den = cells(y[s == g].astype(float), pred[s == g].astype(float))
            d = np.sum(w[s == g] * den)
            rates.append(np.sum(w[s == g] * num) / d if d > 0 else np.nan)
            if d > 0:
                np.testing.assert_allclose(row[column], rates[-1], rtol=1e-5)
            else:
                assert row[column] is None
        # The pair behind the gap (with ties, e.g. two groups of TNR 1, either is right).
        low, high = (rates[names.index(g)] for g in m["between"])
        np.testing.assert_allclose(high - low, np.nanmax(rates) - np.nanmin(rates), rtol=1e-5)
    assert report["groups"][2]["ppv"] is None and report["groups"][2]["fn_fp_ratio"] is None
    np.testing.assert_allclose(
        report["overall"]["ppv"], np.sum(w * y * pred) / np.sum(w * pred), rtol=1e-6
    )
    # The streamed audit computes the same rows from its table of 4G weighted counts.
    chunks = lambda: (
        {"y_true": y[a : a + 70], "y_pred": pred[a : a + 70], "groups": s[a : a + 70],
         "weights": w[a : a + 70]} for a in range(0, len(y), 70)
    )  # fmt: skip
    streamed = metrics.audit_report_streaming(
        chunks, num_groups=3, group_names=names, num_resamples=0, criteria="all"
    )
    assert streamed["metrics"].keys() == report["metrics"].keys()
    for k, m in streamed["metrics"].items():
        np.testing.assert_allclose(m["estimate"], report["metrics"][k]["estimate"], rtol=1e-5)
        assert m["between"] == report["metrics"][k]["between"], k
    for a, b in zip(streamed["groups"], report["groups"], strict=True):
        assert a.keys() == b.keys()
        for k in ("ppv", "false_omission_rate", "fnr", "tnr", "fn_fp_ratio"):
            assert (a[k] is None) == (b[k] is None)
            if a[k] is not None:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-5)


def test_criteria_bad_input(data):
    y, pred, s = data["y"], data["pred"], data["s"]
    with pytest.raises(ValueError, match="`criteria` must hold names of"):
        metrics.audit_report(y, pred, s, num_groups=3, criteria=["ppv"])
    with pytest.raises(ValueError, match="need labels: give `y_true`"):
        metrics.audit_report(None, pred, s, num_groups=3, criteria=["predictive_parity"])
    with pytest.raises(ValueError, match="`criteria` must hold"):  # stratified: no strata here
        metrics.audit_report(y, pred, s, num_groups=3, criteria="conditional_statistical_parity")
    chunks = lambda: iter([{"y_pred": pred, "groups": s}])
    with pytest.raises(ValueError, match="need labels"):
        metrics.audit_report_streaming(chunks, num_groups=3, criteria="all")
