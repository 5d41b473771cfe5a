"""Tests of fairjax.postprocessing._thresholds and _hull: the LP optimum against scipy's linprog
over every ROC point and a brute-force search over threshold pairs, on both paths (the host
path, NumPy and HiGHS, for concrete inputs on the CPU; the compiled path under jit, vmap or on
an accelerator); randomisation; jit/vmap."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.spatial import ConvexHull

from fairjax import criteria
from fairjax import postprocessing as pp
from fairjax.postprocessing import _hull, _thresholds

CRITERIA = ("demographic_parity", "equal_opportunity", "false_positive_parity", "equalized_odds")
KEY = jax.random.key(0)


def _data(seed, n=60, num_groups=3, ties=True, weighted=False):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, num_groups, n).astype(np.int32)
    s = rng.normal(size=n) + 0.4 * g
    if ties:
        s = np.round(s, 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-1.5 * s + 0.5 * g))).astype(np.int32)
    y[:num_groups] = 1  # every group has both labels
    y[num_groups : 2 * num_groups] = 0
    g[: 2 * num_groups] = np.tile(np.arange(num_groups), 2)
    w = rng.uniform(0.2, 2.0, n) if weighted else np.ones(n)
    return s.astype(np.float32), y, g, w.astype(np.float32)


def _roc_points(s, y, w):
    """Every ROC point of one group in weighted counts (FP, TP), thresholds +inf first."""
    levels = np.r_[np.inf, np.unique(s)[::-1]]
    fp = np.array([w[(s >= t) & (y == 0)].sum() for t in levels])
    tp = np.array([w[(s >= t) & (y == 1)].sum() for t in levels])
    return fp, tp


def _coefficients(y, w, objective, costs=(1.0, 1.0)):
    if objective == "balanced_accuracy":
        return 1 / w[y == 1].sum(), 1 / w[y == 0].sum()
    if objective == "weighted_errors":
        return costs[1], costs[0]
    return 1.0, 1.0


def _linprog_optimum(s, y, g, w, num_groups, crit, tol, objective="accuracy", costs=(1, 1)):
    """The LP over mixtures of every ROC point of each group (no hull), by scipy."""
    ca, cb = _coefficients(y, w, objective, costs)
    pts = [_roc_points(s[g == k], y[g == k], w[g == k]) for k in range(num_groups)]
    sizes = [len(p[0]) for p in pts]
    off = np.r_[0, np.cumsum(sizes)]
    nv = off[-1]
    c = np.zeros(nv)
    a_eq = np.zeros((num_groups, nv))
    rates = {key: np.zeros((num_groups, nv)) for key in ("dp", "tpr", "fpr")}
    for k, (fp, tp) in enumerate(pts):
        sl = slice(off[k], off[k + 1])
        c[sl] = -(ca * tp - cb * fp)
        a_eq[k, sl] = 1
        P, N = w[(g == k) & (y == 1)].sum(), w[(g == k) & (y == 0)].sum()
        rates["dp"][k, sl] = (tp + fp) / (P + N)
        rates["tpr"][k, sl] = tp / P
        rates["fpr"][k, sl] = fp / N
    which = {
        "demographic_parity": ["dp"],
        "equal_opportunity": ["tpr"],
        "false_positive_parity": ["fpr"],
        "equalized_odds": ["tpr", "fpr"],
    }[crit]
    rows = []
    for key in which:
        for i, j in itertools.permutations(range(num_groups), 2):
            rows.append(rates[key][i] - rates[key][j])
    res = linprog(
        c,
        A_ub=np.array(rows),
        b_ub=np.full(len(rows), tol),
        A_eq=a_eq,
        b_eq=np.ones(num_groups),
        bounds=(0, None),
        method="highs",
    )
    assert res.status == 0
    return -res.fun


def _our_value(state, y, w, objective, costs=(1, 1)):
    ca, cb = _coefficients(y, w, objective, costs)
    st = jax.tree.map(np.asarray, state)
    return float(np.sum(ca * st.positives * st.tpr - cb * st.negatives * st.fpr))


SLOW = pytest.mark.slow


@pytest.fixture(params=["host", "compiled"])
def path(request, monkeypatch):
    """Runs a test on the host path and again on the compiled path (as on an accelerator)."""
    if request.param == "compiled":
        monkeypatch.setattr(_thresholds, "_use_host", lambda *arrays: False)
    return request.param


@pytest.mark.parametrize(
    ("crit", "tol"),
    [("demographic_parity", 0.07), ("equalized_odds", 0.07)]
    + [
        pytest.param(c, t, marks=SLOW)
        for c in CRITERIA
        for t in (0.0, 0.07)
        if (c, t) not in (("demographic_parity", 0.07), ("equalized_odds", 0.07))
    ],
)
def test_optimum_equals_linprog(crit, tol, path):
    s, y, g, w = _data(1, weighted=True)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion=crit, tolerance=tol, weights=w)
    ours = _our_value(st, y, w, "accuracy")
    ref = _linprog_optimum(s, y, g, w, 3, crit, tol)
    assert ours == pytest.approx(ref, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize(
    ("objective", "costs"),
    [("balanced_accuracy", (1, 1)), ("weighted_errors", (1.0, 3.0)), ("weighted_errors", (4, 1))],
)
@pytest.mark.parametrize("crit", ["demographic_parity", "equalized_odds"])
@SLOW
def test_objectives_equal_linprog(objective, costs, crit, path):
    s, y, g, w = _data(2, n=50, num_groups=2)
    st = pp.fit_thresholds(
        s,
        y,
        g,
        num_groups=2,
        criterion=crit,
        tolerance=0.03,
        objective=objective,
        false_positive_cost=costs[0],
        false_negative_cost=costs[1],
    )
    ours = _our_value(st, y, w, objective, costs)
    ref = _linprog_optimum(s, y, g, w, 2, crit, 0.03, objective, costs)
    assert ours == pytest.approx(ref, rel=1e-5, abs=1e-6)


def _brute_force_one_rate(s, y, g, num_groups, crit, tol):
    """Best accuracy (times n) over all pairs of thresholds per group mixed at a common window."""
    groups = []
    for k in range(num_groups):
        m = g == k
        fp, tp = _roc_points(s[m], y[m], np.ones(m.sum()))
        P, N = y[m].sum(), (1 - y[m]).sum()
        rate = {
            "demographic_parity": (tp + fp) / (P + N),
            "equal_opportunity": tp / P,
            "false_positive_parity": fp / N,
        }[crit]
        groups.append((rate, tp - fp))
    allr = np.unique(np.concatenate([r for r, _ in groups]))
    best = -np.inf
    for L in np.unique(np.r_[allr, allr - tol]):
        total = 0.0
        for rate, obj in groups:
            gbest = -np.inf
            for i, j in itertools.product(range(len(rate)), repeat=2):
                lo, hi = max(L, min(rate[i], rate[j])), min(L + tol, max(rate[i], rate[j]))
                if lo > hi + 1e-12:
                    continue
                for t in (lo, hi):  # the mixture's objective is linear in its rate
                    lam = 0.0 if rate[j] == rate[i] else (t - rate[i]) / (rate[j] - rate[i])
                    gbest = max(gbest, obj[i] + lam * (obj[j] - obj[i]))
            total += gbest
        best = max(best, total)
    return best


@pytest.mark.parametrize(
    ("crit", "tol"),
    [("demographic_parity", 0.1)]
    + [
        pytest.param(c, t, marks=SLOW)
        for c in ("demographic_parity", "equal_opportunity", "false_positive_parity")
        for t in (0.0, 0.1)
        if (c, t) != ("demographic_parity", 0.1)
    ],
)
def test_one_rate_equals_brute_force_over_threshold_pairs(crit, tol, path):
    s, y, g, w = _data(3, n=36)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion=crit, tolerance=tol)
    assert _our_value(st, y, w, "accuracy") == pytest.approx(
        _brute_force_one_rate(s, y, g, 3, crit, tol), rel=1e-5, abs=1e-5
    )


@pytest.mark.parametrize(("seed", "n", "num_groups"), [(51, 40, 2), (9, 60, 3)])
def test_window_ending_at_a_best_rate_is_found_despite_rounding(seed, n, num_groups, path):
    # The optimal window [r - tol, r] ends at a group's best FPR r, and in float32
    # (r - tol) + tol can be < r (as for r = 2/21, tol = 0.02): recomputing the window's end
    # made that group seem to gain from a larger window, and the compiled search stepped past
    # the optimum.
    s, y, g, w = _data(seed, n=n, num_groups=num_groups)
    st = pp.fit_thresholds(
        s, y, g, num_groups=num_groups, criterion="false_positive_parity", tolerance=0.02
    )
    ref = _linprog_optimum(s, y, g, w, num_groups, "false_positive_parity", 0.02)
    assert _our_value(st, y, w, "accuracy") == pytest.approx(ref, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize(
    "crit",
    ["demographic_parity", "equalized_odds"]
    + [pytest.param(c, marks=SLOW) for c in ("equal_opportunity", "false_positive_parity")],
)
def test_rule_reaches_its_operating_points_and_constraint(crit, path):
    """The stored rule, applied to the calibration data, has the stored rates and gaps."""
    s, y, g, w = _data(4, n=250, weighted=True)
    tol = 0.02
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion=crit, tolerance=tol, weights=w)
    p = pp.apply_thresholds(st, s, g)
    tpr, _ = criteria.group_rates(p, g, y, criterion="equal_opportunity", num_groups=3, weights=w)
    fpr, _ = criteria.group_rates(
        p, g, y, criterion="false_positive_parity", num_groups=3, weights=w
    )
    np.testing.assert_allclose(tpr[0], st.tpr, atol=2e-6)
    np.testing.assert_allclose(fpr[0], st.fpr, atol=2e-6)
    rates, counts = criteria.group_rates(p, g, y, criterion=crit, num_groups=3, weights=w)
    assert np.all(np.asarray(criteria.largest_gap(rates, counts)) <= tol + 1e-5)
    assert np.all((np.asarray(st.probabilities) >= 0) & (np.asarray(st.probabilities) <= 1))


def test_roc_hull_matches_scipy():
    s, y, g, w = _data(5, n=200, weighted=True)
    hull = pp.roc_hull(s, y, g, num_groups=3, weights=w)
    for k in range(3):
        fp, tp = _roc_points(s[g == k], y[g == k], w[g == k])
        pts = np.c_[fp, tp]
        ext = np.r_[pts, [[fp[-1], 0.0]]]  # a corner below closes the upper hull
        vert = {tuple(np.round(ext[i], 4).tolist()) for i in ConvexHull(ext).vertices} - {
            tuple(np.round([fp[-1], 0.0], 4).tolist())
        }
        a, c = int(hull.start[k]), int(hull.count[k])
        ours = {
            (round(float(x), 4), round(float(t), 4))
            for x, t in zip(
                hull.false_positives[a : a + c], hull.true_positives[a : a + c], strict=True
            )
        }
        assert ours == vert
        th = np.asarray(hull.thresholds[a : a + c])
        assert th[0] == np.inf and th[-1] == -np.inf and np.all(np.diff(th) < 0)


def test_drawn_decisions_have_the_expected_frequencies():
    s, y, g, _ = _data(6, n=40)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion="equalized_odds", tolerance=0.0)
    p = pp.apply_thresholds(st, s, g)
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = jax.vmap(lambda k: pp.apply_thresholds(st, s, g, key=k))(keys)
    assert set(np.unique(np.asarray(draws)).tolist()) <= {0.0, 1.0}
    freq = np.asarray(draws.mean(0))
    # binomial standard error at most 0.5 / sqrt(4000) ~ 0.008: 5 of them
    np.testing.assert_allclose(freq, np.asarray(p), atol=0.04)
    assert np.any((np.asarray(p) > 0) & (np.asarray(p) < 1))  # some rows are randomised


@SLOW
def test_jit_and_vmap_over_tolerance():
    s, y, g, _ = _data(7, n=120, num_groups=3)
    tols = jnp.array([0.0, 0.05, 0.2])
    for crit in ("demographic_parity", "equalized_odds"):
        fronts = jax.vmap(
            lambda t, c=crit: pp.fit_thresholds(s, y, g, num_groups=3, criterion=c, tolerance=t)
        )(tols)
        jitted = jax.jit(
            lambda t, c=crit: pp.fit_thresholds(s, y, g, num_groups=3, criterion=c, tolerance=t)
        )
        for i, t in enumerate(tols):
            one = jitted(t)  # the compiled path, like every vmapped fit
            np.testing.assert_allclose(fronts.tpr[i], one.tpr, atol=1e-6)
            np.testing.assert_allclose(fronts.fpr[i], one.fpr, atol=1e-6)
            host = pp.fit_thresholds(s, y, g, num_groups=3, criterion=crit, tolerance=float(t))
            assert _our_value(host, y, None, "accuracy") == pytest.approx(
                _our_value(one, y, None, "accuracy"), rel=1e-5, abs=1e-5
            )
        vals = [
            _our_value(jax.tree.map(lambda a, i=i: a[i], fronts), y, None, "accuracy")
            for i in range(3)
        ]
        assert vals[0] <= vals[1] + 1e-5 <= vals[2] + 2e-5  # a looser constraint never hurts


def test_weights_equal_repeated_rows(path):
    s, y, g, _ = _data(8, n=50)
    w = np.random.default_rng(0).integers(0, 3, 50)
    w[:6] = 1
    a = pp.fit_thresholds(
        s, y, g, num_groups=3, criterion="equalized_odds", weights=w, tolerance=0.05
    )
    rep = np.repeat(np.arange(50), w)
    b = pp.fit_thresholds(
        s[rep], y[rep], g[rep], num_groups=3, criterion="equalized_odds", tolerance=0.05
    )
    assert _our_value(a, y, w.astype(float), "accuracy") == pytest.approx(
        _our_value(b, y, None, "accuracy"), abs=1e-4
    )


def test_all_tied_scores_give_a_coin_flip(path):
    s = np.zeros(30, np.float32)
    y = np.array([0, 1] * 15)
    g = np.repeat(np.arange(3), 10)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion="demographic_parity")
    p = np.asarray(pp.apply_thresholds(st, s, g))
    assert np.allclose(p, p[0])  # one rate for everybody: no score to separate rows


def test_bad_input():
    s, y, g, _ = _data(9, n=30, num_groups=2)
    with pytest.raises(ValueError, match="labels"):
        pp.fit_thresholds(s, y + 1, g, num_groups=2)
    with pytest.raises(ValueError, match="groups"):
        pp.fit_thresholds(s, y, g + 5, num_groups=2)
    with pytest.raises(ValueError, match="tolerance"):
        pp.fit_thresholds(s, y, g, num_groups=2, tolerance=-0.1)
    with pytest.raises(ValueError, match="criterion"):
        pp.fit_thresholds(s, y, g, num_groups=2, criterion="calibration")
    with pytest.raises(ValueError, match="objective"):
        pp.fit_thresholds(s, y, g, num_groups=2, objective="f1")
    with pytest.raises(ValueError, match="scores"):
        pp.fit_thresholds(np.where(np.arange(30) == 3, np.nan, s), y, g, num_groups=2)
    with pytest.raises(ValueError, match="positive rows"):
        yy = np.where(g == 1, 0, y)
        pp.fit_thresholds(s, yy, g, num_groups=2, criterion="equalized_odds")
    with pytest.raises(ValueError, match="weights"):
        pp.fit_thresholds(s, y, g, num_groups=2, weights=-np.ones(30))
    st = pp.fit_thresholds(s, y, g, num_groups=2)
    with pytest.raises(TypeError, match="state"):
        pp.apply_thresholds(None, s, g)
    with pytest.raises(ValueError, match="groups"):
        pp.apply_thresholds(st, s, g + 2)


@pytest.mark.parametrize("bad", ["nan score", "nan weight", "nan tolerance", "negative tolerance"])
def test_invalid_traced_input_gives_a_nan_state(bad):
    # Under jit the value checks cannot run; a NaN score used to fit finite rules from the
    # other rows, and a NaN tolerance a "select nobody" rule with equal rates, which reads as
    # exactly fair (reported by a probe). The valid call in the same program is unchanged.
    s, y, g, _ = _data(9, n=60, num_groups=2)
    w, tol = np.ones(60, np.float32), 0.05
    if bad == "nan score":
        s = np.where(np.arange(60) == 3, np.nan, s).astype(s.dtype)
    elif bad == "nan weight":
        w[3] = np.nan
    else:
        tol = np.nan if bad == "nan tolerance" else -0.5
    fit = jax.jit(lambda s, w, t: pp.fit_thresholds(s, y, g, num_groups=2, weights=w, tolerance=t))
    for leaf in fit(s, w, tol):
        assert np.isnan(np.asarray(leaf)).all()
    valid = fit(_data(9, n=60, num_groups=2)[0], np.ones(60, np.float32), 0.05)
    assert not any(np.isnan(np.asarray(leaf)).any() for leaf in valid)


def test_apply_under_jit_gives_nan_for_a_nan_score_or_a_group_out_of_range():
    # Under jit the value checks cannot run: a NaN score took the "below lower" probability
    # and an id past the groups was clamped to the last group's rule (reported by a probe);
    # all-NaN scores gave equal selection rates, which read as fair.
    s, y, g, _ = _data(4, n=80, num_groups=2)
    st = pp.fit_thresholds(s, y, g, num_groups=2, tolerance=0.05)
    apply = jax.jit(pp.apply_thresholds)
    bad_s = np.where(np.arange(80) == 3, np.nan, s).astype(s.dtype)
    bad_g = np.where(np.arange(80) == 5, 7, g).astype(g.dtype)
    got = np.asarray(apply(st, bad_s, bad_g))
    assert np.isnan(got[[3, 5]]).all()
    keep = np.ones(80, bool)
    keep[[3, 5]] = False
    np.testing.assert_array_equal(got[keep], np.asarray(pp.apply_thresholds(st, s, g))[keep])
    # Drawn decisions too: uniform < NaN read as a firm 0 (found by review).
    drawn = np.asarray(jax.jit(pp.apply_thresholds)(st, bad_s, bad_g, key=jax.random.key(0)))
    assert np.isnan(drawn[[3, 5]]).all() and set(np.unique(drawn[keep])) <= {0.0, 1.0}
    member = jax.nn.one_hot(g, 2)
    mixed = np.asarray(jax.jit(pp.apply_thresholds)(st, bad_s, member))
    assert np.isnan(mixed[3]) and not np.isnan(np.delete(mixed, 3)).any()


def test_a_float32_state_reads_float64_scores_as_its_fit_did():
    # The streamed fit compares scores in float32. Applied to float64 scores under x64, rows
    # at a threshold fell on the other side of it: tolerance 0 gave a gap of 0.0014, and the
    # state's rates were off by 2.5 points (reported by a probe).
    rng = np.random.default_rng(0)
    grid = np.round(np.arange(1, 100) / 100, 2)
    grid = grid[np.float32(grid).astype(np.float64) > grid]  # float32 rounds each one up
    n = 4000
    g = rng.integers(0, 2, n).astype(np.int32)
    s = rng.choice(grid, n)
    y = (rng.random(n) < s).astype(np.int32)
    with jax.enable_x64(True):
        st = pp.fit_thresholds_streaming(lambda: [(s, y, g)], num_groups=2,
                                         criterion="equalized_odds")  # fmt: skip
        assert st.lower.dtype == np.float32
        p = np.asarray(pp.apply_thresholds(st, s, g), np.float64)
    for k in range(2):
        pos, neg = (g == k) & (y == 1), (g == k) & (y == 0)
        np.testing.assert_allclose(p[pos].mean(), float(st.tpr[k]), atol=1e-6)
        np.testing.assert_allclose(p[neg].mean(), float(st.fpr[k]), atol=1e-6)


def test_vmap_over_tolerance_equals_single_fits():
    s, y, g, _ = _data(7, n=120)
    tols = jnp.array([0.0, 0.05, 0.2])
    fronts = jax.vmap(
        lambda t: pp.fit_thresholds(
            s, y, g, num_groups=3, criterion="demographic_parity", tolerance=t
        )
    )(tols)
    for i, t in enumerate(tols):
        one = jax.jit(
            lambda t: pp.fit_thresholds(
                s, y, g, num_groups=3, criterion="demographic_parity", tolerance=t
            )
        )(t)
        np.testing.assert_allclose(fronts.tpr[i], one.tpr, atol=1e-6)


def test_membership_matrix_mixes_the_group_rules(path):
    s, y, g, _ = _data(10, n=60)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion="demographic_parity", tolerance=0.0)
    hard = np.asarray(pp.apply_thresholds(st, s, g))
    onehot = np.eye(3, dtype=np.float32)[g]
    np.testing.assert_allclose(pp.apply_thresholds(st, s, onehot), hard, atol=1e-7)
    soft = np.full((60, 3), 1 / 3, np.float32)
    each = [np.asarray(pp.apply_thresholds(st, s, np.full(60, k))) for k in range(3)]
    np.testing.assert_allclose(pp.apply_thresholds(st, s, soft), np.mean(each, 0), atol=1e-6)
    with pytest.raises(ValueError, match="sum to 1"):
        pp.apply_thresholds(st, s, 2 * onehot)


def test_hull_is_exact_for_integer_counts_past_the_float32_products():
    # Per group, b = (4097, q) lies on the chord from (0, 0) to c = 3 b: not a vertex. The two
    # products of the cross product are 3 * 4097 * q, beyond float32's integers (rounded up for
    # q = 4097, down for q = 4099): a float cross product, fused (FMA) or not, can leave b on
    # the hull of one of the groups.
    q = np.array([4097.0, 4099.0])
    s = np.tile(np.array([0.9, 0.9, 0.5, 0.5, 0.1], np.float32), 2)
    y = np.tile([0, 1, 0, 1, 0], 2)
    g = np.repeat([0, 1], 5)
    w = np.concatenate([[4097, qk, 2 * 4097, 2 * qk, 1] for qk in q]).astype(np.float32)
    hull = pp.roc_hull(s, y, g, num_groups=2, weights=w)
    for k in range(2):
        sl = slice(int(hull.start[k]), int(hull.start[k] + hull.count[k]))
        np.testing.assert_array_equal(hull.false_positives[sl], [0, 3 * 4097, 3 * 4097 + 1])
        np.testing.assert_array_equal(hull.true_positives[sl], [0, 3 * q[k], 3 * q[k]])


@pytest.mark.slow
def test_one_rate_criteria_and_objectives_share_one_compiled_program(caplog, monkeypatch):
    # The criterion and objective indices are traced: after one fit, the other one-rate
    # criteria and the other objectives on the same shapes compile nothing. (A shape of its
    # own, 4 groups and 283 rows, so that no other test compiled these programs before.)
    monkeypatch.setattr(_thresholds, "_use_host", lambda *arrays: False)  # as on a GPU
    s, y, g, _ = _data(11, n=283, num_groups=4)
    pp.fit_thresholds(s, y, g, num_groups=4, criterion="demographic_parity")
    with jax.log_compiles(), caplog.at_level("WARNING"):
        for crit in ("equal_opportunity", "false_positive_parity"):
            for obj in ("accuracy", "balanced_accuracy", "weighted_errors"):
                pp.fit_thresholds(s, y, g, num_groups=4, criterion=crit, objective=obj)
    assert not [r for r in caplog.records if "_fit" in r.getMessage()]
    with jax.log_compiles(), caplog.at_level("WARNING"):
        pp.fit_thresholds(s, y, g, num_groups=4, criterion="equalized_odds")
    assert [r for r in caplog.records if "_fit" in r.getMessage()]  # the check can fail


@pytest.mark.parametrize("seed", range(40))
def test_host_hull_equals_the_compiled_hull(seed):
    rng = np.random.default_rng(seed)
    n, G = int(rng.integers(5, 300)), int(rng.integers(1, 5))
    g = rng.integers(0, G, n).astype(np.int32)
    g[:G] = np.arange(G)
    s = (rng.normal(size=n) + 0.3 * g).astype(np.float32)
    if seed % 2:
        s = np.round(s, 1)  # ties
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * s))).astype(np.int32)
    w = [None, rng.integers(0, 4, n).astype(np.float32), rng.uniform(0, 2, n)][seed % 3]
    w = None if w is None else np.asarray(w, np.float32)
    a = pp.roc_hull(s, y, g, num_groups=G, weights=w)
    b = _hull.roc_hull_host(s, y, g, w, num_groups=G)
    np.testing.assert_array_equal(a.start, b.start)
    np.testing.assert_array_equal(a.count, b.count)
    v = int(b.count.sum())
    np.testing.assert_array_equal(np.asarray(a.thresholds)[:v], b.thresholds)
    if seed % 3 == 2:  # float weights: sums in another order
        for x, z in ((a.false_positives, b.false_positives), (a.true_positives, b.true_positives)):
            np.testing.assert_allclose(np.asarray(x)[:v], z, rtol=1e-6)
    else:  # integer counts: exact on both paths
        np.testing.assert_array_equal(np.asarray(a.false_positives)[:v], b.false_positives)
        np.testing.assert_array_equal(np.asarray(a.true_positives)[:v], b.true_positives)
    np.testing.assert_allclose(a.positives, b.positives, rtol=1e-6)
    np.testing.assert_allclose(a.negatives, b.negatives, rtol=1e-6)


def test_host_path_compiles_nothing(caplog):
    # A shape of its own (3 groups, 317 rows), every criterion, fit and apply with and
    # without a key: no XLA program is compiled (the check can fail: see the compiled path).
    s, y, g, _ = _data(12, n=317)
    with jax.log_compiles(), caplog.at_level("WARNING"):
        for crit in CRITERIA:
            st = pp.fit_thresholds(s, y, g, num_groups=3, criterion=crit, tolerance=0.02)
            pp.apply_thresholds(st, s, g)
            pp.apply_thresholds(st, s, np.eye(3, dtype=np.float32)[g])
            pp.apply_thresholds(st, s, g, key=KEY)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]


def test_host_and_compiled_rules_give_the_same_probabilities(monkeypatch):
    s, y, g, _ = _data(13, n=200)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion="equalized_odds", tolerance=0.05)
    host = np.asarray(pp.apply_thresholds(st, s, g))
    mixed = np.asarray(pp.apply_thresholds(st, s, np.full((200, 3), 1 / 3, np.float32)))
    monkeypatch.setattr(_thresholds, "_use_host", lambda *arrays: False)
    np.testing.assert_array_equal(pp.apply_thresholds(st, s, g), host)
    np.testing.assert_allclose(
        pp.apply_thresholds(st, s, np.full((200, 3), 1 / 3, np.float32)), mixed, atol=1e-7
    )


def test_host_draws_have_the_expected_frequencies_and_follow_the_key():
    s, y, g, _ = _data(6, n=40)
    st = pp.fit_thresholds(s, y, g, num_groups=3, criterion="equalized_odds", tolerance=0.0)
    p = np.asarray(pp.apply_thresholds(st, s, g))
    keys = jax.random.split(KEY, 2000)
    draws = np.stack([np.asarray(pp.apply_thresholds(st, s, g, key=k)) for k in keys])
    assert set(np.unique(draws).tolist()) <= {0.0, 1.0}
    # binomial standard error at most 0.5 / sqrt(2000) ~ 0.011: about 4 of them
    np.testing.assert_allclose(draws.mean(0), p, atol=0.045)
    assert np.any((p > 0) & (p < 1))  # some rows are randomised
    np.testing.assert_array_equal(pp.apply_thresholds(st, s, g, key=keys[0]), draws[0])
    assert not np.array_equal(draws[0], draws[1])
    raw = jax.random.PRNGKey(3)  # a raw uint32 key works too, and gives the typed key's draws
    np.testing.assert_array_equal(
        pp.apply_thresholds(st, s, g, key=raw),
        pp.apply_thresholds(st, s, g, key=jax.random.wrap_key_data(raw)),
    )


def test_bad_key_is_refused_naming_it(path):
    # The host path seeded NumPy with whatever bits it got: a batch of keys, float "keys",
    # and failed on an int with an AttributeError; both paths now refuse them alike.
    s, y, g, _ = _data(6, n=40)
    st = pp.fit_thresholds(s, y, g, num_groups=3)
    for bad in (0, "a", np.array([0.5, 1.5])):
        with pytest.raises(TypeError, match="`key`"):
            pp.apply_thresholds(st, s, g, key=bad)
    with pytest.raises(ValueError, match="single key"):
        pp.apply_thresholds(st, s, g, key=jax.random.split(KEY, 3))
    raw = np.asarray(jax.random.key_data(KEY))  # raw key data as NumPy still works
    np.testing.assert_array_equal(
        pp.apply_thresholds(st, s, g, key=raw), pp.apply_thresholds(st, s, g, key=KEY)
    )


@pytest.mark.parametrize("label", [0, 1])
def test_balanced_accuracy_without_one_class_maximises_the_other_recall(label, path):
    # Demographic parity needs no positive or negative rows; with one class absent the
    # balanced accuracy is the other class's recall (as scikit-learn's). The compiled path
    # weighted the absent class by 1 / 0 = inf, so 0 * inf = NaN objectives, and selected
    # everybody when every label was 0.
    s, _, g, _ = _data(11, n=80, num_groups=2)
    y = np.full(80, label)
    st = pp.fit_thresholds(s, y, g, num_groups=2, objective="balanced_accuracy")
    p = np.asarray(pp.apply_thresholds(st, s, g))
    np.testing.assert_array_equal(p, np.full(80, float(label)))


def test_numpy_bfloat16_scores_are_accepted(path):
    # NumPy bfloat16 (ml_dtypes, dtype kind "V") was refused as "not numeric"; it is the same
    # fit as the JAX bfloat16 array, and NaN in it is still refused naming `scores`.
    s, y, g, _ = _data(13, n=80, num_groups=2)
    bf16 = np.asarray(jnp.asarray(s, jnp.bfloat16))
    assert bf16.dtype.kind == "V"
    a = pp.fit_thresholds(bf16, y, g, num_groups=2, criterion="equalized_odds", tolerance=0.02)
    b = pp.fit_thresholds(
        jnp.asarray(bf16), y, g, num_groups=2, criterion="equalized_odds", tolerance=0.02
    )
    for x, z in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, z)
    np.testing.assert_array_equal(
        pp.apply_thresholds(a, bf16, g), pp.apply_thresholds(a, jnp.asarray(bf16), g)
    )
    bf16 = bf16.copy()
    bf16[3] = np.nan
    with pytest.raises(ValueError, match="`scores` must be finite"):
        pp.fit_thresholds(bf16, y, g, num_groups=2)


def test_a_batch_of_rules_is_named_and_applies_under_vmap():
    # The front of fit_thresholds' own docstring (vmapped over tolerances) failed in apply with
    # NumPy's "operands could not be broadcast together".
    s = jax.random.uniform(jax.random.key(0), (400,))
    g = (jnp.arange(400) % 2).astype(jnp.int32)
    y = (jax.random.uniform(jax.random.key(1), (400,)) < s * (0.5 + 0.5 * g)).astype(int)
    tolerances = jnp.linspace(0, 0.2, 5)
    fronts = jax.vmap(lambda t: pp.fit_thresholds(s, y, g, num_groups=2, tolerance=t))(tolerances)
    with pytest.raises(ValueError, match=r"`state` holds a batch of \(5,\) rules"):
        pp.apply_thresholds(fronts, s, g)
    batched = jax.vmap(lambda st: pp.apply_thresholds(st, s, g))(fronts)
    third = jax.tree.map(lambda a: a[2], fronts)
    np.testing.assert_allclose(batched[2], pp.apply_thresholds(third, s, g), rtol=1e-6)
