"""The one input path of the estimators for features, sample weights and sensitive features.

Every estimator of :mod:`fairjax.sklearn` reads ``sample_weight`` and ``sensitive_features``
through these functions, so a bad value is refused with the same message whichever estimator
(and whichever of ``fit`` and ``predict``) receives it; the two classifiers read ``X`` through
:func:`check_features`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data


def check_features(estimator, X, y="no_validation", *, reset: bool, dense: bool = True):
    """``validate_data`` of the classifiers: finite float64 features, scipy.sparse accepted.

    A sparse ``X`` (any scipy.sparse format, e.g. the output of a ``ColumnTransformer`` with a
    default ``OneHotEncoder``) is validated as sparse, then made dense here when ``dense``: the
    solvers are dense JAX programs. Memory: the dense copy takes ``8 * n * d`` bytes on the
    host (float64), and the fit a float32 copy of ``4 * n * d`` bytes on the device, whatever
    the share of zeros; for a design with very many one-hot columns, bound them first (e.g.
    ``OneHotEncoder(max_categories=...)`` or ``min_frequency=``). With ``dense=False`` a sparse
    ``X`` is returned sparse (for a product ``X @ w``, which scipy computes sparse-aware).

    Returns ``X``, and ``(X, y)`` when ``y`` is given (``None`` is refused as scikit-learn
    refuses it), as ``validate_data`` does.
    """
    out = validate_data(estimator, X, y, reset=reset, dtype=np.float64, accept_sparse=True)
    with_y = not (isinstance(y, str) and y == "no_validation")
    X_out = out[0] if with_y else out
    if dense and sp.issparse(X_out):
        X_out = X_out.toarray()
    return (X_out, out[1]) if with_y else X_out


class BinaryClassifierInputs:
    """The input contract of the binary classifiers: two classes, dense or sparse ``X``."""

    #: Whether more than two classes are accepted, and what the error suggests otherwise.
    _accepts_multiclass = False
    _multiclass_hint = ""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.sparse = True
        return tags

    def _check_X_y(self, X, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dense float64 ``X`` (see :func:`check_features`), ``y``, and each row's class id
        (the index in ``classes_``, the sorted labels; with two, 1 is the positive class)."""
        X, y = check_features(self, X, y, reset=True)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type not in (("binary", "multiclass") if self._accepts_multiclass else ("binary",)):
            kind = "binary or multiclass" if self._accepts_multiclass else "binary"
            raise ValueError(
                f"Only {kind} classification is supported ({type(self).__name__}). "
                f"The type of the target is {y_type}.{self._multiclass_hint}"
            )
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                "`y` holds 1 class; the classifier needs samples of at least two classes (one "
                f"class given: {self.classes_[0]!r})."
            )
        return X, y, np.searchsorted(self.classes_, y)


def check_sample_weight(sample_weight, n: int) -> np.ndarray | None:
    """Sample weights as float64 ``(n,)``: finite, non-negative, not all zero (None stays None).

    A scalar is one weight for every row (as in scikit-learn).
    """
    if sample_weight is None:
        return None
    raw = np.asarray(sample_weight)
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"`sample_weight` must be real numbers, got dtype {raw.dtype}.")
    w = raw.astype(np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(
            f"`sample_weight` must have shape ({n},), one weight per sample of X, got {w.shape}."
        )
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"`sample_weight` must be finite and >= 0, got {int(bad.sum())} negative, NaN or "
            f"infinite value(s) in {n} rows (first: row {first}, {float(w[first])})."
        )
    if n and not (w > 0).any():
        raise ValueError(f"`sample_weight` must not be all zero ({n} rows).")
    return w


def _is_missing_value(x) -> bool:
    """None, NaN (float, NumPy, Decimal), NaT (NumPy or pandas) or pandas' NA."""
    if x is None or type(x).__name__ == "NAType":  # pd.NA, without importing pandas
        return True
    try:
        return bool(x != x)  # NaN and NaT are the values unequal to themselves
    except (TypeError, ValueError):
        return False


def _missing_rows(sensitive_features, s: np.ndarray) -> np.ndarray:
    """Boolean ``(n,)``: the rows of ``s`` (the values as objects) missing in any column."""
    isna = getattr(sensitive_features, "isna", None)  # pandas Series / DataFrame
    kind = getattr(sensitive_features, "dtype", np.dtype(object)).kind
    if callable(isna):
        m = np.asarray(isna(), dtype=bool)
    elif isinstance(sensitive_features, np.ndarray) and kind in "biuUS":
        m = np.zeros(s.shape, bool)  # integers, booleans, strings: nothing is missing
    elif isinstance(sensitive_features, np.ndarray) and kind in "fc":
        m = np.isnan(sensitive_features)
    else:  # objects, lists (where NumPy would turn NaN into the string 'nan'), dates
        m = np.frompyfunc(_is_missing_value, 1, 1)(s).astype(bool)
    return m.reshape(m.shape[0], -1).any(axis=1)


