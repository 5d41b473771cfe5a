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
from fairjax.metrics._common import check_inputs
from fairjax.metrics._parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from fairjax.metrics._scores import ks_unfairness
from fairjax.metrics._tables import bootstrap, by_group

ArrayLike = jax.typing.ArrayLike

# The statistics of by_group reported for each group, in the report's order.
_TABLE_KEYS = ("count", "selection_rate", "accuracy", "tpr", "fpr", "base_rate")
# The metrics of the report, in its order (the KS distance only with scores).
_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "ks_unfairness",
)


def _group_rows(y_t, y_p, s, w, num_groups, names) -> tuple[list[dict], dict]:
    """Per-group rows (non-empty groups only) and the overall row of the report."""
    stats = by_group(y_t, y_p, s, num_groups=num_groups, weights=w)
    overall = by_group(y_t, y_p, jnp.zeros_like(s), num_groups=1, weights=w)
    positives = gs.group_counts(s, num_groups=num_groups, labels=y_t, label_value=1, weights=w)
    negatives = gs.group_counts(s, num_groups=num_groups, labels=y_t, label_value=0, weights=w)
    rows_per_group = np.bincount(np.asarray(s), minlength=num_groups)
    group_rows = []
    for g in range(num_groups):
        if rows_per_group[g] == 0:
            continue
        row: dict[str, Any] = {"group": names[g], "rows": int(rows_per_group[g])}
        row.update({k: float(stats[k][g]) for k in _TABLE_KEYS})
        # A rate over an empty set is reported as missing, not as the metrics' placeholder 0.
        if float(positives[g]) == 0:
            row["tpr"] = None
        if float(negatives[g]) == 0:
            row["fpr"] = None
        group_rows.append(row)
    n = int(y_t.shape[0])
    overall_row = {"group": "overall", "rows": n} | {k: float(overall[k][0]) for k in _TABLE_KEYS}
    return group_rows, overall_row


@functools.lru_cache(maxsize=32)
def _all_metrics(num_groups: int):
    """All the report's gaps as one metric; cached per ``num_groups`` so that reports of equal
    shapes reuse the bootstrap's compiled program (the metric is a static argument)."""
    kw = {"num_groups": num_groups}

    def all_metrics(y_t, y_p, s, *rest, weights=None):
        # One metric returning a dict: the bootstrap compiles a single program for all of them,
        # and every metric sees the same resamples.
        out = {
            "demographic_parity_difference": demographic_parity_difference(
                y_p, s, weights=weights, **kw
            ),
            "demographic_parity_ratio": demographic_parity_ratio(y_p, s, weights=weights, **kw),
            "equal_opportunity_difference": equal_opportunity_difference(
                y_t, y_p, s, weights=weights, **kw
            ),
            "equalized_odds_difference": equalized_odds_difference(
                y_t, y_p, s, weights=weights, **kw
            ),
        }
        if rest:
            out["ks_unfairness"] = ks_unfairness(rest[0], s, weights=weights, **kw)
        return out

    return all_metrics


def audit_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    scores: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    group_names: Sequence[str] | None = None,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    key: jax.Array | None = None,
) -> dict[str, Any]:
    r"""Fairness report of a set of decisions: per-group table and gaps with bootstrap intervals.

    The report behind ``fairjax audit``, as a JSON-ready dict of Python numbers. For each group
    with at least one row it gives the weighted count and the rates of :func:`by_group`
    (selection rate, accuracy, TPR, FPR, base rate; a rate over an empty set, such as the TPR
    of a group without positive labels, is ``None``); the same row for all rows together; and
    the largest gaps between groups

    .. math:: \max_{a, b} |r_a - r_b|

    of :func:`demographic_parity_difference`, :func:`demographic_parity_ratio`,
    :func:`equal_opportunity_difference`, :func:`equalized_odds_difference`, and
    :func:`ks_unfairness` of ``scores`` when given, each with a percentile bootstrap interval
    (:func:`bootstrap`, all metrics on the same resamples, rows resampled with their weights).

    Runs on concrete arrays (not under ``jit``): the report is a Python dict.

    Args:
      y_true: 0/1 labels, shape ``(n,)``.
      y_pred: 0/1 decisions, shape ``(n,)``.
      groups: integer group ids in ``[0, num_groups)``, shape ``(n,)`` (several sensitive
        attributes: intersect them first with :func:`fairjax.groups.intersect`).
      num_groups: the number of groups (groups without rows are left out of the table).
      scores: optional real scores ``(n,)``; adds the KS distance between groups.
      weights: optional non-negative sample weights ``(n,)``.
      group_names: a name per group id (default ``"0"``, ``"1"``, ...).
      num_resamples: bootstrap resamples (at least 2).
      confidence_level: coverage of the intervals, in ``(0, 1)``.
      key: PRNG key of the bootstrap (default ``jax.random.key(0)``).

    Returns:
      A dict: ``n`` (rows), ``num_groups`` (non-empty groups), ``groups`` (one dict per
      non-empty group: ``group`` name, ``rows``, ``count``, ``selection_rate``, ``accuracy``,
      ``tpr``, ``fpr``, ``base_rate``), ``overall`` (the same for all rows), ``metrics``
      (``{"estimate", "lower", "upper"}`` per metric name) and ``bootstrap`` (its settings).

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
      >>> report["metrics"]["demographic_parity_difference"]["estimate"]
      0.5
    """
    check_inputs(y_true, y_pred, groups, num_groups, weights)
    n = int(np.shape(y_pred)[0])
    if np.ndim(groups) != 1:
        raise ValueError(f"`groups` must hold integer ids of shape ({n},), got {np.shape(groups)}.")
    if scores is not None:
        v.check_length(v.as_array(scores, "scores", ndim=1), n, "scores", "y_pred")
        v.check_finite(jnp.asarray(scores), "scores")
    names = [str(g) for g in range(num_groups)] if group_names is None else list(group_names)
    if len(names) != num_groups:
        raise ValueError(f"`group_names` must hold {num_groups} names, got {len(names)}.")
    if int(num_resamples) < 2:
        raise ValueError(f"`num_resamples` must be at least 2, got {num_resamples}.")
    if not 0 < confidence_level < 1:
        raise ValueError(f"`confidence_level` must be in (0, 1), got {confidence_level}.")

    y_t, y_p, s = jnp.asarray(y_true), jnp.asarray(y_pred), jnp.asarray(groups)
    w = None if weights is None else jnp.asarray(weights, jnp.float32)
    group_rows, overall_row = _group_rows(y_t, y_p, s, w, num_groups, names)
    arrays = [y_t, y_p, s]
    if scores is not None:
        arrays.append(jnp.asarray(scores, jnp.float32))
    res = bootstrap(
        _all_metrics(num_groups),
        *arrays,
        key=jax.random.key(0) if key is None else key,
        weights=w,
        num_resamples=num_resamples,
        confidence_level=confidence_level,
    )
    results = {
        name: {
            "estimate": float(res.estimate[name]),
            "lower": float(res.lower[name]),
            "upper": float(res.upper[name]),
        }
        for name in _METRICS
        if name in res.estimate
    }
    return {
        "n": n,
        "num_groups": len(group_rows),
        "groups": group_rows,
        "overall": overall_row,
        "metrics": results,
        "bootstrap": {"num_resamples": num_resamples, "confidence_level": confidence_level},
    }
