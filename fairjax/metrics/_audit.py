"""The fairness audit of a set of predictions: per-group table and metrics with intervals."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax.criteria import confusion_matrix, confusion_rates, group_rates, largest_gap
from fairjax.metrics._common import check_inputs, shifted_on_host
from fairjax.metrics._confusion import (
    accuracy_difference,
    false_negative_rate_difference,
    false_omission_rate_difference,
    predictive_parity_difference,
    treatment_equality_difference,
    true_negative_rate_difference,
)
from fairjax.metrics._parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from fairjax.metrics._scores import ks_unfairness
from fairjax.metrics._tables import bootstrap, by_group
from fairjax.ot1d import pooled_group_cdfs

ArrayLike = jax.typing.ArrayLike

# The statistics of by_group reported for each group, in the report's order; those that need
# labels are left out of a report without them.
_LABEL_KEYS = ("accuracy", "tpr", "fpr", "base_rate")
_TABLE_KEYS = ("count", "selection_rate", *_LABEL_KEYS)
# The metrics of the report, in its order (the KS distance only with scores).
_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "ks_unfairness",
)
_LABEL_METRICS = ("equal_opportunity_difference", "equalized_odds_difference")
# The confusion-matrix criteria a report adds on request (``criteria=``), in the report's order:
# criterion name -> (metric, its function, the per-group column of the criterion's rate).
CRITERION_ROWS = {
    "predictive_parity": ("predictive_parity_difference", predictive_parity_difference, "ppv"),
    "false_omission_rate_parity": (
        "false_omission_rate_difference",
        false_omission_rate_difference,
        "false_omission_rate",
    ),
    "false_negative_rate_parity": (
        "false_negative_rate_difference",
        false_negative_rate_difference,
        "fnr",
    ),
    "true_negative_rate_parity": (
        "true_negative_rate_difference",
        true_negative_rate_difference,
        "tnr",
    ),
    "accuracy_parity": ("accuracy_difference", accuracy_difference, "accuracy"),
    "treatment_equality": (
        "treatment_equality_difference",
        treatment_equality_difference,
        "fn_fp_ratio",
    ),
}


def check_criteria(criteria: Sequence[str] | str, labelled: bool) -> tuple[str, ...]:
    """The criteria a report adds (names of :data:`CRITERION_ROWS`, or ``"all"``), checked, in
    the report's order; they compare rates of labels, so they need labels."""
    names = [criteria] if isinstance(criteria, str) else list(criteria)
    if "all" in names:
        names = list(CRITERION_ROWS)
    unknown = [c for c in names if c not in CRITERION_ROWS]
    if unknown:
        raise ValueError(
            f"`criteria` must hold names of {tuple(CRITERION_ROWS)} (or 'all'), got {unknown[0]!r}."
        )
    if names and not labelled:
        raise ValueError(
            f"`criteria` {names} compare rates that need labels: give `y_true` as well."
        )
    return tuple(c for c in CRITERION_ROWS if c in names)


def _number(x: Any) -> float:
    """A computed scalar as the shortest decimal that reads back as the same number in the
    dtype it was computed in: a float32 0.6666667 is written 0.6666667, not as its float64
    expansion 0.6666666865348816 (NaN and infinities stay as they are)."""
    a = np.asarray(x)[()]  # a NumPy scalar of the computed dtype (a 0-d array prints as float64)
    if not np.isfinite(a):
        return float(a)
    return float(np.format_float_positional(a, unique=True, trim="-"))


def group_row(name: str, rows: int, table: dict[str, np.ndarray], g: int) -> dict[str, Any]:
    """One group's row of a report: its ``rows``, and its column ``g`` of ``table`` (whose
    ``count`` is the group's weight). A group whose rows all have weight 0 keeps its count
    of 0, and every statistic over its (empty) weighted rows is missing (None), not the
    placeholder 0 of :func:`by_group`, which would read as a perfect group."""
    empty = table["count"][g] == 0
    return {"group": name, "rows": int(rows)} | {
        k: None if empty and k != "count" else _number(col[g]) for k, col in table.items()
    }


