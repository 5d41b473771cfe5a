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
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
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
    version = getattr(type(estimator), "_format_version", 1)
    _io.save_arrays(path, arrays, meta, kind=kind_of(type(estimator)), version=version)


def load_estimator(
    cls: type, path: str | os.PathLike, *, check: Callable[[dict], dict] | None = None
) -> Any:
    """Rebuilds a ``cls`` estimator from a file of :func:`save_estimator`.

    ``check(extra)`` may validate the extra metadata and return parameters to add.
    """
    arrays, meta = _io.load_arrays(
        path, kind=kind_of(cls), version=getattr(cls, "_format_version", 1)
    )
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


def _describe_base(regressor: Any) -> dict[str, Any]:
    """What the file records about the (unsaved) base estimator, to check it at load."""
    base = regressor.estimator_
    n_features = getattr(base, "n_features_in_", None)
    return {
        "estimator_class": f"{type(base).__module__}.{type(base).__qualname__}",
        "estimator_n_features_in": None if n_features is None else int(n_features),
        "prefit": regressor.estimator_ is regressor.estimator,
    }


def _check_base(extra: dict, estimator: Any, path: str | os.PathLike) -> dict[str, Any]:
    """The ``estimator`` parameter of a loaded estimator, after checking the given base."""
    where = repr(os.fspath(path))
    if estimator is None:
        raise TypeError(
            f"{where}: pass the fitted base estimator, load(path, estimator=...): it is not in "
            "the file (saving an arbitrary scikit-learn model would need pickle)."
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError as err:
        raise ValueError(f"{where}: the base `estimator` passed to load is not fitted.") from err
    name = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    if name != extra.get("estimator_class"):
        raise ValueError(
            f"{where} was saved with a base estimator of class {extra.get('estimator_class')}, "
            f"got {name}."
        )
    expected = extra.get("estimator_n_features_in")
    n_features = getattr(estimator, "n_features_in_", None)
    if expected is not None and n_features != expected:
        raise ValueError(
            f"{where} was saved with a base estimator of {expected} features, got {n_features}."
        )
    # A base trained by fit was a clone of the `estimator` template: an unfitted clone again,
    # so that refitting the loaded regressor trains it as the original would.
    return {"estimator": estimator if extra.get("prefit", True) else clone(estimator)}


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
          path: destination file, written exactly as given (no ``.npz`` is appended). A file
            already there is replaced, once the new one is completely written (a save that
            fails leaves it as it was).

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
        check_is_fitted(self)  # before the options, which read fitted attributes
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


class BaseEstimatorSaveLoadMixin(SaveLoadMixin):
    """``save``/``load`` of an estimator that wraps a user's base estimator (``estimator=``).

    The base estimator (an arbitrary scikit-learn model) is not in the file, since saving it
    would need pickle: its class and feature count are recorded, and :meth:`load` takes it
    back and checks it. A class overrides :meth:`_after_load` to restore derived attributes.
    """

    def _save_options(self) -> dict[str, Any]:
        return {
            "exclude_params": ("estimator",),
            "exclude_attributes": ("estimator_",),
            "extra": _describe_base(self),
        }

    def _after_load(self, path: str | os.PathLike) -> None:
        """Hook run on the loaded estimator before it is returned."""

    @classmethod
    def load(
        cls: type[_Estimator], path: str | os.PathLike, *, estimator: Any = None
    ) -> _Estimator:
        """Loads an estimator written by :meth:`save` (``allow_pickle=False``).

        Args:
          path: the ``.npz`` file.
          estimator: the fitted base estimator (``estimator_`` of the saved one), required: it
            is not in the file. It must be fitted, of the same class and with the same number
            of features.

        Returns:
          A fitted estimator of the class ``load`` is called on: same parameters, bit-equal
          fitted arrays, identical outputs.

        Raises:
          ValueError: the file is refused, as by the ``load`` of every estimator of
            :mod:`fairjax.sklearn` (not a readable ``.npz``, another kind of state, a newer
            format version, corrupt or modified); or ``estimator`` is not fitted, or of another
            class or feature count than the saved one.
          TypeError: ``estimator`` is missing.

        Example:
          >>> import os, tempfile
          >>> import numpy as np
          >>> from sklearn.linear_model import Ridge
          >>> from fairjax.sklearn import WassersteinFairRegressor
          >>> rng = np.random.default_rng(0)
          >>> s = rng.integers(0, 2, 500); X = np.c_[rng.normal(size=500), s]
          >>> y = X[:, 0] + 2 * s
          >>> reg = WassersteinFairRegressor(Ridge(), random_state=0)
          >>> reg = reg.fit(X, y, sensitive_features=s)
          >>> path = os.path.join(tempfile.mkdtemp(), "post.npz")
          >>> reg.save(path)  # the post-processor; the Ridge is yours to keep
          >>> loaded = WassersteinFairRegressor.load(path, estimator=reg.estimator_)
          >>> bool(np.array_equal(loaded.predict(X, sensitive_features=s),
          ...                      reg.predict(X, sensitive_features=s)))
          True
        """

        def check(extra: dict) -> dict:
            return _check_base(extra, estimator, path)

        loaded = load_estimator(cls, path, check=check)
        loaded.estimator_ = estimator
        loaded._after_load(path)
        return loaded
