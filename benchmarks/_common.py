"""What several benchmark scripts repeat: JAX's persistent compilation cache, the JSON results,
a first call and the median of repeated calls.

Standard library only at import time: the FFB peer script (``ffb_tabular_peer.py``) runs in an
environment without jax. A script run from ``benchmarks/`` imports it as ``_common``, a module
of the package as ``benchmarks._common``.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def first_and_repeated(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """``(output, seconds of the first call, median seconds of repeats more)`` of ``fn``
    (NaN without repeats). ``fn`` should block until its result is ready."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return out, first, statistics.median(runs) if runs else float("nan")


def use_compilation_cache(directory: str | None) -> bool | None:
    """Points JAX's persistent compilation cache at ``directory``, for every program however
    quick to compile, so that a second run's first calls load the compiled programs.

    Returns whether the cache was warm (``directory`` already held entries), or None when
    ``directory`` is empty or None (no cache).
    """
    if not directory:
        return None
    import jax

    cache = pathlib.Path(directory)
    warm = cache.is_dir() and any(cache.iterdir())
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return warm


def write_json(path: str | None, results: Any, *, indent: int = 1) -> None:
    """Writes ``results`` to ``path`` as JSON; nothing when ``path`` is empty or None (a
    ``--json FILE`` option left out)."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=indent)


def host_info() -> dict[str, Any]:
    """The machine a run measured: CPU model, cores, memory (GiB), Python and platform."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