@functools.partial(jax.jit, static_argnames=("num_groups", "criteria"))
def _point_stats(y_t, y_p, s, x, w, *, num_groups: int, criteria: tuple = ()) -> dict[str, Any]:
    """What the report computes on the data as it is, in one compiled program: the table's
    statistics, the metrics, and the per-group values that name the pair behind each gap."""
    kw = {"num_groups": num_groups, "weights": w}
    labels = y_p if y_t is None else y_t  # without labels, by_group's label columns are unused
    out = {
        "table": by_group(labels, y_p, s, **kw),
        "overall": by_group(labels, y_p, jnp.zeros_like(s), num_groups=1, weights=w),
        "rows": gs.group_counts(s, num_groups=num_groups),
        "dp": group_rates(y_p, s, criterion="demographic_parity", **kw),
    }
    arrays = [y_p, s]
    if y_t is not None:
        arrays.append(y_t)
        out["eodds"] = group_rates(y_p, s, y_t, criterion="equalized_odds", **kw)
        if criteria:  # the cells of every requested criterion's rates, (G, 4)
            out["confusion"] = confusion_matrix(y_p, s, y_t, **kw)
    if x is not None:
        arrays.append(x)
        out["ks"] = ks_point(pooled_group_cdfs(x, s, **kw))
    out["metrics"] = _all_metrics(num_groups, y_t is not None, criteria)(*arrays, weights=w)
    return out


def ks_point(cdf) -> tuple[jax.Array, jax.Array]:
    """The groups' CDFs where the KS distance is attained (a run end of the pooled scores), and
    the groups' weights: ``(cdfs (G,), counts (G,))`` of :func:`fairjax.ot1d.pooled_group_cdfs`'s
    ``cdf``; their lowest and highest name the pair behind the distance."""
    present = cdf.counts > 0
    big = jnp.finfo(cdf.cdfs.dtype).max
    hi = jnp.max(jnp.where(present, cdf.cdfs, -big), 1)
    spread = hi - jnp.min(jnp.where(present, cdf.cdfs, big), 1)
    at = jnp.argmax(jnp.where(cdf.run_end, spread, -big))
    return cdf.cdfs[at], cdf.counts


def _group_rows(stats, labelled: bool, names) -> tuple[list[dict], dict]:
    """Per-group rows (non-empty groups only) and the overall row of the report; without
    labels only the counts and selection rates."""
    keys = _TABLE_KEYS if labelled else _TABLE_KEYS[:2]
    table = {k: np.asarray(stats["table"][k]) for k in keys}
    rows_per_group = np.asarray(stats["rows"])
    if labelled:  # the weight of each group's positive and negative labels
        positives, negatives = np.asarray(stats["eodds"][1])
    extra = _criterion_columns(stats)
    group_rows = []
    for g in range(len(names)):
        if rows_per_group[g] == 0:
            continue
        row = group_row(names[g], rows_per_group[g], table, g)
        # A rate over an empty set is reported as missing, not as the metrics' placeholder 0.
        if labelled and positives[g] == 0:
            row["tpr"] = None
        if labelled and negatives[g] == 0:
            row["fpr"] = None
        group_rows.append(row | {k: r[g] for k, r in extra.items()})
    n = int(rows_per_group.sum())  # the report's n: the rows of all groups
    overall = {k: _number(np.asarray(stats["overall"][k])[0]) for k in keys}
    overall |= {k: r[0] for k, r in _criterion_columns(stats, overall=True).items()}
    return group_rows, {"group": "overall", "rows": n} | overall


def requested_criteria(stats) -> list[str]:
    """The criteria of :data:`CRITERION_ROWS` whose metric a report's statistics hold."""
    return [c for c, (name, _, _) in CRITERION_ROWS.items() if name in stats["metrics"]]


def _criterion_columns(stats, *, overall: bool = False) -> dict[str, list]:
    """The per-group rate of each requested criterion (None where its denominator is 0;
    accuracy is already a column), or with ``overall`` the rate of all rows."""
    matrix = np.asarray(stats["confusion"]) if "confusion" in stats else None
    if overall and matrix is not None:
        matrix = matrix.sum(0, keepdims=True)
    out = {}
    for c in requested_criteria(stats):
        column = CRITERION_ROWS[c][2]
        if column in _TABLE_KEYS:
            continue
        rates, dens = (np.asarray(a)[0] for a in confusion_rates(matrix, c))
        out[column] = [_number(r) if d > 0 else None for r, d in zip(rates, dens, strict=True)]
    return out


