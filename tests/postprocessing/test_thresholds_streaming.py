"""Tests of fairjax.postprocessing._thresholds_streaming: the streamed fit equals fit_thresholds
on the concatenated chunks (every field of the state, and the decisions) for every criterion
and objective, with heavy ties, weights, groups of unequal sizes split unevenly over chunks,
and refinement forced; the buckets it resolves hold every vertex of roc_hull; bad input."""

import itertools

import numpy as np
import pytest

from fairjax._keys import float_keys, key_floats
from fairjax.postprocessing import _thresholds_streaming as ts
from fairjax.postprocessing import (
    apply_thresholds,
    fit_thresholds,
    fit_thresholds_streaming,
    roc_hull,
)

CRITERIA = ("demographic_parity", "equal_opportunity", "false_positive_parity", "equalized_odds")
OBJECTIVES = ("accuracy", "balanced_accuracy", "weighted_errors")
FIELDS = ("scores", "labels", "groups", "weights")


def _data(seed, n=240, num_groups=3, *, decimals=None, weights=None, one_bucket=False):
    """Groups of sizes proportional to 1, 2, ..., G; scores of a noisy model."""
    rng = np.random.default_rng(seed)
    p = np.arange(1, num_groups + 1) / (num_groups * (num_groups + 1) / 2)
    g = rng.choice(num_groups, n, p=p).astype(np.int32)
    s = rng.random(n)
    if one_bucket:  # every score in [0.5, 0.5 + 2^-9): one bucket of the top 16 key bits
        s = 0.5 + s * 2.0**-9
    y = (rng.random(n) < 0.15 + 0.7 * (s - s.min()) / np.ptp(s) ** (1 + 0.3 * g)).astype(int)
    if decimals is not None:
        s = np.round(s, decimals)
    g[: 2 * num_groups] = np.tile(np.arange(num_groups), 2)  # both labels in every group
    y[: 2 * num_groups] = np.repeat([0, 1], num_groups)
    w = None
    if weights == "integer":
        w = rng.integers(1, 4, n).astype(np.float32)
    elif weights == "float":
        w = rng.uniform(0.1, 2.0, n).astype(np.float32)
    return s.astype(np.float32), y, g, w


def _stream(*arrays, sizes=(97, 0, 1, 60), mapping=False):
    """A chunks function over ``arrays`` cut at ``sizes`` (then the rest), and its call log."""
    n = arrays[0].shape[0]
    cuts = np.r_[0, np.cumsum(sizes), n]
    calls = []

    def chunks():
        calls.append(None)
        for a, b in itertools.pairwise(cuts):
            part = [x[a:b] for x in arrays if x is not None]
            yield dict(zip(FIELDS, part, strict=False)) if mapping else tuple(part)

    return chunks, calls


def _assert_equal(streamed, in_memory, s, g, *, exact=True):
    for field in in_memory._fields:
        a, b = np.asarray(getattr(streamed, field)), np.asarray(getattr(in_memory, field))
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=field)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=field)
    p, q = (
        np.asarray(apply_thresholds(streamed, s, g)),
        np.asarray(apply_thresholds(in_memory, s, g)),
    )
    if exact:
        np.testing.assert_array_equal(p, q)
    else:
        np.testing.assert_allclose(p, q, atol=1e-4)


def _both(s, y, g, w, num_groups, *, sizes=(97, 0, 1, 60), **options):
    chunks, calls = _stream(s, y, g, w, sizes=sizes)
    streamed = fit_thresholds_streaming(chunks, num_groups=num_groups, **options)
    in_memory = fit_thresholds(s, y, g, num_groups=num_groups, weights=w, **options)
    return streamed, in_memory, len(calls)


@pytest.mark.parametrize("crit", CRITERIA)
def test_equals_in_memory_with_heavy_ties(crit):
    s, y, g, _ = _data(0, decimals=2)
    streamed, in_memory, _ = _both(s, y, g, None, 3, criterion=crit, tolerance=0.02)
    _assert_equal(streamed, in_memory, s, g)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_equals_in_memory_for_every_objective(objective):
    s, y, g, w = _data(1, weights="integer")
    costs = dict(false_positive_cost=2.0, false_negative_cost=0.5)
    for tol in (0.0, 0.05, 0.3):
        streamed, in_memory, _ = _both(
            s, y, g, w, 3, criterion="equal_opportunity", tolerance=tol, objective=objective,
            **costs,
        )  # fmt: skip
        _assert_equal(streamed, in_memory, s, g)


