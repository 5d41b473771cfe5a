"""griffe extension: each class member of the API reference once, and only the public ones.

mkdocstrings lists a class's attributes as members of their own. Two kinds repeat what the
class's docstring already says:

* an instance attribute named after a constructor parameter (scikit-learn's estimators store
  every parameter as ``self.name = name``): the parameter is documented in the class's
  Parameters table (``merge_init_into_class``), so the attribute is dropped;
* an attribute listed in the class docstring's ``Attributes:`` section (a NamedTuple's fields,
  a dataclass's fields): the section's table documents it, so the member is dropped.

Special methods other than ``__init__`` (merged into the class) and ``__call__`` are protocol
plumbing (``__sklearn_tags__``, ``__repr__``): they are dropped too. (The ``"public"`` filter of
``mkdocs.yml`` keeps module pages to ``__all__``, but counts special methods as public.)
"""

from __future__ import annotations

import re

import griffe

_SECTION = re.compile(r"^(?P<indent>[ \t]*)Attributes:[ \t]*$")
_ENTRY = re.compile(r"^(?P<indent>[ \t]*)(?P<name>[A-Za-z_]\w*)(?:[ \t]*\([^)]*\))?:")
_KEEP_SPECIAL = {"__init__", "__call__"}


def documented_attributes(docstring: str) -> set[str]:
    """Names of the entries of a Google-style ``Attributes:`` section."""
    names: set[str] = set()
    lines = docstring.splitlines()
    for i, line in enumerate(lines):
        header = _SECTION.match(line)
        if not header:
            continue
        entry_indent = None
        for entry in lines[i + 1 :]:
            if not entry.strip():
                continue
            indent = len(entry) - len(entry.lstrip())
            if indent <= len(header.group("indent")):
                break  # the next section
            match = _ENTRY.match(entry)
            if entry_indent is None:
                entry_indent = indent
            if indent == entry_indent and match:
                names.add(match.group("name"))
    return names


def _constructor_parameters(cls: griffe.Class) -> set[str]:
    init = cls.members.get("__init__")
    if init is None or init.is_alias or not init.is_function:
        return set()
    return {p.name for p in init.parameters if p.name != "self"}


def tidy_class(cls: griffe.Class) -> None:
    """Drops the repeated attributes and the special methods of ``cls`` (see the module)."""
    in_section = documented_attributes(cls.docstring.value) if cls.docstring else set()
    parameters = _constructor_parameters(cls)
    for name, member in list(cls.members.items()):
        if member.is_alias:
            continue
        if member.is_attribute and (
            name in in_section or (name in parameters and "instance-attribute" in member.labels)
        ):
            del cls.members[name]
        elif name.startswith("__") and name.endswith("__") and name not in _KEEP_SPECIAL:
            del cls.members[name]


def _walk(obj: griffe.Object) -> None:
    for member in list(obj.members.values()):
        if member.is_alias:
            continue
        if member.is_class:
            tidy_class(member)
        if member.is_module or member.is_class:
            _walk(member)


class TidyMembers(griffe.Extension):
    """Applies :func:`tidy_class` to every class of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        _walk(pkg)
