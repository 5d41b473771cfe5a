r"""Multiclass demographic parity by post-processing: class offsets per group, a linear program.

For class probabilities :math:`p(x) \in \Delta_K` of any model and groups :math:`a`, the most
accurate (randomised) classifier whose class distribution is the same in every group, up to a
tolerance :math:`\varepsilon`, solves the linear program

.. math::
   \max_{\gamma, q}\; \sum_i w_i \langle p_i, \gamma_i \rangle \quad\text{s.t.}\quad
   \gamma_i \in \Delta_K,\quad
   \Big| \frac{1}{W_a} \sum_{i \in a} w_i \gamma_{ik} - q_k \Big| \le \frac{\varepsilon}{2}
   \quad \forall a, k,

(:math:`\gamma_{ik}` the probability of deciding class :math:`k` on row :math:`i`, :math:`W_a`
group :math:`a`'s weight; every pairwise gap of a class's rate is then at most
:math:`\varepsilon`). Its dual is

.. math::
   \min_{\nu}\; \sum_i w_i \max_k \big(p_{ik} - \nu_{a(i) k}\big)
   + \frac{\varepsilon}{2} \sum_{a,k} W_a |\nu_{ak}|
   \quad\text{s.t.}\quad \sum_a W_a \nu_{ak} = 0 \;\; \forall k,

and at its optimum the decision on a row of group :math:`a` is
:math:`\arg\max_k (p_k(x) - \nu_{ak})`: each group shifts the class scores by its offsets, the
multiclass form of group thresholds. Where no two rows tie, a vertex of the primal has at most
:math:`G K` fractional rows, so the deterministic rule meets the rates on the fitted data up to
about :math:`G K / n_a` per group (ties: jitter the probabilities, or see below).

This is the estimator of Xian, Yin and Zhao (ICML 2023) and Denis, Elie, Hebiri and Hu
(multiclass classification under demographic parity, 2021-2024) in its empirical form, fitted
here as the dual above with SciPy's HiGHS (``n K`` inequality rows, on the host).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax.groups import group_means

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["MulticlassParityState", "apply_multiclass_parity", "fit_multiclass_parity"]


class MulticlassParityState(NamedTuple):
    """The fitted rule of :func:`fit_multiclass_parity`.

    Attributes:
      offsets: :math:`\\nu`, shape ``(G, K)``: the decision on a row of group ``a`` is
        ``argmax_k (p_k - offsets[a, k])``.
      class_rates: each group's weighted rate of each class under the rule on the fitted data,
        shape ``(G, K)`` (a row of zeros for a group with no weight).
      tolerance: the tolerance it was fitted with.
    """

    offsets: Array
    class_rates: Array
    tolerance: float


def fit_multiclass_parity(
    probabilities: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    tolerance: float = 0.0,
    weights: ArrayLike | None = None,
) -> MulticlassParityState:
    r"""Fits per-group class offsets: the most accurate rule with class rates equal across groups.

    Solves the dual linear program of the module docstring (SciPy's HiGHS, on the host) for
    the offsets :math:`\nu` (``(G, K)``), then measures the rule's class rates on the same rows.
    Fit on a calibration split that the model did not train on, as for
    :func:`fit_thresholds`; the rates hold on new data up to sampling error.

    Args:
      probabilities: class probabilities (or any class scores) ``(n, K)``, finite, ``K >= 2``.
      groups: integer group ids ``(n,)`` in ``[0, num_groups)``.
      num_groups: the number of groups (default: ``max(groups) + 1``).
      tolerance: the largest allowed gap between two groups' rates of a class, in ``[0, 1]``
        (0: exact parity; 1: no constraint, the rule is ``argmax_k p_k``).
      weights: optional non-negative row weights ``(n,)``.

    Returns:
      A :class:`MulticlassParityState`.

    Raises:
      ValueError: non-finite probabilities, a tolerance outside ``[0, 1]``, or a linear program
        that HiGHS could not solve.

    Example:
      >>> import numpy as np
      >>> from fairjax.postprocessing import fit_multiclass_parity, apply_multiclass_parity
      >>> rng = np.random.default_rng(0)
      >>> s = rng.integers(0, 2, 600)
      >>> logits = rng.normal(size=(600, 3)) + np.outer(s, [1.0, 0.0, -1.0])
      >>> p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
      >>> state = fit_multiclass_parity(p, s, num_groups=2)
      >>> d = np.asarray(apply_multiclass_parity(state, p, s))
      >>> gap = np.abs(d[s == 0].mean(0) - d[s == 1].mean(0)).max()
      >>> bool(gap < 0.02)
      True

    References:
      Xian, Yin, Zhao, *Fair and optimal classification via post-processing*, ICML 2023;
      Denis, Elie, Hebiri, Hu, *Fairness guarantees in multi-class classification with
      demographic parity*, JMLR 2024; Hardt, Price, Srebro, NeurIPS 2016 (the binary case).
    """
    from scipy import sparse
    from scipy.optimize import linprog

    p = np.asarray(v.as_array(probabilities, "probabilities", ndim=2), np.float64)
    n, k = p.shape
    if k < 2:
        raise ValueError(f"`probabilities` must have at least 2 columns (classes), got {k}.")
    v.check_nonempty(jnp.asarray(p[:, 0]), "probabilities")
    if not np.all(np.isfinite(p)):
        raise ValueError("`probabilities` must be finite (a NaN or inf has no decision).")
    if num_groups is None:  # the documented default, from the concrete ids (checked below)
        ids = np.asarray(groups)
        if (
            ids.ndim == 1
            and ids.size
            and (np.issubdtype(ids.dtype, np.integer) or ids.dtype == bool)
        ):
            num_groups = max(int(ids.max()) + 1, 1)
    g = np.asarray(v.check_groups(groups, num_groups=num_groups, n=n))
    if g.ndim != 1:
        raise ValueError("`groups` must be integer group ids of shape (n,).")
    num_groups = v.check_num_groups(num_groups)
    tolerance = float(v.check_scalar(tolerance, "tolerance", low=0.0, high=1.0))
    w = v.check_weights(weights, n)
    w = np.ones(n) if w is None else np.asarray(w, np.float64)
    w = w / w.sum() * n  # the scale of unit weights: the LP's numbers stay O(1)
    W = np.bincount(g, weights=w, minlength=num_groups)
    gk = num_groups * k
    # variables: t (n), then nu+ (G K), then nu- (G K); nu = nu+ - nu-
    rows = np.repeat(np.arange(n * k), 3)
    cell = (g[:, None] * k + np.arange(k)[None, :]).reshape(-1)  # the (a(i), k) of each row
    cols = np.stack([np.repeat(np.arange(n), k), n + cell, n + gk + cell], axis=1)
    # t_i >= w_i (p_ik - nu_ak)  <=>  -t_i - w_i nu+_ak + w_i nu-_ak <= -w_i p_ik
    wk = np.repeat(w, k)
    vals = np.stack([-np.ones(n * k), -wk, wk], axis=1)
    A_ub = sparse.csr_matrix(
        (vals.reshape(-1), (rows, cols.reshape(-1))), shape=(n * k, n + 2 * gk)
    )
    b_ub = -(w[:, None] * p).reshape(-1)
    # sum_a W_a nu_ak = 0 for every class k
    eq_rows = np.tile(np.arange(k), num_groups)
    eq_cols = np.arange(gk)
    Wk = np.repeat(W, k)
    A_eq = sparse.csr_matrix(
        (np.r_[Wk, -Wk], (np.r_[eq_rows, eq_rows], np.r_[n + eq_cols, n + gk + eq_cols])),
        shape=(k, n + 2 * gk),
    )
    cost = np.r_[np.ones(n), np.tile(0.5 * tolerance * Wk, 2)]
    bounds = [(None, None)] * n + [(0, None)] * (2 * gk)
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=np.zeros(k), bounds=bounds,
                  method="highs")  # fmt: skip
    if res.status != 0:
        raise ValueError(f"the linear program was not solved: {res.message}")
    nu = (res.x[n : n + gk] - res.x[n + gk :]).reshape(num_groups, k)
    offsets = jnp.asarray(nu, jnp.float32)
    # The optimum puts up to G K rows exactly on a tie between two classes (the fractional rows
    # of the primal): measure the rates with the arithmetic of apply_multiclass_parity.
    decided = _apply(offsets, jnp.asarray(p, jnp.float32), jnp.asarray(g, jnp.int32))
    rates = group_means(decided, g, num_groups=num_groups, weights=w.astype(np.float32))
    return MulticlassParityState(offsets, rates, tolerance)


@jax.jit
def _apply(offsets: Array, probabilities: Array, groups: Array) -> Array:
    """One-hot ``argmax_k (p_k - offsets[group, k])``; a row with a NaN or inf gives NaNs."""
    shifted = probabilities - offsets[groups]
    one_hot = jax.nn.one_hot(jnp.argmax(shifted, axis=1), probabilities.shape[1])
    bad = jnp.any(~jnp.isfinite(probabilities), axis=1, keepdims=True)
    return jnp.where(bad, jnp.nan, one_hot).astype(jnp.result_type(probabilities, jnp.float32))


def apply_multiclass_parity(
    state: MulticlassParityState, probabilities: ArrayLike, groups: ArrayLike
) -> Array:
    """The decisions of the fitted rule, one-hot ``(n, K)``: ``argmax_k (p_k - offsets[a, k])``.

    Pure and jittable. The one-hot rows go straight into the multiclass metrics
    (``fairjax.metrics.multiclass_parity_difference(None, decisions, groups,
    num_classes=K)``); ``argmax(axis=1)`` gives class ids. A row with a NaN or infinite
    probability has no decision (as at fit time) and gives a row of NaN.

    Args:
      state: a :class:`MulticlassParityState`.
      probabilities: class probabilities ``(n, K)`` of the same model.
      groups: integer group ids ``(n,)`` in ``[0, G)``.

    Returns:
      One-hot decisions ``(n, K)`` (float).

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.postprocessing import MulticlassParityState, apply_multiclass_parity
      >>> state = MulticlassParityState(jnp.array([[0.0, 0.0], [0.3, 0.0]]), None, 0.0)
      >>> apply_multiclass_parity(state, jnp.array([[0.6, 0.4], [0.6, 0.4]]), jnp.array([0, 1]))
      Array([[1., 0.],
             [0., 1.]], dtype=float32)
    """
    offsets = jnp.asarray(state.offsets)
    p = v.as_array(probabilities, "probabilities", ndim=2)
    if p.shape[1] != offsets.shape[1]:
        raise ValueError(
            f"`probabilities` has {p.shape[1]} columns, the state was fitted on "
            f"{offsets.shape[1]} classes."
        )
    g = v.check_groups(groups, num_groups=offsets.shape[0], n=p.shape[0])
    if g.ndim != 1:
        raise ValueError("`groups` must be integer group ids of shape (n,).")
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.float32)
    return _apply(offsets, p, g)
