"""``fairjax bench``: the benchmark runner of the source checkout."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_bench(argv: Sequence[str]) -> int:
    """Runs ``benchmarks._runner`` with ``argv``; exit code 2 outside the source checkout."""
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
