"""griffe extension: the reStructuredText bits of fairjax's Google-style docstrings, as Markdown.

The docstrings write display math as ``.. math::`` blocks and inline math and cross-references
as Sphinx roles (``:math:`x```, ``:func:`f```). mkdocstrings renders docstrings as Markdown, so
before they are parsed this extension rewrites

* ``.. math:: expr`` and ``.. math::`` followed by an indented block into ``$$ ... $$`` blocks
  (rendered by MathJax through ``pymdownx.arithmatex``);
* ``:math:`expr``` into ``$expr$``;
* ``:func:``, ``:class:``, ``:mod:``, ``:meth:``, ``:attr:``, ``:data:``, ``:obj:``,
  ``:exc:`` roles into inline code (a leading ``~`` is dropped);
* ``.. versionadded:: V``, ``.. versionchanged:: V`` and ``.. deprecated:: V`` with their
  indented text into a paragraph "*Changed in version V:* text";
* an ``Example:`` section header into ``Examples:``, the section griffe parses as doctest code
  (as ``Example:`` its ``>>>`` lines would be Markdown block quotes, and an output such as
  ``['a', 'b']`` a link).

The docstrings themselves stay valid reStructuredText for Sphinx users and doctest.
"""

from __future__ import annotations

import re

import griffe

_MATH = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc):`~?([^`]+)`")
_EXAMPLE = re.compile(r"^Example:[ \t]*$", flags=re.M)
_VERSION = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<kind>versionadded|versionchanged|deprecated)::[ \t]*(?P<v>\S*)"
    r"[ \t]*(?P<rest>.*)$"
)
_VERSION_LABEL = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
}


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _version_notes(lines: list[str]) -> list[str]:
    """``.. versionchanged:: V`` and its indented text as one Markdown paragraph."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _VERSION.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        depth = len(match.group("indent").expandtabs())
        words = [match.group("rest")] if match.group("rest").strip() else []
        i += 1
        while i < len(lines) and lines[i].strip() and _indent_of(lines[i]) > depth:
            words.append(lines[i].strip())
            i += 1
        label = f"{_VERSION_LABEL[match.group('kind')]} {match.group('v')}".rstrip()
        out.append(f"{match.group('indent')}*{label}:* {' '.join(words)}".rstrip())
    return out


def rst_to_markdown(text: str) -> str:
    """Rewrites the math directives and roles of a docstring (see the module docstring)."""
    lines = _version_notes(text.splitlines())
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group("indent")
        body = [match.group("rest")] if match.group("rest").strip() else []
        i += 1
        # The directive's content: the following lines indented deeper (blank lines included).
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or _indent_of(lines[i]) > len(indent.expandtabs())
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        trailing_blank = i < len(lines)
        depth = min((_indent_of(b) for b in block if b.strip()), default=0)
        body += [b[depth:] for b in block if b.strip()]
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}$$")
        out += [f"{indent}{b}" for b in body]
        out.append(f"{indent}$$")
        if trailing_blank:
            out.append("")
    text = "\n".join(out)
    text = _INLINE_MATH.sub(lambda m: f"${m.group(1)}$", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _EXAMPLE.sub("Examples:", text)


class RstToMarkdown(griffe.Extension):
    """Applies :func:`rst_to_markdown` to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
