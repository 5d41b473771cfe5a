"""Printing helpers shared by the subcommands, and the printed report of ``fairjax audit``."""

from __future__ import annotations

import os
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax


def timed(fn: Callable, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``, the output blocked until ready."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - start


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Prints right-aligned columns under a header and a rule."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{c:>{w}}" for c, w in zip(r, widths, strict=True)))


# ----------------------------------------------------------------------------- fairjax audit


_METRIC_NAMES = {
    "demographic_parity_difference": "demographic parity difference",
    "demographic_parity_ratio": "demographic parity ratio",
    "equal_opportunity_difference": "equal opportunity difference",
    "equalized_odds_difference": "equalized odds difference",
    "ks_unfairness": "KS distance of scores",
    "predictive_parity_difference": "predictive parity (PPV) difference",
    "false_omission_rate_difference": "false omission rate difference",
    "false_negative_rate_difference": "false negative rate difference",
    "true_negative_rate_difference": "true negative rate difference",
    "accuracy_difference": "accuracy difference",
    "treatment_equality_difference": "treatment equality (FN/FP) difference",
    "worst_group_mae": "worst group's MAE",
    "mae_difference": "MAE difference",
    "worst_group_rmse": "worst group's RMSE",
    "rmse_difference": "RMSE difference",
    "wasserstein_unfairness": "W1 distance of predictions",
}
# The per-group columns of the criteria a report adds (``--criteria``), with their headers.
_CRITERION_COLUMNS = {
    "ppv": "PPV",
    "false_omission_rate": "FOR",
    "fnr": "FNR",
    "tnr": "TNR",
    "fn_fp_ratio": "FN/FP",
}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _print_groups(report: Mapping[str, Any], small: set[str]) -> set[str]:
    """The per-group table; a group below --min-group-size is marked ``*``. Returns the
    columns with a missing value (``-``) in some group."""
    weighted = report["columns"]["weight"] is not None
    keys = ["selection_rate"]
    header = ["group", "rows", "weight" if weighted else "count", "selection"]
    if report.get("task") == "regression":
        keys = ["mean_target", "mean_prediction", "mae", "rmse"]
        header[3:] = ["mean target", "mean prediction", "MAE", "RMSE"]
    elif report["columns"]["y_true"] is not None:
        keys += ["accuracy", "tpr", "fpr", "base_rate"]
        header += ["accuracy", "TPR", "FPR", "base rate"]
    extra = [k for k in _CRITERION_COLUMNS if k in report["overall"]]
    keys += extra
    header += [_CRITERION_COLUMNS[k] for k in extra]
    rows = []
    for r in [report["overall"], *report["groups"]]:
        count = f"{r['count']:,.1f}" if weighted else f"{int(r['count']):,}"
        name = f"{r['group']}*" if r["group"] in small else r["group"]
        rows.append([name, f"{r['rows']:,}", count] + [_fmt(r[k]) for k in keys])
    print_table(header, rows)
    return {k for r in report["groups"] for k in keys if r[k] is None}


