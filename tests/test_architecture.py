"""The architecture of docs/architecture.md, enforced: layers point down, private names stay home.

Every import and every attribute reference to a fairjax module in ``fairjax/``, ``benchmarks/``
and ``examples/`` is read from the source (imports inside functions included) and checked:

- a module of ``fairjax`` imports only modules of its own layer or lower ones;
- a private name (``_x``, a module or an attribute) is used only inside the package that owns
  it: ``fairjax._validation`` anywhere in ``fairjax``, ``fairjax.training._reduction`` only in
  ``fairjax.training``, ``fairjax.groups._row_sum`` only in ``fairjax.groups``;
- benchmarks and examples use public names only;
- no module of ``fairjax`` is over 800 lines, and no function body over 80.

The checker is tested on snippets that break each rule, so this test can fail.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom up; a module may import its own layer and the ones below it.
LAYERS: list[set[str]] = [
    {"<private>"},  # fairjax._validation, fairjax._loop, ...: helpers of the whole package
    {"groups", "criteria", "losses", "kernels", "dependence"},
    {"ot1d", "metrics", "penalties"},
    {"ferm", "postprocessing", "representation"},
    {"training"},
    {"sklearn", "plotting", "datasets", "cli", "<root>", "__main__"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}

# Upward imports kept only as deprecated forwards of a moved public name (each with its reason).
DEPRECATED_FORWARDS = {
    ("fairjax.training", "fairjax.cli"): "training.demo_pareto moved to cli.demo_pareto",
}


def layer(module: str) -> int:
    """The layer of a dotted fairjax module name."""
    parts = module.removesuffix(".__init__").split(".")
    if len(parts) == 1:
        return LAYER_OF["<root>"]
    top = parts[1]
    if top.startswith("_") and not top.startswith("__"):
        return LAYER_OF["<private>"]
    if top not in LAYER_OF:
        raise AssertionError(f"{module}: fairjax.{top} has no layer in tests/test_architecture.py")
    return LAYER_OF[top]


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_owner(reference: str) -> str | None:
    """The package that owns the first private part of a dotted name, or None if all public."""
    parts = reference.split(".")
    for i, part in enumerate(parts):
        if _is_private(part):
            return ".".join(parts[:i])
    return None


def module_name(path: pathlib.Path) -> str:
    """The dotted name of a file; a package's ``__init__`` keeps its ``.__init__``."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def references(source: str, importer: str) -> list[tuple[int, str]]:
    """Every dotted fairjax name the source refers to: imports, and attributes of aliases."""
    tree = ast.parse(source)
    # The package relative imports start from: the module itself for a package's __init__.
    is_init = importer.endswith(".__init__")
    importer = importer.removesuffix(".__init__")
    package = importer if is_init else importer.rsplit(".", 1)[0]
    aliases: dict[str, str] = {}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "fairjax" or a.name.startswith("fairjax."):
                    found.append((node.lineno, a.name))
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "fairjax"
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if not (base == "fairjax" or base.startswith("fairjax.")):
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                found.append((node.lineno, full))
                aliases[a.asname or a.name] = full
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            cur: ast.AST = node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id in aliases:
                full = ".".join([aliases[cur.id], *reversed(chain)])
                found.append((node.lineno, full))
    return found


def _module_part(reference: str) -> str:
    """The longest prefix of a dotted name that is a module or package file of the tree."""
    parts = reference.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ROOT.joinpath(*parts[:i])
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts[:i])
    return parts[0]


def violations(source: str, importer: str, *, in_package: bool) -> list[str]:
    """The rule breaks of one file (``importer``: its dotted module name)."""
    out = []
    for line, ref in references(source, importer):
        importer = importer.removesuffix(".__init__")
        owner = private_owner(ref)
        if owner is not None and not (importer == owner or importer.startswith(owner + ".")):
            out.append(f"{importer}:{line} uses private {ref} (private to {owner})")
        if in_package:
            target = _module_part(ref)
            forward = (importer.split(".__init__")[0].rsplit("._", 1)[0], target)
            if forward in DEPRECATED_FORWARDS:
                continue
            if target.startswith("fairjax") and layer(target) > layer(importer):
                out.append(f"{importer}:{line} imports {target} from a lower layer")
    return out


def _files(folder: str) -> list[pathlib.Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", ["fairjax", "benchmarks", "examples"])
def test_layers_and_private_names(folder):
    found = []
    for path in _files(folder):
        found += violations(path.read_text(), module_name(path), in_package=folder == "fairjax")
    assert not found, "\n".join(found)


def test_every_module_has_a_layer():
    for path in _files("fairjax"):
        layer(module_name(path))


# Split by concept (docs/architecture.md): a module of more lines, or a function of a longer
# body (its docstring aside), holds more than one concept.
MAX_MODULE_LINES = 800
MAX_BODY_LINES = 80


def oversized(source: str, name: str) -> list[str]:
    """The module, if over :data:`MAX_MODULE_LINES`, and each function whose body (without its
    docstring) is over :data:`MAX_BODY_LINES`, of ``source``."""
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{name}: {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        if body and node.end_lineno - body[0].lineno + 1 > MAX_BODY_LINES:
            found.append(f"{name}.{node.name}: {node.end_lineno - body[0].lineno + 1} lines")
    return found


def test_modules_and_function_bodies_are_not_oversized():
    found = []
    for path in _files("fairjax"):
        found += oversized(path.read_text(), module_name(path))
    assert not found, "\n".join(found)


def test_size_check_finds_a_long_module_and_a_long_body():
    def function(body_lines):
        return 'def f():\n    """Doc."""\n' + "    x = 1\n" * body_lines

    assert oversized(function(MAX_BODY_LINES + 1), "m") == [f"m.f: {MAX_BODY_LINES + 1} lines"]
    assert oversized(function(MAX_BODY_LINES), "m") == []
    long_module = "x = 1\n" * (MAX_MODULE_LINES + 1)
    assert oversized(long_module, "m") == [f"m: {MAX_MODULE_LINES + 1} lines"]


# ----------------------------------------------------------------------------- the checker


@pytest.mark.parametrize(
    ("source", "importer", "expected"),
    [
        ("from fairjax import training", "fairjax.metrics", "lower layer"),
        ("import fairjax.cli", "fairjax.groups", "lower layer"),
        ("def f():\n    from fairjax import datasets", "fairjax.training", "lower layer"),
        ("from fairjax.groups import _row_sum", "fairjax.metrics", "private"),
        ("from fairjax import groups as gs\ngs._row_sum(1)", "fairjax.metrics", "private"),
        ("from fairjax.training import _reduction", "fairjax.sklearn._logistic", "private"),
        ("from fairjax import _validation", "benchmarks.metrics_vs_fairlearn", "private"),
    ],
)
def test_checker_finds_forbidden_imports(source, importer, expected):
    found = violations(source, importer, in_package=importer.startswith("fairjax"))
    assert any(expected in f for f in found), found


@pytest.mark.parametrize(
    ("source", "importer"),
    [
        ("from fairjax import groups", "fairjax.metrics"),
        ("from fairjax import _validation as v\nv.check_weights", "fairjax.metrics"),
        ("from fairjax.training import _reduction", "fairjax.training"),
        ("from . import _reduction", "fairjax.training.__init__"),
        ("from fairjax import metrics", "benchmarks.metrics_vs_fairlearn"),
    ],
)
def test_checker_allows_the_rules(source, importer):
    assert violations(source, importer, in_package=importer.startswith("fairjax")) == []
