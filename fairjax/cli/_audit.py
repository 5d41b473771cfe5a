"""``fairjax audit``: read a table of predictions, report its fairness, print and plot it."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from fairjax import groups, metrics
from fairjax.cli._format import print_table as _print_table


class AuditError(ValueError):
    """A problem with the audited table or the options: ``fairjax audit`` exits with code 2."""


def _read_table(path: str | os.PathLike, columns: Sequence[str]) -> dict[str, list[str]]:
    """Reads the named columns of a CSV (csv module) or Parquet file (pandas + pyarrow)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AuditError(f"no such file: {path}")
    if path.lower().endswith((".parquet", ".pq")):
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
        header = [str(c) for c in frame.columns]
        _check_columns(header, columns, path)
        return {c: ["" if _is_missing(x) else str(x) for x in frame[c].tolist()] for c in columns}
    try:
        table = _read_csv(path, columns)
    except UnicodeDecodeError as err:
        raise AuditError(
            f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8 CSV"
        ) from None
    if not table[columns[0]]:
        raise AuditError(f"{path} has a header but no rows")
    return table


def _read_csv(path: str, columns: Sequence[str]) -> dict[str, list[str]]:
    """The named columns of a UTF-8 CSV file (a cell past the csv module's limit is refused)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
            _check_text(header, path, 1)
        except StopIteration:
            raise AuditError(f"{path} is empty") from None
        except csv.Error as err:
            raise AuditError(f"{path}, line 1: {err}") from None
        _check_columns(header, columns, path)
        index = {c: header.index(c) for c in columns}
        table: dict[str, list[str]] = {c: [] for c in columns}
        line = 1
        try:
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise AuditError(
                        f"{path}, line {line}: {len(row)} fields, the header has {len(header)}"
                    )
                cells = [row[i].strip() for i in index.values()]
                _check_text(cells, path, line)
                for c, cell in zip(index, cells, strict=True):
                    table[c].append(cell)
        except csv.Error as err:  # a cell over csv.field_size_limit(), a NUL byte
            raise AuditError(f"{path}, line {line + 1}: {err}") from None
    return table


def _check_text(cells: Sequence[str], path: str, line: int) -> None:
    """Refuses NUL characters: valid UTF-8, but the mark of UTF-16 text or a binary file."""
    if any("\x00" in cell for cell in cells):
        raise AuditError(
            f"{path}, line {line}: a NUL character (UTF-16 text or a binary file?); "
            "save it as UTF-8 CSV"
        )


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _check_columns(header: Sequence[str], columns: Sequence[str], path: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise AuditError(
            f"column(s) {', '.join(repr(c) for c in missing)} not in {path}; "
            f"it has: {', '.join(header)}"
        )


def _numbers(values: Sequence[str], column: str, what: str) -> np.ndarray:
    """Parses a column as finite floats; names the column and the first bad row otherwise."""
    out = np.empty(len(values), np.float64)
    for i, text in enumerate(values):
        try:
            out[i] = float(text)
        except ValueError:
            shown = "an empty cell" if text == "" else repr(text[:20])
            raise AuditError(
                f"column {column!r} ({what}) must be numeric; row {i + 1} holds {shown}"
            ) from None
        if not math.isfinite(out[i]):
            raise AuditError(f"column {column!r} ({what}) has a non-finite value in row {i + 1}")
    return out


def _binary(values: Sequence[str], column: str, what: str) -> np.ndarray:
    x = _numbers(values, column, what)
    bad = ~np.isin(x, (0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise AuditError(
            f"column {column!r} ({what}) must hold 0/1 values; row {i + 1} holds {values[i]!r}"
        )
    return x.astype(np.int32)


def _categories(values: Sequence[str], column: str) -> tuple[np.ndarray, list[str]]:
    """Integer ids of a sensitive column's values.

    When every value is a number, values are grouped and sorted as numbers (``1`` and ``1.0``
    are one group, named by its first spelling in the column); otherwise as strings.
    """
    for i, text in enumerate(values):
        if text == "":
            raise AuditError(f"sensitive column {column!r} has an empty cell in row {i + 1}")
    try:
        keys: list[Any] = [float(text) for text in values]
    except ValueError:
        keys = list(values)
    else:
        for i, x in enumerate(keys):
            if math.isnan(x):
                raise AuditError(
                    f"sensitive column {column!r} has a missing value ({values[i]!r}) in "
                    f"row {i + 1}"
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


def audit(
    path: str | os.PathLike,
    *,
    y_true: str,
    sensitive: Sequence[str],
    y_pred: str | None = None,
    score: str | None = None,
    weight: str | None = None,
    threshold: float = 0.5,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Fairness report of a table of predictions, labels and sensitive attributes.

    Reads ``path`` (CSV, or Parquet when pandas and pyarrow are installed), intersects the
    sensitive columns into groups (:func:`fairjax.groups.intersect`), and computes the report
    with :func:`fairjax.metrics.audit_report`: the per-group table and the fairness metrics
    with percentile bootstrap intervals. Decisions come from ``y_pred``, or from
    ``score >= threshold`` when only a score is given; a score adds the KS unfairness.

    Args:
      path: the table.
      y_true: name of the 0/1 label column.
      sensitive: names of the sensitive columns, or one name (any values; each distinct value
        is a group; in a column of numbers, each distinct number: ``1`` and ``1.0`` are one).
      y_pred: name of the 0/1 decision column.
      score: name of a numeric score column.
      weight: name of a non-negative sample-weight column.
      threshold: decision threshold applied to the score when ``y_pred`` is not given
        (finite).
      num_resamples: bootstrap resamples.
      confidence_level: coverage of the intervals.
      seed: seed of the bootstrap.

    Returns:
      A JSON-ready dict: ``n``, ``groups`` (one entry per non-empty group, with its statistics),
      ``overall``, ``metrics`` (``estimate``, ``lower``, ``upper`` per metric), and the settings.

    Raises:
      AuditError: a missing, unreadable or non-UTF-8 file, a missing column, a column with
        values of the wrong kind, or an option that cannot work (a NaN threshold, ...).
    """
    report, _ = _audit(
        path,
        y_true=y_true,
        sensitive=sensitive,
        y_pred=y_pred,
        score=score,
        weight=weight,
        threshold=threshold,
        num_resamples=num_resamples,
        confidence_level=confidence_level,
        seed=seed,
    )
    return report


