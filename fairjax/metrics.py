"""Fairness metrics on decisions, probabilities or scores.

Every metric jit-compiles, takes sample ``weights=`` (a zero weight masks a row) and any number of
groups. Signatures follow scikit-learn and fairlearn: a metric that needs labels is
``f(y_true, y_pred, groups, *, num_groups, weights=None)``, one that does not is
``f(y_pred, groups, *, num_groups, weights=None)``.

Gaps between groups are the **largest gap over all pairs of non-empty groups**,
:math:`\\max_{a, b} |r_a - r_b| = \\max_g r_g - \\min_g r_g`, which is fairlearn's
``method="between_groups"``; a group with no rows (zero total weight) is left out, and with fewer
than two non-empty groups the gap is 0. For the rates conditioned on a label (TPR, FPR), a group
with no row of that label is left out of that rate's gap (fairlearn would count its rate as 0).

``y_pred`` holds hard decisions in {0, 1}, or probabilities in [0, 1], in which case rates are the
expected rates of the randomised classifier that says 1 with that probability.

On several devices, two ways give the metric of the whole batch: call it under ``jax.jit`` with
inputs sharded along the rows (``jax.sharding.NamedSharding``; XLA inserts the reductions), or
call it inside ``shard_map``/``pmap`` with ``axis_name=``: the rate metrics then sum their group
statistics across devices with :func:`jax.lax.psum` (communication O(G), independent of n), and
the score metrics (KS, Wasserstein), which need one global sort, gather all rows on every
device (communication O(n)).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax import ot1d

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "BootstrapResult",
    "bootstrap",
    "by_group",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "ks_unfairness",
    "wasserstein_unfairness",
]


# ----------------------------------------------------------------------------- validation


def _check_inputs(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_groups: int | None,
    weights: ArrayLike | None,
    *,
    pred_name: str = "y_pred",
    unit_interval: bool = True,
) -> tuple[Array | None, Array, Array, Array | None]:
    """Edge validation shared by every metric: shapes always, values on concrete inputs."""
    pred = v.as_array(y_pred, pred_name, ndim=1)
    n = pred.shape[0]
    if n == 0:
        raise ValueError(f"`{pred_name}` is empty: a metric needs at least one sample.")
    v.check_finite(pred, pred_name)
    if unit_interval:
        v.check_unit_interval(pred, pred_name)
    true = None
    if y_true is not None:
        true = v.as_array(y_true, "y_true", ndim=1)
        v.check_length(true, n, "y_true", pred_name)
        v.check_binary(true, "y_true")
    grp = v.check_groups(groups, num_groups=num_groups, n=n)
    w = v.check_weights(weights, n)
    return true, pred, grp, w


# ----------------------------------------------------------------------------- reductions


def _max_gap(rates: Array, present: Array) -> Array:
    """``max - min`` of ``rates`` over groups where ``present``; 0 with fewer than two."""
    # The dtype's finite extremes stand in for +-inf so that nothing becomes inf or NaN.
    big = jnp.finfo(rates.dtype).max
    hi = jnp.max(jnp.where(present, rates, -big), axis=-1)
    lo = jnp.min(jnp.where(present, rates, big), axis=-1)
    return jnp.where(jnp.sum(present, axis=-1) >= 2, hi - lo, 0)


def _min_max_ratio(rates: Array, present: Array) -> Array:
    """``min / max`` of ``rates`` over groups where ``present``; 1 when the max is 0."""
    big = jnp.finfo(rates.dtype).max
    hi = jnp.max(jnp.where(present, rates, -big), axis=-1)
    lo = jnp.min(jnp.where(present, rates, big), axis=-1)
    ratio = gs.safe_divide(lo, hi)
    return jnp.where((jnp.sum(present, axis=-1) >= 2) & (hi > 0), ratio, 1)


def _rates(
    y_pred: Array,
    groups: Array,
    num_groups: int | None,
    weights: Array | None,
    y_true: Array | None = None,
    label_value: int = 1,
    axis_name: Hashable | None = None,
) -> tuple[Array, Array]:
    """Per-group mean of ``y_pred`` (optionally among ``y_true == label_value``) and presence."""
    kwargs = dict(
        num_groups=num_groups,
        weights=weights,
        labels=y_true,
        label_value=label_value,
        axis_name=axis_name,
    )
    means, counts = gs.group_means(y_pred, groups, return_counts=True, **kwargs)
    return means, counts > 0


# ----------------------------------------------------------------------------- parity metrics


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _dp_difference(y_pred, groups, weights, num_groups, axis_name):
    return _max_gap(*_rates(y_pred, groups, num_groups, weights, axis_name=axis_name))


def demographic_parity_difference(
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Largest gap in selection rate between two groups.

    .. math::

        \\mathrm{DP} = \\max_{a, b} \\big| P(\\hat Y = 1 \\mid S = a)
                                     - P(\\hat Y = 1 \\mid S = b) \\big|

    over pairs of non-empty groups (weighted rates). Equals fairlearn's
    ``demographic_parity_difference(y_true, y_pred, sensitive_features=s,
    sample_weight=weights)``; no ``y_true`` is needed here.

    Args:
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).

    Returns:
      Scalar in [0, 1]; 0 means equal selection rates.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import demographic_parity_difference
      >>> y_pred = jnp.array([1, 1, 0, 1, 0, 0])
      >>> s = jnp.array([0, 0, 0, 1, 1, 1])
      >>> demographic_parity_difference(y_pred, s, num_groups=2)
      Array(0.33333334, dtype=float32)

    References:
      Calders, Kamiran, Pechenizkiy, *Building classifiers with independency constraints*,
      ICDM Workshops 2009; fairlearn's ``demographic_parity_difference``.
    """
    _, pred, grp, w = _check_inputs(None, y_pred, groups, num_groups, weights)
    return _dp_difference(pred, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _dp_ratio(y_pred, groups, weights, num_groups, axis_name):
    return _min_max_ratio(*_rates(y_pred, groups, num_groups, weights, axis_name=axis_name))


def demographic_parity_ratio(
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Smallest ratio of selection rates between two groups (the "80% rule" quantity).

    .. math:: \\frac{\\min_g P(\\hat Y = 1 \\mid S = g)}{\\max_g P(\\hat Y = 1 \\mid S = g)}

    over non-empty groups. Equals fairlearn's ``demographic_parity_ratio``, except that when no
    group selects anyone (0 / 0) the ratio is defined as 1 (equal rates) instead of NaN.

    Args:
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).

    Returns:
      Scalar in [0, 1]; 1 means equal selection rates.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import demographic_parity_ratio
      >>> y_pred = jnp.array([1, 1, 0, 1, 0, 0])
      >>> demographic_parity_ratio(y_pred, jnp.array([0, 0, 0, 1, 1, 1]), num_groups=2)
      Array(0.5, dtype=float32)

    References:
      Feldman et al., *Certifying and removing disparate impact*, KDD 2015.
    """
    _, pred, grp, w = _check_inputs(None, y_pred, groups, num_groups, weights)
    return _dp_ratio(pred, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _eo_difference(y_true, y_pred, groups, weights, num_groups, axis_name):
    return _max_gap(*_rates(y_pred, groups, num_groups, weights, y_true, 1, axis_name))


def equal_opportunity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Largest gap in true-positive rate between two groups: the DEO of the FERM paper.

    .. math::

        \\mathrm{DEO} = \\max_{a, b} \\big| P(\\hat Y = 1 \\mid Y = 1, S = a)
                                      - P(\\hat Y = 1 \\mid Y = 1, S = b) \\big|

    over pairs of groups that have positive examples. Equals fairlearn's
    ``equal_opportunity_difference`` when every group has a positive example.

    Args:
      y_true: binary labels in {0, 1}, shape ``(n,)``.
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).

    Returns:
      Scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import equal_opportunity_difference
      >>> y_true = jnp.array([1, 1, 0, 1, 1, 0])
      >>> y_pred = jnp.array([1, 1, 0, 1, 0, 0])
      >>> s = jnp.array([0, 0, 0, 1, 1, 1])
      >>> equal_opportunity_difference(y_true, y_pred, s, num_groups=2)
      Array(0.5, dtype=float32)

    References:
      Hardt, Price, Srebro, *Equality of opportunity in supervised learning*, NeurIPS 2016;
      Donini et al., *Empirical risk minimization under fairness constraints*, NeurIPS 2018.
    """
    true, pred, grp, w = _check_inputs(y_true, y_pred, groups, num_groups, weights)
    return _eo_difference(true, pred, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "agg", "axis_name"))
