r"""Group-specific randomised thresholds: the exact solution of the post-processing LP.

For group :math:`g` with weighted positives :math:`P_g` and negatives :math:`N_g`, a rule that
is positive with a probability non-decreasing in the score reaches exactly the operating points
:math:`(x_g, y_g) = (\mathrm{FPR}_g, \mathrm{TPR}_g)` of the convex hull :math:`H_g` of its ROC
points (:func:`~fairjax.postprocessing.roc_hull`). Post-processing solves the linear program

.. math::

    \max_{(x_g, y_g) \in H_g} \sum_g a P_g y_g - b N_g x_g
    \quad \text{s.t.} \quad |r^c_g - r^c_{g'}| \le \varepsilon
    \;\; \forall c, g, g',

with :math:`a = b = 1` for accuracy (the accuracy is this plus :math:`\sum_g N_g`, over the
total weight), :math:`(a, b) = (c_{FN}, c_{FP})` for weighted errors and
:math:`(1/P, 1/N)` for balanced accuracy (0 for a class absent from the data, which then
leaves the recall of the other class, as scikit-learn's ``balanced_accuracy_score``); the
rates :math:`r^c_g` are those of the criterion (selection rate
:math:`(P_g y_g + N_g x_g) / (P_g + N_g)`, TPR :math:`y_g`, FPR :math:`x_g`).

*One rate* (demographic parity, TPR parity = equal opportunity, FPR parity): along the upper
boundary of :math:`H_g` the objective is a concave piecewise-linear function
:math:`\phi_g(r)` of the rate, maximal at :math:`m_g`. The constraint asks that every rate lie in
a window :math:`[L, L + \varepsilon]`, so the problem is
:math:`\max_L F(L) = \sum_g \phi_g(\mathrm{clip}(m_g, L, L + \varepsilon))`, concave in
:math:`L` with breakpoints among the vertex rates :math:`r_k` and :math:`r_k - \varepsilon`. The
smallest maximiser is the smallest such candidate where the right derivative of :math:`F` is
:math:`\le 0`: two binary searches over the sorted candidates give it exactly.

*Equalized odds*: the operating points must fit in a box
:math:`[X, X + \varepsilon] \times [Y, Y + \varepsilon]`. For a given box each group's LP has a
closed form (move along the hull towards the group's own optimum, cap the TPR at the top of the
box, drop to the diagonal by mixing with a coin flip where the box lies below the hull), so
the value :math:`F(X, Y)` is a concave piecewise-linear function of two variables (the value
of an LP as a function of its right-hand side). It is maximised by nested grid searches (3
points a step, keeping the two cells around the best), to the floating-point resolution of the
rates.

Restricting each group to the region between the diagonal and the upper hull loses nothing:
replacing :math:`y_g` by :math:`\max(y_g, x_g)` keeps every pairwise gap within
:math:`\varepsilon` (the maximum is 1-Lipschitz) and does not lower the objective.

*On the CPU host.* When the inputs are concrete on the CPU backend (the common call from
NumPy or pandas), nothing is compiled: the hulls are built with NumPy (the same vertices as
:func:`~fairjax.postprocessing.roc_hull`) and the LP above, over
mixtures of each group's hull vertices (which span the region between the hull and the
diagonal), is solved by SciPy's HiGHS. Under ``jit``/``vmap``, or on an accelerator, the
compiled solvers above run. Both reach the optimum; where it is not unique (a hull segment
along which the objective is flat, common with tied scores) they may return different optimal
rules.

A solution mixes two adjacent hull vertices (thresholds :math:`\tau_{k+1} < \tau_k`) with a
weight :math:`\lambda`, and, for equalized odds, the result with a constant coin flip of
probability :math:`x_g` with weight :math:`1 - \theta`. The rule is stored as two thresholds and
three probabilities per group: positive with probability ``probabilities[g, 0]`` below
``lower[g]``, ``[g, 1]`` from ``lower[g]`` up to ``upper[g]``, ``[g, 2]`` from ``upper[g]`` on.

References:
  Hardt, Price, Srebro, *Equality of opportunity in supervised learning*, NeurIPS 2016;
  Cruz, Hardt, *Unprocessing seven years of algorithmic fairness*, ICLR 2024 (relaxed
  constraints, error-parity);
  Provost, Fawcett, *Robust classification for imprecise environments*, Machine Learning 42,
  2001.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax.postprocessing._hull import (
    ROCHull,
    _roc_hull,
    check_inputs,
    interpolate,
    prepare,
    roc_hull_host,
    search,
)
from fairjax.postprocessing._state import _nan_floats_where

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: The criteria :func:`fit_thresholds` supports.
THRESHOLD_CRITERIA = (
    "demographic_parity",
    "equal_opportunity",
    "false_positive_parity",
    "equalized_odds",
)
#: The objectives :func:`fit_thresholds` maximises.
THRESHOLD_OBJECTIVES = ("accuracy", "balanced_accuracy", "weighted_errors")
# The criteria with one rate; each fit passes the index of its criterion (and objective) as a
# traced integer, so they share one compiled program (equalized odds has its own).
_ONE_RATE = THRESHOLD_CRITERIA[:3]


class ThresholdState(NamedTuple):
    """Fitted group-specific randomised thresholds (see :func:`fit_thresholds`). A PyTree.

    A row of group ``g`` with score ``s`` is positive with probability ``probabilities[g, 0]``
    if ``s < lower[g]``, ``probabilities[g, 1]`` if ``lower[g] <= s < upper[g]`` and
    ``probabilities[g, 2]`` if ``s >= upper[g]``. Thresholds may be :math:`\\pm\\infty`
    (select nobody / everybody).

    Attributes:
      lower: lower threshold of each group ``(G,)``.
      upper: upper threshold of each group ``(G,)``.
      probabilities: probability of a positive decision below, between and above, ``(G, 3)``.
      fpr: the group's false-positive rate on the calibration data ``(G,)``.
      tpr: the group's true-positive rate on the calibration data ``(G,)``.
      positives: weighted count of calibration positives of each group ``(G,)``.
      negatives: weighted count of calibration negatives of each group ``(G,)``.
    """

    lower: Array
    upper: Array
    probabilities: Array
    fpr: Array
    tpr: Array
    positives: Array
    negatives: Array

    @property
    def selection_rate(self) -> Array:
        """Each group's selection rate on the calibration data ``(G,)``."""
        return gs.safe_divide(
            self.positives * self.tpr + self.negatives * self.fpr,
            self.positives + self.negatives,
        )


