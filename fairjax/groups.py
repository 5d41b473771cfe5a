"""Group statistics: the one place where fairjax computes per-group counts, sums and means.

A sensitive attribute is given either as integer ids of shape ``(n,)`` in ``[0, num_groups)``
with a static ``num_groups``, or as a float membership matrix of shape ``(n, G)`` (one-hot, or
soft membership such as a probability of belonging to each group). Both are turned into the
membership matrix ``M`` and every statistic is a contraction with it:

.. math::

    \\mathrm{count}_g = \\sum_i w_i c_i M_{ig}, \\qquad
    \\mathrm{sum}_g = \\sum_i w_i c_i M_{ig} v_i, \\qquad
    \\mathrm{mean}_g = \\mathrm{sum}_g / \\mathrm{count}_g,

where ``w`` are sample weights (a zero weight masks a row, which is how padding is expressed)
and ``c_i = [y_i = label\\_value]`` conditions on a label when ``labels=`` is given. Shapes are
static, so everything jit-compiles, vmaps and differentiates. An empty group has count 0 and mean
0, with finite gradients. Inside ``shard_map`` or ``pmap``, ``axis_name=`` sums the per-device
statistics with :func:`jax.lax.psum` before dividing, so a mean over a sharded batch equals the
mean over the whole batch.

``labels=``/``label_value=`` are the primitive beneath fairness criteria: which rows a rate
counts for demographic parity, equal opportunity or equalized odds is decided in one place,
:mod:`fairjax.criteria`, and fairness code conditions through it (``criterion=``,
:func:`fairjax.criteria.group_rates`, :func:`fairjax.criteria.condition_weights`) rather than
by passing label values here.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "column_sums",
    "decision_counts",
    "gather_rows",
    "group_counts",
    "group_means",
    "group_sums",
    "intersect",
    "intersection_names",
    "membership",
    "row_weights",
    "safe_divide",
]


def membership(
    groups: ArrayLike, *, num_groups: int | None = None, dtype: jnp.dtype | None = None
) -> Array:
    """Returns the ``(n, G)`` membership matrix of integer ids or of a membership matrix.

    Args:
      groups: integer ids, shape ``(n,)``, in ``[0, num_groups)``; or a float membership matrix,
        shape ``(n, G)``, returned as it is (cast to ``dtype``).
      num_groups: static number of groups; required for integer ids.
      dtype: floating dtype of the result; default: the membership matrix's own float dtype,
        else the default float dtype.

    Returns:
      Array of shape ``(n, num_groups)``: one-hot rows for integer ids.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import membership
      >>> membership(jnp.array([0, 2, 1]), num_groups=3)
      Array([[1., 0., 0.],
             [0., 0., 1.],
             [0., 1., 0.]], dtype=float32)
    """
    arr = v.check_groups(groups, num_groups=num_groups)
    if arr.ndim == 2:
        return arr.astype(dtype or v.float_dtype(arr))
    return jax.nn.one_hot(arr, num_groups, dtype=dtype or jnp.result_type(float))


def row_weights(
    n: int,
    *,
    weights: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    label_value: float | int = 1,
    dtype: jnp.dtype | None = None,
) -> Array:
    """The per-row weight every statistic of this module uses: ``w_i [y_i = label_value]``.

    Penalties that need the rows' weights themselves (a kernel mean embedding, a transport
    marginal) take them from here, so that conditioning on a label means the same everywhere.

    Args:
      n: number of rows.
      weights: optional non-negative sample weights ``(n,)``; default all ones.
      labels: optional labels ``(n,)``; rows with ``labels != label_value`` get weight 0,
        and a row of positive weight with a NaN label gets NaN (under ``jit``, where the
        value checks cannot run), so that a statistic over it reads NaN, not a rate of 0.
      label_value: the label value to condition on (default 1, the positive class).
      dtype: floating dtype of the result; default: the weights' float dtype, at least float32.

    Returns:
      Array of shape ``(n,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import row_weights
      >>> row_weights(3, weights=jnp.array([0.5, 1.0, 2.0]), labels=jnp.array([1, 0, 1]))
      Array([0.5, 0. , 2. ], dtype=float32)
    """
    n = v.check_scalar(n, "n", integer=True, nonnegative=True)
    dtype = dtype or v.float_dtype(weights)
    w = v.check_weights(weights, n)
    w = jnp.ones((n,), dtype) if w is None else w.astype(dtype)
    if labels is not None:
        y = v.as_array(labels, "labels", ndim=1)
        v.check_length(y, n, "labels", "the data")
        if label_value is None or isinstance(label_value, (str, bytes)):
            raise TypeError(f"`label_value` must be a number, got {label_value!r}.")
        kept = jnp.asarray(y == label_value).astype(dtype)
        if jnp.issubdtype(y.dtype, jnp.floating):  # a NaN label is no condition: NaN, not 0
            kept = jnp.where(jnp.isnan(y) & (w != 0), jnp.nan, kept)
        w = w * kept
    return w


def _prepare(values, groups, num_groups, weights, labels, label_value, *, nonempty=False):
    """Validated ``(values, groups, row weights)``; values and weights in the compute dtype.
    ``nonempty`` refuses zero rows (a mean of no rows is undefined; a sum of none is 0)."""
    x = v.as_array(values, "values")
    if x.ndim == 0:
        raise ValueError("`values` must have at least one axis (one row per sample), got a scalar.")
    if nonempty:
        v.check_nonempty(x, "values")
    v.check_finite(x, "values")
    g = v.check_groups(groups, num_groups=num_groups)
    v.check_length(g, x.shape[0], "groups", "values")
    dtype = v.float_dtype(x, g, weights)
    w = row_weights(
        x.shape[0], weights=weights, labels=labels, label_value=label_value, dtype=dtype
    )
    return x.astype(dtype), g, w


# Up to this many groups, integer ids with trailing axes are contracted with an on-the-fly
# one-hot comparison (XLA fuses it into the contraction); beyond it a segment sum keeps the work
# O(n) instead of O(n G).
_DENSE_MAX_GROUPS = 64


# Up to this many groups, one value per row (integer ids) is summed with one masked reduction
# per group: XLA's reductions are accurate in float32 and, under vmap (a Pareto sweep), stay
# reductions over each model's row. Beyond it one segment sum over the rows (a scatter-add,
# one pass whatever the number of groups) is faster on CPU: at 10^6 rows and 4 groups it takes
# a third of the time of four masked reductions (measured in benchmarks/results).
_MASKED_MAX_GROUPS = 2


# Rows are summed in blocks of this size, then the block sums are added: a float32 running
# sum over 10^7 rows drifts by ~0.3% (each addend is rounded against a large total); two levels
# keep the error near float32 resolution at the same speed.
_BLOCK_ROWS = 2048


def _block_segment_sum(rows: Array, groups: Array, num_groups: int) -> Array:
    """``(G, ...)`` group sums of ``rows`` by one blocked segment sum (a single scatter-add).

    Row ``i`` of group ``g`` adds into segment ``g + G * (i // B)``: each segment is a running
    sum of at most ``B`` rows (float32-accurate) and the ``(n / B, G)`` block sums are then
    added by a reduction. ``B`` grows with ``G`` so that the segments never outnumber the rows
    by more than ``1 / 32``.
    """
    n = rows.shape[0]
    block = _BLOCK_ROWS * -(-num_groups // _DENSE_MAX_GROUPS)
    num_blocks = max(-(-n // block), 1)
    seg = groups.astype(jnp.int32)
    if num_blocks > 1:
        seg = seg + num_groups * (jnp.arange(n, dtype=jnp.int32) // block)
    sums = jax.ops.segment_sum(rows, seg, num_segments=num_blocks * num_groups)
    return jnp.sum(sums.reshape(num_blocks, num_groups, *rows.shape[1:]), axis=0)


def _per_group_sum(rows: Array, groups: Array, num_groups: int | None) -> Array:
    """``sum_i M_ig rows_i`` for ids or a membership matrix; shape ``(G, *rows.shape[1:])``."""
    n = rows.shape[0]
    G = groups.shape[1] if groups.ndim == 2 else num_groups
    if groups.ndim == 1 and rows.ndim == 1:
        if G <= _MASKED_MAX_GROUPS:
            return jnp.stack([jnp.sum(jnp.where(groups == k, rows, 0)) for k in range(G)])
        return _block_segment_sum(rows, groups, G)
    if groups.ndim == 1 and G > _DENSE_MAX_GROUPS:
        return _block_segment_sum(rows, groups, G)
    if n > _BLOCK_ROWS:
        # Padding rows are zero, so they add nothing whatever group they are given.
        pad = -n % _BLOCK_ROWS
        rows = jnp.pad(rows, [(0, pad)] + [(0, 0)] * (rows.ndim - 1))
        groups = jnp.pad(groups, [(0, pad)] + [(0, 0)] * (groups.ndim - 1))
        blocks = rows.shape[0] // _BLOCK_ROWS
        rows = rows.reshape(blocks, _BLOCK_ROWS, *rows.shape[1:])
        groups = groups.reshape(blocks, _BLOCK_ROWS, *groups.shape[1:])
    else:
        rows, groups = rows[None], groups[None]
    if groups.ndim == 3:
        membership = groups.astype(rows.dtype)
    else:
        membership = (groups[..., None] == jnp.arange(G)).astype(rows.dtype)
    per_block = jnp.einsum("kbg,kb...->kg...", membership, rows)
    return jnp.sum(per_block, axis=0)


def column_sums(rows: ArrayLike) -> Array:
    """Sum over axis 0 with the blocked accumulation of the group sums (float32-accurate).

    A float32 running sum of 10^7 small terms drifts by about 0.4%; this is the same blocked
    accumulation as :func:`group_sums`, for a sum over rows that is not per group.

    Args:
      rows: array of shape ``(n, ...)``.

    Returns:
      Array of shape ``rows.shape[1:]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import column_sums
      >>> column_sums(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
      Array([4., 6.], dtype=float32)
    """
    rows = v.as_array(rows, "rows")
    if rows.ndim == 0:
        raise ValueError("`rows` must have a leading axis of rows, got a scalar.")
    return _per_group_sum(rows, jnp.zeros(rows.shape[:1], jnp.int32), 1)[0]


def gather_rows(*arrays: Array | None, axis_name: Hashable | None) -> tuple[Array | None, ...]:
    """All rows of every device along ``axis_name``, on every device (``None`` passes through).

    For statistics that need the whole batch at once (a sort, pairwise kernels, transport)
    inside ``shard_map``/``pmap``. Each device writes its rows into its slot of a zero array and
    a ``psum`` adds the slots up: unlike ``jax.lax.all_gather``, the result is typed as
    replicated, so ``shard_map`` can return values computed from it. Communication is O(n), so
    prefer the per-group sums of this module (O(G)) where they suffice.

    Args:
      *arrays: per-device arrays with rows on axis 0 (the same row count on every device).
      axis_name: the mapped axis; ``None`` returns the arrays unchanged.

    Returns:
      Tuple of arrays with ``devices * rows`` rows, in device order.
    """
    if axis_name is None:
        return arrays
    size = jax.lax.psum(1, axis_name)
    index = jax.lax.axis_index(axis_name)

    def gather(a: Array) -> Array:
        full = jnp.zeros((size * a.shape[0], *a.shape[1:]), a.dtype)
        # The other offsets take the device offset's integer type (int32 even under x64).
        placed = jax.lax.dynamic_update_slice_in_dim(full, a, index * a.shape[0], axis=0)
        return jax.lax.psum(placed, axis_name)

    return tuple(None if a is None else gather(a) for a in arrays)


def _weighted_group_sum(x: Array, w: Array, g: Array, num_groups: int | None) -> Array:
    """``sum_i w_i M_ig x_i``, the row weights ``(n,)`` broadcast over ``x``'s trailing axes."""
    return _per_group_sum(x * w.reshape(w.shape + (1,) * (x.ndim - 1)), g, num_groups)


def _psum(x: Array, axis_name: Hashable | None) -> Array:
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def group_counts(
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Weighted number of members of each group, optionally among rows with a given label.

    .. math:: \\mathrm{count}_g = \\sum_i w_i \\, [y_i = \\mathrm{label\\_value}] \\, M_{ig}

    Args:
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: optional labels ``(n,)``; when given, only rows with ``labels == label_value``
        count.
      label_value: the label value to condition on (default 1, the positive class).
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      axis_name: mapped axis to sum over when called inside ``shard_map``/``pmap``.

    Returns:
      Array of shape ``(G,)``, in at least float32.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import group_counts
      >>> s = jnp.array([0, 0, 1, 1, 1])
      >>> group_counts(s, num_groups=3)
      Array([2., 3., 0.], dtype=float32)
      >>> group_counts(s, num_groups=3, labels=jnp.array([1, 0, 1, 1, 0]))
      Array([1., 2., 0.], dtype=float32)
    """
    g = v.check_groups(groups, num_groups=num_groups)
    dtype = v.float_dtype(g, weights)
    w = row_weights(
        g.shape[0], weights=weights, labels=labels, label_value=label_value, dtype=dtype
    )
    return _psum(_group_weight(w, g, num_groups, weights, labels, label_value), axis_name)


def group_sums(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
) -> Array:
    """Weighted sum of ``values`` within each group.

    .. math:: \\mathrm{sum}_g = \\sum_i w_i \\, [y_i = \\mathrm{label\\_value}] \\, M_{ig} \\, v_i

    Args:
      values: array of shape ``(n,)`` or ``(n, d1, ...)``; trailing axes are kept.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: optional labels ``(n,)`` to condition on ``labels == label_value``.
      label_value: the label value to condition on (default 1).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis to sum over inside ``shard_map``/``pmap``.

    Returns:
      Array of shape ``(G, d1, ...)``, in the values' float dtype (at least float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import group_sums
      >>> group_sums(jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 1, 1]), num_groups=2)
      Array([1., 5.], dtype=float32)
    """
    x, g, w = _prepare(values, groups, num_groups, weights, labels, label_value)
    return _psum(_weighted_group_sum(x, w, g, num_groups), axis_name)


def group_means(
    values: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    return_counts: bool = False,
) -> Array | tuple[Array, Array]:
    """Weighted mean of ``values`` within each group; 0 for an empty group.

    .. math:: \\mathrm{mean}_g = \\frac{\\sum_i w_i c_i M_{ig} v_i}{\\sum_i w_i c_i M_{ig}}
       \\quad (0 \\text{ when the denominator is } 0)

    With ``axis_name``, numerator and denominator are summed across devices before the division,
    so the result is the mean over the whole (sharded) batch. Without weights, integer ids of up
    to 8 groups are counted exactly, and boolean values (hard decisions) too, all in one pass
    (:func:`decision_counts`).

    Args:
      values: array of shape ``(n,)`` or ``(n, d1, ...)``.
      groups: integer ids ``(n,)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: optional labels ``(n,)`` to condition on ``labels == label_value``.
      label_value: the label value to condition on (default 1).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis to reduce over inside ``shard_map``/``pmap``.
      return_counts: also return the group counts (the denominators).

    Returns:
      Array of shape ``(G, d1, ...)``; with ``return_counts``, the tuple ``(means, counts)``,
      counts of shape ``(G,)``, which tell an empty group (count 0) from a group whose mean is
      0.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import group_means
      >>> x = jnp.array([1.0, 2.0, 3.0, 5.0])
      >>> group_means(x, jnp.array([0, 0, 1, 1]), num_groups=3)
      Array([1.5, 4. , 0. ], dtype=float32)
    """
    x, g, w = _prepare(values, groups, num_groups, weights, labels, label_value, nonempty=True)
    exact = _exact_condition(g, num_groups, weights, labels, label_value)
    if exact is not None and x.ndim == 1 and getattr(values, "dtype", None) == jnp.bool_:
        # Boolean values (hard decisions): their sums are counts too; all in one pass.
        d = v.as_array(values, "values", ndim=1)
        pairs = _exact_counts(g, *exact, num_groups, decisions=d).reshape(num_groups, 2)
        counts, sums = _psum(pairs.astype(x.dtype), axis_name).T
        means = safe_divide(sums, counts)
        return (means, counts) if return_counts else means
    # Sums and counts are separate reductions: the counts do not depend on the values, so in a
    # training loop XLA computes them once, outside the loop, and under vmap over the values
    # (a Pareto sweep) they are not repeated per model.
    sums = _weighted_group_sum(x, w, g, num_groups)
    counts = _psum(_group_weight(w, g, num_groups, weights, labels, label_value), axis_name)
    means = safe_divide(_psum(sums, axis_name), counts.reshape(counts.shape + (1,) * (x.ndim - 1)))
    return (means, counts) if return_counts else means


# decision_counts: up to this many groups (one pass, two sums per group and condition). Rows
# are summed in blocks of _COUNT_BLOCK_ROWS, whose sums XLA's CPU backend computes in parallel,
# then the block sums are added in int32. Each term is 0 or 1, so a block's sums fit int16:
# for inputs of one byte (bool, int8) int16 sums take half the time of int32 ones; for wider
# inputs, which the memory bounds, int32 is as fast.
DECISION_COUNTS_MAX_GROUPS = 8
_COUNT_BLOCK_ROWS = 4096


def _count_one_pass(terms, *arrays: Array) -> tuple[Array, ...]:
    """Each 0/1 boolean array of ``terms(*row_blocks)`` counted over its rows, in one pass.

    One variadic reduction over blocks of rows (then over the block sums) reads ``arrays``
    once for all the counts, where separate reductions would read them once per count.
    """
    narrow = max(a.dtype.itemsize for a in arrays) == 1
    block_dtype = jnp.int16 if narrow else jnp.int32

    def add(a, b):
        return tuple(x + y for x, y in zip(a, b, strict=True))

    def count(parts, axis, dtype):
        parts = tuple(p.astype(dtype) for p in parts)
        return jax.lax.reduce(parts, tuple(jnp.zeros((), dtype) for _ in parts), add, (axis,))

    n = arrays[0].shape[0]
    head = n - n % _COUNT_BLOCK_ROWS
    sums = count(terms(*(a[head:] for a in arrays)), 0, jnp.int32)
    if head:
        blocks = terms(*(a[:head].reshape(-1, _COUNT_BLOCK_ROWS) for a in arrays))
        sums = add(sums, tuple(jnp.sum(b, dtype=jnp.int32) for b in count(blocks, 1, block_dtype)))
    return sums


def decision_counts(
    decisions: ArrayLike,
    groups: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    num_groups: int,
    label_values: Sequence[int | None] = (None,),
    axis_name: Hashable | None = None,
) -> tuple[Array, Array]:
    r"""Rows and positive decisions of each group and label condition, exactly, in one pass.

    .. math::

        \mathrm{rows}_{cg} = \sum_i [s_i = g] \, [y_i = \ell_c], \qquad
        \mathrm{positives}_{cg} = \sum_i [s_i = g] \, [y_i = \ell_c] \, [d_i \neq 0]

    (:math:`[y_i = \ell_c] = 1` for every row when :math:`\ell_c` is None). These are the
    counts behind every rate of unweighted hard decisions (selection rate, TPR, FPR):
    :func:`group_means` of boolean values takes them from here, and so the rates of
    :func:`fairjax.criteria.group_rates` and the parity metrics. All ``2 C G`` counts come
    from one read of the rows (a variadic reduction over blocks of rows, exact in integers),
    where :func:`group_counts` and :func:`group_sums` make one float reduction each.

    Args:
      decisions: integer or boolean decisions ``(n,)``; a nonzero decision is positive.
      groups: integer ids ``(n,)`` in ``[0, num_groups)``.
      labels: integer or boolean labels ``(n,)``; required when ``label_values`` holds a value.
      num_groups: static number of groups, at most ``DECISION_COUNTS_MAX_GROUPS`` (8).
      label_values: one condition per entry: None counts every row, a value ``v`` the rows
        with ``labels == v``.
      axis_name: mapped axis to sum over inside ``shard_map``/``pmap``.

    Returns:
      ``(rows, positives)``, int32 arrays of shape ``(len(label_values), num_groups)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import decision_counts
      >>> d, s = jnp.array([1, 0, 1, 1]), jnp.array([0, 0, 1, 1])
      >>> rows, positives = decision_counts(d, s, jnp.array([1, 1, 0, 1]), num_groups=2,
      ...                                   label_values=(None, 1))
      >>> rows
      Array([[2, 2],
             [2, 1]], dtype=int32)
      >>> positives
      Array([[1, 2],
             [1, 1]], dtype=int32)
    """
    G = v.check_num_groups(num_groups)
    if G > DECISION_COUNTS_MAX_GROUPS:
        raise ValueError(
            f"`num_groups` must be at most {DECISION_COUNTS_MAX_GROUPS} here, got {G}: use "
            "group_counts and group_sums for more groups."
        )
    d = v.as_array(decisions, "decisions", ndim=1)
    if not _integer_dtype(d.dtype):
        raise TypeError(f"`decisions` must be integer or boolean, got dtype {d.dtype}.")
    g = v.check_groups(groups, num_groups=G)
    if g.ndim != 1:
        raise ValueError(f"`groups` must be integer ids of shape (n,), got shape {g.shape}.")
    v.check_length(g, d.shape[0], "groups", "decisions")
    if isinstance(label_values, (str, bytes)) or not isinstance(label_values, Sequence):
        raise TypeError(
            "`label_values` must be a sequence of label values or None (one condition each), "
            f"got {type(label_values).__name__}."
        )
    conditions = tuple(label_values)
    if not conditions:
        raise ValueError("`label_values` must hold at least one condition.")
    for c in conditions:
        if c is not None and not _label_scalar(c):
            raise TypeError(f"`label_values` must hold numbers or None, got {c!r}.")
    y = None
    if any(c is not None for c in conditions):
        if labels is None:
            raise ValueError("`labels` are required when `label_values` holds a value.")
        y = v.as_array(labels, "labels", ndim=1)
        if not _integer_dtype(y.dtype):
            raise TypeError(f"`labels` must be integer or boolean, got dtype {y.dtype}.")
        v.check_length(y, d.shape[0], "labels", "decisions")
    sums = _exact_counts(g, y, conditions, G, decisions=d).reshape(len(conditions), G, 2)
    sums = _psum(sums, axis_name)
    return sums[..., 0], sums[..., 1]


def _integer_dtype(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_


def _label_scalar(value) -> bool:
    """A label value the counts can compare with and compile for: a real Python or NumPy
    number (hashable; a JAX array is not)."""
    return isinstance(value, (int, float, np.integer, np.floating))


@functools.partial(jax.jit, static_argnames=("conditions", "num_groups"))
def _exact_counts(g, y, conditions, num_groups, decisions=None) -> Array:
    """Rows of each label condition and group, int32, in one pass: shape ``(C * G,)``; with
    ``decisions``, ``(C * G * 2,)``, each count followed by its rows' nonzero decisions."""
    arrays = {"g": g}
    if any(c is not None for c in conditions):
        arrays["y"] = y
    if decisions is not None:
        arrays["d"] = decisions
    names = tuple(arrays)

    def terms(*blocks):
        b = dict(zip(names, blocks, strict=True))
        parts = []
        for c in conditions:
            for k in range(num_groups):
                member = b["g"] == k if c is None else (b["g"] == k) & (b["y"] == c)
                parts += [member, member & (b["d"] != 0)] if "d" in b else [member]
        return tuple(parts)

    return jnp.stack(_count_one_pass(terms, *arrays.values()))


def _exact_condition(g, num_groups, weights, labels, label_value):
    """``(labels, conditions)`` for :func:`_exact_counts` when the group weights are counts of
    rows (no sample weights, integer ids of at most ``DECISION_COUNTS_MAX_GROUPS`` groups,
    integer or boolean labels if any, compared with a number), else None."""
    y = None if labels is None else v.as_array(labels, "labels", ndim=1)
    if (
        weights is None
        and g.ndim == 1
        and num_groups <= DECISION_COUNTS_MAX_GROUPS
        and (y is None or (_integer_dtype(y.dtype) and _label_scalar(label_value)))
    ):
        return y, (None if y is None else label_value,)
    return None


def _group_weight(w, g, num_groups, weights, labels, label_value) -> Array:
    """``sum_i w_i M_ig`` of the row weights ``w``: exact integer counts, all groups in one
    pass, where they are counts of rows (:func:`_exact_condition`); else float sums (one
    masked reduction or one scatter each)."""
    exact = _exact_condition(g, num_groups, weights, labels, label_value)
    if exact is None:
        return _per_group_sum(w, g, num_groups)
    return _exact_counts(g, *exact, num_groups).astype(w.dtype)


def safe_divide(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator`` where the denominator is positive, else 0 (NaN for a NaN
    denominator), with finite grads.

    The double ``where`` keeps the gradient finite: the division never sees a zero denominator,
    so no ``inf * 0 = NaN`` reaches the backward pass. A NaN denominator (a NaN weight under
    ``jit``) gives NaN, not the 0 of an empty group, which would read as a rate of 0.
    """
    positive = denominator > 0
    other = jnp.where(jnp.isnan(denominator), denominator, 0)
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1), other)


def intersect(*attributes: ArrayLike, num_groups: Sequence[int]) -> Array:
    """Combines several sensitive attributes into intersectional group ids.

    With attributes ``a_1..a_K`` taking ``G_1..G_K`` values, the id is the mixed-radix number

    .. math:: s = (((a_1) G_2 + a_2) G_3 + \\dots) G_K + a_K \\in [0, G_1 \\cdots G_K),

    a bijection between value combinations and ids (the first attribute varies slowest).
    Combinations that do not occur are simply empty groups. Pass ``num_groups=prod(num_groups)``
    to the other functions; :func:`intersection_names` gives matching labels.

    Args:
      *attributes: integer arrays of the same shape ``(n,)``.
      num_groups: the static number of values of each attribute, one int per attribute.

    Returns:
      int32 array of shape ``(n,)`` with ids in ``[0, prod(num_groups))``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.groups import intersect
      >>> sex, race = jnp.array([0, 1, 1, 0]), jnp.array([2, 0, 1, 1])
      >>> intersect(sex, race, num_groups=(2, 3))
      Array([2, 3, 4, 1], dtype=int32)
    """
    if not attributes:
        raise ValueError("`intersect` needs at least one attribute.")
    if not isinstance(num_groups, Sequence | np.ndarray):
        raise TypeError(
            f"`num_groups` must give one size per attribute (a sequence), got {num_groups!r}."
        )
    sizes = tuple(num_groups)
    if len(sizes) != len(attributes):
        raise ValueError(
            f"`num_groups` must give one size per attribute ({len(attributes)}), got {len(sizes)}."
        )
    total = int(np.prod([v.check_num_groups(g) for g in sizes]))
    if total > np.iinfo(np.int32).max:
        raise ValueError(f"the intersection has {total} groups, more than int32 ids can hold.")
    first = v.check_groups(attributes[0], num_groups=sizes[0])
    if first.ndim != 1:  # a membership matrix has no single id to combine
        raise ValueError(f"attribute 0 must be integer ids of shape (n,), got {first.shape}.")
    ids = first.astype(jnp.int32)
    for k, (attr, size) in enumerate(zip(attributes[1:], sizes[1:], strict=True), start=1):
        a = v.check_groups(attr, num_groups=size)
        if a.ndim != 1 or a.shape != first.shape:
            raise ValueError(
                f"attribute {k} must be integer ids of shape {first.shape} like attribute 0, "
                f"got {a.shape}."
            )
        ids = ids * size + a.astype(jnp.int32)
    return ids


def intersection_names(*names: Sequence[str], separator: str = " & ") -> list[str]:
    """Labels of the ids made by :func:`intersect`, in the same order.

    Args:
      *names: one sequence of labels per attribute, in the order given to :func:`intersect`
        (the first varies slowest).
      separator: text put between the labels of one intersection.

    Returns:
      A list of ``prod(len(n) for n in names)`` strings.

    Raises:
      TypeError: if one of ``names`` is a string (it would be read as its characters).

    Example:
      >>> from fairjax.groups import intersection_names
      >>> intersection_names(["F", "M"], ["young", "old"])
      ['F & young', 'F & old', 'M & young', 'M & old']
    """
    for k, level in enumerate(names):
        if isinstance(level, (str, bytes)):
            raise TypeError(
                f"`names[{k}]` must be a sequence of labels, not the string {level!r}: "
                f"write [{level!r}] for one label"
            )
    labels = [""]
    for k, level in enumerate(names):
        labels = [f"{a}{separator if k else ''}{b}" for a in labels for b in level]
    return labels
