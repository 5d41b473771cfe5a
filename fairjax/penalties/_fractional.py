r"""A differentiable penalty for any confusion-matrix criterion, ratios in linear-fractional form.

The decisions :math:`[f_i > 0]` are relaxed to :math:`h_i = \sigma(f_i / T)`, and every group's
confusion matrix (:func:`fairjax.criteria.confusion_matrix`) becomes linear in :math:`h`. A rate
of the criterion is a ratio of cell sums, :math:`r_g = a_g(h) / b_g(h)`; for PPV,
:math:`a_g = \mathrm{tp}_g`, :math:`b_g = \mathrm{tp}_g + \mathrm{fp}_g`, both depending on the
decisions: a *linear-fractional* statistic (Buyl, Defrance, De Bie, fairret, ICLR 2024). As
fairret does, the rate is compared with the overall rate :math:`c = \sum_g a_g / \sum_g b_g`
held constant (``stop_gradient``): :math:`r_g = c \iff a_g - c\, b_g = 0`, a constraint linear
in :math:`h`. The penalty's per-group statistic is

.. math::

    \tilde r_g = c + \frac{a_g(h) - c\, b_g(h)}{\mathrm{sg}(b_g(h))},

whose **value is exactly** :math:`r_g` (so the penalty's value is the metric's, at hard
decisions) and whose gradient is that of the linear form :math:`a_g - c\,b_g`, scaled by the
group's (constant) denominator: it does not chase the moving ratio. For a rate whose
denominator does not depend on the decisions (selection rate, TPR, FNR, accuracy) it is the
plain gradient of :math:`r_g`.
"""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax._nan import propagate_nan
from fairjax.penalties._surrogates import _reduce

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["fractional_rate_difference"]


def _linear_fractional(numerators: Array, denominators: Array) -> tuple[Array, Array]:
    """:math:`\\tilde r_g` of every rate and group (``(..., C, G)``) and the constant
    denominators that weigh them."""
    overall = jax.lax.stop_gradient(
        gs.safe_divide(jnp.sum(numerators, axis=-1), jnp.sum(denominators, axis=-1))
    )[..., None]
    fixed = jax.lax.stop_gradient(denominators)
    return overall + gs.safe_divide(numerators - overall * denominators, fixed), fixed


def fractional_rate_difference(
    logits: ArrayLike,
    groups: ArrayLike,
    *,
    criterion: str | criteria.Criterion,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    strata: ArrayLike | None = None,
    num_strata: int | None = None,
    axis_name: Hashable | None = None,
    temperature: float = 1.0,
    reduction: str = "max",
) -> Array:
    r"""Smooth gap between the groups in any confusion-matrix rate (PPV, FOR, accuracy, ...).

    With :math:`h_i = \sigma(f_i / T)`, each group's rate :math:`r_g = a_g / b_g` of the
    criterion's cells, the overall rate :math:`c` held constant and
    :math:`\tilde r_g = c + (a_g - c\, b_g) / \mathrm{sg}(b_g)` (the module docstring):

    .. math::

        P_{\max} = \max_{g:\, b_g > 0} \tilde r_g - \min_{g:\, b_g > 0} \tilde r_g, \qquad
        P_{\mathrm{sq}} = \sum_{g:\, b_g > 0} (\tilde r_g - c)^2,

    summed over the criterion's rates; for a stratified criterion
    (``"conditional_statistical_parity"``) each stratum's term is computed and the largest
    returned. As :math:`T \to 0` (or with hard decisions as logits of large magnitude) the value
    of ``"max"`` tends to :func:`fairjax.metrics.criterion_difference` (summed, not maxed, over
    the rates of a criterion with several). The value is differentiable in the logits, with
    finite gradients also where a group's denominator vanishes (that group is left out).

    Args:
      logits: model outputs on the logit scale, shape ``(n,)``; the decision is ``logits > 0``.
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      criterion: any name of :data:`fairjax.criteria.CRITERIA` (or a
        :class:`fairjax.criteria.Criterion`), e.g. ``"predictive_parity"``.
      num_groups: static number of groups (required for integer ids).
      labels: binary labels ``(n,)``; required by a criterion that needs them.
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      strata: integer ids ``(n,)`` of the legitimate factor, for a stratified criterion.
      num_strata: static number of strata (required with ``strata``).
      axis_name: mapped axis to reduce over inside ``shard_map``/``pmap``.
      temperature: :math:`T > 0`, in logit units (may be a traced scalar).
      reduction: ``"max"`` (largest gap, in the units of the rate) or ``"squared"``.

    Returns:
      A non-negative scalar in the logits' float dtype (at least float32); 0 with fewer than
      two groups that have the rate.

    Raises:
      ValueError: for an unknown criterion or reduction, missing labels or strata, non-finite
        logits or non-binary labels.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.penalties import fractional_rate_difference
      >>> f = jnp.array([3.0, 2.0, -1.0, 4.0, 1.0, -2.0])
      >>> y = jnp.array([1, 0, 1, 1, 1, 0])
      >>> s = jnp.array([0, 0, 0, 1, 1, 1])
      >>> p = fractional_rate_difference(f, s, criterion="predictive_parity", labels=y,
      ...                                num_groups=2, temperature=1e-3)
      >>> p   # PPV: 1/2 in group 0, 2/2 in group 1
      Array(0.5, dtype=float32)
      >>> g = jax.grad(lambda f: fractional_rate_difference(
      ...     f, s, criterion="predictive_parity", labels=y, num_groups=2))(f)
      >>> bool(jnp.all(jnp.isfinite(g)))
      True

    References:
      Buyl, Defrance, De Bie, *fairret: a framework for differentiable fairness regularization
      terms*, ICLR 2024 (linear-fractional statistics); Celis, Huang, Keswani, Vishnoi,
      *Classification with fairness constraints: a meta-algorithm with provable guarantees*,
      FAT* 2019 (linear-fractional constraints); Verma, Rubin, *Fairness definitions
      explained*, FairWare 2018.
    """
    crit = criteria.check_call(criterion, labels=labels, strata=strata, num_strata=num_strata)
    criteria.check_option(reduction, "reduction", ("max", "squared"))
    x = v.as_array(logits, "logits", ndim=1)
    v.check_nonempty(x, "logits")
    v.check_finite(x, "logits")
    if labels is not None:
        y = v.as_array(labels, "labels", ndim=1)
        v.check_length(y, x.shape[0], "labels", "logits")
        v.check_binary(y, "labels")
    v.check_scalar(temperature, "temperature", positive=True)
    dtype = v.float_dtype(x)
    h = jax.nn.sigmoid(x.astype(dtype) / jnp.asarray(temperature, dtype))
    matrix = criteria.confusion_matrix(
        h,
        groups,
        labels,
        num_groups=num_groups,
        weights=weights,
        strata=strata,
        num_strata=num_strata,
        axis_name=axis_name,
    )
    rates, fixed = _linear_fractional(*criteria.rate_terms(matrix, crit))
    value = jnp.sum(_reduce(rates, fixed, reduction), axis=-1)  # (,) or (K,) with strata
    value = jnp.max(value).astype(dtype)
    return propagate_nan(value, x, groups, labels, weights, axis_name=axis_name)
