"""Differentiable fairness penalties, one calling convention (DESIGN.md, convention 1).

``term(values, groups, *, num_groups, labels=None, weights=None, axis_name=None, ...)``; each
returns a scalar that can be added to a task loss and differentiated.
"""

from fairjax.penalties._continuous import hgr, hsic
from fairjax.penalties._fractional import fractional_rate_difference
from fairjax.penalties._mmd import mmd
from fairjax.penalties._multiclass import softmax_rate_difference
from fairjax.penalties._orthogonality import orthogonality
from fairjax.penalties._prejudice import prejudice_remover
from fairjax.penalties._sinkhorn import sinkhorn
from fairjax.penalties._surrogates import mean_difference, sigmoid_rate_difference
from fairjax.penalties._wasserstein import wasserstein

__all__ = [
    "fractional_rate_difference",
    "hgr",
    "hsic",
    "mean_difference",
    "mmd",
    "orthogonality",
    "prejudice_remover",
    "sigmoid_rate_difference",
    "sinkhorn",
    "softmax_rate_difference",
    "wasserstein",
]