def print_audit(report: Mapping[str, Any]) -> None:
    cols = report["columns"]
    small = set(report["small_groups"])
    regression = report.get("task") == "regression"
    decisions = report.get("decisions")
    decisions = f"column {cols['y_pred']}" if decisions == "y_pred" else decisions
    what = (
        f"regression of {cols['y_true']} by {cols['y_pred']}"
        if regression
        else f"decisions: {decisions}"
    )
    print(
        f"fairjax audit: {report['file']}  ({report['n']:,} rows, {report['num_groups']} groups "
        f"over {' x '.join(cols['sensitive'])}; {what})\n"
    )
    missing = _print_groups(report, small)
    boot = report["bootstrap"]
    level = f"{100 * boot['confidence_level']:g}%"
    with_intervals = boot["num_resamples"] > 0
    how = (
        f"{level} percentile bootstrap interval, {boot['num_resamples']} resamples"
        if with_intervals
        else "no bootstrap (--bootstrap 0): no intervals"
    )
    gaps = (
        "the worst group, or the largest gap over pairs" if regression else "largest gap over pairs"
    )
    print(f"\nFairness ({gaps} of groups; {how})\n")
    rows = []
    for k, m in report["metrics"].items():
        value = _fmt(m["estimate"])
        if with_intervals:
            value += f" [{_fmt(m['lower'])}, {_fmt(m['upper'])}]"
        pair = _groups_of(m)
        between = "-" if pair is None else " vs ".join(f"{g}*" if g in small else g for g in pair)
        if "rate" in m:
            between += f" ({m['rate'].upper()})"
        name = _METRIC_NAMES[k]
        rows.append([name.replace("scores", "predictions") if regression else name, value, between])
    value_header = f"value [{level} interval]" if with_intervals else "value"
    column = (
        "group, or between (lowest vs highest)" if regression else "between (lowest vs highest)"
    )
    print_table(["metric", value_header, column], rows)
    if report.get("omitted"):  # the label metrics, without --y-true
        print(
            "\nNo --y-true: accuracy, TPR, FPR, base rate and the equal opportunity and "
            "equalized odds differences need labels; they are left out."
        )
    if regression and missing:
        print("\n'-': the group has no row of positive weight.")
    elif missing - set(_CRITERION_COLUMNS):
        print(
            "\n'-': a rate over an empty set (no positive or no negative labels in the group, "
            "or no row of positive weight)."
        )
    if missing & set(_CRITERION_COLUMNS):
        print(
            "'-' under PPV, FOR, FNR, TNR or FN/FP: the rate's denominator is 0 in the group (no "
            "positive decision for PPV, no negative one for FOR, no false positive for FN/FP)."
        )
    if small:
        _print_small_groups(report, small)
    _print_vacuous_gaps(report)


def _print_vacuous_gaps(report: Mapping[str, Any]) -> None:
    """Warns where a gap is 0 by convention, not evidence: fewer than two groups have rows, or
    have the rate's denominator."""
    present = [r["group"] for r in report["groups"] if r["rows"] > 0]
    if len(present) < 2:
        text = (
            f"warning: only {len(present)} group has rows ({', '.join(present) or 'none'}): "
            "there is no pair of groups to compare, so every gap above is 0 by convention, not "
            "evidence of fairness. Check the --sensitive column(s)."
        )
        print("\n" + textwrap.fill(text, width=96, subsequent_indent="         "))
    else:
        # Two groups or more, but a gap whose rate only one group has (no positive labels in
        # the others, for the TPR): 0 by the same convention.
        unpaired = [
            _METRIC_NAMES[k]
            for k, m in report["metrics"].items()
            if "between" in m and m["between"] is None
        ]
        if unpaired:
            text = (
                f"warning: {', '.join(unpaired)}: fewer than two groups have the rate's "
                "denominator (e.g. positive labels for the TPR), so there is no pair to "
                "compare and the gap is 0 by convention, not evidence of fairness."
            )
            print("\n" + textwrap.fill(text, width=96, subsequent_indent="         "))


def _groups_of(metric: Mapping[str, Any]) -> list[str] | None:
    """The groups behind a metric of the report: its worst ``group`` or the pair ``between``."""
    if "group" in metric:
        return None if metric["group"] is None else [metric["group"]]
    return metric["between"]


def _print_small_groups(report: Mapping[str, Any], small: set[str]) -> None:
    """The warning on groups below --min-group-size, and which headline gaps they set."""
    sizes = ", ".join(f"{r['group']}: {r['rows']}" for r in report["groups"] if r["group"] in small)
    involved = [
        _METRIC_NAMES[k]
        for k, m in report["metrics"].items()
        if _groups_of(m) is not None and set(_groups_of(m)) & small
    ]
    text = (
        f"warning: {len(small)} of {report['num_groups']} groups have fewer than "
        f"{report['min_group_size']} rows (marked *; rows: {sizes}). Their rates are noisy: a "
        "gap to such a group can be large by chance alone."
    )
    if involved:
        text += (
            f" A small group sets the {', '.join(involved)}: read the intervals, or merge or "
            "drop the small groups before drawing conclusions."
        )
    print("\n" + textwrap.fill(text, width=96, subsequent_indent="         "))


def output_path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot take an output file, as the end of a sentence that starts with the
    path (``" is a folder: ..."``, ``": its folder does not exist"``), or None. Checked before
    the work that writes it, by the audit and the demo alike."""
    if os.path.isdir(path):
        return " is a folder: give a file path"
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        return ": its folder does not exist"
    try:  # a file of our own, removed at once: the only test that holds for root and /proc
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return f": cannot write in its folder ({err})"
    return None
