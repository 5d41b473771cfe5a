"""Plots (needs the optional ``plot`` extra: matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fairjax import _validation as v

__all__ = ["group_cdfs", "group_styles", "pareto_front", "roc_operating_points"]

# The audit's axis labels (``fairjax audit --plot``), shared by :func:`group_cdfs`.
CDF_XLABEL, CDF_YLABEL = "score", "P(score <= t | group)"


def group_styles(num_groups: int) -> list[dict[str, Any]]:
    """Distinct line styles for ``num_groups`` curves: ``tab10`` colours up to 10 groups,
    ``tab20`` up to 20, then evenly spaced ``turbo`` hues; past 10 groups the line style also
    alternates (solid, dashed, dotted), so no two curves look alike. Dicts of ``color`` and
    ``linestyle`` for ``Axes.plot``/``step``."""
    import matplotlib

    if num_groups <= 10:
        colours = [matplotlib.colormaps["tab10"](k) for k in range(num_groups)]
    elif num_groups <= 20:
        colours = [matplotlib.colormaps["tab20"](k) for k in range(num_groups)]
    else:
        cmap = matplotlib.colormaps["turbo"]
        colours = [cmap(x) for x in np.linspace(0.05, 0.95, num_groups)]
    dashes = ["-"] if num_groups <= 10 else ["-", "--", ":"]
    return [{"color": c, "linestyle": dashes[k % len(dashes)]} for k, c in enumerate(colours)]


def _efficient(unfairness: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (lower unfairness, higher accuracy), by unfairness."""
    order = np.lexsort((-accuracy, unfairness))
    keep, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            keep.append(i)
            best = accuracy[i]
    return np.asarray(keep, dtype=int)


def pareto_front(
    unfairness: Sequence[float] | np.ndarray,
    accuracy: Sequence[float] | np.ndarray,
    *,
    labels: Sequence[float] | np.ndarray | None = None,
    reference: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    name: str = "models",
    xlabel: str = "demographic parity difference (test)",
    ylabel: str = "accuracy (test)",
    title: str | None = "Accuracy vs unfairness",
    ax: Any = None,
    path: str | os.PathLike | None = None,
) -> Any:
    """Draws accuracy against unfairness for a family of models, and its Pareto front.

    Every model is a dot; the non-dominated ones (no other model is both fairer and more
    accurate) are joined by a line. ``reference`` overlays other methods' points, e.g.
    fairlearn's ``ExponentiatedGradient`` at several bounds.

    Args:
      unfairness: one unfairness value per model (lower is fairer), shape ``(K,)``.
      accuracy: one accuracy per model, shape ``(K,)``.
      labels: optional per-model annotation, e.g. the penalty weights, shown beside the dots;
        dots that overlap (within 8% across and 5% up of the axes) share one annotation that
        lists their labels, so every model stays labelled.
      reference: ``{"name": (unfairness, accuracy)}`` of other methods, drawn as crosses.
      name: legend entry of the main points (the front's line is "Pareto front").
      xlabel, ylabel, title: axis labels and title.
      ax: a matplotlib ``Axes`` to draw on; default: a new figure.
      path: if given, the figure is saved there (PNG, SVG, PDF by the suffix).

    Returns:
      The matplotlib ``Figure``.

    Example:
      >>> import pytest; _ = pytest.importorskip("matplotlib")
      >>> from fairjax.plotting import pareto_front
      >>> fig = pareto_front([0.2, 0.1, 0.05], [0.85, 0.84, 0.80], labels=[0, 1, 10])
      >>> len(fig.axes)
      1
    """
    import matplotlib.pyplot as plt  # the optional extra, imported only here

    u = np.asarray(unfairness, dtype=float).ravel()
    a = np.asarray(accuracy, dtype=float).ravel()
    if u.shape != a.shape:
        raise ValueError(
            f"`unfairness` and `accuracy` must have the same length, got {u.shape} and {a.shape}."
        )
    if u.size == 0 or not (np.all(np.isfinite(u)) and np.all(np.isfinite(a))):
        raise ValueError("`unfairness` and `accuracy` must be non-empty and finite.")
    if labels is not None and np.size(labels) != u.size:
        raise ValueError(
            f"`labels` must have one entry per model ({u.size}), got {np.size(labels)}."
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=120)
    else:
        fig = ax.figure
    front = _efficient(u, a)
    ax.plot(u[front], a[front], "-", color="C0", alpha=0.6, label="Pareto front")
    ax.scatter(u, a, color="C0", s=22, zorder=3, label=name)
    if labels is not None:
        _annotate_clusters(ax, u, a, np.asarray(labels).ravel())
    for k, (ref_name, (ru, ra)) in enumerate((reference or {}).items()):
        ax.scatter(
            np.asarray(ru, float),
            np.asarray(ra, float),
            marker="x",
            s=40,
            color=f"C{k + 1}",
            zorder=4,
            label=ref_name,
        )
    return _finish(fig, ax, xlabel, ylabel, title, path)


