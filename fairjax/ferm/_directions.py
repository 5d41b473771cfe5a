"""The FERM fairness directions: differences of group means of the features."""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: The criteria FERM expresses: every condition of the criterion gives ``G - 1`` directions, and
#: the constraint is orthogonality to all of them.
_CRITERIA = ("equal_opportunity", "demographic_parity", "false_positive_parity", "equalized_odds")
_REFERENCES = ("first", "pooled")
# The values the deprecated ``condition=`` took (``"negative"`` was never one of them).
_CONDITIONS = ("positive", "all")


def _legacy_criterion(condition: str | None, label_value: float | int | None) -> dict:
    """The deprecated keywords a caller gave (``None``: not given), for ``criteria.resolve``.

    ``condition=`` keeps its old values; given together with ``label_value=``, the pair means
    what it meant before: ``"all"`` ignores the label, ``"positive"`` conditions on it.
    """
    if condition is not None:
        criteria.check_option(condition, "condition", _CONDITIONS)
        if label_value is not None and condition == "positive":
            return {"label_value": label_value}
        return {"condition": condition}
    return {} if label_value is None else {"label_value": label_value}


def fairness_direction(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    criterion: str | criteria.Criterion | None = None,
    reference: Literal["first", "pooled"] = "first",
    weights: ArrayLike | None = None,
    condition: Literal["positive", "all"] | None = None,
    label_value: float | int | None = None,
) -> Array:
    r"""The FERM fairness directions: differences of group means of the features.

    With :math:`m^c_g` the (weighted) mean of the rows of ``X`` in group :math:`g` that a
    condition :math:`c` of the criterion counts (the positives ``y == 1`` for equal opportunity,
    the negatives for false-positive parity, all rows for demographic parity; both label
    conditions for equalized odds):

    * ``reference="first"``: :math:`u_k = m_{g_k} - m_r`, with :math:`r` the first non-empty
      group and :math:`g_1 < g_2 < \dots` the other groups. For two groups this is the paper's
      :math:`u = m_1 - m_0`, and :math:`\langle w, u_k\rangle` is exactly the gap in mean output
      between group :math:`g_k` and group :math:`r`, so ``eps`` has that meaning.
    * ``reference="pooled"``: :math:`u_k = m_k - \bar m`, :math:`k = 0..G-2`, with
      :math:`\bar m` the mean over all the condition's rows.

    Both span the same subspace (so ``eps = 0`` gives the same constraint). A group with no rows
    (zero weight) contributes a zero row: the constraint is vacuous for it. A group that has rows
    but none of a condition (e.g. no positive example, for equal opportunity) makes its
    direction undefined: on concrete inputs this raises ``ValueError``; under ``jit`` it is
    treated like an empty group.

    For kernel FERM, pass the kernel matrix ``K`` (rows: the points the means run over, columns:
    the expansion points) as ``X``: row :math:`k` is then :math:`\tau_k` with
    :math:`\tau_{k,i} = \text{mean}_{j \in P_{g_k}} k(x_j, x_i) -
    \text{mean}_{j \in P_r} k(x_j, x_i)`.

    Args:
      X: features, shape ``(n, d)``.
      y: labels, shape ``(n,)``; ``1`` is the positive label for both {0, 1} and {-1, +1}
        labels (every other value is a negative).
      groups: integer group ids ``(n,)`` in ``[0, num_groups)`` or a membership matrix ``(n, G)``.
      num_groups: static number of groups ``G`` (required for integer ids).
      criterion: a criterion of :mod:`fairjax.criteria` or its name: ``"equal_opportunity"``
        (default), ``"demographic_parity"``, ``"false_positive_parity"`` or
        ``"equalized_odds"``.
      reference: ``"first"`` or ``"pooled"``, see above.
      weights: optional non-negative sample weights ``(n,)``.
      condition: deprecated, use ``criterion=``: ``"positive"`` is ``"equal_opportunity"``,
        ``"all"`` is ``"demographic_parity"``.
      label_value: deprecated, use ``criterion=``: ``1`` is ``"equal_opportunity"``, ``0``
        ``"false_positive_parity"``.

    Returns:
      Array of shape ``(C (G - 1), d)``, ``C`` the number of conditions of the criterion (1, or 2
      for equalized odds; the rows of the first condition first); ``(0, d)`` for one group.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ferm import fairness_direction
      >>> X = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
      >>> y = jnp.array([1, 1, 1, 0])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> fairness_direction(X, y, s, num_groups=2)  # mean(P_1) - mean(P_0)
      Array([[-2.,  2.]], dtype=float32)
      >>> fairness_direction(X, y, s, num_groups=2, criterion="demographic_parity")
      Array([[0.5, 3.5]], dtype=float32)

    .. versionchanged:: 0.1.0
       ``criterion=`` replaces ``condition=`` and ``label_value=``.

    References:
      Donini et al., NeurIPS 2018, Sections 3-4 (linear loss, the vector u).
    """
    crit = criteria.resolve(
        criterion,
        where="ferm.fairness_direction",
        default="equal_opportunity",
        allowed=_CRITERIA,
        **_legacy_criterion(condition, label_value),
    )
    criteria.check_option(reference, "reference", _REFERENCES)
    X = v.as_array(X, "X", ndim=2)
    v.check_nonempty(X, "X")
    n = X.shape[0]
    v.check_finite(X, "X")
    y = v.as_array(y, "y", ndim=1)
    v.check_length(y, n, "y", "X")
    v.check_finite(y, "y")  # a NaN label is no label, not a negative one
    g = v.check_groups(groups, num_groups=num_groups, n=n)
    G = g.shape[1] if g.ndim == 2 else num_groups
    v.check_weights(weights, n)
    U, counts, rows = _direction_core(X, y, g, weights, num_groups=G, criterion=crit,
                                      reference=reference)  # fmt: skip
    if crit.needs_labels and v.is_concrete(X, y, g, weights):
        counts, rows = np.asarray(counts), np.asarray(rows)
        for c, count in zip(crit.conditions, counts, strict=True):
            bad = [k for k in range(G) if rows[k] > 0 and count[k] == 0]
            if c is not None and bad:
                kind = "positive example (`y == 1`)" if c == 1 else "negative example (`y != 1`)"
                raise ValueError(
                    f"group(s) {bad} have rows but no {kind}, so their {crit.name} direction "
                    "is undefined; merge or drop them, or use another criterion (e.g. "
                    'criterion="demographic_parity").'
                )
    return U


