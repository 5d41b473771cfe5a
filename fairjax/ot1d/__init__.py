"""One-dimensional optimal transport on weighted empirical distributions.

In one dimension optimal transport is sorting: distances between distributions are integrals of
differences of cumulative distribution functions (CDFs) or of quantile functions, and the
Wasserstein-2 barycenter averages quantile functions. Everything here keeps static shapes, a
zero weight acting as a mask, so the functions jit, vmap and differentiate.

One layout of "the groups' samples", two builders:

* :class:`GroupedSamples` (:func:`group_samples`): each group's sample sorted, as segments of
  one array with a start and a count per group, CDF levels and type-7 knots; ``O(n)`` memory
  whatever the groups' sizes. Its functions :func:`group_cdf`, :func:`group_cdf_limits`,
  :func:`group_quantile` and :func:`barycenter_quantile` are the estimator of the barycenter
  post-processing (:mod:`fairjax.postprocessing`).
* :func:`group_views`: the same :class:`GroupedSamples`, for soft membership: the pooled
  sample sorted once and every group a weighted view of it (its own levels on the same sorted
  values). :func:`merged_quantiles` integrates over the merged levels of any layout: the
  Wasserstein penalty (:func:`fairjax.penalties.wasserstein`), :func:`wasserstein_distance`
  and :func:`barycenter` are sums over it. :func:`pooled_group_cdfs` (:class:`PooledCDFs`)
  reads the views as every group's CDF at every pooled point, the core of the KS and
  Wasserstein-1 unfairness metrics (:mod:`fairjax.metrics`).

Single samples: :func:`cdf`, :func:`quantile`, :func:`wasserstein_distance`,
:func:`barycenter` (padded ``(K, n)`` samples).
"""

from fairjax.ot1d._layout import (
    GroupedSamples,
    cdf_levels,
    group_order,
    group_samples,
    group_views,
)
from fairjax.ot1d._queries import (
    MergedQuantiles,
    barycenter_quantile,
    group_cdf,
    group_cdf_limits,
    group_quantile,
    merged_quantiles,
)
from fairjax.ot1d._univariate import (
    Barycenter,
    PooledCDFs,
    barycenter,
    cdf,
    pooled_group_cdfs,
    quantile,
    safe_power,
    wasserstein_distance,
)

__all__ = [
    "Barycenter",
    "GroupedSamples",
    "MergedQuantiles",
    "PooledCDFs",
    "barycenter",
    "barycenter_quantile",
    "cdf",
    "cdf_levels",
    "group_cdf",
    "group_cdf_limits",
    "group_order",
    "group_quantile",
    "group_samples",
    "group_views",
    "merged_quantiles",
    "pooled_group_cdfs",
    "quantile",
    "safe_power",
    "wasserstein_distance",
]
