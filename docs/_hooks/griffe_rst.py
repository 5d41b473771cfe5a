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


def _directive_body(lines: list[str], i: int, depth: int) -> tuple[list[str], int]:
    """A directive's content from ``lines[i]`` on: the lines indented deeper than ``depth``
    (blank lines included, trailing ones dropped), dedented; and the index after it."""
    block: list[str] = []
    while i < len(lines) and (not lines[i].strip() or _indent_of(lines[i]) > depth):
        block.append(lines[i])
        i += 1
    while block and not block[-1].strip():
        block.pop()
    common = min((_indent_of(b) for b in block if b.strip()), default=0)
    return [b[common:] for b in block if b.strip()], i


def _rewrite(lines: list[str], directive: re.Pattern, render) -> list[str]:
    """Replaces each ``directive`` and its content by ``render(match, body, out, followed)``."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = directive.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        first = [match.group("rest")] if match.group("rest").strip() else []
        body, i = _directive_body(lines, i + 1, len(match.group("indent").expandtabs()))
        render(match, first + body, out, i < len(lines))
    return out


def _render_math(match: re.Match, body: list[str], out: list[str], followed: bool) -> None:
    indent = match.group("indent")
    if out and out[-1].strip():
        out.append("")
    out += [f"{indent}$$", *(f"{indent}{b}" for b in body), f"{indent}$$"]
    if followed:
        out.append("")


def _render_version(match: re.Match, body: list[str], out: list[str], followed: bool) -> None:
    label = f"{_VERSION_LABEL[match.group('kind')]} {match.group('v')}".rstrip()
    words = " ".join(b.strip() for b in body)
    out.append(f"{match.group('indent')}*{label}:* {words}".rstrip())
    if followed:
        out.append("")


def rst_to_markdown(text: str) -> str:
    """Rewrites the math directives and roles of a docstring (see the module docstring)."""
    lines = _rewrite(text.splitlines(), _VERSION, _render_version)
    out = _rewrite(lines, _MATH, _render_math)
    text = "\n".join(out)
    text = _INLINE_MATH.sub(lambda m: f"${m.group(1)}$", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _EXAMPLE.sub("Examples:", text)


class RstToMarkdown(griffe.Extension):
    """Applies :func:`rst_to_markdown` to every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
