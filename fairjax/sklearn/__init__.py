"""scikit-learn estimators over the pure fairjax core (needs the optional scikit-learn extra).

Estimators follow the sklearn contract: ``__init__`` only stores parameters, fitted attributes end
in ``_``, and the sensitive attribute is passed as ``sensitive_features=`` like fairlearn's
mitigators.
"""

# Each estimator module adds its re-export here (one line each) and extends __all__.
from fairjax.sklearn._ferm import FERMClassifier
from fairjax.sklearn._logistic import FairLogisticRegression
from fairjax.sklearn._wasserstein import WassersteinFairRegressor

__all__: list[str] = []
__all__ += ["FERMClassifier"]
__all__ += ["FairLogisticRegression"]
__all__ += ["WassersteinFairRegressor"]
