"""scikit-learn estimators over the pure fairjax core (needs scikit-learn:
``pip install "fairjax[sklearn]"``).

Estimators follow the sklearn contract: ``__init__`` only stores parameters, fitted attributes end
in ``_``, and the sensitive attribute is passed as ``sensitive_features=`` like fairlearn's
mitigators.
"""

try:
    import sklearn  # noqa: F401
except ImportError as err:  # the core needs no scikit-learn; its estimators do
    raise ImportError(
        'fairjax.sklearn needs scikit-learn: pip install "fairjax[sklearn]" (or scikit-learn).'
    ) from err

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