# ----------------------------------------------------------------------------- one rate


def _rates(hull: ROCHull, which: Array, vg: Array) -> Array:
    """Each vertex's rate for the one-rate criterion ``_ONE_RATE[which]`` (non-decreasing
    along every hull). ``which`` is traced, so the three criteria share one program."""
    p, n = hull.positives[vg], hull.negatives[vg]
    tp, fp = hull.true_positives, hull.false_positives
    each = (gs.safe_divide(tp + fp, p + n), gs.safe_divide(tp, p), gs.safe_divide(fp, n))
    return jax.lax.switch(which, [lambda e=e: e for e in each])


def _vertex_groups(hull: ROCHull) -> Array:
    """Group of each vertex; padding gets the id ``G`` (one past the last group)."""
    num = hull.start.shape[0]
    idx = jnp.arange(hull.thresholds.shape[0])
    g = jnp.searchsorted(hull.start + hull.count, idx, side="right")
    return jnp.minimum(g, num).astype(jnp.int32)


def _best_point(rate: Array, obj: Array, hull: ROCHull, q: Array):
    """The better of the two interpolations of ``obj`` at rate ``q`` in every group (they
    differ where a rate repeats: a vertical first or flat last hull segment)."""
    left = interpolate(rate, obj, hull.start, hull.count, q, side="left")
    right = interpolate(rate, obj, hull.start, hull.count, q, side="right")
    use_right = right[3] >= left[3]
    return tuple(jnp.where(use_right, r, lf) for r, lf in zip(right, left, strict=True))


