"""Kamishima et al.'s Prejudice Remover: the mutual information between decisions and groups."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax._nan import propagate_nan

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["prejudice_remover"]

_REDUCTIONS = ("sum", "mean")


def prejudice_remover(
    probs: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    reduction: str = "sum",
) -> Array:
    r"""Kamishima et al.'s prejudice index: the mutual information of decision and group.

    With :math:`p_i = \hat P(y = 1 \mid x_i)` the model's probabilities, :math:`\bar p_g` their
    (weighted) mean over group :math:`g` and :math:`\bar p` their mean over all rows,

    .. math::

        \mathrm{PI} = \sum_i w_i \Big[ p_i \log \frac{\bar p_{g_i}}{\bar p}
            + (1 - p_i) \log \frac{1 - \bar p_{g_i}}{1 - \bar p} \Big],

    an estimate of :math:`n \cdot I(\hat Y; S)` (Kamishima et al., eq. 6 and 7, with the
    model's own probabilities as :math:`\Pr[y \mid s]`): non-negative up to the estimation
    of the group rates, 0 when every group's mean probability is the same. The group and
    overall means are functions of the parameters, and gradients flow through them.
    ``reduction="sum"`` (default) is the sum over the rows, as in Kamishima et al. and the
    Fair Fairness Benchmark's ``PRLoss`` (so its scale grows with the batch);
    ``"mean"`` divides by the total weight (an estimate of :math:`I(\hat Y; S)` in nats).

    Args:
      probs: probabilities in :math:`(0, 1)`, shape ``(n,)`` (e.g. ``jax.nn.sigmoid(logits)``).
      groups: integer group ids ``(n,)`` in ``[0, num_groups)``, or a membership matrix
        ``(n, G)`` (rows summing to 1).
      num_groups: static number of groups (required for traced ids).
      weights: optional non-negative sample weights ``(n,)`` (default 1 per row).
      reduction: ``"sum"`` (Kamishima et al., FFB) or ``"mean"``.

    Returns:
      A scalar (float32 at least). Concrete non-finite ``probs`` raise; under ``jit`` a NaN
      in gives NaN out.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.penalties import prejudice_remover
      >>> s = jnp.array([0, 0, 1, 1])
      >>> float(prejudice_remover(jnp.array([0.5, 0.5, 0.5, 0.5]), s, num_groups=2))
      0.0
      >>> bool(prejudice_remover(jnp.array([0.9, 0.8, 0.2, 0.1]), s, num_groups=2) > 0.5)
      True

    References:
      Kamishima, Akaho, Asoh, Sakuma, *Fairness-aware classifier with prejudice remover
      regularizer*, ECML PKDD 2012; Han, Chi, Chen, Wang, Zhao, Zou, Hu, *FFB: A Fair
      Fairness Benchmark for In-Processing Group Fairness Methods*, ICLR 2024.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {_REDUCTIONS}, got {reduction!r}.")
    p = v.as_array(probs, "probs", ndim=1)
    v.check_nonempty(p, "probs")
    v.check_finite(p, "probs")
    v.check_unit_interval(p, "probs")
    n = p.shape[0]
    g = v.check_groups(groups, num_groups=num_groups, n=n)
    if g.ndim == 2:  # a membership matrix: each row's weight shared over its groups
        k = g.shape[1]
    else:
        k = int(jnp.max(g)) + 1 if num_groups is None else v.check_num_groups(num_groups)
    w = v.check_weights(weights, n)
    w = jnp.ones_like(p) if w is None else w.astype(p.dtype)
    value = _prejudice_index(p, g, w, k, reduction == "mean")
    return propagate_nan(value, p, groups, None, weights)


def _bregman(t: Array) -> Array:
    """:math:`h(t) = (1 + t) \\log(1 + t) - t \\ge 0`, accurate near 0 (a series there, where
    the two terms cancel to :math:`t^2 / 2`; 16 terms: float64-accurate below 0.1) and
    :math:`h(-1) = 1` with a finite gradient (0, a subgradient: a group rate of exactly 0 or 1,
    from a saturated sigmoid, made every gradient NaN)."""
    small = jnp.abs(t) < 0.1
    u = jnp.where(small, t, 0.0)  # each branch sees only its own arguments (finite gradients)
    series = sum((-1) ** k * u**k / (k * (k - 1)) for k in range(2, 18))
    z = jnp.where(small, 2.0, 1 + t)
    positive = z > 0
    z_log_z = jnp.where(positive, z * jnp.log(jnp.where(positive, z, 1.0)), 0.0)
    return jnp.where(small, series, z_log_z - (z - 1))


def _prejudice_index(p: Array, g: Array, w: Array, k: int, mean: bool) -> Array:
    """The prejudice index of probabilities ``p`` in groups ``g`` (ids) with weights ``w``.

    The row sum regrouped: :math:`\\sum_g W_g \\, \\mathrm{KL}(\\mathrm{Bern}(a_g) \\,\\|\\,
    \\mathrm{Bern}(b))` with :math:`a_g = \\bar p_g`, :math:`b = \\bar p`, one term per group of
    positive weight, each KL written :math:`b\\, h(a_g / b - 1) + (1 - b)\\, h((1 - a_g) /
    (1 - b) - 1)` (:func:`_bregman`, both terms non-negative). The row form summed n terms of
    the size of the gap that cancel to its square: in float32 it read 1e-5 for equal rates,
    and went negative. A group without weight takes no part, in the gradient too (its log(0)
    made it NaN).
    """
    totals = gs.group_sums(w, g, num_groups=k)  # W_g
    present = totals > 0
    a = gs.safe_divide(gs.group_sums(w * p, g, num_groups=k), totals)  # \bar p_g
    b = jnp.sum(w * p) / jnp.sum(w)  # \bar p
    delta = jnp.where(present, a - b, 0.0)
    kl = b * _bregman(gs.safe_divide(delta, b)) + (1 - b) * _bregman(gs.safe_divide(-delta, 1 - b))
    total = jnp.sum(jnp.where(present, totals * kl, 0))
    return total / jnp.sum(w) if mean else total
