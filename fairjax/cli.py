"""Command line: ``fairjax demo``, ``fairjax audit`` and ``fairjax bench``.

Also runs as ``python -m fairjax ...``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, ferm, groups, metrics, postprocessing, training

__all__ = ["AuditError", "audit", "demo", "main"]


def _logistic_regression(
    X: jax.Array, y: jax.Array, *, steps: int = 500, learning_rate: float = 0.05, l2: float = 1e-4
) -> dict[str, jax.Array]:
    """Full-batch logistic regression trained with optax (Adam), the whole loop jitted."""
    params = {"w": jnp.zeros(X.shape[1], X.dtype), "b": jnp.zeros((), X.dtype)}
    optimizer = optax.adam(learning_rate)

    def loss(p):
        logits = X @ p["w"] + p["b"]
        return training.binary_cross_entropy(logits, y).mean() + l2 * p["w"] @ p["w"]

    def step(carry, _):
        p, state = carry
        grads = jax.grad(loss)(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return params


def _timed(fn: Callable, *args, **kwargs):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - start


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{c:>{w}}" for c, w in zip(r, widths, strict=True)))


def _ridge(X: jax.Array, y: jax.Array, *, alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Ridge regression in closed form (centred, unpenalised intercept): ``(w, b)``."""
    mx, my = jnp.mean(X, axis=0), jnp.mean(y)
    Xc = X - mx
    w = jnp.linalg.solve(Xc.T @ Xc + alpha * jnp.eye(X.shape[1], dtype=X.dtype), Xc.T @ (y - my))
    return w, my - mx @ w


def _regression_part(seed: int) -> dict[str, float] | None:
    """Communities and Crime: ridge, then barycenter post-processing (Chzhen et al. 2020).

    Returns None (after saying why) when the data set is not in the data home: it is not
    embedded in the package.
    """
    try:
        data = datasets.load_communities_crime(test_size=0.5, seed=0)
    except datasets.DatasetNotFoundError:
        print(
            "\nRegression (Communities and Crime): skipped, the data set is not embedded in the"
            "\npackage; set FAIRJAX_DATA_HOME to a folder holding communities_crime/"
            "communities.data\n(or call datasets.load_communities_crime(download=True) once)."
        )
        return None
    start = time.perf_counter()
    w, b = _ridge(jnp.asarray(data.X_train), jnp.asarray(data.y_train))
    f = np.asarray(jnp.asarray(data.X_test) @ w + b, np.float32)
    # The test half is split again: unlabelled calibration rows fit the post-processor, the
    # other rows evaluate it.
    perm = np.random.default_rng(seed).permutation(len(f))
    cal, ev = perm[: len(f) // 2], perm[len(f) // 2 :]
    s, y = data.groups_test, data.y_test
    state = postprocessing.fit_barycenter(
        f[cal], s[cal], num_groups=2, key=jax.random.key(seed), split=True
    )
    fair = np.asarray(
        postprocessing.apply_barycenter(state, f[ev], s[ev], key=jax.random.key(seed + 1))
    )
    seconds = time.perf_counter() - start

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - y[ev]) ** 2)))

    out = {
        "rmse_before": rmse(f[ev]),
        "rmse_after": rmse(fair),
        "ks_before": float(metrics.ks_unfairness(f[ev], s[ev], num_groups=2)),
        "ks_after": float(metrics.ks_unfairness(fair, s[ev], num_groups=2)),
        "seconds": seconds,
    }
    print(
        f"\nRegression: Communities and Crime, violent crimes per capita; groups: share of Black"
        f"\nresidents above the median. Ridge on {len(data.y_train):,} rows; post-processor"
        f" fitted on {len(cal)} unlabelled\nrows, evaluated on {len(ev)} (Chzhen et al. 2020)\n"
    )
    _print_table(
        ["model", "RMSE", "KS between groups"],
        [
            ["ridge", f"{out['rmse_before']:.4f}", f"{out['ks_before']:.4f}"],
            [
                "ridge + barycenter post-processing",
                f"{out['rmse_after']:.4f}",
                f"{out['ks_after']:.4f}",
            ],
        ],
    )
    print("Exact demographic parity of a regressor costs squared error: the RMSE rises.")
    return out


