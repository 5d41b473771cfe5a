"""Parity metrics of decisions or probabilities: DP, equal opportunity, equalized odds."""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Literal

import jax
import jax.numpy as jnp

from fairjax import criteria
from fairjax import groups as gs
from fairjax.metrics._common import check_agg, check_inputs, hard_decisions
from fairjax.metrics._confusion import criterion_difference

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# ----------------------------------------------------------------------------- parity metrics


def _gaps(y_true, y_pred, groups, weights, num_groups, criterion, axis_name):
    """The largest gap between non-empty groups of each rate of ``criterion``, shape (C,)."""
    rates, counts = criteria.group_rates(
        hard_decisions(y_pred),
        groups,
        y_true,
        criterion=criterion,
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
    )
    return criteria.largest_gap(rates, counts)


def _worst_class(
    criterion, y_true, y_pred, groups, num_groups, weights, axis_name, num_classes, agg="worst_case"
):
    """K-class predictions: the worst class's one-vs-rest gap (:func:`criterion_difference`)."""
    options = dict(num_groups=num_groups, weights=weights, axis_name=axis_name, agg=agg)
    return criterion_difference(
        y_true, y_pred, groups, criterion=criterion, num_classes=num_classes, **options
    )


def _min_max_ratio(rates, counts):
    """``min / max`` of ``rates`` over groups of positive count; 1 when the max is 0. NaN for a
    NaN count, or a NaN rate of such a group, as :func:`fairjax.criteria.largest_gap`."""
    present = counts > 0
    big = jnp.finfo(rates.dtype).max
    hi = jnp.max(jnp.where(present, rates, -big), axis=-1)
    lo = jnp.min(jnp.where(present, rates, big), axis=-1)
    ratio = jnp.where((jnp.sum(present, axis=-1) >= 2) & (hi > 0), gs.safe_divide(lo, hi), 1)
    return jnp.where(jnp.isnan(criteria.largest_gap(rates, counts)), jnp.nan, ratio)


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _dp_difference(y_pred, groups, weights, num_groups, axis_name):
    return _gaps(None, y_pred, groups, weights, num_groups, "demographic_parity", axis_name)[0]


def demographic_parity_difference(
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    num_classes: int | None = None,
) -> Array:
    """Largest gap in selection rate between two groups.

    .. math::

        \\mathrm{DP} = \\max_{a, b} \\big| P(\\hat Y = 1 \\mid S = a)
                                     - P(\\hat Y = 1 \\mid S = b) \\big|

    over pairs of non-empty groups (weighted rates). Equals fairlearn's
    ``demographic_parity_difference(y_true, y_pred, sensitive_features=s,
    sample_weight=weights)``; no ``y_true`` is needed here.

    With ``num_classes=K`` the predictions are K-class (class ids ``(n,)`` or probabilities
    ``(n, K)``) and the value is the worst class's gap in its one-vs-rest selection rate,

    .. math::

        \\max_k \\max_{a, b} \\big| P(\\hat Y = k \\mid S = a) - P(\\hat Y = k \\mid S = b) \\big|

    (fairlearn's ``demographic_parity_difference`` of the decisions ``y_pred == k``, worst
    over ``k``; :func:`multiclass_parity_difference` gives each class's).

    Args:
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``; with
        ``num_classes``, class ids ``(n,)`` in ``[0, K)`` or probabilities ``(n, K)``.
      groups: integer ids ``(n,)``, labels of any kind (strings: factorised) or membership
        matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      num_classes: ``K`` for K-class predictions (static, at least 2); None (default):
        binary decisions.

    Returns:
      Scalar in [0, 1]; 0 means equal selection rates.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import demographic_parity_difference
      >>> y_pred = jnp.array([1, 1, 0, 1, 0, 0])
      >>> s = jnp.array([0, 0, 0, 1, 1, 1])
      >>> demographic_parity_difference(y_pred, s, num_groups=2)
      Array(0.33333334, dtype=float32)
      >>> demographic_parity_difference(jnp.array([0, 1, 2, 0, 0, 0]), s, num_groups=2,
      ...                               num_classes=3)  # class 0: 1/3 vs 1
      Array(0.6666666, dtype=float32)

    References:
      Calders, Kamiran, Pechenizkiy, *Building classifiers with independency constraints*,
      ICDM Workshops 2009; fairlearn's ``demographic_parity_difference``.
    """
    if num_classes is not None:
        args = (None, y_pred, groups, num_groups, weights, axis_name, num_classes)
        return _worst_class("demographic_parity", *args)
    _, pred, grp, w = check_inputs(None, y_pred, groups, num_groups, weights)
    return _dp_difference(pred, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _dp_ratio(y_pred, groups, weights, num_groups, axis_name):
    rates, counts = criteria.group_rates(
        hard_decisions(y_pred),
        groups,
        criterion="demographic_parity",
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
    )
    return _min_max_ratio(rates[0], counts[0])


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
    _, pred, grp, w = check_inputs(None, y_pred, groups, num_groups, weights)
    return _dp_ratio(pred, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "axis_name"))
