"""scikit-learn wrappers of the post-processors: group thresholds (binary), class offsets (K)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from fairjax import criteria, postprocessing
from fairjax.sklearn import _persist
from fairjax.sklearn._inputs import (
    check_criterion_rows,
    check_sample_weight,
    encode_groups,
    require_sensitive_features,
)

__all__ = ["FairThresholdClassifier", "MulticlassParityClassifier"]

_STATE_FIELDS = ("lower", "upper", "probabilities", "fpr", "tpr", "positives", "negatives")


class _PostProcessingClassifier(
    _persist.BaseEstimatorSaveLoadMixin, ClassifierMixin, BaseEstimator
):
    """What the post-processing classifiers share: input checks and the base estimator's fit."""

    def _check_X(self, X, *, reset: bool):
        if not hasattr(X, "iloc"):
            X = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False)
        validate_data(self, X, skip_check_array=True, reset=reset)
        return X

    def _fit_inputs(self, X, y):
        """The checked ``(X, y, y's target type)`` of ``fit``; the base estimator is required."""
        if self.estimator is None:
            raise ValueError("`estimator` is required: a scikit-learn classifier.")
        X = self._check_X(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        return X, y, type_of_target(y, input_name="y", raise_unknown=True)

    def _fit_base(self, X, y, sample_weight) -> None:
        """``estimator_``: the given estimator (``prefit``) or a clone fitted on ``(X, y)``."""
        if self.prefit:
            try:
                check_is_fitted(self.estimator)
            except NotFittedError as err:
                raise ValueError("prefit=True needs a fitted `estimator`.") from err
            self.estimator_ = self.estimator
        else:
            kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
            self.estimator_ = clone(self.estimator).fit(X, y, **kwargs)

    def score(self, X, y, *, sensitive_features=None, sample_weight=None) -> float:
        """The (expected) accuracy of the fair decisions: the mean probability that the rule
        gives each row its true class (``predict_proba`` at ``y``), which is the accuracy of
        a deterministic rule and the expected accuracy of a randomised one (no draw, so the
        same on every call). It needs the rows' sensitive values: in cross-validation they
        reach ``score`` through scikit-learn's metadata routing (enable it, request
        ``sensitive_features`` for ``fit`` and ``score``, pass them in ``params``), as for
        :meth:`fairjax.sklearn.WassersteinFairRegressor.score`.

        Args:
          X: features ``(n, d)``.
          y: true labels ``(n,)``; a label not among ``classes_`` counts as a miss.
          sensitive_features: the rows' sensitive values, as for :meth:`predict`.
          sample_weight: optional weights ``(n,)`` of the rows.

        Returns:
          The accuracy, a float in [0, 1].

        Raises:
          ValueError: ``sensitive_features`` are missing although the classifier was fitted
            on several groups (a scorer without routing cannot pass them).
        """
        check_is_fitted(self)
        require_sensitive_features(sensitive_features, self.groups_, "classifier")
        proba = np.asarray(self.predict_proba(X, sensitive_features=sensitive_features), float)
        y = column_or_1d(y, warn=True)
        check_consistent_length(proba, y)
        index = np.clip(np.searchsorted(self.classes_, y), 0, len(self.classes_) - 1)
        known = self.classes_[index] == y
        if len(y) and not known.any():
            raise ValueError(
                f"`y` holds none of the classes {self.classes_.tolist()[:10]} (got e.g. "
                f"{y[0]!r}): labels of another type or coding?"
            )
        hit = np.where(known, proba[np.arange(len(y)), index], 0.0)
        weights = check_sample_weight(sample_weight, len(y))
        return float(np.average(hit, weights=weights))


class FairThresholdClassifier(_PostProcessingClassifier):
    r"""Binary classifier made fair by group-specific randomised thresholds on its scores.

    Wraps any scikit-learn classifier ``f``. ``fit`` trains a clone of it on ``(X, y)`` unless
    ``prefit`` (then ``estimator`` is used as it is), and fits
    :func:`fairjax.postprocessing.fit_thresholds` on its scores for the same rows: per group,
    the operating point on the ROC convex hull that maximises the objective subject to the
    criterion, every pairwise gap at most ``tolerance``. ``predict`` draws the randomised
    decisions; ``predict_proba`` gives their probabilities. The same interface as fairlearn's
    ``ThresholdOptimizer`` (``sensitive_features=`` at fit and predict, ``random_state=`` at
    predict); its optimum is exact instead of on a grid. The sensitive attribute is needed at
    prediction time.

    Args:
      estimator: a scikit-learn classifier with ``predict_proba`` or ``decision_function``.
      criterion: ``"demographic_parity"``, ``"equal_opportunity"`` (TPR parity),
        ``"false_positive_parity"`` or ``"equalized_odds"``; fairlearn's
        ``"true_positive_rate_parity"`` and ``"false_positive_rate_parity"`` are accepted.
      tolerance: largest allowed gap between two groups' rates (0: exact parity).
      prefit: use ``estimator`` as it is (it must be fitted).
      objective: ``"accuracy"``, ``"balanced_accuracy"`` or ``"weighted_errors"``.
      false_positive_cost: cost of a false positive (``"weighted_errors"``).
      false_negative_cost: cost of a false negative (``"weighted_errors"``).
      response_method: ``"auto"`` (``predict_proba[:, 1]``, else ``decision_function``),
        ``"predict_proba"`` or ``"decision_function"``.

    Attributes:
      estimator_: the fitted base estimator.
      classes_: the two class labels (the second is the positive one).
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      lower_, upper_, probabilities_: the fitted rule (see
        :class:`fairjax.postprocessing.ThresholdState`); ``state_`` assembles them.
      fpr_, tpr_, positives_, negatives_: each group's calibration rates and weighted counts.
      n_features_in_: number of features (and ``feature_names_in_`` for a DataFrame).

    Example:
      >>> import numpy as np
      >>> from sklearn.linear_model import LogisticRegression
      >>> from fairjax.sklearn import FairThresholdClassifier
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 2000); X = np.c_[rng.normal(size=2000), s]
      >>> y = (X[:, 0] + s + rng.normal(size=2000) > 0.5).astype(int)
      >>> clf = FairThresholdClassifier(LogisticRegression(), criterion="demographic_parity")
      >>> clf = clf.fit(X, y, sensitive_features=s)
      >>> p = clf.predict_proba(X, sensitive_features=s)[:, 1]
      >>> bool(abs(p[s == 0].mean() - p[s == 1].mean()) < 1e-4)
      True

    References:
      Hardt, Price, Srebro, *Equality of opportunity in supervised learning*, NeurIPS 2016;
      Cruz, Hardt, *Unprocessing seven years of algorithmic fairness*, ICLR 2024.
    """

    def __init__(
        self,
        estimator=None,
        *,
        criterion: str = "demographic_parity",
        tolerance: float = 0.0,
        prefit: bool = False,
        objective: str = "accuracy",
        false_positive_cost: float = 1.0,
        false_negative_cost: float = 1.0,
        response_method: str = "auto",
    ):
        self.estimator = estimator
        self.criterion = criterion
        self.tolerance = tolerance
        self.prefit = prefit
        self.objective = objective
        self.false_positive_cost = false_positive_cost
        self.false_negative_cost = false_negative_cost
        self.response_method = response_method

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a binary classifier
        return tags

    @property
    def state_(self) -> postprocessing.ThresholdState:
        """The fitted rule as a :class:`fairjax.postprocessing.ThresholdState`."""
        check_is_fitted(self, "lower_")
        return postprocessing.ThresholdState(*(getattr(self, f"{f}_") for f in _STATE_FIELDS))

    def _scores(self, X) -> np.ndarray:
        est, method = self.estimator_, self.response_method
        if method == "auto":
            method = "predict_proba" if hasattr(est, "predict_proba") else "decision_function"
        if method not in ("predict_proba", "decision_function"):
            raise ValueError(
                "`response_method` must be 'auto', 'predict_proba' or 'decision_function', "
                f"got {self.response_method!r}."
            )
        out = np.asarray(getattr(est, method)(X), dtype=np.float64)
        if method == "predict_proba":
            out = out[:, 1]
        return out.reshape(-1).astype(np.float32)

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the base estimator (unless ``prefit``) and the thresholds on ``(X, y)``.

        Args:
          X: features ``(n, d)`` (array or DataFrame).
          y: binary labels ``(n,)`` (any two values; the larger is positive).
          sensitive_features: one value per row ``(n,)``, or several columns ``(n, k)``
            (their intersection).
          sample_weight: optional weights ``(n,)``.

        Returns:
          self.
        """
        criterion = criteria.FAIRLEARN_NAMES.get(self.criterion, self.criterion)
        X, y, y_type = self._fit_inputs(X, y)
        if y_type not in ("binary",):
            raise ValueError(
                f"Only binary classification is supported (group thresholds on one score). "
                f"The type of the target is {y_type}. For K classes, "
                "fairjax.sklearn.MulticlassParityClassifier post-processes any classifier's "
                "probabilities to demographic parity, and fairjax.sklearn.FairLogisticRegression "
                "bounds every class's gap in training."
            )
        self.classes_, labels = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            k = len(self.classes_)
            raise ValueError(
                f"`y` must hold two classes (binary classification), got {k} class"
                f"{'es' if k != 1 else ''}."
            )
        n = _num_samples(X)
        sample_weight = check_sample_weight(sample_weight, n)
        ids, self.groups_ = encode_groups(sensitive_features, n)
        check_criterion_rows(
            criteria.get(criterion, allowed=postprocessing.THRESHOLD_CRITERIA),
            labels == 1, ids, sample_weight, groups=self.groups_, classes=self.classes_,
        )  # fmt: skip
        self._fit_base(X, y, sample_weight)
        state = postprocessing.fit_thresholds(
            self._scores(X),
            labels.astype(np.int32),
            ids,
            num_groups=len(self.groups_),
            criterion=criterion,
            tolerance=self.tolerance,
            objective=self.objective,
            weights=None if sample_weight is None else sample_weight.astype(np.float32),
            false_positive_cost=self.false_positive_cost,
            false_negative_cost=self.false_negative_cost,
        )
        for field in _STATE_FIELDS:
            setattr(self, f"{field}_", getattr(state, field))
        return self

    def _positive_probability(self, X, sensitive_features) -> jax.Array:
        check_is_fitted(self, "lower_")
        X = self._check_X(X, reset=False)
        ids, _ = encode_groups(sensitive_features, _num_samples(X), self.groups_)
        return postprocessing.apply_thresholds(self.state_, self._scores(X), ids)

    def predict_proba(self, X, *, sensitive_features=None) -> np.ndarray:
        """Probabilities of the two classes under the randomised rule, shape ``(n, 2)``."""
        p = np.asarray(self._positive_probability(X, sensitive_features), np.float64)
        return np.c_[1 - p, p]

    def predict(self, X, *, sensitive_features=None, random_state=None) -> np.ndarray:
        """Randomised decisions (class labels), drawn by NumPy's generator seeded with
        ``random_state`` (an int seed; None: a fresh seed from NumPy's global generator, as
        fairlearn does).

        .. versionchanged:: 0.1.0
           Drawn by NumPy (``np.random.default_rng(random_state)``), not ``jax.random``: no
           program compiled for each new number of rows.
        """
        p = np.asarray(self._positive_probability(X, sensitive_features))
        if random_state is None:
            random_state = int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002 (fairlearn's)
        if isinstance(random_state, np.random.RandomState):
            random_state = int(random_state.randint(0, 2**31 - 1))
        if isinstance(random_state, (bool, np.bool_)) or not isinstance(
            random_state, (int, np.integer)
        ):
            raise TypeError("`random_state` must be an int, a RandomState or None.")
        u = np.random.default_rng(int(random_state)).random(p.shape)
        return self.classes_[(u < p).astype(int)]

    def _after_load(self, path: str | os.PathLike) -> None:
        """The fitted rule's arrays back as JAX arrays (the file holds them as NumPy)."""
        for field in _STATE_FIELDS:
            value = getattr(self, f"{field}_", None)
            if not isinstance(value, jax.Array):
                raise ValueError(f"{os.fspath(path)!r}: the fitted `{field}_` is missing.")
            setattr(self, f"{field}_", jnp.asarray(value))


class MulticlassParityClassifier(_PostProcessingClassifier):
    r"""K-class classifier made fair (demographic parity) by class offsets per group.

    Wraps any scikit-learn classifier with ``predict_proba``. ``fit`` trains a clone of it on
    ``(X, y)`` unless ``prefit``, and fits :func:`fairjax.postprocessing.fit_multiclass_parity`
    on its class probabilities for the same rows: one offset per group and class, the most
    accurate rule (in expectation under the probabilities) whose rate of every class differs
    between two groups by at most ``tolerance``. ``predict`` decides
    ``argmax_k (p_k(x) - offset[group, k])``; ``predict_proba`` gives those decisions one-hot.
    Fit on rows the base estimator did not train on (``prefit=True`` with a calibration split)
    for rates that carry over to new data. The sensitive attribute is needed at prediction
    time. Two classes work too (the rule is then a threshold per group, deterministic).

    Args:
      estimator: a scikit-learn classifier with ``predict_proba``.
      tolerance: largest allowed gap between two groups' rates of a class (0: exact parity).
      prefit: use ``estimator`` as it is (it must be fitted).

    Attributes:
      estimator_: the fitted base estimator.
      classes_: the class labels (the order of ``predict_proba``'s columns).
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      offsets_: the fitted offsets ``(G, K)``; class_rates_: each group's class rates on the
        fitted rows ``(G, K)``; ``state_`` assembles them.
      n_features_in_: number of features (and ``feature_names_in_`` for a DataFrame).

    Example:
      >>> import numpy as np
      >>> from sklearn.linear_model import LogisticRegression
      >>> from fairjax.sklearn import MulticlassParityClassifier
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 3000); X = np.c_[rng.normal(size=(3000, 2)), s]
      >>> y = np.digitize(X[:, 0] + s + 0.5 * rng.normal(size=3000), [0.0, 1.0])  # 3 classes
      >>> clf = MulticlassParityClassifier(LogisticRegression()).fit(X, y, sensitive_features=s)
      >>> d = clf.predict_proba(X, sensitive_features=s)
      >>> bool(np.abs(d[s == 0].mean(0) - d[s == 1].mean(0)).max() < 0.01)
      True

    References:
      Xian, Yin, Zhao, *Fair and optimal classification via post-processing*, ICML 2023;
      Denis, Elie, Hebiri, Hu, *Fairness guarantees in multi-class classification with
      demographic parity*, JMLR 2024.
    """

    def __init__(self, estimator=None, *, tolerance: float = 0.0, prefit: bool = False):
        self.estimator = estimator
        self.tolerance = tolerance
        self.prefit = prefit

    @property
    def state_(self) -> postprocessing.MulticlassParityState:
        """The fitted rule as a :class:`fairjax.postprocessing.MulticlassParityState`."""
        check_is_fitted(self, "offsets_")
        return postprocessing.MulticlassParityState(
            self.offsets_, self.class_rates_, float(self.tolerance)
        )

    def _probabilities(self, X) -> np.ndarray:
        if not hasattr(self.estimator_, "predict_proba"):
            raise ValueError("`estimator` must have predict_proba (class probabilities).")
        return np.asarray(self.estimator_.predict_proba(X), np.float32)

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the base estimator (unless ``prefit``) and the offsets on ``(X, y)``.

        Args:
          X: features ``(n, d)`` (array or DataFrame).
          y: class labels ``(n,)`` (two or more classes).
          sensitive_features: as in :meth:`FairThresholdClassifier.fit`.
          sample_weight: optional weights ``(n,)``.

        Returns:
          self.
        """
        X, y, y_type = self._fit_inputs(X, y)
        if y_type not in ("binary", "multiclass"):
            raise ValueError(f"`y` must hold class labels, got a target of type {y_type}.")
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("`y` must hold at least two classes, got 1 class.")
        n = _num_samples(X)
        sample_weight = check_sample_weight(sample_weight, n)
        ids, self.groups_ = encode_groups(sensitive_features, n)
        self._fit_base(X, y, sample_weight)
        base_classes = getattr(self.estimator_, "classes_", None)
        if base_classes is None or not np.array_equal(np.asarray(base_classes), self.classes_):
            raise ValueError(
                "the base estimator's classes_ differ from the labels of `y`: fit it on the "
                "same classes (prefit=True) or let fit train it."
            )
        state = postprocessing.fit_multiclass_parity(
            self._probabilities(X),
            ids,
            num_groups=len(self.groups_),
            tolerance=self.tolerance,
            weights=sample_weight,
        )
        self.offsets_, self.class_rates_ = state.offsets, state.class_rates
        return self

    def predict_proba(self, X, *, sensitive_features=None) -> np.ndarray:
        """The decisions one-hot, shape ``(n, K)`` (the rule is deterministic)."""
        check_is_fitted(self, "offsets_")
        X = self._check_X(X, reset=False)
        ids, _ = encode_groups(sensitive_features, _num_samples(X), self.groups_)
        d = postprocessing.apply_multiclass_parity(self.state_, self._probabilities(X), ids)
        return np.asarray(d, np.float64)

    def predict(self, X, *, sensitive_features=None) -> np.ndarray:
        """The decided class labels ``(n,)``."""
        d = self.predict_proba(X, sensitive_features=sensitive_features)
        return self.classes_[d.argmax(axis=1)]

    def _after_load(self, path: str | os.PathLike) -> None:
        """The fitted offsets back as JAX arrays (the file holds them as NumPy)."""
        for field in ("offsets", "class_rates"):
            value = getattr(self, f"{field}_", None)
            if value is None:
                raise ValueError(f"{os.fspath(path)!r}: the fitted `{field}_` is missing.")
            setattr(self, f"{field}_", jnp.asarray(value))
