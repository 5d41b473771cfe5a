"""Streamed KS and W1 (metrics._streaming_scores) against the in-memory metrics."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fairjax import metrics
from fairjax.metrics._streaming import _first_pass, _float_keys, _Reader
from fairjax.metrics._streaming_scores import _SCORE_KEYS, _key_ranges


def _data(seed: int, n: int, num_groups: int, *, weighted: bool, decimals: int | None):
    """Unequal groups, shifted scores, ties when rounded, some zero weights."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(num_groups) * 0.7)
    s = rng.choice(num_groups, n, p=p)
    x = rng.normal(size=n) * (1 + 0.2 * s) + 0.3 * s
    if decimals is not None:
        x = np.round(x, decimals)
    x = x.astype(np.float32)
    w = None
    if weighted:
        w = rng.exponential(size=n).astype(np.float32)
        w[rng.random(n) < 0.1] = 0
    return x, s, w


def _chunks(x, s, w, cuts):
    """Uneven chunks at the sorted positions ``cuts``."""
    edges = [0, *cuts, x.size]

    def gen():
        for a, b in itertools.pairwise(edges):
            yield {"scores": x[a:b], "groups": s[a:b], "weights": None if w is None else w[a:b]}

    return gen


def _reference(x, s, w, num_groups):
    """KS, pooled and pairwise W1 in float64 NumPy: CDFs at the distinct pooled points."""
    w = np.ones(x.size) if w is None else w.astype(np.float64)
    pts, inv = np.unique(x.astype(np.float64), return_inverse=True)
    table = np.zeros((pts.size, num_groups))
    np.add.at(table, (inv, s), w)
    tot = table.sum(0)
    present = tot > 0
    cdfs = np.cumsum(table, 0)[:, present] / tot[present]
    pooled = np.cumsum(table.sum(1)) / tot.sum()
    dx = np.diff(pts)[:, None]
    ks = (cdfs.max(1) - cdfs.min(1)).max()
    w1 = (dx * np.abs(cdfs - pooled[:, None])[:-1]).sum(0).max()
    pair = (dx[:, :, None] * np.abs(cdfs[:, :, None] - cdfs[:, None, :])[:-1]).sum(0).max()
    return {"ks": ks, "pooled": w1, "pairwise": pair}


def test_ks_equals_the_in_memory_metric():
    x, s, w = _data(9, 2000, 3, weighted=True, decimals=1)
    want = metrics.ks_unfairness(x, s, num_groups=3, weights=w)
    np.testing.assert_allclose(want, _reference(x, s, w, 3)["ks"], atol=2e-6)
    streamed = metrics.ks_unfairness_streaming(_chunks(x, s, w, [100, 1500]), num_groups=3)
    np.testing.assert_allclose(streamed, want, atol=2e-6)


def test_w1_equals_the_in_memory_metric():
    """Also: the NumPy reference of the cases below is the in-memory metric."""
    x, s, w = _data(9, 2000, 3, weighted=True, decimals=1)
    ref = _reference(x, s, w, 3)
    for r in ("pooled", "pairwise"):
        got = metrics.wasserstein_unfairness(x, s, num_groups=3, weights=w, reference=r)
        np.testing.assert_allclose(got, ref[r], rtol=1e-5)
        streamed = metrics.wasserstein_unfairness_streaming(
            _chunks(x, s, w, [100, 1500]), num_groups=3, reference=r, max_rows_in_memory=100
        )
        np.testing.assert_allclose(streamed, got, rtol=1e-5)


CASES = [  # seed, rows, groups, weighted, decimals (ties), budget
    (0, 3000, 2, False, 2, 10**7),
    (1, 2500, 3, True, 1, 50),
    (2, 4000, 4, True, None, 60),
    (3, 1800, 5, False, 1, 1),
    (4, 3000, 5, True, 3, 300),
]


@pytest.mark.parametrize("seed,n,G,weighted,decimals,budget", CASES)
def test_equal_to_reference(seed, n, G, weighted, decimals, budget):
    x, s, w = _data(seed, n, G, weighted=weighted, decimals=decimals)
    cuts = sorted(np.random.default_rng(seed).choice(n, 4, replace=False))
    chunks = _chunks(x, s, w, cuts)
    ref = _reference(x, s, w, G)
    np.testing.assert_allclose(
        metrics.ks_unfairness_streaming(chunks, num_groups=G), ref["ks"], atol=1e-6
    )
    for reference in ("pooled", "pairwise"):
        w1 = metrics.wasserstein_unfairness_streaming(
            chunks, num_groups=G, reference=reference, max_rows_in_memory=budget
        )
        np.testing.assert_allclose(w1, ref[reference], rtol=1e-6)