@functools.partial(jax.jit, static_argnames=("num_groups", "criterion", "reference"))
def _direction_core(X, y, g, weights, *, num_groups, criterion, reference):
    """The directions, each condition's group counts and the group row counts (one compile)."""
    # FERM's labels are binary with 1 the positive one: every other value is a negative.
    binary = jnp.where(y == 1, 1, 0)
    rows = gs.group_counts(g, num_groups=num_groups, weights=weights)
    directions, counts = [], []
    for c in criterion.conditions:
        labels, value = (None, 1) if c is None else (binary, c)
        U, count = _condition_directions(
            X, g, weights, labels, num_groups=num_groups, label_value=value, reference=reference
        )
        directions.append(U)
        counts.append(count)
    return jnp.concatenate(directions), jnp.stack(counts), rows


def _condition_directions(X, g, weights, labels, *, num_groups, label_value, reference):
    """The ``G - 1`` directions of one condition (rows ``labels == label_value``; all if None)."""
    G = num_groups
    counts = gs.group_counts(
        g, num_groups=G, labels=labels, label_value=label_value, weights=weights
    )
    means = gs.group_means(
        X, g, num_groups=G, labels=labels, label_value=label_value, weights=weights
    )
    present = counts > 0
    if G == 1:
        return jnp.zeros((0, X.shape[1]), means.dtype), counts
    if reference == "first":
        ref = jnp.argmax(present)  # the first non-empty group (0 when all are empty)
        diffs = jnp.where(present[:, None], means - means[ref], 0.0)
        idx = jnp.arange(G - 1)
        idx = jnp.where(idx < ref, idx, idx + 1)  # every group but the reference, in order
        return diffs[idx], counts
    pooled = gs.safe_divide(counts @ means, jnp.sum(counts))
    return jnp.where(present[:, None], means - pooled, 0.0)[: G - 1], counts
