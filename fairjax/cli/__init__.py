"""Command line: ``fairjax demo``, ``fairjax audit`` and ``fairjax bench``.

Also runs as ``python -m fairjax ...``. The subcommands parse arguments, read files and print;
what they compute lives in the library (the audit's report is
:func:`fairjax.metrics.audit_report`).
"""

from fairjax.cli._audit import AuditError, audit
from fairjax.cli._demo import demo, demo_pareto
from fairjax.cli._main import main

__all__ = ["AuditError", "audit", "demo", "demo_pareto", "main"]