def _annotate_clusters(ax: Any, u: np.ndarray, a: np.ndarray, labels: np.ndarray) -> None:
    """One annotation per cluster of overlapping dots (within 8% across and 5% up of the axes
    of the cluster's first dot), listing the labels of all its dots."""
    scale = np.array([np.ptp(u) or 1.0, np.ptp(a) or 1.0])
    clusters: list[tuple[np.ndarray, float, float, list[str]]] = []
    for x, y, lab in zip(u, a, labels, strict=True):
        text = f"{lab:.3g}" if isinstance(lab, (float, np.floating)) else str(lab)
        here = np.array([x, y]) / scale
        for q, _, _, texts in clusters:
            if abs(here[0] - q[0]) < 0.08 and abs(here[1] - q[1]) < 0.05:
                texts.append(text)
                break
        else:
            clusters.append((here, x, y, [text]))
    for _, x, y, texts in clusters:
        ax.annotate(", ".join(texts), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)


def _ks_between_groups(x: np.ndarray, g: np.ndarray, num_groups: int) -> float:
    """Largest KS distance between two non-empty groups' empirical CDFs (NumPy)."""
    grid = np.sort(x)
    cdfs = [
        np.searchsorted(np.sort(x[g == k]), grid, side="right") / np.sum(g == k)
        for k in range(num_groups)
        if np.any(g == k)
    ]
    if len(cdfs) < 2:
        return 0.0
    stacked = np.stack(cdfs)
    return float(np.max(stacked.max(axis=0) - stacked.min(axis=0)))