def test_float_weights_equal_to_float_rounding():
    s, y, g, w = _data(2, weights="float")
    streamed, in_memory, _ = _both(s, y, g, w, 3, criterion="demographic_parity", tolerance=0.01)
    _assert_equal(streamed, in_memory, s, g, exact=False)
    # the hull's vertices are the same: so are the thresholds
    np.testing.assert_array_equal(np.asarray(streamed.lower), np.asarray(in_memory.lower))


def test_scores_in_one_bucket_force_two_refining_passes():
    s, y, g, _ = _data(3, one_bucket=True)
    assert np.unique(float_keys(s) >> 16).size == 1
    streamed, in_memory, passes = _both(s, y, g, None, 3, criterion="false_positive_parity")
    assert passes == 3
    _assert_equal(streamed, in_memory, s, g)


def test_negative_float64_scores_and_signed_zeros():
    s, y, g, _ = _data(4, decimals=1)
    x = (s.astype(np.float64) - 0.5) * 40  # logits, rounded: -0.0 and 0.0 are one score
    x[np.flatnonzero(x == 0)[::2]] = -0.0
    assert np.signbit(x[x == 0]).any() and (~np.signbit(x[x == 0])).any()
    streamed, in_memory, _ = _both(x, y, g, None, 3, criterion="demographic_parity")
    _assert_equal(streamed, in_memory, x.astype(np.float32), g)


def test_groups_in_their_own_chunks_and_mapping_chunks():
    s, y, g, w = _data(5, weights="integer")
    order = np.argsort(g, kind="stable")
    s, y, g, w = s[order], y[order], g[order], w[order]
    chunks, _ = _stream(s, y, g, w, sizes=(5, 150), mapping=True)
    streamed = fit_thresholds_streaming(chunks, num_groups=3, criterion="equalized_odds")
    in_memory = fit_thresholds(s, y, g, num_groups=3, weights=w, criterion="equalized_odds")
    _assert_equal(streamed, in_memory, s, g)


def test_passes_over_the_budget_give_the_same_fit(monkeypatch):
    s, y, g, _ = _data(6, one_bucket=True)
    monkeypatch.setattr(ts, "_MAX_PARENTS", 1)
    streamed, in_memory, passes = _both(s, y, g, None, 3, criterion="demographic_parity")
    assert passes > 3
    _assert_equal(streamed, in_memory, s, g)


def test_resolved_points_hold_every_hull_vertex_and_are_few():
    s, y, g, _ = _data(7, n=6000)
    chunks, calls = _stream(s, y, g, None, sizes=(2500, 1))
    b = ts._resolve(ts._Reader(chunks, 3), 3, "demographic_parity")
    hull = roc_hull(s, y, g, num_groups=3)
    for k in range(3):
        sl = slice(int(hull.start[k]), int(hull.start[k] + hull.count[k]))
        fp, tp = np.asarray(hull.false_positives[sl]), np.asarray(hull.true_positives[sl])
        mine = b.group == k
        fpk, tpk = np.cumsum(b.neg[mine]), np.cumsum(b.pos[mine])
        points = set(zip(fpk.tolist(), tpk.tolist(), strict=True)) | {(0.0, 0.0)}
        assert set(zip(fp.tolist(), tp.tolist(), strict=True)) <= points
        # each vertex at its threshold: the smallest score of the bucket that ends there
        at = {p: low for p, low in zip(zip(fpk, tpk, strict=True), b.low[mine], strict=True)}
        thresholds = np.asarray(hull.thresholds[sl])[1:-1]
        keys = [at[p] for p in zip(fp[1:-1].tolist(), tp[1:-1].tolist(), strict=True)]
        np.testing.assert_array_equal(key_floats(np.asarray(keys)),
                                      thresholds)  # fmt: skip
    assert b.group.size < np.unique(np.c_[s, g], axis=0).shape[0] / 4
    assert len(calls) <= 3


