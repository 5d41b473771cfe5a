"""Debiased Sinkhorn divergence between group-conditional representation distributions (ott-jax).

Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, NeurIPS 2020; Feydy et al., AISTATS 2019.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax._nan import propagate_nan
from fairjax._shapes import bucket
from fairjax.penalties._mmd import (
    _check_common,
    _default_criterion,
    _legacy,
    _Measures,
    _sum_conditions,
)

if TYPE_CHECKING:  # ott-jax is imported when the penalty is first called, not with fairjax.
    from ott.geometry import costs
    from ott.tools import sinkhorn_divergence as ott_sd

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["sinkhorn"]


def _weighted_mean_sq_cost(x: Array, w: Array) -> Array:
    """:math:`\\sum_{ij} w_i w_j \\|x_i - x_j\\|^2 / (\\sum w)^2 = 2 \\sum_i \\hat w_i
    \\|x_i - \\bar x\\|^2`, in linear time."""
    w_hat = gs.safe_divide(w, jnp.sum(w))
    mean = w_hat @ x
    return 2.0 * (w_hat @ jnp.sum((x - mean) ** 2, axis=1))


def sinkhorn(
    h: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    labels: ArrayLike | None = None,
    criterion: str | criteria.Criterion | None = None,
    weights: ArrayLike | None = None,
    epsilon: float = 0.1,
    relative_epsilon: str | None = "mean",
    cost_fn: costs.CostFn | None = None,
    reference: str = "pooled",
    reduction: str = "mean",
    group_size: int | Sequence[int] | None = None,
    solver_kwargs: Mapping[str, Any] | None = None,
    axis_name: Hashable | None = None,
    return_output: bool = False,
    label_value: float | int | None = None,
) -> Array | tuple[Array, ott_sd.SinkhornDivergenceOutput]:
    r"""Debiased Sinkhorn divergence between the groups' representation distributions.

    With :math:`\mu_g` the weighted empirical distribution of the representations in group
    :math:`g` and :math:`\mu` the pooled one (the same weights as in
    :func:`~fairjax.penalties.mmd`), the entropic optimal transport cost for the ground cost
    :math:`c(x, y) = \|x - y\|^2` (by default) and regularisation :math:`\varepsilon`,

    .. math::

        \mathrm{OT}_\varepsilon(\alpha, \beta) = \min_{\pi \in \Pi(\alpha, \beta)}
          \int c \, d\pi + \varepsilon \, \mathrm{KL}(\pi \,\|\, \alpha \otimes \beta),

    is debiased into the Sinkhorn divergence (Feydy et al. 2019)

    .. math::

        S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
          - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha)
          - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta) \;\ge 0,

    which is 0 exactly when :math:`\alpha = \beta`, interpolates between the Wasserstein cost
    (:math:`\varepsilon \to 0`) and an MMD with kernel :math:`-c` (:math:`\varepsilon \to
    \infty`), and is smooth in the points and the weights. ``reference="pooled"`` (default)
    compares every group with the pooled distribution, and ``reduction="mean"`` returns
    :math:`\sum_g p_g S_\varepsilon(\mu_g, \mu)`, :math:`p_g` the weighted group
    proportions; ``reference="pairwise"`` compares the groups pair by pair (for two groups
    ``"mean"`` is :math:`S_\varepsilon(\mu_0, \mu_1)`, the paper's penalty), averaged with
    weights :math:`p_i p_j`. ``"max"`` is the worst comparison, ``"none"`` returns all of them
    (shape ``(G,)`` pooled, ``(G, G)`` symmetric pairwise). ``criterion=`` picks the rows
    compared, as in :func:`~fairjax.penalties.mmd`; ``"equalized_odds"`` (Hardt et al. 2016)
    is the **sum** of the :math:`y = 1` and :math:`y = 0` divergences.

    Every divergence is computed by ott-jax
    (:func:`ott.tools.sinkhorn_divergence.sinkhorn_divergence` on
    :class:`~ott.geometry.pointcloud.PointCloud` geometries), on the groups themselves: the
    rows of positive weight of each group are gathered, in row order, into a block of a static
    size ``group_size`` (the pooled measure into a block of its own), free slots being points
    of weight 0, and each comparison solves block against block with the normalised row
    weights as the marginals ``a`` and ``b`` (several comparisons are ``vmap``-ed). The value,
    gradient and iteration counts are those of ott-jax called directly on ``h[s == i]`` and
    ``h[s == j]``, and the work per iteration is :math:`O(\text{group\_size}^2)` per problem
    (pooled: :math:`O(\text{group\_size} \cdot n + n^2)`), not :math:`O(n^2)` for every
    comparison.

    The block sizes are static (they fix the shapes of the compiled program), one per group:

    * group ids known when ``sinkhorn`` is called (eager calls, or ids closed over by a
      ``jit``-ed function): the largest group's number of rows of positive weight, rounded
      up to a coarse grid (8 to 16 sizes per doubling, at most 1/8 of padding), and for
      each other group that size halved (rounding up) as long as it still holds the group's
      rows. A small group is then padded by less than 2x instead of to the largest group's
      size (for groups of 90% and 10% of the rows, the pairwise comparison's cross term does
      an eighth of the work of equal blocks, the small group's own term a sixty-fourth: the
      divergence as a whole about 2.6x less), and the sizes depend only on the largest group
      and each group's share in powers of two, so batches of nearby compositions share a
      compiled program (a group whose share sits at a power of two from the largest may
      alternate between two sizes: up to about twice the programs of one size for all); a
      ``group_size`` passed explicitly is used instead, and a ``ValueError`` is raised when
      a group is larger;
    * group ids traced (arguments of a ``jit``-ed function, ``lax.scan`` over batches,
      ``shard_map``): ``group_size`` if given, else ``n`` (every block holds all rows: correct,
      but up to :math:`(n / n_g)^2` times the work). Pass ``group_size`` in training loops: an
      upper bound on the rows of positive weight per group (e.g. a batch size times the
      largest group share plus a margin), or one bound per group (a sequence of ``G``
      integers) when the groups' sizes differ. **A group larger than its** ``group_size``
      **cannot raise under a trace: its rows beyond the first** ``group_size`` **(in row
      order) are dropped**, so the value is the divergence of that truncated group. Traced
      weights or labels are counted as positive.

    Comparisons whose blocks have the same shapes are solved as one batch (``vmap``); when
    the per-group sizes would make more than four different shapes, or with
    ``return_output=True`` (whose outputs are stacked), every group gets the largest size.

    A comparison with an empty side is replaced by a harmless one (uniform weights on both
    blocks) and its value set to 0 (left out of ``"max"``), so value and gradient stay finite;
    with ``return_output`` its entry of the output is that stand-in problem's.
    For large batches pass ``solver_kwargs`` (e.g. ``{"max_iterations": 200}``) or use
    :func:`~fairjax.penalties.mmd` with random features.

    Args:
      h: representations, shape ``(n, r)`` (or ``(n,)``).
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: optional labels ``(n,)``; required by a criterion that conditions on them.
      criterion: the rows compared, a name of :data:`fairjax.criteria.CRITERIA`. Default:
        ``"equal_opportunity"`` (rows with ``y = 1``) when ``labels`` are given, else
        ``"demographic_parity"`` (all rows).
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      epsilon: the entropic regularisation: a fraction of the mean cost when
        ``relative_epsilon="mean"`` (default 0.1), else an absolute value.
      relative_epsilon: ``"mean"`` (default): :math:`\varepsilon` is ``epsilon`` times the
        weighted mean cost :math:`\sum_{ij} w_i w_j c(h_i, h_j) / (\sum w)^2` of the rows
        (computed without gradient; masked rows do not change it, and the penalty does not
        depend on the scale of ``h``; a degenerate mean of 0 gives ``epsilon`` itself);
        ``None``: ``epsilon`` is absolute.
      cost_fn: an ott-jax cost (default :class:`ott.geometry.costs.SqEuclidean`); the
        relative scale uses the squared Euclidean mean cost whatever ``cost_fn``.
      reference: ``"pooled"`` (default) or ``"pairwise"``.
      reduction: ``"mean"`` (default), ``"max"`` or ``"none"``.
      group_size: static upper bound on the rows of positive weight in any group (after
        masks and labels), or ``G`` bounds, one per group (a sequence or a 1-D integer
        array, not traced): the sizes of the blocks ott-jax solves on. Default: computed
        from the group ids when they are concrete, else ``n`` (see above).
      solver_kwargs: passed to ott-jax's Sinkhorn solver (``threshold``,
        ``max_iterations``, ``lse_mode``, ``implicit_diff``, ...).
      axis_name: inside ``shard_map``/``pmap``, the mapped axis: the rows are all-gathered
        first, so every device gets the value of the whole batch.
      return_output: also return ott-jax's
        :class:`~ott.tools.sinkhorn_divergence.SinkhornDivergenceOutput` of the comparisons
        (batched along a leading axis): convergence flags, iterations, potentials. For
        ``"equalized_odds"`` the comparisons of ``y = 1`` come first, then those of ``y = 0``
        (both solved on blocks of the larger of the two conditions' sizes).
      label_value: deprecated: ``label_value=1`` is ``criterion="equal_opportunity"``,
        ``0`` is ``"false_positive_parity"`` (a ``DeprecationWarning``).

    Returns:
      The divergence (a scalar, or per comparison for ``reduction="none"``) in the
      representations' float dtype; with ``return_output``, the tuple ``(value, output)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.penalties import sinkhorn
      >>> s = jnp.array([0, 0, 1, 1])
      >>> kw = dict(num_groups=2, reference="pairwise", epsilon=1e-2, relative_epsilon=None)
      >>> same = jnp.array([[0.0], [1.0], [0.0], [1.0]])
      >>> abs(float(sinkhorn(same, s, **kw))) < 1e-6
      True
      >>> apart = jnp.array([[0.0], [0.0], [1.0], [1.0]])
      >>> round(float(sinkhorn(apart, s, **kw)), 3)  # the squared distance between the Diracs
      1.0
      >>> import jax  # traced group ids: give the static block size
      >>> f = jax.jit(lambda z, g: sinkhorn(z, g, group_size=2, **kw))
      >>> round(float(f(apart, s)), 3)
      1.0

    References:
      Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, *Exploiting MMD and Sinkhorn
      divergences for fair and transferable representation learning*, NeurIPS 2020;
      Feydy, Sejourne, Vialard, Amari, Trouve, Peyre, *Interpolating between optimal
      transport and MMD using Sinkhorn divergences*, AISTATS 2019; Cuturi et al.,
      *Optimal Transport Tools (OTT)*, arXiv:2201.12324; Hardt, Price, Srebro, *Equality of
      opportunity in supervised learning*, NeurIPS 2016 (equalized odds).

    .. versionchanged:: 0.1.0
       ``criterion=`` replaces ``label_value=`` (deprecated).

    .. versionchanged:: 0.1.0
       Each group's block has its own size (computed, or ``group_size=`` a sequence), instead
       of every block the largest group's size.
    """
    crit = criteria.resolve(
        criterion,
        where="penalties.sinkhorn",
        default=_default_criterion(labels),
        **_legacy(label_value, labels),
    )
    if relative_epsilon not in ("mean", None):
        raise ValueError(f"`relative_epsilon` must be 'mean' or None, got {relative_epsilon!r}.")
    v.check_scalar(epsilon, "epsilon", positive=True)
    if solver_kwargs is not None and not isinstance(solver_kwargs, Mapping):
        raise TypeError(f"`solver_kwargs` must be a mapping, got {type(solver_kwargs).__name__}.")
    x, m, ws = _check_common(h, groups, num_groups, labels, crit, weights, reference, reduction)
    x, m, ws = gs.gather_rows(x, m, ws.T, axis_name=axis_name)
    if reference == "pairwise" and m.shape[1] < 2:
        raise ValueError("`reference='pairwise'` needs at least two groups.")
    n, num = x.shape[0], m.shape[1]
    bounds = _check_group_size(group_size, num)
    sizes = (
        None
        if axis_name is not None
        else _support_sizes(groups, num_groups, labels, crit, weights, n)
    )
    pooled_cap = n
    caps = (n,) * num if bounds is None else bounds
    if sizes is not None:
        group_rows, pooled_rows, exact = sizes
        if bounds is None:
            caps = _fraction_caps(_bucket(max(group_rows), n), group_rows)
        elif exact:
            _check_capacity(group_size, bounds, group_rows)
        pooled_cap = _bucket(pooled_rows, n)
    caps = tuple(min(c, n) for c in caps)
    # Stacked outputs need one shape; a few shapes at most keep the program small.
    most = 1 if return_output else _MAX_BLOCK_SHAPES
    if len(set(_comparison_shapes(caps, pooled_cap, reference))) > most:
        caps = (max(caps),) * num
    config = dict(
        group_caps=caps,
        pooled_cap=pooled_cap,
        relative=relative_epsilon == "mean",
        reference=reference,
        reduction=reduction,
        return_output=return_output,
    )
    solve_items = tuple(sorted((solver_kwargs or {}).items()))
    try:
        hash(solve_items)
    except TypeError:  # unhashable solver options: run the same program without the cache
        core = _core
    else:
        core = _core_jit
    terms = [core(x, m, w, epsilon, cost_fn, solve_items=solve_items, **config) for w in ws.T]
    if not return_output:
        return propagate_nan(_sum_conditions(terms), x, m, ws, labels)
    values, outputs = zip(*terms, strict=True)
    output = outputs[0] if len(outputs) == 1 else jax.tree.map(_concat, *outputs)
    return propagate_nan(_sum_conditions(list(values)), x, m, ws, labels), output


def _concat(*leaves):
    """The outputs of several conditions' comparisons, one after the other on the leading axis."""
    return jnp.concatenate([jnp.asarray(t) for t in leaves])


def _bucket(rows: int, n: int) -> int:
    """A static block size >= ``rows`` (and <= ``n``) from a coarse grid: 8 to 16 sizes per
    doubling, so the padding stays under 1/8 and nearby group sizes share one program."""
    return min(bucket(max(int(rows), 1), minimum=1, per_octave=8), n)


def _check_group_size(group_size, num: int) -> tuple[int, ...] | None:
    """``group_size`` as ``G`` per-group bounds (``None`` when not given)."""
    if group_size is None:
        return None
    if not v.is_concrete(group_size) or (
        isinstance(group_size, Sequence) and not v.is_concrete(*group_size)
    ):
        raise TypeError(
            "`group_size` must be static (Python or NumPy integers): it fixes the shapes of "
            "the compiled program; got a traced value."
        )
    if isinstance(group_size, (str, bytes)):
        raise TypeError(
            f"`group_size` must be an integer or a sequence of integers, got {group_size!r}."
        )
    if isinstance(group_size, Sequence) or np.ndim(group_size) == 1:
        bounds = list(group_size)
        if len(bounds) != num:
            raise ValueError(
                f"`group_size` must be one integer or {num} integers (one per group), "
                f"got {len(bounds)}."
            )
        return tuple(
            int(v.check_scalar(b, f"group_size[{g}]", integer=True, positive=True))
            for g, b in enumerate(bounds)
        )
    return (int(v.check_scalar(group_size, "group_size", integer=True, positive=True)),) * num


def _fraction_caps(largest: int, group_rows) -> tuple[int, ...]:
    """Each group's block size: the largest block halved (rounding up) while it still holds
    the group's rows, so a small group is padded by less than 2x, and the sizes depend on
    the largest block and each group's share in powers of two only: batches of nearby
    group sizes share one compiled program."""
    caps = []
    for rows in group_rows:
        cap = largest
        while cap > 1 and -(-cap // 2) >= rows:
            cap = -(-cap // 2)
        caps.append(cap)
    return tuple(caps)


def _check_capacity(group_size, bounds: tuple[int, ...], group_rows) -> None:
    """Raises when a group has more rows of positive weight than its bound (concrete inputs)."""
    for g, (bound, rows) in enumerate(zip(bounds, group_rows, strict=True)):
        if rows <= bound:
            continue
        if np.ndim(group_size) == 1 or isinstance(group_size, Sequence):
            raise ValueError(
                f"`group_size[{g}]={bound}` is smaller than group {g} ({rows} rows of "
                f"positive weight); pass at least {rows}."
            )
        largest = max(group_rows)
        raise ValueError(
            f"`group_size={bound}` is smaller than the largest group ({largest} rows of "
            f"positive weight); pass at least {largest}."
        )


# At most this many block shapes (batched solves) per program; beyond, one shape for all.
_MAX_BLOCK_SHAPES = 4


def _comparisons(num: int, reference: str) -> list[tuple[int, int | None]]:
    """The compared pairs, in the order of the values: ``(g, None)`` is group ``g`` against the
    pooled rows (``"pooled"``), ``(i, j)`` group ``i`` against group ``j``, ``i < j``."""
    if reference == "pooled":
        return [(g, None) for g in range(num)]
    i, j = np.triu_indices(num, k=1)
    return [(int(a), int(b)) for a, b in zip(i, j, strict=True)]


def _comparison_shapes(caps, pooled_cap, reference) -> list[tuple[int, int]]:
    """The block sizes ``(left, right)`` of each comparison."""
    return [
        (caps[i], pooled_cap if j is None else caps[j])
        for i, j in _comparisons(len(caps), reference)
    ]


def _support_sizes(groups, num_groups, labels, crit, weights, n):
    """``(rows per group, pooled rows, exact)``: rows of positive weight, from concrete inputs.

    Each the largest over the conditions of the criterion. ``None`` when the group ids are
    traced. Traced weights or labels count as positive, so the sizes are then upper bounds
    (``exact=False``).
    """
    if not v.is_concrete(groups):
        return None
    known_w = weights if v.is_concrete(weights) else None
    known_y = labels if v.is_concrete(labels) or not crit.needs_labels else None
    # Traced labels: every row of positive weight may enter, as in demographic parity.
    rows_of = crit if known_y is not None or not crit.needs_labels else "demographic_parity"
    # Inside a trace even operations on constants are staged out: evaluate these now.
    with jax.ensure_compile_time_eval():
        m = gs.membership(groups, num_groups=num_groups)
        w = criteria.condition_weights(rows_of, known_y, known_w, n=n)
        group_rows = np.asarray(jnp.sum((m[None] * w[:, :, None]) > 0, axis=1))
        pooled_rows = int(np.max(np.sum(np.asarray(w) > 0, axis=1)))
    exact = known_w is weights and known_y is labels
    return [int(r) for r in group_rows.max(axis=0)], pooled_rows, exact


def _compact(x: Array, row_w: Array, cap: int) -> tuple[Array, Array]:
    """The rows of positive weight, in order, in a ``(cap, r)`` block with their weights.

    Free slots repeat the first kept row (a real point, so no artificial cost) with weight 0.
    Rows beyond ``cap`` are dropped (the caller checks the capacity on concrete inputs).
    """
    keep = row_w > 0
    slot = jnp.cumsum(keep) - 1
    n = x.shape[0]
    # Each kept row writes its index into its slot; other rows (and overflow) write nowhere.
    idx = (
        jnp.zeros((cap,), jnp.int32)
        .at[jnp.where(keep, slot, cap)]
        .set(jnp.arange(n, dtype=jnp.int32), mode="drop")
    )
    filled = jnp.arange(cap) < jnp.sum(keep)
    idx = jnp.where(filled, idx, idx[0])
    return x[idx], jnp.where(filled, row_w[idx], 0)


def _core(
    x,
    m,
    w,
    epsilon,
    cost_fn,
    *,
    group_caps,
    pooled_cap,
    relative,
    reference,
    reduction,
    return_output,
    solve_items,
):
    from ott.geometry import costs, pointcloud
    from ott.tools import sinkhorn_divergence as ott_sd

    dtype = x.dtype
    if cost_fn is None or isinstance(cost_fn, costs.TICost):
        # A cost of x - y does not change with a common shift of the points, but ott-jax's
        # squared Euclidean cost expands |x|^2 + |y|^2 - 2 x.y, which far from the origin
        # (scores of 1e5 in float32) rounds away every digit of the distances: the points are
        # centred first, on the weighted mean of the rows of positive weight (a masked row,
        # however far, does not move it).
        keep = (w > 0)[:, None]
        total = jnp.sum(jnp.where(keep, w[:, None] * x, 0), axis=0)
        x = x - jax.lax.stop_gradient(gs.safe_divide(total, jnp.sum(w)))
    eps = jnp.asarray(epsilon, dtype)
    if relative:
        scale = jax.lax.stop_gradient(_weighted_mean_sq_cost(x, w))
        # A degenerate cloud (all rows equal, or no weight) has mean cost 0: keep epsilon.
        eps = eps * jnp.where(scale > 0, scale, 1.0)

    meas = _Measures(x, w, m, reference)
    # Each group's rows gathered into a block of its static size (ott-jax then solves on the
    # groups themselves, as if called on h[s == g]); padding is a point of weight 0. Groups
    # of one size are gathered together.
    blocks = {}
    for cap in sorted(set(group_caps)):
        members = [g for g, c in enumerate(group_caps) if c == cap]
        rows = meas.group_w if len(members) == m.shape[1] else meas.group_w[np.asarray(members)]
        xs, ws = jax.vmap(_compact, in_axes=(None, 0, None))(x, rows, cap)
        blocks.update({g: (xs, ws, k) for k, g in enumerate(members)})
    if reference == "pooled":
        xp, wp = _compact(x, w, pooled_cap)
    solve_kwargs = dict(solve_items)

    def divergence(x_, a_, y_, b_):
        return ott_sd.sinkhorn_divergence(
            pointcloud.PointCloud,
            x_,
            y_,
            a=a_,
            b=b_,
            cost_fn=cost_fn,
            epsilon=eps,
            solve_kwargs=solve_kwargs,
        )

    def side(indices):  # the blocks of the given groups (None: the pooled block), stacked
        if indices[0] is None:
            return (jnp.broadcast_to(t, (len(indices), *t.shape)) for t in (xp, wp))
        xs, ws, _ = blocks[indices[0]]
        rows = np.asarray([blocks[g][2] for g in indices])
        return xs[rows], ws[rows]

    pairs = _comparisons(len(group_caps), reference)
    shapes = _comparison_shapes(group_caps, pooled_cap, reference)
    order, parts = [], []
    for shape in sorted(set(shapes)):  # one batched solve per shape of the blocks
        batch = [p for p, s in enumerate(shapes) if s == shape]
        xl, al = side([pairs[p][0] for p in batch])
        xr, ar = side([pairs[p][1] for p in batch])
        order += batch
        parts.append(_solve(divergence, xl, al, xr, ar))
    if len(parts) == 1:
        values, valid, output = parts[0]
    else:  # several shapes (never with return_output): the values and flags, concatenated
        values, valid = (jnp.concatenate([part[k] for part in parts]) for k in (0, 1))
        output = None
    if order != sorted(order):  # back to the order of the comparisons
        inverse = np.argsort(order)
        values, valid = values[inverse], valid[inverse]
    value = meas.reduce(values.astype(dtype), valid, reduction)
    return (value, output) if return_output else value


def _solve(divergence, xl, al, xr, ar):
    """``(values, valid, output)`` of the comparisons of a batch of same-shape blocks.

    An undefined comparison (an empty side) solves a well-posed problem instead (uniform
    weights on both blocks), whose value is then discarded: no 0/0 marginal reaches the
    solver or its gradient.
    """
    ma, mb = jnp.sum(al, axis=1), jnp.sum(ar, axis=1)
    valid = (ma > 0) & (mb > 0)
    a = jnp.where(valid[:, None], gs.safe_divide(al, ma[:, None]), 1.0 / al.shape[1])
    b = jnp.where(valid[:, None], gs.safe_divide(ar, mb[:, None]), 1.0 / ar.shape[1])
    # ott-jax's gradient with respect to a marginal is NaN where the marginal is 0 (a padding
    # slot): the selects keep those entries 0 and stop that cotangent, so the weights' gradient
    # stays finite.
    a = jnp.where(valid[:, None] & (al <= 0), 0, a)
    b = jnp.where(valid[:, None] & (ar <= 0), 0, b)
    if a.shape[0] == 1:  # one comparison: no batching of the solver
        values, output = jax.tree.map(lambda t: t[None], divergence(xl[0], a[0], xr[0], b[0]))
    else:
        values, output = jax.vmap(divergence)(xl, a, xr, b)
    return values, valid, output


# One compiled program per configuration (ott-jax's solver loops are slow to run op by op).
_core_jit = jax.jit(
    _core,
    static_argnames=(
        "group_caps",
        "pooled_cap",
        "relative",
        "reference",
        "reduction",
        "return_output",
        "solve_items",
    ),
)