def _check_options(
    y_true: str,
    sensitive: Sequence[str],
    y_pred: str | None,
    score: str | None,
    weight: str | None,
    num_resamples: int,
    confidence_level: float,
    threshold: float,
) -> list[str]:
    """The columns to read; raises :class:`AuditError` on options that cannot work."""
    named = {"y_true": y_true, "y_pred": y_pred, "score": score, "weight": weight}
    for role, column in named.items():
        if column is not None and not isinstance(column, str):
            raise AuditError(f"`{role}` must be a column name (a str), got {column!r}")
    if not all(isinstance(c, str) for c in sensitive):
        raise AuditError(f"`sensitive` must hold column names (str), got {list(sensitive)!r}")
    if y_pred is None and score is None:
        raise AuditError("give --y-pred (0/1 decisions) or --score (numeric scores), or both")
    if not sensitive:
        raise AuditError("give at least one --sensitive column")
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)):
        raise AuditError(f"--bootstrap must be an integer, got {num_resamples!r}")
    if num_resamples < 2:
        raise AuditError(f"--bootstrap must be at least 2, got {num_resamples}")
    if not isinstance(threshold, (int, float, np.number)) or not math.isfinite(threshold):
        raise AuditError(f"--threshold must be a finite number, got {threshold!r}")
    if not isinstance(confidence_level, (int, float, np.number)) or not 0 < confidence_level < 1:
        raise AuditError(f"--confidence must be in (0, 1), got {confidence_level}")
    columns = [y_true, *sensitive] + [c for c in (y_pred, score, weight) if c is not None]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise AuditError(f"column(s) named for two roles: {', '.join(duplicates)}")
    return columns


def _sensitive_groups(
    table: Mapping[str, list[str]], sensitive: Sequence[str]
) -> tuple[np.ndarray, int, list[str]]:
    """Group ids of the intersection of the sensitive columns, their number and names."""
    ids, names, sizes = [], [], []
    for column in sensitive:
        a, levels = _categories(table[column], column)
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


