"""Maximum mean discrepancy between group-conditional representation distributions.

Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, NeurIPS 2020; Gretton et al., JMLR 2012.
"""

from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import criteria
from fairjax import groups as gs
from fairjax import kernels as ks
from fairjax._nan import propagate_nan
from fairjax.penalties._points import points_and_groups

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["mmd"]

_REFERENCES = ("pooled", "pairwise")  # of criteria.REFERENCES
_REDUCTIONS = ("mean", "max", "none")  # of criteria.REDUCTIONS


def _default_criterion(labels: ArrayLike | None) -> str:
    """Without ``criterion=``: the rows with ``y = 1`` when labels are given, else all rows."""
    return "demographic_parity" if labels is None else "equal_opportunity"


def _legacy(label_value: Any, labels: ArrayLike | None) -> dict[str, Any]:
    """The deprecated ``label_value=`` as :func:`fairjax.criteria.resolve` takes it."""
    if label_value is None:
        return {}
    if labels is None:  # it never had an effect without labels (all rows): keep that
        warnings.warn(
            "`label_value` without `labels` has no effect and is deprecated; drop it.",
            DeprecationWarning,
            stacklevel=3,
        )
        return {}
    return {"label_value": label_value}


def _sum_conditions(values: list) -> Any:
    """The penalty of a criterion with several conditions (equalized odds): the sum of terms."""
    return functools.reduce(operator.add, values)


class _Measures:
    """The weighted empirical measures a penalty compares, all supported on the same rows.

    ``left[p]`` and ``right[p]`` are the (unnormalised) row weights of the two measures of
    comparison ``p``: group ``g`` against the pooled data (``reference="pooled"``, ``G``
    comparisons) or group ``i`` against group ``j`` for every pair ``i < j``
    (``reference="pairwise"``, ``G (G - 1) / 2`` comparisons).
    """

    def __init__(self, x, w, m, reference):
        self.x, self.w = x, w
        self.group_w = m.T * w[None, :]  # (G, n): weight of each row in each group
        self.counts = jnp.sum(self.group_w, axis=1)
        self.reference = reference
        num_groups = m.shape[1]
        if reference == "pooled":
            self.left = self.group_w
            self.right = jnp.broadcast_to(w, self.group_w.shape)
            self.pair_index = None
        else:
            i, j = np.triu_indices(num_groups, k=1)
            self.left, self.right = self.group_w[i], self.group_w[j]
            self.pair_index = (i, j)

    def reduce(self, values: Array, valid: Array, reduction: str) -> Array:
        """Combines the per-comparison values into the penalty (see :func:`mmd`)."""
        values = jnp.where(valid, values, 0)
        props = gs.safe_divide(self.counts, jnp.sum(self.counts))
        if self.reference == "pooled":
            cmp_w = props
        else:
            i, j = self.pair_index
            cmp_w = props[i] * props[j]
        cmp_w = jnp.where(valid, cmp_w, 0)
        if reduction == "none":
            if self.reference == "pooled":
                return values
            g = self.group_w.shape[0]
            out = jnp.zeros((g, g), values.dtype).at[self.pair_index].set(values)
            return out + out.T
        if reduction == "max":
            if values.shape[0] == 0:
                return jnp.zeros((), values.dtype)
            lowest = jnp.finfo(values.dtype).min
            return jnp.where(jnp.any(valid), jnp.max(jnp.where(valid, values, lowest)), 0)
        if self.reference == "pooled":
            return cmp_w @ values
        # Pairwise mean: the average over pairs weighted by p_i p_j (one pair: its value).
        return gs.safe_divide(cmp_w @ values, jnp.sum(cmp_w))


def _check_common(h, groups, num_groups, labels, crit, weights, reference, reduction):
    """Validation and preparation shared by the MMD and Sinkhorn penalties.

    Returns the points ``(n, r)``, the membership ``(n, G)`` and the row weights of each
    condition of the criterion ``(C, n)``.
    """
    criteria.check_option(reference, "reference", _REFERENCES)
    criteria.check_option(reduction, "reduction", _REDUCTIONS)
    x, m, dtype = points_and_groups(h, groups, num_groups, weights, name="h", ndim=(1, 2))
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0]
    # Conditioning on the label (e.g. y = 1: equal opportunity) is a 0/1 row weight.
    ws = criteria.condition_weights(crit, labels, weights, n=n, dtype=dtype)
    return x.astype(dtype), m.astype(dtype), ws


