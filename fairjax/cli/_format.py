"""Printing helpers shared by the subcommands."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

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