def test_chunk_errors_are_those_of_fit_thresholds():
    s, y, g, _ = _data(8)
    s_nan = s.copy()
    s_nan[150] = np.nan
    with pytest.raises(ValueError) as direct:
        fit_thresholds(s_nan, y, g, num_groups=3)
    with pytest.raises(ValueError) as streamed:
        fit_thresholds_streaming(_stream(s_nan, y, g)[0], num_groups=3)
    assert "`scores` must be finite" in str(direct.value)
    assert str(streamed.value) == f"chunk 3: {direct.value}"
    y_no_pos = np.where(g == 1, 0, y)
    with pytest.raises(ValueError) as direct:
        fit_thresholds(s, y_no_pos, g, num_groups=3, criterion="equal_opportunity")
    with pytest.raises(ValueError) as streamed:
        fit_thresholds_streaming(
            _stream(s, y_no_pos, g)[0], num_groups=3, criterion="equal_opportunity"
        )
    assert str(streamed.value) == str(direct.value) and "group(s) [1]" in str(direct.value)
    with pytest.raises(ValueError, match=r"chunk 0: `groups` ids must lie in \[0, num_groups=2"):
        fit_thresholds_streaming(_stream(s, y, g)[0], num_groups=2)
    with pytest.raises(ValueError, match="chunk 0: `labels` must be binary"):
        fit_thresholds_streaming(_stream(s, y + 1, g)[0], num_groups=3)


def test_bad_streams():
    s, y, g, w = _data(9, weights="integer")
    with pytest.raises(ValueError, match="gave no rows"):
        fit_thresholds_streaming(lambda: iter(()), num_groups=3)
    with pytest.raises(ValueError, match="gave no rows"):
        fit_thresholds_streaming(lambda: iter([(s[:0], y[:0], g[:0])]), num_groups=3)
    with pytest.raises(ValueError, match="must not be all zero"):
        fit_thresholds_streaming(_stream(s, y, g, 0 * w)[0], num_groups=3)
    with pytest.raises(TypeError, match="`chunks` must be a function"):
        fit_thresholds_streaming([(s, y, g)], num_groups=3)
    with pytest.raises(TypeError, match="chunk 0 must be a tuple"):
        fit_thresholds_streaming(lambda: iter([(s, y)]), num_groups=3)
    with pytest.raises(ValueError, match="unknown"):
        fit_thresholds_streaming(lambda: iter([{"scores": s, "labels": y, "g": g}]), num_groups=3)
    with pytest.raises(ValueError, match="chunk 0: `weights` must be non-negative"):
        fit_thresholds_streaming(_stream(s, y, g, -w)[0], num_groups=3)
    with pytest.raises(ValueError, match="`tolerance`"):
        fit_thresholds_streaming(_stream(s, y, g)[0], num_groups=3, tolerance=2.0)
    s = _data(10, one_bucket=True)[0]  # forces a second pass
    sizes = iter((200, 199))

    def shrinking():  # the second pass gets fewer rows
        m = next(sizes)
        return iter([(s[:m], y[:m], g[:m])])

    with pytest.raises(ValueError, match="199 rows on a later pass, 200 first"):
        fit_thresholds_streaming(shrinking, num_groups=3)
    passes = itertools.count()

    def rescored():  # the same rows, with other scores on every pass (reported by a probe)
        return iter([(s + np.float32(2.0**-12 * next(passes)), y, g)])

    with pytest.raises(ValueError, match="changed between passes"):
        fit_thresholds_streaming(rescored, num_groups=3)


@pytest.mark.slow
@pytest.mark.parametrize("num_groups", (2, 5))
@pytest.mark.parametrize("crit", CRITERIA)
def test_every_criterion_objective_and_tolerance_with_2_and_5_groups(crit, num_groups):
    s, y, g, w = _data(11 + num_groups, n=250, num_groups=num_groups, decimals=2,
                       weights="integer")  # fmt: skip
    for objective in OBJECTIVES:
        for tol in (0.0, 0.03, 0.2):
            streamed, in_memory, passes = _both(
                s, y, g, w, num_groups, sizes=(33, 0, 1, 70, 17), criterion=crit, tolerance=tol,
                objective=objective, false_positive_cost=1.5,
            )  # fmt: skip
            _assert_equal(streamed, in_memory, s, g)
            assert passes <= 3


@pytest.mark.slow
@pytest.mark.parametrize("crit", ("demographic_parity", "equalized_odds"))
def test_many_distinct_scores_in_many_chunks(crit):
    s, y, g, _ = _data(20, n=20_000, num_groups=4)
    sizes = tuple(np.random.default_rng(0).integers(0, 3000, 8))
    streamed, in_memory, passes = _both(s, y, g, None, 4, sizes=sizes, criterion=crit,
                                        tolerance=0.01)  # fmt: skip
    _assert_equal(streamed, in_memory, s, g)
    assert passes <= 3