def demo(
    *,
    bootstrap_resamples: int = 500,
    seed: int = 0,
    pareto_path: str | os.PathLike | None = "fairjax_pareto_front.png",
) -> dict[str, float]:
    """Trains fair models on Adult (and Communities and Crime) and prints their figures.

    A logistic regression trained with optax, its per-group table and bootstrap intervals;
    linear FERM and barycenter post-processing beside it; a Pareto front of accuracy against
    the demographic-parity gap from one vmapped sweep of 16 penalty weights, written as a PNG
    at ``pareto_path`` when matplotlib is installed (``None``: no file); and, when Communities
    and Crime is in the data home, ridge regression post-processed to demographic parity.

    Returns the overall figures, for tests and scripts.
    """
    print(
        f"fairjax demo  (jax {jax.__version__}, {jax.devices()[0].platform} x{jax.device_count()})"
    )
    print("Data: UCI Adult (embedded copy), sensitive attribute: sex; task: income > 50K\n")

    data, t_load = _timed(datasets.load_adult)
    X_train, y_train = jnp.asarray(data.X_train), jnp.asarray(data.y_train, jnp.float32)
    X_test, y_test = jnp.asarray(data.X_test), jnp.asarray(data.y_test)
    s_test = jnp.asarray(data.groups_test)
    G = data.num_groups

    fit = jax.jit(_logistic_regression)
    params, t_compile_fit = _timed(fit, X_train, y_train)
    params, t_fit = _timed(fit, X_train, y_train)
    y_pred = (X_test @ params["w"] + params["b"] > 0).astype(jnp.int32)

    # Linear FERM (Donini et al., 2018): the same kind of linear model, trained with optax under
    # the exact equal-opportunity constraint <w, u> = 0 (hinge loss, C = 0.1).
    def fit_ferm():
        return ferm.fit_linear(
            data.X_train, data.y_train, data.groups_train, num_groups=G, C=0.1, loss="hinge"
        )

    model, t_compile_ferm = _timed(fit_ferm)
    model, t_ferm = _timed(fit_ferm)
    y_ferm = (ferm.decision_function(model, X_test) > 0).astype(jnp.int32)

    # Wasserstein-barycenter post-processing (Chzhen et al., 2020): the logistic model's scores
    # are mapped onto the barycenter of the groups' score distributions (demographic parity),
    # calibrated on the (unlabelled) training scores.
    def post_process():
        score_train = jax.nn.sigmoid(X_train @ params["w"] + params["b"])
        score_test = jax.nn.sigmoid(X_test @ params["w"] + params["b"])
        state = postprocessing.fit_barycenter(
            score_train, data.groups_train, num_groups=G, key=jax.random.key(seed)
        )
        fair = postprocessing.apply_barycenter(
            state, score_test, s_test, key=jax.random.key(seed + 1)
        )
        return score_test, fair

    (score_test, score_fair), t_post = _timed(post_process)
    y_post = (score_fair > 0.5).astype(jnp.int32)

    def evaluate():
        table = metrics.by_group(y_test, y_pred, s_test, num_groups=G)
        overall = metrics.by_group(y_test, y_pred, jnp.zeros_like(s_test), num_groups=1)
        return table, overall

    (table, overall), t_eval = _timed(evaluate)

    print(
        f"Logistic regression, unconstrained (optax Adam, {X_train.shape[0]:,} x "
        f"{X_train.shape[1]} train, {X_test.shape[0]:,} test rows)\n"
    )
    header = ["group", "count", "accuracy", "selection", "TPR", "FPR"]
    rows = []
    named = [("overall", overall, 0)] + [(n, table, i) for i, n in enumerate(data.group_names)]
    for name, stats, g in named:
        rows.append(
            [
                name,
                f"{int(stats['count'][g]):,}",
                f"{float(stats['accuracy'][g]):.4f}",
                f"{float(stats['selection_rate'][g]):.4f}",
                f"{float(stats['tpr'][g]):.4f}",
                f"{float(stats['fpr'][g]):.4f}",
            ]
        )
    _print_table(header, rows)

    key = jax.random.key(seed)
    fairness = {
        "demographic parity difference": (
            functools.partial(metrics.demographic_parity_difference, num_groups=G),
            (y_pred, s_test),
        ),
        "demographic parity ratio": (
            functools.partial(metrics.demographic_parity_ratio, num_groups=G),
            (y_pred, s_test),
        ),
        "equal opportunity difference (DEO)": (
            functools.partial(metrics.equal_opportunity_difference, num_groups=G),
            (y_test, y_pred, s_test),
        ),
        "equalized odds difference": (
            functools.partial(metrics.equalized_odds_difference, num_groups=G),
            (y_test, y_pred, s_test),
        ),
    }
    print(f"\nFairness on the test set (95% bootstrap interval, {bootstrap_resamples} resamples)\n")
    rows, results = [], {}
    start = time.perf_counter()
    for name, (fn, args) in fairness.items():
        key, sub = jax.random.split(key)
        res = metrics.bootstrap(fn, *args, key=sub, num_resamples=bootstrap_resamples)
        results[name] = float(res.estimate)
        rows.append(
            [
                name,
                f"{float(res.estimate):.4f}",
                f"[{float(res.lower):.4f}, {float(res.upper):.4f}]",
            ]
        )
    t_boot = time.perf_counter() - start
    _print_table(["metric", "value", "95% interval"], rows)

    print("\nMitigation (test set): linear FERM for equal opportunity (Donini et al. 2018),")
    print("barycenter post-processing for demographic parity (Chzhen et al. 2020)\n")
    rows = []
    zeros = jnp.zeros_like(s_test)
    models = [
        ("logistic regression", y_pred, score_test),
        ("linear FERM, hinge, C=0.1", y_ferm, ferm.decision_function(model, X_test)),
        ("logistic + barycenter post-processing", y_post, score_fair),
    ]
    for name, pred, score in models:
        acc = metrics.by_group(y_test, pred, zeros, num_groups=1)["accuracy"][0]
        deo = metrics.equal_opportunity_difference(y_test, pred, s_test, num_groups=G)
        dp = metrics.demographic_parity_difference(pred, s_test, num_groups=G)
        ks = metrics.ks_unfairness(score, s_test, num_groups=G)
        rows.append(
            [name, f"{float(acc):.4f}", f"{float(deo):.4f}", f"{float(dp):.4f}", f"{float(ks):.4f}"]
        )
        results[f"{name}: accuracy"], results[f"{name}: DEO"] = float(acc), float(deo)
        results[f"{name}: DP"], results[f"{name}: KS"] = float(dp), float(ks)
    _print_table(["model", "accuracy", "DEO", "DP difference", "KS of scores"], rows)
    print(
        "Each method narrows the gap it targets; parity of selection rates and equal true-positive"
        "\nrates are different criteria, and enforcing one can widen the other."
    )

    print("\nPareto front: logistic regression + lam * sigmoid_rate_difference (smooth DP gap)")
    front = training.demo_pareto(num_lams=16, path=pareto_path, verbose=True)
    if pareto_path is not None and front["path"] is None:
        print("(install matplotlib, e.g. pip install 'fairjax[plot]', to write the PNG)")
    results["pareto: accuracy at lam=0"] = float(front["accuracy"][0])
    results["pareto: DP at lam=0"] = float(front["dp_difference"][0])
    results["pareto: accuracy at max lam"] = float(front["accuracy"][-1])
    results["pareto: DP at max lam"] = float(front["dp_difference"][-1])

    regression = _regression_part(seed)
    if regression is not None:
        results.update({f"regression: {k}": v for k, v in regression.items()})

    print("\nTimings")
    _print_table(
        ["step", "seconds"],
        [
            ["load Adult", f"{t_load:.3f}"],
            ["logistic regression (compile + first run)", f"{t_compile_fit:.3f}"],
            ["logistic regression (compiled)", f"{t_fit:.3f}"],
            ["linear FERM (compile + first run)", f"{t_compile_ferm:.3f}"],
            ["linear FERM (compiled)", f"{t_ferm:.3f}"],
            ["barycenter post-processing (fit + apply)", f"{t_post:.3f}"],
            ["per-group table", f"{t_eval:.3f}"],
            [f"bootstrap, 4 metrics x {bootstrap_resamples}", f"{t_boot:.3f}"],
            ["Pareto sweep, 16 models (compile + run)", f"{front['seconds']:.3f}"],
            *(
                [["regression: ridge + post-processing", f"{regression['seconds']:.3f}"]]
                if regression is not None
                else []
            ),
        ],
    )
    results["accuracy"] = float(overall["accuracy"][0])
    return results


