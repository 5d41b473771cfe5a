"""The README's code example runs and prints the figures the README states."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _training_example(path: pathlib.Path) -> str:
    """The python block that trains a model (the one calling ``training.fit``)."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    found = [b for b in blocks if "training.fit(" in b]
    assert found, f"no training example in {path.name}"
    return found[0]


def _stated(path: pathlib.Path) -> tuple[float, float]:
    text = " ".join(path.read_text(encoding="utf-8").split())
    match = re.search(r"prints accuracy ([\d.]+) and DP difference ([\d.]+)", text)
    assert match, f"{path.name} does not state what the example prints"
    return float(match.group(1)), float(match.group(2))


def test_readme_example_prints_what_the_readme_says():
    readme = ROOT / "README.md"
    if not readme.exists():  # an installed package without the source tree
        pytest.skip("README.md is not beside the tests")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_training_example(readme), "README.md", "exec"), {})
    printed = dict(re.findall(r"^(accuracy|DP difference) ([\d.]+)$", out.getvalue(), re.M))
    accuracy, dp = _stated(readme)
    assert abs(float(printed["accuracy"]) - accuracy) < 2e-3
    assert abs(float(printed["DP difference"]) - dp) < 2e-3


def test_getting_started_shows_the_readme_example():
    readme, page = ROOT / "README.md", ROOT / "docs" / "getting_started.md"
    if not (readme.exists() and page.exists()):
        pytest.skip("the source tree is not beside the tests")
    assert _training_example(page) == _training_example(readme)
    assert _stated(page) == _stated(readme)