def _eo_difference(y_true, y_pred, groups, weights, num_groups, axis_name):
    return _gaps(y_true, y_pred, groups, weights, num_groups, "equal_opportunity", axis_name)[0]


def equal_opportunity_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    num_classes: int | None = None,
) -> Array:
    """Largest gap in true-positive rate between two groups: the DEO of the FERM paper.

    .. math::

        \\mathrm{DEO} = \\max_{a, b} \\big| P(\\hat Y = 1 \\mid Y = 1, S = a)
                                      - P(\\hat Y = 1 \\mid Y = 1, S = b) \\big|

    over pairs of groups that have positive examples. Equals fairlearn's
    ``equal_opportunity_difference`` when every group has a positive example.

    With ``num_classes=K`` (class ids or probabilities ``(n, K)``; labels class ids or
    one-hot) the value is the worst class's gap in its one-vs-rest true-positive rate,

    .. math::

        \\max_k \\max_{a, b} \\big| P(\\hat Y = k \\mid Y = k, S = a)
                              - P(\\hat Y = k \\mid Y = k, S = b) \\big|,

    over the groups with a row of class :math:`k`.

    Args:
      y_true: binary labels in {0, 1}, shape ``(n,)``; with ``num_classes``, class ids
        ``(n,)`` or one-hot ``(n, K)``.
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``; with
        ``num_classes``, class ids ``(n,)`` or probabilities ``(n, K)``.
      groups: integer ids ``(n,)``, labels of any kind (strings: factorised) or membership
        matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      num_classes: ``K`` for K-class predictions (static, at least 2); None: binary.

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
    if num_classes is not None:
        args = (y_true, y_pred, groups, num_groups, weights, axis_name, num_classes)
        return _worst_class("equal_opportunity", *args)
    true, pred, grp, w = check_inputs(y_true, y_pred, groups, num_groups, weights)
    return _eo_difference(true, pred, grp, w, num_groups, axis_name)


@functools.partial(jax.jit, static_argnames=("num_groups", "agg", "axis_name"))
def _eodds_difference(y_true, y_pred, groups, weights, num_groups, agg, axis_name):
    tpr_gap, fpr_gap = _gaps(
        y_true, y_pred, groups, weights, num_groups, "equalized_odds", axis_name
    )
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
    num_classes: int | None = None,
) -> Array:
    """The larger (or mean) of the true-positive-rate and false-positive-rate gaps.

    .. math::

        \\mathrm{EOdds} = \\max\\Big(\\max_{a,b} |\\mathrm{TPR}_a - \\mathrm{TPR}_b|,\\;
                                  \\max_{a,b} |\\mathrm{FPR}_a - \\mathrm{FPR}_b|\\Big)

    Equals fairlearn's ``equalized_odds_difference`` (same ``agg`` options) when every group has
    examples of both labels.

    With ``num_classes=K`` (class ids or probabilities ``(n, K)``; labels class ids or
    one-hot) each class :math:`k` is read one-vs-rest (TPR among the rows of class :math:`k`,
    FPR among the others), its two gaps are combined by ``agg``, and the value is the worst
    class's: :math:`\\max_k \\max(\\Delta\\mathrm{TPR}_k, \\Delta\\mathrm{FPR}_k)` by default.

    Args:
      y_true: binary labels in {0, 1}, shape ``(n,)``; with ``num_classes``, class ids
        ``(n,)`` or one-hot ``(n, K)``.
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``; with
        ``num_classes``, class ids ``(n,)`` or probabilities ``(n, K)``.
      groups: integer ids ``(n,)``, labels of any kind (strings: factorised) or membership
        matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      agg: ``"worst_case"`` (the maximum of the two gaps) or ``"mean"`` (their average).
      num_classes: ``K`` for K-class predictions (static, at least 2); None: binary.

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
    check_agg(agg)
    if num_classes is not None:
        args = (y_true, y_pred, groups, num_groups, weights, axis_name, num_classes, agg)
        return _worst_class("equalized_odds", *args)
    true, pred, grp, w = check_inputs(y_true, y_pred, groups, num_groups, weights)
    return _eodds_difference(true, pred, grp, w, num_groups, agg, axis_name)
