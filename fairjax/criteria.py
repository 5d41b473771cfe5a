r"""Fairness criteria: the one vocabulary of which rates a criterion compares, and on which rows.

A group fairness criterion for a binary decision (or a score) :math:`\hat y` is a set of
*conditions*; each condition names the rows a rate counts, and the criterion asks that every
condition's rate be the same in every group:

.. math::

    r^c_g = \frac{\sum_i w_i [i \in c] [s_i = g] \hat y_i}{\sum_i w_i [i \in c] [s_i = g]},
    \qquad \text{criterion satisfied} \iff r^c_g = r^c_{g'} \;\; \forall c, g, g'.

| criterion | rows of each condition (labels 0/1) | rates it equalises |
|---|---|---|
| ``demographic_parity`` | all rows | selection rate |
| ``equal_opportunity`` | rows with ``y = 1`` | true-positive rate |
| ``false_positive_parity`` | rows with ``y = 0`` | false-positive rate |
| ``equalized_odds`` | ``y = 1``; ``y = 0`` | both of the above |

Every module that conditions on labels reads this table: the metrics, the penalties
(``criterion=``), FERM's fairness direction, the constrained trainers and the estimators. A
:class:`Criterion` is a hashable ``NamedTuple``, so it can be a static argument of a compiled
program; anywhere a criterion is expected its name works too.

The table is built to grow: a condition is a label value (``None`` for all rows), so a
multiclass criterion has one condition per class, and a new entry in :data:`CRITERIA` is all
a new criterion of this kind needs.

**Criteria of the confusion matrix.** Every rate above is a ratio of cells of the group's
(weighted) confusion matrix: with the cells ``tp, fp, fn, tn`` (:data:`CELLS`), the selection
rate is ``(tp + fp) / (tp + fp + fn + tn)`` and the TPR ``tp / (tp + fn)``. A :class:`Rate`
names its numerator and denominator cells, and a criterion given by ``rates=`` covers the rest
of Verma & Rubin's decision-based group criteria, including those that condition on the
*prediction* (predictive parity, ``tp / (tp + fp)``; the denominators depend on decisions):

| criterion | rate of each group (cells) | conditions on |
|---|---|---|
| ``predictive_parity`` | PPV ``tp / (tp + fp)`` | the prediction |
| ``false_omission_rate_parity`` | FOR ``fn / (fn + tn)`` | the prediction |
| ``false_negative_rate_parity`` | FNR ``fn / (tp + fn)`` | the label |
| ``true_negative_rate_parity`` | TNR ``tn / (fp + tn)`` | the label |
| ``accuracy_parity`` | accuracy ``(tp + tn) / (tp + fp + fn + tn)`` | nothing |
| ``treatment_equality`` | ``fn / fp`` | the prediction |
| ``conditional_statistical_parity`` | selection rate within each stratum | the stratum |

:func:`confusion_matrix` computes every group's four cells in one pass over the rows (per
stratum, for a stratified criterion, whose strata are passed as ``strata=`` integer ids with a
static ``num_strata=``), and :func:`confusion_rates` any criterion's rates from them. The
functions of rates of rows (:func:`group_rates`, :func:`condition_weights`) serve only the
criteria with ``conditions`` (:data:`DECISION_RATES`), and so do the callers that do not say
otherwise (:func:`get` checks it).

Example:
  >>> import jax.numpy as jnp
  >>> from fairjax import criteria
  >>> y_true = jnp.array([1, 0, 1, 1, 0, 0])
  >>> y_pred = jnp.array([1, 1, 0, 1, 0, 0.0])
  >>> s = jnp.array([0, 0, 0, 1, 1, 1])
  >>> rates, counts = criteria.group_rates(
  ...     y_pred, s, y_true, criterion="equalized_odds", num_groups=2)
  >>> rates   # rows: TPR, FPR; columns: groups
  Array([[0.5, 1. ],
         [1. , 0. ]], dtype=float32)
  >>> criteria.largest_gap(rates, counts)
  Array([0.5, 1. ], dtype=float32)

References:
  Hardt, Price, Srebro, *Equality of opportunity in supervised learning*, NeurIPS 2016;
  Verma, Rubin, *Fairness definitions explained*, FairWare 2018.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "ACCURACY_PARITY",
    "CELLS",
    "CONDITIONAL_STATISTICAL_PARITY",
    "CRITERIA",
    "DECISION_RATES",
    "DEMOGRAPHIC_PARITY",
    "EQUALIZED_ODDS",
    "EQUAL_OPPORTUNITY",
    "FAIRLEARN_NAMES",
    "FALSE_NEGATIVE_RATE_PARITY",
    "FALSE_OMISSION_RATE_PARITY",
    "FALSE_POSITIVE_PARITY",
    "PREDICTIVE_PARITY",
    "REDUCTIONS",
    "REFERENCES",
    "TREATMENT_EQUALITY",
    "TRUE_NEGATIVE_RATE_PARITY",
    "Criterion",
    "Rate",
    "check_call",
    "check_option",
    "condition_weights",
    "confusion_matrix",
    "confusion_rates",
    "get",
    "group_rates",
    "largest_gap",
    "pairwise_gaps",
    "rate_terms",
    "resolve",
    "split",
]


#: The cells of a binary confusion matrix, in the order :func:`confusion_matrix` returns them:
#: true positives (``y = 1, yhat = 1``), false positives (``y = 0, yhat = 1``), false negatives
#: (``y = 1, yhat = 0``), true negatives (``y = 0, yhat = 0``).
CELLS: tuple[str, ...] = ("tp", "fp", "fn", "tn")
_CELL_OF = {"tp": (1, 1), "fp": (0, 1), "fn": (1, 0), "tn": (0, 0)}  # cell: (y, yhat)


def _closed(cells: tuple[str, ...], axis: int) -> bool:
    """Whether with each cell its partner of the other value on ``axis`` (0: y, 1: yhat) is in
    ``cells``: then the sum of the cells does not depend on that axis."""
    flipped = {
        c: tuple(1 - v if a == axis else v for a, v in enumerate(yy)) for c, yy in _CELL_OF.items()
    }
    by_value = {yy: c for c, yy in _CELL_OF.items()}
    return all(by_value[flipped[c]] in cells for c in cells)


class Rate(NamedTuple):
    """A rate of the confusion matrix: the sum of some cells over the sum of others.

    Attributes:
      numerator: the cells summed above the line, e.g. ``("tp",)``.
      denominator: the cells summed below it, e.g. ``("tp", "fp")`` (PPV).

    Example:
      >>> from fairjax.criteria import Rate
      >>> Rate(("tp",), ("tp", "fp")).conditions_on_prediction
      True
    """

    numerator: tuple[str, ...]
    denominator: tuple[str, ...]

    @property
    def needs_labels(self) -> bool:
        """Whether the rate depends on the labels (some cell set does not hold both labels)."""
        return not (_closed(self.numerator, 0) and _closed(self.denominator, 0))

    @property
    def conditions_on_prediction(self) -> bool:
        """Whether the denominator depends on the decisions (a linear-fractional rate)."""
        return not _closed(self.denominator, 1)


_SELECTED = ("tp", "fp")  # the cells of the rows with yhat = 1
_ROWS_OF = {None: CELLS, 1: ("tp", "fn"), 0: ("fp", "tn")}  # the rows of a condition


class Criterion(NamedTuple):
    """A group fairness criterion: the rows each of its rates counts, or the rates themselves.

    Attributes:
      name: the criterion's name, e.g. ``"equal_opportunity"``.
      conditions: one entry per rate of positive decisions the criterion equalises: the label
        value of the rows the rate counts, or ``None`` for all rows. ``(None,)`` is demographic
        parity, ``(1,)`` equal opportunity, ``(1, 0)`` equalized odds. Empty for a criterion
        given by ``rates``.
      rates: the rates of the confusion matrix the criterion equalises, when they are not
        rates of positive decisions (:class:`Rate`); default ``()``: the rates of ``conditions``.
      stratified: whether the rates are compared within each stratum of a legitimate factor
        (passed as ``strata=``), as conditional statistical parity does.
    """

    name: str
    conditions: tuple[int | None, ...]
    rates: tuple[Rate, ...] = ()
    stratified: bool = False

    @property
    def cell_rates(self) -> tuple[Rate, ...]:
        """The criterion's rates as :class:`Rate` s: ``rates``, or those of ``conditions``."""
        if self.rates:
            return self.rates
        return tuple(
            Rate(tuple(c for c in _ROWS_OF[k] if c in _SELECTED), _ROWS_OF[k])
            for k in self.conditions
        )

    @property
    def needs_labels(self) -> bool:
        """Whether some rate counts only rows of one label (so labels are required)."""
        if self.rates:
            return any(r.needs_labels for r in self.rates)
        return any(c is not None for c in self.conditions)


