"""Differentiable surrogates of the rate criteria: demographic parity, equal opportunity, ...

Both terms compare per-group means, computed by :func:`fairjax.criteria.group_rates` (the one
home of which rows a rate counts), of a smooth function of the model output:

- :func:`mean_difference` averages the raw scores (a linear relaxation of the selection rate);
- :func:`sigmoid_rate_difference` averages :math:`\\sigma(f / T)` (a smooth relaxation of the
  rate of positive decisions :math:`[f > 0]`, exact as :math:`T \\to 0`).

The group means are reduced to one number in one of two ways (``reduction=``):

- ``"max"``: the largest gap between two non-empty groups, :math:`\\max_g m_g - \\min_g m_g`,
  in the units of the metric (it equals :func:`fairjax.metrics.demographic_parity_difference`
  when the scores are hard decisions). Lipschitz, differentiable wherever the extreme groups
  are unique (for two groups: everywhere except where the means tie), gradients always finite.
- ``"squared"``: :math:`\\sum_g [n_g > 0]\\,(m_g - \\bar m)^2` with :math:`\\bar m` the pooled
  mean of the rows that enter the statistic. Smooth everywhere; for two groups of sizes
  :math:`n_0, n_1` it is :math:`\\frac{n_0^2 + n_1^2}{(n_0 + n_1)^2}(m_1 - m_0)^2`.

The rows of the means are those of ``criterion=`` (:mod:`fairjax.criteria`): all rows
(``"demographic_parity"``, the default), those with :math:`y = 1` (``"equal_opportunity"``)
or :math:`y = 0` (``"false_positive_parity"``). ``"equalized_odds"`` asks for both of the
last two (Hardt, Price, Srebro, NeurIPS 2016): its term is the **sum** of the two conditions'
terms, :math:`P_{y=1} + P_{y=0}`, which is 0 exactly when both are and keeps a gradient on
both rates (a max would only push on the worse one).

An empty group (no row, or only zero weights, or no row with the conditioning label) has no
mean and is left out of both reductions; with fewer than two non-empty groups the term is 0.

.. versionchanged:: 0.1.0
   ``criterion=`` replaces ``condition="all" | "positive" | "negative"`` (deprecated).
"""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax._nan import propagate_nan

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["mean_difference", "sigmoid_rate_difference"]

_REDUCTIONS = ("max", "squared")  # of criteria.REDUCTIONS


def _reduce(means: Array, counts: Array, reduction: str) -> Array:
    """Each condition's gap between the non-empty groups' means, shape ``(C,)`` for ``(C, G)``."""
    present = counts > 0
    if reduction == "max":
        gap = criteria.largest_gap(means, counts)
        # Equal means summed in two orders (a sweep's batched program and a single training's)
        # can differ by an ulp, and the sign of such a gap would pick the subgradient at the
        # kink where every zero-initialised model starts. A gap within 4 ulps of the means is
        # rounding, so it counts as a tie: value 0, subgradient 0, as for an exact tie.
        # (max_g |m_g| over the non-empty groups is max(|largest mean|, |smallest mean|).)
        # The test is "within the tolerance", not "above it": a NaN gap stays NaN, and an
        # infinite mean (a diverged score under jit) is no tie: its gap is inf, not 0.
        scale = jnp.max(jnp.where(present, jnp.abs(means), 0), axis=-1)
        tie = (gap <= 4 * jnp.finfo(means.dtype).eps * scale) & jnp.isfinite(scale)
        return jnp.where(tie, 0, gap)
    enough = jnp.sum(present, axis=-1) >= 2
    pooled = gs.safe_divide(jnp.sum(counts * means, axis=-1), jnp.sum(counts, axis=-1))
    dev = jnp.where(present, means - pooled[..., None], 0)
    return jnp.where(enough, jnp.sum(dev * dev, axis=-1), 0)


