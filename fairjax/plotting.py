"""Plots (needs the optional ``plot`` extra: matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["pareto_front"]


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
    name: str = "fairjax",
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
      labels: optional per-model annotation, e.g. the penalty weights (shown beside the dots).
      reference: ``{"name": (unfairness, accuracy)}`` of other methods, drawn as crosses.
      name: legend entry of the main points.
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
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=120)
    else:
        fig = ax.figure
    front = _efficient(u, a)
    ax.plot(u[front], a[front], "-", color="C0", alpha=0.6, label=f"{name} Pareto front")
    ax.scatter(u, a, color="C0", s=22, zorder=3, label=name)
    if labels is not None:
        for x, y, lab in zip(u, a, np.asarray(labels).ravel(), strict=True):
            text = f"{lab:.3g}" if isinstance(lab, (float, np.floating)) else str(lab)
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
