"""scikit-learn estimators over the pure fairjax core (needs the optional scikit-learn extra).

Estimators follow the sklearn contract: ``__init__`` only stores parameters, fitted attributes end
in ``_``, and the sensitive attribute is passed as ``sensitive_features=`` like fairlearn's
mitigators.
"""

from fairjax.sklearn._bounded import BoundedGroupLossRegressor
from fairjax.sklearn._ferm import FERMClassifier
from fairjax.sklearn._logistic import FairLogisticRegression
from fairjax.sklearn._threshold import FairThresholdClassifier, MulticlassParityClassifier
from fairjax.sklearn._wasserstein import WassersteinFairRegressor

__all__ = [
    "BoundedGroupLossRegressor",
    "FERMClassifier",
    "FairLogisticRegression",
    "FairThresholdClassifier",
    "MulticlassParityClassifier",
    "WassersteinFairRegressor",
]
