"""Numerics of every penalty and metric (issue 7, part 2).

Every term runs in float32, float64 and bfloat16 and accumulates in at least float32; and no
value or gradient is NaN at the edges: an empty group, a single-member group, identical points,
constant scores, extreme logits (|z| = 1e4), a single non-empty group.

All cases share one shape (n = 8 rows, 3 groups), so each term compiles once per dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import metrics, penalties

N, G = 8, 3
LABELS = np.array([1, 0, 1, 1, 0, 1, 1, 0], np.int32)
BASE = np.array([0.3, -1.2, 0.8, 2.0, -0.4, 1.1, -2.2, 0.6], np.float32)


def case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, group ids, weights) of one edge case."""
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2], np.int32)
    scores = BASE.copy()
    weights = np.ones(N, np.float32)
    if name == "empty group":
        groups = np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int32)
    elif name == "zero-weight group":
        weights[groups == 2] = 0.0
    elif name == "single-member group":
        groups = np.array([0, 0, 0, 1, 1, 1, 1, 2], np.int32)
    elif name == "identical points":  # every group holds the same multiset of values
        groups = np.array([0, 1, 0, 1, 0, 1, 2, 2], np.int32)
        scores = np.array([0.5, 0.5, -1.0, -1.0, 2.0, 2.0, 0.5, -1.0], np.float32)
    elif name == "constant scores":
        scores = np.full(N, 0.7, np.float32)
    elif name == "extreme logits":
        scores = np.array([1e4, -1e4, 1e4, 1e4, -1e4, -1e4, 1e4, -1e4], np.float32)
    elif name == "one non-empty group":
        groups = np.zeros(N, np.int32)
    return scores, groups, weights


CASES = [
    "regular",
    "empty group",
    "zero-weight group",
    "single-member group",
    "identical points",
    "constant scores",
    "extreme logits",
    "one non-empty group",
]


def _h(x):
    return jnp.stack([x, 0.5 * x], axis=1)


# Each term: f(x, groups, weights) -> scalar, differentiable in x (float array of shape (n,)).
PENALTIES = {
    "mean_difference max": lambda x, s, w: penalties.mean_difference(x, s, num_groups=G, weights=w),
    "mean_difference squared positive": lambda x, s, w: penalties.mean_difference(
        x,
        s,
        num_groups=G,
        weights=w,
        labels=LABELS,
        criterion="equal_opportunity",
        reduction="squared",
    ),
    "sigmoid_rate_difference": lambda x, s, w: penalties.sigmoid_rate_difference(
        x, s, num_groups=G, weights=w, temperature=0.5
    ),
    "sigmoid_rate_difference squared": lambda x, s, w: penalties.sigmoid_rate_difference(
        x, s, num_groups=G, weights=w, reduction="squared"
    ),
    "wasserstein p=2": lambda x, s, w: penalties.wasserstein(x, s, num_groups=G, weights=w),
    "wasserstein p=1 pooled max": lambda x, s, w: penalties.wasserstein(
        x, s, num_groups=G, weights=w, p=1, reference="pooled", reduction="max"
    ),
    "mmd": lambda x, s, w: penalties.mmd(_h(x), s, num_groups=G, weights=w),
    "mmd unbiased pairwise": lambda x, s, w: penalties.mmd(
        _h(x), s, num_groups=G, weights=w, estimator="unbiased", reference="pairwise"
    ),
    "sinkhorn": lambda x, s, w: penalties.sinkhorn(
        _h(x), s, num_groups=G, weights=w, solver_kwargs={"max_iterations": 200}
    ),
}


# Rate metrics on probabilities, differentiable in the probabilities.
RATE_METRICS = {
    "demographic_parity_difference": lambda p, s, w: metrics.demographic_parity_difference(
        p, s, num_groups=G, weights=w
    ),
    "demographic_parity_ratio": lambda p, s, w: metrics.demographic_parity_ratio(
        p, s, num_groups=G, weights=w
    ),
    "equal_opportunity_difference": lambda p, s, w: metrics.equal_opportunity_difference(
        LABELS, p, s, num_groups=G, weights=w
    ),
    "equalized_odds_difference": lambda p, s, w: metrics.equalized_odds_difference(
        LABELS, p, s, num_groups=G, weights=w
    ),
    "by_group (sum of the table)": lambda p, s, w: sum(
        jnp.sum(t) for t in metrics.by_group(LABELS, p, s, num_groups=G, weights=w).values()
    ),
}
# Score metrics, differentiable in the scores.
SCORE_METRICS = {
    "ks_unfairness": lambda x, s, w: metrics.ks_unfairness(x, s, num_groups=G, weights=w),
    "wasserstein_unfairness": lambda x, s, w: metrics.wasserstein_unfairness(
        x, s, num_groups=G, weights=w
    ),
    "wasserstein_unfairness pairwise": lambda x, s, w: metrics.wasserstein_unfairness(
        x, s, num_groups=G, weights=w, reference="pairwise"
    ),
}


def _on_logits(metric):
    """The rate metric of the probabilities sigmoid(x): the edge cases are given as logits."""
    return lambda x, s, w: metric(jax.nn.sigmoid(x), s, w)


METRICS = {**{k: _on_logits(f) for k, f in RATE_METRICS.items()}, **SCORE_METRICS}
TERMS = {**PENALTIES, **METRICS}
_VALUE_AND_GRAD = {name: jax.jit(jax.value_and_grad(f)) for name, f in TERMS.items()}
# The dtype test feeds the rate metrics probabilities directly, so that the float64 reference
# sees exactly the (rounded) inputs of the low-precision run.
DIRECT = {**PENALTIES, **RATE_METRICS, **SCORE_METRICS}
_DIRECT_VG = {
    name: jax.jit(jax.value_and_grad(f)) if name in RATE_METRICS else _VALUE_AND_GRAD[name]
    for name, f in DIRECT.items()
}

