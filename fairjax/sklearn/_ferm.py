"""scikit-learn estimator for FERM (Donini et al., NeurIPS 2018)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from fairjax import ferm, kernels

__all__ = ["FERMClassifier"]


def _encode_groups(sensitive_features, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids and the unique values (rows) of one or several sensitive columns."""
    if sensitive_features is None:
        return np.zeros(n, np.int32), np.array([None], dtype=object)
    s = np.asarray(sensitive_features, dtype=object)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim not in (1, 2) or s.shape[0] != n:
        raise ValueError(
            f"`sensitive_features` must have one row per sample of X ({n}), got shape {s.shape}."
        )
    if s.ndim == 2:  # several attributes: their intersection
        s = np.array(["|".join(map(str, row)) for row in s], dtype=object)
    values, ids = np.unique(s.astype(str), return_inverse=True)
    return ids.astype(np.int32), values


class FERMClassifier(ClassifierMixin, BaseEstimator):
    r"""Fair empirical risk minimisation (FERM) classifier, linear or kernel.

    Minimises :math:`C\sum_i \ell(y_i f(x_i)) + \tfrac12\|f\|^2` (``C`` has the SVM meaning;
    :math:`\|f\|` is :math:`\|w\|` for the linear kernel and the RKHS norm for ``"rbf"``; the
    bias is not penalised) subject to the FERM constraint :math:`|\langle w, u_k\rangle| \le
    \varepsilon`: the mean decision value on the positive examples (``condition="positive"``,
    equal opportunity) or on all examples (``condition="all"``) differs by at most ``eps``
    between the first group and each other group, on the training data. Trained with optax
    (projected Adam, :func:`fairjax.ferm.fit_linear` / :func:`fairjax.ferm.fit_kernel`).

    Args:
      kernel: ``"linear"`` or ``"rbf"`` (Gaussian, :math:`\exp(-\gamma\|x - y\|^2)`).
      eps: constraint tolerance >= 0.
      condition: ``"positive"`` or ``"all"``.
      C: inverse regularisation strength > 0.
      loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"`` (the latter has
        ``predict_proba``).
      gamma: RBF coefficient, a float or ``"scale"`` (``1 / (d * X.var())``, as in sklearn's SVC).
      n_components: ``None`` for the exact kernel (all training points as landmarks), or the
        number of Nystrom landmarks for large data.
      max_iter: number of optimizer steps.
      learning_rate: initial Adam step size.
      random_state: seed for the Nystrom landmarks.

    Attributes:
      classes_: the two labels; ``classes_[1]`` is the positive class.
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      model_: the fitted :class:`fairjax.ferm.FERMModel`.
      coef_, intercept_: for the linear kernel, shape ``(1, d)`` and ``(1,)``.
      n_features_in_: number of features.

    Example:
      >>> import numpy as np
      >>> from fairjax.sklearn import FERMClassifier
      >>> rng = np.random.default_rng(0)
      >>> X = rng.normal(size=(200, 3)); s = (X[:, 0] > 0).astype(int)
      >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
      >>> clf = FERMClassifier(C=1.0, max_iter=300).fit(X, y, sensitive_features=s)
      >>> clf.predict(X).shape
      (200,)

    References:
      Donini, Oneto, Ben-David, Shawe-Taylor, Pontil, Empirical Risk Minimization under Fairness
      Constraints, NeurIPS 2018 (arXiv:1802.08626).
    """

    def __init__(
        self,
        kernel: str = "linear",
        eps: float = 0.0,
        condition: str = "positive",
        C: float = 1.0,
        loss: str = "hinge",
        gamma: float | str = "scale",
        n_components: int | None = None,
        max_iter: int = 1000,
        learning_rate: float = 0.1,
        random_state: int | None = None,
    ):
        self.kernel = kernel
        self.eps = eps
        self.condition = condition
        self.C = C
        self.loss = loss
        self.gamma = gamma
        self.n_components = n_components
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the classifier.

        Args:
          X: features ``(n, d)``.
          y: two labels (e.g. {0, 1} or {-1, +1}); the larger is the positive class.
          sensitive_features: ``(n,)`` or ``(n, k)`` sensitive values of any type (several
            columns are intersected); ``None`` means one group (no constraint).
          sample_weight: optional non-negative weights ``(n,)``.

        Returns:
          self.
        """
        if self.kernel not in ("linear", "rbf"):
            raise ValueError(f'`kernel` must be "linear" or "rbf", got {self.kernel!r}.')
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"FERMClassifier is binary: `y` has {len(self.classes_)} classes.")
        yb = (y == self.classes_[1]).astype(np.int32)
        ids, self.groups_ = _encode_groups(sensitive_features, X.shape[0])
        G = len(self.groups_)
        Xj = jnp.asarray(X, jnp.float32)
        options = dict(
            num_groups=G,
            C=float(self.C),
            eps=float(self.eps),
            loss=self.loss,
            condition=self.condition,
            weights=None if sample_weight is None else np.asarray(sample_weight, np.float32),
            steps=int(self.max_iter),
            learning_rate=float(self.learning_rate),
        )
        if self.kernel == "linear":
            self.model_ = ferm.fit_linear(Xj, yb, ids, **options)
            self.coef_ = np.asarray(self.model_.weights, np.float64)[None, :]
            self.intercept_ = np.asarray([float(self.model_.bias)])
        else:
            gamma = self.gamma
            if gamma == "scale":
                var = X.var()
                gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
            if not float(gamma) > 0:
                raise ValueError(f"`gamma` must be > 0 or 'scale', got {self.gamma!r}.")
            self.gamma_ = float(gamma)
            key = jax.random.key(0 if self.random_state is None else int(self.random_state))
            self.model_ = ferm.fit_kernel(
                Xj,
                yb,
                ids,
                kernel=kernels.gaussian(bandwidth=(2.0 * float(gamma)) ** -0.5),
                num_landmarks=self.n_components,
                key=key,
                **options,
            )
        return self

    def decision_function(self, X) -> np.ndarray:
        """The decision values ``f(x)``; positive means ``classes_[1]``. Shape ``(n,)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(ferm.decision_function(self.model_, jnp.asarray(X, jnp.float32)))

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape ``(n,)``."""
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def _has_proba(self) -> bool:
        return self.loss == "logistic"

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, 2)`` (logistic loss only): ``sigmoid(f(x))``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.stack([1.0 - p, p], axis=1)
