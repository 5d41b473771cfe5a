"""scikit-learn logistic regression trained with a fairness penalty or to a fairness target."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from fairjax import _loop, criteria, losses, penalties, training
from fairjax import _validation as v
from fairjax._shapes import bucket
from fairjax.sklearn import _persist
from fairjax.sklearn._inputs import (
    BinaryClassifierInputs,
    check_features,
    check_sample_weight,
    encode_groups,
    standardization,
)

__all__ = ["FairLogisticRegression"]

_CRITERIA = ("demographic_parity", "equal_opportunity", "equalized_odds")


def _surrogate(criterion, logits, y, s, w, G, temperature):
    """Smooth gaps, shape (m,): one per rate of the criterion (fairjax.criteria)."""
    return jnp.stack(
        [
            penalties.sigmoid_rate_difference(
                logits, s, num_groups=G, labels=y, weights=w, temperature=temperature, criterion=c
            )
            for c in criteria.split(criterion)
        ]
    )


def _hard(criterion, logits, y, s, w, G):
    """Exact gaps of the decisions ``logits > 0``, shape (m,): one per rate of the criterion."""
    pred = (logits > 0).astype(logits.dtype)
    rates, counts = criteria.group_rates(pred, s, y, criterion=criterion, num_groups=G, weights=w)
    return jnp.stack([criteria.largest_gap(r, c) for r, c in zip(rates, counts, strict=True)])


def _linear(p, batch):
    """The linear model of the estimator on a batch ``(X, y, s)``: logits ``X w + b``."""
    return batch[0] @ p["w"] + p["b"]


def _zeros(X):
    """The initial parameters ``{"w": 0, "b": 0}`` of the linear model on ``X``."""
    return {"w": jnp.zeros(X.shape[1], X.dtype), "b": jnp.zeros((), X.dtype)}


def _weighted_loss(w, alpha):
    """The objective without fairness term: mean weighted cross-entropy plus ridge."""
    w_mean = w / jnp.sum(w)

    def loss_fn(p, batch):
        ce = losses.logistic(_linear(p, batch), batch[1])
        return jnp.sum(w_mean * ce) + alpha * jnp.sum(p["w"] ** 2)

    return loss_fn


def _scan(step, state, batch, steps):
    """``steps`` full-batch steps in one ``lax.scan``; the final state."""
    return jax.lax.scan(lambda st, _: step(st, batch), state, None, length=steps)[0]


@functools.partial(
    jax.jit, static_argnames=("criterion", "G", "steps", "lr", "temperature", "alpha")
)
def _fit_penalized(X, y, s, w, lam, *, criterion, G, steps, lr, temperature, alpha):
    """Full-batch penalised training of ``{"w", "b"}`` on standardised X; one compiled program."""

    def surrogate(p, batch):
        _, y, s = batch
        return jnp.sum(_surrogate(criterion, _linear(p, batch), y, s, w, G, temperature))

    params, opt = _zeros(X), optax.adam(lr)
    objective = training.penalized(_weighted_loss(w, alpha), surrogate, lam)
    step = training.make_step(objective, opt, jit=False)
    return _scan(step, training.init_state(params, opt), (X, y, s), steps).params


@functools.partial(
    jax.jit, static_argnames=("criterion", "G", "steps", "lr", "mu_lr", "temperature", "alpha")
)
def _fit_lagrangian(X, y, s, w, target, *, criterion, G, steps, lr, mu_lr, temperature, alpha):
    """Primal-dual training to the target: smooth gaps in the Lagrangian, exact gaps for the
    multipliers (training.make_constrained_step); one compiled program."""

    def surrogate(p, batch):
        return _surrogate(criterion, _linear(p, batch), batch[1], batch[2], w, G, temperature)

    def hard(p, batch):
        return _hard(criterion, _linear(p, batch), batch[1], batch[2], w, G)

    params, batch = _zeros(X), (X, y, s)
    opt, mu_opt = optax.adam(lr), optax.sgd(mu_lr)
    step = training.make_constrained_step(
        _weighted_loss(w, alpha), surrogate, target=target, optimizer=opt,
        multiplier_optimizer=mu_opt, dual_constraint_fn=hard,
    )  # fmt: skip
    mu0 = jnp.zeros(surrogate(params, batch).shape, X.dtype)
    state = training.ConstrainedState(
        params, mu0, opt.init(params), mu_opt.init(mu0), jnp.zeros((), jnp.int32)
    )
    state = _scan(step, state, batch, steps)
    return state.params, state.multiplier


@functools.lru_cache(maxsize=64)
def _rate_options(lr: float, mu_lr: float | None, alpha: float) -> dict:
    """The optimizers and regularizer of the constrained fit, one object per setting, so that
    fits with equal settings reuse the compiled program of fit_rate_constrained."""
    return {
        "optimizer": optax.adam(lr),
        "multiplier_optimizer": None if mu_lr is None else optax.sgd(mu_lr),
        "regularizer": lambda p: alpha * jnp.sum(p["w"] ** 2),
    }


def _rate_constrained(arrays, crit: criteria.Criterion, **options):
    """:func:`fairjax.training.fit_rate_constrained` of the linear model on ``(Z, y, s)``."""
    return training.fit_rate_constrained(
        _linear, _zeros(arrays[0]), arrays, criterion=crit.name, **options
    )


def _zeros_multiclass(X, num_classes):
    """The initial parameters of the multinomial model: ``w`` ``(d, K)``, ``b`` ``(K,)``."""
    return {"w": jnp.zeros((X.shape[1], num_classes), X.dtype), "b": jnp.zeros(num_classes)}


@functools.partial(
    jax.jit, static_argnames=("criterion", "G", "K", "steps", "lr", "temperature", "alpha")
)
def _fit_penalized_multiclass(X, y, s, w, lam, *, criterion, G, K, steps, lr, temperature, alpha):
    """Full-batch penalised training of the multinomial model: weighted softmax cross-entropy,
    ridge, and ``lam`` times the softmax surrogate of the worst class's gap."""
    w_mean = w / jnp.sum(w)

    def objective(p, batch):
        _, y, s = batch
        z = _linear(p, batch)
        ce = optax.softmax_cross_entropy_with_integer_labels(z, y)
        gap = penalties.softmax_rate_difference(
            z, s, num_groups=G, labels=y, weights=w, criterion=criterion, temperature=temperature
        )
        return jnp.sum(w_mean * ce) + alpha * jnp.sum(p["w"] ** 2) + lam * gap

    params, opt = _zeros_multiclass(X, K), optax.adam(lr)
    step = training.make_step(objective, opt, jit=False)
    return _scan(step, training.init_state(params, opt), (X, y, s), steps).params