def _eodds_difference(y_true, y_pred, groups, weights, num_groups, agg, axis_name):
    tpr_gap = _max_gap(*_rates(y_pred, groups, num_groups, weights, y_true, 1, axis_name))
    fpr_gap = _max_gap(*_rates(y_pred, groups, num_groups, weights, y_true, 0, axis_name))
    return jnp.maximum(tpr_gap, fpr_gap) if agg == "worst_case" else (tpr_gap + fpr_gap) / 2


def equalized_odds_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    agg: Literal["worst_case", "mean"] = "worst_case",
) -> Array:
    """The larger (or mean) of the true-positive-rate and false-positive-rate gaps.

    .. math::

        \\mathrm{EOdds} = \\max\\Big(\\max_{a,b} |\\mathrm{TPR}_a - \\mathrm{TPR}_b|,\\;
                                  \\max_{a,b} |\\mathrm{FPR}_a - \\mathrm{FPR}_b|\\Big)

    Equals fairlearn's ``equalized_odds_difference`` (same ``agg`` options) when every group has
    examples of both labels.

    Args:
      y_true: binary labels in {0, 1}, shape ``(n,)``.
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      agg: ``"worst_case"`` (the maximum of the two gaps) or ``"mean"`` (their average).

    Returns:
      Scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import equalized_odds_difference
      >>> y_true = jnp.array([1, 0, 0, 1, 0, 0])
      >>> y_pred = jnp.array([1, 1, 0, 1, 0, 0])
      >>> equalized_odds_difference(y_true, y_pred, jnp.array([0, 0, 0, 1, 1, 1]), num_groups=2)
      Array(0.5, dtype=float32)

    References:
      Hardt, Price, Srebro, *Equality of opportunity in supervised learning*, NeurIPS 2016.
    """
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"`agg` must be 'worst_case' or 'mean', got {agg!r}.")
    true, pred, grp, w = _check_inputs(y_true, y_pred, groups, num_groups, weights)
    return _eodds_difference(true, pred, grp, w, num_groups, agg, axis_name)