def group_cdfs(
    scores: Sequence[float] | np.ndarray,
    groups: Any,
    *,
    num_groups: int | None = None,
    group_names: Sequence[str] | None = None,
    after: Sequence[float] | np.ndarray | None = None,
    threshold: float | None = None,
    path: str | os.PathLike | None = None,
) -> Any:
    """Draws each group's empirical CDF of the scores, before and (optionally) after
    post-processing.

    Demographic parity for a score means equal group distributions: after
    :func:`fairjax.postprocessing.apply_barycenter` the curves should lie on top of each other.
    The panels are titled ``"before (KS ...)"`` and ``"after (KS ...)"`` with the KS
    unfairness, the largest vertical gap between two groups' curves
    (:func:`fairjax.metrics.ks_unfairness`); the axes are labelled as in ``fairjax audit
    --plot`` (``score``, ``P(score <= t | group)``). Curves get distinct styles for any number
    of groups (:func:`group_styles`) and the legend (names with group sizes) sits outside the
    axes. With ``threshold`` a dotted line marks the decision threshold and a dot on each curve
    its value there, the group's share of scores at or below it (1 - selection rate).

    Args:
      scores: scores before post-processing, shape ``(n,)``.
      groups: group labels ``(n,)``: integer ids in ``[0, num_groups)``, or any labels
        (strings, a pandas categorical), whose names then label the curves.
      num_groups: number of groups (default: inferred from the labels).
      group_names: optional legend names, one per group (default: the labels' names, or
        ``"group k"`` for integer ids).
      after: optional post-processed scores of the same rows, shape ``(n,)``: drawn in a
        second panel with the same axes.
      threshold: optional decision threshold to mark.
      path: if given, the figure is saved there (PNG, SVG, PDF by the suffix).

    Returns:
      The matplotlib ``Figure`` (one panel, or two with ``after``).

    Example:
      >>> import pytest; _ = pytest.importorskip("matplotlib")
      >>> import numpy as np
      >>> from fairjax.plotting import group_cdfs
      >>> s = np.array([0, 0, 1, 1]); f = np.array([0.1, 0.4, 0.6, 0.9])
      >>> fig = group_cdfs(f, s, num_groups=2, after=np.array([0.3, 0.6, 0.3, 0.6]))
      >>> [ax.get_title() for ax in fig.axes]
      ['before (KS 1.000)', 'after (KS 0.000)']
    """
    import matplotlib.pyplot as plt  # the optional extra, imported only here

    x = np.asarray(scores, dtype=float).ravel()
    g, num_groups, names = _group_ids(groups, num_groups, group_names)
    if x.shape != g.shape:
        raise ValueError(
            f"`scores` and `groups` must have the same length, got {x.shape} and {g.shape}."
        )
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("`scores` must be non-empty and finite.")
    panels = [("before", x)]
    if after is not None:
        y = np.asarray(after, dtype=float).ravel()
        if y.shape != x.shape or not np.all(np.isfinite(y)):
            raise ValueError(f"`after` must be finite with the shape of `scores` {x.shape}.")
        panels.append(("after", y))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(5.0 * len(panels) + 1.8, 3.8),
        dpi=120,
        sharex=True,
        sharey=True,
    )
    axes = np.atleast_1d(axes)
    styles = group_styles(num_groups)
    for ax, (title, values) in zip(axes, panels, strict=True):
        for k in range(num_groups):
            val = np.sort(values[g == k])
            if not val.size:
                continue
            label = f"{names[k]} (n={val.size:,})"
            ax.step(
                val, np.arange(1, val.size + 1) / val.size, where="post", label=label, **styles[k]
            )
            if threshold is not None:
                at = np.searchsorted(val, threshold, side="right") / val.size
                ax.plot([threshold], [at], "o", ms=4, color=styles[k]["color"], zorder=4)
        if threshold is not None:
            ax.axvline(
                threshold, color="0.3", linestyle=":", linewidth=1, label=f"threshold {threshold:g}"
            )
        ks = _ks_between_groups(values, g, num_groups)
        ax.set_title(f"{title} (KS {ks:.3f})")
        ax.set_xlabel(CDF_XLABEL)
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(CDF_YLABEL)
    handles, labels = axes[0].get_legend_handles_labels()
    ncol = 1 if len(labels) <= 16 else 2
    axes[-1].legend(
        handles,
        labels,
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        ncol=ncol,
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig


def _group_ids(groups: Any, num_groups: int | None, group_names: Any) -> tuple:
    """Integer ids, the number of groups and their names, from labels of any kind."""
    fact = v.factorize_groups(groups, num_groups)
    if fact is not None:
        g, num_groups, names = fact
        names = [f"group {n}" for n in names] if isinstance(names[0], int) else names
    else:
        g = np.asarray(groups).ravel()
        if num_groups is None or not np.issubdtype(g.dtype, np.integer):
            raise ValueError("`groups` must be labels, or integer ids with `num_groups`.")
        if g.size and (g.min() < 0 or g.max() >= num_groups):
            raise ValueError(f"`groups` must be integer ids in [0, {num_groups}).")
        names = [f"group {k}" for k in range(num_groups)]
    if group_names is not None:
        names = list(group_names)
    if len(names) != num_groups:
        hint = ""
        if np.issubdtype(np.asarray(g).dtype, np.integer) and np.unique(g).size != num_groups:
            hint = (
                f" (integer ids are ids: {num_groups} groups, of which {np.unique(g).size} have "
                "rows; pass labels, e.g. strings, to name only the groups present)"
            )
        raise ValueError(f"`group_names` must have {num_groups} entries, got {len(names)}{hint}.")
    return np.asarray(g), num_groups, [str(n) for n in names]


def roc_operating_points(
    hull: Any,
    states: Mapping[str, Any] | None = None,
    *,
    group_names: Sequence[str] | None = None,
    title: str | None = "ROC convex hull of each group",
    ax: Any = None,
    path: str | os.PathLike | None = None,
) -> Any:
    """Draws each group's ROC convex hull and the operating points that thresholds chose.

    Args:
      hull: a :class:`fairjax.postprocessing.ROCHull` (from
        :func:`fairjax.postprocessing.roc_hull`).
      states: ``{"name": ThresholdState}`` of fitted thresholds
        (:func:`fairjax.postprocessing.fit_thresholds`); each group's calibration point is
        drawn on its hull's colour, one marker per state (the first state's largest, so
        that coinciding points stay visible).
      group_names: one name per group (default ``"group k"``).
      title: the axes' title.
      ax: a matplotlib ``Axes`` to draw on; default: a new figure.
      path: if given, the figure is saved there.

    Returns:
      The matplotlib ``Figure``.

    Example:
      >>> import pytest; _ = pytest.importorskip("matplotlib")
      >>> import jax.numpy as jnp
      >>> from fairjax.postprocessing import roc_hull, fit_thresholds
      >>> from fairjax.plotting import roc_operating_points
      >>> s = jnp.array([0.9, 0.2, 0.6, 0.4, 0.8, 0.3, 0.7, 0.1])
      >>> y = jnp.array([1, 0, 1, 0, 1, 1, 0, 0]); g = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])
      >>> hull = roc_hull(s, y, g, num_groups=2)
      >>> fig = roc_operating_points(hull, {"DP": fit_thresholds(s, y, g, num_groups=2)})
      >>> len(fig.axes)
      1
    """
    import matplotlib.pyplot as plt  # the optional extra, imported only here

    start, count = np.asarray(hull.start), np.asarray(hull.count)
    fpr, tpr = np.asarray(hull.fpr), np.asarray(hull.tpr)
    num = start.shape[0]
    names = [f"group {k}" for k in range(num)] if group_names is None else list(group_names)
    colours = [style["color"] for style in group_styles(num)]
    if len(names) != num:
        raise ValueError(f"`group_names` must have {num} entries, got {len(names)}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 5.0), dpi=120)
    else:
        fig = ax.figure
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    for k in range(num):
        seg = slice(int(start[k]), int(start[k] + count[k]))
        ax.plot(fpr[seg], tpr[seg], "-", color=colours[k], lw=1.2, label=str(names[k]))
    markers = "o^sDv<>"
    # The first state's markers are the largest, so points that coincide stay visible.
    for j, (label, st) in enumerate((states or {}).items()):
        size = max(110 - 30 * j, 30)
        x, y = np.asarray(st.fpr), np.asarray(st.tpr)
        if x.shape != (num,):
            raise ValueError(
                f"`states[{label!r}]` must hold one rule per group, rates of shape ({num},), got "
                f"{x.shape} (a batch of rules, e.g. from jax.vmap: pass one, "
                "jax.tree.map(lambda a: a[i], state))."
            )
        for k in range(num):
            ax.scatter(
                x[k],
                y[k],
                marker=markers[j % len(markers)],
                s=size,
                color=colours[k],
                edgecolor="black",
                linewidth=0.6,
                zorder=4,
            )
        ax.scatter(
            [],
            [],
            marker=markers[j % len(markers)],
            color="white",
            edgecolor="black",
            label=str(label),
        )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    return _finish(fig, ax, "false-positive rate", "true-positive rate", title, path)


def _finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str | None, path: Any) -> Any:
    """Labels, grid and legend of one axes; the figure saved to ``path`` if given."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    # Outside the axes (right), so that it never covers a curve or a point.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig
