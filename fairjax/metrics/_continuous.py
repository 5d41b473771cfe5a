"""Fairness with respect to a continuous sensitive attribute (age, income)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax._nan import propagate_nan
from fairjax.dependence import distance_correlation, hgr_correlation, hsic
from fairjax.metrics._parity import demographic_parity_difference

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["binned_parity_difference", "distance_correlation", "hgr_correlation", "hsic"]


def binned_parity_difference(
    y_pred: ArrayLike,
    attribute: ArrayLike,
    *,
    num_bins: int = 4,
    weights: ArrayLike | None = None,
) -> Array:
    """Demographic-parity difference over quantile bins of a continuous attribute.

    What the peers do with a continuous attribute (fairlearn bins it first): cut ``attribute``
    at its (weighted, ``inverted_cdf``) quantiles :math:`k / B`, ``k = 1..B-1``, into
    ``num_bins`` groups of about equal weight (bins closed on the right, as pandas' ``qcut``: a
    value on a cut goes to the lower bin) and return
    :func:`demographic_parity_difference` between the bins. It sees only the dependence between
    bins, and depends on ``num_bins``; :func:`hgr_correlation`, :func:`hsic` and
    :func:`distance_correlation` measure the dependence itself. Given for comparison.

    Args:
      y_pred: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      attribute: the continuous sensitive attribute, shape ``(n,)``.
      num_bins: number of quantile bins ``B`` (static, >= 1).
      weights: optional non-negative sample weights ``(n,)``.

    Returns:
      Scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import binned_parity_difference
      >>> age = jnp.array([20.0, 30.0, 40.0, 50.0, 60.0, 70.0])
      >>> binned_parity_difference(jnp.array([0, 0, 1, 0, 1, 1]), age, num_bins=2)
      Array(0.33333334, dtype=float32)
    """
    num_bins = v.check_scalar(num_bins, "num_bins", integer=True, positive=True)
    a = v.as_array(attribute, "attribute", ndim=1)
    v.check_finite(a, "attribute")
    w = v.check_weights(weights, a.shape[0])
    dtype = v.float_dtype(a, w)
    a = a.astype(dtype)
    ww = jnp.ones_like(a) if w is None else w.astype(dtype)
    # Weights over their largest: equal weights become ones, so their cumulative sums are
    # exact and they cut where no weights do (0.1 each summed to just under the level 0.5).
    ww = ww / jnp.where(jnp.max(ww) > 0, jnp.max(ww), 1)
    order = jnp.argsort(a)
    cum = jnp.cumsum(ww[order])
    # The weighted quantile at level k/B: the first sorted value whose cumulative weight
    # reaches it (NumPy's method="inverted_cdf"), so the cuts are values of the data; the
    # test B * cum >= k * total is exact for integer weights (no division by B or the total).
    reached = jnp.arange(1, num_bins, dtype=dtype) * cum[-1]
    at = jnp.searchsorted(num_bins * cum, reached, side="left")
    cuts = a[order][jnp.clip(at, 0, a.shape[0] - 1)]
    # Bin k holds the values in (cut_{k-1}, cut_k]: at least its share k / B of the weight
    # lies at or below cut_k, so equal weights give equal bins.
    bins = jnp.searchsorted(cuts, a, side="left")
    gap = demographic_parity_difference(y_pred, bins, num_groups=num_bins, weights=weights)
    return propagate_nan(gap, a, ww)  # a NaN attribute under jit sorts last: NaN, not a gap
