"""mkdocs hook: a public name without a docstring is a build warning (an error with --strict).

mkdocstrings renders what is documented but does not complain about what is not, so this hook
walks the API pages' modules and checks every name in their ``__all__``: classes and functions
need their own docstring (a NamedTuple's generated ``Name(a, b)`` does not count); constants
are skipped (Python gives them no docstring).

It also tolerates one valid Google-style form that griffe cannot parse: an ``Args`` entry that
names several parameters and wraps onto a second line (``a, b, c,\n  d: as in f``). griffe's
"Failed to get 'name: description' pair" about such an entry (the text before the colon holds
a comma) is logged as INFO instead of WARNING; every other griffe warning still fails the
strict build.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re

log = logging.getLogger("mkdocs.hooks.check_docstrings")

MODULES = [
    "fairjax.groups",
    "fairjax.metrics",
    "fairjax.ot1d",
    "fairjax.kernels",
    "fairjax.penalties",
    "fairjax.ferm",
    "fairjax.postprocessing",
    "fairjax.representation",
    "fairjax.training",
    "fairjax.datasets",
    "fairjax.sklearn",
    "fairjax.plotting",
    "fairjax.cli",
]


def _own_doc(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        if obj.__doc__ is None:
            return ""
        # NamedTuple / dataclass generated docstrings: "Name(field, ...)".
        if re.fullmatch(rf"{re.escape(obj.__name__)}\(.*\)", doc.strip(), flags=re.S):
            return ""
    return doc


def missing_docstrings() -> list[str]:
    """Public names of the documented modules that have no docstring of their own."""
    missing = []
    for name in MODULES:
        module = importlib.import_module(name)
        if not (module.__doc__ or "").strip():
            missing.append(f"{name} (module docstring)")
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            if not _own_doc(obj).strip():
                where = getattr(inspect.getmodule(obj), "__file__", "?")
                missing.append(f"{name}.{attr} (defined in {where})")
    return missing


class _TolerateMultiNameEntries(logging.Filter):
    """Downgrades griffe's parse warning about a wrapped multi-parameter ``Args`` entry."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        match = re.search(r"Failed to get 'name: description' pair from '([^']*)'", message)
        if record.levelno == logging.WARNING and match and "," in match.group(1):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def on_startup(**kwargs) -> None:
    for handler in logging.getLogger("mkdocs").handlers:
        handler.addFilter(_TolerateMultiNameEntries())


def on_config(config, **kwargs):
    # Handlers can be replaced between startup and build (mkdocs serve): attach again.
    on_startup()
    return config


def on_pre_build(config, **kwargs) -> None:
    for entry in missing_docstrings():
        log.warning("public name without a docstring: %s", entry)
