"""The ``Dataset`` container and the preprocessing shared by every loader.

Numeric columns are standardised with the training mean and standard deviation only. Categorical
columns are one-hot encoded with every level present in the file, so the feature set is the same
for every split and seed (the levels carry no label information).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Dataset(NamedTuple):
    """A benchmark split into train and test parts, ready for fairjax.

    Immutable (a ``NamedTuple``); arrays are NumPy arrays, so they can be passed to ``jax.numpy``
    functions, ``jax.device_put`` or scikit-learn as they are. A loader called with
    ``as_frame=True`` gives pandas objects instead, with the same values: ``X_*`` a
    ``DataFrame`` whose columns are ``feature_names``, ``y_*`` a ``Series`` named
    ``target_name``, ``groups_*`` a categorical ``Series`` of group names (categories in the
    order of ``group_names``, so ``.cat.codes`` are the group ids) named ``sensitive_name``;
    the three share an index, the row's number among all the rows loaded (train and test
    together), named ``"row"``. That is the layout of scikit-learn's and fairlearn's fetchers
    (``fetch_openml``, ``fetch_adult``): pass ``groups_train`` as ``sensitive_features=``.

    Attributes:
        X_train: ``float32[n_train, d]`` features.
        y_train: ``int32[n_train]`` labels in ``{0, 1}`` for classification, or ``float32[n_train]``
            targets for regression.
        groups_train: ``int32[n_train]`` sensitive group ids in ``[0, num_groups)``.
        X_test: ``float32[n_test, d]``.
        y_test: ``int32[n_test]`` or ``float32[n_test]``, as ``y_train``.
        groups_test: ``int32[n_test]``.
        feature_names: ``d`` column names; a one-hot column is named ``"column=level"``.
        group_names: name of each group id, ``group_names[g]`` for id ``g``.
        target_name: what ``y`` is.
        sensitive_name: the attribute the groups come from.
        task: ``"classification"`` (binary labels), ``"multiclass"`` (class ids
            ``0..K-1``) or ``"regression"``.
        description: a short account of the source and preprocessing.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    groups_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    groups_test: np.ndarray
    feature_names: tuple[str, ...]
    group_names: tuple[str, ...]
    target_name: str
    sensitive_name: str
    task: str
    description: str

    @property
    def num_groups(self) -> int:
        """The number of groups, the static ``num_groups=`` of fairjax's functions."""
        return len(self.group_names)

    def batch(self, split: str = "train") -> tuple[jax.Array, jax.Array, jax.Array]:
        """One split as a training batch of JAX arrays ``(X, y, groups)``.

        ``X`` is ``float32[n, d]``, ``y`` ``float32[n]`` (labels in ``{0, 1}`` as floats, ready
        for a loss such as ``optax.sigmoid_binary_cross_entropy``; the regression target as
        is) and ``groups`` ``int32[n]``: the batch layout of :mod:`fairjax.training`.

        Args:
            split: ``"train"`` (default) or ``"test"``.

        Example:
            >>> from fairjax.datasets import load_adult
            >>> X, y, s = load_adult().batch("test")
            >>> X.shape, y.dtype, s.dtype
            ((15060, 104), dtype('float32'), dtype('int32'))
        """
        if split not in ("train", "test"):
            raise ValueError(f"`split` must be 'train' or 'test', got {split!r}.")
        X, y, g = (getattr(self, f"{name}_{split}") for name in ("X", "y", "groups"))
        g = getattr(getattr(g, "cat", None), "codes", g)  # a categorical Series: its group ids
        X, y, g = (np.asarray(a) for a in (X, y, g))  # NumPy arrays or pandas objects
        return jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32), jnp.asarray(g, jnp.int32)


# ----------------------------------------------------------------------------- validation


def check_test_size(test_size: object) -> float:
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"`test_size` must be a float in (0, 1), got {type(test_size).__name__}.")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"`test_size` must be in the open interval (0, 1), got {test_size}.")
    return float(test_size)


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}.")
    if int(seed) < 0:
        raise ValueError(f"`seed` must be non-negative, got {seed}.")
    return int(seed)


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}.")
    return bool(value)


def check_choice(value: object, name: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {tuple(options)}, got {value!r}.")
    return value


# ----------------------------------------------------------------------------- preprocessing


def stratified_split(
    strata: np.ndarray, *, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a seeded split with ``round(test_size * n_k)`` test rows per stratum ``k``.

    Indices of each part are returned shuffled (by the same seeded generator).
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for value in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == value))
        n_test = round(test_size * idx.size)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train))
    test_idx = rng.permutation(np.concatenate(test))
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(
            f"`test_size`={test_size} leaves an empty train or test part "
            f"({train_idx.size} train, {test_idx.size} test rows)."
        )
    return train_idx, test_idx