def _solve_one_rate(hull: ROCHull, rate: Array, obj: Array, vg: Array, tolerance: Array):
    """Each group's rate in the optimal window ``[L, L + tolerance]`` (see the module doc)."""
    num = hull.start.shape[0]
    last = hull.start + hull.count - 1
    valid = vg < num
    # m_g: the rate of the group's best vertex (the first, where the objective repeats).
    omax = jax.ops.segment_max(jnp.where(valid, obj, -jnp.inf), vg, num_segments=num + 1)
    best = valid & (obj >= omax[vg])
    m = jax.ops.segment_min(jnp.where(best, rate, jnp.inf), vg, num_segments=num + 1)[:num]

    def slope_right(q):  # right derivative of phi_g at q, for every group (-inf at the end)
        k0 = jnp.clip(
            hull.start + search(rate, hull.start, hull.count, q, side="right") - 1, hull.start, last
        )
        k1 = jnp.minimum(k0 + 1, last)
        d = gs.safe_divide(obj[k1] - obj[k0], rate[k1] - rate[k0])
        return jnp.where(k0 == last, -jnp.inf, d)

    def stop(L, H):  # F'_+(L) <= 0 (window [L, H]): L is at or past the smallest maximiser
        d = jnp.where(
            m > H,
            slope_right(jnp.full(num, H)),
            jnp.where(m <= L, slope_right(jnp.full(num, L)), 0),
        )
        return jnp.sum(d) <= 0

    cand = jnp.sort(jnp.where(valid, rate, jnp.inf))
    steps = math.ceil(math.log2(cand.shape[0] + 1)) + 1

    def lower_bound(keys, tops):  # smallest window where `stop` holds (monotone in the entry)
        def step(_, b):
            lo, hi = b
            mid = (lo + hi) // 2
            at = jnp.minimum(mid, keys.shape[0] - 1)
            ok = stop(keys[at], tops[at])
            act = lo < hi
            return jnp.where(act & ~ok, mid + 1, lo), jnp.where(act & ok, mid, hi)

        lo, _ = jax.lax.fori_loop(0, steps, step, (jnp.int32(0), jnp.int32(keys.shape[0])))
        i = jnp.minimum(lo, keys.shape[0] - 1)
        return keys[i], tops[i]

    # Windows starting at a vertex rate, [r, r + tolerance], and ending at one,
    # [r - tolerance, r]. The end is carried, not recomputed as L + tolerance: in floats
    # (r - tolerance) + tolerance can round below r, and a group whose best rate is r would
    # then seem to gain from a larger L (its right slope just below r), so the search would
    # step past the optimal window.
    lows, highs = jax.vmap(lower_bound)(
        jnp.stack([cand, cand - tolerance]), jnp.stack([cand + tolerance, cand])
    )
    first = jnp.argmin(lows)
    return jnp.clip(m, lows[first], highs[first])


# ----------------------------------------------------------------------------- equalized odds


def _grid_search(f, lo, hi, steps, points=3):
    """Maximiser of a concave ``f`` on ``[lo, hi]``, its value and ``f``'s by-product there,
    by nested grids.

    ``f(x)`` returns ``(value, aux)`` (``aux`` any PyTree computed on the way, so the caller
    need not evaluate ``f`` again at the maximiser). Each step evaluates ``f`` at ``points``
    evenly spaced interior points (one ``vmap``, so ``f`` is traced once) and keeps the two
    cells around the best one, which hold a maximiser of a concave function: the bracket
    shrinks by ``2 / (points + 1)`` per step, so a few sequential steps reach the
    floating-point resolution.
    """
    frac = jnp.arange(1, points + 1, dtype=lo.dtype) / (points + 1)

    def step(_, carry):
        a, b, *_ = carry
        x = a + (b - a) * frac
        fx, aux = jax.vmap(f)(x)
        i = jnp.argmax(fx)
        left = jnp.where(i == 0, a, x[jnp.maximum(i - 1, 0)])
        right = jnp.where(i == points - 1, b, x[jnp.minimum(i + 1, points - 1)])
        return left, right, x[i], fx[i], jax.tree.map(lambda u: u[i], aux)

    aux0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(f, lo)[1])
    init = (lo, hi, lo, jnp.asarray(-jnp.inf, lo.dtype), aux0)
    _, _, x, fx, aux = jax.lax.fori_loop(0, steps, step, init)
    return x, fx, aux


def _solve_equalized_odds(hull: ROCHull, a: Array, b: Array, tolerance: Array):
    """Each group's ``(x, y)`` in the optimal box (see the module doc)."""
    num = hull.start.shape[0]
    vg = _vertex_groups(hull)
    safe = jnp.minimum(vg, num - 1)
    fx, ty = hull.fpr, hull.tpr
    valid = vg < num
    obj = jnp.where(valid, a[safe] * ty - b[safe] * fx, -jnp.inf)
    omax = jax.ops.segment_max(obj, vg, num_segments=num + 1)
    xbest = jax.ops.segment_min(jnp.where(obj >= omax[vg], fx, jnp.inf), vg, num + 1)[:num]
    eps = tolerance

    def upper(x):  # U_g(x): the hull's TPR at FPR x, for every group
        return interpolate(fx, ty, hull.start, hull.count, x, side="right")[3]

    def inverse(y):  # smallest FPR where each group's hull reaches TPR y (one site, 2 queries)
        q = jnp.clip(jnp.stack([jnp.full(num, y[0]), jnp.full(num, y[1])]), 0, 1)
        return jax.vmap(lambda t: interpolate(ty, fx, hull.start, hull.count, t, side="left")[3])(q)

    def points(X, Y):
        xc, xlo = inverse(jnp.stack([Y + eps, Y]))
        lo = jnp.maximum(X, xlo)
        hi = jnp.minimum(jnp.minimum(X + eps, 1), Y + eps)
        x = jnp.minimum(jnp.maximum(jnp.minimum(xbest, xc), lo), hi)
        return x, jnp.minimum(Y + eps, upper(x))

    def value(X, Y):  # the objective in the box, and each group's point
        x, y = points(X, Y)
        return jnp.sum(a * y - b * x), (x, y)

    dtype = fx.dtype
    steps = math.ceil(math.log(jnp.finfo(dtype).eps) / math.log(2 / 4)) + 2

    def best_y(X):  # the best box at X: its value and the groups' points (one grid search)
        top = jnp.minimum(1, jnp.min(upper(jnp.full(num, jnp.minimum(X + eps, 1)))))
        return _grid_search(lambda Y: value(X, Y), X, jnp.maximum(top, X), steps)[1:]

    return _grid_search(best_y, jnp.zeros((), dtype), jnp.ones((), dtype), steps)[2]