def test_empty_group_and_chunk_left_out():
    x, s, _ = _data(5, 1000, 3, weighted=False, decimals=2)
    s = np.where(s == 1, 2, s)  # group 1 empty
    gen = lambda: iter([{"scores": x[:0], "groups": s[:0]}, {"scores": x, "groups": s}])
    ref = _reference(x, s, None, 3)
    np.testing.assert_allclose(
        metrics.ks_unfairness_streaming(gen, num_groups=3), ref["ks"], atol=1e-6
    )
    np.testing.assert_allclose(
        metrics.wasserstein_unfairness_streaming(gen, num_groups=3, max_rows_in_memory=64),
        ref["pooled"],
        rtol=1e-6,
    )


def test_many_rows_on_one_score_need_no_memory():
    """A tied score with more rows than the budget is one key: summed as it is read."""
    rng = np.random.default_rng(6)
    s = rng.integers(0, 2, 5000)
    x = np.where(rng.random(5000) < 0.8, 0.5, rng.random(5000)).astype(np.float32)
    chunks = _chunks(x, s, None, [1000, 2000, 3000])
    got = metrics.wasserstein_unfairness_streaming(chunks, num_groups=2, max_rows_in_memory=10)
    np.testing.assert_allclose(got, _reference(x, s, None, 2)["pooled"], rtol=1e-6)


@pytest.mark.parametrize("budget", [40, 700])
def test_ranges_hold_at_most_the_budget(budget):
    """Scores packed in one first-pass bucket (float32 neighbours of 1.0) are split by the
    counting passes: every range holds at most ``budget`` rows, or a single score."""
    rng = np.random.default_rng(7)
    x = (np.float32(1) + np.float32(2**-23) * rng.integers(0, 3000, 4000)).astype(np.float32)
    s = rng.integers(0, 2, 4000)
    read = _Reader(_chunks(x, s, None, [1000, 2500]), 2, ("scores", "groups"), _SCORE_KEYS)
    brows = _first_pass(read, 2)[3]
    assert brows.max() == 4000  # one bucket at first
    ranges = _key_ranges(read, brows, budget, None)
    keys = _float_keys(x)
    held = [((keys >= lo) & (keys <= hi)).sum() for lo, hi in ranges]
    assert sum(held) == 4000
    assert all(h <= budget or lo == hi for h, (lo, hi) in zip(held, ranges, strict=True))
    assert len(ranges) >= 4000 // budget
    got = metrics.wasserstein_unfairness_streaming(
        _chunks(x, s, None, [1000, 2500]), num_groups=2, max_rows_in_memory=budget
    )
    np.testing.assert_allclose(got, _reference(x, s, None, 2)["pooled"], rtol=1e-6)


def test_single_group_and_far_apart_scores():
    x = np.array([-1e30, 0.0, -0.0, 3.0, 1e30], np.float32)
    s = np.zeros(5, int)
    one = lambda: iter([{"scores": x, "groups": s}])
    assert float(metrics.ks_unfairness_streaming(one, num_groups=2)) == 0.0
    assert float(metrics.wasserstein_unfairness_streaming(one, num_groups=2)) == 0.0
    g = np.array([0, 1, 0, 1, 0])
    two = lambda: iter([{"scores": x, "groups": g}])
    ref = _reference(x, g, None, 2)
    np.testing.assert_allclose(metrics.ks_unfairness_streaming(two, num_groups=2), ref["ks"])
    np.testing.assert_allclose(
        metrics.wasserstein_unfairness_streaming(two, num_groups=2, reference="pairwise"),
        ref["pairwise"],
        rtol=1e-6,
    )


def _one(**chunk):
    base = {"scores": np.array([0.1, 0.2, 0.3]), "groups": np.array([0, 1, 1])}
    base.update(chunk)
    return lambda: iter([{k: a for k, a in base.items() if a is not None}])


@pytest.mark.parametrize(
    "chunks,match",
    [
        (_one(scores=np.array([0.1, np.nan, 0.3])), "`scores` of chunk 0 must be finite"),
        (
            _one(groups=np.array([0, 1, 2])),
            r"`groups` of chunk 0 must hold integer ids in \[0, 2\)",
        ),
        (_one(weights=np.array([1.0, -1.0, 1.0])), "`weights` of chunk 0 must be finite"),
        (_one(weights=np.zeros(3)), "`weights` must not be all zero"),
        (_one(groups=np.array([0, 1])), r"must have shape \(2,\)"),
        (_one(y_pred=np.array([0, 1, 1])), "unknown keys"),
        (lambda: iter([]), "no rows"),
    ],
)
@pytest.mark.parametrize(
    "metric", [metrics.ks_unfairness_streaming, metrics.wasserstein_unfairness_streaming]
)
def test_bad_input_raises_like_in_memory(metric, chunks, match):
    with pytest.raises(ValueError, match=match):
        metric(chunks, num_groups=2)


