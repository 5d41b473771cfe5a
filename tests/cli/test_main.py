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


def test_version_and_plain_help(capsys):
    import fairjax
    from fairjax import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"fairjax {fairjax.__version__}"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "``" not in capsys.readouterr().out  # no reST markup in a terminal
