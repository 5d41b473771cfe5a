"""The demo, run as a user runs it."""

import importlib.util
import pathlib

import numpy as np
import pytest

from fairjax import cli
from fairjax.cli._demo import _regression_part


@pytest.mark.slow
def test_demo_prints_the_table_and_plausible_numbers(capsys, tmp_path):
    png = tmp_path / "front.png"
    results = cli.demo(bootstrap_resamples=20, pareto_path=png)
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
    # The Pareto sweep: the largest weight buys a much smaller gap for some accuracy.
    assert "Pareto sweep: 16 penalty weights" in out
    assert results["pareto: DP at max lam"] < 0.25 * results["pareto: DP at lam=0"]
    assert results["pareto: accuracy at max lam"] < results["pareto: accuracy at lam=0"]
    np.testing.assert_allclose(results["pareto: accuracy at lam=0"], results["accuracy"], atol=2e-3)
    if importlib.util.find_spec("matplotlib") is not None:
        assert png.stat().st_size > 10_000 and f"front written to {png}" in out
    else:
        assert not png.exists() and "install matplotlib" in out
    # Communities and Crime, when the data home has it: KS falls, RMSE rises.
    if "regression: ks_before" in results:
        assert results["regression: ks_after"] < 0.5 * results["regression: ks_before"]
        assert results["regression: rmse_after"] > results["regression: rmse_before"]
        assert "ridge + barycenter post-processing" in out
    else:
        assert "Regression (Communities and Crime): skipped" in out


@pytest.mark.slow
def test_demo_regression_part_runs_from_the_data_home(shared_data_home):
    res = _regression_part(seed=0)
    assert res is not None
    assert res["ks_before"] > 0.4 and res["ks_after"] < 0.25
    assert res["rmse_before"] < res["rmse_after"] < 0.3


def test_demo_regression_part_says_why_it_is_skipped(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FAIRJAX_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _regression_part(seed=0) is None
    assert "FAIRJAX_DATA_HOME" in capsys.readouterr().out


def test_an_unwritable_pareto_png_is_refused_before_any_training(monkeypatch, tmp_path, capsys):
    # The demo trains for about a minute; a path it cannot write is named before that, not
    # after. Loading the data is the demo's first step: reaching it fails the test.
    def no_training(*args, **kwargs):
        raise AssertionError("the demo started before checking --pareto-png")

    monkeypatch.setattr("fairjax.datasets.load_adult", no_training)
    before = np.get_printoptions()
    missing = tmp_path / "no such folder" / "front.png"
    assert cli.main(["demo", "--pareto-png", str(missing)]) == 2
    assert "--pareto-png" in capsys.readouterr().err
    assert cli.main(["demo", "--pareto-png", str(tmp_path)]) == 2
    assert "folder" in capsys.readouterr().err
    assert np.get_printoptions() == before  # the CLI leaves the caller's print options alone
    if pathlib.Path("/proc").is_dir():  # Linux: a folder that exists and takes no new file
        assert cli.main(["demo", "--pareto-png", "/proc/front.png"]) == 2
        assert "cannot write" in capsys.readouterr().err
    with pytest.raises(ValueError, match="`pareto_path`"):
        cli.demo(pareto_path=missing)
    with pytest.raises(ValueError, match="`path`"):
        cli.demo_pareto(path=tmp_path)
