"""Debiased Sinkhorn divergence between group-conditional representation distributions (ott-jax).

Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, NeurIPS 2020; Feydy et al., AISTATS 2019.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax.penalties._mmd import _check_common, _Measures

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
    label_value: float | int = 1,
    weights: ArrayLike | None = None,
    epsilon: float = 0.1,
    relative_epsilon: str | None = "mean",
    cost_fn: costs.CostFn | None = None,
    reference: str = "pooled",
    reduction: str = "mean",
    solver_kwargs: Mapping[str, Any] | None = None,
    axis_name: Hashable | None = None,
    return_output: bool = False,
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
    (shape ``(G,)`` pooled, ``(G, G)`` symmetric pairwise).

    Every divergence is computed by ott-jax
    (:func:`ott.tools.sinkhorn_divergence.sinkhorn_divergence` on a
    :class:`~ott.geometry.pointcloud.PointCloud` of all rows, with the group's normalised row
    weights as the marginals ``a`` and ``b``; the comparisons are ``vmap``-ed). Shapes are
    therefore static: a row outside a group, a padded or masked row, is a point of weight 0.
    A comparison with an empty side is replaced by a harmless one (the pooled weights on both
    sides, divergence 0) and its value set to 0 (left out of ``"max"``), so value and gradient
    stay finite. Cost: each Sinkhorn iteration is a pass over the :math:`n^2` costs, and a
    comparison needs three (``O(G n^2)`` per iteration for ``G`` groups); for large batches
    pass ``solver_kwargs`` (e.g. ``{"max_iterations": 200}``) or use :func:`~fairjax.penalties.mmd`
    with random features.

    Args:
      h: representations, shape ``(n, r)`` (or ``(n,)``).
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      labels: optional labels ``(n,)``; only rows with ``labels == label_value`` enter.
      label_value: the label to condition on (default 1: equal opportunity).
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
      solver_kwargs: passed to ott-jax's Sinkhorn solver (``threshold``,
        ``max_iterations``, ``lse_mode``, ``implicit_diff``, ...).
      axis_name: inside ``shard_map``/``pmap``, the mapped axis: the rows are all-gathered
        first, so every device gets the value of the whole batch.
      return_output: also return ott-jax's
        :class:`~ott.tools.sinkhorn_divergence.SinkhornDivergenceOutput` of the comparisons
        (batched along a leading axis): convergence flags, iterations, potentials.

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

    References:
      Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, *Exploiting MMD and Sinkhorn
      divergences for fair and transferable representation learning*, NeurIPS 2020;
      Feydy, Sejourne, Vialard, Amari, Trouve, Peyre, *Interpolating between optimal
      transport and MMD using Sinkhorn divergences*, AISTATS 2019; Cuturi et al.,
      *Optimal Transport Tools (OTT)*, arXiv:2201.12324.
    """
    if relative_epsilon not in ("mean", None):
        raise ValueError(f"`relative_epsilon` must be 'mean' or None, got {relative_epsilon!r}.")
    if v.is_concrete(epsilon) and not float(epsilon) > 0:
        raise ValueError(f"`epsilon` must be > 0, got {epsilon}.")
    if solver_kwargs is not None and not isinstance(solver_kwargs, Mapping):
        raise TypeError(f"`solver_kwargs` must be a mapping, got {type(solver_kwargs).__name__}.")
    x, m, w = _check_common(
        h, groups, num_groups, labels, label_value, weights, reference, reduction
    )
    x, m, w = gs.gather_rows(x, m, w, axis_name=axis_name)
    if reference == "pairwise" and m.shape[1] < 2:
        raise ValueError("`reference='pairwise'` needs at least two groups.")
    config = dict(
        relative=relative_epsilon == "mean",
        reference=reference,
        reduction=reduction,
        return_output=return_output,
    )
    solve_items = tuple(sorted((solver_kwargs or {}).items()))
    try:
        hash(solve_items)
    except TypeError:  # unhashable solver options: run the same program without the cache
        return _core(x, m, w, epsilon, cost_fn, solve_items=solve_items, **config)
    return _core_jit(x, m, w, epsilon, cost_fn, solve_items=solve_items, **config)


def _core(x, m, w, epsilon, cost_fn, *, relative, reference, reduction, return_output, solve_items):
    from ott.geometry import pointcloud
    from ott.tools import sinkhorn_divergence as ott_sd

    n, dtype = x.shape[0], x.dtype
    eps = jnp.asarray(epsilon, dtype)
    if relative:
        scale = jax.lax.stop_gradient(_weighted_mean_sq_cost(x, w))
        # A degenerate cloud (all rows equal, or no weight) has mean cost 0: keep epsilon.
        eps = eps * jnp.where(scale > 0, scale, 1.0)

    meas = _Measures(x, w, m, reference)
    ma, mb = jnp.sum(meas.left, axis=1), jnp.sum(meas.right, axis=1)
    valid = (ma > 0) & (mb > 0)
    total = jnp.sum(w)
    fallback = jnp.where(total > 0, gs.safe_divide(w, total), jnp.full((n,), 1.0 / n, dtype))
    # An undefined comparison (an empty side) solves the well-posed problem (pooled, pooled)
    # instead, whose value is then discarded: no 0/0 marginals reach the solver or its gradient.
    a = jnp.where(valid[:, None], gs.safe_divide(meas.left, ma[:, None]), fallback)
    b = jnp.where(valid[:, None], gs.safe_divide(meas.right, mb[:, None]), fallback)
    solve_kwargs = dict(solve_items)

    def divergence(a_, b_):
        return ott_sd.sinkhorn_divergence(
            pointcloud.PointCloud,
            x,
            x,
            a=a_,
            b=b_,
            cost_fn=cost_fn,
            epsilon=eps,
            solve_kwargs=solve_kwargs,
        )

    values, output = jax.vmap(divergence)(a, b)
    value = meas.reduce(values.astype(dtype), valid, reduction)
    return (value, output) if return_output else value


# One compiled program per configuration (ott-jax's solver loops are slow to run op by op).
_core_jit = jax.jit(
    _core,
    static_argnames=("relative", "reference", "reduction", "return_output", "solve_items"),
)