# ----------------------------------------------------------------------------- score metrics


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _ks(scores, groups, weights, num_groups, axis_name):
    scores, groups, weights = gs.gather_rows(scores, groups, weights, axis_name=axis_name)
    cdf = ot1d.pooled_group_cdfs(scores, groups, num_groups=num_groups, weights=weights)
    gaps = _max_gap(cdf.cdfs, cdf.counts > 0)
    # Inside a run of tied scores the cumulative sums are partial: only run ends are CDF values.
    return jnp.max(jnp.where(cdf.run_end, gaps, 0))


def ks_unfairness(
    scores: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Largest Kolmogorov-Smirnov distance between two groups' score distributions.

    .. math::

        \\mathrm{KS} = \\max_{a, b} \\sup_t \\big| P(f \\le t \\mid S = a)
                                           - P(f \\le t \\mid S = b) \\big|

    with weighted empirical CDFs, over pairs of non-empty groups. This is the unfairness measure
    of the Wasserstein fair-regression paper (demographic parity for a score); it is 0 exactly
    when all groups have the same score distribution. Ties are handled exactly. Cost: one sort,
    :math:`O(n \\log n + nG)`.

    Args:
      scores: real-valued predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).

    Returns:
      Scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import ks_unfairness
      >>> scores = jnp.array([0.1, 0.4, 0.35, 0.8])
      >>> ks_unfairness(scores, jnp.array([0, 0, 1, 1]), num_groups=2)
      Array(0.5, dtype=float32)

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
      NeurIPS 2020, Section 5.
    """
    _, x, grp, w = _check_inputs(
        None, scores, groups, num_groups, weights, pred_name="scores", unit_interval=False
    )
    return _ks(x, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "reference", "axis_name"))
def _w1(scores, groups, weights, num_groups, reference, axis_name):
    scores, groups, weights = gs.gather_rows(scores, groups, weights, axis_name=axis_name)
    cdf = ot1d.pooled_group_cdfs(scores, groups, num_groups=num_groups, weights=weights)
    # W1 = integral of |F_a - F_b|; the CDFs are constant between consecutive pooled points,
    # and at tied points the spacing is 0, so partial sums inside a tie run contribute nothing.
    # In the CDFs' (accumulation) dtype: the difference of two bfloat16 points is exact there.
    spacing = jnp.diff(cdf.points.astype(cdf.cdfs.dtype))
    present = cdf.counts > 0
    if reference == "pooled":
        diff = jnp.abs(cdf.cdfs[:-1] - cdf.pooled_cdf[:-1, None])
        # Blocked sum: a float32 running sum of 10^7 small terms drifts by ~0.4%.
        per_group = gs._row_sum(spacing[:, None] * diff)
        return jnp.max(jnp.where(present, per_group, 0))
    diff = jnp.abs(cdf.cdfs[:-1, :, None] - cdf.cdfs[:-1, None, :])
    pairwise = gs._row_sum(spacing[:, None, None] * diff)
    both = present[:, None] & present[None, :]
    return jnp.max(jnp.where(both, pairwise, 0))


def wasserstein_unfairness(
    scores: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    reference: Literal["pooled", "pairwise"] = "pooled",
) -> Array:
    """Largest Wasserstein-1 distance of a group's score distribution to the pooled one.

    With ``reference="pooled"`` (default):

    .. math::

        \\max_g W_1(\\nu_g, \\nu) = \\max_g \\int |F_g(t) - F(t)| \\, dt,

    where :math:`\\nu_g` is the (weighted) score distribution in group ``g`` and :math:`\\nu` the
    pooled distribution over all groups; with ``reference="pairwise"``,
    :math:`\\max_{a,b} W_1(\\nu_a, \\nu_b)`. Empty groups are left out. Unlike KS, it is in the
    units of the scores and grows with how far scores must move to reach parity.

    Args:
      scores: real-valued predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      reference: ``"pooled"`` or ``"pairwise"``. The pairwise form materialises an
        ``(n, G, G)`` intermediate: prefer the pooled form for many groups.

    Returns:
      Non-negative scalar, in the units of ``scores``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import wasserstein_unfairness
      >>> scores = jnp.array([0.0, 1.0, 2.0, 3.0])
      >>> wasserstein_unfairness(scores, jnp.array([0, 0, 1, 1]), num_groups=2,
      ...                        reference="pairwise")
      Array(2., dtype=float32)

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
      NeurIPS 2020; Jiang et al., *Wasserstein fair classification*, UAI 2019.
    """
    if reference not in ("pooled", "pairwise"):
        raise ValueError(f"`reference` must be 'pooled' or 'pairwise', got {reference!r}.")
    _, x, grp, w = _check_inputs(
        None, scores, groups, num_groups, weights, pred_name="scores", unit_interval=False
    )
    return _w1(x, grp, w, num_groups, reference, axis_name)


# ----------------------------------------------------------------------------- per-group table


@functools.partial(jax.jit, static_argnames=("num_groups", "task", "axis_name"))
def _by_group(y_true, y_pred, groups, weights, num_groups, task, axis_name):
    kw = dict(num_groups=num_groups, weights=weights, axis_name=axis_name)
    out = {"count": gs.group_counts(groups, **kw)}
    err = y_pred - y_true
    if task == "classification":
        out["accuracy"] = gs.group_means(1 - jnp.abs(err), groups, **kw)
        out["selection_rate"] = gs.group_means(y_pred, groups, **kw)
        out["tpr"] = gs.group_means(y_pred, groups, labels=y_true, label_value=1, **kw)
        out["fpr"] = gs.group_means(y_pred, groups, labels=y_true, label_value=0, **kw)
        out["base_rate"] = gs.group_means(y_true, groups, **kw)
    else:
        out["mean_prediction"] = gs.group_means(y_pred, groups, **kw)
        out["mean_target"] = gs.group_means(y_true, groups, **kw)
        out["mae"] = gs.group_means(jnp.abs(err), groups, **kw)
    mse = gs.group_means(err**2, groups, **kw)
    # Double where: sqrt's gradient is infinite at 0 (a group predicted exactly); give it 0.
    positive = mse > 0
    out["rmse"] = jnp.where(positive, jnp.sqrt(jnp.where(positive, mse, 1)), 0)
    return out


def by_group(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    task: Literal["classification", "regression"] = "classification",
) -> dict[str, Array]:
    """Per-group table of performance and rates, like fairlearn's ``MetricFrame.by_group``.

    For ``task="classification"`` (``y_true`` binary, ``y_pred`` decisions or probabilities):
    ``count`` (total weight), ``accuracy``, ``selection_rate``, ``tpr``, ``fpr``,
    ``base_rate`` (share of positive labels) and ``rmse`` (for probabilities, the root Brier
    score). For ``task="regression"``: ``count``, ``mean_prediction``, ``mean_target``,
    ``mae`` and ``rmse``. A statistic over an empty set (a group with no rows, or TPR in a group
    with no positives) is 0; check ``count`` (and :func:`fairjax.groups.group_counts` with
    ``labels=``) to tell it apart. With probabilities, accuracy is the expected accuracy of the
    randomised classifier. For the overall row pass ``groups=jnp.zeros(n, int), num_groups=1``.

    Args:
      y_true: labels (binary for classification) or targets, shape ``(n,)``.
      y_pred: decisions/probabilities or regression predictions, shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      task: ``"classification"`` or ``"regression"``.

    Returns:
      Dict from statistic name to an array of shape ``(G,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import by_group
      >>> table = by_group(jnp.array([1, 0, 1, 1]), jnp.array([1, 0, 0, 1]),
      ...                  jnp.array([0, 0, 1, 1]), num_groups=2)
      >>> table["accuracy"], table["tpr"]
      (Array([1. , 0.5], dtype=float32), Array([1. , 0.5], dtype=float32))
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"`task` must be 'classification' or 'regression', got {task!r}.")
    if task == "classification":
        true, pred, grp, w = _check_inputs(y_true, y_pred, groups, num_groups, weights)
    else:
        pred = v.as_array(y_pred, "y_pred", ndim=1)
        true = v.as_array(y_true, "y_true", ndim=1)
        v.check_length(true, pred.shape[0], "y_true", "y_pred")
        v.check_finite(pred, "y_pred")
        v.check_finite(true, "y_true")
        grp = v.check_groups(groups, num_groups=num_groups, n=pred.shape[0])
        w = v.check_weights(weights, pred.shape[0])
    dtype = v.float_dtype(true, pred)
    return _by_group(true.astype(dtype), pred.astype(dtype), grp, w, num_groups, task, axis_name)