# (term, case) pairs known to give NaN; strict xfails documenting the defect.
NAN_GAPS: dict[tuple[str, str], str] = {}


def _params(pairs, gaps):
    """A ``pytest.param`` of each ``(name, case)`` pair, a strict xfail where ``gaps`` documents
    a known defect of that pair."""
    for name, c in pairs:
        marks = []
        if (name, c) in gaps:
            marks = [pytest.mark.xfail(reason=gaps[(name, c)], strict=True)]
        yield pytest.param(name, c, id=f"{name}-{c}", marks=marks)


@pytest.mark.parametrize(
    ("name", "which"), list(_params([(n, c) for n in TERMS for c in CASES], NAN_GAPS))
)
def test_value_and_gradient_finite_at_the_edges(name, which):
    x, s, w = case(which)
    value, grad = _VALUE_AND_GRAD[name](jnp.asarray(x), s, w)
    assert np.isfinite(value), f"{name} value at {which}: {value}"
    assert np.all(np.isfinite(grad)), f"{name} gradient at {which}: {grad}"


# Terms that are 0 whenever the compared empirical distributions are equal (not the label-
# conditioned one, whose positives differ, nor the unbiased MMD, which can be non-zero).
VANISHING = sorted(set(PENALTIES) - {"mean_difference squared positive", "mmd unbiased pairwise"})


@pytest.mark.parametrize("name", VANISHING)
def test_penalty_vanishes_when_groups_share_one_distribution(name):
    """Identical group distributions are perfectly fair: the penalty is 0 (up to rounding)."""
    x, s, w = case("identical points")
    w = np.where(s == 2, 0.0, 1.0).astype(np.float32)  # groups 0 and 1 hold the same points
    value, grad = _VALUE_AND_GRAD[name](jnp.asarray(x), s, w)
    assert abs(float(value)) < 1e-4, value
    assert np.all(np.isfinite(grad))


def _reference_f64(name, x, s, w):
    with jax.enable_x64(True):
        return float(DIRECT[name](np.asarray(x, np.float64), s, np.asarray(w, np.float64)))


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}
# The f64 reference is computed on the inputs rounded to the dtype, so the only difference left
# is the accumulation: float32 accumulation is ~1e-6, a bfloat16 one would be ~1e-2.
TOLERANCE = {"float32": 2e-5, "bfloat16": 2e-4, "float64": 1e-10}
DTYPE_GAPS: dict[tuple[str, str], str] = {}


# Variants of a term (another reduction or reference) share its arithmetic: the dtype test
# runs one form of each function, the edge-case test above runs them all.
VARIANTS = {
    "mean_difference squared positive",
    "sigmoid_rate_difference squared",
    "wasserstein p=1 pooled max",
    "mmd unbiased pairwise",
    "wasserstein_unfairness pairwise",
}


@pytest.mark.parametrize(
    ("name", "dtype"),
    list(_params([(n, d) for n in sorted(set(DIRECT) - VARIANTS) for d in DTYPES], DTYPE_GAPS)),
)
def test_dtypes_accumulate_in_at_least_float32(name, dtype):
    x, s, _ = case("regular")
    if name in RATE_METRICS:
        x = np.asarray(jax.nn.sigmoid(x))
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 0.25, 1.0], np.float32)
    with jax.enable_x64(dtype == "float64"):
        xd = jnp.asarray(x).astype(DTYPES[dtype])
        wd = jnp.asarray(w).astype(DTYPES[dtype])
        value, grad = _DIRECT_VG[name](xd, s, wd)
        want_dtype = jnp.float64 if dtype == "float64" else jnp.float32
        assert value.dtype == want_dtype, f"{name} in {dtype} returned {value.dtype}"
        assert grad.dtype == xd.dtype
        assert np.all(np.isfinite(np.asarray(grad, np.float32)))
        got = float(value)
    if dtype == "float64":
        return  # the float64 run is its own reference
    want = _reference_f64(name, np.asarray(xd, np.float64), s, np.asarray(wd, np.float64))
    tol = TOLERANCE[dtype]
    if name == "sinkhorn":  # an iterative solver: converged to its threshold, not to rounding
        tol = max(tol, 1e-3)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_orthogonality_edges_and_dtypes():
    u = jnp.array([[1.0, -1.0, 0.0]])
    for w in (jnp.array([1.0, 1.0, 2.0]), jnp.zeros(3), jnp.array([1e4, 1e4, -1e4])):
        for squared in (True, False):
            value, grad = jax.value_and_grad(
                lambda a, sq=squared: penalties.orthogonality(a, u, squared=sq)
            )(w)
            assert np.isfinite(value) and np.all(np.isfinite(grad)), (w, squared, grad)
    # A zero direction (an empty group's u) gives 0 and a zero gradient.
    value, grad = jax.value_and_grad(lambda a: penalties.orthogonality(a, jnp.zeros(3)))(w)
    assert value == 0 and np.all(grad == 0)
    w = jnp.array([0.3, -1.2, 2.0])
    assert penalties.orthogonality(w.astype(jnp.bfloat16), u).dtype == jnp.float32
    with jax.enable_x64(True):
        out = penalties.orthogonality(np.asarray(w, np.float64), np.asarray(u, np.float64))
        assert out.dtype == jnp.float64
