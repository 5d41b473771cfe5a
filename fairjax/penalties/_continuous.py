"""Penalties for a continuous sensitive attribute: HSIC and Mary et al.'s HGR bound.

Both are the estimators of :mod:`fairjax.dependence`, differentiable in the scores:
``penalties.hsic`` is :func:`fairjax.dependence.hsic` and ``penalties.hgr`` is
:func:`fairjax.dependence.hgr_kde` (by default the chi-square bound of HGR, smooth and 0 only
under independence). Add ``lam * penalties.hgr(logits, age)`` to a loss
(:func:`fairjax.training.penalized`) or bound it (:func:`fairjax.training.fit_constrained`).
"""

from __future__ import annotations

from fairjax.dependence import hgr_kde as hgr
from fairjax.dependence import hsic

__all__ = ["hgr", "hsic"]