# ----------------------------------------------------------------------------- host


def _use_host(*arrays) -> bool:
    """Fit and apply on the host (NumPy, HiGHS): concrete inputs on the CPU backend."""
    return v.on_cpu_host(*arrays)


def _host_rates(crit: str, fpr, tpr, P, N) -> list:
    """The criterion's rates of every vertex (rows of group ``P``, ``N`` per vertex)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = np.where(P + N > 0, (P * tpr + N * fpr) / (P + N), 0)
    return {
        "demographic_parity": [dp],
        "equal_opportunity": [tpr],
        "false_positive_parity": [fpr],
        "equalized_odds": [tpr, fpr],
    }[crit]


def _fit_host(rows, tolerance, fp_cost, fn_cost, crit, objective, num_groups):
    """:func:`fit_thresholds` on the host for concrete rows on the CPU: the hull with NumPy
    (:func:`roc_hull_host`), then the LP of the module doc over mixtures of each group's
    vertices (which span the region between the hull and the diagonal), solved by SciPy's
    HiGHS. None if HiGHS reports no optimum (the compiled path then runs)."""
    hull = roc_hull_host(*rows, num_groups=num_groups)
    P, N = hull.positives.astype(np.float64), hull.negatives.astype(np.float64)
    vg = np.repeat(np.arange(num_groups), hull.count)
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = np.where(N[vg] > 0, hull.false_positives / N[vg], 0)
        tpr = np.where(P[vg] > 0, hull.true_positives / P[vg], 0)
    if objective == "balanced_accuracy":  # 1 / P and 1 / N (0 where a class is absent)
        ca, cb = (1 / t if t > 0 else 0.0 for t in (P.sum(), N.sum()))
    elif objective == "weighted_errors":
        ca, cb = float(fn_cost), float(fp_cost)
    else:
        ca, cb = 1.0, 1.0
    cost = -(ca * P[vg] * tpr - cb * N[vg] * fpr)
    rates = _host_rates(crit, fpr, tpr, P[vg], N[vg])
    lam = _host_lp(cost, rates, vg, float(tolerance), num_groups)
    if lam is None:
        return None
    mass = np.bincount(vg, lam, minlength=num_groups)
    x = np.clip(np.bincount(vg, lam * fpr, minlength=num_groups) / mass, 0, 1)
    y = np.clip(np.bincount(vg, lam * tpr, minlength=num_groups) / mass, 0, 1)
    return _host_rule(hull, fpr, tpr, x, y)


def _host_lp(cost, rates, vg, tolerance, num_groups):
    """The weights of the vertices in the LP's optimum, or None.

    Variables: each vertex's weight in its group's mixture, then the low end ``L_j`` of the
    window of every rate ``j``. Rows: each group's weights sum to 1; ``0 <= rate_g - L_j <=
    tolerance`` for every rate and group. HiGHS through ``milp`` without integer variables:
    the same LP solver as ``linprog``, with half its overhead on problems this small.
    """
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp

    nv, nr = vg.size, len(rates)
    rows = [vg] + [(j + 1) * num_groups + vg for j in range(nr)]
    cols = [np.arange(nv)] * (nr + 1)
    vals = [np.ones(nv), *rates]
    for j in range(nr):
        rows.append((j + 1) * num_groups + np.arange(num_groups))
        cols.append(np.full(num_groups, nv + j))
        vals.append(-np.ones(num_groups))
    matrix = sparse.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=((nr + 1) * num_groups, nv + nr),
    )
    res = milp(
        # scaled to O(1), which HiGHS prefers; the optimum does not change
        np.r_[cost / max(np.abs(cost).max(), 1e-300), np.zeros(nr)],
        constraints=LinearConstraint(
            matrix,
            np.r_[np.ones(num_groups), np.zeros(nr * num_groups)],
            np.r_[np.ones(num_groups), np.full(nr * num_groups, tolerance)],
        ),
        bounds=Bounds(np.r_[np.zeros(nv), np.full(nr, -np.inf)], np.inf),
    )
    return None if res.status != 0 else np.clip(res.x[:nv], 0, None)


def _host_rule(hull: ROCHull, fpr, tpr, x, y) -> ThresholdState:
    """The state of the operating points ``(x, y)``, as the compiled path states it: on the
    hull at FPR ``x`` (vertices ``k0``, ``k1``, weight ``w``), mixed with a coin flip of
    probability ``x`` (weight ``1 - theta``) where the point lies below the hull."""
    start, last = hull.start, hull.start + hull.count - 1
    found = [
        np.searchsorted(fpr[a : b + 1], q, "right") for a, b, q in zip(start, last, x, strict=True)
    ]
    k0 = np.clip(start + np.asarray(found) - 1, start, last)
    k1 = np.minimum(k0 + 1, last)
    span = fpr[k1] - fpr[k0]
    w = np.clip(np.where(span > 0, (x - fpr[k0]) / np.where(span > 0, span, 1), 0), 0, 1)
    u = tpr[k0] + w * (tpr[k1] - tpr[k0])
    theta = np.clip(np.where(u > x, (y - x) / np.where(u > x, u - x, 1), 1), 0, 1)
    flip = (1 - theta) * x
    probs = np.stack([flip, theta * w + flip, theta + flip], axis=1)
    out = (hull.thresholds[k1], hull.thresholds[k0], probs, x, y, hull.positives, hull.negatives)
    dtype = hull.thresholds.dtype
    return ThresholdState(*jax.device_put([np.asarray(a, dtype) for a in out]))


# ----------------------------------------------------------------------------- fit


def _rule(hull: ROCHull, k0: Array, k1: Array, lam: Array, theta: Array, coin: Array):
    """Thresholds and the three probabilities of the mixture of vertices ``k0``, ``k1``
    (weight ``lam`` on ``k1``), itself mixed with a coin of probability ``coin`` (weight
    ``1 - theta``)."""
    flip = (1 - theta) * coin
    probs = jnp.stack([flip, theta * lam + flip, theta + flip], axis=1)
    return hull.thresholds[k1], hull.thresholds[k0], probs


@functools.partial(jax.jit, static_argnames=("num_groups", "equalized_odds", "presorted"))
def _fit(
    scores,
    labels,
    groups,
    weights,
    tolerance,
    fp_cost,
    fn_cost,
    which,
    objective,
    *,
    num_groups,
    equalized_odds,
    presorted=False,
):
    """``which``: index of the criterion in ``_ONE_RATE`` (ignored for equalized odds);
    ``objective``: index in ``THRESHOLD_OBJECTIVES``; both traced."""
    hull = _roc_hull(scores, labels, groups, weights, num_groups=num_groups, presorted=presorted)
    dtype = hull.fpr.dtype
    tolerance = jnp.asarray(tolerance, dtype)
    P, N = hull.positives, hull.negatives
    one = jnp.ones((), dtype)
    costs = (
        (one, one),
        # 0 where a class is absent, as on the host (1 / 0 = inf would make 0 * inf = NaN)
        (gs.safe_divide(one, jnp.sum(P)), gs.safe_divide(one, jnp.sum(N))),
        (jnp.asarray(fn_cost, dtype), jnp.asarray(fp_cost, dtype)),
    )
    ca, cb = jax.lax.switch(objective, [lambda c=c: c for c in costs])
    vg = _vertex_groups(hull)
    safe = jnp.minimum(vg, num_groups - 1)
    if equalized_odds:
        x, y = _solve_equalized_odds(hull, ca * P, cb * N, tolerance)
        k0, k1, lam, u = interpolate(hull.fpr, hull.tpr, hull.start, hull.count, x, side="right")
        theta = jnp.where(u > x, gs.safe_divide(y - x, u - x), 1)
    else:
        rate = _rates(hull, which, safe)
        obj = ca * hull.true_positives - cb * hull.false_positives
        r = _solve_one_rate(hull, rate, obj, vg, tolerance)
        k0, k1, lam, _ = _best_point(rate, obj, hull, r)
        x = hull.fpr[k0] + lam * (hull.fpr[k1] - hull.fpr[k0])
        y = hull.tpr[k0] + lam * (hull.tpr[k1] - hull.tpr[k0])
        theta = jnp.ones_like(x)
    lower, upper, probs = _rule(hull, k0, k1, lam, theta, x)
    return ThresholdState(lower, upper, probs, x, y, P, N)


def check_options(
    num_groups: Any, criterion: Any, objective: Any, tolerance: Any, fp_cost: Any, fn_cost: Any
) -> tuple[int, str]:
    """Validated options of :func:`fit_thresholds`: ``(num_groups, criterion name)``."""
    num_groups = v.check_num_groups(num_groups)
    crit = criteria.get(criterion, allowed=THRESHOLD_CRITERIA).name
    criteria.check_option(objective, "objective", THRESHOLD_OBJECTIVES)
    v.check_scalar(tolerance, "tolerance", low=0, high=1)
    v.check_scalar(fp_cost, "false_positive_cost", nonnegative=True)
    v.check_scalar(fn_cost, "false_negative_cost", nonnegative=True)
    return num_groups, crit


def check_groups_present(P: np.ndarray, N: np.ndarray, crit: str) -> None:
    """Raises if a group lacks the rows (weighted positives ``P``, negatives ``N``) that the
    criterion's rates count."""
    need = {
        "demographic_parity": (P + N, "rows"),
        "equal_opportunity": (P, "positive rows"),
        "false_positive_parity": (N, "negative rows"),
    }
    checks = (
        [need[crit]] if crit in need else [need["equal_opportunity"], need["false_positive_parity"]]
    )
    for total, what in checks:
        empty = np.flatnonzero(total <= 0)
        if empty.size:
            raise ValueError(
                f"group(s) {empty[:5].tolist()} have no calibration {what} (with positive "
                f"weight): criterion={crit!r} compares a rate over them in every group."
            )


