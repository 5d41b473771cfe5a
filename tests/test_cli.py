"""The demo, run as a user runs it."""

import subprocess
import sys

from fairjax import cli


def test_demo_prints_the_table_and_plausible_numbers(capsys):
    results = cli.demo(bootstrap_resamples=20)
    out = capsys.readouterr().out
    for text in ["overall", "Female", "Male", "equal opportunity difference", "Timings"]:
        assert text in out
    # Logistic regression on Adult: about 0.85 accuracy, a clear selection-rate gap by sex.
    assert 0.83 < results["accuracy"] < 0.86
    assert 0.1 < results["demographic parity difference"] < 0.3
    # Linear FERM: far smaller equal-opportunity gap at nearly the same accuracy.
    assert "linear FERM" in out
    ferm = "linear FERM, hinge, C=0.1"
    assert results[f"{ferm}: DEO"] < 0.5 * results["equal opportunity difference (DEO)"]
    assert results[f"{ferm}: accuracy"] > results["accuracy"] - 0.02
    # Barycenter post-processing: scores nearly equal in distribution across groups.
    post = "logistic + barycenter post-processing"
    assert results[f"{post}: KS"] < 0.05 < results["logistic regression: KS"]
    assert results[f"{post}: DP"] < 0.25 * results["demographic parity difference"]


def test_module_entry_point_shows_help():
    proc = subprocess.run(
        [sys.executable, "-m", "fairjax", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in proc.stdout
