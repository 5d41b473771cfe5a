"""Safe save/load of fitted post-processors: ``.npz`` arrays with JSON metadata, no pickle."""

from __future__ import annotations

import os

import numpy as np

from fairjax import _persistence as _io
from fairjax.postprocessing._state import (
    _DATA_FIELDS,
    FORMAT_VERSION,
    BarycenterState,
    SequentialBarycenterState,
)

_KIND = "fairjax.postprocessing.barycenter"


def _put_state(arrays: dict[str, np.ndarray], prefix: str, state: BarycenterState) -> dict:
    """Stores a state's arrays under ``{prefix}/{field}``; returns its static fields as JSON.

    The codec of a :class:`BarycenterState` in every file that holds one (this module's files,
    the saved :class:`~fairjax.sklearn.WassersteinFairRegressor`).
    """
    if not isinstance(state, BarycenterState):
        raise TypeError(f"expected a BarycenterState, got {type(state).__name__}.")
    for name in _DATA_FIELDS:
        arrays[f"{prefix}/{name}"] = np.asarray(getattr(state, name))
    return {
        "method": state.method,
        "interpolation": state.interpolation,
        "uniform": bool(state.uniform),
        "attribute_sizes": [int(s) for s in state.attribute_sizes],
    }


def _get_state(arrays: dict[str, np.ndarray], prefix: str, spec: dict) -> BarycenterState:
    """The inverse of :func:`_put_state` (``KeyError``/``TypeError`` on a malformed spec)."""
    if not isinstance(spec, dict):
        raise TypeError(f"a state's static fields must be a JSON object, got {spec!r}.")
    method, interpolation = spec["method"], spec["interpolation"]
    if method not in ("exact", "quantile_grid") or interpolation not in ("step", "linear"):
        raise ValueError(f"unknown method {method!r} or interpolation {interpolation!r}.")
    sizes = spec["attribute_sizes"]
    if not isinstance(sizes, list) or not all(type(k) is int and k >= 1 for k in sizes):
        raise ValueError(f"`attribute_sizes` must be positive ints, got {sizes!r}.")
    data = {name: np.asarray(arrays[f"{prefix}/{name}"]) for name in _DATA_FIELDS}
    _check_layout(data, int(np.prod(sizes)))
    return BarycenterState(
        **{name: _io.device_array(a, f"{prefix}/{name}") for name, a in data.items()},
        method=method,
        interpolation=interpolation,
        uniform=bool(spec["uniform"]),
        attribute_sizes=tuple(sizes),
    )


_io.register_codec("barycenter", BarycenterState, _put_state, _get_state)


def _check_layout(data: dict[str, np.ndarray], num: int) -> None:
    """Checks that stored arrays form a state of ``num`` groups (else ``ValueError``).

    A digest only proves the file is as written; a crafted file with a valid digest could
    otherwise hold segments that point outside the values, whose gathers JAX clamps silently.
    """
    for values, others in (("cdf_values", "cdf_levels"), ("quantile_values", "quantile_knots")):
        v_, o_ = data[values], data[others]
        if v_.ndim != 1 or o_.shape != v_.shape or v_.dtype.kind != "f":
            raise ValueError(f"`{values}` and `{others}` must be float vectors of one length.")
    if data["proportions"].shape != (num,) or data["jitter"].ndim != 0:
        raise ValueError(f"`proportions` must have shape ({num},) and `jitter` be a scalar.")
    for kind in ("cdf", "quantile"):
        start, count = data[f"{kind}_start"], data[f"{kind}_count"]
        if start.shape != (num,) or count.shape != (num,) or start.dtype.kind not in "iu":
            raise ValueError(f"`{kind}_start`/`{kind}_count` must be {num} integers each.")
        ends = start.astype(np.int64) + count.astype(np.int64)
        size = data[f"{kind}_values"].shape[0]
        if np.any(start < 0) or np.any(count < 0) or np.any(ends > size):
            raise ValueError(f"`{kind}` segments must lie within the {size} stored values.")


def save_barycenter(
    path: str | os.PathLike, state: BarycenterState | SequentialBarycenterState
) -> None:
    """Saves a fitted post-processor to ``.npz`` (arrays) with JSON metadata; no pickle.

    The file holds every array of the state(s) under ``stage{k}/{field}`` and a ``metadata``
    entry: UTF-8 JSON with the format version, the static fields and a SHA-256 digest of the
    metadata and the arrays, so :func:`load_barycenter` restores the state exactly and refuses
    a modified file.

    Args:
      path: destination file, written exactly as given (no ``.npz`` is appended).
      state: a :class:`BarycenterState` or :class:`SequentialBarycenterState`.

    Example:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> from fairjax.postprocessing import fit_barycenter, save_barycenter, load_barycenter
      >>> st = fit_barycenter(jnp.arange(6.0), jnp.array([0, 1] * 3), num_groups=2,
      ...                     key=jax.random.key(0))
      >>> path = os.path.join(tempfile.mkdtemp(), "post.npz")
      >>> save_barycenter(path, st)
      >>> bool(jnp.all(load_barycenter(path).cdf_values == st.cdf_values))
      True
    """
    sequential = isinstance(state, SequentialBarycenterState)
    stages = state.stages if sequential else (state,)
    if not all(isinstance(st, BarycenterState) for st in stages):
        raise TypeError(f"`state` must come from fit_barycenter, got {type(state).__name__}.")
    arrays: dict[str, np.ndarray] = {}
    meta_stages = [_put_state(arrays, f"stage{k}", st) for k, st in enumerate(stages)]
    meta = {"sequential": sequential, "stages": meta_stages}
    _io.save_arrays(path, arrays, meta, kind=_KIND, version=FORMAT_VERSION)


def load_barycenter(path: str | os.PathLike) -> BarycenterState | SequentialBarycenterState:
    """Loads a post-processor written by :func:`save_barycenter` (``allow_pickle=False``).

    Raises:
      ValueError: the file is not a fairjax barycenter file, has an unknown format version, is
        truncated or corrupt, or its arrays or metadata do not match the recorded digest
        (modified).
    """
    files, meta = _io.load_arrays(path, kind=_KIND, version=FORMAT_VERSION)
    try:
        stages = [_get_state(files, f"stage{k}", st) for k, st in enumerate(meta["stages"])]
        sequential = bool(meta["sequential"])
    except (KeyError, TypeError, ValueError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
    return SequentialBarycenterState(tuple(stages)) if sequential else stages[0]