def fit_thresholds(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    criterion: str | criteria.Criterion = "demographic_parity",
    tolerance: float | ArrayLike = 0.0,
    objective: str = "accuracy",
    weights: ArrayLike | None = None,
    false_positive_cost: float | ArrayLike = 1.0,
    false_negative_cost: float | ArrayLike = 1.0,
) -> ThresholdState:
    r"""Group-specific randomised thresholds that maximise an objective under a criterion.

    Solves the linear program of the module documentation exactly (to floating-point
    resolution) on calibration scores: each group's operating point lies on its ROC convex hull
    (or between it and the diagonal), every pairwise gap of the criterion's rates is at most
    ``tolerance`` (0: exact parity), and the weighted accuracy, balanced accuracy or weighted
    errors are optimal under that constraint. Jittable (``num_groups``, ``criterion`` and
    ``objective`` static); ``tolerance`` and the costs may be traced, so
    ``jax.vmap(lambda t: fit_thresholds(..., tolerance=t))`` gives the whole post-processing
    front in one program. Called with concrete inputs on the CPU backend it compiles nothing:
    NumPy builds the hulls and SciPy's HiGHS solves the LP (see the module documentation).

    .. versionchanged:: 0.1.0
       Concrete inputs on the CPU are fitted on the host (NumPy and HiGHS), not compiled.

    Args:
      scores: calibration scores ``(n,)`` of any model (higher: more likely positive); finite.
      labels: binary labels ``(n,)``.
      groups: integer group ids ``(n,)`` in ``[0, num_groups)``.
      num_groups: static number of groups.
      criterion: ``"demographic_parity"``, ``"equal_opportunity"`` (TPR parity),
        ``"false_positive_parity"`` or ``"equalized_odds"`` (see :mod:`fairjax.criteria`).
      tolerance: the largest allowed gap between two groups' rates, in ``[0, 1]``.
      objective: ``"accuracy"``, ``"balanced_accuracy"`` or ``"weighted_errors"``
        (minimise ``false_positive_cost * FP + false_negative_cost * FN``).
      weights: optional non-negative sample weights ``(n,)``.
      false_positive_cost: cost of a false positive (``objective="weighted_errors"``).
      false_negative_cost: cost of a false negative (``objective="weighted_errors"``).

    Returns:
      A :class:`ThresholdState`; apply it with :func:`apply_thresholds`.

    Raises:
      ValueError: bad input (naming the argument), or a group without the rows its rates
        count (for instance no positive row under ``"equal_opportunity"``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_thresholds, apply_thresholds
      >>> s = jax.random.uniform(jax.random.key(0), (400,))
      >>> g = (jnp.arange(400) % 2).astype(jnp.int32)
      >>> y = (jax.random.uniform(jax.random.key(1), (400,)) < s * (0.5 + 0.5 * g)).astype(int)
      >>> state = fit_thresholds(s, y, g, num_groups=2, criterion="demographic_parity")
      >>> p = apply_thresholds(state, s, g)        # expected decisions
      >>> bool(abs(p[g == 0].mean() - p[g == 1].mean()) < 1e-5)
      True
      >>> fronts = jax.vmap(lambda t: fit_thresholds(s, y, g, num_groups=2, tolerance=t))(
      ...     jnp.linspace(0, 0.2, 5))
      >>> fronts.lower.shape
      (5, 2)

    References:
      Hardt, Price, Srebro, *Equality of opportunity in supervised learning*, NeurIPS 2016,
      section 4; Cruz, Hardt, *Unprocessing seven years of algorithmic fairness*, ICLR 2024,
      section 3 (relaxed constraints).
    """
    num_groups, crit = check_options(
        num_groups, criterion, objective, tolerance, false_positive_cost, false_negative_cost
    )
    options = (tolerance, false_positive_cost, false_negative_cost)
    host = _use_host(scores, labels, groups, weights, *options)
    s, y, g, w = check_inputs(scores, labels, groups, weights, num_groups, host=host)
    if v.is_concrete(y, g, w):
        yy, gg = np.asarray(y), np.asarray(g)
        ww = np.ones(yy.shape[0]) if w is None else np.asarray(w)
        P = np.bincount(gg, ww * (yy == 1), minlength=num_groups)
        N = np.bincount(gg, ww * (yy == 0), minlength=num_groups)
        check_groups_present(P, N, crit)
    if host:
        state = _fit_host((s, y, g, w), *options, crit, objective, num_groups)
        if state is not None:
            return state
    rows, presorted = prepare(s, y, g, w, num_groups=num_groups)
    eo = crit == "equalized_odds"
    state = _fit(
        *rows,
        tolerance,
        false_positive_cost,
        false_negative_cost,
        np.int32(0 if eo else _ONE_RATE.index(crit)),
        np.int32(THRESHOLD_OBJECTIVES.index(objective)),
        num_groups=num_groups,
        equalized_odds=eo,
        presorted=presorted,
    )
    if v.is_concrete(s, w, *options):
        return state  # the checks above saw the values
    return _nan_state_if_invalid(state, s, w, *options)