def _group_gap(
    values: Array,
    groups: ArrayLike,
    *,
    num_groups: int | None,
    labels: ArrayLike | None,
    weights: ArrayLike | None,
    axis_name: Hashable | None,
    criterion: criteria.Criterion,
    reduction: str,
) -> Array:
    """The penalty: each condition's gap of the group means, summed over the conditions."""
    criteria.check_option(reduction, "reduction", _REDUCTIONS)
    means, counts = criteria.group_rates(
        values,
        groups,
        labels,
        criterion=criterion,
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
    )
    # Equalized odds: the sum of its conditions' terms (0 exactly when both are).
    value = jnp.sum(_reduce(means, counts, reduction), axis=0).astype(means.dtype)
    return propagate_nan(value, values, groups, labels, weights, axis_name=axis_name)


def _check_scores(scores: ArrayLike, name: str, labels: ArrayLike | None) -> Array:
    x = v.as_array(scores, name, ndim=1)
    v.check_nonempty(x, name)
    v.check_finite(x, name)
    if labels is not None:
        y = v.as_array(labels, "labels", ndim=1)
        v.check_length(y, x.shape[0], "labels", name)
        v.check_binary(y, "labels")
    return x


def mean_difference(
    scores: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    criterion: str | criteria.Criterion | None = None,
    reduction: str = "max",
    condition: str | None = None,
) -> Array:
    r"""Gap between the groups' mean scores: a linear relaxation of DP or equal opportunity.

    With :math:`m_g` the weighted mean of the scores :math:`f_i` over the rows of group
    :math:`g` (``criterion="demographic_parity"``), over its rows with :math:`y_i = 1`
    (``"equal_opportunity"``, the DEO of the FERM paper) or with :math:`y_i = 0`
    (``"false_positive_parity"``, the false-positive side of equalized odds):

    .. math::

        P_{\max} = \max_{g:\,n_g > 0} m_g - \min_{g:\,n_g > 0} m_g, \qquad
        P_{\mathrm{sq}} = \sum_{g:\,n_g > 0} (m_g - \bar m)^2,

    where :math:`\bar m` is the pooled mean. Replacing the decision :math:`[f_i > 0]` by the
    score :math:`f_i` makes the term linear in the outputs; for a linear model
    :math:`f = \langle w, x\rangle + b` and two groups, :math:`P_{\max} = |\langle w, u\rangle|`
    with :math:`u` the difference of the groups' feature means (FERM's direction).

    Args:
      scores: model outputs (logits, probabilities or decision values), shape ``(n,)``.
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: binary labels ``(n,)``; required by a criterion that conditions on them.
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      axis_name: mapped axis to reduce over inside ``shard_map``/``pmap``.
      criterion: the rows entering the means, a name of :data:`fairjax.criteria.CRITERIA`
        (default ``"demographic_parity"``; ``"equalized_odds"``: the sum of the ``y = 1``
        and ``y = 0`` terms).
      reduction: ``"max"`` (largest gap, in the units of the scores) or ``"squared"`` (sum of
        squared deviations from the pooled mean; smooth everywhere).
      condition: deprecated spelling of ``criterion``: ``"all"``, ``"positive"`` or
        ``"negative"`` (a ``DeprecationWarning``).

    Returns:
      A non-negative scalar in the scores' float dtype (at least float32); 0 with fewer than
      two non-empty groups.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.penalties import mean_difference
      >>> f = jnp.array([1.0, 2.0, 0.0, 1.0])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> mean_difference(f, s, num_groups=2)
      Array(1., dtype=float32)
      >>> mean_difference(f, s, num_groups=2, reduction="squared")
      Array(0.5, dtype=float32)
      >>> y = jnp.array([1, 0, 1, 0])
      >>> mean_difference(f, s, num_groups=2, labels=y, criterion="equal_opportunity")
      Array(1., dtype=float32)

    References:
      Donini, Oneto, Ben-David, Shawe-Taylor, Pontil, Empirical Risk Minimization under Fairness
      Constraints, NeurIPS 2018, eq. (9)-(10) (linear relaxation of the DEO); Zafar, Valera,
      Gomez-Rodriguez, Gummadi, Fairness Constraints: Mechanisms for Fair Classification,
      AISTATS 2017 (decision-boundary covariance); Hardt, Price, Srebro, Equality of
      Opportunity in Supervised Learning, NeurIPS 2016 (equalized odds).
    """
    crit = criteria.resolve(criterion, where="penalties.mean_difference", condition=condition)
    x = _check_scores(scores, "scores", labels)
    return _group_gap(
        x,
        groups,
        num_groups=num_groups,
        labels=labels,
        weights=weights,
        axis_name=axis_name,
        criterion=crit,
        reduction=reduction,
    )


