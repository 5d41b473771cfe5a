"""The fitted state of the barycenter post-processor and the checks shared by fit and apply."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import groups as gs
from fairjax import ot1d
from fairjax._shapes import bucket

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: Version of the ``.npz`` + JSON file layout written by :func:`save_barycenter`.
FORMAT_VERSION = 1

_DATA_FIELDS = (
    "cdf_values",
    "cdf_levels",
    "cdf_start",
    "cdf_count",
    "quantile_values",
    "quantile_knots",
    "quantile_start",
    "quantile_count",
    "proportions",
    "jitter",
)
_META_FIELDS = ("method", "interpolation", "uniform", "attribute_sizes")


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=list(_DATA_FIELDS), meta_fields=_META_FIELDS
)
@dataclasses.dataclass(frozen=True)
class BarycenterState:
    """Fitted barycenter post-processor (see :func:`fit_barycenter`). An immutable PyTree.

    The per-group samples are stored flat, group after group, each segment sorted (the
    ``segment`` layout of ott-jax: one array, a start and a count per group), so memory is
    ``O(n)`` whatever the group sizes, and shapes are static under ``jit``. With
    ``method="quantile_grid"`` each segment holds ``grid_size`` quantiles, so memory is
    ``O(G x grid_size)``. The exact state's arrays are padded to a shape bucket (at least 1024,
    then at most 6.25 % above the row count) so that fits on different data sizes share compiled
    programs; rows of zero weight and the padding sit after the groups' segments, unused.

    Attributes:
      cdf_values: sorted jittered scores defining each group's CDF :math:`F_s` (the sample
        :math:`A^1_s` of the paper), shape ``(n_1,)``.
      cdf_levels: CDF level :math:`F_s` at each of those points (cumulative weight over the group
        total), shape ``(n_1,)``.
      cdf_start: first index of each group's segment, int32 ``(G,)``.
      cdf_count: number of points of each group's segment, int32 ``(G,)``.
      quantile_values: sorted jittered scores defining each quantile function :math:`Q_s` (the
        sample :math:`A^0_s`), shape ``(n_0,)``; the same sample as the CDF one with
        ``split=False``.
      quantile_knots: quantile levels at those points: CDF levels for ``interpolation="step"``,
        linear-interpolation knots for ``"linear"``, shape ``(n_0,)``.
      quantile_start: int32 ``(G,)``.
      quantile_count: int32 ``(G,)``.
      proportions: group proportions :math:`p_s` on the calibration data, shape ``(G,)``.
      jitter: half-width :math:`\\sigma` of the uniform jitter, scalar.
      method: ``"exact"`` (step CDF) or ``"quantile_grid"`` (piecewise-linear CDF). Static.
      interpolation: ``"step"`` or ``"linear"`` quantile functions. Static.
      uniform: True when the calibration rows had unit weights, so ranks and quantile indices
        are closed-form integers (no search over levels). Static.
      attribute_sizes: number of values of each sensitive attribute; groups are their
        intersection (one attribute: ``(G,)``). Static.
    """

    cdf_values: Array
    cdf_levels: Array
    cdf_start: Array
    cdf_count: Array
    quantile_values: Array
    quantile_knots: Array
    quantile_start: Array
    quantile_count: Array
    proportions: Array
    jitter: Array
    method: str = "exact"
    interpolation: str = "step"
    uniform: bool = True
    attribute_sizes: tuple[int, ...] = ()

    @property
    def num_groups(self) -> int:
        """Number of (intersectional) groups ``G``."""
        return int(np.prod(self.attribute_sizes))


class SequentialBarycenterState(NamedTuple):
    """Post-processor applied one sensitive attribute after the other (``multi="sequential"``).

    Attributes:
      stages: one :class:`BarycenterState` per attribute, applied in order.
    """

    stages: tuple[BarycenterState, ...]


# ----------------------------------------------------------------------------- validation


def _check_scores(scores: ArrayLike, name: str = "scores") -> Array:
    x = v.as_array(scores, name, ndim=1)
    v.check_finite(x, name)
    return x.astype(v.float_dtype(x))


def _normalise_groups(
    groups: Any, num_groups: Any, n: int
) -> tuple[Array, tuple[int, ...], list[Array]]:
    """Returns intersection ids, the attribute sizes and the per-attribute ids."""
    if isinstance(groups, (list, tuple)):
        if not isinstance(num_groups, (list, tuple)) or len(num_groups) != len(groups):
            raise ValueError(
                "with several sensitive attributes, `num_groups` must give one size per "
                f"attribute ({len(groups)}), got {num_groups!r}."
            )
        attrs = [
            v.check_groups(a, num_groups=int(k), n=n)
            for a, k in zip(groups, num_groups, strict=True)
        ]
        sizes = tuple(int(k) for k in num_groups)
    else:
        if isinstance(num_groups, (list, tuple)):
            raise ValueError("`num_groups` is a sequence but `groups` is a single attribute.")
        attrs = [v.check_groups(groups, num_groups=num_groups, n=n)]
        sizes = (v.check_num_groups(num_groups),)
    for a in attrs:
        if a.ndim != 1:
            raise TypeError(
                "post-processing needs hard group ids: `groups` must be integer ids of shape "
                f"(n,), got shape {a.shape}."
            )
    ids = attrs[0].astype(jnp.int32) if len(attrs) == 1 else gs.intersect(*attrs, num_groups=sizes)
    return ids, sizes, attrs


def _nan_floats_where(bad: Array, state: Any) -> Any:
    """Every float of a state (a PyTree) NaN where ``bad``: under ``jit``, where the value
    checks cannot run, invalid input gives a state no output of which reads as fair."""
    floating = lambda a: jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
    return jax.tree.map(lambda a: jnp.where(bad, jnp.nan, a) if floating(a) else a, state)


def _any_invalid_row(x: Array, w: Array | None, attrs: Sequence[Array], sizes: tuple) -> Array:
    """Whether a traced fit's rows hold a NaN score, a NaN or negative weight, or an id out of
    range of its attribute (an intersection id would wrap it into another cell)."""
    bad = jnp.any(jnp.isnan(x))
    if w is not None:
        bad = bad | jnp.any(jnp.isnan(w)) | jnp.any(w < 0)
    for a, k in zip(attrs, sizes, strict=True):
        bad = bad | jnp.any((a < 0) | (a >= k))
    return bad


def _group_label(s: int, sizes: tuple[int, ...]) -> str:
    if len(sizes) == 1:
        return str(s)
    return f"{s} (attribute values {tuple(int(i) for i in np.unravel_index(s, sizes))})"


# ----------------------------------------------------------------------------- shape buckets


def _bucket(n: int) -> int:
    """Padded length for ``n`` rows (:func:`fairjax._shapes.bucket`, at least 1024 rows).

    Padded rows carry weight 0 (fit: they fall in the trash segment) or are cut off (apply),
    so results are unchanged.
    """
    return bucket(n, minimum=1024)


def _cut(a: Array, m: int) -> Array:
    """The first ``m`` entries of ``a`` (a host view on the CPU backend: no compile)."""
    if a.shape[0] == m:
        return a
    if jax.default_backend() == "cpu" and v.is_concrete(a):
        return jax.device_put(np.asarray(a)[:m])
    return a[:m]


# ----------------------------------------------------------------------------- views


def _cdf_samples(state: BarycenterState) -> ot1d.GroupedSamples:
    """The groups' CDF samples :math:`A^1_s` as an :class:`~fairjax.ot1d.GroupedSamples`."""
    return ot1d.GroupedSamples(
        state.cdf_values, state.cdf_levels, state.cdf_levels, state.cdf_start, state.cdf_count
    )


def _quantile_samples(state: BarycenterState) -> ot1d.GroupedSamples:
    """The groups' quantile samples :math:`A^0_s` as an :class:`~fairjax.ot1d.GroupedSamples`.

    The state stores the one array its interpolation reads (CDF levels for ``"step"``, type-7
    knots for ``"linear"``) in ``quantile_knots``; it fills both slots of the view.
    """
    knots = state.quantile_knots
    return ot1d.GroupedSamples(
        state.quantile_values, knots, knots, state.quantile_start, state.quantile_count
    )
