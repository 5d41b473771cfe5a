"""``fairjax audit``: read a table of predictions, report its fairness, print and plot it."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from fairjax import groups, metrics
from fairjax.cli._chunks import (
    ChunkError,
    Progress,
    check_columns,
    csv_rows,
    iter_chunks,
    total_rows,
)
from fairjax.cli._format import output_path_problem, print_audit


class AuditError(ValueError):
    """A problem with the audited table or the options: ``fairjax audit`` exits with code 2."""


def _read_table(path: str | os.PathLike, columns: Sequence[str]) -> dict[str, list[str]]:
    """Reads the named columns of a CSV (csv module) or Parquet file (pandas + pyarrow)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AuditError(f"no such file: {path}")
    try:
        if path.lower().endswith((".parquet", ".pq")):
            return _read_parquet(path, columns)
        table: dict[str, list[str]] = {c: [] for c in columns}
        for cells in csv_rows(path, columns):
            for c, cell in zip(columns, cells, strict=True):
                table[c].append(cell)
    except ChunkError as err:
        raise AuditError(str(err)) from None
    if not table[columns[0]]:
        raise AuditError(f"{path} has a header but no rows")
    return table


def _read_parquet(path: str, columns: Sequence[str]) -> dict[str, list[str]]:
    """The named columns of a Parquet file (pandas + pyarrow), as text cells."""
    try:
        import pandas as pd

        frame = pd.read_parquet(path)
    except ImportError as err:
        raise AuditError(
            "reading Parquet needs pandas and pyarrow (pip install pandas pyarrow); "
            "or write the table as CSV"
        ) from err
    except Exception as err:  # pyarrow's own errors: a damaged or non-Parquet file
        raise AuditError(f"{path} is not a readable Parquet file: {err}") from None
    check_columns([str(c) for c in frame.columns], columns, path)
    # pandas' own test of a missing cell: None, NaN, pd.NA and NaT (NaT and <NA> have a text
    # form, and read as a group of their own).
    return {
        c: ["" if missing else str(x) for x, missing in zip(frame[c], frame[c].isna(), strict=True)]
        for c in columns
    }


def _row(rows: Sequence[int] | None, i: int) -> int:
    """The file row (1-based, after the header) of value ``i``: ``i + 1`` for a whole column,
    ``rows[i]`` for the distinct values of a streamed one (the row where each first occurs)."""
    return i + 1 if rows is None else rows[i]


def _numbers(
    values: Sequence[str], column: str, what: str, rows: Sequence[int] | None = None
) -> np.ndarray:
    """Parses a column as finite floats; names the column and the first bad row otherwise."""
    out = np.empty(len(values), np.float64)
    for i, text in enumerate(values):
        try:
            out[i] = float(text)
        except ValueError:
            shown = "an empty cell" if text == "" else repr(text[:20])
            raise AuditError(
                f"column {column!r} ({what}) must be numeric; row {_row(rows, i)} holds {shown}"
            ) from None
        if not math.isfinite(out[i]):
            raise AuditError(
                f"column {column!r} ({what}) has a non-finite value in row {_row(rows, i)}"
            )
    return out


