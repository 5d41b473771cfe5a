"""Save / load of FERM projections and models: .npz + JSON metadata, no pickle."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fairjax import _persistence as _io
from fairjax import kernels as kn
from fairjax.ferm._model import FERMModel, KernelExpansion, _check_model
from fairjax.ferm._preprocessing import OrthogonalProjection, PivotElimination, _check_projection

#: Kind tags of the files written by :func:`save_projection` and :func:`save_model`.
_PROJECTION_KIND = "fairjax.ferm.projection"
_MODEL_KIND = "fairjax.ferm.model"
_PROJECTIONS = {"orthogonal": OrthogonalProjection, "pivot": PivotElimination}
#: Kernels described by name and numeric parameters (exact types: a subclass may compute
#: something else, so it is refused rather than saved as its parent).
_KERNELS = {
    "linear": kn.Linear,
    "gaussian": kn.Gaussian,
    "laplace": kn.Laplace,
    "inverse_multiquadric": kn.InverseMultiquadric,
}
_FEATURE_MAPS = {
    "kernel_expansion": KernelExpansion,
    "nystrom": kn.NystromFeatures,
    "random_fourier": kn.RandomFourierFeatures,
}


def _tag(value: Any, table: dict[str, type]) -> str | None:
    return next((tag for tag, cls in table.items() if type(value) is cls), None)


def _put_kernel(arrays: dict, name: str, kernel: Any) -> dict:
    if type(kernel) is kn.Sum:
        parts = [_put_kernel(arrays, f"{name}/{i}", k) for i, k in enumerate(kernel.kernels)]
        return {"kernel": "sum", "kernels": parts}
    tag = _tag(kernel, _KERNELS)
    if tag is None:
        raise TypeError(
            f"cannot save a kernel of type {type(kernel).__name__}: only the kernels of "
            "fairjax.kernels (linear, gaussian, laplace, inverse_multiquadric and their sums) "
            "are described by name and parameters; any other callable would need pickle."
        )
    fields = {f: _io.put_value(arrays, f"{name}/{f}", getattr(kernel, f)) for f in kernel._fields}
    return {"kernel": tag, "params": fields}


def _get_kernel(arrays: dict, spec: dict) -> Any:
    if spec["kernel"] == "sum":
        return kn.Sum(tuple(_get_kernel(arrays, s) for s in spec["kernels"]))
    cls = _KERNELS[spec["kernel"]]
    params = spec["params"]
    if set(params) != set(cls._fields):
        raise ValueError(f"kernel {spec['kernel']!r} has fields {cls._fields}, got {list(params)}.")
    return cls(**{f: _io.get_value(arrays, s) for f, s in params.items()})


def _put_fields(arrays: dict, name: str, obj: Any) -> dict:
    return {
        f: _put_kernel(arrays, f"{name}/{f}", x) if f == "kernel" else
        _io.put_value(arrays, f"{name}/{f}", x)
        for f, x in zip(obj._fields, obj, strict=True)
    }  # fmt: skip


def _get_fields(arrays: dict, cls: type, fields: dict) -> Any:
    if set(fields) != set(cls._fields):
        raise ValueError(f"{cls.__name__} has fields {cls._fields}, got {list(fields)}.")
    return cls(**{
        f: _get_kernel(arrays, s) if f == "kernel" else _io.get_value(arrays, s)
        for f, s in fields.items()
    })  # fmt: skip


def _put_model(arrays: dict, name: str, model: FERMModel) -> dict:
    """JSON spec of a :class:`FERMModel`, its arrays stored under ``name/...``."""
    if not isinstance(model, FERMModel):
        raise TypeError(f"`model` must be a FERMModel, got {type(model).__name__}.")
    fmap = model.feature_map
    if fmap is None:
        map_spec = None
    else:
        tag = _tag(fmap, _FEATURE_MAPS)
        if tag is None:
            raise TypeError(
                f"cannot save a feature map of type {type(fmap).__name__}: only None (linear), "
                "KernelExpansion, kernels.NystromFeatures and kernels.RandomFourierFeatures are "
                "saved (an arbitrary callable would need pickle)."
            )
        map_spec = {"map": tag, "fields": _put_fields(arrays, f"{name}/feature_map", fmap)}
    spec = {"feature_map": map_spec}
    for f in ("weights", "bias", "directions"):
        spec[f] = _io.put_value(arrays, f"{name}/{f}", getattr(model, f))
    n_iter = model.n_iter
    spec["n_iter"] = None if n_iter is None else _io.put_value(arrays, f"{name}/n_iter", n_iter)
    _check_model(model)  # after the type checks: an unsaveable map is a TypeError first
    return spec


def _get_model(arrays: dict, spec: dict) -> FERMModel:
    map_spec = spec["feature_map"]
    fmap = None
    if map_spec is not None:
        fmap = _get_fields(arrays, _FEATURE_MAPS[map_spec["map"]], map_spec["fields"])
    w, b, U = (_io.get_value(arrays, spec[f]) for f in ("weights", "bias", "directions"))
    n_iter = None if spec["n_iter"] is None else _io.get_value(arrays, spec["n_iter"])
    model = FERMModel(fmap, w, b, U, n_iter)
    _check_model(model)  # weights vs expansion points / landmarks / frequencies vs directions
    return model


_io.register_codec("ferm_model", FERMModel, _put_model, lambda a, _, spec: _get_model(a, spec))


def save_projection(
    path: str | os.PathLike, state: OrthogonalProjection | PivotElimination
) -> None:
    """Saves a fitted linear-FERM map to ``.npz`` with JSON metadata; no pickle.

    The file holds the state's arrays and a ``metadata`` entry (UTF-8 JSON: the kind of file,
    its format version, the method and a SHA-256 digest of metadata and arrays), so
    :func:`load_projection` restores the state exactly (same dtypes, bit-equal arrays) and
    refuses a modified or truncated file, or one of another kind.

    Args:
      path: destination file, written exactly as given (no ``.npz`` is appended).
      state: from :func:`fit_projection`.

    Example:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> from fairjax import ferm
      >>> X = jax.random.normal(jax.random.key(0), (50, 3))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> state = ferm.fit_projection(X, jnp.ones(50), s, num_groups=2)
      >>> path = os.path.join(tempfile.mkdtemp(), "projection.npz")
      >>> ferm.save_projection(path, state)
      >>> bool(jnp.all(ferm.transform(ferm.load_projection(path), X) == ferm.transform(state, X)))
      True
    """
    method = _tag(state, _PROJECTIONS)
    if method is None:
        raise TypeError(
            "`state` must be an OrthogonalProjection or PivotElimination (from fit_projection), "
            f"got {type(state).__name__}."
        )
    arrays: dict[str, np.ndarray] = {}
    fields = _put_fields(arrays, "state", state)
    _io.save_arrays(path, arrays, {"method": method, "fields": fields}, kind=_PROJECTION_KIND)


def load_projection(path: str | os.PathLike) -> OrthogonalProjection | PivotElimination:
    """Loads a map written by :func:`save_projection` (``allow_pickle=False``).

    Args:
      path: the ``.npz`` file.

    Returns:
      The :class:`OrthogonalProjection` or :class:`PivotElimination`, bit-equal to the saved one.

    Raises:
      ValueError: the file is not a readable ``.npz``, is not a FERM projection file (e.g. a
        saved model or post-processor), has a newer format version, or is corrupt or modified
        (its arrays or metadata do not match the recorded digest).
    """
    arrays, meta = _io.load_arrays(path, kind=_PROJECTION_KIND)
    try:
        state = _get_fields(arrays, _PROJECTIONS[meta["method"]], meta["fields"])
        _check_projection(state)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
    return state


def save_model(path: str | os.PathLike, model: FERMModel) -> None:
    """Saves a fitted FERM classifier to ``.npz`` with JSON metadata; no pickle.

    Linear models and kernel models are saved: the feature map may be ``None``, a
    :class:`KernelExpansion`, a Nystrom or a random-Fourier map, over the kernels of
    :mod:`fairjax.kernels` (linear, Gaussian, Laplace, inverse multiquadric and their sums),
    which the metadata describes by name with their parameters stored as arrays. A kernel or
    feature map of another type is refused (``TypeError``): it could only be saved as code.

    Args:
      path: destination file, written exactly as given (no ``.npz`` is appended).
      model: from :func:`fit_linear` or :func:`fit_kernel`.

    Raises:
      TypeError: ``model`` is not a :class:`FERMModel`, or holds a kernel or feature map that
        cannot be described without pickle.

    Example:
      >>> import os, tempfile, jax, jax.numpy as jnp
      >>> from fairjax import ferm, kernels
      >>> X = jax.random.normal(jax.random.key(0), (60, 2))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> y = (X[:, 0] * X[:, 1] > 0).astype(jnp.int32)
      >>> model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=kernels.gaussian())
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> ferm.save_model(path, model)
      >>> loaded = ferm.load_model(path)
      >>> bool(jnp.all(ferm.decision_function(loaded, X) == ferm.decision_function(model, X)))
      True
    """
    arrays: dict[str, np.ndarray] = {}
    spec = _put_model(arrays, "model", model)
    _io.save_arrays(path, arrays, {"model": spec}, kind=_MODEL_KIND)


def load_model(path: str | os.PathLike) -> FERMModel:
    """Loads a classifier written by :func:`save_model` (``allow_pickle=False``).

    Args:
      path: the ``.npz`` file.

    Returns:
      The :class:`FERMModel`, with bit-equal arrays, so :func:`decision_function` gives the
      same outputs.

    Raises:
      ValueError: the file is not a readable ``.npz``, is not a FERM model file, has a newer
        format version, or is corrupt or modified.
    """
    arrays, meta = _io.load_arrays(path, kind=_MODEL_KIND)
    try:
        return _get_model(arrays, meta["model"])
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