def _mmd_values(meas: _Measures, kernel, features, estimator: str) -> tuple[Array, Array]:
    """Per-comparison MMD^2 values and which comparisons are defined."""
    x = meas.x
    if features is None:
        K = kernel.matrix(x, x)
        diag = jnp.diagonal(K)

        def bilinear(a, b):  # rows of a K b^T, one per comparison
            return jnp.sum((a @ K) * b, axis=1)

    else:
        phi = features
        diag = jnp.sum(phi * phi, axis=1)

        def bilinear(a, b):  # <sum_i a_i phi_i, sum_j b_j phi_j>: linear in n
            return jnp.sum((a @ phi) * (b @ phi), axis=1)

    a, b = meas.left, meas.right
    ma, mb = jnp.sum(a, axis=1), jnp.sum(b, axis=1)
    if estimator == "biased":
        # ||mu_a - mu_b||^2 as one quadratic form of the difference of the normalised weights:
        # no cancellation between large terms, so it is >= 0 up to the rounding of K itself.
        diff = gs.safe_divide(a, ma[:, None]) - gs.safe_divide(b, mb[:, None])
        return bilinear(diff, diff), (ma > 0) & (mb > 0)

    # Unbiased: each term averages k(x_i, x_j) over pairs of distinct rows i != j, weighted by
    # a_i b_j, i.e. (a^T K b - sum_i a_i b_i k_ii) / (sum a sum b - sum_i a_i b_i).
    def mean_off_diagonal(p, q, mp, mq):
        num = bilinear(p, q) - jnp.sum(p * q * diag[None, :], axis=1)
        den = mp * mq - jnp.sum(p * q, axis=1)
        return gs.safe_divide(num, den), den > 0

    taa, ok_a = mean_off_diagonal(a, a, ma, ma)
    tbb, ok_b = mean_off_diagonal(b, b, mb, mb)
    tab, ok_ab = mean_off_diagonal(a, b, ma, mb)
    return taa + tbb - 2 * tab, ok_a & ok_b & ok_ab