@functools.lru_cache(maxsize=32)
def _all_metrics(num_groups: int, labelled: bool, criteria: tuple = ()):
    """All the report's gaps as one metric of ``(y_pred, groups[, y_true][, scores])``; cached
    per setting so that reports of equal shapes reuse the bootstrap's compiled program (the
    metric is a static argument)."""
    kw = {"num_groups": num_groups}

    def all_metrics(y_p, s, *rest, weights=None):
        # One metric returning a dict: the bootstrap compiles a single program for all of them,
        # and every metric sees the same resamples.
        out = {
            "demographic_parity_difference": demographic_parity_difference(
                y_p, s, weights=weights, **kw
            ),
            "demographic_parity_ratio": demographic_parity_ratio(y_p, s, weights=weights, **kw),
        }
        if labelled:
            y_t, rest = rest[0], rest[1:]
            out["equal_opportunity_difference"] = equal_opportunity_difference(
                y_t, y_p, s, weights=weights, **kw
            )
            out["equalized_odds_difference"] = equalized_odds_difference(
                y_t, y_p, s, weights=weights, **kw
            )
            for c in criteria:
                name, metric, _ = CRITERION_ROWS[c]
                out[name] = metric(y_t, y_p, s, weights=weights, **kw)
        if rest:
            out["ks_unfairness"] = ks_unfairness(rest[0], s, weights=weights, **kw)
        return out

    return all_metrics


def _extreme_pair(values: np.ndarray, present: np.ndarray, names: Sequence[str]) -> list | None:
    """``[lowest, highest]`` group names of ``values`` over the ``present`` groups (first
    lowest, last highest, so that equal values still name two groups); None under two."""
    idx = np.flatnonzero(present)
    if idx.size < 2:
        return None
    v = np.asarray(values)[idx]
    return [names[idx[np.argmin(v)]], names[idx[v.size - 1 - np.argmax(v[::-1])]]]


def _pairs(stats, names) -> dict[str, dict]:
    """For each metric, the two groups whose gap it is: ``{"between": [low, high]}`` (and the
    ``rate`` of the equalized odds difference, ``"tpr"`` or ``"fpr"``)."""

    def between(rates, counts) -> dict[str, list | None]:
        return {"between": _extreme_pair(np.asarray(rates), np.asarray(counts) > 0, names)}

    rates, counts = stats["dp"]
    out = {
        "demographic_parity_difference": between(rates[0], counts[0]),
        "demographic_parity_ratio": between(rates[0], counts[0]),
    }
    if "eodds" in stats:
        rates, counts = (np.asarray(a) for a in stats["eodds"])
        out["equal_opportunity_difference"] = between(rates[0], counts[0])
        k = int(np.argmax(np.asarray(largest_gap(rates, counts))))  # TPR when the two are equal
        out["equalized_odds_difference"] = between(rates[k], counts[k]) | {
            "rate": ("tpr", "fpr")[k]
        }
    for c in requested_criteria(stats):
        out[CRITERION_ROWS[c][0]] = between(*(a[0] for a in confusion_rates(stats["confusion"], c)))
    if "ks" in stats:  # the lowest and the highest CDF (the first has the larger scores)
        out["ks_unfairness"] = between(*stats["ks"])
    return out


def check_report_options(
    num_groups: int,
    group_names: Sequence[str] | None,
    num_resamples: int,
    confidence_level: float,
    min_group_size: int,
) -> tuple[list, int, float, int]:
    """The checked options shared by :func:`audit_report` and its streaming form: group names,
    resamples (0 or at least 2), confidence level in (0, 1), minimum group size."""
    names = [str(g) for g in range(num_groups)] if group_names is None else list(group_names)
    if len(names) != num_groups:
        raise ValueError(f"`group_names` must hold {num_groups} names, got {len(names)}.")
    num_resamples = v.check_scalar(num_resamples, "num_resamples", integer=True, low=0)
    if num_resamples == 1:
        raise ValueError("`num_resamples` must be 0 (no bootstrap) or at least 2, got 1.")
    level = v.check_scalar(
        confidence_level, "confidence_level", low=0, high=1, inclusive=(False, False)
    )
    min_group_size = v.check_scalar(min_group_size, "min_group_size", integer=True, low=0)
    return names, num_resamples, level, min_group_size


def intervals(
    metric, arrays, weights, estimate, *, key, num_resamples: int, confidence_level: float
) -> tuple[dict, dict]:
    """The ends of the bootstrap intervals of a report's ``metric`` (a dict of metrics) on
    ``arrays``; ``None`` each with ``num_resamples=0``."""
    if not num_resamples:
        return dict.fromkeys(estimate), dict.fromkeys(estimate)
    res = bootstrap(
        metric,
        *arrays,
        key=jax.random.key(0) if key is None else key,
        weights=weights,
        num_resamples=num_resamples,
        confidence_level=confidence_level,
    )
    return res.lower, res.upper


