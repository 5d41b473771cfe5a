"""Fair regression by post-processing: transport each group's scores onto their barycenter.

Demographic parity for a real-valued predictor ``g`` asks that the law of ``g(X, S)`` given
``S = s`` be the same for every group ``s``. Among all such predictors, the one closest in squared
error to a given regressor ``f`` maps the score of a point of group ``s`` to the Wasserstein-2
barycenter of the groups' score distributions :math:`\\nu_s`:

.. math::

    g^*(x, s) = \\sum_{s'} p_{s'} \\, Q_{s'}\\big(F_s(f(x, s))\\big),

with :math:`F_s` the CDF and :math:`Q_s` the quantile function of :math:`\\nu_s` and
:math:`p_s = P(S = s)`; its excess risk over ``f`` is :math:`\\sum_s p_s W_2^2(\\nu_s, \\bar\\nu)`.
:func:`fit_barycenter` estimates the ingredients from unlabelled calibration scores (sorted,
jittered per-group samples) and :func:`apply_barycenter` evaluates the estimated map on new
scores, with partial fairness ``alpha``. The fitted state is an immutable PyTree: it passes
through ``jit`` and ``vmap`` and saves to ``.npz`` + JSON without pickle (:func:`save_barycenter`,
:func:`load_barycenter`).

Reference: Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
NeurIPS 2020 (arXiv:2006.07286), Algorithm 1 and Theorem 2.3.

Fair classification by post-processing: :func:`fit_thresholds` chooses group-specific randomised
thresholds on the scores of any binary classifier, the exact optimum of the linear program over
each group's ROC convex hull (:func:`roc_hull`) under demographic parity, TPR or FPR parity or
equalized odds, with a tolerance; :func:`apply_thresholds` gives expected or drawn decisions
(Hardt, Price, Srebro, NeurIPS 2016; Cruz, Hardt, ICLR 2024). :func:`fit_thresholds_streaming`
fits the same thresholds on data read in chunks, never gathered, equal to the in-memory fit
(the hull vertices found by counting passes over the scores' float32 keys).

Multiclass: :func:`fit_multiclass_parity` fits one offset per group and class on the class
probabilities of any K-class model, the most accurate rule whose class rates are equal across
groups up to a tolerance (a linear program); :func:`apply_multiclass_parity` decides
``argmax_k (p_k - offset)``.
"""

from fairjax.postprocessing._apply import apply_barycenter
from fairjax.postprocessing._distributed import fit_barycenter_sharded, fit_barycenter_streaming
from fairjax.postprocessing._fit import fit_barycenter
from fairjax.postprocessing._hull import ROCHull, roc_hull
from fairjax.postprocessing._multiclass import (
    MulticlassParityState,
    apply_multiclass_parity,
    fit_multiclass_parity,
)
from fairjax.postprocessing._persist import load_barycenter, save_barycenter
from fairjax.postprocessing._state import (
    FORMAT_VERSION,
    BarycenterState,
    SequentialBarycenterState,
)
from fairjax.postprocessing._thresholds import (
    THRESHOLD_CRITERIA,
    THRESHOLD_OBJECTIVES,
    ThresholdState,
    apply_thresholds,
    fit_thresholds,
)
from fairjax.postprocessing._thresholds_streaming import fit_thresholds_streaming

__all__ = [
    "FORMAT_VERSION",
    "THRESHOLD_CRITERIA",
    "THRESHOLD_OBJECTIVES",
    "BarycenterState",
    "MulticlassParityState",
    "ROCHull",
    "SequentialBarycenterState",
    "ThresholdState",
    "apply_barycenter",
    "apply_multiclass_parity",
    "apply_thresholds",
    "fit_barycenter",
    "fit_barycenter_sharded",
    "fit_barycenter_streaming",
    "fit_multiclass_parity",
    "fit_thresholds",
    "fit_thresholds_streaming",
    "load_barycenter",
    "roc_hull",
    "save_barycenter",
]
