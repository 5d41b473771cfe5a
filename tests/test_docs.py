"""Every code example of the documentation runs as written.

For each page ``docs/*.md`` the ```` ```python ```` blocks are executed in order, in one
namespace per page, in a temporary working directory (files a block writes, such as the
getting-started page's ``predictions.csv``, land there). A ```` ```bash ```` block whose
commands are all ``fairjax audit ...`` runs too, in the same directory, through
:func:`fairjax.cli.main` (the console script's entry point); other shell blocks (installs,
benchmarks, the demo) are not run. A block that raises, or a command that exits non-zero,
fails the page's test with the page's line number in the traceback.

Markers, an HTML comment on the line before a block (invisible on the site):

* ``<!-- skip -->`` or ``<!-- skip: why -->``: an illustrative block that is not run (a
  fragment, a command for a cluster);
* ``<!-- requires: flax -->``: a self-contained block (its own imports and data) that needs an
  optional package; it runs as its own test, in a fresh namespace, and is skipped with the
  reason when the package is not installed. A name in capitals
  (``<!-- requires: FAIRJAX_DATA_HOME -->``) is an environment variable that must be set.

A page whose code mentions ``FAIRJAX_DATA_HOME`` reads a data set from that folder: its test is
skipped with the reason when the variable is not set. Pages that train (seconds to minutes)
are in ``SLOW`` and run with ``pytest -m slow``.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shlex
import sys
import traceback

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"

# Pages (or "page.md::module" for a block with requirements) that train models or take over
# ~3 s of compilation: `-m slow`.
# The others add about 16 s of CPU time to the default run (`--durations=0`).
SLOW = {
    "audit.md",
    "continuous.md",
    "criteria.md",
    "thresholds.md",
    "wasserstein.md",
    "regression.md",
    "multiclass.md",
    "ferm.md",
    "getting_started.md",
    "representation.md",
    "training.md",
    "training.md::equinox",
    "training.md::flax",
}

_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[ \t]*$")
# "<!-- skip -->" or "<!-- skip: why -->"; "<!-- requires: module -->".
_MARK = re.compile(r"^<!--\s*(?P<mark>skip\b[^>]*?|requires:\s*[\w.]+)\s*-->\s*$")


class Block:
    """One fenced code block of a page."""

    def __init__(self, page: str, line: int, lang: str, code: str, mark: str | None) -> None:
        self.page, self.line, self.lang, self.code = page, line, lang, code
        self.skip = mark is not None and mark.startswith("skip")
        self.requires = mark.split(":", 1)[1].strip() if mark and not self.skip else None


def code_blocks(path: pathlib.Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with their first code line (1-based) and marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence or not fence.group("lang"):
            i += 1
            continue
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = _MARK.match(previous.strip())
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        code = "\n".join(lines[start:end]) + "\n"
        blocks.append(
            Block(path.name, start + 1, fence.group("lang"), code, mark and mark.group("mark"))
        )
        i = end + 1
    return blocks


def audit_commands(code: str) -> list[list[str]] | None:
    """The argument lists of a shell block made only of ``fairjax audit`` commands, else None."""
    commands = [c.strip() for c in code.replace("\\\n", " ").splitlines()]
    commands = [c for c in commands if c and not c.startswith("#")]
    if not commands or not all(c.startswith("fairjax audit ") for c in commands):
        return None
    return [shlex.split(c)[1:] for c in commands]


def _run_python(block: Block, namespace: dict) -> None:
    # Line numbers of the page: a traceback points at the line of the Markdown file.
    source = "\n" * (block.line - 1) + block.code
    try:
        exec(compile(source, str(DOCS / block.page), "exec"), namespace)
    except Exception as error:
        raise AssertionError(
            f"{block.page}, block at line {block.line} raised {type(error).__name__}: {error}\n"
            + "".join(traceback.format_exception(error)[-6:])
        ) from error


def _run_shell(block: Block) -> None:
    from fairjax.cli import main

    for argv in audit_commands(block.code) or []:
        code = main(argv)
        assert code == 0, f"{block.page}, block at line {block.line}: `fairjax {argv}` -> {code}"


def _runnable(block: Block) -> bool:
    if block.skip:
        return False
    return block.lang == "python" or (
        block.lang in {"bash", "sh", "console"} and audit_commands(block.code) is not None
    )


def _needs_data(blocks: list[Block]) -> bool:
    return any("FAIRJAX_DATA_HOME" in b.code for b in blocks if b.lang == "python")


def _cases() -> list:
    cases = []
    for path in sorted(DOCS.glob("*.md")):
        blocks = [b for b in code_blocks(path) if _runnable(b)]
        page = [b for b in blocks if b.requires is None]
        if page:
            marks = [pytest.mark.slow] if path.name in SLOW else []
            cases.append(pytest.param(path.name, page, None, id=path.name, marks=marks))
        for b in blocks:
            if b.requires is not None:
                name = f"{path.name}::{b.requires}"
                marks = [pytest.mark.slow] if name in SLOW else []
                cases.append(pytest.param(path.name, [b], b.requires, id=name, marks=marks))
    return cases


def _skip_reason(page: str, blocks: list[Block], requires: str | None) -> str | None:
    if requires is not None and requires.isupper():
        if not os.environ.get(requires):
            return f"{page}: the block at line {blocks[0].line} needs {requires} set"
    elif requires is not None and importlib.util.find_spec(requires.split(".")[0]) is None:
        return f"{page}: the block at line {blocks[0].line} needs {requires}, not installed"
    if _needs_data(blocks) and not os.environ.get("FAIRJAX_DATA_HOME"):
        return f"{page} reads a data set: set FAIRJAX_DATA_HOME"
    return None


@pytest.mark.parametrize(("page", "blocks", "requires"), _cases())
def test_page_runs_as_written(page, blocks, requires, tmp_path, monkeypatch):
    reason = _skip_reason(page, blocks, requires)
    if reason is not None:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs.{page}"}
    try:
        for block in blocks:
            if block.lang == "python":
                _run_python(block, namespace)
            else:
                _run_shell(block)
    finally:
        if "matplotlib.pyplot" in sys.modules:  # figures a page drew stay open otherwise
            sys.modules["matplotlib.pyplot"].close("all")


# ----------------------------------------------------------------------------- the runner


def _page(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_runner_fails_on_a_block_that_raises(tmp_path):
    text = "# t\n\n```python\nx = 1\n```\n\ntext\n\n```python\nassert x == 2, 'wrong'\n```\n"
    blocks = code_blocks(_page(tmp_path, text))
    namespace: dict = {}
    _run_python(blocks[0], namespace)
    with pytest.raises(AssertionError, match=r"page.md, block at line 10 raised AssertionError"):
        _run_python(blocks[1], namespace)


def test_runner_reads_markers_and_audit_commands(tmp_path):
    text = (
        "<!-- skip -->\n```python\nraise SystemExit\n```\n\n"
        "<!-- skip: a fragment -->\n```python\nraise SystemExit\n```\n\n"
        "<!-- requires: flax -->\n\n```python\nimport flax\n```\n\n"
        "```bash\nfairjax audit p.csv --y-true y \\\n    --score s --sensitive g\n```\n\n"
        "```bash\npip install fairjax\n```\n"
    )
    blocks = code_blocks(_page(tmp_path, text))
    assert [(b.lang, b.skip, b.requires, b.line) for b in blocks] == [
        ("python", True, None, 3),
        ("python", True, None, 8),
        ("python", False, "flax", 14),
        ("bash", False, None, 18),
        ("bash", False, None, 23),
    ]
    assert [_runnable(b) for b in blocks] == [False, False, True, True, False]
    assert audit_commands(blocks[3].code) == [
        ["audit", "p.csv", "--y-true", "y", "--score", "s", "--sensitive", "g"]
    ]


def test_runner_skips_for_a_missing_package_or_data_home(tmp_path, monkeypatch):
    text = (
        "```python\nimport os\ndata = os.environ['FAIRJAX_DATA_HOME']\n```\n\n"
        "<!-- requires: fairjax_no_such_module -->\n```python\nimport fairjax_no_such_module\n```\n"
    )
    data, optional = code_blocks(_page(tmp_path, text))
    monkeypatch.delenv("FAIRJAX_DATA_HOME", raising=False)
    assert "set FAIRJAX_DATA_HOME" in _skip_reason("page.md", [data], None)
    monkeypatch.setenv("FAIRJAX_DATA_HOME", str(tmp_path))
    assert _skip_reason("page.md", [data], None) is None
    reason = _skip_reason("page.md", [optional], optional.requires)
    assert reason == "page.md: the block at line 8 needs fairjax_no_such_module, not installed"
    monkeypatch.delenv("FAIRJAX_DATA_HOME")
    reason = _skip_reason("page.md", [optional], "FAIRJAX_DATA_HOME")
    assert reason == "page.md: the block at line 8 needs FAIRJAX_DATA_HOME set"


# ----------------------------------------------------------------------------- the site's hooks


def _hook(name: str):
    pytest.importorskip("griffe")
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location(
        f"_docs_hook_{name}", DOCS / "_hooks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ESTIMATOR = '''
from typing import NamedTuple


class Estimator:
    """An estimator.

    Args:
      alpha: a parameter.

    Attributes:
      coef_: the weights.
    """

    coef_ = None

    def __init__(self, alpha=1.0):
        self.alpha = alpha
        self.n_seen_ = 0

    def __sklearn_tags__(self):
        return None

    def __call__(self, x):
        return x

    def fit(self, X):
        return self


class Result(NamedTuple):
    """A result.

    Attributes:
      estimate: the value.
    """

    estimate: float
    samples: float
'''


def test_api_members_are_listed_once(tmp_path):
    members = _hook("griffe_members")
    import griffe

    (tmp_path / "docmod.py").write_text(_ESTIMATOR, encoding="utf-8")
    module = griffe.load(
        "docmod",
        search_paths=[str(tmp_path)],
        extensions=griffe.load_extensions(members.TidyMembers),
    )
    # The parameter `alpha` (documented in Args) and `coef_` (in Attributes) are not repeated
    # as members, nor is the protocol method; `n_seen_`, documented nowhere else, stays.
    assert set(module["Estimator"].members) == {"__init__", "__call__", "fit", "n_seen_"}
    assert set(module["Result"].members) == {"samples"}
    assert members.documented_attributes(module["Result"].docstring.value) == {"estimate"}


def test_site_hooks_version_notes_and_remote_assets():
    rst = _hook("griffe_rst")
    text = "Doc.\n\n.. versionchanged:: 0.1.0\n   ``a=`` is now\n   ``b=``.\n\nArgs:\n  x: y\n"
    assert rst.rst_to_markdown(text) == (
        "Doc.\n\n*Changed in version 0.1.0:* ``a=`` is now ``b=``.\n\nArgs:\n  x: y"
    )
    assets = _hook("mathjax_assets")
    html = (
        '<script src="../assets/mathjax/tex-mml-chtml.js"></script>'
        '<script src="https://cdn.example/mathjax.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/c.css">'
        '<link rel="canonical" href="https://example.org/page/">'
        '<a href="https://example.org">a link</a>'
    )
    assert assets.remote_assets(html) == ["//fonts.example/c.css", "https://cdn.example/mathjax.js"]