# ----------------------------------------------------------------------------- audit


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
        header = [str(c) for c in frame.columns]
        _check_columns(header, columns, path)
        return {c: ["" if _is_missing(x) else str(x) for x in frame[c].tolist()] for c in columns}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise AuditError(f"{path} is empty") from None
        _check_columns(header, columns, path)
        index = {c: header.index(c) for c in columns}
        table: dict[str, list[str]] = {c: [] for c in columns}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise AuditError(
                    f"{path}, line {line}: {len(row)} fields, the header has {len(header)}"
                )
            for c, i in index.items():
                table[c].append(row[i].strip())
    if not table[columns[0]]:
        raise AuditError(f"{path} has a header but no rows")
    return table


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
    """Integer ids of a sensitive column's values, sorted numerically if all are numbers."""
    if any(v == "" for v in values):
        i = next(i for i, v in enumerate(values) if v == "")
        raise AuditError(f"sensitive column {column!r} has an empty cell in row {i + 1}")
    levels = sorted(set(values))
    try:
        levels = sorted(levels, key=float)
    except ValueError:
        pass
    if len(levels) > 1000:
        raise AuditError(
            f"sensitive column {column!r} has {len(levels)} distinct values; "
            "expected a categorical attribute"
        )
    lookup = {v: i for i, v in enumerate(levels)}
    return np.asarray([lookup[v] for v in values], np.int32), levels


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
    sensitive columns into groups (:func:`fairjax.groups.intersect`), and computes the per-group
    table (:func:`fairjax.metrics.by_group`) and the fairness metrics with percentile bootstrap
    intervals (:func:`fairjax.metrics.bootstrap`). Decisions come from ``y_pred``, or from
    ``score >= threshold`` when only a score is given; a score adds the KS unfairness.

    Args:
      path: the table.
      y_true: name of the 0/1 label column.
      sensitive: names of the sensitive columns (any values; each distinct value is a group).
      y_pred: name of the 0/1 decision column.
      score: name of a numeric score column.
      weight: name of a non-negative sample-weight column.
      threshold: decision threshold applied to the score when ``y_pred`` is not given.
      num_resamples: bootstrap resamples.
      confidence_level: coverage of the intervals.
      seed: seed of the bootstrap.

    Returns:
      A JSON-ready dict: ``n``, ``groups`` (one entry per non-empty group, with its statistics),
      ``overall``, ``metrics`` (``estimate``, ``lower``, ``upper`` per metric), and the settings.

    Raises:
      AuditError: a missing file or column, or a column with values of the wrong kind.
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
    if y_pred is None and score is None:
        raise AuditError("give --y-pred (0/1 decisions) or --score (numeric scores), or both")
    if not sensitive:
        raise AuditError("give at least one --sensitive column")
    if num_resamples < 2:
        raise AuditError(f"--bootstrap must be at least 2, got {num_resamples}")
    if not 0 < confidence_level < 1:
        raise AuditError(f"--confidence must be in (0, 1), got {confidence_level}")
    columns = [y_true, *sensitive] + [c for c in (y_pred, score, weight) if c is not None]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise AuditError(f"column(s) named for two roles: {', '.join(duplicates)}")
    table = _read_table(path, columns)
    n = len(table[y_true])

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

    ids, names, sizes = [], [], []
    for column in sensitive:
        a, levels = _categories(table[column], column)
        ids.append(a)
        names.append(levels if len(sensitive) == 1 else [f"{column}={v}" for v in levels])
        sizes.append(len(levels))
    G = int(np.prod(sizes))
    s = np.asarray(groups.intersect(*ids, num_groups=sizes))
    group_names = groups.intersection_names(*names)

    y_t, y_p = jnp.asarray(labels), jnp.asarray(decisions)
    s_j = jnp.asarray(s)
    w_j = None if w is None else jnp.asarray(w, jnp.float32)
    stats = metrics.by_group(y_t, y_p, s_j, num_groups=G, weights=w_j)
    overall = metrics.by_group(y_t, y_p, jnp.zeros_like(s_j), num_groups=1, weights=w_j)
    positives = groups.group_counts(s_j, num_groups=G, labels=y_t, label_value=1, weights=w_j)
    negatives = groups.group_counts(s_j, num_groups=G, labels=y_t, label_value=0, weights=w_j)
    rows_per_group = np.bincount(s, minlength=G)

    keep = ["count", "selection_rate", "accuracy", "tpr", "fpr", "base_rate"]
    group_rows = []
    for g in range(G):
        if rows_per_group[g] == 0:
            continue
        row: dict[str, Any] = {"group": group_names[g], "rows": int(rows_per_group[g])}
        row.update({k: float(stats[k][g]) for k in keep})
        # A rate over an empty set is reported as missing, not as the metrics' placeholder 0.
        if float(positives[g]) == 0:
            row["tpr"] = None
        if float(negatives[g]) == 0:
            row["fpr"] = None
        group_rows.append(row)
    overall_row = {"group": "overall", "rows": n} | {k: float(overall[k][0]) for k in keep}

    kw = {"num_groups": G}

    def all_metrics(y_t, y_p, s, *rest, weights=None):
        # One metric returning a dict: the bootstrap compiles a single program for all of them,
        # and every metric sees the same resamples.
        out = {
            "demographic_parity_difference": metrics.demographic_parity_difference(
                y_p, s, weights=weights, **kw
            ),
            "demographic_parity_ratio": metrics.demographic_parity_ratio(
                y_p, s, weights=weights, **kw
            ),
            "equal_opportunity_difference": metrics.equal_opportunity_difference(
                y_t, y_p, s, weights=weights, **kw
            ),
            "equalized_odds_difference": metrics.equalized_odds_difference(
                y_t, y_p, s, weights=weights, **kw
            ),
        }
        if rest:
            out["ks_unfairness"] = metrics.ks_unfairness(rest[0], s, weights=weights, **kw)
        return out

    arrays = [y_t, y_p, s_j]
    if scores is not None:
        arrays.append(jnp.asarray(scores, jnp.float32))
    res = metrics.bootstrap(
        all_metrics,
        *arrays,
        key=jax.random.key(seed),
        weights=w_j,
        num_resamples=num_resamples,
        confidence_level=confidence_level,
    )
    results = {
        name: {
            "estimate": float(res.estimate[name]),
            "lower": float(res.lower[name]),
            "upper": float(res.upper[name]),
        }
        for name in _METRIC_NAMES
        if name in res.estimate
    }
    report = {
        "file": os.fspath(path),
        "n": n,
        "columns": {
            "y_true": y_true,
            "y_pred": y_pred,
            "score": score,
            "weight": weight,
            "sensitive": list(sensitive),
        },
        "decisions": "y_pred" if y_pred is not None else f"score >= {threshold}",
        "num_groups": len(group_rows),
        "groups": group_rows,
        "overall": overall_row,
        "metrics": results,
        "bootstrap": {
            "num_resamples": num_resamples,
            "confidence_level": confidence_level,
            "seed": seed,
        },
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


def _run_audit(args: argparse.Namespace) -> int:
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
    except (AuditError, OSError) as err:
        print(f"fairjax audit: error: {err}", file=sys.stderr)
        return 2
    return 0


def _run_bench(argv: Sequence[str]) -> int:
    try:
        from benchmarks import _runner
    except ImportError:
        print(
            "fairjax bench: error: the benchmarks live in the source checkout; run it from the "
            "repository root (python -m benchmarks)",
            file=sys.stderr,
        )
        return 2
    return _runner.main(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fairjax`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # every option after it belongs to the benchmark runner
        return _run_bench(argv[1:])
    parser = argparse.ArgumentParser(prog="fairjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="train on Adult and print accuracy and fairness")
    p_demo.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples")
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument(
        "--pareto-png",
        default="fairjax_pareto_front.png",
        metavar="PATH",
        help="where to write the Pareto-front plot (needs matplotlib); '' writes none",
    )

    p_audit = sub.add_parser(
        "audit",
        help="fairness report of a CSV/Parquet table of predictions",
        description="Prints the per-group table and the fairness metrics, with bootstrap "
        "intervals, of a table of labels, decisions or scores, and sensitive attributes.",
    )
    p_audit.add_argument("file", help="CSV file (or Parquet, with pandas and pyarrow)")
    p_audit.add_argument("--y-true", required=True, help="column of 0/1 labels")
    p_audit.add_argument("--y-pred", help="column of 0/1 decisions")
    p_audit.add_argument("--score", help="column of numeric scores (adds the KS distance)")
    p_audit.add_argument(
        "--sensitive",
        action="append",
        required=True,
        help="sensitive column; repeat it to audit the intersection of several",
    )
    p_audit.add_argument("--weight", help="column of non-negative sample weights")
    p_audit.add_argument(
        "--threshold", type=float, default=0.5, help="decision = score >= threshold (no --y-pred)"
    )
    p_audit.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    p_audit.add_argument("--confidence", type=float, default=0.95, help="interval coverage")
    p_audit.add_argument("--seed", type=int, default=0)
    p_audit.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p_audit.add_argument("--plot", metavar="PATH", help="write a PNG of the groups' score CDFs")

    p_bench = sub.add_parser(
        "bench",
        help="run the benchmarks against the peers (source checkout; python -m benchmarks)",
        add_help=False,
    )
    p_bench.add_argument("args", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    if args.command == "demo":
        np.set_printoptions(precision=4)
        demo(
            bootstrap_resamples=args.bootstrap, seed=args.seed, pareto_path=args.pareto_png or None
        )
    elif args.command == "audit":
        return _run_audit(args)
    elif args.command == "bench":
        return _run_bench(args.args)
    return 0
