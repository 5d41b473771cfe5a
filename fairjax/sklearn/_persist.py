"""Save / load of the fitted estimators: constructor parameters and fitted attributes, no pickle.

A file is a :mod:`fairjax._persistence` file of kind ``fairjax.sklearn.<ClassName>``: the
constructor parameters in its JSON metadata (numbers, strings, bools and None only), and every
fitted attribute (the public attributes ending in ``_``) as arrays with a JSON description.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

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


_Estimator = TypeVar("_Estimator")


class SaveLoadMixin:
    """``save`` and ``load`` of a fitted estimator of :mod:`fairjax.sklearn`, without pickle.

    A class overrides :meth:`_save_options` to leave parameters or attributes out of the file
    (and to record what :meth:`load` must check instead).
    """

    def _save_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`save_estimator` beyond the path and the estimator."""
        return {}

    def save(self, path: str | os.PathLike) -> None:
        """Saves the fitted estimator to ``.npz`` with JSON metadata; no pickle.

        The file holds the constructor parameters (JSON) and every fitted attribute (the
        public attributes ending in ``_``, e.g. ``coef_``, ``classes_``, ``groups_``, a
        fitted :class:`fairjax.ferm.FERMModel` or
        :class:`fairjax.postprocessing.BarycenterState`) as arrays, with the format version and
        a SHA-256 digest; ``load`` rebuilds an estimator whose outputs are identical.
        The base estimator of a :class:`WassersteinFairRegressor` is not saved (an arbitrary
        scikit-learn model needs pickle): keep it, and pass it to ``load(path, estimator=...)``.

        Args:
          path: destination file, written exactly as given (no ``.npz`` is appended).

        Raises:
          NotFittedError: the estimator is not fitted.
          TypeError: a parameter is not a number, string, bool or None.

        Example:
          >>> import os, tempfile
          >>> import numpy as np
          >>> from fairjax.sklearn import FairLogisticRegression
          >>> rng = np.random.default_rng(0)
          >>> s = rng.integers(0, 2, 200); X = rng.normal(size=(200, 3)) + s[:, None]
          >>> y = (X[:, 0] > 0.5).astype(int)
          >>> clf = FairLogisticRegression(max_iter=100).fit(X, y, sensitive_features=s)
          >>> path = os.path.join(tempfile.mkdtemp(), "logistic.npz")
          >>> clf.save(path)
          >>> loaded = FairLogisticRegression.load(path)
          >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
          True
        """
        save_estimator(path, self, **self._save_options())

    @classmethod
    def load(cls: type[_Estimator], path: str | os.PathLike) -> _Estimator:
        """Loads an estimator written by ``save`` (``allow_pickle=False``).

        Args:
          path: the ``.npz`` file.

        Returns:
          A fitted estimator of the class ``load`` is called on: same parameters, bit-equal
          fitted arrays, identical outputs.

        Raises:
          ValueError: the file is not a readable ``.npz``, holds another kind of state (e.g.
            another estimator's file), has a newer format version, or is corrupt or modified
            (its arrays or metadata do not match the recorded digest).
        """
        return load_estimator(cls, path)
