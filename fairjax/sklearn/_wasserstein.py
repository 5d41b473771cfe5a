"""scikit-learn wrapper of the Wasserstein-barycenter post-processor (Chzhen et al., 2020)."""

from __future__ import annotations

import jax
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from fairjax import postprocessing
from fairjax.sklearn import _persist
from fairjax.sklearn._inputs import (
    check_sample_weight,
    encode_groups,
    require_sensitive_features,
)

__all__ = ["WassersteinFairRegressor"]


def _check_calibration_size(size, n: int, strata: int) -> None:
    """``calibration_size``: a fraction in (0, 1) or a number of rows in [strata, n - strata]
    (a split stratified by group needs a row of each group on both sides), named, where
    scikit-learn's split would speak of its own ``test_size``."""
    whole = isinstance(size, (int, np.integer)) and not isinstance(size, bool)
    if whole and strata <= size <= n - strata:
        return
    if not whole and isinstance(size, (float, np.floating)) and 0 < size < 1:
        return
    why = "; the split is stratified by group" if strata > 1 else ""
    raise ValueError(
        f"`calibration_size` must be a fraction in (0, 1) or a number of rows in [{strata}, "
        f"{n - strata}] (the rest trains the estimator{why}), got {size!r}."
    )


class WassersteinFairRegressor(_persist.BaseEstimatorSaveLoadMixin, RegressorMixin, BaseEstimator):
    r"""Regressor made fair (demographic parity) by mapping its outputs onto the barycenter.

    Wraps any regressor (or classifier, through its scores) ``f``. ``fit`` trains a clone of it
    on part of the data (unless it is already fitted) and fits
    :func:`fairjax.postprocessing.fit_barycenter` on the predictions for a held-out calibration
    part (labels are not needed there); ``predict`` returns

    .. math:: g_\alpha(x, s) = \alpha \sum_{s'} \hat p_{s'} \hat Q_{s'}(\hat F_s(f(x)))
              + (1 - \alpha) f(x),

    the optimal fair predictor in squared error for ``alpha=1``. The sensitive attribute is
    needed at prediction time (the paper's setting). Several columns of sensitive features give
    exact parity on their intersection. Without ``sensitive_features`` (at fit and predict)
    there is one group: the output is mapped onto its own calibrated distribution, as in
    scikit-learn's common estimator checks.
    :meth:`score` is the :math:`R^2` of these fair predictions; it takes the sensitive values
    too, so cross-validation routes them to it with scikit-learn's metadata routing (see
    :meth:`score` for an example with ``cross_val_score``).

    Args:
      estimator: a scikit-learn regressor or classifier, fitted or not.
      alpha: fairness strength in [0, 1] (1 = fully fair, 0 = ``estimator`` unchanged).
      jitter: half-width of the uniform jitter, in score units (ties it leaves are broken at
        random, see :func:`fairjax.postprocessing.apply_barycenter`).
      calibration_size: fraction (or number) of the rows of ``fit`` held out to calibrate the
        post-processor when the estimator must be trained; ignored when it is already fitted
        (then all rows calibrate).
      prefit: ``"auto"`` (use the estimator as it is if it is fitted), True or False.
      response_method: ``"auto"`` (``predict`` for regressors, ``predict_proba[:, 1]`` for
        classifiers), ``"predict"``, ``"predict_proba"`` or ``"decision_function"``.
      split: split the calibration data into CDF and quantile halves (the paper) or not.
      method: ``"exact"`` or ``"quantile_grid"``.
      random_state: int seed for the split of the data, the jitter and the halves.

    Attributes:
      estimator_: the fitted base estimator.
      state_: the fitted :class:`fairjax.postprocessing.BarycenterState`, on the scores
        standardised by ``score_shift_`` and ``score_scale_``.
      score_shift_, score_scale_: the mean and standard deviation of the calibration scores:
        the post-processor computes in float32 on ``(f(x) - shift) / scale``, and maps its
        output back; ``predict`` returns float64.
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      n_features_in_: number of features (and ``feature_names_in_`` for a DataFrame).

    Example:
      >>> import numpy as np
      >>> from sklearn.linear_model import Ridge
      >>> from fairjax.sklearn import WassersteinFairRegressor
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 2000); X = np.c_[rng.normal(size=2000), s]
      >>> y = X[:, 0] + 2 * s + 0.1 * rng.normal(size=2000)
      >>> reg = WassersteinFairRegressor(Ridge(), random_state=0)
      >>> reg = reg.fit(X, y, sensitive_features=s)
      >>> pred = reg.predict(X, sensitive_features=s)
      >>> bool(abs(pred[s == 0].mean() - pred[s == 1].mean()) < 0.1)
      True

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, *Fair regression with Wasserstein barycenters*,
      NeurIPS 2020 (arXiv:2006.07286).
    """

    # 2: the state is fitted on standardised scores (score_shift_, score_scale_); a reader of
    # version 1 would apply it to raw ones, so it refuses the file.
    _format_version = 2

    def __init__(
        self,
        estimator=None,
        *,
        alpha: float = 1.0,
        jitter: float = 1e-5,
        calibration_size: float | int = 0.5,
        prefit: bool | str = "auto",
        response_method: str = "auto",
        split: bool = True,
        method: str = "exact",
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.alpha = alpha
        self.jitter = jitter
        self.calibration_size = calibration_size
        self.prefit = prefit
        self.response_method = response_method
        self.split = split
        self.method = method
        self.random_state = random_state

    def _scores(self, estimator, X) -> np.ndarray:
        method = self.response_method
        if method == "auto":
            method = "predict_proba" if is_classifier(estimator) else "predict"
        if method not in ("predict", "predict_proba", "decision_function"):
            raise ValueError(f"`response_method` {self.response_method!r} is not supported.")
        out = np.asarray(getattr(estimator, method)(X), dtype=np.float64)
        if method == "predict_proba":
            out = out[:, 1]
        out = out.reshape(-1)
        if not np.isfinite(out).all():
            raise ValueError(
                f"the estimator's {method} holds {int(np.sum(~np.isfinite(out)))} NaN or "
                "infinite value(s); the post-processor needs finite scores."
            )
        return out

    def _standard(self, scores: np.ndarray) -> np.ndarray:
        """Scores on the post-processor's float32 scale: centred and scaled by the
        calibration scores' mean and standard deviation (float32 of raw outputs near 2e7
        kept 8 of their digits: an ``alpha=0`` prediction moved by 0.5)."""
        return ((scores - self.score_shift_) / self.score_scale_).astype(np.float32)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X goes to the base estimator as it is: sparse X is accepted when the base accepts it.
        tags.input_tags.sparse = (
            self.estimator is not None and get_tags(self.estimator).input_tags.sparse
        )
        return tags

    def _check_X(self, X, *, reset: bool):
        """Feature count and names; a 2-D array (any dtype, NaN allowed: the base estimator
        validates the values) or a scipy.sparse matrix (kept sparse, for a base estimator that
        takes one), unless X is a DataFrame, which is passed on as it is."""
        if not hasattr(X, "iloc"):
            # CSR or CSC (other formats are converted): the formats that rows can be taken from.
            X = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=("csr", "csc"))
        validate_data(self, X, skip_check_array=True, reset=reset)
        return X

    def _seed(self) -> int:
        if self.random_state is None:
            return 0
        if not isinstance(self.random_state, (int, np.integer)):
            raise TypeError("`random_state` must be an int or None.")
        return int(self.random_state)

    def fit(self, X, y=None, *, sensitive_features=None, sample_weight=None):
        """Fits the base estimator (unless prefit) and the post-processor.

        Args:
          X: features, shape ``(n, d)``.
          y: targets ``(n,)`` (only used to train the base estimator).
          sensitive_features: one value per row ``(n,)``, or several columns ``(n, k)``.
          sample_weight: optional weights ``(n,)`` for the calibration rows.

        Returns:
          self.
        """
        if not 0 <= float(self.alpha) <= 1:
            raise ValueError(f"`alpha` must lie in [0, 1], got {self.alpha!r}.")
        if self.estimator is None:
            raise ValueError("`estimator` is required: a scikit-learn regressor or classifier.")
        X = self._check_X(X, reset=True)
        if y is not None:
            y = column_or_1d(y, warn=True)
            check_consistent_length(X, y)
            if y.dtype.kind in "fc" and not np.isfinite(y).all():
                # Every row, before the split (the estimator would see only its own rows).
                raise ValueError("Input y contains NaN or infinity.")
        n = _num_samples(X)
        sample_weight = check_sample_weight(sample_weight, n)
        ids, self.groups_ = encode_groups(sensitive_features, n)
        prefit = self.prefit
        if prefit == "auto":
            try:
                check_is_fitted(self.estimator)
                prefit = True
            except NotFittedError:
                prefit = False
        rows = np.arange(n)
        if prefit:
            self.estimator_ = self.estimator
            cal = rows
        else:
            stratify = ids if np.bincount(ids).min() >= 2 else None
            _check_calibration_size(
                self.calibration_size, n, 1 if stratify is None else len(self.groups_)
            )
            train, cal = train_test_split(
                rows,
                test_size=self.calibration_size,
                random_state=self._seed(),
                stratify=stratify,
            )
            Xt = _safe_indexing(X, train)
            if y is None:
                raise ValueError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None "
                    "(`y` trains the unfitted `estimator`)."
                )
            self.estimator_ = clone(self.estimator).fit(Xt, np.asarray(y)[train])
        Xc = _safe_indexing(X, cal)
        weights = None if sample_weight is None else np.asarray(sample_weight, np.float32)[cal]
        scores = self._scores(self.estimator_, Xc)
        scale = float(np.std(scores))
        self.score_shift_ = float(np.mean(scores))
        self.score_scale_ = scale if np.isfinite(scale) and scale > 0 else 1.0
        self.state_ = postprocessing.fit_barycenter(
            self._standard(scores),
            ids[cal],
            num_groups=len(self.groups_),
            weights=weights,
            key=jax.random.key(self._seed()),
            jitter=float(self.jitter) / self.score_scale_,  # in score units, as documented
            split=self.split,
            method=self.method,
        )
        return self

    def predict(self, X, *, sensitive_features=None) -> np.ndarray:
        """Fair predictions ``g_alpha(x, s)``, shape ``(n,)``; reproducible for a fixed seed."""
        check_is_fitted(self, "state_")
        X = self._check_X(X, reset=False)
        ids, _ = encode_groups(sensitive_features, _num_samples(X), self.groups_)
        key = jax.random.fold_in(jax.random.key(self._seed()), 1)
        scores = self._scores(self.estimator_, X)
        if not hasattr(self, "score_shift_"):  # a file saved before the scores were scaled
            self.score_shift_, self.score_scale_ = 0.0, 1.0
        fair = postprocessing.apply_barycenter(self.state_, self._standard(scores), ids, key=key)
        fair = np.asarray(fair, np.float64) * self.score_scale_ + self.score_shift_
        # The mixture in float64, on the estimator's own outputs: alpha=0 returns them as they
        # are.
        alpha = float(self.alpha)
        return fair if alpha == 1 else (1 - alpha) * scores + alpha * fair

    def score(self, X, y, *, sensitive_features=None, sample_weight=None) -> float:
        r"""The coefficient of determination :math:`R^2` of the fair predictions.

        :math:`R^2 = 1 - \sum_i w_i (y_i - g_\alpha(x_i, s_i))^2 / \sum_i w_i (y_i -
        \bar y_w)^2` (``sklearn.metrics.r2_score``), with :math:`g_\alpha` from
        :meth:`predict`, which needs the rows' sensitive values. In cross-validation, they reach
        ``score`` through scikit-learn's metadata routing: enable it, request
        ``sensitive_features`` for ``fit`` and ``score``, and pass them in ``params``; each
        fold then gets its own rows' values (see the example).

        Args:
          X: features ``(n, d)``.
          y: true targets ``(n,)``.
          sensitive_features: the rows' sensitive values, as for :meth:`predict`.
          sample_weight: optional weights ``(n,)`` of the rows in :math:`R^2`.

        Returns:
          :math:`R^2` as a float (1 is perfect; it can be negative).

        Raises:
          ValueError: ``sensitive_features`` are missing although the regressor was fitted on
            several groups (without routing, a scorer cannot pass them).

        Example:
          >>> import numpy as np
          >>> import sklearn
          >>> from sklearn.linear_model import Ridge
          >>> from sklearn.model_selection import cross_val_score
          >>> from fairjax.sklearn import WassersteinFairRegressor
          >>> rng = np.random.default_rng(0)
          >>> s = rng.integers(0, 2, 600); X = np.c_[rng.normal(size=600), s]
          >>> y = X[:, 0] + 2 * s + 0.1 * rng.normal(size=600)
          >>> with sklearn.config_context(enable_metadata_routing=True):
          ...     reg = WassersteinFairRegressor(Ridge(), random_state=0)
          ...     reg = reg.set_fit_request(sensitive_features=True)
          ...     reg = reg.set_score_request(sensitive_features=True)
          ...     scores = cross_val_score(reg, X, y, cv=3, params={"sensitive_features": s})
          >>> scores.shape, bool(np.isfinite(scores).all())
          ((3,), True)
        """
        check_is_fitted(self, "state_")
        require_sensitive_features(sensitive_features, self.groups_, "regressor")
        pred = self.predict(X, sensitive_features=sensitive_features)
        return float(r2_score(y, pred, sample_weight=sample_weight))
