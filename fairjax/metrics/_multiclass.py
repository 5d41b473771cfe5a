"""Parity of K-class predictions: each class's one-vs-rest rates, compared across groups."""

from __future__ import annotations

import functools
from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import criteria
from fairjax.metrics._common import labelled_groups

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["class_group_rates", "multiclass_parity_difference"]


def _class_matrix(x, name: str, num_classes: int, *, probabilities_ok: bool) -> Array:
    """Class ids ``(n,)`` as one-hot, or a ``(n, K)`` matrix (probabilities or one-hot) as is."""
    arr = v.as_array(x, name, ndim=(1, 2))
    v.check_nonempty(arr, name)
    v.check_finite(arr, name)
    if arr.ndim == 2:
        if arr.shape[1] != num_classes:
            raise ValueError(
                f"`{name}` of shape (n, K) must have num_classes = {num_classes} columns, got"
                f" {arr.shape[1]}."
            )
        if not probabilities_ok and v.is_concrete(arr):
            v.check_binary(arr, name)
        v.check_unit_interval(arr, name)
        if v.is_concrete(arr) and not v.holds(
            lambda xp, a: xp.all(xp.abs(xp.sum(a, axis=1) - 1) <= 1e-3), arr
        ):
            what = "probabilities" if probabilities_ok else "one-hot labels"
            raise ValueError(f"`{name}` of shape (n, K) must hold {what}: rows that sum to 1.")
        return arr.astype(v.float_dtype(arr))
    if jnp.issubdtype(arr.dtype, jnp.floating) and v.is_concrete(arr):
        if not v.holds(lambda xp, a: xp.all(a == xp.round(a)), arr):
            raise ValueError(f"`{name}` of shape (n,) must hold integer class ids.")
    if v.is_concrete(arr) and not v.holds(lambda xp, a: xp.all((a >= 0) & (a < num_classes)), arr):
        raise ValueError(
            f"`{name}` must hold class ids in [0, num_classes = {num_classes}) (or, shape"
            " (n, K), probabilities of the K classes)."
        )
    return jax.nn.one_hot(arr.astype(jnp.int32), num_classes, dtype=jnp.result_type(float))


def class_inputs(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_groups: int | None,
    weights: ArrayLike | None,
    *,
    num_classes: int,
    crit: criteria.Criterion,
) -> tuple[Array | None, Array, Array, Array | None]:
    """Edge validation of K-class inputs (as :func:`check_inputs` of binary ones):
    ``(Y, P, groups, weights)`` with ``P`` the ``(n, K)`` probabilities (one-hot of class ids)
    and ``Y`` the one-hot labels (None when ``crit`` does not need labels); groups of any kind
    (strings: factorised, as every metric does)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"`num_classes` must be an int >= 2, got {num_classes!r}.")
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be an int >= 2, got {num_classes}.")
    num_classes = int(num_classes)
    P = _class_matrix(y_pred, "y_pred", num_classes, probabilities_ok=True)
    Y = None
    if crit.needs_labels:
        Y = _class_matrix(y_true, "y_true", num_classes, probabilities_ok=False)
        v.check_length(Y, P.shape[0], "y_true", "y_pred")
    g = v.check_groups(labelled_groups(groups, num_groups), num_groups=num_groups, n=P.shape[0])
    w = v.check_weights(weights, P.shape[0])
    return Y, P, g, w


def class_confusion_matrix(
    P: Array,
    Y: Array | None,
    groups: Array,
    *,
    num_groups: int | None,
    weights: Array | None = None,
    strata: Array | None = None,
    num_strata: int | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Each class's one-vs-rest confusion matrix in each group: the binary
    :func:`fairjax.criteria.confusion_matrix` of the decisions ``P[:, k]`` and the labels
    ``Y[:, k]``, for every class ``k`` at once (vmapped). Shape ``(K, G, 4)``, or
    ``(K, num_strata, G, 4)`` with ``strata``."""
    labels = jnp.zeros_like(P) if Y is None else Y  # no labels: every row counts as y = 0

    def one_class(p, y):
        return criteria.confusion_matrix(
            p,
            groups,
            y,
            num_groups=num_groups,
            weights=weights,
            strata=strata,
            num_strata=num_strata,
            axis_name=axis_name,
        )

    return jax.vmap(one_class, in_axes=(1, 1))(P, labels.astype(P.dtype))


