"""Penalties for a continuous sensitive attribute: HSIC and Mary et al.'s HGR bound."""

from __future__ import annotations

import jax

from fairjax.dependence import hgr_kde, hsic

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["hgr", "hsic"]


def hgr(
    scores: ArrayLike,
    attribute: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    estimator: str = "chi2",
    grid_size: int = 50,
    bandwidth: ArrayLike | None = None,
) -> Array:
    """Dependence of the scores on a continuous attribute, by Mary et al.'s HGR estimator.

    :func:`fairjax.dependence.hgr_kde` on the scores: by default the :math:`\\chi^2`
    divergence of their kernel-density joint law with ``attribute`` from the product of the
    marginals, an upper bound of :math:`\\mathrm{HGR}^2` that is smooth in the scores and 0
    only under independence; ``estimator="svd"`` gives the HGR estimate itself. Add
    ``lam * hgr(scores, age)`` to a loss (:func:`fairjax.training.penalized`) or bound it
    (:func:`fairjax.training.fit_constrained`).

    Args:
      scores: model outputs, shape ``(n,)``.
      attribute: the continuous sensitive attribute, shape ``(n,)``.
      weights: optional non-negative sample weights ``(n,)``.
      estimator: ``"chi2"`` or ``"svd"``.
      grid_size: points per axis of the density grid (static).
      bandwidth: kernel bandwidth in standard deviations (default Silverman's rule).

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax
      >>> from fairjax import penalties
      >>> age = jax.random.normal(jax.random.key(0), (500,))
      >>> scores = 0.8 * age + jax.random.normal(jax.random.key(1), (500,))
      >>> bool(penalties.hgr(scores, age) > penalties.hgr(scores[::-1], age))
      True

    References:
      Mary, Calauzènes, El Karoui, *Fairness-aware learning for continuous attributes and
      treatments*, ICML 2019.
    """
    return hgr_kde(
        scores,
        attribute,
        weights=weights,
        estimator=estimator,
        grid_size=grid_size,
        bandwidth=bandwidth,
    )
