"""Tests of fairjax.criteria against independent NumPy references."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import criteria

# The rows of each condition, written out independently of the module.
ROWS = {
    "demographic_parity": [lambda y: np.ones_like(y, bool)],
    "equal_opportunity": [lambda y: y == 1],
    "false_positive_parity": [lambda y: y == 0],
    "equalized_odds": [lambda y: y == 1, lambda y: y == 0],
}


def _case(seed=0, n=80, G=4, empty=None):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, G, n)
    if empty is not None:
        s = np.where(s == empty, (empty + 1) % G, s)
    y = rng.integers(0, 2, n)
    v = rng.uniform(size=n)
    w = rng.uniform(0.2, 2.0, n)
    return v, s, y, w


def _np_rates(v, M, y, w, name):
    """(C, G) rates and counts from a membership matrix M (n, G), by explicit sums."""
    rates, counts = [], []
    for rows in ROWS[name]:
        c = rows(y).astype(float) * w
        count = np.array([np.sum(c * M[:, g]) for g in range(M.shape[1])])
        total = np.array([np.sum(c * M[:, g] * v) for g in range(M.shape[1])])
        rates.append(np.where(count > 0, total / np.where(count > 0, count, 1), 0.0))
        counts.append(count)
    return np.array(rates), np.array(counts)


def _np_largest_gap(rates, counts):
    out = []
    for r, k in zip(rates, counts, strict=True):
        present = r[k > 0]
        out.append(present.max() - present.min() if len(present) >= 2 else 0.0)
    return np.array(out)


def test_table_of_criteria():
    assert set(criteria.DECISION_RATES) == set(ROWS)
    assert set(ROWS) < set(criteria.CRITERIA)
    assert criteria.get("demographic_parity").conditions == (None,)
    assert criteria.get("equal_opportunity").conditions == (1,)
    assert criteria.get("false_positive_parity").conditions == (0,)
    assert criteria.get("equalized_odds").conditions == (1, 0)
    assert not criteria.DEMOGRAPHIC_PARITY.needs_labels
    assert criteria.EQUALIZED_ODDS.needs_labels
    assert criteria.get(criteria.EQUAL_OPPORTUNITY) is criteria.EQUAL_OPPORTUNITY
    hash(criteria.EQUALIZED_ODDS)  # usable as a static argument


@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("empty", [None, 2])
def test_group_rates_and_gaps_match_numpy(name, weighted, empty):
    v, s, y, w = _case(empty=empty)
    w = w if weighted else None
    G = 4
    rates, counts = criteria.group_rates(v, s, y, criterion=name, num_groups=G, weights=w)
    M = np.eye(G)[s]
    want_r, want_k = _np_rates(v, M, y, np.ones(len(v)) if w is None else w, name)
    np.testing.assert_allclose(rates, want_r, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(counts, want_k, rtol=1e-5)
    assert rates.shape == (len(ROWS[name]), G)
    if empty is not None:
        assert np.all(np.asarray(counts)[:, empty] == 0)
        assert np.all(np.asarray(rates)[:, empty] == 0)
    np.testing.assert_allclose(
        criteria.largest_gap(rates, counts), _np_largest_gap(want_r, want_k), rtol=1e-5, atol=1e-7
    )
    gaps = np.asarray(criteria.pairwise_gaps(rates, counts))
    for c in range(want_r.shape[0]):
        for a in range(G):
            for b in range(G):
                both = want_k[c, a] > 0 and want_k[c, b] > 0
                want = want_r[c, a] - want_r[c, b] if both else 0.0
                np.testing.assert_allclose(gaps[c, a, b], want, rtol=1e-5, atol=1e-7)
    # under jit, with the criterion as a static argument
    f = jax.jit(
        lambda v_, s_, y_: criteria.group_rates(v_, s_, y_, criterion=name, num_groups=G)[0]
    )
    np.testing.assert_allclose(
        f(v, s, y), criteria.group_rates(v, s, y, criterion=name, num_groups=G)[0], rtol=1e-6
    )


@pytest.mark.parametrize("name", sorted(ROWS))
@pytest.mark.parametrize("dtype", ["bool", "int32"])
@pytest.mark.parametrize("G", [1, 3, 9])
def test_group_rates_of_hard_decisions_equal_the_float_path(name, dtype, G):
    # Boolean decisions without weights take exact one-pass counts (up to 8 groups); integer
    # decisions, and the same decisions as floats with unit weights, take the float group
    # means. All give the same rates and counts, bit for bit, and the same dtypes.
    rng = np.random.default_rng(G)
    n = 5000
    s = rng.integers(0, G, n)
    s[s == G - 1] = 0  # an empty group when G > 1
    y = rng.integers(0, 2, n).astype(dtype)
    d = (rng.random(n) < 0.3 + 0.4 * (s % 2)).astype(dtype)
    kw = dict(criterion=name, num_groups=G)
    hard = criteria.group_rates(jnp.asarray(d), jnp.asarray(s), jnp.asarray(y), **kw)
    as_float = criteria.group_rates(
        jnp.asarray(d, jnp.float32), jnp.asarray(s), jnp.asarray(y), weights=np.ones(n), **kw
    )
    for got, want in zip(hard, as_float, strict=True):
        assert got.dtype == want.dtype == jnp.float32
        np.testing.assert_array_equal(got, want)
    M = np.eye(G)[s]
    want_r, want_k = _np_rates(d.astype(float), M, y.astype(int), np.ones(n), name)
    np.testing.assert_allclose(hard[0], want_r, rtol=1e-6)
    np.testing.assert_array_equal(hard[1], want_k)


def test_group_rates_of_integer_scores_are_their_means():
    # Integer values may be scores, not decisions: their rate is their mean, never the share
    # of nonzero values (which only boolean decisions are counted as).
    s = np.array([0, 0, 1, 1])
    for values, want in (([2, 0, 3, 1], [[1.0, 2.0]]), ([-1, 0, 1, 1], [[-0.5, 1.0]])):
        for dtype in ("int8", "int32"):
            rates, _ = criteria.group_rates(
                np.array(values, dtype), s, criterion="demographic_parity", num_groups=2
            )
            np.testing.assert_array_equal(rates, want)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_group_rates_with_a_soft_membership_matrix(name):
    v, _, y, w = _case(1, G=3)
    M = np.random.default_rng(2).dirichlet(np.ones(3), size=len(v)).astype(np.float32)
    rates, counts = criteria.group_rates(v, M, y, criterion=name, weights=w)
    want_r, want_k = _np_rates(v, M, y, w, name)
    np.testing.assert_allclose(rates, want_r, rtol=1e-5)
    np.testing.assert_allclose(counts, want_k, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_condition_weights_match_numpy(name):
    _, _, y, w = _case(3, n=20)
    got = criteria.condition_weights(name, y, w, n=20)
    want = np.stack([rows(y) * w for rows in ROWS[name]])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == jnp.float32
    unweighted = criteria.condition_weights(name, y, n=20)
    np.testing.assert_array_equal(unweighted, np.stack([rows(y) for rows in ROWS[name]]))


def test_labels_required_by_conditioning_criteria():
    v, s, _, _ = _case()
    for name in ("equal_opportunity", "false_positive_parity", "equalized_odds"):
        with pytest.raises(ValueError, match="`labels` are required"):
            criteria.group_rates(v, s, criterion=name, num_groups=4)
        with pytest.raises(ValueError, match="`labels` are required"):
            criteria.condition_weights(name, None, n=len(v))
    rates, _ = criteria.group_rates(v, s, criterion="demographic_parity", num_groups=4)
    assert rates.shape == (1, 4)


def test_gaps_with_fewer_than_two_groups_are_zero_and_gradients_finite():
    rates = jnp.array([[0.3, 0.9, 0.1]])
    assert float(criteria.largest_gap(rates, jnp.array([[0.0, 2.0, 0.0]]))[0]) == 0.0
    assert float(criteria.largest_gap(rates, jnp.zeros((1, 3)))[0]) == 0.0
    assert np.all(np.asarray(criteria.pairwise_gaps(rates, jnp.array([[0.0, 2.0, 0.0]]))) == 0)
    for counts in (jnp.zeros(3), jnp.array([0.0, 1.0, 0.0]), jnp.array([1.0, 0.0, 2.0])):
        g = jax.grad(lambda r, k=counts: criteria.largest_gap(r, k))(rates[0])
        assert np.all(np.isfinite(g))
        g = jax.grad(lambda r, k=counts: jnp.sum(criteria.pairwise_gaps(r, k) ** 2))(rates[0])
        assert np.all(np.isfinite(g))


def test_largest_gap_nan_in_gives_nan_out():
    # A NaN count used to drop its group (count > 0 is False): with fewer than two groups left
    # the gap was 0, read as perfectly fair (reported by a probe). A NaN rate of an empty group
    # does not count.
    rates = jnp.array([[0.2, 0.9, 0.5], [0.2, jnp.nan, 0.5], [0.2, jnp.nan, 0.5]])
    counts = jnp.array([[3.0, jnp.nan, 2.0], [3.0, 1.0, 2.0], [3.0, 0.0, 2.0]])
    got = np.asarray(jax.jit(criteria.largest_gap)(rates, counts))
    assert np.isnan(got[0]) and np.isnan(got[1])
    np.testing.assert_allclose(got[2], 0.3, rtol=1e-6)
    assert np.isnan(float(criteria.largest_gap(jnp.array([0.2, 0.9]), jnp.array([3.0, jnp.nan]))))


def test_pairwise_gaps_and_safe_divide_keep_nan():
    # A NaN count (a NaN weight under jit) dropped its group: pairwise gaps of 0 beside
    # largest_gap's NaN, and group means of 0 beside NaN counts.
    gaps = criteria.pairwise_gaps(jnp.array([0.2, 0.9, 0.5]), jnp.array([3.0, jnp.nan, 2.0]))
    assert np.isnan(np.asarray(gaps)[1]).all() and np.isnan(np.asarray(gaps)[:, 1]).all()
    np.testing.assert_allclose(np.asarray(gaps)[0, 2], -0.3, rtol=1e-6)
    from fairjax import groups

    ratio = groups.safe_divide(jnp.array([1.0, 1.0, 1.0]), jnp.array([2.0, 0.0, jnp.nan]))
    np.testing.assert_array_equal(np.asarray(ratio)[:2], [0.5, 0.0])
    assert np.isnan(float(ratio[2]))
    w = jnp.ones(6).at[0].set(jnp.nan)
    means = jax.jit(lambda w: groups.group_means(jnp.arange(6.0), jnp.array([0, 0, 0, 1, 1, 1]),
                                                 num_groups=2, weights=w))(w)  # fmt: skip
    assert np.isnan(float(means[0])) and float(means[1]) == 4.0


def test_labels_outside_zero_one_are_refused_where_they_would_read_as_negatives():
    # Labels -1/+1 left the FPR condition without rows (a gap of 0); a label 2 was a negative
    # and logits made negative cells, all without a word.
    h, s = jnp.array([1.0, 0.0, 1.0, 0.0]), jnp.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="`labels` must be binary"):
        criteria.group_rates(h, s, jnp.array([1, -1, 1, -1]), criterion="equalized_odds",
                             num_groups=2)  # fmt: skip
    with pytest.raises(ValueError, match="`values` must hold decisions or probabilities"):
        criteria.confusion_matrix(jnp.array([2.0, -1.0, 1.0, 0.0]), s, num_groups=2)
    with pytest.raises(ValueError, match=r"`labels` must hold labels in \{0, 1\} or"):
        criteria.confusion_matrix(h, s, jnp.array([1, 2, 1, 0]), num_groups=2)
    rates, _ = criteria.group_rates([1.0, 0.0, 1.0, 1.0], [0, 0, 1, 1], [1, 0, 1, 0],
                                    criterion="equalized_odds", num_groups=2)  # fmt: skip
    np.testing.assert_array_equal(rates, [[1.0, 1.0], [0.0, 1.0]])  # plain lists still work
    with pytest.raises(ValueError, match="`values` must be finite"):  # not "outside [0, 1]"
        criteria.confusion_matrix(h.at[0].set(jnp.nan), s, jnp.array([1, 0, 1, 0]), num_groups=2)
    np.testing.assert_array_equal(  # -1/+1 labels: 1 is positive, as 0/1 labels
        criteria.confusion_matrix(h, s, jnp.array([1, -1, 1, -1]), num_groups=2),
        criteria.confusion_matrix(h, s, jnp.array([1, 0, 1, 0]), num_groups=2),
    )


def test_metrics_with_a_nan_weight_under_jit_are_nan():
    from fairjax import metrics

    rng = np.random.default_rng(0)
    g = jnp.asarray(rng.integers(0, 2, 200))
    pred = jnp.asarray((rng.random(200) < 0.5).astype(np.float32))
    w = jnp.ones(200).at[0].set(jnp.nan)
    dp = jax.jit(lambda w: metrics.demographic_parity_difference(pred, g, num_groups=2, weights=w))
    assert np.isnan(float(dp(w)))
    p = rng.dirichlet([1.0, 1.0, 1.0], 200)
    p[0, 1] = np.nan
    per_class = jax.jit(
        lambda q: metrics.multiclass_parity_difference(
            None, q, g, num_classes=3, num_groups=2, per_class=True
        )
    )(jnp.asarray(p))
    assert np.isnan(np.asarray(per_class)).tolist() == [False, True, False]


def test_largest_gap_preserves_dtype():
    r = jnp.array([0.25, 0.75], jnp.bfloat16)
    assert criteria.largest_gap(r, jnp.ones(2)).dtype == jnp.bfloat16
    with jax.enable_x64(True):
        r64 = jnp.array([0.25, 0.75], jnp.float64)
        assert criteria.largest_gap(r64, jnp.ones(2)).dtype == jnp.float64


@pytest.mark.parametrize(
    "keyword,value,name",
    [
        ("condition", "all", "demographic_parity"),
        ("condition", "positive", "equal_opportunity"),
        ("condition", "negative", "false_positive_parity"),
        ("label_value", 1, "equal_opportunity"),
        ("label_value", 0, "false_positive_parity"),
        ("constraint", "equalized_odds", "equalized_odds"),
        ("constraint", "demographic_parity", "demographic_parity"),
    ],
)
def test_resolve_maps_the_deprecated_keywords_with_a_warning(keyword, value, name):
    with pytest.warns(DeprecationWarning, match=f"`{keyword}={value!r}` is deprecated") as rec:
        got = criteria.resolve(None, where="somewhere.f", **{keyword: value})
    assert got == criteria.CRITERIA[name]
    assert "somewhere.f" in str(rec[0].message)
    assert f"criterion={name!r}" in str(rec[0].message)


def test_resolve_without_deprecated_keywords_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert criteria.resolve(None, where="f") == criteria.DEMOGRAPHIC_PARITY
        assert criteria.resolve(None, where="f", default="equal_opportunity").name == (
            "equal_opportunity"
        )
        assert criteria.resolve("equalized_odds", where="f") == criteria.EQUALIZED_ODDS


def test_resolve_errors():
    with pytest.raises(ValueError, match="give the criterion once"):
        criteria.resolve("equal_opportunity", where="f", condition="positive")
    with pytest.raises(ValueError, match="give the criterion once"):
        criteria.resolve(None, where="f", condition="positive", label_value=1)
    with pytest.raises(ValueError, match="`condition` must be one of"):
        criteria.resolve(None, where="f", condition="tpr")
    with pytest.raises(ValueError, match="`label_value` must be one of"):
        criteria.resolve(None, where="f", label_value=2)
    with pytest.raises(ValueError, match="`label_value` must be one of"):
        criteria.resolve(None, where="f", label_value="1")
    # An unknown or unsupported value is refused before any deprecation warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="`constraint` must be one of"):
            criteria.resolve(None, where="f", constraint="parity")
    with pytest.raises(ValueError, match="`criterion` must be one of"):
        criteria.resolve("parity", where="f")
    with pytest.raises(ValueError, match="`criterion` must be one of"):
        criteria.resolve("equalized_odds", where="f", allowed=("demographic_parity",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="`constraint` must be one of"):
            criteria.resolve(
                None, where="f", constraint="equalized_odds", allowed=("demographic_parity",)
            )


def test_get_and_check_option():
    with pytest.raises(ValueError, match="`constraint` must be one of"):
        criteria.get("x", name="constraint")
    with pytest.raises(ValueError, match="must be one of"):
        criteria.get(3)
    assert criteria.check_option("pooled", "reference", criteria.REFERENCES) == "pooled"
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        criteria.check_option("sum", "reduction", ("max", "mean"))
    with pytest.raises(ValueError, match="`reduction`"):
        criteria.check_option(None, "reduction", criteria.REDUCTIONS)
    # A criterion of one's own under a known name is not taken for fairjax's where the caller
    # has an allow-list (such callers may compute the criterion by its name, as the
    # estimators do, and would silently ignore its own conditions).
    own = criteria.Criterion("equal_opportunity", (0,))
    with pytest.raises(ValueError, match="`criterion` must be fairjax's 'equal_opportunity'"):
        criteria.get(own, allowed=criteria.DECISION_RATES)
    eo = criteria.get(criteria.EQUAL_OPPORTUNITY, allowed=criteria.DECISION_RATES)
    assert eo is criteria.EQUAL_OPPORTUNITY
    assert criteria.get(own) is own  # without an allow-list, any criterion of one's own


def test_split_gives_one_single_rate_criterion_per_condition():
    assert criteria.split("equalized_odds") == (
        criteria.EQUAL_OPPORTUNITY,
        criteria.FALSE_POSITIVE_PARITY,
    )
    assert criteria.split("demographic_parity") == (criteria.DEMOGRAPHIC_PARITY,)
    custom = criteria.Criterion("per_class", (2, None))
    parts = criteria.split(custom)
    assert [p.conditions for p in parts] == [(2,), (None,)]
    assert parts[1] == criteria.DEMOGRAPHIC_PARITY
    # Each part's rates are the matching row of the whole criterion's rates.
    y_pred = jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    y_true = jnp.array([1, 0, 0, 1, 1, 0])
    s = jnp.array([0, 0, 0, 1, 1, 1])
    whole, _ = criteria.group_rates(y_pred, s, y_true, criterion="equalized_odds", num_groups=2)
    for i, part in enumerate(criteria.split("equalized_odds")):
        rates, _ = criteria.group_rates(y_pred, s, y_true, criterion=part, num_groups=2)
        np.testing.assert_array_equal(rates[0], whole[i])


# ----------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_matches_numpy_with_strata_and_membership():
    rng = np.random.default_rng(3)
    n, G, K = 200, 3, 2
    h, y = rng.uniform(size=n), rng.integers(0, 2, n)
    s, k, w = rng.integers(0, G, n), rng.integers(0, K, n), rng.uniform(0.1, 2, n)
    got = criteria.confusion_matrix(h, s, y, num_groups=G, weights=w, strata=k, num_strata=K)
    want = np.zeros((K, G, 4))
    for i in range(n):
        want[k[i], s[i]] += w[i] * np.array(
            [y[i] * h[i], (1 - y[i]) * h[i], y[i] * (1 - h[i]), (1 - y[i]) * (1 - h[i])]
        )
    np.testing.assert_allclose(got, want, rtol=1e-5)
    member = criteria.confusion_matrix(h, np.eye(G)[s], y, weights=w, strata=k, num_strata=K)
    np.testing.assert_allclose(member, got, rtol=1e-6)


def test_rates_of_cells_and_their_kinds():
    ppv = criteria.PREDICTIVE_PARITY.cell_rates[0]
    assert ppv.conditions_on_prediction and ppv.needs_labels
    assert not criteria.DEMOGRAPHIC_PARITY.cell_rates[0].conditions_on_prediction
    assert not criteria.CONDITIONAL_STATISTICAL_PARITY.needs_labels
    assert criteria.ACCURACY_PARITY.needs_labels
    assert criteria.EQUALIZED_ODDS.cell_rates == (
        criteria.Rate(("tp",), ("tp", "fn")),
        criteria.Rate(("fp",), ("fp", "tn")),
    )
    assert criteria.split("predictive_parity") == (criteria.PREDICTIVE_PARITY,)
    hash(criteria.CONDITIONAL_STATISTICAL_PARITY)


def test_decision_rate_functions_reject_ratio_criteria():
    with pytest.raises(ValueError, match="fractional_rate_difference"):
        criteria.group_rates(
            jnp.ones(3),
            jnp.array([0, 1, 1]),
            jnp.ones(3),
            criterion="predictive_parity",
            num_groups=2,
        )
    custom = criteria.Criterion("mine", (), (criteria.Rate(("tp",), ("fp",)),))
    with pytest.raises(ValueError, match="conditions"):
        criteria.condition_weights(custom, jnp.ones(3), n=3)
    bad = criteria.Criterion("bad", (), (criteria.Rate(("xx",), ("fp",)),))
    with pytest.raises(ValueError, match="cells"):
        criteria.rate_terms(jnp.ones((2, 4)), bad)
    with pytest.raises(ValueError, match="strata"):
        criteria.check_call(
            "conditional_statistical_parity", labels=None, strata=None, num_strata=None
        )


def test_fairlearn_names_get_a_hint_naming_the_criterion():
    with pytest.raises(ValueError, match="fairlearn's name of 'equal_opportunity'"):
        criteria.get("true_positive_rate_parity")
    assert all(v in criteria.CRITERIA for v in criteria.FAIRLEARN_NAMES.values())


def test_checks_name_the_argument_before_any_computation():
    # Short weights with labels were a broadcasting error from inside the label masking;
    # string labels JAX's "error interpreting argument"; integer rates a finfo error; a NumPy
    # integer label_value was refused where True was taken.
    values, groups = jnp.array([1.0, 0.0, 1.0]), jnp.array([0, 1, 1])
    with pytest.raises(ValueError, match="`weights` must have one row per sample"):
        criteria.confusion_matrix(
            values, groups, jnp.array([1, 0, 1]), num_groups=2, weights=jnp.ones(2)
        )
    with pytest.raises(TypeError, match="`labels` must be numeric"):
        criteria.group_rates(
            values, groups, np.array(["a", "b", "a"]), criterion="equal_opportunity", num_groups=2
        )
    assert float(criteria.largest_gap(jnp.array([0, 1, 1]), jnp.array([2.0, 1.0, 1.0]))) == 1.0
    with pytest.warns(DeprecationWarning):
        assert (
            criteria.resolve(None, where="f", label_value=np.int64(1)).name == "equal_opportunity"
        )
