"""Gaps of any confusion-matrix criterion: PPV, FOR, FNR, TNR, accuracy, treatment equality, ...

Every metric here reads one weighted confusion matrix per group (:func:`fairjax.criteria.
confusion_matrix`, one pass over the rows) and the criterion's rates from its cells
(:func:`fairjax.criteria.confusion_rates`); the gap is the largest difference between two groups
whose denominator is positive (a group with no positive decision has no PPV and is left out).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Literal

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax.metrics._common import check_agg, check_inputs
from fairjax.metrics._multiclass import class_confusion_matrix, class_inputs, rate_gaps

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "accuracy_difference",
    "conditional_statistical_parity_difference",
    "criterion_difference",
    "false_negative_rate_difference",
    "false_omission_rate_difference",
    "predictive_parity_difference",
    "treatment_equality_difference",
    "true_negative_rate_difference",
]


@functools.partial(
    jax.jit, static_argnames=("criterion", "num_groups", "num_strata", "agg", "axis_name")
)
def _difference(
    y_true, y_pred, groups, weights, strata, criterion, num_groups, num_strata, agg, axis_name
):
    kw = dict(
        num_groups=num_groups,
        weights=weights,
        strata=strata,
        num_strata=num_strata,
        axis_name=axis_name,
    )
    if y_pred.ndim == 2:  # K classes: each class's one-vs-rest matrices, (K, [S,] G, 4)
        matrix = class_confusion_matrix(y_pred, y_true, groups, **kw)
    else:
        matrix = criteria.confusion_matrix(y_pred, groups, y_true, **kw)
    value = jnp.max(rate_gaps(matrix, criterion, agg))  # the worst class (K classes)
    # A NaN (a traced input the edge checks could not see) is left out by the comparisons of
    # ``largest_gap``, which would report "fair": NaN in gives NaN out.
    return jnp.where(jnp.any(jnp.isnan(matrix)), jnp.nan, value)


def criterion_difference(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    criterion: str | criteria.Criterion,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    strata: ArrayLike | None = None,
    num_strata: int | None = None,
    axis_name: Hashable | None = None,
    agg: Literal["worst_case", "mean"] = "worst_case",
    num_classes: int | None = None,
) -> Array:
    r"""The largest gap between two groups in a criterion's rate, for any criterion.

    With the weighted confusion matrix :math:`(\mathrm{tp}_g, \mathrm{fp}_g, \mathrm{fn}_g,
    \mathrm{tn}_g)` of each group and a rate :math:`r_g = a_g / b_g` that sums some cells over
    others (:data:`fairjax.criteria.CRITERIA`; e.g. PPV :math:`\mathrm{tp}_g / (\mathrm{tp}_g +
    \mathrm{fp}_g)`):

    .. math:: \Delta = \max_{g:\, b_g > 0} r_g - \min_{g:\, b_g > 0} r_g,

    the largest over the criterion's rates (``agg="worst_case"``) or their mean (``"mean"``; as
    :func:`equalized_odds_difference`). For a stratified criterion
    (``"conditional_statistical_parity"``) the gap is taken within each stratum of ``strata``
    and the largest is returned: parity is asked only between people of the same stratum. For
    the criteria of rates of positive decisions it equals the metric of the same name
    (:func:`demographic_parity_difference`, ...).

    With probabilities as ``y_pred``, the cells are expected counts and each rate the ratio of
    the expected counts.

    **K classes** (``num_classes=K``): predictions are class ids ``(n,)`` or probabilities
    ``(n, K)``, labels class ids or one-hot. Each class :math:`k` is read one-vs-rest, its
    decision :math:`P_{ik}` (the probability of class :math:`k`, one-hot for ids) and its label
    :math:`[y_i = k]` giving the cells :math:`(\mathrm{tp}_{kg}, \dots)` and the rates
    :math:`r_{kg}`, and the value is the worst class's gap:

    .. math:: \Delta = \max_k \Big(\max_{g:\, b_{kg} > 0} r_{kg}
                                  - \min_{g:\, b_{kg} > 0} r_{kg}\Big).

    Args:
      y_true: binary labels ``(n,)`` (class ids ``(n,)`` or one-hot ``(n, K)`` with
        ``num_classes``); ``None`` for a criterion that does not need them.
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``; with
        ``num_classes``, class ids ``(n,)`` or probabilities ``(n, K)``.
      groups: integer ids ``(n,)``, labels of any kind (strings: factorised) or membership
        matrix ``(n, G)``.
      criterion: a name of :data:`fairjax.criteria.CRITERIA` or a
        :class:`fairjax.criteria.Criterion`.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      strata: integer ids ``(n,)`` of the legitimate factor, for a stratified criterion.
      num_strata: static number of strata (required with ``strata``).
      axis_name: mapped axis name inside ``shard_map``/``pmap``.
      agg: ``"worst_case"`` (default) or ``"mean"`` over the criterion's rates (per class).
      num_classes: ``K`` for K-class predictions (static, at least 2); None: binary.

    Returns:
      A non-negative scalar (a difference of rates in [0, 1], except for
      ``"treatment_equality"``, whose ratio ``fn / fp`` is unbounded); 0 with fewer than two
      groups that have the rate.

    Raises:
      ValueError: for an unknown criterion, missing labels or strata, or bad inputs.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import criterion_difference
      >>> y = jnp.array([1, 0, 1, 1, 0, 0])
      >>> yhat = jnp.array([1, 1, 0, 1, 0, 0])
      >>> s = jnp.array([0, 0, 0, 1, 1, 1])
      >>> criterion_difference(y, yhat, s, criterion="predictive_parity", num_groups=2)
      Array(0.5, dtype=float32)

    References:
      Verma, Rubin, *Fairness definitions explained*, FairWare 2018; Chouldechova, *Fair
      prediction with disparate impact*, Big Data 2017 (predictive parity).
    """
    crit = criteria.check_call(
        criterion, labels=y_true, strata=strata, num_strata=num_strata, labels_name="y_true"
    )
    check_agg(agg)
    if num_classes is None:
        true, pred, grp, w = check_inputs(y_true, y_pred, groups, num_groups, weights)
    else:  # K classes: one-hot labels, (n, K) probabilities
        args = (y_true, y_pred, groups, num_groups, weights)
        true, pred, grp, w = class_inputs(*args, num_classes=num_classes, crit=crit)
    k = None
    if crit.stratified:
        num_strata = v.check_num_groups(num_strata)
        k = v.check_groups(strata, num_groups=num_strata, n=pred.shape[0])
    num = grp.shape[1] if grp.ndim == 2 else num_groups
    return _difference(
        true, pred, grp, w, k, crit, num, num_strata if crit.stratified else None, agg, axis_name
    )


def _named(name: str, criterion: str, rate: str, value: str, reference: str):
    """A metric of one criterion: :func:`criterion_difference` with ``criterion`` fixed."""

    def metric(
        y_true: ArrayLike,
        y_pred: ArrayLike,
        groups: ArrayLike,
        *,
        num_groups: int | None = None,
        weights: ArrayLike | None = None,
        axis_name: Hashable | None = None,
        num_classes: int | None = None,
    ) -> Array:
        return criterion_difference(
            y_true,
            y_pred,
            groups,
            criterion=criterion,
            num_groups=num_groups,
            weights=weights,
            axis_name=axis_name,
            num_classes=num_classes,
        )

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = f"""Largest gap between two groups in {rate}.

    :func:`criterion_difference` with ``criterion="{criterion}"``
    (:data:`fairjax.criteria.CRITERIA` gives the cells of the rate); groups without the rate's
    denominator are left out.

    With ``num_classes=K``, the worst class's gap of the one-vs-rest rates (as in
    :func:`criterion_difference`).

    Args:
      y_true: binary labels ``(n,)`` (with ``num_classes``: class ids ``(n,)`` or one-hot
        ``(n, K)``).
      y_pred: decisions in {{0, 1}} or probabilities in [0, 1], shape ``(n,)`` (with
        ``num_classes``: class ids ``(n,)`` or probabilities ``(n, K)``).
      groups: integer ids ``(n,)``, labels of any kind, or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``.
      num_classes: ``K`` for K-class predictions (static); None: binary.

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import metrics
      >>> y = jnp.array([1, 0, 1, 1, 0, 0, 1, 0])
      >>> yhat = jnp.array([1, 1, 0, 1, 1, 0, 1, 1])
      >>> s = jnp.array([0, 0, 0, 1, 1, 1, 1, 0])
      >>> metrics.{name}(y, yhat, s, num_groups=2)
      Array({value}, dtype=float32)

    References:
      {reference}
    """
    return metric


_VR = "Verma, Rubin, *Fairness definitions explained*, FairWare 2018."

predictive_parity_difference = _named(
    "predictive_parity_difference",
    "predictive_parity",
    "positive predictive value (precision), :math:`\\mathrm{tp} / (\\mathrm{tp} + \\mathrm{fp})`",
    "0.33333334",
    "Chouldechova, *Fair prediction with disparate impact*, Big Data 2017; " + _VR,
)
false_omission_rate_difference = _named(
    "false_omission_rate_difference",
    "false_omission_rate_parity",
    "false omission rate, :math:`\\mathrm{fn} / (\\mathrm{fn} + \\mathrm{tn})`",
    "1.",
    _VR,
)
false_negative_rate_difference = _named(
    "false_negative_rate_difference",
    "false_negative_rate_parity",
    "false-negative rate, :math:`\\mathrm{fn} / (\\mathrm{tp} + \\mathrm{fn})` (the same gap as"
    " the true-positive rate's)",
    "0.5",
    _VR,
)
true_negative_rate_difference = _named(
    "true_negative_rate_difference",
    "true_negative_rate_parity",
    "true-negative rate, :math:`\\mathrm{tn} / (\\mathrm{fp} + \\mathrm{tn})` (the same gap as"
    " the false-positive rate's)",
    "0.5",
    _VR,
)
accuracy_difference = _named(
    "accuracy_difference",
    "accuracy_parity",
    "accuracy, :math:`(\\mathrm{tp} + \\mathrm{tn}) / (\\mathrm{tp} + \\mathrm{fp} + \\mathrm{fn}"
    " + \\mathrm{tn})` (overall accuracy equality)",
    "0.5",
    "Berk et al., *Fairness in criminal justice risk assessments*, Sociol. Methods Res. 2021; "
    + _VR,
)
treatment_equality_difference = _named(
    "treatment_equality_difference",
    "treatment_equality",
    "the ratio of false negatives to false positives, :math:`\\mathrm{fn} / \\mathrm{fp}`"
    " (groups without a false positive are left out; the ratio is unbounded)",
    "0.5",
    "Berk et al., *Fairness in criminal justice risk assessments*, Sociol. Methods Res. 2021; "
    + _VR,
)


def conditional_statistical_parity_difference(
    y_pred: ArrayLike,
    groups: ArrayLike,
    strata: ArrayLike,
    *,
    num_groups: int | None = None,
    num_strata: int,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    num_classes: int | None = None,
) -> Array:
    r"""Largest gap in selection rate between two groups within a stratum, over the strata.

    .. math::

        \max_k \Big(\max_g P(\hat Y = 1 \mid S = g, L = k) - \min_g P(\hat Y = 1 \mid S = g,
        L = k)\Big),

    over the groups present in stratum :math:`k` of the legitimate factor :math:`L` (e.g. the
    number of prior offences): parity is asked only between people alike in :math:`L`.

    Args:
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      strata: integer ids ``(n,)`` in ``[0, num_strata)`` of the legitimate factor.
      num_groups: static number of groups (required for integer ids).
      num_strata: static number of strata.
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``.
      num_classes: ``K`` for K-class predictions (class ids ``(n,)`` or probabilities
        ``(n, K)``): the worst class's gap of its one-vs-rest selection rate (static).

    Returns:
      Scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import conditional_statistical_parity_difference
      >>> yhat = jnp.array([1, 0, 1, 1, 0, 1])
      >>> s = jnp.array([0, 1, 0, 1, 0, 1])
      >>> stratum = jnp.array([0, 0, 1, 1, 1, 1])
      >>> conditional_statistical_parity_difference(yhat, s, stratum, num_groups=2,
      ...                                           num_strata=2)
      Array(1., dtype=float32)

    References:
      Corbett-Davies, Pierson, Feller, Goel, Huq, *Algorithmic decision making and the cost of
      fairness*, KDD 2017; Verma, Rubin, *Fairness definitions explained*, FairWare 2018.
    """
    return criterion_difference(
        None,
        y_pred,
        groups,
        criterion="conditional_statistical_parity",
        num_groups=num_groups,
        weights=weights,
        strata=strata,
        num_strata=num_strata,
        axis_name=axis_name,
        num_classes=num_classes,
    )