DEMOGRAPHIC_PARITY = Criterion("demographic_parity", (None,))
EQUAL_OPPORTUNITY = Criterion("equal_opportunity", (1,))
FALSE_POSITIVE_PARITY = Criterion("false_positive_parity", (0,))
EQUALIZED_ODDS = Criterion("equalized_odds", (1, 0))
PREDICTIVE_PARITY = Criterion("predictive_parity", (), (Rate(("tp",), ("tp", "fp")),))
FALSE_OMISSION_RATE_PARITY = Criterion(
    "false_omission_rate_parity", (), (Rate(("fn",), ("fn", "tn")),)
)
FALSE_NEGATIVE_RATE_PARITY = Criterion(
    "false_negative_rate_parity", (), (Rate(("fn",), ("tp", "fn")),)
)
TRUE_NEGATIVE_RATE_PARITY = Criterion(
    "true_negative_rate_parity", (), (Rate(("tn",), ("fp", "tn")),)
)
ACCURACY_PARITY = Criterion("accuracy_parity", (), (Rate(("tp", "tn"), CELLS),))
TREATMENT_EQUALITY = Criterion("treatment_equality", (), (Rate(("fn",), ("fp",)),))
CONDITIONAL_STATISTICAL_PARITY = Criterion(
    "conditional_statistical_parity", (), (Rate(_SELECTED, CELLS),), stratified=True
)

#: Every criterion by name.
CRITERIA: dict[str, Criterion] = {
    c.name: c
    for c in (
        DEMOGRAPHIC_PARITY,
        EQUAL_OPPORTUNITY,
        FALSE_POSITIVE_PARITY,
        EQUALIZED_ODDS,
        PREDICTIVE_PARITY,
        FALSE_OMISSION_RATE_PARITY,
        FALSE_NEGATIVE_RATE_PARITY,
        TRUE_NEGATIVE_RATE_PARITY,
        ACCURACY_PARITY,
        TREATMENT_EQUALITY,
        CONDITIONAL_STATISTICAL_PARITY,
    )
}

#: The criteria whose rates are rates of positive decisions among rows chosen by label (those
#: with ``conditions``): what :func:`group_rates` and :func:`condition_weights` compute, and
#: what :func:`get` accepts unless a caller allows more.
DECISION_RATES: tuple[str, ...] = tuple(n for n, c in CRITERIA.items() if c.conditions)

#: fairlearn's names of criteria that have another name here (the ``constraints=`` of its
#: ``ThresholdOptimizer``): the scikit-learn estimators accept them, and :func:`get` names the
#: criterion they stand for.
FAIRLEARN_NAMES: dict[str, str] = {
    "true_positive_rate_parity": "equal_opportunity",
    "false_positive_rate_parity": "false_positive_parity",
}

#: The reference distributions a group is compared with, wherever a function takes
#: ``reference=`` (each function accepts the subset that makes sense for it):
REFERENCES: dict[str, str] = {
    "pooled": "the distribution of all rows together (the mixture of the groups)",
    "pairwise": "every other group, one comparison per pair of groups",
    "barycenter": "the Wasserstein barycenter of the groups, weighted by their sizes",
    "first": "the first non-empty group",
}

#: How per-group or per-pair values become one number, wherever a function takes
#: ``reduction=`` (each function accepts the subset that makes sense for it):
REDUCTIONS: dict[str, str] = {
    "max": "the largest value (the worst group or pair)",
    "mean": "the mean weighted by the groups' shares of the rows",
    "squared": "the sum of squared deviations from the pooled value (smooth everywhere)",
    "none": "no reduction: one value per group or pair",
}