def test_bad_settings_and_changing_chunks():
    ok = _one()
    with pytest.raises(TypeError, match="`chunks` must be a function"):
        metrics.ks_unfairness_streaming([{"scores": [0.1], "groups": [0]}], num_groups=1)
    with pytest.raises(TypeError, match="'scores' and 'groups'"):
        metrics.ks_unfairness_streaming(lambda: iter([{"groups": [0]}]), num_groups=1)
    with pytest.raises(ValueError, match="num_groups"):
        metrics.ks_unfairness_streaming(ok, num_groups=0)
    with pytest.raises(ValueError, match="reference"):
        metrics.wasserstein_unfairness_streaming(ok, num_groups=2, reference="mean")
    with pytest.raises(ValueError, match="max_rows_in_memory"):
        metrics.wasserstein_unfairness_streaming(ok, num_groups=2, max_rows_in_memory=0)
    calls = []

    def shrinking():
        calls.append(1)
        x = np.linspace(0, 1, 100 - len(calls), dtype=np.float32)
        return iter([{"scores": x, "groups": (np.arange(x.size) % 2)}])

    with pytest.raises(ValueError, match="on a later pass"):
        metrics.wasserstein_unfairness_streaming(shrinking, num_groups=2, max_rows_in_memory=10)

    def rescored():  # as many rows, other scores on every pass (reported by a probe)
        calls.append(1)
        x = np.linspace(0, 1, 100, dtype=np.float32) + np.float32(0.5 * len(calls))
        return iter([{"scores": x, "groups": (np.arange(x.size) % 2)}])

    for metric in (metrics.ks_unfairness_streaming, metrics.wasserstein_unfairness_streaming):
        with pytest.raises(ValueError, match="changed between passes"):
            metric(rescored, num_groups=2)


class _Processes:
    """``allgather`` for threads standing in for processes: a call returns every thread's
    array stacked, once all have made it (the semantics of ``process_allgather``)."""

    def __init__(self, num: int):
        self.barrier, self.slots = threading.Barrier(num, timeout=60), [None] * num

    def allgather(self, i: int):
        def gather(a):
            self.slots[i] = np.array(a)
            self.barrier.wait()
            out = np.stack(self.slots)
            self.barrier.wait()
            return out

        return gather


def _per_process(metric, shares, **kw):
    """``metric`` run by one thread per share of the chunks, joined by ``allgather``."""
    group = _Processes(len(shares))
    with ThreadPoolExecutor(len(shares)) as pool:
        runs = [pool.submit(metric, share, allgather=group.allgather(i), **kw)
                for i, share in enumerate(shares)]  # fmt: skip
        return [float(r.result()) for r in runs]


@pytest.mark.parametrize("weighted", [False, True])
def test_several_processes_equal_one(weighted):
    """Three processes (one with no rows) each read their own chunks: every one returns the
    metric of all rows; without ``allgather`` each would return its own share's."""
    x, s, w = _data(8, 3000, 3, weighted=weighted, decimals=2)
    shares = [_chunks(x[:1700], s[:1700], None if w is None else w[:1700], [500]),
              _chunks(x[:0], s[:0], None if w is None else w[:0], []),
              _chunks(x[1700:], s[1700:], None if w is None else w[1700:], [300, 900])]  # fmt: skip
    ref = _reference(x, s, w, 3)
    ks = _per_process(metrics.ks_unfairness_streaming, shares, num_groups=3)
    np.testing.assert_allclose(ks, [ref["ks"]] * 3, atol=1e-6)
    for r in ("pooled", "pairwise"):
        w1 = _per_process(metrics.wasserstein_unfairness_streaming, shares, num_groups=3,
                          reference=r, max_rows_in_memory=200)  # fmt: skip
        np.testing.assert_allclose(w1, [ref[r]] * 3, rtol=1e-6)
    alone = float(metrics.ks_unfairness_streaming(shares[0], num_groups=3))
    assert abs(alone - ref["ks"]) > 1e-3  # the control: one share is not all rows


def test_string_group_labels_get_a_message_naming_groups():
    chunk = {"scores": np.ones(3, np.float32), "groups": np.array(["a", "b", "a"])}
    with pytest.raises(ValueError, match="`groups` of chunk 0 must hold integer ids"):
        metrics.ks_unfairness_streaming(lambda: iter([chunk]), num_groups=2)