def rate_gaps(matrix: Array, crit: criteria.Criterion, agg: str = "worst_case") -> Array:
    """The criterion's gap from confusion matrices ``(..., [S,] G, 4)``: the largest gap
    between groups of each rate (within each stratum, then the worst stratum), reduced over
    the rates by ``agg`` (``"worst_case"``: max, ``"mean"``); shape ``(...)``, e.g. ``(K,)``
    per class."""
    rates, denominators = criteria.confusion_rates(matrix, crit)
    gaps = criteria.largest_gap(rates, denominators)  # (..., [S,] C)
    if crit.stratified:
        gaps = jnp.max(gaps, axis=-2)  # the worst stratum
    return jnp.max(gaps, axis=-1) if agg == "worst_case" else jnp.mean(gaps, axis=-1)


def class_group_rates(
    y_pred: ArrayLike,
    groups: ArrayLike,
    y_true: ArrayLike | None = None,
    *,
    num_classes: int,
    criterion: str | criteria.Criterion = "demographic_parity",
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> tuple[Array, Array]:
    r"""Each class's one-vs-rest rate in each group, for every condition of the criterion.

    With :math:`P_{ik}` the prediction's probability of class :math:`k` (one-hot for class
    ids) and :math:`Y_{ik} = [y_i = k]`, the rate of class :math:`k` in group :math:`g` is

    .. math::

        r^c_{kg} = \frac{\sum_i w_i\, m^c_{ik} [s_i = g]\, P_{ik}}
                        {\sum_i w_i\, m^c_{ik} [s_i = g]},
        \qquad m^c_{ik} = \begin{cases} 1 & c = \text{all rows} \\ Y_{ik} & c = 1 \\
                                        1 - Y_{ik} & c = 0 \end{cases}

    so demographic parity compares each class's selection rate, equal opportunity each
    class's true-positive rate (rows of that class) and equalized odds adds each class's
    false-positive rate (rows of the other classes): the binary criteria of
    :mod:`fairjax.criteria`, one-vs-rest. Every other rate of the confusion matrix (PPV, FOR,
    accuracy, ...) is computed the same way, from each class's one-vs-rest cells
    (:func:`fairjax.criteria.confusion_matrix` of the decisions :math:`P_{\cdot k}` and the
    labels :math:`Y_{\cdot k}`).

    Args:
      y_pred: class ids ``(n,)`` in ``[0, K)`` or probabilities ``(n, K)``.
      groups: integer ids ``(n,)``, labels of any kind or membership matrix ``(n, G)``.
      y_true: class ids ``(n,)`` or one-hot ``(n, K)``; required when the criterion
        conditions on labels.
      num_classes: ``K`` (static, at least 2).
      criterion: a criterion of :data:`fairjax.criteria.CRITERIA` (not a stratified one) or
        its name.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap`` (the sums are ``psum``-ed).

    Returns:
      ``(rates, counts)``, each of shape ``(C, K, G)`` for the criterion's ``C`` rates;
      ``counts`` is the weight behind each rate (0: the rate is undefined, left out of gaps).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import class_group_rates
      >>> rates, _ = class_group_rates(jnp.array([0, 1, 2, 0]), jnp.array([0, 0, 1, 1]),
      ...                              num_classes=3, num_groups=2)
      >>> rates[0]  # (K, G): class 0 is chosen for half of each group
      Array([[0.5, 0.5],
             [0.5, 0. ],
             [0. , 0.5]], dtype=float32)
    """
    crit = _class_criterion(criterion, y_true)
    args = (y_true, y_pred, groups, num_groups, weights)
    Y, P, g, w = class_inputs(*args, num_classes=num_classes, crit=crit)
    num = g.shape[1] if g.ndim == 2 else num_groups
    return _class_group_rates(P, Y, g, w, crit, num, axis_name)


# The criteria computed per class: any of the confusion matrix, except a stratified one
# (criterion_difference takes its strata).
_UNSTRATIFIED = tuple(name for name, c in criteria.CRITERIA.items() if not c.stratified)


def _class_criterion(criterion, y_true) -> criteria.Criterion:
    crit = criteria.get(criterion, allowed=_UNSTRATIFIED)
    if crit.needs_labels and y_true is None:
        raise ValueError(f"`y_true` is required for criterion {crit.name!r}.")
    return crit


@functools.partial(jax.jit, static_argnames=("crit", "num_groups", "axis_name"))
def _class_group_rates(P, Y, groups, weights, crit, num_groups, axis_name):
    matrix = class_confusion_matrix(
        P, Y, groups, num_groups=num_groups, weights=weights, axis_name=axis_name
    )
    rates, denominators = criteria.confusion_rates(matrix, crit)  # (K, C, G)
    return jnp.swapaxes(rates, 0, 1), jnp.swapaxes(denominators, 0, 1)


def multiclass_parity_difference(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_classes: int,
    criterion: str | criteria.Criterion = "demographic_parity",
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    per_class: bool = False,
    axis_name: Hashable | None = None,
) -> Array:
    r"""The largest gap between groups in any class's one-vs-rest rate (the worst class).

    .. math:: \max_k \max_c \Big(\max_g r^c_{kg} - \min_g r^c_{kg}\Big)

    with the rates of :func:`class_group_rates`, over groups where the rate is defined. For
    ``criterion="demographic_parity"`` it is the worst class's gap in selection rate, for
    ``"equal_opportunity"`` in true-positive rate, for ``"equalized_odds"`` the larger of the
    TPR and FPR gaps (fairlearn's ``equalized_odds_difference`` of each class's one-vs-rest
    decisions). With two classes and DP it equals the binary
    :func:`demographic_parity_difference` of the class-1 decisions. The worst class's value is
    also what the rate metrics give with ``num_classes=K``
    (:func:`demographic_parity_difference`, :func:`criterion_difference`, ...).

    Args:
      y_true: class ids ``(n,)`` or one-hot ``(n, K)``; ``None`` for demographic parity.
      y_pred: class ids ``(n,)`` or probabilities ``(n, K)`` (rates are then expected rates of
        the randomised classifier).
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_classes: ``K`` (static).
      criterion: ``"demographic_parity"``, ``"equal_opportunity"``,
        ``"false_positive_parity"``, ``"equalized_odds"`` or any other unstratified criterion
        of :data:`fairjax.criteria.CRITERIA` (``"predictive_parity"``, ...).
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      per_class: return each class's gap, shape ``(K,)``, instead of the worst.
      axis_name: mapped axis name inside ``shard_map``/``pmap``.

    Returns:
      A scalar in [0, 1], or shape ``(K,)`` with ``per_class``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import multiclass_parity_difference
      >>> multiclass_parity_difference(None, jnp.array([0, 1, 2, 0]), jnp.array([0, 0, 1, 1]),
      ...                              num_classes=3, num_groups=2)
      Array(0.5, dtype=float32)

    References:
      Denis, Elie, Hebiri, Hu, *Fairness guarantee in multi-class classification*,
      arXiv:2109.13642; fairlearn's one-vs-rest ``MetricFrame`` of each class.
    """
    rates, counts = class_group_rates(
        y_pred,
        groups,
        y_true,
        num_classes=num_classes,
        criterion=criterion,
        num_groups=num_groups,
        weights=weights,
        axis_name=axis_name,
    )
    gaps = jnp.max(criteria.largest_gap(rates, counts), axis=0)  # (K,): worst condition
    return gaps if per_class else jnp.max(gaps)
