"""Apply the fitted barycenter map to new scores, optionally partially fair."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import ot1d
from fairjax._shapes import pad_rows
from fairjax.postprocessing._state import (
    BarycenterState,
    SequentialBarycenterState,
    _bucket,
    _cdf_samples,
    _check_key,
    _check_scores,
    _cut,
    _group_label,
    _normalise_groups,
    _quantile_samples,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _rank(state: BarycenterState, g: Array, z: Array, key: Array) -> Array:
    """CDF level of each jittered query in its group, ties with calibration scores broken at
    random: :math:`u = F_s(z^-) + V \\, (F_s(z^+) - F_s(z^-))`, :math:`V \\sim U[0, 1]`.

    Exact method: :math:`F_s(z^-)` is the step CDF's left limit (the paper's rank
    :math:`k / N^1_s`); quantile grid: the CDF linear between consecutive grid points, whose
    repeated grid values (an atom) make a jump. Where ``z`` equals no calibration value the two
    limits are equal and ``u`` is the left limit (bit for bit with the exact method; the grid's
    CDF moves by its slope times one float spacing). Where it does (an atom that the
    jitter did not spread: ``jitter=0``, or a jitter below the float spacing at the scores'
    magnitude), ``u`` is uniform over the jump: the randomised probability integral transform,
    the limit of an infinitesimal jitter, whatever the scores' scale.
    """
    samples = _cdf_samples(state)
    if state.method == "exact":
        # Both limits of the step CDF from one search (a second only where a query ties).
        below, above = ot1d.group_cdf_limits(samples, g, z, uniform=state.uniform)
    else:
        below = ot1d.group_cdf(samples, g, z, interpolation="linear", uniform=state.uniform)
        # F(z+) is the CDF at the next float above z; above 0 that is the smallest normal
        # number, as XLA flushes subnormals to zero.
        up = jnp.where(z == 0, jnp.finfo(z.dtype).tiny, jnp.nextafter(z, jnp.inf))
        above = ot1d.group_cdf(samples, g, up, interpolation="linear", uniform=state.uniform)
    v = jax.random.uniform(key, z.shape, z.dtype)
    return jnp.where(above > below, below + v * (above - below), below)


@jax.jit
def _apply_one(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array) -> Array:
    """:math:`\\alpha \\sum_{s'} p_{s'} Q_{s'}(F_s(y + e)) + (1 - \\alpha) y` per query."""
    e = jax.random.uniform(key, y.shape, y.dtype, -1, 1) * state.jitter.astype(y.dtype)
    u = _rank(state, g, y + e, jax.random.fold_in(key, 1))
    fair = ot1d.barycenter_quantile(
        _quantile_samples(state),
        state.proportions,
        u,
        interpolation=state.interpolation,
        uniform=state.uniform,
    )
    alpha = jnp.asarray(alpha, y.dtype)
    return alpha * fair + (1 - alpha) * y


def _apply_bucketed(state: BarycenterState, y: Array, g: Array, key: Array, alpha: Array):
    """:func:`_apply_one` on queries padded to their shape bucket (one program per bucket)."""
    m = y.shape[0]
    size = _bucket(m)
    # attribute_sizes is metadata only: one program whatever the attributes' sizes.
    state = dataclasses.replace(state, attribute_sizes=(state.num_groups,))
    return _cut(_apply_one(state, pad_rows(y, size), pad_rows(g, size), key, alpha), m)


def _check_alpha(alpha: Any) -> Array:
    v.check_scalar(alpha, "alpha", low=0, high=1)
    a = v.as_array(alpha, "alpha", ndim=0)
    return a


def _check_present(state: BarycenterState, ids: Array) -> None:
    if not v.is_concrete(ids, state.cdf_count, state.quantile_count):
        return
    missing = (np.asarray(state.cdf_count) == 0) | (np.asarray(state.quantile_count) == 0)
    if missing.any():
        seen = np.bincount(np.asarray(ids), minlength=missing.shape[0])[: missing.shape[0]]
        bad = np.flatnonzero(missing & (seen > 0))
        if bad.size:
            names = ", ".join(_group_label(int(s), state.attribute_sizes) for s in bad[:5])
            raise ValueError(
                f"`groups` holds group(s) {names} that had no calibration data when the "
                "post-processor was fitted: their score distribution is unknown."
            )


def apply_barycenter(
    state: BarycenterState | SequentialBarycenterState,
    scores: ArrayLike,
    groups: ArrayLike | Sequence[ArrayLike],
    *,
    key: Array,
    alpha: float | ArrayLike = 1.0,
) -> Array:
    """Maps scores onto the fitted barycenter: fair predictions, optionally partially fair.

    .. math::

        g_\\alpha(x, s) = \\alpha \\, \\hat g(x, s) + (1 - \\alpha) f(x, s),
        \\qquad \\alpha \\in [0, 1],

    with :math:`\\hat g` the estimated optimal fair predictor (see :func:`fit_barycenter`):
    ``alpha=1`` is fully fair, ``alpha=0`` returns the scores unchanged (EquiPy's
    ``epsilon = 1 - alpha``). Within group ``s``, :math:`g_\\alpha` pushes :math:`\\nu_s` along
    the Wasserstein-2 geodesic to the barycenter :math:`\\bar\\nu`, a fraction ``alpha`` of the
    way: :math:`W_2(\\mathrm{law}(g_\\alpha|s), \\bar\\nu) = (1 - \\alpha) W_2(\\nu_s, \\bar\\nu)`,
    so the barycentric unfairness :math:`U = \\sum_s p_s W_2^2(\\cdot, \\bar\\nu)` becomes
    :math:`(1 - \\alpha)^2 U(f)`, while the price in squared distance to ``f`` is
    :math:`\\alpha^2 \\sum_s p_s W_2^2(\\nu_s, \\bar\\nu)` — the risk-fairness trade-off curve
    shown optimal by Chzhen and Schreuder (2022). KS unfairness is not linear in ``alpha``: it
    stays large until ``alpha`` is close to 1 when the group distributions barely overlap.

    A fresh jitter :math:`U[-\\sigma, \\sigma]` is drawn per query; it only enters the rank,
    not the ``(1 - alpha) f`` term. A jittered query :math:`z` that equals calibration scores of
    its group (an atom the jitter did not spread: ``jitter=0``, or :math:`\\sigma` below the
    float spacing at the scores' magnitude) gets the level
    :math:`F_s(z^-) + V (F_s(z) - F_s(z^-))`, :math:`V \\sim U[0, 1]`: ties are broken at
    random, the limit of an infinitesimal jitter, so parity holds whatever the scores' scale;
    other queries get :math:`F_s(z^-)` as before. Jit-compiles (``state`` is a PyTree) and
    vmaps, e.g. over ``alpha``. Under ``jit`` a query of a group with no calibration data
    cannot raise: it maps to the barycenter's minimum.

    Args:
      state: from :func:`fit_barycenter` (or :func:`load_barycenter`).
      scores: scores to post-process, shape ``(m,)``.
      groups: integer group ids ``(m,)``, or one id array per attribute as at fit time.
      key: a :func:`jax.random.key` for the jitter (keyword-only).
      alpha: fairness strength in [0, 1] (1 = fully fair).

    Returns:
      Post-processed predictions, shape ``(m,)``, in the scores' float dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_barycenter, apply_barycenter
      >>> s = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> f = jnp.array([0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0])
      >>> state = fit_barycenter(f, s, num_groups=2, key=jax.random.key(0), split=False,
      ...                        jitter=0.0)
      >>> apply_barycenter(state, f + 0.5, s, key=jax.random.key(1))  # both groups -> 5..8
      Array([5., 6., 7., 8., 5., 6., 7., 8.], dtype=float32)
      >>> apply_barycenter(state, f + 0.5, s, key=jax.random.key(1), alpha=0.5)
      Array([ 2.75,  3.75,  4.75,  5.75,  7.75,  8.75,  9.75, 10.75], dtype=float32)

    References:
      Chzhen, Denis, Hebiri, Oneto, Pontil, NeurIPS 2020 (arXiv:2006.07286), Algorithm 1;
      Chzhen and Schreuder, *A minimax framework for quantifying risk-fairness trade-off in
      regression*, Annals of Statistics 2022.
    """
    y = _check_scores(scores)
    key = _check_key(key)
    a = _check_alpha(alpha)
    stages = state.stages if isinstance(state, SequentialBarycenterState) else None
    if stages is None:
        if not isinstance(state, BarycenterState):
            raise TypeError(f"`state` must come from fit_barycenter, got {type(state).__name__}.")
        sizes = state.attribute_sizes
        num = sizes if len(sizes) > 1 else sizes[0]
        ids, _, _ = _normalise_groups(groups, num, y.shape[0])
        _check_present(state, ids)
        return _apply_bucketed(state, y, ids, key, a)
    num = tuple(st.attribute_sizes[0] for st in stages)
    _, _, attrs = _normalise_groups(groups, num, y.shape[0])
    current = y
    for k, (stage, attr) in enumerate(zip(stages, attrs, strict=True)):
        _check_present(stage, attr)
        k_apply = jax.random.fold_in(key, k)
        current = _apply_bucketed(
            stage, current, attr.astype(jnp.int32), k_apply, jnp.ones((), y.dtype)
        )
    return a.astype(y.dtype) * current + (1 - a.astype(y.dtype)) * y