class Column(NamedTuple):
    """A raw column: ``kind`` is ``"numeric"`` (standardised) or ``"categorical"`` (one-hot)."""

    name: str
    kind: str
    values: np.ndarray


def encode(
    columns: Sequence[Column], train_idx: np.ndarray, test_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Builds ``float32`` train/test matrices, fitting every transform on the train rows only.

    Numeric columns: ``(x - mean_train) / std_train`` (population std; a constant column is only
    centred). Categorical columns: one indicator per level present in any row, levels sorted.
    Columns keep the given order; a one-hot block is named ``"name=level"``.
    """
    train_blocks, test_blocks, names = [], [], []
    for col in columns:
        if col.kind == "numeric":
            values = col.values.astype(np.float64)
            mean = values[train_idx].mean()
            std = values[train_idx].std()
            scale = std if std > 0 else 1.0  # a constant column is centred, not divided by 0
            z = ((values - mean) / scale)[:, None]
            names.append(col.name)
        elif col.kind == "categorical":
            # Levels come from every row (no label is involved), so the columns of X do not
            # depend on the split: a rare level that lands only in the test part keeps its column.
            levels = np.unique(col.values)
            z = (col.values[:, None] == levels[None, :]).astype(np.float64)
            names.extend(f"{col.name}={level}" for level in levels)
        else:  # pragma: no cover - internal misuse
            raise ValueError(f"unknown column kind {col.kind!r}")
        train_blocks.append(z[train_idx])
        test_blocks.append(z[test_idx])
    X_train = np.concatenate(train_blocks, axis=1).astype(np.float32)
    X_test = np.concatenate(test_blocks, axis=1).astype(np.float32)
    return X_train, X_test, tuple(names)


def make_dataset(
    columns: Sequence[Column],
    y: np.ndarray,
    groups: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    *,
    group_names: tuple[str, ...],
    target_name: str,
    sensitive_name: str,
    task: str,
    description: str,
    as_frame: bool = False,
) -> Dataset:
    """The :class:`Dataset` of ``columns`` (encoded by :func:`encode`), ``y`` and ``groups``.

    ``split`` is ``(train_idx, test_idx)``, the row indices of each part; ``y`` is cast to
    ``int32`` for classification and ``float32`` for regression. ``as_frame``: pandas objects
    (:func:`to_frames`).
    """
    train_idx, test_idx = split
    X_train, X_test, feature_names = encode(columns, train_idx, test_idx)
    y_dtype = np.float32 if task == "regression" else np.int32
    y = np.asarray(y).astype(y_dtype)
    groups = np.asarray(groups).astype(np.int32)
    data = Dataset(
        X_train=np.ascontiguousarray(X_train, dtype=np.float32),
        y_train=y[train_idx],
        groups_train=groups[train_idx],
        X_test=np.ascontiguousarray(X_test, dtype=np.float32),
        y_test=y[test_idx],
        groups_test=groups[test_idx],
        feature_names=tuple(feature_names),
        group_names=tuple(group_names),
        target_name=target_name,
        sensitive_name=sensitive_name,
        task=task,
        description=description,
    )
    return to_frames(data, split) if check_bool(as_frame, "as_frame") else data


def to_frames(data: Dataset, split: tuple[np.ndarray, np.ndarray]) -> Dataset:
    """``data`` with pandas objects for its arrays (the ``as_frame=True`` layout of
    :class:`Dataset`); ``split`` holds the row numbers of the train and test rows (the index)."""
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("`as_frame=True` needs pandas (pip install pandas).") from err
    parts = {}
    for part, rows in zip(("train", "test"), split, strict=True):
        index = pd.Index(np.asarray(rows, np.int64), name="row")
        X = pd.DataFrame(getattr(data, f"X_{part}"), index=index, columns=list(data.feature_names))
        codes = getattr(data, f"groups_{part}")
        groups = pd.Categorical.from_codes(codes, categories=list(data.group_names))
        parts[f"X_{part}"] = X
        parts[f"y_{part}"] = pd.Series(
            getattr(data, f"y_{part}"), index=index, name=data.target_name
        )
        parts[f"groups_{part}"] = pd.Series(groups, index=index, name=data.sensitive_name)
    return data._replace(**parts)