def _binary(
    values: Sequence[str],
    column: str,
    what: str,
    pos_label: str | None = None,
    rows: Sequence[int] | None = None,
) -> np.ndarray:
    """0/1 ids of a label or decision column: its 0/1 numbers, or ``value == pos_label``."""
    if pos_label is not None:
        return _positive(values, column, what, pos_label, rows)
    hint = "(for other labels, name the positive one with --pos-label)"
    try:
        x = _numbers(values, column, what, rows)
    except AuditError as err:  # "yes"/"no" and the like
        raise AuditError(f"{err} {hint}") from None
    bad = ~np.isin(x, (0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise AuditError(
            f"column {column!r} ({what}) must hold 0/1 values; row {_row(rows, i)} holds "
            f"{values[i]!r} "
            + hint[:-1]
            + "; for a numeric target and predictions, --task regression)"
        )
    return x.astype(np.int32)


def _positive(
    values: Sequence[str], column: str, what: str, pos_label: str, rows: Sequence[int] | None
) -> np.ndarray:
    """``value == pos_label`` for a column of at most two distinct values (``yes``/``no``, or
    numbers compared as numbers, so that ``1`` and ``1.0`` are one label)."""
    if "" in values:
        row = values.index("")
        raise AuditError(f"column {column!r} ({what}) has an empty cell in row {_row(rows, row)}")
    try:
        keys: list[Any] = [float(text) for text in values]
        target: Any = float(pos_label)
    except ValueError:
        keys, target = list(values), pos_label
    distinct = sorted(set(keys), key=str)
    if len(distinct) > 2:
        shown = ", ".join(repr(x) for x in distinct[:5])
        raise AuditError(
            f"column {column!r} ({what}) holds {len(distinct)} distinct values ({shown}, ...); "
            "--pos-label needs a column of two labels"
        )
    if len(distinct) == 2 and target not in distinct:
        raise AuditError(
            f"--pos-label {pos_label!r} is not a value of column {column!r} ({what}): it holds "
            f"{distinct[0]!r} and {distinct[1]!r}"
        )
    return np.asarray([k == target for k in keys], np.int32)


def _categories(
    values: Sequence[str], column: str, rows: Sequence[int] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Integer ids of a sensitive column's values.

    When every value is a number, values are grouped and sorted as numbers (``1`` and ``1.0``
    are one group, named by its first spelling in the column); otherwise as strings.
    """
    for i, text in enumerate(values):
        if text == "":
            raise AuditError(
                f"sensitive column {column!r} has an empty cell in row {_row(rows, i)}"
            )
    try:
        keys: list[Any] = [float(text) for text in values]
    except ValueError:
        keys = list(values)
    else:
        for i, x in enumerate(keys):
            if math.isnan(x):
                raise AuditError(
                    f"sensitive column {column!r} has a missing value ({values[i]!r}) in "
                    f"row {_row(rows, i)}"
                )
    first: dict[Any, str] = {}
    for key, text in zip(keys, values, strict=True):
        first.setdefault(key, text)
    if len(first) > 1000:
        raise AuditError(
            f"sensitive column {column!r} has {len(first)} distinct values; "
            "expected a categorical attribute"
        )
    order = sorted(first)
    lookup = {key: i for i, key in enumerate(order)}
    return np.asarray([lookup[k] for k in keys], np.int32), [first[k] for k in order]


class _Options(NamedTuple):
    """The options of an audit, with their defaults: those of :func:`audit` and of
    ``fairjax audit`` (whose flags name the same fields)."""

    sensitive: Sequence[str]
    y_true: str | None = None
    y_pred: str | None = None
    score: str | None = None
    weight: str | None = None
    pos_label: str | None = None
    threshold: float = 0.5
    num_resamples: int = 1000
    confidence_level: float = 0.95
    min_group_size: int = 30
    seed: int = 0
    chunk_size: int | None = None
    criteria: Sequence[str] | str = ()
    task: str = "classification"


def audit(
    path: str | os.PathLike,
    *,
    sensitive: Sequence[str],
    y_true: str | None = None,
    y_pred: str | None = None,
    score: str | None = None,
    weight: str | None = None,
    pos_label: str | None = None,
    threshold: float = 0.5,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    min_group_size: int = 30,
    seed: int = 0,
    chunk_size: int | None = None,
    criteria: Sequence[str] | str = (),
    task: str = "classification",
) -> dict[str, Any]:
    """Fairness report of a table of predictions, labels and sensitive attributes.

    Reads ``path`` (CSV, or Parquet when pandas and pyarrow are installed), intersects the
    sensitive columns into groups (:func:`fairjax.groups.intersect`), and computes the report
    with :func:`fairjax.metrics.audit_report`: the per-group table and the fairness metrics
    with percentile bootstrap intervals and the pair of groups behind each. Decisions come
    from ``y_pred``, or from ``score >= threshold`` when only a score is given; a score adds
    the KS unfairness. Without ``y_true`` the metrics that need labels are left out (listed
    under ``omitted``).

    Args:
      path: the table.
      sensitive: names of the sensitive columns, or one name (any values; each distinct value
        is a group; in a column of numbers, each distinct number: ``1`` and ``1.0`` are one).
      y_true: name of the label column (0/1, or two labels with ``pos_label``), or None.
      y_pred: name of the decision column (coded as ``y_true``).
      score: name of a numeric score column.
      weight: name of a non-negative sample-weight column.
      pos_label: the positive label of ``y_true`` and ``y_pred`` when they are not 0/1 (e.g.
        ``"yes"``; compared as a number when the column holds numbers).
      threshold: decision threshold applied to the score when ``y_pred`` is not given
        (finite).
      num_resamples: bootstrap resamples, or 0 for none (no intervals).
      confidence_level: coverage of the intervals.
      min_group_size: groups with fewer rows are listed under ``small_groups`` (the command
        warns about them).
      seed: seed of the bootstrap.
      chunk_size: None reads the whole table into memory; a number of rows streams the file
        in chunks of that many rows (:func:`fairjax.metrics.audit_report_streaming`: constant
        memory, the same numbers, intervals from a Poisson bootstrap; Parquet needs pyarrow).
      criteria: confusion-matrix criteria to add to the metrics (names, or one string of
        comma-separated names, or ``"all"``: ``predictive_parity``,
        ``false_omission_rate_parity``, ``false_negative_rate_parity``,
        ``true_negative_rate_parity``, ``accuracy_parity``, ``treatment_equality``; see
        :func:`fairjax.metrics.audit_report`); they need ``y_true``.
      task: ``"classification"`` (0/1 labels and decisions, or scores), or ``"regression"``:
        ``y_true`` is a numeric target and ``y_pred`` numeric predictions, and the report is
        :func:`fairjax.metrics.regression_audit_report`'s (per-group MAE and RMSE, the worst
        group and the gaps, KS and W1 between the groups' predictions); in memory only.

    Returns:
      A JSON-ready dict: ``n``, ``groups`` (one entry per non-empty group, with its statistics),
      ``overall``, ``metrics`` (``estimate``, ``lower``, ``upper``, ``between`` per metric),
      ``omitted``, ``small_groups``, ``precision``, ``versions`` (fairjax, jax, numpy,
      Python) and the settings.

    Raises:
      AuditError: a missing, unreadable or non-UTF-8 file, a missing column, a column with
        values of the wrong kind, or an option that cannot work (a NaN threshold, ...).
    """
    # The keyword arguments are the options record (its fields, in one place).
    options = _Options(**{name: value for name, value in locals().items() if name != "path"})
    return _audit(path, options)[0]


def _check_options(o: _Options) -> list[str]:
    """The columns to read; raises :class:`AuditError` on options that cannot work."""
    named = {"y_true": o.y_true, "y_pred": o.y_pred, "score": o.score, "weight": o.weight}
    for role, column in named.items():
        if column is not None and not isinstance(column, str):
            raise AuditError(f"`{role}` must be a column name (a str), got {column!r}")
    if not all(isinstance(c, str) for c in o.sensitive):
        raise AuditError(f"`sensitive` must hold column names (str), got {list(o.sensitive)!r}")
    if o.task not in ("classification", "regression"):
        raise AuditError(f"--task must be 'classification' or 'regression', got {o.task!r}")
    if o.task == "regression":
        _check_regression_options(o)
    elif o.y_pred is None and o.score is None:
        raise AuditError("give --y-pred (0/1 decisions) or --score (numeric scores), or both")
    if not o.sensitive:
        raise AuditError("give at least one --sensitive column")
    if o.pos_label is not None and not isinstance(o.pos_label, str):
        raise AuditError(f"--pos-label must be a label (a str), got {o.pos_label!r}")
    for flag, value, low in (
        ("--bootstrap", o.num_resamples, 0),
        ("--min-group-size", o.min_group_size, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise AuditError(f"{flag} must be an integer >= {low}, got {value!r}")
    if o.num_resamples == 1:
        raise AuditError("--bootstrap must be 0 (no intervals) or at least 2, got 1")
    if not all(isinstance(c, str) for c in o.criteria):
        raise AuditError(f"`criteria` must hold criterion names (str), got {o.criteria!r}")
    if o.criteria and o.y_true is None:
        raise AuditError("--criteria compares rates of labels: it needs --y-true")
    threshold, level = o.threshold, o.confidence_level
    if not isinstance(threshold, (int, float, np.number)) or not math.isfinite(threshold):
        raise AuditError(f"--threshold must be a finite number, got {threshold!r}")
    if not isinstance(level, (int, float, np.number)) or not 0 < level < 1:
        raise AuditError(f"--confidence must be in (0, 1), got {level}")
    columns = [*o.sensitive] + [c for c in named.values() if c is not None]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise AuditError(f"column(s) named for two roles: {', '.join(duplicates)}")
    return columns


def _sensitive_groups(
    table: Mapping[str, list[str]], sensitive: Sequence[str], rows: Sequence[int] | None = None
) -> tuple[np.ndarray, int, list[str]]:
    """Group ids of the intersection of the sensitive columns, their number and names."""
    ids, names, sizes = [], [], []
    for column in sensitive:
        a, levels = _categories(table[column], column, rows)
        ids.append(a)
        names.append(levels if len(sensitive) == 1 else [f"{column}={v}" for v in levels])
        sizes.append(len(levels))
    s = np.asarray(groups.intersect(*ids, num_groups=sizes))
    # Only the combinations that occur: their number is at most the rows, not the product.
    present, s = np.unique(s, return_inverse=True)
    levels = np.unravel_index(present, sizes)
    occurring = [
        groups.intersection_names(*[[names[k][int(at[j])]] for k, at in enumerate(levels)])[0]
        for j in range(len(present))
    ]
    return s.astype(np.int32), len(present), occurring


def _versions() -> dict[str, str]:
    """The versions that computed a report, for its JSON."""
    from fairjax import __version__

    return {
        "fairjax": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _audit(path: str | os.PathLike, o: _Options) -> tuple[dict[str, Any], tuple]:
    """:func:`audit`, also returning what the plot needs (scores, group ids, names, weights)."""
    if isinstance(o.sensitive, str):  # one column, as --sensitive NAME gives
        o = o._replace(sensitive=[o.sensitive])
    if isinstance(o.criteria, str):  # "a,b", as --criteria a,b gives
        o = o._replace(criteria=[c.strip() for c in o.criteria.split(",") if c.strip()])
    if o.task == "regression":
        return _audit_regression(path, o)
    if o.chunk_size is not None:
        return _audit_streaming(path, o), None
    table = _read_table(path, _check_options(o))
    labels = None if o.y_true is None else _binary(table[o.y_true], o.y_true, "labels", o.pos_label)
    scores = None if o.score is None else _numbers(table[o.score], o.score, "scores")
    if o.y_pred is not None:
        decisions = _binary(table[o.y_pred], o.y_pred, "decisions", o.pos_label)
    else:
        decisions = (scores >= o.threshold).astype(np.int32)
    return _table_report(
        path,
        o,
        table,
        metrics.audit_report,
        labels,
        decisions,
        plotted=scores,
        scores=scores,
        criteria=o.criteria,
    )


def _table_report(path, o: _Options, table, report, *data, plotted, **options) -> tuple:
    """``report(*data, groups, ...)`` (a report of :mod:`fairjax.metrics`) on the table's
    sensitive groups and weights: :func:`audit`'s report, and what ``--plot`` draws (the
    ``plotted`` values with the groups and weights)."""
    w = _weights(table, o.weight)
    s, G, group_names = _sensitive_groups(table, o.sensitive)
    computed = report(
        *data, s, num_groups=G, weights=w, group_names=group_names, **_report_options(o), **options
    )
    return _file_report(path, o, computed), (plotted, s, group_names, w)


def _report_options(o: _Options) -> dict[str, Any]:
    """The options every report of :mod:`fairjax.metrics` takes, from the audit's."""
    return {
        "num_resamples": o.num_resamples,
        "confidence_level": o.confidence_level,
        "min_group_size": o.min_group_size,
        "key": jax.random.key(o.seed),
    }


def _weights(table: Mapping[str, list[str]], column: str | None) -> np.ndarray | None:
    """The sample weights of ``column`` (None without one): non-negative, positive sum."""
    if column is None:
        return None
    w = _numbers(table[column], column, "weights")
    if (w < 0).any() or w.sum() <= 0:
        raise AuditError(f"column {column!r} (weights) must be >= 0 with a positive sum")
    return w


def _check_regression_options(o: _Options) -> None:
    """The options of ``--task regression``: a numeric target and predictions, no decision
    options."""
    if o.y_true is None or o.y_pred is None:
        raise AuditError(
            "--task regression needs --y-true (the numeric target) and --y-pred (the numeric "
            "predictions)"
        )
    given = [
        flag
        for flag, value in (
            ("--score", o.score),
            ("--pos-label", o.pos_label),
            ("--criteria", o.criteria or None),
            ("--chunk-size", o.chunk_size),
        )
        if value is not None
    ]
    if given:
        raise AuditError(f"--task regression does not take {', '.join(given)}")


def _audit_regression(path: str | os.PathLike, o: _Options) -> tuple[dict[str, Any], tuple]:
    """:func:`audit` of a numeric target and predictions (``--task regression``)."""
    table = _read_table(path, _check_options(o))
    target = _numbers(table[o.y_true], o.y_true, "target")
    predictions = _numbers(table[o.y_pred], o.y_pred, "predictions")
    return _table_report(
        path, o, table, metrics.regression_audit_report, target, predictions, plotted=predictions
    )


def _file_report(path: str | os.PathLike, o: _Options, computed: dict[str, Any]) -> dict:
    """The report of :func:`audit`: the file, its columns and settings, and the computed one."""
    columns = ("y_true", "y_pred", "score", "weight")
    report = {
        "file": os.fspath(path),
        "n": computed["n"],
        "columns": {c: getattr(o, c) for c in columns} | {"sensitive": list(o.sensitive)},
        "pos_label": o.pos_label,
        "decisions": "y_pred" if o.y_pred is not None else f"score >= {o.threshold}",
        "versions": _versions(),
    }
    if o.task == "regression":  # no decisions: the predictions are audited as they are
        report.pop("decisions")
    report |= {k: v for k, v in computed.items() if k not in ("n", "bootstrap")}
    report["bootstrap"] = computed["bootstrap"] | {"seed": o.seed}
    if o.chunk_size is not None:
        report["bootstrap"]["chunk_size"] = o.chunk_size
    return report


# ----------------------------------------------------------------------------- streamed


_MAX_TEXTS = 10_000  # distinct cells kept per categorical column while scanning


class _Codes:
    """The distinct cells of one categorical column, in the order they first occur."""

    def __init__(self, column: str):
        self.column, self.index, self.first = column, {}, {}

    def add(self, texts: list[str], codes: np.ndarray, offset: int | None = None) -> np.ndarray:
        """Global ids of a chunk's rows (new cells get the next ids); with the chunk's
        ``offset`` (rows before it), the file row where each new cell first occurs."""
        new = [j for j, t in enumerate(texts) if t not in self.index]
        for t in texts:
            self.index.setdefault(t, len(self.index))
        if new and offset is not None:
            local, at = np.unique(codes, return_index=True)
            where = dict(zip(local.tolist(), at.tolist(), strict=True))
            for j in new:
                if j in where:
                    self.first.setdefault(texts[j], offset + where[j] + 1)
        if len(self.index) > _MAX_TEXTS:
            raise AuditError(f"column {self.column!r} has over {_MAX_TEXTS} distinct values")
        return np.asarray([self.index[t] for t in texts], np.int64)[codes]

    def texts(self) -> list[str]:
        return list(self.index)

    def rows(self) -> list[int]:
        """The file row of each cell of :meth:`texts` (where it first occurs)."""
        return [self.first.get(t, 0) for t in self.index]


def _streamed_columns(path: str, o: _Options, categorical, numeric, progress):
    """A function returning a fresh pass over the file's chunks (for the streamed report)."""

    def chunks():
        progress.start_pass()
        rows = 0
        try:
            for chunk in iter_chunks(path, categorical, numeric, o.chunk_size):
                n = len(next(iter(chunk.values()))[1]) if categorical else 0
                yield chunk
                rows += n
                progress.update(rows)
        except ChunkError as err:
            raise AuditError(str(err)) from None
        progress.update(rows, final=True)

    return chunks


def _audit_streaming(path: str | os.PathLike, o: _Options) -> dict[str, Any]:
    """:func:`audit` reading the file in chunks of ``o.chunk_size`` rows: a scan fixes the
    groups and the labels' coding (as the in-memory reading does on the whole column), then
    :func:`fairjax.metrics.audit_report_streaming` reads it again, pass after pass."""
    path = os.fspath(path)
    _check_options(o)
    size = o.chunk_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise AuditError(f"--chunk-size must be a positive number of rows, got {size!r}")
    if not os.path.exists(path):
        raise AuditError(f"no such file: {path}")
    labels = [c for c in (o.y_true, o.y_pred) if c is not None]
    categorical = [*o.sensitive, *labels]
    numeric = [c for c in (o.score, o.weight) if c is not None]
    try:
        progress = Progress(total_rows(path))
    except ImportError as err:
        raise AuditError("reading Parquet in chunks needs pyarrow (pip install pyarrow)") from err
    except Exception as err:  # pyarrow's own errors
        raise AuditError(f"{path} is not a readable Parquet file: {err}") from None
    codes = {c: _Codes(c) for c in categorical}
    combos: dict[tuple, int] = {}  # each combination of sensitive values: its first file row
    scan = _streamed_columns(path, o, categorical, [], progress)
    offset = 0
    for chunk in scan():  # the scan: distinct cells and combinations of sensitive values
        ids = np.stack([codes[c].add(*chunk[c], offset) for c in o.sensitive], axis=1)
        for c in labels:
            codes[c].add(*chunk[c], offset)
        uniq, first = _unique_rows(ids, return_index=True)
        for k in np.argsort(first).tolist():
            combos.setdefault(tuple(uniq[k].tolist()), offset + int(first[k]) + 1)
        offset += len(ids)
    if not combos:
        raise AuditError(f"{path} has a header but no rows")
    table = {c: [codes[c].texts()[k[j]] for k in combos] for j, c in enumerate(o.sensitive)}
    combo_group, G, names = _sensitive_groups(table, o.sensitive, list(combos.values()))
    group_of = dict(zip(combos, combo_group.tolist(), strict=True))
    roles = ((o.y_true, "labels"), (o.y_pred, "decisions"))
    coded = {
        c: _binary(codes[c].texts(), c, r, o.pos_label, codes[c].rows())
        for c, r in roles
        if c is not None
    }

    read = _streamed_columns(path, o, categorical, numeric, progress)

    def chunks():
        for chunk in read():
            ids = np.stack([codes[c].add(*chunk[c]) for c in o.sensitive], axis=1)
            uniq, inverse = _unique_rows(ids, return_inverse=True)
            out = {"groups": np.asarray([group_of[tuple(u)] for u in uniq.tolist()])[inverse]}
            for c, role in ((o.y_true, "y_true"), (o.y_pred, "y_pred")):
                if c is not None:
                    out[role] = coded[c][codes[c].add(*chunk[c])]
            if o.score is not None:
                out["scores"] = _finite(chunk[o.score], o.score, "scores")
                if o.y_pred is None:
                    out["y_pred"] = (out["scores"] >= o.threshold).astype(np.int32)
            if o.weight is not None:
                out["weights"] = _finite(chunk[o.weight], o.weight, "weights")
                if (out["weights"] < 0).any():
                    raise AuditError(f"column {o.weight!r} (weights) must be >= 0")
            yield out

    computed = metrics.audit_report_streaming(
        chunks,
        num_groups=G,
        group_names=names,
        **_report_options(o),
        criteria=o.criteria,
    )
    return _file_report(path, o, computed)


def _unique_rows(ids: np.ndarray, **kw: bool) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids, axis=0, **kw)`` of small non-negative ids ``(n, k)`` by one sort of
    integers (each row's mixed-radix number, in the same lexicographic order): ``axis=0``
    sorts rows as opaque records, many times slower."""
    dims = ids.max(0) + 1 if ids.size else np.ones(ids.shape[1], np.int64)
    if np.prod(dims.astype(float)) >= 2**62:
        return np.unique(ids, axis=0, **kw)
    flat, other = np.unique(np.ravel_multi_index(tuple(ids.T), tuple(dims)), **kw)
    return np.stack(np.unravel_index(flat, tuple(dims)), axis=1), other


def _finite(x: np.ndarray, column: str, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise AuditError(f"column {column!r} ({what}) has a missing or non-finite value")
    return x


def _plot_group_cdfs(
    scores: np.ndarray,
    s: np.ndarray,
    names: Sequence[str],
    weights: np.ndarray | None,
    path: str,
    *,
    title: str,
    legend: str,
    xlabel: str = "score",
) -> None:
    """Writes a PNG of the groups' empirical score CDFs (matplotlib imported here only)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise AuditError("--plot needs matplotlib (pip install 'fairjax[plot]')") from err
    w = np.ones_like(scores) if weights is None else weights
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for g, name in enumerate(names):
        mask = s == g
        if not mask.any():
            continue
        order = np.argsort(scores[mask], kind="stable")
        x, wg = scores[mask][order], w[mask][order]
        cdf = np.cumsum(wg) / wg.sum()
        ax.step(x, cdf, where="post", label=f"{name} (n={int(mask.sum()):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"P({xlabel} <= t | group)")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title=legend, fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``fairjax audit``: one per field of the options record, with its default."""
    _add_column_arguments(parser.add_argument)
    default = _Options._field_defaults
    add = parser.add_argument
    add(
        "--threshold",
        type=float,
        default=default["threshold"],
        help="decision = score >= threshold (no --y-pred)",
    )
    add(
        "--bootstrap",
        dest="num_resamples",
        type=int,
        default=default["num_resamples"],
        help="bootstrap resamples; 0: no intervals",
    )
    add(
        "--confidence",
        dest="confidence_level",
        type=float,
        default=default["confidence_level"],
        help="interval coverage",
    )
    add(
        "--min-group-size",
        dest="min_group_size",
        type=int,
        default=default["min_group_size"],
        help="warn about groups with fewer rows (their gaps are mostly noise); 0: never",
    )
    add("--seed", type=int, default=default["seed"])
    add(
        "--chunk-size",
        dest="chunk_size",
        type=int,
        metavar="ROWS",
        help="stream the file in chunks of ROWS rows, in constant memory (Parquet: pyarrow); "
        "the same numbers, intervals from a Poisson bootstrap",
    )
    add(
        "--criteria",
        default=default["criteria"],
        metavar="NAMES",
        help="add confusion-matrix criteria (needs --y-true), comma-separated, or 'all': "
        "predictive_parity, false_omission_rate_parity, false_negative_rate_parity, "
        "true_negative_rate_parity, accuracy_parity, treatment_equality",
    )
    add(
        "--task",
        choices=("classification", "regression"),
        default=default["task"],
        help="regression: --y-true is a numeric target and --y-pred numeric predictions; "
        "reports per-group MAE and RMSE, the worst group, the gaps, and the KS and W1 "
        "distances between the groups' predictions",
    )
    add("--json", metavar="PATH", help="also write the report as JSON")
    add("--plot", metavar="PATH", help="write a PNG of the groups' score CDFs")  # fmt: skip
    add(
        "--overwrite",
        action="store_true",
        help="replace existing --json and --plot files (without it they are left as they are)",
    )


def _add_column_arguments(add: Callable[..., Any]) -> None:
    """The input of ``fairjax audit``: the file and the columns that are read from it."""
    add("file", help="CSV file (or Parquet, with pandas and pyarrow)")
    add(
        "--sensitive",
        action="append",
        required=True,
        help="sensitive column; repeat it to audit the intersection of several",
    )
    add(
        "--y-true",
        dest="y_true",
        help="column of labels (0/1, or see --pos-label); without it, the label metrics "
        "(accuracy, TPR, FPR, equal opportunity, equalized odds) are left out",
    )
    add("--y-pred", dest="y_pred", help="column of decisions, coded as the labels")
    add("--score", help="column of numeric scores (adds the KS distance)")
    add("--weight", help="column of non-negative sample weights")
    add(
        "--pos-label",
        dest="pos_label",
        help="the positive label when labels and decisions are not 0/1 (e.g. yes)",
    )


def _check_outputs(args: argparse.Namespace) -> None:
    """The output paths, checked before the audit runs: never the input file nor each other,
    in an existing folder, and an existing file only with ``--overwrite``."""
    taken = {os.path.realpath(args.file): "the input file"}
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in taken:
            raise AuditError(f"{flag} {path} is {taken[real]}: write to another path")
        taken[real] = f"also the {flag} path"
        if (problem := output_path_problem(path)) is not None:
            raise AuditError(f"{flag} {path}{problem}")
        if os.path.exists(path) and not args.overwrite:
            raise AuditError(f"{flag} {path} exists: pass --overwrite to replace it")


def run_audit(args: argparse.Namespace) -> int:
    try:
        regression = args.task == "regression"
        if args.plot is not None and args.score is None and not regression:
            raise AuditError("--plot draws the groups' score CDFs: it needs --score")
        if args.plot is not None and args.chunk_size is not None:
            raise AuditError("--plot draws every score: it cannot stream (drop --chunk-size)")
        _check_outputs(args)
        options = _Options(**{name: getattr(args, name) for name in _Options._fields})
        report, plotted = _audit(args.file, options)
        print_audit(report)
        if args.plot is not None:
            ks = report["metrics"]["ks_unfairness"]["estimate"]
            what = "prediction" if regression else "score"
            _plot_group_cdfs(
                *plotted,
                args.plot,
                title=f"{what.capitalize()} CDF by group (KS = {ks:.3f})",
                legend=" x ".join(args.sensitive),
                xlabel=what,
            )
            print(f"\nwrote {args.plot}")
        if args.json is not None:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=2)
            print(f"wrote {args.json}")
    except (AuditError, OSError, ValueError) as err:  # bad input: a message, never a traceback
        print(f"fairjax audit: error: {err}", file=sys.stderr)
        return 2
    return 0
