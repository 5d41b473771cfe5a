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


# ----------------------------------------------------------------------------- issue 18.14

BASE = ["--y-true", "y", "--y-pred", "p", "--sensitive", "g"]


def _bad_text_files(tmp_path):
    """Files the csv module cannot read as UTF-8 text: each must exit 2 with a message."""
    files = {
        "latin-1": ("y,p,g\n1,0,caf\u00e9\n0,1,the\n".encode("latin-1"), "not UTF-8"),
        "utf-16": ("y,p,g\n1,0,a\n0,1,b\n".encode("utf-16"), "not UTF-8"),
        "utf-16-le": ("y,p,g\n1,0,a\n0,1,b\n".encode("utf-16-le"), "line 1"),
        "huge-cell": (b"y,p,g\n1,0," + b"a" * 131_073 + b"\n0,1,b\n", "line 2"),
        "huge-unread-cell": (b"y,p,g,x\n1,0,a,b\n0,1,b," + b"x" * 200_000 + b"\n", "line 3"),
        "huge-header": (b"y,p,g," + b"h" * 131_073 + b"\n1,0,a,b\n", "line 1"),
        "nul-byte": (b"y,p,g\n1,0,a\x00\n0,1,b\n", "line 2"),
    }
    out = {}
    for name, (raw, message) in files.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(raw)
        out[name] = (path, message)
    return out


@pytest.mark.parametrize(
    "name",
    ["latin-1", "utf-16", "utf-16-le", "huge-cell", "huge-unread-cell", "huge-header", "nul-byte"],
)
def test_unreadable_text_exits_2_with_a_message(tmp_path, capsys, name):
    path, message = _bad_text_files(tmp_path)[name]
    assert cli.main(["audit", str(path), *BASE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairjax audit: error:") and message in err, err
    assert "Traceback" not in err
    with pytest.raises(cli.AuditError, match=message):  # the Python entry point: same error
        cli.audit(path, y_true="y", y_pred="p", sensitive=["g"])


def test_a_damaged_parquet_file_exits_2(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 not really parquet PAR1")
    assert cli.main(["audit", str(path), *BASE]) == 2
    assert "not a readable Parquet file" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_a_non_finite_threshold_exits_2(table, capsys, value):
    argv = ["audit", str(table), "--y-true", "y_true", "--score", "score", "--sensitive", "race"]
    assert cli.main([*argv, f"--threshold={value}"]) == 2
    assert "--threshold must be a finite number" in capsys.readouterr().err
    with pytest.raises(cli.AuditError, match="finite"):
        cli.audit(table, y_true="y_true", score="score", sensitive=["race"],
                  threshold=float(value))  # fmt: skip


def test_numeric_sensitive_values_are_grouped_as_numbers():
    from fairjax.cli._audit import _categories

    ids, names = _categories(["1", "1.0", "2", "02", "10", "1e0", " 3"], "g")
    assert names == ["1", "2", " 3", "10"]  # sorted as numbers, named by the first spelling
    assert ids.tolist() == [0, 0, 1, 1, 3, 0, 2]
    ids, names = _categories(["b", "1", "1.0", "a"], "g")  # not all numbers: strings
    assert names == ["1", "1.0", "a", "b"] and ids.tolist() == [3, 0, 1, 2]
    with pytest.raises(cli.AuditError, match=r"missing value \('nan'\) in row 2"):
        _categories(["1", "nan", "2"], "g")


@pytest.mark.slow
def test_one_and_one_point_zero_are_one_group_in_the_report(tmp_path):
    rows = [(1, 1, "1"), (0, 0, "1.0"), (1, 0, "2"), (0, 1, "2.0")]
    path = write_csv(tmp_path / "t.csv", ["y", "p", "g"], rows)
    report = cli.audit(path, y_true="y", y_pred="p", sensitive=["g"], num_resamples=2)
    assert [(g["group"], g["rows"]) for g in report["groups"]] == [("1", 2), ("2", 2)]


def test_a_string_sensitive_is_read_as_one_column(tmp_path):
    """``sensitive="sw"`` names the column ``sw`` (it was split into ``s`` and ``w``)."""
    path = write_csv(tmp_path / "t.csv", ["y", "p", "sw"], [(1, 2, "a"), (0, 0, "b")])
    with pytest.raises(cli.AuditError, match=r"'p' .* 0/1 values"):  # read past the columns
        cli.audit(path, y_true="y", y_pred="p", sensitive="sw")


@pytest.mark.slow
def test_a_string_sensitive_is_one_column(tmp_path):
    """``sensitive="sw"`` is the column ``sw``, not the columns ``s`` and ``w``."""
    rows = [(1, 1, "a", 0, 1), (0, 0, "a", 1, 0), (1, 0, "b", 0, 0), (0, 1, "b", 1, 1)]
    path = write_csv(tmp_path / "t.csv", ["y", "p", "sw", "s", "w"], rows)
    report = cli.audit(path, y_true="y", y_pred="p", sensitive="sw", num_resamples=2)
    assert report["columns"]["sensitive"] == ["sw"]
    assert [g["group"] for g in report["groups"]] == ["a", "b"]


@pytest.mark.parametrize(
    "options",
    [
        {"sensitive": [1]},
        {"sensitive": ["g", None]},
        {"y_true": 0},
        {"y_pred": ["p"]},
        {"num_resamples": 2.5},
        {"num_resamples": True},
        {"confidence_level": float("nan")},
        {"confidence_level": "0.9"},
        {"threshold": "0.5"},
    ],
)
def test_options_of_the_wrong_type_are_refused(tmp_path, options):
    path = write_csv(tmp_path / "t.csv", ["y", "p", "g"], [(1, 1, 0), (0, 0, 1)])
    kw = {"y_true": "y", "y_pred": "p", "sensitive": ["g"]} | options
    with pytest.raises(cli.AuditError):
        cli.audit(path, **kw)


def test_the_intersection_holds_only_the_combinations_that_occur():
    from fairjax.cli._audit import _sensitive_groups

    n = 600
    table = {"a": [str(i) for i in range(n)], "b": [str(i % 500) for i in range(n)]}
    s, num, names = _sensitive_groups(table, ["a", "b"])
    assert num == n and sorted(set(s.tolist())) == list(range(n))  # not 600 x 500 groups
    assert names[0] == "a=0 & b=0" and names[int(s[599])] == "a=599 & b=99"