def _nan_state_if_invalid(state: ThresholdState, s, w, tolerance, fp_cost, fn_cost):
    """NaN in, NaN out under ``jit``, where the value checks cannot run: a NaN score or weight,
    or an option out of its range, gives a state of NaN (its rates never read as fair)."""
    tolerance, fp_cost, fn_cost = (jnp.asarray(a) for a in (tolerance, fp_cost, fn_cost))
    bad = jnp.any(jnp.isnan(s)) | ~((tolerance >= 0) & (tolerance <= 1))
    bad = bad | ~(fp_cost >= 0) | ~(fn_cost >= 0)
    if w is not None:
        bad = bad | jnp.any(jnp.isnan(w))
    return _nan_floats_where(bad, state)


# ----------------------------------------------------------------------------- apply


def _probabilities(xp, state: ThresholdState, scores: Array, groups: Array) -> Array:
    """Each row's probability of a positive decision (``xp``: NumPy on the host, or
    ``jax.numpy`` in the compiled program). Scores are compared at the thresholds' precision
    (a float32 state, as the streamed fit gives, read float64 scores as the fit did). A NaN
    score, or under ``jit`` a group id out of range (which indexing would clamp), gives NaN."""
    upper, lower = xp.asarray(state.upper), xp.asarray(state.lower)
    p = xp.asarray(state.probabilities)[groups].astype(scores.dtype)
    s = scores.astype(upper.dtype)
    decided = xp.where(s >= upper[groups], p[:, 2], xp.where(s >= lower[groups], p[:, 1], p[:, 0]))
    valid = ~xp.isnan(scores) & (groups >= 0) & (groups < upper.shape[0])
    return xp.where(valid, decided, xp.nan)