def mmd(
    h: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    kernel: ks.Kernel | None = None,
    features: Callable[[Array], Array] | None = None,
    labels: ArrayLike | None = None,
    criterion: str | criteria.Criterion | None = None,
    weights: ArrayLike | None = None,
    estimator: str = "biased",
    reference: str = "pooled",
    reduction: str = "mean",
    axis_name: Hashable | None = None,
    label_value: float | int | None = None,
) -> Array:
    r"""Squared maximum mean discrepancy between the groups' representation distributions.

    With :math:`\mu_g = \sum_i a_{gi} \delta_{h_i} / \sum_i a_{gi}` the weighted empirical
    distribution of the representations :math:`h_i` in group :math:`g` (row weight
    :math:`a_{gi} = w_i c_i M_{ig}`, with :math:`c_i` selecting the rows of the criterion,
    e.g. :math:`c_i = [y_i = 1]` for equal opportunity), :math:`\mu` the pooled one
    (weights :math:`w_i c_i`) and :math:`k` a kernel with mean
    embedding :math:`m_\nu = \int k(\cdot, z)\, d\nu(z)`,

    .. math::

        \mathrm{MMD}^2_k(\nu, \nu') = \|m_\nu - m_{\nu'}\|^2_{\mathcal H}
          = E\,k(Z, Z') + E\,k(Z'', Z''') - 2 E\,k(Z, Z'').

    ``reference="pooled"`` (default) compares every group with the pooled distribution and
    ``reduction="mean"`` returns :math:`\sum_g p_g \mathrm{MMD}^2_k(\mu_g, \mu)` with
    :math:`p_g` the weighted group proportions. For two groups the pooled measure is
    :math:`p_0 \mu_0 + p_1 \mu_1`, so with the biased estimator this is exactly
    :math:`p_0 p_1 \mathrm{MMD}^2_k(\mu_0, \mu_1)`, the paper's penalty scaled by
    :math:`p_0 p_1`. ``reference="pairwise"`` compares the groups pair by pair and
    ``"mean"`` averages over pairs :math:`i < j` with weights :math:`p_i p_j` (for two groups:
    :math:`\mathrm{MMD}^2_k(\mu_0, \mu_1)` itself). ``reduction="max"`` takes the worst
    comparison, ``"none"`` returns them all. The penalty is 0 exactly when the compared
    distributions have the same mean embedding, i.e. are equal for a characteristic kernel
    (Gaussian, Laplace, inverse multiquadric). Then every linear head on :math:`h` satisfies
    demographic parity; ``criterion="equal_opportunity"`` (conditioning on :math:`y = 1`)
    gives the equal-opportunity version, and ``"equalized_odds"`` (Hardt et al. 2016) the
    **sum** of the :math:`y = 1` and :math:`y = 0` penalties (0 exactly when both are). With
    a radial kernel (these three, their sums, the default) the points are first shifted by the
    weighted mean of the rows of positive weight, which changes no distance, so points far
    from the origin relative to their spread keep the digits of their distances.

    Estimators (Gretton et al. 2012, Eqs. 3 and 5, with weights): ``"biased"`` (V-statistic)
    plugs in the empirical measures, :math:`(\hat a - \hat b)^\top K (\hat a - \hat b) \ge 0`
    with :math:`\hat a = a / \sum a`; ``"unbiased"`` (U-statistic) leaves out the pairs of a
    row with itself from every expectation:
    :math:`E\,k(Z, Z') \approx (a^\top K b - \sum_i a_i b_i k_{ii}) /
    (\sum a \sum b - \sum_i a_i b_i)`, which is Gretton's :math:`\mathrm{MMD}^2_u` for
    unit weights and disjoint samples; it can be slightly negative.

    Cost: the kernel matrix of the ``n`` rows, :math:`O(n^2 d)` time and :math:`O(n^2)`
    memory. With ``features=`` an explicit feature map :math:`\phi` replaces the kernel,
    :math:`k(x, y) = \langle \phi(x), \phi(y) \rangle`, and the cost is linear in ``n``
    (:math:`O(n D d)`): pass :func:`fairjax.kernels.random_fourier_features` (a Gaussian
    kernel) or :func:`fairjax.kernels.nystrom` for large batches.

    Shapes are static: padding and masks are rows of weight 0. A group without rows (or,
    for the unbiased estimator, with fewer than two) contributes 0 and is left out of
    ``"max"``, with finite gradients.

    Args:
      h: representations, shape ``(n, r)`` (or ``(n,)`` for scalar outputs).
      groups: integer ids ``(n,)`` in ``[0, num_groups)`` or membership matrix ``(n, G)``.
      num_groups: static number of groups (required for integer ids).
      kernel: a kernel value from :mod:`fairjax.kernels`. Default: the Gaussian kernel with
        the median-heuristic bandwidth of the (weighted) rows,
        ``kernels.gaussian(bandwidth=kernels.median_bandwidth(h, weights=w))``, recomputed at
        each call without gradient. For another kernel with the heuristic, pass e.g.
        ``kernels.laplace(bandwidth=kernels.median_bandwidth(h))``.
      features: an explicit feature map ``(n, r) -> (n, D)`` used instead of ``kernel``
        (linear-time MMD).
      labels: optional labels ``(n,)``; required by a criterion that conditions on them.
      criterion: the rows compared, a name of :data:`fairjax.criteria.CRITERIA`. Default:
        ``"equal_opportunity"`` (rows with ``y = 1``) when ``labels`` are given, else
        ``"demographic_parity"`` (all rows).
      weights: optional non-negative sample weights ``(n,)``; 0 masks a row.
      estimator: ``"biased"`` (default, non-negative) or ``"unbiased"``.
      reference: ``"pooled"`` (each group vs all rows, default) or ``"pairwise"``.
      reduction: ``"mean"`` (default), ``"max"`` or ``"none"`` (shape ``(G,)`` for pooled,
        a symmetric ``(G, G)`` matrix with zero diagonal for pairwise).
      axis_name: inside ``shard_map``/``pmap``, the mapped axis: the rows are all-gathered
        first (kernel pairs span devices), so every device gets the value of the whole batch.
      label_value: deprecated: ``label_value=1`` is ``criterion="equal_opportunity"``,
        ``0`` is ``"false_positive_parity"`` (a ``DeprecationWarning``).

    Returns:
      MMD^2 values (squared, as the penalty is used): a scalar, or per comparison for
      ``reduction="none"``, in the representations' float dtype (at least float32).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax import kernels
      >>> from fairjax.penalties import mmd
      >>> h = jnp.array([[0.0], [1.0], [0.0], [1.0]])
      >>> s = jnp.array([0, 0, 1, 1])
      >>> mmd(h, s, num_groups=2)  # both groups hold the same points
      Array(0., dtype=float32)
      >>> k = kernels.gaussian(bandwidth=1.0)
      >>> h = jnp.array([[0.0], [0.0], [1.0], [1.0]])
      >>> mmd(h, s, num_groups=2, kernel=k, reference="pairwise")  # 2 - 2 exp(-1/2)
      Array(0.7869387, dtype=float32)

    References:
      Oneto, Donini, Luise, Ciliberto, Maurer, Pontil, *Exploiting MMD and Sinkhorn
      divergences for fair and transferable representation learning*, NeurIPS 2020;
      Gretton, Borgwardt, Rasch, Schoelkopf, Smola, *A kernel two-sample test*, JMLR 2012,
      Lemma 6 and Eqs. (3), (5); Hardt, Price, Srebro, *Equality of opportunity in
      supervised learning*, NeurIPS 2016 (equalized odds).

    .. versionchanged:: 0.1.0
       ``criterion=`` replaces ``label_value=`` (deprecated).
    """
    crit = criteria.resolve(
        criterion,
        where="penalties.mmd",
        default=_default_criterion(labels),
        **_legacy(label_value, labels),
    )
    if estimator not in ("biased", "unbiased"):
        raise ValueError(f"`estimator` must be 'biased' or 'unbiased', got {estimator!r}.")
    if kernel is not None and features is not None:
        raise ValueError("pass either `kernel` or `features`, not both.")
    if kernel is not None and not isinstance(kernel, ks.Kernel):
        raise TypeError(
            "`kernel` must be a fairjax kernel (e.g. kernels.gaussian()), got "
            f"{type(kernel).__name__}."
        )
    if features is not None and not callable(features):
        raise TypeError(f"`features` must be a feature map (a callable), got {features!r}.")
    x, m, ws = _check_common(h, groups, num_groups, labels, crit, weights, reference, reduction)
    x, m, ws = gs.gather_rows(x, m, ws.T, axis_name=axis_name)
    phi = None if features is None else jnp.asarray(features(x)).astype(x.dtype)
    if phi is not None and (phi.ndim != 2 or phi.shape[0] != x.shape[0]):
        raise ValueError(
            f"`features` must map the {x.shape[0]} points to a matrix of {x.shape[0]} rows of "
            f"features, got shape {phi.shape}."
        )
    config = dict(estimator=estimator, reference=reference, reduction=reduction)
    value = _sum_conditions([_mmd(x, m, w, kernel, phi, **config) for w in ws.T])
    # The rows are gathered: a NaN on any device is in x, m or ws on every device.
    return propagate_nan(value, x, m, ws, labels)