def _audit(
    path: str | os.PathLike,
    *,
    y_true: str,
    sensitive: Sequence[str],
    y_pred: str | None = None,
    score: str | None = None,
    weight: str | None = None,
    threshold: float = 0.5,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, Any], tuple]:
    """:func:`audit`, also returning what the plot needs (scores, group ids, names, weights)."""
    if isinstance(sensitive, str):  # one column, as --sensitive NAME gives
        sensitive = [sensitive]
    columns = _check_options(
        y_true, sensitive, y_pred, score, weight, num_resamples, confidence_level, threshold
    )
    table = _read_table(path, columns)
    labels = _binary(table[y_true], y_true, "labels")
    scores = None if score is None else _numbers(table[score], score, "scores")
    if y_pred is not None:
        decisions = _binary(table[y_pred], y_pred, "decisions")
    else:
        decisions = (scores >= threshold).astype(np.int32)
    w = None
    if weight is not None:
        w = _numbers(table[weight], weight, "weights")
        if (w < 0).any() or w.sum() <= 0:
            raise AuditError(f"column {weight!r} (weights) must be >= 0 with a positive sum")
    s, G, group_names = _sensitive_groups(table, sensitive)

    computed = metrics.audit_report(
        labels,
        decisions,
        s,
        num_groups=G,
        scores=scores,
        weights=w,
        group_names=group_names,
        num_resamples=num_resamples,
        confidence_level=confidence_level,
        key=jax.random.key(seed),
    )
    report = {
        "file": os.fspath(path),
        "n": computed["n"],
        "columns": {
            "y_true": y_true,
            "y_pred": y_pred,
            "score": score,
            "weight": weight,
            "sensitive": list(sensitive),
        },
        "decisions": "y_pred" if y_pred is not None else f"score >= {threshold}",
        "num_groups": computed["num_groups"],
        "groups": computed["groups"],
        "overall": computed["overall"],
        "metrics": computed["metrics"],
        "bootstrap": computed["bootstrap"] | {"seed": seed},
    }
    return report, (scores, s, group_names, w)


_METRIC_NAMES = {
    "demographic_parity_difference": "demographic parity difference",
    "demographic_parity_ratio": "demographic parity ratio",
    "equal_opportunity_difference": "equal opportunity difference",
    "equalized_odds_difference": "equalized odds difference",
    "ks_unfairness": "KS distance of scores",
}


def _print_audit(report: Mapping[str, Any]) -> None:
    cols = report["columns"]
    print(
        f"fairjax audit: {report['file']}  ({report['n']:,} rows, {report['num_groups']} groups "
        f"over {' x '.join(cols['sensitive'])}; decisions: {report['decisions']})\n"
    )

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    header = ["group", "rows", "weight" if cols["weight"] else "count"]
    header += ["selection", "accuracy", "TPR", "FPR", "base rate"]
    rows = []
    for r in [report["overall"], *report["groups"]]:
        count = f"{r['count']:,.1f}" if cols["weight"] else f"{int(r['count']):,}"
        rows.append(
            [r["group"], f"{r['rows']:,}", count]
            + [fmt(r[k]) for k in ("selection_rate", "accuracy", "tpr", "fpr", "base_rate")]
        )
    _print_table(header, rows)
    boot = report["bootstrap"]
    level = f"{100 * boot['confidence_level']:g}%"
    print(
        f"\nFairness (largest gap over pairs of groups; {level} percentile bootstrap interval, "
        f"{boot['num_resamples']} resamples)\n"
    )
    rows = [
        [_METRIC_NAMES[k], f"{m['estimate']:.4f}", f"[{m['lower']:.4f}, {m['upper']:.4f}]"]
        for k, m in report["metrics"].items()
    ]
    _print_table(["metric", "value", f"{level} interval"], rows)
    if any(r["tpr"] is None or r["fpr"] is None for r in report["groups"]):
        print("\n'-': a rate over an empty set (no positive or no negative labels in the group).")


def _plot_group_cdfs(
    scores: np.ndarray,
    s: np.ndarray,
    names: Sequence[str],
    weights: np.ndarray | None,
    path: str,
    *,
    title: str,
    legend: str,
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
    ax.set_xlabel("score")
    ax.set_ylabel("P(score <= t | group)")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(title=legend, fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_audit(args: argparse.Namespace) -> int:
    try:
        if args.plot is not None and args.score is None:
            raise AuditError("--plot draws the groups' score CDFs: it needs --score")
        report, plot_data = _audit(
            args.file,
            y_true=args.y_true,
            sensitive=args.sensitive,
            y_pred=args.y_pred,
            score=args.score,
            weight=args.weight,
            threshold=args.threshold,
            num_resamples=args.bootstrap,
            confidence_level=args.confidence,
            seed=args.seed,
        )
        scores, s, names, w = plot_data
        _print_audit(report)
        if args.plot is not None:
            ks = report["metrics"]["ks_unfairness"]["estimate"]
            _plot_group_cdfs(
                scores,
                s,
                names,
                w,
                args.plot,
                title=f"Score CDF by group (KS = {ks:.3f})",
                legend=" x ".join(args.sensitive),
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