def _mixed_probabilities(xp, state: ThresholdState, scores: Array, membership: Array) -> Array:
    """``sum_g m_g f_g(s)``: every group's rule, weighted by the row's membership (compared
    and NaN as in :func:`_probabilities`)."""
    upper, lower = xp.asarray(state.upper), xp.asarray(state.lower)
    p = xp.asarray(state.probabilities).astype(scores.dtype)
    s = scores.astype(upper.dtype)[:, None]
    each = xp.where(s >= upper, p[:, 2], xp.where(s >= lower, p[:, 1], p[:, 0]))
    mixed = xp.sum(membership.astype(scores.dtype) * each, axis=1)
    return xp.where(xp.isnan(scores), xp.nan, mixed)


_probabilities_jit = jax.jit(functools.partial(_probabilities, jnp))
_mixed_probabilities_jit = jax.jit(functools.partial(_mixed_probabilities, jnp))


def _draw_host(p: np.ndarray, key: Array) -> np.ndarray:
    """0/1 decisions drawn by NumPy's generator seeded with the key's bits (no program)."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key), np.uint32).ravel())
    return (rng.random(p.shape, np.float64) < p).astype(p.dtype)


def apply_thresholds(
    state: ThresholdState,
    scores: ArrayLike,
    groups: ArrayLike,
    *,
    key: Array | None = None,
) -> Array:
    r"""Decisions of fitted thresholds: expected (no ``key``) or drawn (with a ``key``).

    Without a key, returns each row's probability of a positive decision (the expected
    decision: rates computed from it equal the rates of the randomised rule in expectation).
    With a ``jax.random`` key, draws the decisions (0. or 1.), independently per row: on the
    CPU backend with concrete inputs, by NumPy's generator seeded with the key's bits (no
    program is compiled for each new number of rows), under ``jit``/``vmap`` or on an
    accelerator by ``jax.random``. The two draw from the same distribution but not the same
    numbers: one key gives the same decisions again on the same path.

    *Inferred groups.* When the sensitive attribute is not available at prediction time,
    ``groups`` may be a membership matrix ``(n, G)`` of estimated group probabilities
    :math:`\hat p(g \mid x)` (rows summing to 1, e.g. ``predict_proba`` of a classifier of
    the group): the decision is positive with probability
    :math:`\sum_g \hat p(g \mid x) f_g(s)`, every group's rule weighted by the row's
    estimated membership. This guarantees nothing about the rates on the true groups: they
    mix the groups' rules in proportions set by the group classifier's errors, so the gaps
    must be measured on data with the true attribute (see the thresholds guide). With one-hot
    rows it equals the rule applied to hard ids.

    .. versionchanged:: 0.1.0
       On the CPU with concrete inputs the rule is applied, and drawn, with NumPy.

    Args:
      state: from :func:`fit_thresholds`.
      scores: scores ``(n,)`` of the same model as at fit time.
      groups: integer group ids ``(n,)``, or a membership matrix ``(n, G)`` of group
        probabilities.
      key: optional single ``jax.random`` key (typed, or the raw ``uint32`` data of
        ``jax.random.PRNGKey``).

    Returns:
      Array ``(n,)`` in the scores' floating dtype, at least float32 (float16 and integer
      scores give float32): probabilities, or 0/1 decisions.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_thresholds, apply_thresholds
      >>> s = jnp.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.6, 0.7, 0.9])
      >>> y = jnp.array([0, 0, 1, 1, 0, 1, 0, 1]); g = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> st = fit_thresholds(s, y, g, num_groups=2, criterion="equal_opportunity")
      >>> apply_thresholds(st, s, g, key=jax.random.key(0)).shape
      (8,)
    """
    if not isinstance(state, ThresholdState):
        raise TypeError(f"`state` must come from fit_thresholds, got {type(state).__name__}.")
    if state.lower.ndim != 1:
        raise ValueError(
            f"`state` holds a batch of {state.lower.shape[:-1]} rules (lower has shape "
            f"{state.lower.shape}, e.g. from fit_thresholds under jax.vmap): apply one, "
            "jax.tree.map(lambda a: a[i], state), or jax.vmap apply_thresholds over the batch."
        )
    num = state.lower.shape[-1]
    host = _use_host(scores, groups, key, *state)
    if key is not None:
        key = v.check_key(key)
    x = v.as_array(scores, "scores", ndim=1, host=host)
    v.check_finite(x, "scores")
    x = x.astype(v.float_dtype(x))
    g = v.check_groups(groups, num_groups=num, n=x.shape[0], host=host)
    if g.ndim == 2 and v.is_concrete(g):
        if not v.holds(lambda xp, m: xp.all(xp.abs(m.sum(1) - 1) < 1e-3), g):
            raise ValueError("a `groups` membership matrix must have rows that sum to 1.")
    if host:  # NumPy: no program to compile for each new shape
        rule = _mixed_probabilities if g.ndim == 2 else _probabilities
        p = rule(np, jax.tree.map(np.asarray, state), np.asarray(x), np.asarray(g))
        return jax.device_put(p if key is None else _draw_host(p, key))
    p = (_mixed_probabilities_jit if g.ndim == 2 else _probabilities_jit)(state, x, g)
    return p if key is None else _draw(p, key)


@jax.jit
def _draw(p: Array, key: Array) -> Array:
    """0/1 decisions, positive with probability ``p`` (one program, not one per operation); a
    NaN probability (a NaN score, an id out of range under ``jit``) stays NaN, not a 0."""
    drawn = (jax.random.uniform(key, p.shape, p.dtype) < p).astype(p.dtype)
    return jnp.where(jnp.isnan(p), jnp.nan, drawn)