def audit_report(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    scores: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    group_names: Sequence[str] | None = None,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    min_group_size: int = 30,
    key: jax.Array | None = None,
    criteria: Sequence[str] = (),
) -> dict[str, Any]:
    r"""Fairness report of a set of decisions: per-group table and gaps with bootstrap intervals.

    The report behind ``fairjax audit``, as a JSON-ready dict of Python numbers. For each group
    with at least one row it gives the weighted count and the rates of :func:`by_group`
    (selection rate, accuracy, TPR, FPR, base rate; a rate over an empty set, such as the TPR
    of a group without positive labels, or every rate of a group whose rows all have weight 0,
    is ``None``); the same row for all rows together; and
    the largest gaps between groups

    .. math:: \max_{a, b} |r_a - r_b|

    of :func:`demographic_parity_difference`, :func:`demographic_parity_ratio`,
    :func:`equal_opportunity_difference`, :func:`equalized_odds_difference`, and
    :func:`ks_unfairness` of ``scores`` when given, each with a percentile bootstrap interval
    (:func:`bootstrap`, all metrics on the same resamples, rows resampled with their weights)
    and the pair of groups :math:`(a, b)` that gives it. Without labels (``y_true=None``) the
    statistics and metrics that need them (accuracy, TPR, FPR, base rate, the equal
    opportunity and equalized odds differences) are left out and listed under ``omitted``.

    ``criteria=`` adds the gaps of rates of the confusion matrix (:data:`fairjax.criteria.
    CRITERIA`), with the same intervals and pairs: ``"predictive_parity"``
    (:func:`predictive_parity_difference`, per-group column ``ppv``),
    ``"false_omission_rate_parity"`` (``false_omission_rate``), ``"false_negative_rate_parity"``
    (``fnr``), ``"true_negative_rate_parity"`` (``tnr``), ``"accuracy_parity"``
    (:func:`accuracy_difference`, the ``accuracy`` column) and ``"treatment_equality"``
    (``fn_fp_ratio``), or ``"all"``; a group whose rate has no denominator (PPV of a group with
    no positive decision) has ``None`` and is left out of the gap. They need labels.

    A gap between groups of a few rows is mostly noise, yet it can set the largest gap: groups
    with fewer than ``min_group_size`` rows are listed under ``small_groups``, so that a reader
    (``fairjax audit`` warns) can see whether the pair behind a headline is one of them.

    Numbers are computed in the arrays' dtype (float32 unless JAX's 64-bit mode is on) and
    written as the shortest decimal that reads back as the same value in that dtype (float32
    ``0.6666667`` rather than ``0.6666666865348816``); ``precision`` names the dtype.

    Runs on concrete arrays (not under ``jit``): the report is a Python dict.

    Args:
      y_true: 0/1 labels, shape ``(n,)``, or None (no label metrics).
      y_pred: 0/1 decisions, shape ``(n,)``.
      groups: integer group ids in ``[0, num_groups)``, shape ``(n,)`` (several sensitive
        attributes: intersect them first with :func:`fairjax.groups.intersect`).
      num_groups: the number of groups (groups without rows are left out of the table).
      scores: optional real scores ``(n,)``; adds the KS distance between groups.
      weights: optional non-negative sample weights ``(n,)``.
      group_names: a name per group id (default ``"0"``, ``"1"``, ...).
      num_resamples: bootstrap resamples (at least 2), or 0 for no bootstrap (the intervals
        are then ``None``).
      confidence_level: coverage of the intervals, in ``(0, 1)``.
      min_group_size: groups with fewer rows are listed as small (0 lists none).
      key: PRNG key of the bootstrap (default ``jax.random.key(0)``).
      criteria: names of confusion-matrix criteria to add (see above), or ``"all"``; default
        none (the report of the rates of positive decisions only).

    Returns:
      A dict: ``n`` (rows), ``num_groups`` (non-empty groups), ``groups`` (one dict per
      non-empty group: ``group`` name, ``rows``, ``count``, ``selection_rate`` and, with
      labels, ``accuracy``, ``tpr``, ``fpr``, ``base_rate``), ``overall`` (the same for all
      rows), ``metrics`` (per metric name: ``estimate``, ``lower``, ``upper`` and ``between``,
      the names of the groups with the lowest and the highest rate, or for the KS distance
      the lowest and the highest CDF where it is attained; the equalized odds difference also
      names its ``rate``, ``"tpr"`` or ``"fpr"``), ``omitted`` (metrics left out for want of
      labels), ``small_groups`` (names), ``min_group_size``, ``precision`` and ``bootstrap``
      (its settings).

    Raises:
      ValueError: inputs of the wrong shape or values, or a bad bootstrap setting.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import metrics
      >>> y = jnp.array([1, 0, 1, 0, 1, 1, 0, 0])
      >>> pred = jnp.array([1, 0, 1, 1, 0, 1, 0, 0])
      >>> s = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> report = metrics.audit_report(y, pred, s, num_groups=2, group_names=["a", "b"],
      ...                               num_resamples=50)
      >>> [(g["group"], g["selection_rate"]) for g in report["groups"]]
      [('a', 0.75), ('b', 0.25)]
      >>> dp = report["metrics"]["demographic_parity_difference"]
      >>> dp["estimate"], dp["between"]
      (0.5, ['b', 'a'])
      >>> report["small_groups"]  # 4 rows each, below the default 30
      ['a', 'b']
    """
    labelled = y_true is not None
    criteria = check_criteria(criteria, labelled)
    check_inputs(y_true if labelled else y_pred, y_pred, groups, num_groups, weights)
    n = int(np.shape(y_pred)[0])
    if np.ndim(groups) != 1:
        raise ValueError(f"`groups` must hold integer ids of shape ({n},), got {np.shape(groups)}.")
    if scores is not None:
        v.check_length(v.as_array(scores, "scores", ndim=1), n, "scores", "y_pred")
        v.check_finite(jnp.asarray(scores), "scores")
    names, num_resamples, confidence_level, min_group_size = check_report_options(
        num_groups, group_names, num_resamples, confidence_level, min_group_size
    )

    y_t = jnp.asarray(y_true) if labelled else None
    y_p, s = jnp.asarray(y_pred), jnp.asarray(groups)
    w = None if weights is None else jnp.asarray(weights, jnp.float32)
    x = None if scores is None else jnp.asarray(shifted_on_host(scores), jnp.float32)
    stats = _point_stats(y_t, y_p, s, x, w, num_groups=num_groups, criteria=criteria)
    arrays = [y_p, s] + ([y_t] if labelled else []) + ([x] if x is not None else [])
    lower, upper = intervals(
        _all_metrics(num_groups, labelled, criteria), arrays, w, stats["metrics"],
        key=key, num_resamples=num_resamples, confidence_level=confidence_level,
    )  # fmt: skip
    return assemble_report(
        stats,
        lower,
        upper,
        names,
        labelled=labelled,
        min_group_size=min_group_size,
        bootstrap_info={"num_resamples": num_resamples, "confidence_level": confidence_level},
    )


