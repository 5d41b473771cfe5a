"""One-dimensional optimal transport on weighted empirical distributions.

In one dimension optimal transport is sorting: distances between distributions are integrals of
differences of cumulative distribution functions (CDFs) or of quantile functions, and the
Wasserstein-2 barycenter averages quantile functions. Everything here keeps static shapes, a
zero weight acting as a mask, so the functions jit, vmap and differentiate.

Two views of "the groups' samples", one module:

* :class:`GroupedSamples` (:func:`group_samples`): each group's sample sorted, as segments of
  one array with a start and a count per group, CDF levels and type-7 knots; ``O(n)`` memory
  whatever the groups' sizes. Its functions :func:`group_cdf`, :func:`group_quantile` and
  :func:`barycenter_quantile` are the estimator of the barycenter post-processing
  (:mod:`fairjax.postprocessing`).
* :class:`PooledCDFs` (:func:`pooled_group_cdfs`): the pooled sample sorted once, with every
  group's CDF at every pooled point; it takes soft memberships and is the common core of the
  KS and Wasserstein-1 unfairness metrics (:mod:`fairjax.metrics`). The Wasserstein penalty
  (:func:`fairjax.penalties.wasserstein`) uses the same pooled sort with :func:`cdf_levels`.

Single samples: :func:`cdf`, :func:`quantile`, :func:`wasserstein_distance`,
:func:`barycenter` (padded ``(K, n)`` samples).
"""

from fairjax.ot1d._layout import (
    GroupedSamples,
    barycenter_quantile,
    group_cdf,
    group_order,
    group_quantile,
    group_samples,
)
from fairjax.ot1d._univariate import (
    Barycenter,
    PooledCDFs,
    barycenter,
    cdf,
    cdf_levels,
    pooled_group_cdfs,
    quantile,
    safe_power,
    wasserstein_distance,
)

__all__ = [
    "Barycenter",
    "GroupedSamples",
    "PooledCDFs",
    "barycenter",
    "barycenter_quantile",
    "cdf",
    "cdf_levels",
    "group_cdf",
    "group_order",
    "group_quantile",
    "group_samples",
    "pooled_group_cdfs",
    "quantile",
    "safe_power",
    "wasserstein_distance",
]