def _check_no_missing(sensitive_features, s: np.ndarray) -> None:
    missing = _missing_rows(sensitive_features, s)
    if missing.any():
        first = int(np.argmax(missing))
        raise ValueError(
            f"`sensitive_features` holds missing values (None, NaN, pd.NA or NaT) in "
            f"{int(missing.sum())} of {len(missing)} rows (first: row {first}); a missing value "
            "is not a group: give those rows a value of their own (e.g. 'unknown') or drop them."
        )


def encode_groups(sensitive_features, n: int, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """Integer group ids ``(n,)`` and the group values (one or several sensitive columns).

    Several columns give their intersection (values joined by ``"|"``; a ``"|"`` or ``"\\"``
    inside a value is escaped with ``"\\"``, so that two combinations never read the same).
    ``None`` means one group (values ``[None]``). With ``classes`` (the values seen at fit
    time) the ids index them, and an unseen value is refused; ``None`` is accepted then only
    if it was at fit time.
    Missing values (None, NaN, pd.NA, NaT) are refused at fit and at predict time. At predict
    time a number matches however it is written (``1``, ``1.0``, ``"1e0"``), as the audit CLI
    reads its columns, unless two values seen at fit time are the same number. A float16 or
    float32 value is written as its dtype writes it (``0.1``, not the float64 text of its
    value), so a column is the same groups in float32 and in float64.
    """
    single = classes is not None and len(classes) == 1 and classes[0] is None
    if sensitive_features is None:
        if classes is None or single:
            return np.zeros(n, np.int32), np.array([None], dtype=object)
        raise ValueError(
            "`sensitive_features` are required (one value per row of X): the estimator was "
            f"fitted on {len(classes)} groups."
        )
    if single:
        raise ValueError(
            "`sensitive_features` were not given at fit time (one group); pass None here too."
        )
    s = np.asarray(sensitive_features, dtype=object)
    if s.ndim not in (1, 2) or s.shape[0] != n:
        raise ValueError(
            f"`sensitive_features` must have one row per sample of X ({n}), got shape {s.shape}."
        )
    _check_no_missing(sensitive_features, s)
    wide = s  # float32 values as float64 text: the classes of a model saved before 0.2
    s = _narrow_float_texts(sensitive_features, s)
    if s.ndim == 2 and s.shape[1] == 1:
        s, wide = s[:, 0], wide[:, 0]
    plain = None  # the join of fairjax 0.1.0, for the classes of a model saved with it
    if s.ndim == 2:  # several attributes: their intersection, "a|b"
        plain = np.array(["|".join(map(str, row)) for row in wide]).astype(str)
        wide = np.array(["|".join(map(_escaped, row)) for row in wide], dtype=object)
        s = np.array(["|".join(map(_escaped, row)) for row in s], dtype=object)
    s, wide = s.astype(str), wide.astype(str)
    if classes is None:
        values, ids = np.unique(s, return_inverse=True)
        return ids.astype(np.int32), values
    known = np.asarray(classes).astype(str)
    for older in (wide, plain):
        if older is not None and not np.isin(s, known).all() and np.isin(older, known).all():
            s = older
    canonical = _same_numbers(known)
    if len(set(canonical.tolist())) == len(known):
        # A number is one group however it is written (fitted on 0/1, predicted on 0.0/1.0);
        # unless two fitted values are the same number, then they stay as written.
        known, s = canonical, _same_numbers(s)
    order = np.argsort(known)
    ids = order[np.clip(np.searchsorted(known[order], s), 0, len(known) - 1)]
    unknown = known[ids] != s
    if unknown.any():
        raise ValueError(
            f"`sensitive_features` holds value(s) {sorted(set(s[unknown].tolist()))[:5]} not "
            f"seen at fit time (known: {classes.tolist()[:10]})."
        )
    return ids.astype(np.int32), classes


def _narrow_float_texts(sensitive_features, s: np.ndarray) -> np.ndarray:
    """``s`` with float16/float32 columns written as their own dtype writes them (``"0.1"``),
    not as the float64 they become as objects (``"0.10000000149011612"``), so that a value
    is one group whether it comes as float32 or float64."""

    def narrow(values) -> np.dtype | None:
        """The NumPy float16/float32 dtype of ``values`` (pandas' nullable Float32 too)."""
        dtype = getattr(values, "dtype", None)
        dtype = getattr(dtype, "numpy_dtype", dtype)
        ok = isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize < 8
        return dtype if ok else None

    columns = getattr(sensitive_features, "columns", None)
    if columns is not None:  # a DataFrame: column by column
        s = s.copy()
        for j, name in enumerate(columns):
            column = sensitive_features[name]
            if (dtype := narrow(column)) is not None:
                s[:, j] = np.asarray(column, dtype=dtype).astype(str)
        return s
    if (dtype := narrow(sensitive_features)) is not None:
        texts = np.asarray(sensitive_features, dtype=dtype).astype(str)
        return texts.astype(object).reshape(s.shape)
    return s


def _escaped(value: Any) -> str:
    """A value's text with ``\\`` and ``|`` escaped, so that joining several columns with
    ``|`` is one-to-one (``("R|D", "Paris")`` and ``("R", "D|Paris")`` were one group)."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|")


def _same_numbers(texts: np.ndarray) -> np.ndarray:
    """``texts`` with each number in one spelling (``"1"``, ``"1.0"`` and ``"1e0"`` all read
    ``"1"``, ``"0.50"`` reads ``"0.5"``); other text as it is. One conversion per distinct
    value."""
    values, inverse = np.unique(texts, return_inverse=True)
    spelled = values.astype(object)
    for k, text in enumerate(values.tolist()):
        try:
            number = float(text)
        except ValueError:
            continue
        if text.strip() != text or "_" in text or not np.isfinite(number):
            continue  # padded text, "1_000" (Python's digit groups), NaN, infinity: as written
        whole = number.is_integer() and abs(number) < 2**53
        spelled[k] = str(int(number)) if whole else repr(number)
    return spelled.astype(str)[inverse.reshape(texts.shape)]


def standardization(X: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted mean and standard deviation of each column of ``X`` (``(d,)`` each), by
    which the estimators standardise their features; a constant column keeps a scale of 1."""
    mean = np.average(X, axis=0, weights=weights)
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))
    return mean, np.where(scale > 0, scale, 1.0)  # constant columns stay as they are