class FairLogisticRegression(
    _persist.SaveLoadMixin, BinaryClassifierInputs, ClassifierMixin, BaseEstimator
):
    r"""Logistic regression with a fairness penalty, or trained to a fairness target.

    With ``target=None`` it minimises the penalised objective

    .. math:: \sum_i \bar w_i\,\ell(y_i, f(x_i)) + \alpha \|w\|^2 + \lambda \sum_j
       \tilde C_j(f),

    with :math:`\tilde C_j` the smooth gaps of :func:`fairjax.penalties.sigmoid_rate_difference`,
    by full-batch Adam. With ``target=ε`` it trains the decisions :math:`[f(x) > 0]` to
    :math:`C_j(f) \le \varepsilon` on the training data, where :math:`C_j` are the exact gaps
    in decision rates, with :func:`fairjax.training.fit_rate_constrained`: the reduction of
    the constrained problem to cost-sensitive classification (Agarwal et al., 2018), one Adam
    step on the relabelled, reweighted log-loss (plus :math:`\alpha \|w\|^2`) and one ascent
    step on the multipliers per iteration, returning the iterate of lowest training error
    among those whose gaps are within the bound plus a slack of a tenth of it
    (``iterate="best"``, ``tolerance=0.1 * target``). Under ``"equalized_odds"``, whose two
    coupled sets of multipliers make the reduction's iterates swing around the bound, it
    trains instead by primal-dual steps (:func:`fairjax.training.make_constrained_step`):
    Adam on the weights with the smooth gaps in the Lagrangian, projected SGD ascent on the
    multipliers driven by the exact gaps (``temperature`` and ``multiplier_learning_rate``,
    default 0.2, apply). The rates are those of
    :mod:`fairjax.criteria`, for ``criterion=``:

    - ``"demographic_parity"``: the selection rate;
    - ``"equal_opportunity"``: the true-positive rate;
    - ``"equalized_odds"``: the true- and false-positive rates (two constraints).

    **K classes.** With more than two labels in ``y`` the model is multinomial (logits
    ``X W + b``, ``W`` of shape ``(d, K)``, the arg-max class decided) and the criterion applies
    to every class's one-vs-rest rate, the worst class's gap bounded: with ``target=ε`` by
    :func:`fairjax.training.fit_rate_constrained` with ``num_classes=K`` (cost-sensitive
    multiclass best responses, for every criterion, equalized odds included), with
    ``target=None`` by the penalty :func:`fairjax.penalties.softmax_rate_difference`. The gap
    is :func:`fairjax.metrics.multiclass_parity_difference`.

    The features are standardised internally (the fitted ``coef_``/``intercept_`` are on the
    original scale). A scipy.sparse ``X`` (a ``ColumnTransformer`` with a ``OneHotEncoder``)
    is accepted: ``fit`` makes it dense at the edge (centring would fill it anyway), holding
    ``n * d`` floats (8 bytes each on the host, 4 on the device) whatever the share of zeros;
    ``predict`` and ``decision_function`` keep it sparse (a sparse-aware ``X @ coef_``).
    Training is full-batch, ``max_iter`` steps in one compiled program; rows
    and features are padded (zero weight, zero columns) to a few sizes so that fits on data of
    nearby shapes reuse it.

    .. versionchanged:: 0.1.0
       ``constraint=`` is now ``criterion=`` (the old keyword warns); a ``target`` trains with
       :func:`fairjax.training.fit_rate_constrained`.

    Args:
      criterion: which fairness criterion (a name of :data:`fairjax.criteria.CRITERIA`).
      constraint: deprecated spelling of ``criterion``.
      lam: penalty weight :math:`\lambda \ge 0` (used when ``target`` is None).
      target: requested bound :math:`\varepsilon` on the gap(s), or None.
      alpha: L2 regularisation of the weights.
      temperature: temperature of the sigmoid relaxation of the penalty, in logit units (used
        when ``target`` is None).
      max_iter: number of full-batch steps.
      learning_rate: Adam step size of the weights.
      multiplier_learning_rate: SGD step size of the multipliers (``None``: the default of
        :func:`fairjax.training.fit_rate_constrained`).

    Attributes:
      classes_: the labels, sorted; with two, ``classes_[1]`` is the positive class.
      groups_: the sensitive values (group ``k`` is ``groups_[k]``).
      coef_: the weights, shape ``(1, d)`` (``(K, d)`` for ``K > 2`` classes).
      intercept_: the bias, shape ``(1,)`` (``(K,)``).
      multiplier_: the final Lagrange multipliers: :math:`\mu_{g g'}` of each rate, shape
        ``(m, G, G)`` (``m`` rates of the criterion, ``G`` groups); under
        ``"equalized_odds"`` with a target, one per rate, shape ``(2,)``; ``(K, m, G, G)`` for
        ``K > 2`` classes; zeros without a target.
      n_iter_: number of optimizer steps run (``max_iter``).
      selected_step_: the step whose weights the model holds: ``max_iter`` (the last iterate),
        or with a ``target`` the feasible iterate of lowest training error; 0 means no iterate
        after the start (all-zero weights, a constant classifier) met the target, which
        ``fit`` warns about.
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
      Agarwal, Beygelzimer, Dudík, Langford, Wallach, A Reductions Approach to Fair
      Classification, ICML 2018; Cotter, Jiang, Sridharan, Two-Player Games for Efficient
      Non-Convex Constrained Optimization, ALT 2019.
    """

    def __init__(
        self,
        criterion: str = "demographic_parity",
        *,
        constraint: str | None = None,
        lam: float = 1.0,
        target: float | None = None,
        alpha: float = 1e-4,
        temperature: float = 0.5,
        max_iter: int = 1000,
        learning_rate: float = 0.05,
        multiplier_learning_rate: float | None = None,
    ):
        self.criterion = criterion
        self.constraint = constraint
        self.lam = lam
        self.target = target
        self.alpha = alpha
        self.temperature = temperature
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.multiplier_learning_rate = multiplier_learning_rate

    _accepts_multiclass = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags

    def _fit_multiclass(self, arrays, crit: criteria.Criterion, G: int, K: int):
        """The multinomial model: to the target by the K-class reduction, else penalised."""
        Z, ids, s, sw = arrays
        if self.target is None:
            params = _fit_penalized_multiclass(
                Z, ids, s, sw,
                jnp.asarray(float(self.lam), jnp.float32),
                criterion=crit.name, G=G, K=K, steps=int(self.max_iter),
                lr=float(self.learning_rate), temperature=float(self.temperature),
                alpha=float(self.alpha),
            )  # fmt: skip
            return params, np.zeros((K, len(crit.conditions), G, G)), int(self.max_iter)
        mu_lr = self.multiplier_learning_rate
        options = _rate_options(
            float(self.learning_rate), None if mu_lr is None else float(mu_lr), float(self.alpha)
        )
        res = training.fit_rate_constrained(
            _linear, _zeros_multiclass(Z, K), (Z, ids, s), criterion=crit.name,
            num_classes=K, target=float(self.target), num_groups=G,
            num_steps=int(self.max_iter), weights=sw, iterate="best",
            tolerance=0.1 * float(self.target), **options,
        )  # fmt: skip
        return res.params, np.asarray(res.state.multiplier, np.float64), res.selected_step

    def _criterion(self) -> criteria.Criterion:
        """The criterion, from ``criterion=`` or the deprecated ``constraint=`` (warns)."""
        if self.constraint is None:
            return criteria.get(self.criterion, allowed=_CRITERIA)
        given = None if self.criterion == "demographic_parity" else self.criterion
        return criteria.resolve(
            given, where="FairLogisticRegression", allowed=_CRITERIA, constraint=self.constraint
        )

    def _check_params(self) -> criteria.Criterion:
        crit = self._criterion()
        if self.target is None:
            v.check_scalar(self.lam, "lam", nonnegative=True)
        v.check_scalar(self.target, "target", nonnegative=True, optional=True)
        v.check_scalar(self.temperature, "temperature", positive=True)
        v.check_scalar(self.alpha, "alpha", nonnegative=True)
        v.check_scalar(self.max_iter, "max_iter", integer=True, low=1)
        v.check_scalar(self.learning_rate, "learning_rate", positive=True)
        v.check_scalar(self.multiplier_learning_rate, "multiplier_learning_rate", positive=True,
                       optional=True)  # fmt: skip
        return crit

    def _fit_constrained(self, Z, yb, ids, sw, crit: criteria.Criterion, G: int):
        """Training to the target: :func:`fairjax.training.fit_rate_constrained`."""
        mu_lr = self.multiplier_learning_rate
        options = _rate_options(
            float(self.learning_rate), None if mu_lr is None else float(mu_lr), float(self.alpha)
        )
        res = _rate_constrained(
            (Z, yb, ids),
            crit,
            target=float(self.target),
            num_groups=G,
            num_steps=int(self.max_iter),
            weights=sw,
            iterate="best",
            # The iterates settle around the bound (their gaps a hair above it on some data):
            # a slack of a tenth of the target keeps the late iterates as candidates.
            tolerance=0.1 * float(self.target),
            **options,
        )
        mu = np.asarray(res.state.multiplier, np.float64)
        return res.params, mu.reshape(len(crit.conditions), G, G), res.selected_step

    def fit(self, X, y, *, sensitive_features=None, sample_weight=None):
        """Fits the classifier.

        Args:
          X: features ``(n, d)`` (array, DataFrame or scipy.sparse, made dense: ``n * d``
            floats in memory, see the class docstring).
          y: two labels (the larger, sorted, is the positive class) or more (a multinomial
            model).
          sensitive_features: ``(n,)`` or ``(n, k)`` sensitive values of any type (a Series or
            DataFrame too; several columns are intersected); None means one group.
          sample_weight: optional non-negative weights ``(n,)``.

        Returns:
          self.
        """
        crit = self._check_params()
        X, y, class_ids = self._check_X_y(X, y)
        K = len(self.classes_)
        yb = (class_ids == 1).astype(np.float32) if K == 2 else class_ids.astype(np.int32)
        sw = check_sample_weight(sample_weight, X.shape[0])
        sw = np.ones(X.shape[0]) if sw is None else sw
        ids, self.groups_ = encode_groups(sensitive_features, X.shape[0])
        G = len(self.groups_)
        mean, scale = standardization(X, sw)
        # Shape buckets: rows of weight 0 and zero feature columns change nothing (a zero
        # column gets a zero gradient, its weight stays exactly 0 under Adam), but fits of
        # nearby sizes (CV folds, grid searches, estimator checks) reuse one compiled program.
        n, d = X.shape
        n_pad, d_pad = bucket(n), -(-d // 8) * 8
        Z = np.zeros((n_pad, d_pad), np.float32)
        Z[:n, :d] = (X - mean) / scale
        pad = n_pad - n
        arrays = (
            jnp.asarray(Z),
            jnp.asarray(np.pad(yb, (0, pad))),
            jnp.asarray(np.pad(np.asarray(ids, np.int32), (0, pad))),
            jnp.asarray(np.pad(sw, (0, pad)), jnp.float32),
        )
        step = int(self.max_iter)  # the iterate returned: the last, but for the reduction's best
        if K > 2:
            params, mu, step = self._fit_multiclass(arrays, crit, G, K)
        elif self.target is not None and crit.name == "equalized_odds":
            mu_lr = self.multiplier_learning_rate
            params, mu = _fit_lagrangian(
                *arrays,
                jnp.asarray(float(self.target), jnp.float32),
                criterion=crit.name,
                G=G,
                steps=int(self.max_iter),
                lr=float(self.learning_rate),
                mu_lr=0.2 if mu_lr is None else float(mu_lr),
                temperature=float(self.temperature),
                alpha=float(self.alpha),
            )
            mu = np.asarray(mu, np.float64)
        elif self.target is None:
            params = _fit_penalized(
                *arrays,
                jnp.asarray(float(self.lam), jnp.float32),
                criterion=crit.name,
                G=G,
                steps=int(self.max_iter),
                lr=float(self.learning_rate),
                temperature=float(self.temperature),
                alpha=float(self.alpha),
            )
            mu = np.zeros((len(crit.conditions), G, G))
        else:
            params, mu, step = self._fit_constrained(*arrays, crit, G)
        ok = _loop.finite("sklearn.FairLogisticRegression.fit", params, mu)  # DivergenceWarning
        if ok and step == 0:
            warnings.warn(
                f"FairLogisticRegression: no iterate after the start met target={self.target} "
                "on the training data, so the model is the start, all-zero weights (a constant "
                "classifier). Give more max_iter, a smaller learning_rate or a looser target.",
                RuntimeWarning,
                stacklevel=2,
            )
        # Back to the original scale: (Z w + b) with Z = (X - mean) / scale.
        w = np.asarray(params["w"], np.float64)[:d] / (scale if K == 2 else scale[:, None])
        b = np.asarray(params["b"], np.float64) - mean @ w
        self.coef_ = w[None, :] if K == 2 else w.T
        self.intercept_ = np.atleast_1d(b)
        self.multiplier_ = mu
        self.n_iter_ = int(self.max_iter)
        self.selected_step_ = int(step)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The logits ``X @ coef_.T + intercept_``: shape ``(n,)`` for two classes (positive
        means ``classes_[1]``), ``(n, K)`` for more."""
        check_is_fitted(self)
        X = check_features(self, X, reset=False, dense=False)  # X @ w is sparse-aware
        if len(self.classes_) == 2:
            return X @ self.coef_[0] + self.intercept_[0]
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape ``(n,)``."""
        check_is_fitted(self)
        z = self.decision_function(X)
        return self.classes_[(z > 0).astype(int) if z.ndim == 1 else np.argmax(z, axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n, K)`` (sigmoid for two classes, else softmax)."""
        z = self.decision_function(X)
        if z.ndim == 2:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
        return np.stack([1.0 - p, p], axis=1)