def check_option(value: Any, name: str, allowed: tuple[str, ...] | dict[str, Any]) -> str:
    """Returns ``value`` if it is one of ``allowed``, else raises a ``ValueError`` naming ``name``.

    Example:
      >>> from fairjax.criteria import check_option
      >>> check_option("max", "reduction", ("max", "mean"))
      'max'
    """
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}.")
    return value


def get(
    criterion: str | Criterion,
    *,
    name: str = "criterion",
    allowed: tuple[str, ...] | None = None,
) -> Criterion:
    """The :class:`Criterion` of a name (or the criterion itself), checked against ``allowed``.

    Args:
      criterion: a name from :data:`CRITERIA` or a :class:`Criterion` (any, when ``allowed``
        is not given).
      name: the argument's name, for the error message.
      allowed: the names this caller supports (default: :data:`DECISION_RATES`, the criteria
        of rates of positive decisions; a caller that computes the rates of any confusion-matrix
        criterion passes ``tuple(CRITERIA)``).

    Returns:
      The :class:`Criterion`.

    Raises:
      ValueError: for an unknown or unsupported criterion, naming ``name`` and the choices.

    Example:
      >>> from fairjax import criteria
      >>> criteria.get("equalized_odds").conditions
      (1, 0)
    """
    if isinstance(criterion, Criterion) and allowed is None:
        return criterion  # a criterion of the caller's own: any conditions
    allowed = DECISION_RATES if allowed is None else tuple(allowed)
    key = criterion.name if isinstance(criterion, Criterion) else criterion
    if not isinstance(key, str) or key not in allowed:
        hint = ""
        if isinstance(key, str) and FAIRLEARN_NAMES.get(key) in allowed:
            hint = f" ({key!r} is fairlearn's name of {FAIRLEARN_NAMES[key]!r})"
        elif isinstance(key, str) and key in CRITERIA and not CRITERIA[key].conditions:
            hint = (
                f" ({key!r} is a rate of the confusion matrix that this function does not"
                " compute: see fairjax.metrics.criterion_difference and"
                " fairjax.penalties.fractional_rate_difference)"
            )
        raise ValueError(f"`{name}` must be one of {allowed}, got {criterion!r}{hint}.")
    if isinstance(criterion, Criterion) and criterion != CRITERIA.get(key):  # same name only
        raise ValueError(f"`{name}` must be fairjax's {key!r}, got another {criterion!r}.")
    return CRITERIA[key]


def _any(criterion: str | Criterion) -> Criterion:
    """Any criterion: one of the caller's own, or any name of :data:`CRITERIA`."""
    if isinstance(criterion, Criterion):
        return criterion
    return get(criterion, allowed=tuple(CRITERIA))


def split(criterion: str | Criterion) -> tuple[Criterion, ...]:
    """One single-rate criterion per condition of ``criterion`` (equalized odds: TPR, FPR).

    For constraints or penalties kept per rate (one Lagrange multiplier per rate). A condition
    that is a criterion of :data:`CRITERIA` on its own comes back as that criterion.

    Example:
      >>> from fairjax import criteria
      >>> [c.name for c in criteria.split("equalized_odds")]
      ['equal_opportunity', 'false_positive_parity']
    """
    crit = _any(criterion)
    if not crit.conditions:
        if len(crit.rates) == 1:
            return (crit,)
        return tuple(
            crit._replace(name=f"{crit.name}[{i}]", rates=(r,)) for i, r in enumerate(crit.rates)
        )
    single = {c.conditions[0]: c for c in CRITERIA.values() if len(c.conditions) == 1}
    return tuple(
        single.get(c, Criterion(f"{crit.name}[{i}]", (c,))) for i, c in enumerate(crit.conditions)
    )


# The criteria of the keywords this module replaces, for their deprecation path.
_CONDITION_NAMES = {
    "all": "demographic_parity",
    "positive": "equal_opportunity",
    "negative": "false_positive_parity",
}
_LABEL_VALUES = {1: "equal_opportunity", 0: "false_positive_parity"}


