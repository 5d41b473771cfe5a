"""Group losses of a regression model: the worst group's loss, the gap between groups, and the
audit report of a regression model."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import criteria
from fairjax import groups as gs
from fairjax.metrics._audit import (
    _extreme_pair,
    _number,
    check_report_options,
    group_row,
    intervals,
    ks_point,
    metric_entries,
)
from fairjax.metrics._common import check_regression_inputs
from fairjax.metrics._scores import ks_unfairness, wasserstein_unfairness
from fairjax.metrics._tables import by_group
from fairjax.ot1d import pooled_group_cdfs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["group_loss_difference", "regression_audit_report", "worst_group_loss"]

_LOSSES = ("squared", "absolute")


@functools.partial(jax.jit, static_argnames=("num_groups", "loss", "axis_name"))
def _group_losses(y_true, y_pred, groups, weights, num_groups, loss, axis_name):
    dtype = jnp.result_type(y_pred.dtype, y_true.dtype, jnp.float32)
    err = y_pred.astype(dtype) - y_true.astype(dtype)
    per_row = err * err if loss == "squared" else jnp.abs(err)
    means, counts = gs.group_means(
        per_row,
        groups,
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
        return_counts=True,
    )
    return means, counts > 0


def _checked(y_true, y_pred, groups, num_groups, weights, loss):
    criteria.check_option(loss, "loss", _LOSSES)
    return check_regression_inputs(y_true, y_pred, groups, num_groups, weights)


def worst_group_loss(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    loss: str = "squared",
    axis_name: Hashable | None = None,
) -> Array:
    """The largest mean loss of a group: the quantity bounded group loss constrains.

    .. math:: \\max_g \\frac{\\sum_{i \\in g} w_i \\, \\ell(\\hat y_i, y_i)}{\\sum_{i \\in g} w_i}

    over non-empty groups, with :math:`\\ell` the squared error (``loss="squared"``, the
    group's MSE) or the absolute error (``"absolute"``, its MAE). Agarwal, Dudík and Wu's
    *bounded group loss* asks it to be at most a bound :math:`\\zeta`; to train to it, give
    the per-group losses (:func:`fairjax.groups.group_means` of
    :func:`fairjax.losses.squared`, shape ``(G,)``) to :func:`fairjax.training.fit_constrained`
    as a vector constraint with ``target=zeta`` (one multiplier per group).

    Args:
      y_true: real targets, shape ``(n,)``.
      y_pred: predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      loss: ``"squared"`` or ``"absolute"``.
      axis_name: mapped axis name inside ``shard_map``/``pmap`` (the sums are ``psum``-ed).

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import worst_group_loss
      >>> y = jnp.array([0.0, 1.0, 2.0, 3.0])
      >>> worst_group_loss(y, y + jnp.array([0.0, 0.0, 1.0, 3.0]), jnp.array([0, 0, 1, 1]),
      ...                  num_groups=2)  # group 1: (1 + 9) / 2
      Array(5., dtype=float32)

    References:
      Agarwal, Dudík, Wu, *Fair regression: quantitative definitions and reduction-based
      algorithms*, ICML 2019.
    """
    true, pred, grp, w = _checked(y_true, y_pred, groups, num_groups, weights, loss)
    means, present = _group_losses(true, pred, grp, w, num_groups, loss, axis_name)
    return jnp.max(jnp.where(present, means, 0.0))


def group_loss_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    loss: str = "squared",
    axis_name: Hashable | None = None,
) -> Array:
    """The gap between the largest and the smallest mean loss of a group.

    .. math:: \\max_g L_g - \\min_g L_g, \\qquad L_g = \\text{the weighted mean loss of group } g

    over non-empty groups (0 with fewer than two), with the squared or absolute error: the
    regression analogue of an accuracy gap (fairlearn's ``MetricFrame(...).difference()`` of
    ``mean_squared_error`` or ``mean_absolute_error``).

    Args:
      y_true: real targets, shape ``(n,)``.
      y_pred: predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      loss: ``"squared"`` or ``"absolute"``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``.

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import group_loss_difference
      >>> y = jnp.array([0.0, 1.0, 2.0, 3.0])
      >>> group_loss_difference(y, y + jnp.array([0.0, 1.0, 1.0, 3.0]), jnp.array([0, 0, 1, 1]),
      ...                       num_groups=2, loss="absolute")  # MAE 0.5 vs 2
      Array(1.5, dtype=float32)
    """
    true, pred, grp, w = _checked(y_true, y_pred, groups, num_groups, weights, loss)
    means, present = _group_losses(true, pred, grp, w, num_groups, loss, axis_name)
    big = jnp.finfo(means.dtype).max
    hi = jnp.max(jnp.where(present, means, -big))
    lo = jnp.min(jnp.where(present, means, big))
    return jnp.where(jnp.sum(present) >= 2, hi - lo, 0.0)


# ----------------------------------------------------------------------------- audit report

# The report's per-group statistics (by_group's, task="regression") and metrics, in order.
_REGRESSION_KEYS = ("count", "mean_target", "mean_prediction", "mae", "rmse")
_REGRESSION_METRICS = (
    "worst_group_mae",
    "mae_difference",
    "worst_group_rmse",
    "rmse_difference",
    "ks_unfairness",
    "wasserstein_unfairness",
)


@functools.lru_cache(maxsize=32)
def _regression_metrics(num_groups: int):
    """The report's metrics as one function of ``(y_true, y_pred, groups)`` (cached per
    ``num_groups``, so the bootstrap's compiled program is reused)."""
    kw = {"num_groups": num_groups}

    def regression_metrics(y_t, y_p, s, weights=None):
        table = by_group(y_t, y_p, s, task="regression", weights=weights, **kw)
        both = {"weights": weights, **kw}
        return {
            "worst_group_mae": worst_group_loss(y_t, y_p, s, loss="absolute", **both),
            "mae_difference": group_loss_difference(y_t, y_p, s, loss="absolute", **both),
            # sqrt is increasing: the worst group's RMSE is the root of the worst MSE.
            "worst_group_rmse": jnp.sqrt(worst_group_loss(y_t, y_p, s, **both)),
            "rmse_difference": criteria.largest_gap(table["rmse"], table["count"]),
            "ks_unfairness": ks_unfairness(y_p, s, **both),
            "wasserstein_unfairness": wasserstein_unfairness(y_p, s, reference="pairwise", **both),
        }

    return regression_metrics


@functools.partial(jax.jit, static_argnames=("num_groups",))
def _regression_stats(y_t, y_p, s, w, *, num_groups: int) -> dict[str, Any]:
    """The report on the data as it is: tables, metrics, and what names each pair."""
    kw = {"num_groups": num_groups, "weights": w}
    cdf = pooled_group_cdfs(y_p, s, **kw)
    # W1 of every pair of groups (the integral of |F_a - F_b| between pooled points), to name
    # the pair behind the largest.
    spacing = jnp.diff(cdf.points.astype(cdf.cdfs.dtype))
    diff = jnp.abs(cdf.cdfs[:-1, :, None] - cdf.cdfs[:-1, None, :])
    return {
        "table": by_group(y_t, y_p, s, task="regression", **kw),
        "overall": by_group(
            y_t, y_p, jnp.zeros_like(s), task="regression", num_groups=1, weights=w
        ),
        "rows": gs.group_counts(s, num_groups=num_groups),
        "ks": ks_point(cdf),
        "w1_pairs": jnp.sum(spacing[:, None, None] * diff, axis=0),
        "metrics": _regression_metrics(num_groups)(y_t, y_p, s, weights=w),
    }


def _regression_pairs(stats, names) -> dict[str, dict]:
    """The group behind each worst-group metric and the pair behind each gap."""
    table = {k: np.asarray(stats["table"][k]) for k in _REGRESSION_KEYS}
    present = table["count"] > 0
    idx = np.flatnonzero(present)

    def worst(values):
        return {"group": names[idx[np.argmax(values[idx])]] if idx.size else None}

    pairs = np.asarray(stats["w1_pairs"])
    pairs = np.where(present[:, None] & present[None, :], pairs, -np.inf)
    a, b = np.unravel_index(np.argmax(pairs), pairs.shape)
    # The pair in order of mean prediction (lowest first), as the other pairs are.
    by_mean = sorted((a, b), key=lambda g: table["mean_prediction"][g])
    w1 = [names[g] for g in by_mean] if idx.size >= 2 else None
    return {
        "worst_group_mae": worst(table["mae"]),
        "mae_difference": {"between": _extreme_pair(table["mae"], present, names)},
        "worst_group_rmse": worst(table["rmse"]),
        "rmse_difference": {"between": _extreme_pair(table["rmse"], present, names)},
        "ks_unfairness": {"between": _extreme_pair(*map(np.asarray, stats["ks"]), names)},
        "wasserstein_unfairness": {"between": w1},
    }


def regression_audit_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int,
    weights: ArrayLike | None = None,
    group_names: Sequence[str] | None = None,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    min_group_size: int = 30,
    key: jax.Array | None = None,
) -> dict[str, Any]:
    r"""Fairness report of a regression model: per-group errors and the gaps between groups.

    The regression form of :func:`audit_report` (behind ``fairjax audit --task regression``),
    a JSON-ready dict. For each group with rows, the weighted count and :func:`by_group`'s
    regression statistics (mean target, mean prediction, MAE, RMSE; ``None`` for a group whose
    rows all have weight 0); the same for all rows;
    and, each with a percentile bootstrap interval (:func:`bootstrap`, every metric on the
    same resamples):

    - ``worst_group_mae`` and ``worst_group_rmse``: :math:`\max_g L_g` of the groups' MAE and
      RMSE (:func:`worst_group_loss`; the RMSE is the root of the worst MSE), with the
      ``group`` that has it: what bounded group loss bounds;
    - ``mae_difference`` and ``rmse_difference``: :math:`\max_g L_g - \min_g L_g`
      (:func:`group_loss_difference`), with the pair ``between`` (lowest, highest);
    - ``ks_unfairness`` and ``wasserstein_unfairness``: the largest KS and Wasserstein-1
      distance between two groups' distributions of the **predictions**
      (:func:`ks_unfairness`, :func:`wasserstein_unfairness` with ``reference="pairwise"``;
      demographic parity of a regression model: 0 when every group gets the same
      distribution of predictions), with the pair ``between`` (for W1 ordered by mean
      prediction).

    Args:
      y_true: real targets, shape ``(n,)``.
      y_pred: real predictions, shape ``(n,)``.
      groups: integer group ids in ``[0, num_groups)``, shape ``(n,)``.
      num_groups: the number of groups (groups without rows are left out of the table).
      weights: optional non-negative sample weights ``(n,)``.
      group_names: a name per group id (default ``"0"``, ``"1"``, ...).
      num_resamples: bootstrap resamples (at least 2), or 0 for no intervals.
      confidence_level: coverage of the intervals, in ``(0, 1)``.
      min_group_size: groups with fewer rows are listed under ``small_groups``.
      key: PRNG key of the bootstrap (default ``jax.random.key(0)``).

    Returns:
      A dict: ``task`` (``"regression"``), ``n``, ``num_groups``, ``groups`` (``group``,
      ``rows``, ``count``, ``mean_target``, ``mean_prediction``, ``mae``, ``rmse``),
      ``overall``, ``metrics`` (per metric: ``estimate``, ``lower``, ``upper`` and ``group``
      or ``between``), ``small_groups``, ``min_group_size``, ``precision``, ``bootstrap``.

    Raises:
      ValueError: inputs of the wrong shape or values, or a bad bootstrap setting.

    Example:
      >>> import numpy as np
      >>> from fairjax import metrics
      >>> y = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
      >>> pred = y + np.array([0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0])
      >>> s = np.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> report = metrics.regression_audit_report(y, pred, s, num_groups=2,
      ...                                          group_names=["a", "b"], num_resamples=0)
      >>> [(g["group"], g["mae"]) for g in report["groups"]]
      [('a', 0.0), ('b', 1.0)]
      >>> worst = report["metrics"]["worst_group_mae"]
      >>> worst["estimate"], worst["group"]
      (1.0, 'b')

    References:
      Agarwal, Dudík, Wu, *Fair regression: quantitative definitions and reduction-based
      algorithms*, ICML 2019; Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with
      Wasserstein barycenters*, NeurIPS 2020.
    """
    true, pred, grp, w = check_regression_inputs(y_true, y_pred, groups, num_groups, weights)
    if grp.ndim != 1:
        raise ValueError(f"`groups` must hold integer ids of shape (n,), got {grp.shape}.")
    names, num_resamples, level, min_group_size = check_report_options(
        num_groups, group_names, num_resamples, confidence_level, min_group_size
    )
    dtype = jnp.result_type(true.dtype, pred.dtype, jnp.float32)
    y_t, y_p = true.astype(dtype), pred.astype(dtype)
    w = None if w is None else w.astype(dtype)
    stats = _regression_stats(y_t, y_p, grp, w, num_groups=num_groups)
    estimate = stats["metrics"]
    lower, upper = intervals(
        _regression_metrics(num_groups), (y_t, y_p, grp), w, estimate,
        key=key, num_resamples=num_resamples, confidence_level=level,
    )  # fmt: skip
    rows = np.asarray(stats["rows"])
    table = {k: np.asarray(stats["table"][k]) for k in _REGRESSION_KEYS}
    group_rows = [group_row(names[g], rows[g], table, g) for g in range(num_groups) if rows[g] > 0]
    overall = {k: _number(np.asarray(stats["overall"][k])[0]) for k in _REGRESSION_KEYS}
    pairs = _regression_pairs(stats, names)
    results = metric_entries(estimate, lower, upper, pairs, _REGRESSION_METRICS)
    return {
        "task": "regression",
        "n": int(rows.sum()),
        "num_groups": len(group_rows),
        "groups": group_rows,
        "overall": {"group": "overall", "rows": int(rows.sum())} | overall,
        "metrics": results,
        "small_groups": [r["group"] for r in group_rows if r["rows"] < min_group_size],
        "min_group_size": int(min_group_size),
        "precision": str(jnp.asarray(estimate["worst_group_mae"]).dtype),
        "bootstrap": {"num_resamples": num_resamples, "confidence_level": level},
    }