# ----------------------------------------------------------------------------- bootstrap


class BootstrapResult(NamedTuple):
    """Bootstrap estimate of a metric (see :func:`bootstrap`).

    Attributes:
      estimate: the metric on the full data (same PyTree structure as the metric's output).
      lower: lower end of the percentile confidence interval.
      upper: upper end of the percentile confidence interval.
      samples: the metric on every resample, with a leading axis of size ``num_resamples``.
    """

    estimate: Any
    lower: Any
    upper: Any
    samples: Any


def bootstrap(
    metric: Callable[..., Any],
    *arrays: ArrayLike,
    key: Array,
    weights: ArrayLike | None = None,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    batch_size: int | None = None,
) -> BootstrapResult:
    """Percentile bootstrap confidence interval of any metric, vmapped over resamples.

    A resample draws ``n`` rows with replacement. Instead of gathering rows, which would give
    each resample its own copy of the data, it is expressed as multinomial counts ``c`` used as
    weights, ``metric(*arrays, weights=w * c)``: shapes stay static, so one compiled program
    evaluates ``batch_size`` resamples at a time with :func:`jax.vmap` (memory
    :math:`O(\\text{batch\\_size} \\cdot n)`). Works for any function that takes ``weights=`` and
    returns a PyTree of arrays: every fairjax metric does, including :func:`by_group`.

    Args:
      metric: ``metric(*arrays, weights=...)``, e.g.
        ``functools.partial(demographic_parity_difference, num_groups=2)``.
      *arrays: the metric's positional data, each with ``n`` rows.
      key: a :func:`jax.random.key` (or legacy ``PRNGKey``).
      weights: optional sample weights ``(n,)`` of the original data.
      num_resamples: number of bootstrap resamples.
      confidence_level: coverage of the interval, in (0, 1).
      batch_size: resamples evaluated together by ``vmap``; ``None`` picks the largest batch
        whose resampling weights fit in about 2**24 numbers (64 MB in float32).

    Returns:
      :class:`BootstrapResult` with the full-data estimate, the interval and the samples.

    Example:
      >>> import functools, jax, jax.numpy as jnp
      >>> from fairjax.metrics import bootstrap, demographic_parity_difference
      >>> y_pred = jax.random.bernoulli(jax.random.key(0), 0.5, (500,)).astype(int)
      >>> s = jnp.arange(500) % 2
      >>> metric = functools.partial(demographic_parity_difference, num_groups=2)
      >>> res = bootstrap(metric, y_pred, s, key=jax.random.key(1), num_resamples=200)
      >>> bool(res.lower <= res.estimate <= res.upper)
      True

    References:
      Efron, Tibshirani, *An Introduction to the Bootstrap*, 1993, Chapter 13.
    """
    if not arrays:
        raise ValueError("`bootstrap` needs at least one data array.")
    data = [v.as_array(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    n = data[0].shape[0]
    for i, a in enumerate(data[1:], start=1):
        v.check_length(a, n, f"arrays[{i}]", "arrays[0]")
    if not 0 < confidence_level < 1:
        raise ValueError(f"`confidence_level` must be in (0, 1), got {confidence_level}.")
    if int(num_resamples) < 2:
        raise ValueError(f"`num_resamples` must be >= 2, got {num_resamples}.")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1 or None, got {batch_size}.")
    w = v.check_weights(weights, n)
    base = jnp.ones((n,), v.float_dtype(w)) if w is None else w.astype(v.float_dtype(w))
    estimate = metric(*data, weights=w)
    if batch_size is None:
        batch_size = max(1, min(int(num_resamples), 2**24 // max(n, 1)))
    options = dict(num_resamples=int(num_resamples), batch_size=int(batch_size))
    try:
        hash(metric)
    except TypeError:  # an unhashable metric cannot key the compile cache: compile per call
        samples = _resamples(metric, tuple(data), base, key, **options)
    else:  # one compiled program per (metric, shapes, options): repeated calls do not retrace
        samples = _resamples_jit(metric, tuple(data), base, key, **options)
    alpha = (1 - confidence_level) / 2
    lower = jax.tree.map(lambda s: jnp.quantile(s, alpha, axis=0), samples)
    upper = jax.tree.map(lambda s: jnp.quantile(s, 1 - alpha, axis=0), samples)
    return BootstrapResult(estimate, lower, upper, samples)


def _resamples(
    metric: Callable[..., Any],
    data: tuple,
    base: Array,
    key: Array,
    *,
    num_resamples: int,
    batch_size: int,
) -> Any:
    """The metric on ``num_resamples`` bootstrap resamples, ``batch_size`` at a time."""
    n = base.shape[0]

    def one(k: Array) -> Any:
        # Multinomial resample of n rows as counts: static shape, no gather of the data.
        counts = jnp.bincount(jax.random.randint(k, (n,), 0, n), length=n)
        return metric(*data, weights=base * counts.astype(base.dtype))

    keys = jax.random.split(key, num_resamples)
    return jax.lax.map(one, keys, batch_size=batch_size)


_resamples_jit = jax.jit(_resamples, static_argnames=("metric", "num_resamples", "batch_size"))