def resolve(
    criterion: str | Criterion | None,
    *,
    where: str,
    default: str = "demographic_parity",
    allowed: tuple[str, ...] | None = None,
    condition: Any = None,
    label_value: Any = None,
    constraint: Any = None,
    stacklevel: int = 3,
) -> Criterion:
    """The criterion of a call, also from the keywords it replaces (with a deprecation warning).

    Before ``criterion=``, label conditioning was spelt ``condition="all" | "positive" |
    "negative"`` (penalties, FERM), ``label_value=1 | 0`` (MMD, Sinkhorn, FERM) and
    ``constraint=`` (training, estimators). Functions that took them still accept them for now
    and pass them here, which maps them to the criterion and warns once per call site.

    Args:
      criterion: the value of ``criterion=``; ``None`` when not given.
      where: the public function's name, for the messages (e.g. ``"penalties.mmd"``).
      default: the criterion when none is given.
      allowed: the names the function supports (default: all).
      condition: the deprecated ``condition=`` value; ``None``: not given.
      label_value: the deprecated ``label_value=`` value; ``None``: not given.
      constraint: the deprecated ``constraint=`` value; ``None``: not given.
      stacklevel: passed to :func:`warnings.warn`; the default 3 points the warning at the
        caller of the public function that calls ``resolve`` directly (one more per helper
        frame in between).

    A function with a deprecated keyword gives it the default ``None`` and passes it on as
    it came.

    Returns:
      The :class:`Criterion`.

    Raises:
      ValueError: when a deprecated keyword and ``criterion=`` are both given, or a value is
        unknown.

    Example:
      >>> import warnings
      >>> from fairjax.criteria import resolve
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore")
      ...     resolve(None, where="f", condition="positive").name
      'equal_opportunity'
    """
    legacy = {
        k: val
        for k, val in (
            ("condition", condition),
            ("label_value", label_value),
            ("constraint", constraint),
        )
        if val is not None
    }
    if not legacy:
        return get(default if criterion is None else criterion, allowed=allowed)
    if criterion is not None or len(legacy) > 1:
        given = ["criterion"] * (criterion is not None) + list(legacy)
        raise ValueError(
            f"{where}: give the criterion once, with `criterion=`; got {', '.join(given)}."
        )
    ((key, val),) = legacy.items()
    if key == "condition":
        mapped = _CONDITION_NAMES.get(val) if isinstance(val, str) else None
        choices = tuple(_CONDITION_NAMES)
    elif key == "label_value":
        mapped = _LABEL_VALUES.get(val) if isinstance(val, numbers.Real) else None
        choices = tuple(_LABEL_VALUES)
    else:
        choices = DECISION_RATES if allowed is None else tuple(allowed)
        mapped = val if isinstance(val, str) and val in choices else None
    if mapped is None:
        raise ValueError(f"`{key}` must be one of {choices}, got {val!r}.")
    warnings.warn(
        f"{where}: `{key}={val!r}` is deprecated; use `criterion={mapped!r}`.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return get(mapped, name=key, allowed=allowed)


def _decision_rates(criterion: str | Criterion) -> Criterion:
    """The criterion, if its rates are rates of positive decisions (it has ``conditions``)."""
    crit = get(criterion)
    if not crit.conditions:
        raise ValueError(
            f"criterion={crit.name!r} has no `conditions` (rates of positive decisions among rows"
            " chosen by label): compute its rates with `confusion_rates`."
        )
    return crit


def condition_weights(
    criterion: str | Criterion,
    labels: ArrayLike | None,
    weights: ArrayLike | None = None,
    *,
    n: int,
    dtype: Any = None,
) -> Array:
    """The row weights of each condition: ``w_i [y_i = c]`` (``w_i`` for all rows).

    Args:
      criterion: a criterion or its name.
      labels: labels ``(n,)``; required when the criterion conditions on them.
      weights: optional non-negative sample weights ``(n,)`` (default 1).
      n: number of rows.
      dtype: floating dtype of the result (default: the weights', at least float32).

    Returns:
      Array of shape ``(C, n)``, one row per condition of the criterion.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import condition_weights
      >>> condition_weights("equalized_odds", jnp.array([1, 0, 1]), n=3)
      Array([[1., 0., 1.],
             [0., 1., 0.]], dtype=float32)
    """
    crit = _decision_rates(criterion)
    _check_labels(crit, labels)
    conditions = [(None, 1) if c is None else (labels, c) for c in crit.conditions]
    return jnp.stack(
        [gs.row_weights(n, weights=weights, labels=y, label_value=c, dtype=dtype)
         for y, c in conditions]
    )  # fmt: skip


def _check_labels(crit: Criterion, labels: Any) -> None:
    """Labels where the criterion needs them, and 0/1: -1/+1 or 2 would condition no row."""
    if crit.needs_labels and labels is None:
        raise ValueError(f"`labels` are required for criterion={crit.name!r}.")
    v.check_binary(v.as_array(labels, "labels") if crit.needs_labels else None, "labels")


def group_rates(
    values: ArrayLike,
    groups: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    criterion: str | Criterion,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> tuple[Array, Array]:
    """Each condition's per-group mean of ``values`` and the weight of rows behind it.

    With hard decisions as ``values`` these are the rates the criterion equalises (selection
    rate, TPR, FPR); with scores or probabilities, their smooth counterparts.

    Args:
      values: decisions, probabilities or scores, shape ``(n,)``.
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or a membership matrix ``(n, G)``.
      labels: labels ``(n,)``; required when the criterion conditions on them.
      criterion: a criterion or its name.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap`` (statistics are summed over
        the devices before dividing).

    Returns:
      ``(rates, counts)``, both of shape ``(C, G)``: ``C`` conditions of the criterion, ``G``
      groups. An empty group has rate 0 and count 0.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import group_rates
      >>> rates, counts = group_rates(jnp.array([1.0, 0.0, 1.0]), jnp.array([0, 0, 1]),
      ...                             criterion="demographic_parity", num_groups=2)
      >>> rates
      Array([[0.5, 1. ]], dtype=float32)
    """
    crit = _decision_rates(criterion)
    _check_labels(crit, labels)
    means, counts = [], []
    for c in crit.conditions:
        m, k = gs.group_means(
            values,
            groups,
            num_groups=num_groups,
            labels=None if c is None else labels,
            label_value=1 if c is None else c,
            weights=weights,
            axis_name=axis_name,
            return_counts=True,
        )
        means.append(m)
        counts.append(k)
    return jnp.stack(means), jnp.stack(counts)


def check_call(
    criterion: str | Criterion,
    *,
    labels: Any,
    strata: Any,
    num_strata: Any,
    labels_name: str = "labels",
) -> Criterion:
    """Any criterion, checked against what a call gives: labels when it needs them, strata
    (with ``num_strata``) exactly when it is stratified.

    Example:
      >>> from fairjax.criteria import check_call
      >>> check_call("predictive_parity", labels=[1, 0], strata=None, num_strata=None).name
      'predictive_parity'
    """
    crit = _any(criterion)
    if crit.needs_labels and labels is None:
        raise ValueError(f"`{labels_name}` are required for criterion={crit.name!r}.")
    if crit.stratified and (strata is None or num_strata is None):
        raise ValueError(f"criterion={crit.name!r} needs `strata` and `num_strata`.")
    if strata is not None and not crit.stratified:
        raise ValueError(f"`strata` is given but criterion={crit.name!r} is not stratified.")
    return crit


def confusion_matrix(
    values: ArrayLike,
    groups: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    strata: ArrayLike | None = None,
    num_strata: int | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    r"""Every group's weighted confusion matrix, in one pass over the rows.

    With decisions (or probabilities of the decision 1) :math:`h_i`, labels :math:`y_i`,
    weights :math:`w_i` and memberships :math:`M_{ig}`:

    .. math::

        \mathrm{tp}_g = \sum_i w_i M_{ig}\, y_i h_i, \quad
        \mathrm{fp}_g = \sum_i w_i M_{ig} (1 - y_i) h_i, \quad
        \mathrm{fn}_g = \sum_i w_i M_{ig}\, y_i (1 - h_i), \quad
        \mathrm{tn}_g = \sum_i w_i M_{ig} (1 - y_i)(1 - h_i).

    With probabilities the cells are expected counts of the randomised classifier (and smooth
    in :math:`h`: the penalties differentiate them). Without labels every row counts as
    :math:`y = 0` (``fp + tn`` is the group's weight, ``fp`` its selected weight), which is all
    a criterion that does not need labels reads.

    Args:
      values: decisions in {0, 1} or probabilities in [0, 1], shape ``(n,)``.
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or a membership matrix ``(n, G)``.
      labels: binary labels ``(n,)``; ``None`` when the criterion does not need them.
      num_groups: static number of groups (required for integer ids).
      weights: optional non-negative sample weights ``(n,)``.
      strata: optional integer ids ``(n,)`` in ``[0, num_strata)`` of a legitimate factor;
        the matrices are then computed within each stratum.
      num_strata: static number of strata (required with ``strata``).
      axis_name: mapped axis name inside ``shard_map``/``pmap`` (the cells are summed over the
        devices).

    Returns:
      Array of shape ``(G, 4)`` (``(num_strata, G, 4)`` with strata), the last axis in the order
      of :data:`CELLS`: ``tp, fp, fn, tn``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import confusion_matrix
      >>> y = jnp.array([1, 0, 1, 1, 0, 0])
      >>> yhat = jnp.array([1, 1, 0, 1, 0, 0])
      >>> confusion_matrix(yhat, jnp.array([0, 0, 0, 1, 1, 1]), y, num_groups=2)
      Array([[1., 1., 1., 0.],
             [1., 0., 0., 2.]], dtype=float32)
    """
    h = v.as_array(values, "values", ndim=1)
    v.check_unit_interval(h, "values", nan_ok=True)  # logits would make negative cells
    n, g = h.shape[0], v.check_groups(groups, num_groups=num_groups, n=h.shape[0])
    weights = v.check_weights(weights, n)  # before the labels read them
    h = h.astype(v.float_dtype(h, weights))
    y = jnp.zeros_like(h)
    if labels is not None:
        y = v.as_array(labels, "labels", ndim=1)
        v.check_length(y, n, "labels", "values")
        v.check_labels(y, "labels")
        live = True if weights is None else weights != 0  # weight 0: masked
        y = jnp.where(jnp.isnan(y) & live, jnp.nan, y == 1).astype(h.dtype)  # NaN, not "0"
    cells = jnp.stack([y * h, (1 - y) * h, y * (1 - h), (1 - y) * (1 - h)], axis=-1)
    num = g.shape[1] if g.ndim == 2 else v.check_num_groups(num_groups)
    sums_options = dict(weights=weights, axis_name=axis_name)
    if strata is None:
        return gs.group_sums(cells, g, num_groups=num, **sums_options)
    if num_strata is None:
        raise ValueError("`num_strata` is required with `strata`.")
    k = v.check_groups(strata, num_groups=num_strata, n=n)
    if k.ndim != 1:
        raise ValueError(f"`strata` must be integer ids of shape (n,), got {k.shape}.")
    if g.ndim == 2:
        one_hot = jax.nn.one_hot(k, num_strata, dtype=g.dtype)
        joint = (one_hot[:, :, None] * g[:, None, :]).reshape(n, num_strata * num)
    else:
        joint = k.astype(jnp.int32) * num + g.astype(jnp.int32)
    sums = gs.group_sums(cells, joint, num_groups=num_strata * num, **sums_options)
    return sums.reshape(num_strata, num, len(CELLS))


def rate_terms(matrix: ArrayLike, criterion: str | Criterion) -> tuple[Array, Array]:
    """The numerator and denominator of each rate of ``criterion``, from confusion matrices.

    Args:
      matrix: confusion matrices, shape ``(..., G, 4)`` (:func:`confusion_matrix`).
      criterion: any criterion of :data:`CRITERIA` (or a :class:`Criterion`).

    Returns:
      ``(numerators, denominators)``, each of shape ``(..., C, G)`` for the ``C`` rates.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import rate_terms
      >>> m = jnp.array([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 2.0]])
      >>> rate_terms(m, "predictive_parity")
      (Array([[1., 1.]], dtype=float32), Array([[2., 1.]], dtype=float32))
    """
    crit = _any(criterion)
    m = jnp.asarray(matrix)
    if m.ndim < 2 or m.shape[-1] != len(CELLS):
        raise ValueError(f"`matrix` must have shape (..., G, {len(CELLS)}), got {m.shape}.")
    index = {c: i for i, c in enumerate(CELLS)}

    def total(cells: tuple[str, ...]) -> Array:
        if not cells or any(c not in index for c in cells):
            raise ValueError(
                f"criterion={crit.name!r}: a rate's cells must be a non-empty subset of {CELLS},"
                f" got {cells!r}."
            )
        return sum(m[..., index[c]] for c in cells[1:]) + m[..., index[cells[0]]]

    rates = crit.cell_rates
    if not rates:
        raise ValueError(f"criterion={crit.name!r} has neither `conditions` nor `rates`.")
    numerators = jnp.stack([total(r.numerator) for r in rates], axis=-2)
    denominators = jnp.stack([total(r.denominator) for r in rates], axis=-2)
    return numerators, denominators


def confusion_rates(matrix: ArrayLike, criterion: str | Criterion) -> tuple[Array, Array]:
    """Each rate of ``criterion`` in each group, and the weight of the rows behind it.

    Args:
      matrix: confusion matrices, shape ``(..., G, 4)`` (:func:`confusion_matrix`).
      criterion: any criterion of :data:`CRITERIA` (or a :class:`Criterion`).

    Returns:
      ``(rates, denominators)``, each of shape ``(..., C, G)``: a group whose denominator is 0
      (e.g. no positive decision, for PPV) has rate 0 and is left out by :func:`largest_gap`.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import confusion_rates, largest_gap
      >>> m = jnp.array([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 2.0]])
      >>> rates, dens = confusion_rates(m, "predictive_parity")
      >>> rates
      Array([[0.5, 1. ]], dtype=float32)
      >>> largest_gap(rates, dens)
      Array([0.5], dtype=float32)
    """
    numerators, denominators = rate_terms(matrix, criterion)
    return gs.safe_divide(numerators, denominators), denominators


def largest_gap(rates: ArrayLike, counts: ArrayLike) -> Array:
    r"""Each condition's largest gap between two non-empty groups: :math:`\max_g r_g - \min_g r_g`.

    A group with count 0 is left out; with fewer than two non-empty groups the gap is 0. The
    dtype's finite extremes stand in for :math:`\pm\infty`, so for finite inputs neither the
    value nor its gradient is ever infinite or NaN. NaN in gives NaN out: a NaN count, or a NaN
    rate of a group with a positive count, makes that condition's gap NaN (the comparisons
    would otherwise drop the group, and a gap of 0 reads as perfectly fair).

    Args:
      rates: per-group rates, shape ``(..., G)``.
      counts: the weight behind each rate, same shape.

    Returns:
      Array of shape ``(...)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import largest_gap
      >>> largest_gap(jnp.array([0.2, 0.9, 0.5]), jnp.array([3.0, 0.0, 2.0]))
      Array(0.3, dtype=float32)
    """
    rates, counts = jnp.asarray(rates), jnp.asarray(counts)
    rates = rates if jnp.issubdtype(rates.dtype, jnp.floating) else rates.astype(float)
    present = counts > 0
    big = jnp.finfo(rates.dtype).max
    hi = jnp.max(jnp.where(present, rates, -big), axis=-1)
    lo = jnp.min(jnp.where(present, rates, big), axis=-1)
    gap = jnp.where(jnp.sum(present, axis=-1) >= 2, hi - lo, 0)
    nan = jnp.any(jnp.isnan(counts) | (present & jnp.isnan(rates)), axis=-1)
    return jnp.where(nan, jnp.nan, gap)


def pairwise_gaps(rates: ArrayLike, counts: ArrayLike) -> Array:
    """Every signed gap ``r_g - r_g'`` between two non-empty groups, 0 for pairs with an empty one.

    Args:
      rates: per-group rates, shape ``(..., G)``.
      counts: the weight behind each rate, same shape.

    Returns:
      Array of shape ``(..., G, G)``: entry ``[..., g, g']`` is ``r_g - r_g'``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.criteria import pairwise_gaps
      >>> pairwise_gaps(jnp.array([0.25, 0.75]), jnp.array([2.0, 2.0]))
      Array([[ 0. , -0.5],
             [ 0.5,  0. ]], dtype=float32)
    """
    c = jnp.asarray(counts)  # a NaN count: NaN gaps, not the 0 of an empty group
    rates, present = jnp.where(jnp.isnan(c), jnp.nan, jnp.asarray(rates)), ~(c <= 0)
    both = present[..., :, None] & present[..., None, :]
    return jnp.where(both, rates[..., :, None] - rates[..., None, :], 0)
