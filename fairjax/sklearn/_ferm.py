"""scikit-learn estimator for FERM (Donini et al., NeurIPS 2018)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from fairjax import _validation as v
from fairjax import criteria, ferm, kernels
from fairjax._shapes import bucket
from fairjax.sklearn import _persist
from fairjax.sklearn._inputs import (
    BinaryClassifierInputs,
    check_criterion_rows,
    check_features,
    check_sample_weight,
    encode_groups,
)

__all__ = ["FERMClassifier"]


class FERMClassifier(
    _persist.SaveLoadMixin, BinaryClassifierInputs, ClassifierMixin, BaseEstimator
):
    r"""Fair empirical risk minimisation (FERM) classifier, linear or kernel.

    Minimises :math:`C\sum_i \ell(y_i f(x_i)) + \tfrac12\|f\|^2` (``C`` has the SVM meaning;
    :math:`\|f\|` is :math:`\|w\|` for the linear kernel and the RKHS norm for ``"rbf"``; the
    bias is not penalised) subject to the FERM constraint :math:`|\langle w, u_k\rangle| \le
    \varepsilon`: the mean decision value on the rows a rate of the criterion counts (the
    positive examples for ``criterion="equal_opportunity"``, all examples for
    ``"demographic_parity"``; see :mod:`fairjax.criteria`) differs by at most ``eps`` between
    the first group and each other group, on the training data. Trained with optax
    (projected Adam, :func:`fairjax.ferm.fit_linear`) or, for the exact RBF kernel with
    ``eps = 0`` and the hinge or squared hinge loss, by SMO on the projected kernel
    (:func:`fairjax.ferm.fit_kernel`).

    Args:
      kernel: ``"linear"`` or ``"rbf"`` (Gaussian, :math:`\exp(-\gamma\|x - y\|^2)`).
      eps: constraint tolerance >= 0.
      criterion: the fairness criterion (a name of :data:`fairjax.criteria.CRITERIA` that
        :func:`fairjax.ferm.fit_linear` supports): ``"equal_opportunity"`` (default),
        ``"demographic_parity"``, ``"false_positive_parity"`` or ``"equalized_odds"``.
      C: inverse regularisation strength > 0.
      loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"`` (the latter has
        ``predict_proba``).
      gamma: RBF coefficient, a float or ``"scale"`` (``1 / (d * X.var())``, as in sklearn's SVC).
      n_components: ``None`` for the exact kernel (all training points as landmarks), or the
        number of Nystrom landmarks for large data.
      max_iter: number of Adam steps (linear kernel; RBF with the logistic loss, ``eps > 0`` or
        ``n_components``).
      learning_rate: initial Adam step size.
      tol: stopping tolerance of the exact RBF solver (SMO, used for ``kernel="rbf"`` with
        ``eps = 0``, the hinge or squared hinge loss and ``n_components=None``).
      random_state: seed for the Nystrom landmarks.
      condition: deprecated spelling of ``criterion``: ``"positive"`` is
        ``"equal_opportunity"``, ``"all"`` is ``"demographic_parity"`` (warns in :meth:`fit`).

    ``X`` may be a scipy.sparse matrix (a ``ColumnTransformer`` with a ``OneHotEncoder``): it is
    made dense at the edge, so fitting holds ``n * d`` floats (8 bytes each on the host, 4 on
    the device) whatever the share of zeros; the solvers (Adam, SMO) are dense JAX programs.

    .. versionchanged:: 0.1.0
       ``condition=`` is now ``criterion=`` (the old keyword warns).

    Attributes:
      classes_: the two labels; ``classes_[1]`` is the positive class.
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      model_: the fitted :class:`fairjax.ferm.FERMModel`.
      coef_: for the linear kernel, the weights, shape ``(1, d)``.
      intercept_: for the linear kernel, the bias, shape ``(1,)``.
      n_features_in_: number of features.
      n_iter_: optimizer iterations run (Adam steps, or SMO iterations for exact RBF).

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
        criterion: str = "equal_opportunity",
        C: float = 1.0,
        loss: str = "hinge",
        gamma: float | str = "scale",
        n_components: int | None = None,
        max_iter: int = 1000,
        learning_rate: float = 0.1,
        tol: float = 1e-3,
        random_state: int | None = None,
        condition: str | None = None,
    ):
        self.kernel = kernel
        self.eps = eps
        self.criterion = criterion
        self.C = C
        self.loss = loss
        self.gamma = gamma
        self.n_components = n_components
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.tol = tol
        self.random_state = random_state
        self.condition = condition

    _multiclass_hint = (
        " For K classes, fit one FERM scorer per class: sklearn.multiclass.OneVsRestClassifier("
        "FERMClassifier().set_fit_request(sensitive_features=True)) with metadata routing "
        "(docs/ferm.md)."
    )

    def _criterion(self) -> criteria.Criterion:
        """The criterion, from ``criterion=`` or the deprecated ``condition=`` (warns)."""
        if self.condition is None:
            return criteria.get(self.criterion)
        given = None if self.criterion == "equal_opportunity" else self.criterion
        return criteria.resolve(
            given, where="FERMClassifier", default="equal_opportunity", condition=self.condition
        )

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the classifier.

        Args:
          X: features ``(n, d)``, dense or scipy.sparse (made dense: ``n * d`` floats in
            memory, see the class docstring).
          y: two labels (e.g. {0, 1} or {-1, +1}); the larger is the positive class.
          sensitive_features: ``(n,)`` or ``(n, k)`` sensitive values of any type (several
            columns are intersected); ``None`` means one group (no constraint).
          sample_weight: optional non-negative weights ``(n,)``.

        Returns:
          self.
        """
        if self.kernel not in ("linear", "rbf"):
            raise ValueError(f'`kernel` must be "linear" or "rbf", got {self.kernel!r}.')
        v.check_scalar(self.eps, "eps", nonnegative=True)
        v.check_scalar(self.C, "C", positive=True)
        v.check_scalar(self.learning_rate, "learning_rate", positive=True)
        if not (isinstance(self.gamma, str) and self.gamma == "scale"):
            if isinstance(self.gamma, str):
                raise ValueError(f"`gamma` must be > 0 or 'scale', got {self.gamma!r}.")
            v.check_scalar(self.gamma, "gamma", positive=True)
        v.check_scalar(self.max_iter, "max_iter", integer=True, low=1)
        v.check_scalar(self.tol, "tol", positive=True)
        v.check_scalar(self.n_components, "n_components", integer=True, low=1, optional=True)
        crit = self._criterion()
        X, y, class_ids = self._check_X_y(X, y)
        yb = (class_ids == 1).astype(np.int32)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])
        ids, self.groups_ = encode_groups(sensitive_features, X.shape[0])
        G = len(self.groups_)
        check_criterion_rows(
            crit, yb == 1, ids, sample_weight, groups=self.groups_, classes=self.classes_
        )
        Xj = jnp.asarray(X, jnp.float32)
        options = dict(
            num_groups=G,
            C=float(self.C),
            eps=float(self.eps),
            loss=self.loss,
            criterion=crit,
            weights=None if sample_weight is None else np.asarray(sample_weight, np.float32),
            num_steps=int(self.max_iter),
            learning_rate=float(self.learning_rate),
        )
        if self.kernel == "linear":
            n, d = X.shape
            sw = np.ones(n, np.float32) if sample_weight is None else options["weights"]
            # Shape buckets: rows with weight 0 and zero feature columns change nothing (a
            # zero column gets a zero gradient and a zero direction, its weight stays 0), but
            # fits of nearby sizes (CV folds, grid searches) then reuse one compiled program.
            n_pad, d_pad = bucket(n), -(-d // 8) * 8
            Xp = np.zeros((n_pad, d_pad), np.float32)
            Xp[:n, :d] = X
            pad = n_pad - n
            options["weights"] = np.concatenate([sw, np.zeros(pad, np.float32)])
            model = ferm.fit_linear(
                Xp, np.pad(yb, (0, pad)), np.pad(ids, (0, pad)).astype(np.int32), **options
            )
            self.model_ = model._replace(
                weights=model.weights[:d], directions=model.directions[:, :d]
            )
            self.coef_ = np.asarray(self.model_.weights, np.float64)[None, :]
            self.intercept_ = np.asarray([float(self.model_.bias)])
        else:
            gamma = self.gamma
            if gamma == "scale":
                var = X.var()
                gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
            self.gamma_ = float(gamma)
            key = jax.random.key(0 if self.random_state is None else int(self.random_state))
            self.model_ = ferm.fit_kernel(
                Xj,
                yb,
                ids,
                kernel=kernels.gaussian(bandwidth=(2.0 * float(gamma)) ** -0.5),
                num_landmarks=self.n_components,
                key=key,
                tol=float(self.tol),
                **options,
            )
        self.n_iter_ = int(self.model_.n_iter)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The decision values ``f(x)``; positive means ``classes_[1]``. Shape ``(n,)``."""
        check_is_fitted(self)
        X = check_features(self, X, reset=False)
        return np.asarray(ferm.decision_function(self.model_, jnp.asarray(X, jnp.float32)))

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape ``(n,)``."""
        positive = self.decision_function(X) > 0  # checks fitted-ness before classes_ is read
        return self.classes_[positive.astype(int)]

    def _has_proba(self) -> bool:
        return self.loss == "logistic"

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n, 2)`` (logistic loss only): ``sigmoid(f(x))``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.stack([1.0 - p, p], axis=1)