def require_sensitive_features(sensitive_features: Any, groups: np.ndarray, what: str) -> None:
    """Refuses to score without ``sensitive_features`` an estimator fitted on several groups,
    saying how cross-validation passes them (scikit-learn's metadata routing)."""
    if sensitive_features is None and len(groups) > 1:
        raise ValueError(
            f"`sensitive_features` are required to score: the {what} was fitted on "
            f"{len(groups)} groups. In cross-validation, enable metadata routing "
            "(sklearn.set_config(enable_metadata_routing=True)), call "
            "set_fit_request(sensitive_features=True) and "
            "set_score_request(sensitive_features=True), and pass "
            'params={"sensitive_features": s}.'
        )


def check_criterion_rows(
    crit, positive: np.ndarray, ids: np.ndarray, sample_weight, *, groups, classes
) -> None:
    """Refuses a sensitive group with rows but none of positive weight among those a rate of
    the criterion ``crit`` counts (all rows, the positive or the negative examples), naming the
    group by its value in ``sensitive_features`` and the label by its value in ``y``.

    Args:
      crit: a :class:`fairjax.criteria.Criterion`.
      positive: ``(n,)`` bool, the rows of the positive class.
      ids: ``(n,)`` group ids from :func:`encode_groups`.
      sample_weight: ``(n,)`` weights or None.
      groups: the encoded groups' values (``groups_``).
      classes: the two classes (``classes_``), negative first.
    """
    w = np.ones(len(ids)) if sample_weight is None else sample_weight
    G = len(groups)
    rows = np.bincount(ids, minlength=G)
    for c in crit.conditions:
        kept = np.ones(len(ids), bool) if c is None else (positive if c == 1 else ~positive)
        counted = np.bincount(ids[kept], weights=w[kept], minlength=G)
        bad = np.asarray(groups)[(rows > 0) & ~(counted > 0)].tolist()
        if bad:
            which = "" if c is None else f" with y == {classes[1 if c == 1 else 0].item()!r}"
            raise ValueError(
                f"sensitive group(s) {bad} have no sample{which} of positive weight, so their "
                f"{crit.name} constraint is undefined; merge or drop them, or use another "
                'criterion (e.g. criterion="demographic_parity").'
            )
