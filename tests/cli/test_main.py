"""``python -m fairjax``: the entry point, run as a user runs it."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_module_entry_point_shows_help():
    proc = subprocess.run(
        [sys.executable, "-m", "fairjax", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in proc.stdout
