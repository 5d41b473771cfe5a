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
multiclass criterion is a criterion with one condition per class, and a new entry in
:data:`CRITERIA` is all a new criterion of this kind needs.

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

import warnings
from collections.abc import Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "CRITERIA",
    "DEMOGRAPHIC_PARITY",
    "EQUALIZED_ODDS",
    "EQUAL_OPPORTUNITY",
    "FALSE_POSITIVE_PARITY",
    "REDUCTIONS",
    "REFERENCES",
    "Criterion",
    "check_option",
    "condition_weights",
    "get",
    "group_rates",
    "largest_gap",
    "pairwise_gaps",
    "resolve",
    "split",
]


class Criterion(NamedTuple):
    """A group fairness criterion: the rows each of its rates counts.

    Attributes:
      name: the criterion's name, e.g. ``"equal_opportunity"``.
      conditions: one entry per rate the criterion equalises: the label value of the rows the
        rate counts, or ``None`` for all rows. ``(None,)`` is demographic parity, ``(1,)``
        equal opportunity, ``(1, 0)`` equalized odds.
    """

    name: str
    conditions: tuple[int | None, ...]

    @property
    def needs_labels(self) -> bool:
        """Whether some rate counts only rows of one label (so labels are required)."""
        return any(c is not None for c in self.conditions)


DEMOGRAPHIC_PARITY = Criterion("demographic_parity", (None,))
EQUAL_OPPORTUNITY = Criterion("equal_opportunity", (1,))
FALSE_POSITIVE_PARITY = Criterion("false_positive_parity", (0,))
EQUALIZED_ODDS = Criterion("equalized_odds", (1, 0))

#: Every criterion by name.
CRITERIA: dict[str, Criterion] = {
    c.name: c
    for c in (DEMOGRAPHIC_PARITY, EQUAL_OPPORTUNITY, FALSE_POSITIVE_PARITY, EQUALIZED_ODDS)
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
      allowed: the names this caller supports (default: all of :data:`CRITERIA`).

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
    allowed = tuple(CRITERIA) if allowed is None else tuple(allowed)
    key = criterion.name if isinstance(criterion, Criterion) else criterion
    if not isinstance(key, str) or key not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}, got {criterion!r}.")
    if isinstance(criterion, Criterion):
        return criterion
    return CRITERIA[key]


def split(criterion: str | Criterion) -> tuple[Criterion, ...]:
    """One single-rate criterion per condition of ``criterion`` (equalized odds: TPR, FPR).

    For constraints or penalties kept per rate (one Lagrange multiplier per rate). A condition
    that is a criterion of :data:`CRITERIA` on its own comes back as that criterion.

    Example:
      >>> from fairjax import criteria
      >>> [c.name for c in criteria.split("equalized_odds")]
      ['equal_opportunity', 'false_positive_parity']
    """
    crit = get(criterion)
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
        mapped = _LABEL_VALUES.get(val) if isinstance(val, (int, float)) else None
        choices = tuple(_LABEL_VALUES)
    else:
        choices = tuple(CRITERIA) if allowed is None else tuple(allowed)
        mapped = val if isinstance(val, str) and val in choices else None
    if mapped is None:
        raise ValueError(f"`{key}` must be one of {choices}, got {val!r}.")
    warnings.warn(
        f"{where}: `{key}={val!r}` is deprecated; use `criterion={mapped!r}`.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return get(mapped, name=key, allowed=allowed)


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
    crit = get(criterion)
    if crit.needs_labels and labels is None:
        raise ValueError(f"`labels` are required for criterion={crit.name!r}.")
    rows = [
        gs.row_weights(
            n,
            weights=weights,
            labels=None if c is None else labels,
            label_value=1 if c is None else c,
            dtype=dtype,
        )
        for c in crit.conditions
    ]
    return jnp.stack(rows)


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
    crit = get(criterion)
    if crit.needs_labels and labels is None:
        raise ValueError(f"`labels` are required for criterion={crit.name!r}.")
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


def largest_gap(rates: ArrayLike, counts: ArrayLike) -> Array:
    r"""Each condition's largest gap between two non-empty groups: :math:`\max_g r_g - \min_g r_g`.

    A group with count 0 is left out; with fewer than two non-empty groups the gap is 0. The
    dtype's finite extremes stand in for :math:`\pm\infty`, so neither the value nor its
    gradient is ever infinite or NaN.

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
    rates, present = jnp.asarray(rates), jnp.asarray(counts) > 0
    big = jnp.finfo(rates.dtype).max
    hi = jnp.max(jnp.where(present, rates, -big), axis=-1)
    lo = jnp.min(jnp.where(present, rates, big), axis=-1)
    return jnp.where(jnp.sum(present, axis=-1) >= 2, hi - lo, 0)


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
    rates, present = jnp.asarray(rates), jnp.asarray(counts) > 0
    both = present[..., :, None] & present[..., None, :]
    return jnp.where(both, rates[..., :, None] - rates[..., None, :], 0)