def sigmoid_rate_difference(
    logits: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    temperature: float = 1.0,
    criterion: str | criteria.Criterion | None = None,
    reduction: str = "max",
    condition: str | None = None,
) -> Array:
    r"""Gap between the groups' smoothed rates of positive decisions (smooth DP/EO gap).

    The decision :math:`[f_i > 0]` is relaxed to :math:`\sigma(f_i / T)`; the per-group rate

    .. math::

        r_g(T) = \frac{\sum_i w_i c_i M_{ig}\, \sigma(f_i / T)}{\sum_i w_i c_i M_{ig}}

    (:math:`c_i` selects the rows of ``criterion`` as in :func:`mean_difference`) tends to the
    selection rate (``"demographic_parity"``) or true-positive rate (``"equal_opportunity"``)
    of the classifier :math:`[f > 0]` as :math:`T \to 0`, and the term,
    :math:`\max_g r_g - \min_g r_g` (``reduction="max"``) or :math:`\sum_g (r_g - \bar r)^2`
    (``"squared"``), tends to :func:`fairjax.metrics.demographic_parity_difference` (or the
    equal-opportunity difference; for ``"equalized_odds"``, to the sum of the TPR and FPR
    gaps). At ``T = 1`` with logits it is the gap in mean predicted probability. Small
    ``T`` is closer to the metric but has larger, more local gradients.

    Args:
      logits: model outputs on the logit scale, shape ``(n,)``; the decision is ``logits > 0``.
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: binary labels ``(n,)``; required by a criterion that conditions on them.
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      axis_name: mapped axis to reduce over inside ``shard_map``/``pmap``.
      temperature: :math:`T > 0`, in logit units (may be a traced scalar).
      criterion: the rows entering the rates, a name of :data:`fairjax.criteria.CRITERIA`
        (default ``"demographic_parity"``; ``"equalized_odds"``: the sum of the ``y = 1``
        and ``y = 0`` terms).
      reduction: ``"max"`` (largest gap, a rate in [0, 1]) or ``"squared"``.
      condition: deprecated spelling of ``criterion``: ``"all"``, ``"positive"`` or
        ``"negative"`` (a ``DeprecationWarning``).

    Returns:
      A scalar in [0, 1] for ``"max"`` (in [0, 2] for ``"equalized_odds"``), in the logits'
      float dtype (at least float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.penalties import sigmoid_rate_difference
      >>> f = jnp.array([4.0, 4.0, -4.0, 4.0])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> sigmoid_rate_difference(f, s, num_groups=2, temperature=0.1)
      Array(0.5, dtype=float32)

    References:
      Bendekgey, Sudderth, Scalable and Stable Surrogates for Flexible Classifiers with Fairness
      Constraints, NeurIPS 2021 (sigmoid relaxation of rate constraints); Cotter, Jiang, Gupta,
      Wang, Narayan, You, Sridharan, Optimization with Non-Differentiable Constraints with
      Applications to Fairness, Recall, Churn, and Other Goals, JMLR 2019; Hardt, Price,
      Srebro, Equality of Opportunity in Supervised Learning, NeurIPS 2016 (equalized odds).
    """
    crit = criteria.resolve(
        criterion, where="penalties.sigmoid_rate_difference", condition=condition
    )
    x = _check_scores(logits, "logits", labels)
    v.check_scalar(temperature, "temperature", positive=True)
    dtype = v.float_dtype(x)
    rates = jax.nn.sigmoid(x.astype(dtype) / jnp.asarray(temperature, dtype))
    return _group_gap(
        rates,
        groups,
        num_groups=num_groups,
        labels=labels,
        weights=weights,
        axis_name=axis_name,
        criterion=crit,
        reduction=reduction,
    )
