"""scikit-learn linear regression trained to bounded group loss (Agarwal, Dudík, Wu, 2019)."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import optax
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d

from fairjax import _loop, groups, losses, training
from fairjax import _validation as v
from fairjax.sklearn import _persist
from fairjax.sklearn._inputs import (
    check_features,
    check_sample_weight,
    encode_groups,
    standardization,
)

__all__ = ["BoundedGroupLossRegressor"]

_LOSSES = {"squared": losses.squared, "absolute": lambda out, y: jnp.abs(out - y)}


def _linear(p, batch):
    """The linear model on a batch ``(X, y, membership, weights)``: ``X w + b``."""
    return batch[0] @ p["w"] + p["b"]


@functools.lru_cache(maxsize=16)
def _setting(loss: str, alpha: float, lr: float, mu_lr: float):
    """The objective, the per-group constraint and the optimizers of one setting, one object
    each (equal settings give equal functions, as the compiled programs are keyed on them)."""
    error = _LOSSES[loss]

    def objective(p, batch):  # the weighted mean loss plus the ridge term
        _, y, _, w = batch
        return jnp.sum(w * error(_linear(p, batch), y)) / jnp.sum(w) + alpha * jnp.sum(p["w"] ** 2)

    def group_losses(p, batch):  # (G,): one constraint, and one multiplier, per group
        _, y, member, w = batch
        return groups.group_means(error(_linear(p, batch), y), member, weights=w)

    return objective, group_losses, optax.adam(lr), optax.sgd(mu_lr)


def _least_squares(Z, y, w, alpha):
    """Weighted ridge regression ``(w, b)`` on standardised ``Z`` (the unconstrained fit, and
    the constrained fit's start)."""
    sw = np.sqrt(w / w.sum())
    A = np.c_[Z, np.ones(len(Z))] * sw[:, None]
    penalty = np.sqrt(alpha) * np.eye(Z.shape[1] + 1)[:-1]  # no penalty on the intercept
    sol = np.linalg.lstsq(np.r_[A, penalty], np.r_[y * sw, np.zeros(Z.shape[1])], rcond=None)[0]
    return sol[:-1], sol[-1]


class BoundedGroupLossRegressor(_persist.SaveLoadMixin, RegressorMixin, BaseEstimator):
    r"""Linear regression whose every group's mean loss is at most a bound.

    Bounded group loss (Agarwal, Dudík, Wu, 2019): with :math:`\ell` the squared
    (``loss="squared"``, each group's MSE) or the absolute error (``"absolute"``, its MAE),

    .. math::

        \min_{w, b} \; \sum_i \bar w_i\, \ell(x_i^\top w + b, y_i) + \alpha \|w\|^2
        \quad \text{s.t.} \quad
        L_g = \frac{\sum_{i \in g} w_i\, \ell(x_i^\top w + b, y_i)}{\sum_{i \in g} w_i}
        \le \zeta \;\; \text{for every group } g,

    with :math:`\zeta` = ``target`` in the units of the loss (squared units of ``y`` for the
    MSE). Trained by :func:`fairjax.training.fit_constrained`: Adam on the weights, projected
    SGD ascent on one multiplier per group, ``max_iter`` steps in one compiled program from
    the weighted least-squares solution, returning the feasible iterate of lowest loss
    (``iterate="best"``, a relative ``tolerance`` of ``1e-3`` on the bound). Features and
    target are standardised internally (the fitted ``coef_``/``intercept_`` are on the original
    scale). A bound below what any linear model reaches cannot be met: the multipliers then
    push every group's loss down, towards the minimax model (``target=0`` asks for it), and
    ``satisfied_`` is False. With ``target=None`` there is no bound: the weighted (ridge)
    least-squares fit. The sensitive attribute is needed to fit, not to predict.

    Args:
      target: the bound :math:`\zeta \ge 0` on each group's mean loss, or None (no bound).
      loss: ``"squared"`` or ``"absolute"``.
      alpha: ridge penalty on the standardised weights.
      max_iter: number of primal-dual steps.
      learning_rate: Adam step size of the weights.
      multiplier_learning_rate: SGD step size of the multipliers.

    Attributes:
      coef_: the weights, shape ``(d,)``.
      intercept_: the bias (a float).
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      group_loss_: each group's mean loss on the training data, shape ``(G,)``.
      multiplier_: the final multiplier of each group (standardised units), shape ``(G,)``.
      satisfied_: whether every group's training loss is within the bound (and tolerance).
      n_iter_: number of steps run (1 without a bound: one least-squares solve).
      n_features_in_: number of features (and ``feature_names_in_`` for a DataFrame).

    Example:
      >>> import numpy as np
      >>> from fairjax.sklearn import BoundedGroupLossRegressor
      >>> rng = np.random.default_rng(0)
      >>> s = (rng.uniform(size=1000) < 0.2).astype(int); X = rng.normal(size=(1000, 2))
      >>> y = X @ [1.0, 0.5] + s * X[:, 0] + 0.2 * rng.normal(size=1000)
      >>> free = BoundedGroupLossRegressor().fit(X, y, sensitive_features=s)
      >>> bound = 0.8 * free.group_loss_.max()
      >>> reg = BoundedGroupLossRegressor(target=bound).fit(X, y, sensitive_features=s)
      >>> bool(reg.group_loss_.max() <= bound * 1.001), reg.satisfied_
      (True, True)

    References:
      Agarwal, Dudík, Wu, *Fair regression: quantitative definitions and reduction-based
      algorithms*, ICML 2019.
    """

    def __init__(
        self,
        target: float | None = None,
        *,
        loss: str = "squared",
        alpha: float = 0.0,
        max_iter: int = 2000,
        learning_rate: float = 0.01,
        multiplier_learning_rate: float = 0.1,
    ):
        self.target = target
        self.loss = loss
        self.alpha = alpha
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.multiplier_learning_rate = multiplier_learning_rate

    def _check_params(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"`loss` must be one of {tuple(_LOSSES)}, got {self.loss!r}.")
        v.check_scalar(self.target, "target", nonnegative=True, optional=True)
        v.check_scalar(self.alpha, "alpha", nonnegative=True)
        v.check_scalar(self.max_iter, "max_iter", integer=True, low=1)
        v.check_scalar(self.learning_rate, "learning_rate", positive=True)
        v.check_scalar(self.multiplier_learning_rate, "multiplier_learning_rate", positive=True)

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the regressor.

        Args:
          X: features ``(n, d)`` (array, DataFrame or scipy.sparse, made dense).
          y: real targets ``(n,)``.
          sensitive_features: ``(n,)`` or ``(n, k)`` sensitive values of any type (several
            columns are intersected); None means one group.
          sample_weight: optional non-negative weights ``(n,)``.

        Returns:
          self.
        """
        self._check_params()
        X, y = check_features(self, X, y, reset=True)
        y = column_or_1d(y, warn=True).astype(np.float64)
        sw = check_sample_weight(sample_weight, X.shape[0])
        sw = np.ones(X.shape[0]) if sw is None else sw
        ids, self.groups_ = encode_groups(sensitive_features, X.shape[0])
        G = len(self.groups_)
        mean, scale = standardization(X, sw)
        y_mean = np.average(y, weights=sw)
        y_scale = float(np.sqrt(np.average((y - y_mean) ** 2, weights=sw))) or 1.0
        Z, yz = (X - mean) / scale, (y - y_mean) / y_scale
        w_z, b_z = _least_squares(Z, yz, sw, float(self.alpha))  # float64
        unit = y_scale**2 if self.loss == "squared" else y_scale  # the loss's unit
        member = np.eye(G, dtype=np.float32)[ids]
        batch = tuple(jnp.asarray(a, jnp.float32) for a in (Z, yz, member, sw))
        setting = _setting(
            self.loss, float(self.alpha), float(self.learning_rate),
            float(self.multiplier_learning_rate),
        )  # fmt: skip
        self.multiplier_, self.n_iter_ = np.zeros(G), 1  # without a bound: one solve
        if self.target is not None:
            params = {"w": jnp.asarray(w_z, jnp.float32), "b": jnp.asarray(b_z, jnp.float32)}
            bound = float(self.target) / unit
            objective, group_losses, opt, mu_opt = setting
            res = training.fit_constrained(
                objective,
                group_losses,
                params,
                batch,
                target=jnp.full((G,), bound, jnp.float32),
                optimizer=opt,
                multiplier_optimizer=mu_opt,
                num_steps=int(self.max_iter),
                iterate="best",
                tolerance=1e-3 * bound,
            )
            _loop.finite("sklearn.BoundedGroupLossRegressor.fit", res.params)
            w_z, b_z = np.asarray(res.params["w"], np.float64), float(res.params["b"])
            self.multiplier_ = np.asarray(res.state.multiplier, np.float64)
            self.n_iter_ = int(self.max_iter)
        w = w_z * y_scale / scale
        self.coef_ = w
        self.intercept_ = float(y_mean + y_scale * b_z - w @ mean)
        pred = X @ self.coef_ + self.intercept_
        per_row = (pred - y) ** 2 if self.loss == "squared" else np.abs(pred - y)
        counts = np.bincount(ids, sw, minlength=G)
        self.group_loss_ = np.bincount(ids, sw * per_row, minlength=G) / np.where(
            counts > 0, counts, 1
        )
        return self

    @property
    def satisfied_(self) -> bool:
        """Whether every group's training loss is within ``target`` (plus the relative
        tolerance of ``1e-3``); True without a bound."""
        check_is_fitted(self)
        if self.target is None:
            return True
        return bool(np.all(self.group_loss_ <= float(self.target) * (1 + 1e-3)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # made dense at fit (check_features), sparse-aware X @ w
        return tags

    def predict(self, X) -> np.ndarray:
        """Predictions ``X @ coef_ + intercept_``, shape ``(n,)``."""
        check_is_fitted(self)
        X = check_features(self, X, reset=False, dense=False)
        return X @ self.coef_ + self.intercept_
