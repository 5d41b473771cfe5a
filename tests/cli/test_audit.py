"""``fairjax audit``: the report against fairjax's metrics, the files it writes, its errors."""

import json

import numpy as np
import pytest

from fairjax import cli, groups, metrics

RESAMPLES = 50


def write_csv(path, header, rows):
    lines = [",".join(header)] + [",".join(str(x) for x in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 400
    race = rng.choice(["A", "B", "C"], n)
    sex = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    score = np.clip(0.4 * y + 0.2 * (race == "A") + rng.uniform(0, 0.5, n), 0, 1)
    pred = (score > 0.5).astype(int)
    return dict(y=y, score=score, pred=pred, race=race, sex=sex)


@pytest.fixture(scope="module")
def table(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "preds.csv"
    header = ["y_true", "y_pred", "score", "race", "sex"]
    rows = zip(data["y"], data["pred"], data["score"], data["race"], data["sex"], strict=True)
    return write_csv(path, header, rows)


@pytest.mark.slow
def test_report_matches_the_metrics(data, table):
    report = cli.audit(
        table, y_true="y_true", y_pred="y_pred", score="score", sensitive=["race"],
        num_resamples=RESAMPLES,
    )  # fmt: skip
    s = np.searchsorted(["A", "B", "C"], data["race"])
    expected = {
        "demographic_parity_difference": metrics.demographic_parity_difference(
            data["pred"], s, num_groups=3
        ),
        "equal_opportunity_difference": metrics.equal_opportunity_difference(
            data["y"], data["pred"], s, num_groups=3
        ),
        "equalized_odds_difference": metrics.equalized_odds_difference(
            data["y"], data["pred"], s, num_groups=3
        ),
        "ks_unfairness": metrics.ks_unfairness(data["score"], s, num_groups=3),
    }
    for name, value in expected.items():
        m = report["metrics"][name]
        np.testing.assert_allclose(m["estimate"], float(value), rtol=1e-5, atol=1e-6)
        assert m["lower"] <= m["estimate"] + 1e-6 and m["estimate"] <= m["upper"] + 1e-6
    assert [g["group"] for g in report["groups"]] == ["A", "B", "C"]
    assert sum(g["rows"] for g in report["groups"]) == report["n"] == 400
    rate_a = data["pred"][data["race"] == "A"].mean()
    np.testing.assert_allclose(report["groups"][0]["selection_rate"], rate_a, rtol=1e-5)


@pytest.mark.slow
def test_score_threshold_and_intersection(data, table):
    report = cli.audit(
        table, y_true="y_true", score="score", sensitive=["race", "sex"], threshold=0.5,
        num_resamples=RESAMPLES,
    )  # fmt: skip
    assert report["decisions"] == "score >= 0.5"
    s = groups.intersect(
        np.searchsorted(["A", "B", "C"], data["race"]), data["sex"], num_groups=(3, 2)
    )
    dp = metrics.demographic_parity_difference((data["score"] >= 0.5).astype(int), s, num_groups=6)
    np.testing.assert_allclose(
        report["metrics"]["demographic_parity_difference"]["estimate"], float(dp), rtol=1e-5
    )
    assert report["groups"][1]["group"] == "race=A & sex=1"


@pytest.mark.slow
def test_main_prints_and_writes_json_and_png(table, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "r.json", tmp_path / "cdf.png"
    argv = ["audit", str(table), "--y-true", "y_true", "--score", "score", "--sensitive", "race"]
    argv += ["--bootstrap", str(RESAMPLES), "--json", str(out_json), "--plot", str(out_png)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for text in ["overall", "demographic parity difference", "KS distance", "95% interval"]:
        assert text in out
    report = json.loads(out_json.read_text())
    assert set(report["metrics"]) >= {"demographic_parity_difference", "ks_unfairness"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_empty_label_group_is_reported_missing(tmp_path):
    rows = [(1, 1, 0), (0, 0, 0), (1, 1, 1), (1, 0, 1)]  # group 1 has no negatives
    path = write_csv(tmp_path / "t.csv", ["y", "p", "g"], rows)
    report = cli.audit(path, y_true="y", y_pred="p", sensitive=["g"], num_resamples=RESAMPLES)
    assert report["groups"][1]["fpr"] is None
    assert report["groups"][1]["tpr"] == 0.5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--y-true", "nope", "--y-pred", "y_pred", "--sensitive", "race"], "'nope' not in"),
        (["--y-true", "y_true", "--sensitive", "race"], "give --y-pred"),
        (["--y-true", "y_true", "--y-pred", "score", "--sensitive", "race"], "0/1 values"),
        (["--y-true", "race", "--y-pred", "y_pred", "--sensitive", "sex"], "must be numeric"),
        (["--y-true", "y_true", "--y-pred", "y_pred", "--sensitive", "race", "--plot", "x.png"],
         "needs --score"),
        (["--y-true", "y_true", "--y-pred", "y_true", "--sensitive", "race"], "two roles"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message(table, argv, message, capsys):
    assert cli.main(["audit", str(table), *argv, "--bootstrap", str(RESAMPLES)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairjax audit: error:") and message in err


def test_bad_files_exit_2(tmp_path, capsys):
    base = ["--y-true", "y", "--y-pred", "p", "--sensitive", "g"]
    missing = tmp_path / "missing.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("y,p,g\n1,0,0\n1,0\n")
    blank = write_csv(tmp_path / "blank.csv", ["y", "p", "g"], [(1, "", 0)])
    for path, message in [
        (missing, "no such file"),
        (empty, "is empty"),
        (ragged, "line 3"),
        (blank, "an empty cell"),
    ]:
        assert cli.main(["audit", str(path), *base]) == 2
        assert message in capsys.readouterr().err


def test_missing_required_option_is_an_argparse_error(table):
    with pytest.raises(SystemExit) as exc:
        cli.main(["audit", str(table), "--y-pred", "y_pred", "--sensitive", "race"])
    assert exc.value.code == 2


def test_parquet_is_read_or_refused_clearly(data, tmp_path, capsys):
    path = tmp_path / "preds.parquet"
    argv = ["audit", str(path), "--y-true", "y_true", "--y-pred", "y_pred", "--sensitive", "race"]
    argv += ["--bootstrap", str(RESAMPLES)]
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1")  # pandas or pyarrow missing: the message says what to install
        assert cli.main(argv) == 2
        assert "Parquet needs pandas and pyarrow" in capsys.readouterr().err
        return
    frame = pd.DataFrame({"y_true": data["y"], "y_pred": data["pred"], "race": data["race"]})
    frame.to_parquet(path)
    assert cli.main(argv) == 0
    assert "demographic parity difference" in capsys.readouterr().out
