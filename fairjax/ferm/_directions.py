"""The FERM fairness directions: differences of group means of the features."""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_CONDITIONS = ("positive", "all")
_REFERENCES = ("first", "pooled")


def _check_option(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}, got {value!r}.")


def fairness_direction(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    condition: Literal["positive", "all"] = "positive",
    reference: Literal["first", "pooled"] = "first",
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
) -> Array:
    r"""The FERM fairness directions: differences of group means of the features.

    With :math:`m_g` the (weighted) mean of the rows of ``X`` over group :math:`g`, restricted to
    the positive examples (``condition="positive"``, equal opportunity) or to all examples
    (``condition="all"``, demographic parity):

    * ``reference="first"``: :math:`u_k = m_{g_k} - m_r`, with :math:`r` the first non-empty
      group and :math:`g_1 < g_2 < \dots` the other groups. For two groups this is the paper's
      :math:`u = m_1 - m_0`, and :math:`\langle w, u_k\rangle` is exactly the gap in mean output
      between group :math:`g_k` and group :math:`r`, so ``eps`` has that meaning.
    * ``reference="pooled"``: :math:`u_k = m_k - \bar m`, :math:`k = 0..G-2`, with
      :math:`\bar m` the mean over all (positive) rows.

    Both span the same subspace (so ``eps = 0`` gives the same constraint). A group with no rows
    (zero weight) contributes a zero row: the constraint is vacuous for it. A group that has rows
    but no positive example makes the equal-opportunity direction undefined: on concrete inputs
    this raises ``ValueError``; under ``jit`` it is treated like an empty group.

    For kernel FERM, pass the kernel matrix ``K`` (rows: the points the means run over, columns:
    the expansion points) as ``X``: row :math:`k` is then :math:`\tau_k` with
    :math:`\tau_{k,i} = \text{mean}_{j \in P_{g_k}} k(x_j, x_i) -
    \text{mean}_{j \in P_r} k(x_j, x_i)`.

    Args:
      X: features, shape ``(n, d)``.
      y: labels, shape ``(n,)``; rows with ``y == label_value`` are the positives.
      groups: integer group ids ``(n,)`` in ``[0, num_groups)`` or a membership matrix ``(n, G)``.
      num_groups: static number of groups ``G`` (required for integer ids).
      condition: ``"positive"`` (equal opportunity) or ``"all"`` (demographic parity).
      reference: ``"first"`` or ``"pooled"``, see above.
      label_value: the positive label (1 for both {0, 1} and {-1, +1} labels).
      weights: optional non-negative sample weights ``(n,)``.

    Returns:
      Array of shape ``(G - 1, d)`` (``(0, d)`` for a single group).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.ferm import fairness_direction
      >>> X = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
      >>> y = jnp.array([1, 1, 1, 0])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> fairness_direction(X, y, s, num_groups=2)  # mean(P_1) - mean(P_0)
      Array([[-2.,  2.]], dtype=float32)

    References:
      Donini et al., NeurIPS 2018, Sections 3-4 (linear loss, the vector u).
    """
    _check_option(condition, "condition", _CONDITIONS)
    _check_option(reference, "reference", _REFERENCES)
    X = v.as_array(X, "X", ndim=2)
    n = X.shape[0]
    v.check_finite(X, "X")
    y = v.as_array(y, "y", ndim=1)
    v.check_length(y, n, "y", "X")
    g = v.check_groups(groups, num_groups=num_groups, n=n)
    G = g.shape[1] if g.ndim == 2 else num_groups
    v.check_weights(weights, n)
    U, counts, rows = _direction_core(
        X, y, g, weights, num_groups=G, condition=condition, reference=reference,
        label_value=label_value,
    )  # fmt: skip
    if condition == "positive" and v.is_concrete(X, y, g, weights):
        counts, rows = np.asarray(counts), np.asarray(rows)
        bad = [k for k in range(G) if rows[k] > 0 and counts[k] == 0]
        if bad:
            raise ValueError(
                f"group(s) {bad} have rows but no positive example (`y == {label_value}`), so "
                "their equal-opportunity direction is undefined; merge or drop them, or use "
                'condition="all".'
            )
    return U


@functools.partial(jax.jit, static_argnames=("num_groups", "condition", "reference", "label_value"))
def _direction_core(X, y, g, weights, *, num_groups, condition, reference, label_value):
    """The directions, the (conditional) group counts and the group row counts (one compile)."""
    G = num_groups
    labels = y if condition == "positive" else None
    counts = gs.group_counts(
        g, num_groups=G, labels=labels, label_value=label_value, weights=weights
    )
    rows = gs.group_counts(g, num_groups=G, weights=weights)
    means = gs.group_means(
        X, g, num_groups=G, labels=labels, label_value=label_value, weights=weights
    )
    present = counts > 0
    if G == 1:
        return jnp.zeros((0, X.shape[1]), means.dtype), counts, rows
    if reference == "first":
        ref = jnp.argmax(present)  # the first non-empty group (0 when all are empty)
        diffs = jnp.where(present[:, None], means - means[ref], 0.0)
        idx = jnp.arange(G - 1)
        idx = jnp.where(idx < ref, idx, idx + 1)  # every group but the reference, in order
        return diffs[idx], counts, rows
    pooled = gs.safe_divide(counts @ means, jnp.sum(counts))
    return jnp.where(present[:, None], means - pooled, 0.0)[: G - 1], counts, rows