def metric_entries(
    estimate: dict[str, Any],
    lower: dict[str, Any],
    upper: dict[str, Any],
    pairs: dict[str, dict[str, Any]],
    names: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """The report's entry of each metric of ``names``: its estimate, the ends of its interval
    (``None`` without a bootstrap) and the groups of ``pairs`` it names (the classification and
    the regression reports share it)."""

    def interval_end(x):
        return None if x is None else _number(x)

    return {
        name: {
            "estimate": _number(estimate[name]),
            "lower": interval_end(lower[name]),
            "upper": interval_end(upper[name]),
        }
        | pairs[name]
        for name in names
    }


def assemble_report(
    stats: dict[str, Any],
    lower: dict[str, Any],
    upper: dict[str, Any],
    names: Sequence[str],
    *,
    labelled: bool,
    min_group_size: int,
    bootstrap_info: dict[str, Any],
) -> dict[str, Any]:
    """The report's dict from :func:`_point_stats`'s statistics and the intervals' ends (the
    in-memory and the streamed audits share it)."""
    group_rows, overall_row = _group_rows(stats, labelled, names)
    estimate = stats["metrics"]
    pairs = _pairs(stats, names)
    metric_names = (*_METRICS, *(CRITERION_ROWS[c][0] for c in CRITERION_ROWS))
    results = metric_entries(
        estimate, lower, upper, pairs, [m for m in metric_names if m in estimate]
    )
    return {
        "n": overall_row["rows"],
        "num_groups": len(group_rows),
        "groups": group_rows,
        "overall": overall_row,
        "metrics": results,
        "omitted": [] if labelled else list(_LABEL_METRICS),
        "small_groups": [r["group"] for r in group_rows if r["rows"] < min_group_size],
        "min_group_size": int(min_group_size),
        "precision": str(jnp.asarray(estimate[_METRICS[0]]).dtype),
        "bootstrap": bootstrap_info,
    }
