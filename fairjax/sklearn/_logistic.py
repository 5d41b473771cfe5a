"""scikit-learn logistic regression trained with a fairness penalty or to a fairness target."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fairjax import metrics, penalties, training
from fairjax._shapes import bucket
from fairjax.sklearn import _persist
from fairjax.sklearn._ferm import _encode_groups

__all__ = ["FairLogisticRegression"]

_CONSTRAINTS = ("demographic_parity", "equal_opportunity", "equalized_odds")


def _surrogate(constraint, logits, y, s, w, G, temperature):
    """Smooth gaps, shape (m,): DP (all rows), EO (positives), EOdds (positives, negatives)."""
    conditions = {
        "demographic_parity": ("all",),
        "equal_opportunity": ("positive",),
        "equalized_odds": ("positive", "negative"),
    }[constraint]
    return jnp.stack(
        [
            penalties.sigmoid_rate_difference(
                logits,
                s,
                num_groups=G,
                labels=y,
                weights=w,
                temperature=temperature,
                condition=c,
            )
            for c in conditions
        ]
    )


def _hard(constraint, logits, y, s, w, G):
    """Exact gaps of the decisions ``logits > 0``, shape (m,)."""
    pred = (logits > 0).astype(logits.dtype)
    if constraint == "demographic_parity":
        gaps = [metrics.demographic_parity_difference(pred, s, num_groups=G, weights=w)]
    else:
        gaps = [metrics.equal_opportunity_difference(y, pred, s, num_groups=G, weights=w)]
        if constraint == "equalized_odds":  # false-positive rates: the positives of 1 - y
            gaps.append(
                metrics.equal_opportunity_difference(1 - y, pred, s, num_groups=G, weights=w)
            )
    return jnp.stack(gaps)


@functools.partial(
    jax.jit,
    static_argnames=("constraint", "G", "mode", "steps", "lr", "mu_lr", "temperature", "alpha"),
)
def _fit_arrays(
    X, y, s, w, lam, target, *, constraint, G, mode, steps, lr, mu_lr, temperature, alpha
):
    """Full-batch training of ``{"w", "b"}`` on standardised X; one compiled program."""
    w_mean = w / jnp.sum(w)

    def logits(p, X):
        return X @ p["w"] + p["b"]

    def loss_fn(p, batch):
        X, y, _ = batch
        ce = training.binary_cross_entropy(logits(p, X), y)
        return jnp.sum(w_mean * ce) + alpha * jnp.sum(p["w"] ** 2)

    def surrogate(p, batch):
        X, y, s = batch
        return _surrogate(constraint, logits(p, X), y, s, w, G, temperature)

    def hard(p, batch):
        X, y, s = batch
        return _hard(constraint, logits(p, X), y, s, w, G)

    params = {"w": jnp.zeros(X.shape[1], X.dtype), "b": jnp.zeros((), X.dtype)}
    batch, opt = (X, y, s), optax.adam(lr)
    if mode == "penalty":
        step = training.make_step(
            training.penalized(loss_fn, lambda p, b: jnp.sum(surrogate(p, b)), lam), opt, jit=False
        )
        state = training.init_state(params, opt)
        state, _ = jax.lax.scan(lambda st, _: step(st, batch), state, None, length=steps)
        return state.params, jnp.zeros(surrogate(params, batch).shape, X.dtype)
    mu_opt = optax.sgd(mu_lr)
    step = training.make_constrained_step(
        loss_fn,
        surrogate,
        target=target,
        optimizer=opt,
        multiplier_optimizer=mu_opt,
        dual_constraint_fn=hard,
    )
    mu0 = jnp.zeros(surrogate(params, batch).shape, X.dtype)
    state = training.ConstrainedState(
        params, mu0, opt.init(params), mu_opt.init(mu0), jnp.zeros((), jnp.int32)
    )
    state, _ = jax.lax.scan(lambda st, _: step(st, batch), state, None, length=steps)
    return state.params, state.multiplier


class FairLogisticRegression(ClassifierMixin, BaseEstimator):
    r"""Logistic regression with a fairness penalty, or trained to a fairness target.

    With ``target=None`` it minimises the penalised objective

    .. math:: \sum_i \bar w_i\,\ell(y_i, f(x_i)) + \alpha \|w\|^2 + \lambda \sum_j
       \tilde C_j(f),

    and with ``target=ε`` it solves :math:`\min \sum_i \bar w_i \ell + \alpha\|w\|^2` subject to
    :math:`C_j(f) \le \varepsilon` by primal-dual training
    (:func:`fairjax.training.make_constrained_step`): Adam on the weights with the smooth gaps
    :math:`\tilde C_j` (:func:`fairjax.penalties.sigmoid_rate_difference`) in the Lagrangian,
    projected ascent on the multipliers driven by the exact gaps :math:`C_j` of the decisions
    on the training data. The gaps are, for ``constraint=``:

    - ``"demographic_parity"``: the selection-rate gap;
    - ``"equal_opportunity"``: the true-positive-rate gap;
    - ``"equalized_odds"``: the true- and false-positive-rate gaps (two constraints).

    The features are standardised internally (the fitted ``coef_``/``intercept_`` are on the
    original scale). Training is full-batch, ``max_iter`` steps in one compiled program; rows
    and features are padded (zero weight, zero columns) to a few sizes so that fits on data of
    nearby shapes reuse it.

    Args:
      constraint: which fairness criterion.
      lam: penalty weight :math:`\lambda \ge 0` (used when ``target`` is None).
      target: requested bound :math:`\varepsilon` on the gap(s), or None.
      alpha: L2 regularisation of the weights.
      temperature: temperature of the sigmoid relaxation, in logit units.
      max_iter: number of full-batch steps.
      learning_rate: Adam step size of the weights.
      multiplier_learning_rate: SGD step size of the multipliers.

    Attributes:
      classes_: the two labels; ``classes_[1]`` is the positive class.
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      coef_, intercept_: shape ``(1, d)`` and ``(1,)``.
      multiplier_: the final Lagrange multipliers (zeros without a target).
      n_iter_: number of optimizer steps run (``max_iter``).
      n_features_in_: number of features (and ``feature_names_in_`` for a DataFrame).

    Example:
      >>> import numpy as np
      >>> from fairjax.sklearn import FairLogisticRegression
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 400); X = rng.normal(size=(400, 3)) + s[:, None]
      >>> y = (X[:, 0] + rng.normal(size=400) > 0.5).astype(int)
      >>> clf = FairLogisticRegression(target=0.05, max_iter=300).fit(X, y, sensitive_features=s)
      >>> clf.predict(X).shape
      (400,)

    References:
      Cotter, Jiang, Sridharan, Two-Player Games for Efficient Non-Convex Constrained
      Optimization, ALT 2019; Agarwal et al., A Reductions Approach to Fair Classification,
      ICML 2018 (fairlearn's ExponentiatedGradient, the reference this is compared with).
    """

    def __init__(
        self,
        constraint: str = "demographic_parity",
        *,
        lam: float = 1.0,
        target: float | None = None,
        alpha: float = 1e-4,
        temperature: float = 0.5,
        max_iter: int = 1000,
        learning_rate: float = 0.05,
        multiplier_learning_rate: float = 0.2,
    ):
        self.constraint = constraint
        self.lam = lam
        self.target = target
        self.alpha = alpha
        self.temperature = temperature
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.multiplier_learning_rate = multiplier_learning_rate

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_params(self) -> None:
        if self.constraint not in _CONSTRAINTS:
            raise ValueError(
                f"`constraint` must be one of {_CONSTRAINTS}, got {self.constraint!r}."
            )
        if self.target is None and not float(self.lam) >= 0:
            raise ValueError(f"`lam` must be >= 0, got {self.lam!r}.")
        if self.target is not None and not float(self.target) >= 0:
            raise ValueError(f"`target` must be >= 0 or None, got {self.target!r}.")
        if not float(self.temperature) > 0:
            raise ValueError(f"`temperature` must be > 0, got {self.temperature!r}.")
        if not float(self.alpha) >= 0:
            raise ValueError(f"`alpha` must be >= 0, got {self.alpha!r}.")
        if int(self.max_iter) < 1:
            raise ValueError(f"`max_iter` must be >= 1, got {self.max_iter!r}.")

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the classifier.

        Args:
          X: features ``(n, d)`` (array or DataFrame).
          y: two labels; the larger (sorted) is the positive class.
          sensitive_features: ``(n,)`` or ``(n, k)`` sensitive values of any type (a Series or
            DataFrame too; several columns are intersected); None means one group.
          sample_weight: optional non-negative weights ``(n,)``.

        Returns:
          self.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type}."
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                "`y` holds 1 class; the classifier needs samples of both classes (one class "
                f"given: {self.classes_[0]!r})."
            )
        yb = (y == self.classes_[1]).astype(np.float32)
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        ids, self.groups_ = _encode_groups(sensitive_features, X.shape[0])
        mean = np.average(X, axis=0, weights=sw)
        scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=sw))
        scale = np.where(scale > 0, scale, 1.0)  # constant columns stay as they are
        # Shape buckets: rows of weight 0 and zero feature columns change nothing (a zero
        # column gets a zero gradient, its weight stays exactly 0 under Adam), but fits of
        # nearby sizes (CV folds, grid searches, estimator checks) reuse one compiled program.
        n, d = X.shape
        n_pad, d_pad = bucket(n), -(-d // 8) * 8
        Z = np.zeros((n_pad, d_pad), np.float32)
        Z[:n, :d] = (X - mean) / scale
        pad = n_pad - n
        params, mu = _fit_arrays(
            jnp.asarray(Z),
            jnp.asarray(np.pad(yb, (0, pad))),
            jnp.asarray(np.pad(np.asarray(ids, np.int32), (0, pad))),
            jnp.asarray(np.pad(sw, (0, pad)), jnp.float32),
            jnp.asarray(float(self.lam), jnp.float32),
            jnp.asarray(0.0 if self.target is None else float(self.target), jnp.float32),
            constraint=self.constraint,
            G=len(self.groups_),
            mode="penalty" if self.target is None else "target",
            steps=int(self.max_iter),
            lr=float(self.learning_rate),
            mu_lr=float(self.multiplier_learning_rate),
            temperature=float(self.temperature),
            alpha=float(self.alpha),
        )
        w = np.asarray(params["w"], np.float64)[:d] / scale
        self.coef_ = w[None, :]
        self.intercept_ = np.asarray([float(params["b"]) - float(w @ mean)])
        self.multiplier_ = np.asarray(mu, np.float64)
        self.n_iter_ = int(self.max_iter)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The logits ``X @ coef_ + intercept_``; positive means ``classes_[1]``. Shape ``(n,)``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape ``(n,)``."""
        check_is_fitted(self)
        return self.classes_[(self.decision_function(X) > 0).astype(int)]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n, 2)``."""
        p = 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -500, 500)))
        return np.stack([1.0 - p, p], axis=1)

    def save(self, path: str | os.PathLike) -> None:
        """Saves the fitted classifier to ``.npz`` with JSON metadata; no pickle.

        The file holds the constructor parameters (JSON) and every fitted attribute
        (``coef_``, ``intercept_``, ``classes_``, ``groups_``, ``multiplier_``, ...)
        as arrays, with the format version and a SHA-256 digest; :meth:`load` rebuilds an
        estimator whose outputs are identical.

        Args:
          path: destination file (NumPy appends ``.npz`` when missing).

        Raises:
          NotFittedError: the estimator is not fitted.
          TypeError: a parameter is not a number, string, bool or None.

        Example:
          >>> import os, tempfile
          >>> import numpy as np
          >>> from fairjax.sklearn import FairLogisticRegression
          >>> rng = np.random.default_rng(0)
          >>> s = rng.integers(0, 2, 200); X = rng.normal(size=(200, 3)) + s[:, None]
          >>> y = (X[:, 0] > 0.5).astype(int)
          >>> clf = FairLogisticRegression(max_iter=100).fit(X, y, sensitive_features=s)
          >>> path = os.path.join(tempfile.mkdtemp(), "logistic.npz")
          >>> clf.save(path)
          >>> loaded = FairLogisticRegression.load(path)
          >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
          True
        """
        _persist.save_estimator(path, self)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FairLogisticRegression:
        """Loads a classifier written by :meth:`save` (``allow_pickle=False``).

        Args:
          path: the ``.npz`` file.

        Returns:
          A fitted ``FairLogisticRegression``: same parameters, bit-equal fitted arrays, identical
          outputs.

        Raises:
          ValueError: the file is not a readable ``.npz``, holds another kind of state (e.g.
            another estimator's file), has a newer format version, or is corrupt or modified
            (its arrays or metadata do not match the recorded digest).
        """
        return _persist.load_estimator(cls, path)
