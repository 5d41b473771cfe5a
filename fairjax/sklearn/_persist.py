"""Save / load of the fitted estimators: constructor parameters and fitted attributes, no pickle.

A file is a :mod:`fairjax._persistence` file of kind ``fairjax.sklearn.<ClassName>``: the
constructor parameters in its JSON metadata (numbers, strings, bools and None only), and every
fitted attribute (the public attributes ending in ``_``) as arrays with a JSON description.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from fairjax import _persistence as _io

# Importing them registers the codecs of their states (FERM models, barycenter states).
from fairjax import ferm, postprocessing  # noqa: F401

_JSON_SCALARS = (str, bool, int, float, type(None))


def kind_of(cls: type) -> str:
    return f"fairjax.sklearn.{cls.__name__}"


def _params(estimator: Any, exclude: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name, value in estimator.get_params(deep=False).items():
        if name in exclude:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, _JSON_SCALARS) or (
            isinstance(value, float) and not np.isfinite(value)
        ):
            raise TypeError(
                f"cannot save {type(estimator).__name__}: the parameter {name}={value!r} is not "
                "a number, string, bool or None (only those are saved, as JSON)."
            )
        out[name] = value
    return out


def _put_attribute(arrays: dict, name: str, value: Any) -> dict:
    where = f"fitted/{name}"
    stored = _io.put_object(arrays, where, value)  # FERM models, barycenter states
    if stored is not None:
        return stored
    if isinstance(value, np.ndarray):
        return {"codec": "labels", "spec": _io.put_labels(arrays, where, value)}
    try:
        return {"codec": "value", "spec": _io.put_value(arrays, where, value)}
    except TypeError as err:
        raise TypeError(f"cannot save the fitted attribute {name}: {err}") from err


def _get_attribute(arrays: dict, name: str, spec: dict) -> Any:
    codec, inner = spec["codec"], spec["spec"]
    if codec in ("ferm_model", "barycenter"):
        return _io.get_object(arrays, f"fitted/{name}", codec, inner)
    if codec == "labels":
        return _io.get_labels(arrays, inner)
    if codec == "value":
        return _io.get_value(arrays, inner)
    raise ValueError(f"unknown attribute codec {codec!r}.")


def save_estimator(
    path: str | os.PathLike,
    estimator: Any,
    *,
    exclude_params: tuple[str, ...] = (),
    exclude_attributes: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
) -> None:
    """Writes ``estimator``'s parameters and fitted attributes (those ending in ``_``)."""
    check_is_fitted(estimator)
    params = _params(estimator, exclude_params)
    arrays: dict[str, np.ndarray] = {}
    fitted = {
        name: _put_attribute(arrays, name, value)
        for name, value in sorted(vars(estimator).items())
        if name.endswith("_") and not name.startswith("_") and name not in exclude_attributes
    }
    meta = {"params": params, "fitted": fitted, "extra": extra or {}}
    _io.save_arrays(path, arrays, meta, kind=kind_of(type(estimator)))


def load_estimator(
    cls: type, path: str | os.PathLike, *, check: Callable[[dict], dict] | None = None
) -> Any:
    """Rebuilds a ``cls`` estimator from a file of :func:`save_estimator`.

    ``check(extra)`` may validate the extra metadata and return parameters to add.
    """
    arrays, meta = _io.load_arrays(path, kind=kind_of(cls))
    extra = meta.get("extra")
    if not isinstance(extra, dict):
        raise _io.malformed(path, KeyError("extra"))
    added = {} if check is None else check(extra)
    try:
        params = meta["params"]
        odd = [k for k, x in params.items() if not isinstance(x, _JSON_SCALARS)]
        if odd:
            raise TypeError(f"parameters {odd} must be numbers, strings, bools or None.")
        estimator = cls(**dict(params, **added))
        for name, spec in meta["fitted"].items():
            if not (isinstance(name, str) and name.endswith("_") and not name.startswith("_")):
                raise ValueError(f"{name!r} is not a fitted attribute name.")
            setattr(estimator, name, _get_attribute(arrays, name, spec))
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, MemoryError) as err:
        raise _io.malformed(path, err) from err
    return estimator