def _radial(kernel) -> bool:
    """A kernel of the distance alone (the library's radial kernels and their sums)."""
    if isinstance(kernel, ks.Sum):
        return all(_radial(k) for k in kernel.kernels)
    return isinstance(kernel, (ks.Gaussian, ks.Laplace, ks.InverseMultiquadric))


@functools.partial(jax.jit, static_argnames=("estimator", "reference", "reduction"))
def _mmd(x, m, w, kernel, phi, *, estimator, reference, reduction):
    # One compiled program per configuration: eager calls dispatch once instead of op by op.
    if phi is None and (kernel is None or _radial(kernel)):
        # Less the weighted mean of the rows of positive weight: a common shift changes no
        # distance, and without it the expansion of several features' squared distances
        # cancels the digits of points far from the origin (unit spread at 1e4 halved the
        # MMD). Masked rows take no part, so a masked row equals its subset's value.
        kept = jnp.where(w > 0, w, 0)
        x = x - jax.lax.stop_gradient(gs.safe_divide(kept @ x, jnp.sum(kept)))
    if kernel is None and phi is None:
        kernel = ks.Gaussian(ks.median_bandwidth(x, weights=w))
    meas = _Measures(x, w, m, reference)
    values, valid = _mmd_values(meas, kernel, phi, estimator)
    return meas.reduce(values, valid, reduction)
