"""metrics.audit_report_streaming against the in-memory audit_report (NumPy data, chunked)."""

from __future__ import annotations

import numpy as np
import pytest

from fairjax import metrics


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    x = np.round(rng.normal(size=n) + 0.4 * s, 1).astype(np.float32)  # many ties
    return y, (x > 0.3).astype(int), s, x, rng.random(n).astype(np.float32)


def _chunks(size, **cols):
    n = len(cols["y_pred"])
    cols = {k: v for k, v in cols.items() if v is not None}
    return lambda: ({k: v[a : a + size] for k, v in cols.items()} for a in range(0, n, size))


def assert_same_report(a, b, rtol=2e-6):
    """Equal reports up to float rounding (names, pairs, rows exactly)."""
    assert set(a) - {"bootstrap"} == set(b) - {"bootstrap"}
    for ra, rb in zip([a["overall"], *a["groups"]], [b["overall"], *b["groups"]], strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            if isinstance(ra[k], float):
                np.testing.assert_allclose(ra[k], rb[k], rtol=rtol, err_msg=k)
            else:
                assert ra[k] == rb[k], k
    assert a["metrics"].keys() == b["metrics"].keys()
    for k, m in a["metrics"].items():
        np.testing.assert_allclose(m["estimate"], b["metrics"][k]["estimate"], rtol=rtol, atol=1e-7)
        assert m["between"] == b["metrics"][k]["between"], k
    for k in ("n", "num_groups", "omitted", "small_groups"):
        assert a[k] == b[k]


@pytest.mark.parametrize(
    "size", [pytest.param(1, marks=pytest.mark.slow), pytest.param(7, marks=pytest.mark.slow), 1000]
)
@pytest.mark.parametrize("weighted", [False, True])
def test_streamed_equals_in_memory(size, weighted):
    y, pred, s, x, w = _data(n=300 if size == 1 else 3000)
    w = w if weighted else None
    cols = {"y_true": y, "y_pred": pred, "groups": s, "scores": x, "weights": w}
    streamed = metrics.audit_report_streaming(
        _chunks(size, **cols), num_groups=3, num_resamples=0, min_group_size=1000
    )
    in_memory = metrics.audit_report(
        y, pred, s, num_groups=3, scores=x, weights=w, num_resamples=0, min_group_size=1000
    )
    assert_same_report(streamed, in_memory)
    assert streamed["bootstrap"]["method"] == "poisson"


def test_without_labels_or_scores_and_with_an_empty_group():
    _, pred, s, _, _ = _data()
    s = np.where(s == 1, 3, s)  # group 1 has no rows
    streamed = metrics.audit_report_streaming(
        _chunks(500, y_pred=pred, groups=s), num_groups=4, num_resamples=0
    )
    in_memory = metrics.audit_report(None, pred, s, num_groups=4, num_resamples=0)
    assert_same_report(streamed, in_memory)
    assert streamed["omitted"] and "ks_unfairness" not in streamed["metrics"]


def test_ks_is_exact_on_close_scores():
    """Scores that share their first 16 key bits: the KS maximum needs the later passes."""
    rng = np.random.default_rng(3)
    n = 4000
    s = rng.integers(0, 2, n)
    x = (0.5 + 1e-6 * (rng.random(n) + 0.3 * s)).astype(np.float32)
    pred = np.zeros(n, int)
    got = metrics.audit_report_streaming(
        _chunks(999, y_pred=pred, groups=s, scores=x), num_groups=2, num_resamples=0
    )
    want = metrics.audit_report(None, pred, s, num_groups=2, scores=x, num_resamples=0)
    assert got["metrics"]["ks_unfairness"]["estimate"] > 0.1
    assert_same_report(got, want)


@pytest.mark.slow
@pytest.mark.parametrize("weighted", [False, True])
def test_intervals_do_not_depend_on_the_chunks(weighted):
    y, pred, s, x, w = _data(n=2000)
    cols = {"y_true": y, "y_pred": pred, "groups": s, "scores": x}
    if weighted:
        cols["weights"] = w
    reports = [
        metrics.audit_report_streaming(_chunks(size, **cols), num_groups=3, num_resamples=50)
        for size in (333, 2000)
    ]
    for k, m in reports[0]["metrics"].items():
        other = reports[1]["metrics"][k]
        np.testing.assert_allclose([m["lower"], m["upper"]], [other["lower"], other["upper"]],
                                   rtol=1e-5)  # fmt: skip
        assert m["lower"] <= m["estimate"] <= m["upper"] or k == "ks_unfairness"


@pytest.mark.slow
def test_poisson_intervals_cover_like_the_multinomial_ones():
    """Coverage of the true demographic parity gap on simulated data: the streamed (Poisson)
    and in-memory (multinomial) intervals cover about as often as each other and as 90%."""
    rates = np.array([0.3, 0.45])
    truth = rates[1] - rates[0]
    cover = {"poisson": 0, "multinomial": 0}
    reps, n = 150, 400
    for r in range(reps):
        rng = np.random.default_rng(100 + r)
        s = rng.integers(0, 2, n)
        pred = (rng.random(n) < rates[s]).astype(int)
        kw = dict(num_groups=2, num_resamples=300, confidence_level=0.9)
        a = metrics.audit_report_streaming(_chunks(150, y_pred=pred, groups=s), **kw)
        b = metrics.audit_report(None, pred, s, **kw)
        for name, rep in (("poisson", a), ("multinomial", b)):
            m = rep["metrics"]["demographic_parity_difference"]
            cover[name] += m["lower"] <= truth <= m["upper"]
    p, q = cover["poisson"] / reps, cover["multinomial"] / reps
    assert 0.8 <= p <= 0.97 and 0.8 <= q <= 0.97, cover
    assert abs(p - q) <= 0.06, cover


def test_bad_chunks_are_named():
    y, pred, s, _, _ = _data(n=100)
    with pytest.raises(ValueError, match="chunk 1"):
        metrics.audit_report_streaming(
            lambda: iter([{"y_pred": pred, "groups": s}, {"y_pred": pred + 1, "groups": s}]),
            num_groups=3,
        )
    with pytest.raises(ValueError, match="holds"):
        metrics.audit_report_streaming(
            lambda: iter([{"y_pred": pred, "groups": s}, {"y_pred": pred, "groups": s,
                                                           "y_true": y}]),
            num_groups=3,
        )  # fmt: skip
    with pytest.raises(ValueError, match="no rows"):
        metrics.audit_report_streaming(lambda: iter([]), num_groups=2)
