"""Differentiable surrogates of demographic parity and equal opportunity.

Both terms compare per-group means, computed by :func:`fairjax.groups.group_means` (the one
home of group statistics), of a smooth function of the model output:

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

An empty group (no row, or only zero weights, or no row with the conditioning label) has no
mean and is left out of both reductions; with fewer than two non-empty groups the term is 0.
"""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["mean_difference", "sigmoid_rate_difference"]

_CONDITIONS = {"all": None, "positive": 1, "negative": 0}
_REDUCTIONS = ("max", "squared")


def _check_options(condition: str, reduction: str, labels: object) -> int | None:
    if condition not in _CONDITIONS:
        raise ValueError(f'`condition` must be "all", "positive" or "negative", got {condition!r}.')
    if reduction not in _REDUCTIONS:
        raise ValueError(f'`reduction` must be "max" or "squared", got {reduction!r}.')
    label_value = _CONDITIONS[condition]
    if label_value is not None and labels is None:
        raise ValueError(f'`labels` are required with condition="{condition}".')
    return label_value


def _reduce(means: Array, counts: Array, reduction: str) -> Array:
    """Gap between the non-empty groups' means: largest pairwise gap or squared deviations."""
    present = counts > 0
    enough = jnp.sum(present) >= 2
    if reduction == "max":
        # Finite stand-ins for -inf/+inf: an empty group is never the max nor the min, and
        # no inf - inf can appear in the value or the gradient.
        big = jnp.finfo(means.dtype).max
        hi = jnp.max(jnp.where(present, means, -big))
        lo = jnp.min(jnp.where(present, means, big))
        gap = hi - lo
        # Equal means summed in two orders (a sweep's batched program and a single training's)
        # can differ by an ulp, and the sign of such a gap would pick the subgradient at the
        # kink where every zero-initialised model starts. A gap within 4 ulps of the means is
        # rounding, so it counts as a tie: value 0, subgradient 0, as for an exact tie.
        resolved = gap > 4 * jnp.finfo(means.dtype).eps * jnp.maximum(jnp.abs(hi), jnp.abs(lo))
        return jnp.where(enough & resolved, gap, 0)
    pooled = gs.safe_divide(jnp.sum(counts * means), jnp.sum(counts))
    dev = jnp.where(present, means - pooled, 0)
    return jnp.where(enough, jnp.sum(dev * dev), 0)


def _group_gap(
    values: Array,
    groups: ArrayLike,
    *,
    num_groups: int | None,
    labels: ArrayLike | None,
    weights: ArrayLike | None,
    axis_name: Hashable | None,
    condition: str,
    reduction: str,
) -> Array:
    label_value = _check_options(condition, reduction, labels)
    means, counts = gs.group_means(
        values,
        groups,
        num_groups=num_groups,
        labels=None if label_value is None else labels,
        label_value=1 if label_value is None else label_value,
        weights=weights,
        axis_name=axis_name,
        return_counts=True,
    )
    return _reduce(means, counts, reduction).astype(means.dtype)


def _check_scores(scores: ArrayLike, name: str, labels: ArrayLike | None) -> Array:
    x = v.as_array(scores, name, ndim=1)
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
    condition: str = "all",
    reduction: str = "max",
) -> Array:
    r"""Gap between the groups' mean scores: a linear relaxation of DP or equal opportunity.

    With :math:`m_g` the weighted mean of the scores :math:`f_i` over the rows of group
    :math:`g` (``condition="all"``, demographic parity), over its rows with :math:`y_i = 1`
    (``"positive"``, equal opportunity, the DEO of the FERM paper) or with :math:`y_i = 0`
    (``"negative"``, the false-positive side of equalized odds):

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
      labels: binary labels ``(n,)``; required for ``condition="positive"``/``"negative"``.
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      axis_name: mapped axis to reduce over inside ``shard_map``/``pmap``.
      condition: ``"all"``, ``"positive"`` or ``"negative"`` (rows entering the means).
      reduction: ``"max"`` (largest gap, in the units of the scores) or ``"squared"`` (sum of
        squared deviations from the pooled mean; smooth everywhere).

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

    References:
      Donini, Oneto, Ben-David, Shawe-Taylor, Pontil, Empirical Risk Minimization under Fairness
      Constraints, NeurIPS 2018, eq. (9)-(10) (linear relaxation of the DEO); Zafar, Valera,
      Gomez-Rodriguez, Gummadi, Fairness Constraints: Mechanisms for Fair Classification,
      AISTATS 2017 (decision-boundary covariance).
    """
    x = _check_scores(scores, "scores", labels)
    return _group_gap(
        x,
        groups,
        num_groups=num_groups,
        labels=labels,
        weights=weights,
        axis_name=axis_name,
        condition=condition,
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
    condition: str = "all",
    reduction: str = "max",
) -> Array:
    r"""Gap between the groups' smoothed rates of positive decisions (smooth DP/EO gap).

    The decision :math:`[f_i > 0]` is relaxed to :math:`\sigma(f_i / T)`; the per-group rate

    .. math::

        r_g(T) = \frac{\sum_i w_i c_i M_{ig}\, \sigma(f_i / T)}{\sum_i w_i c_i M_{ig}}

    (:math:`c_i` selects the rows of ``condition`` as in :func:`mean_difference`) tends to the
    selection rate (``"all"``) or true-positive rate (``"positive"``) of the classifier
    :math:`[f > 0]` as :math:`T \to 0`, and the term, :math:`\max_g r_g - \min_g r_g`
    (``reduction="max"``) or :math:`\sum_g (r_g - \bar r)^2` (``"squared"``), tends to
    :func:`fairjax.metrics.demographic_parity_difference` (or the equal-opportunity
    difference). At ``T = 1`` with logits it is the gap in mean predicted probability. Small
    ``T`` is closer to the metric but has larger, more local gradients.

    Args:
      logits: model outputs on the logit scale, shape ``(n,)``; the decision is ``logits > 0``.
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: binary labels ``(n,)``; required for ``condition="positive"``/``"negative"``.
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      axis_name: mapped axis to reduce over inside ``shard_map``/``pmap``.
      temperature: :math:`T > 0`, in logit units (may be a traced scalar).
      condition: ``"all"`` (demographic parity), ``"positive"`` (equal opportunity) or
        ``"negative"`` (false-positive rates).
      reduction: ``"max"`` (largest gap, a rate in [0, 1]) or ``"squared"``.

    Returns:
      A scalar in [0, 1] for ``"max"``, in the logits' float dtype (at least float32).

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
      Applications to Fairness, Recall, Churn, and Other Goals, JMLR 2019.
    """
    x = _check_scores(logits, "logits", labels)
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature!r}.")
    dtype = v.float_dtype(x)
    rates = jax.nn.sigmoid(x.astype(dtype) / jnp.asarray(temperature, dtype))
    return _group_gap(
        rates,
        groups,
        num_groups=num_groups,
        labels=labels,
        weights=weights,
        axis_name=axis_name,
        condition=condition,
        reduction=reduction,
    )
