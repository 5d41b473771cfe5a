"""Unfairness of scores: Kolmogorov-Smirnov and Wasserstein-1 between groups."""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Literal

import jax
import jax.numpy as jnp

from fairjax import criteria, ot1d
from fairjax import groups as gs
from fairjax._nan import propagate_nan
from fairjax.metrics._common import check_inputs, shifted_on_host

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# ----------------------------------------------------------------------------- score metrics


def _score_cdfs(scores, groups, weights, num_groups, axis_name):
    """Validated scores as :class:`fairjax.ot1d.PooledCDFs` of the whole (gathered) batch.

    Called eagerly, ``pooled_group_cdfs`` sorts on the host where that is faster (concrete
    inputs on CPU); inside a trace (the caller's ``jit``, ``shard_map``) it is traced.
    """
    scores = shifted_on_host(scores)  # float64 NumPy scores keep their digits in float32
    _, x, grp, w = check_inputs(
        None, scores, groups, num_groups, weights, pred_name="scores", unit_interval=False
    )
    x, grp, w = gs.gather_rows(x, grp, w, axis_name=axis_name)
    return ot1d.pooled_group_cdfs(x, grp, num_groups=num_groups, weights=w)


def _nan_if_any(cdf, value):
    """NaN in, NaN out (under ``jit``, where the value checks cannot run): a NaN score or
    weight would sort last, or leave a group, and the distance would read as fair."""
    return propagate_nan(value, cdf.points, cdf.counts)


@jax.jit
def _ks(cdf):
    gaps = criteria.largest_gap(cdf.cdfs, jnp.broadcast_to(cdf.counts, cdf.cdfs.shape))
    # Inside a run of tied scores the cumulative sums are partial: only run ends are CDF values.
    return _nan_if_any(cdf, jnp.max(jnp.where(cdf.run_end, gaps, 0)))


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
      scores: real-valued predictions, shape ``(n,)``. Float64 or integer NumPy scores are
        shifted to the middle of their range on the host before JAX's float32 (no distance
        changes), so values far from 0 (timestamps) keep float32's resolution of their
        spread; under ``jit`` (or streamed) they arrive in float32: shift them first.
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
    return _ks(_score_cdfs(scores, groups, weights, num_groups, axis_name))


@functools.partial(jax.jit, static_argnames="reference")
def _w1(cdf, reference):
    # W1 = integral of |F_a - F_b|; the CDFs are constant between consecutive pooled points,
    # and at tied points the spacing is 0, so partial sums inside a tie run contribute nothing.
    # In the CDFs' (accumulation) dtype: the difference of two bfloat16 points is exact there.
    spacing = jnp.diff(cdf.points.astype(cdf.cdfs.dtype))
    present = cdf.counts > 0
    if reference == "pooled":
        diff = jnp.abs(cdf.cdfs[:-1] - cdf.pooled_cdf[:-1, None])
        # Blocked sum: a float32 running sum of 10^7 small terms drifts by ~0.4%.
        per_group = gs.column_sums(spacing[:, None] * diff)
        return _nan_if_any(cdf, jnp.max(jnp.where(present, per_group, 0)))
    diff = jnp.abs(cdf.cdfs[:-1, :, None] - cdf.cdfs[:-1, None, :])
    pairwise = gs.column_sums(spacing[:, None, None] * diff)
    both = present[:, None] & present[None, :]
    return _nan_if_any(cdf, jnp.max(jnp.where(both, pairwise, 0)))


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
      scores: real-valued predictions, shape ``(n,)``. Float64 or integer NumPy scores are
        shifted to the middle of their range on the host before JAX's float32 (no distance
        changes), so values far from 0 (timestamps) keep float32's resolution of their
        spread; under ``jit`` (or streamed) they arrive in float32: shift them first.
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
    return _w1(_score_cdfs(scores, groups, weights, num_groups, axis_name), reference)
