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


def test_the_header_names_the_decisions_column(table, capsys):
    argv = ["audit", str(table), "--y-true", "y_true", "--y-pred", "y_pred", "--sensitive", "race"]
    assert cli.main([*argv, "--bootstrap", "0"]) == 0
    # It said "decisions: y_pred", the option's name, whatever the column was called.
    assert "; decisions: column y_pred)" in capsys.readouterr().out.splitlines()[0]


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
        cli.main(["audit", str(table), "--y-true", "y_true", "--y-pred", "y_pred"])
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


@pytest.mark.parametrize("missing", ["string NA", "NaT"])
@pytest.mark.parametrize("chunk_size", [None, 64])
def test_parquet_missing_sensitive_cell_is_refused_not_a_group(tmp_path, missing, chunk_size):
    # pd.NA and NaT have a text form ("<NA>", "NaT"): read as text, they made a group of
    # their own, whose one row set the demographic parity difference to 1.
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    if missing == "NaT":
        column = pd.Series(pd.to_datetime(["2020-01-01", "2021-01-01"] * 50 + [None]))
    else:
        column = pd.array(["F", "M"] * 50 + [None], dtype="string")
    path = tmp_path / "na.parquet"
    pd.DataFrame({"sex": column, "pred": [0, 1] * 50 + [1]}).to_parquet(path)
    with pytest.raises(cli.AuditError, match="empty cell"):
        cli.audit(path, y_pred="pred", sensitive=["sex"], num_resamples=0, chunk_size=chunk_size)


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


# ----------------------------------------------------------------------------- issue 24, 11-12


@pytest.fixture(scope="module")
def tiny_groups(tmp_path_factory):
    """Synthetic predictions with two groups of 4 and 2 rows among 400 (race C)."""
    rng = np.random.default_rng(3)
    n = 400
    race = np.r_[rng.choice(["A", "B"], n - 6), ["C"] * 6]
    sex = np.r_[rng.choice(["F", "M"], n - 6), ["F"] * 4, ["M"] * 2]
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(0.3 * y + 0.2 * (race == "A") + rng.uniform(0, 0.6, n), 0, 1), 4)
    pred = (score >= 0.5).astype(int)
    yes = np.where(y == 1, "yes", "no")
    path = tmp_path_factory.mktemp("tiny") / "tiny.csv"
    header = ["y", "p", "score", "race", "sex", "label", "decision"]
    rows = zip(y, pred, score, race, sex, yes, np.where(pred == 1, "yes", "no"), strict=True)
    return write_csv(path, header, rows), dict(y=y, pred=pred, race=race, sex=sex)


TINY = ["--sensitive", "race", "--sensitive", "sex", "--score", "score"]


@pytest.mark.slow
def test_small_groups_warn_and_each_gap_names_its_pair(tiny_groups, tmp_path, capsys):
    path, d = tiny_groups
    out_json = tmp_path / "r.json"
    argv = ["audit", str(path), "--y-true", "y", *TINY, "--bootstrap", str(RESAMPLES)]
    assert cli.main([*argv, "--json", str(out_json)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the warning is wrapped
    assert "warning: 2 of 6 groups have fewer than 30 rows" in out
    assert "race=C & sex=F: 4" in out and "race=C & sex=M: 2" in out
    assert "race=C & sex=M*" in out  # marked in the tables
    assert "value [95% interval]" in out  # the interval beside each headline value
    report = json.loads(out_json.read_text())
    assert report["small_groups"] == ["race=C & sex=F", "race=C & sex=M"]
    assert report["min_group_size"] == 30
    # The pair behind the demographic parity difference, from the decisions by hand.
    names = [f"race={r} & sex={x}" for r in "ABC" for x in "FM"]
    rates = [d["pred"][(d["race"] == r) & (d["sex"] == x)].mean() for r in "ABC" for x in "FM"]
    lo, hi = names[int(np.argmin(rates))], names[5 - int(np.argmax(rates[::-1]))]
    assert report["metrics"]["demographic_parity_difference"]["between"] == [lo, hi]
    assert f"{lo}* vs {hi}" in out or f"{lo} vs {hi}" in out
    for m in report["metrics"].values():
        assert len(m["between"]) == 2 and m["lower"] <= m["estimate"] <= m["upper"]
    assert report["metrics"]["equalized_odds_difference"]["rate"] in ("tpr", "fpr")
    # The JSON says what computed it, and its numbers carry no float32 noise.
    import jax

    assert report["versions"]["jax"] == jax.__version__
    assert set(report["versions"]) == {"fairjax", "jax", "numpy", "python"}
    assert report["precision"] == "float32"
    for m in report["metrics"].values():
        for x in (m["estimate"], m["lower"], m["upper"]):
            assert x == float(np.format_float_positional(np.float32(x), unique=True))
    # --min-group-size 0 lists no group; --bootstrap 0 shows no interval.
    assert cli.main([*argv, "--min-group-size", "0"]) == 0
    assert "warning" not in capsys.readouterr().out
    assert cli.main([*argv[:-2], "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "no bootstrap" in out and "interval]" not in out


@pytest.mark.slow
def test_label_free_audit_and_pos_label(tiny_groups, capsys):
    path, _ = tiny_groups
    base = ["audit", str(path), *TINY, "--bootstrap", "0"]
    # No --y-true: the label metrics are left out, and the report says so.
    report = cli.audit(path, y_pred="p", sensitive=["race", "sex"], num_resamples=0)
    assert report["omitted"] == ["equal_opportunity_difference", "equalized_odds_difference"]
    assert set(report["metrics"]) == {"demographic_parity_difference", "demographic_parity_ratio"}
    assert cli.main([*base, "--y-pred", "p"]) == 0
    out = capsys.readouterr().out
    assert "No --y-true" in out and "TPR" not in out.split("Fairness")[0]
    # "yes"/"no" with --pos-label give the report of the 0/1 columns.
    coded = cli.audit(path, y_true="y", y_pred="p", sensitive="race", num_resamples=0)
    named = cli.audit(
        path, y_true="label", y_pred="decision", pos_label="yes", sensitive="race",
        num_resamples=0,
    )  # fmt: skip
    assert named["metrics"] == coded["metrics"] and named["groups"] == coded["groups"]
    assert named["pos_label"] == "yes"


def test_pos_label_errors_name_the_column(tmp_path):
    rows = [("yes", "no", "no", "a"), ("no", "maybe", "yes", "b"), ("no", "yes", "no", "a")]
    path = write_csv(tmp_path / "t.csv", ["y", "p", "q", "g"], rows)
    with pytest.raises(cli.AuditError, match=r"'p' \(decisions\) holds 3 distinct values"):
        cli.audit(path, y_true="y", y_pred="p", sensitive="g", pos_label="yes")
    with pytest.raises(cli.AuditError, match=r"--pos-label 'Yes' is not a value of column 'y'"):
        cli.audit(path, y_true="y", y_pred="q", sensitive="g", pos_label="Yes")
    with pytest.raises(
        cli.AuditError, match=r"row 1 holds 'yes' \(for other labels, .* --pos-label\)"
    ):
        cli.audit(path, y_true="y", y_pred="q", sensitive="g")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_resamples": 1}, "--bootstrap must be 0"),
        ({"num_resamples": -1}, "--bootstrap must be an integer >= 0"),
        ({"min_group_size": -1}, "--min-group-size must be an integer >= 0"),
        ({"min_group_size": 2.5}, "--min-group-size"),
        ({"pos_label": 1}, "--pos-label must be"),
    ],
)
def test_new_options_are_checked(tmp_path, options, message):
    path = write_csv(tmp_path / "t.csv", ["y", "p", "g"], [(1, 1, 0), (0, 0, 1)])
    with pytest.raises(cli.AuditError, match=message):
        cli.audit(path, y_true="y", y_pred="p", sensitive="g", **options)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_audit_equals_in_memory(tmp_path, suffix):
    """--chunk-size: the same report as the whole-table reading (float rounding aside), for
    string and numeric sensitive columns, ties in the scores, weights, chunk sizes."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from tests.metrics.test_streaming import assert_same_report

    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame({
        "score": np.round(rng.random(n), 2),
        "label": rng.choice(["yes", "no"], n),
        "race": rng.choice(["a", "b", "c"], n),
        "sex": rng.choice([1, 2], n),
        "w": rng.random(n),
    })  # fmt: skip
    path = tmp_path / f"t{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    base = dict(sensitive=["race", "sex"], y_true="label", score="score", weight="w",
                pos_label="yes", num_resamples=0)  # fmt: skip
    in_memory = cli.audit(path, **base)
    for size in (97, 10_000):
        streamed = cli.audit(path, chunk_size=size, **base)
        assert_same_report(streamed, in_memory)
        assert streamed["bootstrap"]["chunk_size"] == size


def test_streamed_audit_reads_a_header_padded_with_spaces(tmp_path):
    # The column check strips the header; pyarrow's reader was asked for the stripped name
    # and raised its own KeyError.
    pytest.importorskip("pyarrow")
    path = tmp_path / "pad.csv"
    rows = "".join(f"{'FM'[i % 2]}, {i / 100:.2f}, {i % 2}\n" for i in range(60))
    path.write_text("sex, score ,  pred\n" + rows)
    base = dict(sensitive=["sex"], score="score", y_pred="pred", num_resamples=0)
    in_memory = cli.audit(path, **base)
    streamed = cli.audit(path, chunk_size=16, **base)
    assert streamed["metrics"] == in_memory["metrics"]
    assert streamed["groups"] == in_memory["groups"]


def test_streamed_audit_command_and_bad_chunk_size(table, capsys):
    argv = ["audit", str(table), "--y-true", "y_true", "--y-pred", "y_pred", "--sensitive"]
    assert cli.main([*argv, "race", "--chunk-size", "50", "--bootstrap", "20"]) == 0
    assert "demographic parity difference" in capsys.readouterr().out
    assert cli.main(["audit", str(table), "--y-pred", "y_pred", "--sensitive", "race",
                 "--chunk-size", "0"]) == 2  # fmt: skip
    assert "--chunk-size must be a positive" in capsys.readouterr().err


# ----------------------------------------------------------------------------- --criteria


@pytest.mark.slow  # compiles the report's program for a new shape (~5 s on a busy CPU)
def test_criteria_flag_json_keys_values_and_streamed(data, table, tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["audit", str(table), "--y-true", "y_true", "--y-pred", "y_pred", "--sensitive", "race"]
    assert cli.main([*argv, "--criteria", "predictive_parity,treatment_equality",
                     "--bootstrap", "20", "--json", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "predictive parity (PPV) difference" in printed and "FN/FP" in printed
    report = json.loads(out.read_text())
    assert list(report["metrics"]) == [
        "demographic_parity_difference", "demographic_parity_ratio",
        "equal_opportunity_difference", "equalized_odds_difference",
        "predictive_parity_difference", "treatment_equality_difference",
    ]  # fmt: skip
    assert {"ppv", "fn_fp_ratio"} <= set(report["groups"][0]) and "fnr" not in report["groups"][0]
    s = np.searchsorted(["A", "B", "C"], data["race"])
    for name, metric in (
        ("predictive_parity_difference", metrics.predictive_parity_difference),
        ("treatment_equality_difference", metrics.treatment_equality_difference),
    ):
        want = metric(data["y"], data["pred"], s, num_groups=3)
        np.testing.assert_allclose(report["metrics"][name]["estimate"], float(want), rtol=1e-6)
    a = data["race"] == "A"
    ppv_a = data["y"][a & (data["pred"] == 1)].mean()
    np.testing.assert_allclose(report["groups"][0]["ppv"], ppv_a, rtol=1e-6)
    # All of them, streamed in chunks: the same estimates and pairs as in memory.
    kw = dict(y_true="y_true", y_pred="y_pred", sensitive="race", num_resamples=0)
    in_memory = cli.audit(table, criteria="all", **kw)
    streamed = cli.audit(table, criteria="all", chunk_size=70, **kw)
    assert streamed["metrics"].keys() == in_memory["metrics"].keys()
    assert len(in_memory["metrics"]) == 10
    for k, m in streamed["metrics"].items():
        np.testing.assert_allclose(m["estimate"], in_memory["metrics"][k]["estimate"], rtol=1e-5)
        assert m["between"] == in_memory["metrics"][k]["between"]


def test_criteria_flag_errors(table, capsys):
    argv = ["audit", str(table), "--y-pred", "y_pred", "--sensitive", "race"]
    assert cli.main([*argv, "--criteria", "all"]) == 2
    assert "--criteria compares rates of labels: it needs --y-true" in capsys.readouterr().err
    assert cli.main([*argv, "--y-true", "y_true", "--criteria", "ppv"]) == 2
    assert "`criteria` must hold names of" in capsys.readouterr().err
    with pytest.raises(cli.AuditError, match="criterion names"):
        cli.audit(table, y_true="y_true", y_pred="y_pred", sensitive="race", criteria=[1])


# ----------------------------------------------------------------------------- --task regression


@pytest.fixture(scope="module")
def regression_table(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 300
    region = rng.choice(["north", "south", "west"], n)
    target = np.round(rng.normal(size=n) * 10 + 50, 2)
    noise = np.where(region == "south", 6.0, 2.0)
    pred = np.round(target + rng.normal(size=n) * noise, 2)
    w = np.round(rng.uniform(0.5, 2.0, n), 3)
    path = tmp_path_factory.mktemp("audit") / "regression.csv"
    write_csv(
        path, ["income", "predicted", "region", "w"], zip(target, pred, region, w, strict=True)
    )
    return path, dict(target=target, pred=pred, region=region, w=w)


@pytest.mark.slow  # compiles the regression report and its bootstrap (~5 s on a busy CPU)
def test_regression_audit_of_a_csv(regression_table, tmp_path, capsys):
    path, d = regression_table
    out = tmp_path / "r.json"
    argv = ["audit", str(path), "--task", "regression", "--y-true", "income", "--y-pred",
            "predicted", "--sensitive", "region", "--weight", "w", "--bootstrap", "30"]  # fmt: skip
    assert cli.main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "regression of income by predicted" in printed and "worst group's RMSE" in printed
    report = json.loads(out.read_text())
    assert report["task"] == "regression" and "decisions" not in report
    assert list(report["metrics"]) == [
        "worst_group_mae", "mae_difference", "worst_group_rmse", "rmse_difference",
        "ks_unfairness", "wasserstein_unfairness",
    ]  # fmt: skip
    assert set(report["groups"][0]) == {
        "group", "rows", "count", "mean_target", "mean_prediction", "mae", "rmse"
    }  # fmt: skip
    s = np.searchsorted(["north", "south", "west"], d["region"])
    kw = dict(num_groups=3, weights=d["w"])
    y, p = d["target"], d["pred"]
    expected = {
        "worst_group_mae": metrics.worst_group_loss(y, p, s, loss="absolute", **kw),
        "mae_difference": metrics.group_loss_difference(y, p, s, loss="absolute", **kw),
        "worst_group_rmse": np.sqrt(metrics.worst_group_loss(y, p, s, **kw)),
        "ks_unfairness": metrics.ks_unfairness(p, s, **kw),
        "wasserstein_unfairness": metrics.wasserstein_unfairness(p, s, reference="pairwise", **kw),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(report["metrics"][name]["estimate"], float(value), rtol=1e-5)
    table = metrics.by_group(y, p, s, task="regression", **kw)
    for g, row in enumerate(report["groups"]):
        np.testing.assert_allclose(row["rmse"], float(table["rmse"][g]), rtol=1e-5)
    assert report["metrics"]["worst_group_rmse"]["group"] == "south"  # the noisiest predictions
    pytest.importorskip("matplotlib")
    assert cli.main([*argv, "--bootstrap", "0", "--plot", str(tmp_path / "cdf.png")]) == 0
    assert (tmp_path / "cdf.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--y-true", "income"], "--task regression needs --y-true"),
        (["--y-true", "income", "--y-pred", "predicted", "--chunk-size", "10"],
         "does not take --chunk-size"),
        (["--y-true", "income", "--y-pred", "predicted", "--score", "w"],
         "does not take --score"),
        (["--y-true", "income", "--y-pred", "predicted", "--criteria", "all"],
         "does not take --criteria"),
    ],
)  # fmt: skip
def test_regression_audit_errors(regression_table, extra, message, capsys):
    path, _ = regression_table
    argv = ["audit", str(path), "--task", "regression", "--sensitive", "region", *extra]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_numeric_target_without_task_regression_is_pointed_to_it(regression_table, capsys):
    path, _ = regression_table
    argv = ["audit", str(path), "--y-true", "income", "--y-pred", "predicted", "--sensitive"]
    assert cli.main([*argv, "region"]) == 2
    assert "--task regression" in capsys.readouterr().err


def test_outputs_never_replace_the_input_or_an_existing_file(tmp_path, capsys):
    # Checked before the audit runs: nothing a user saved is lost or silently changed.
    rows = [(1, 0.9, "a"), (0, 0.2, "b"), (1, 0.7, "a"), (0, 0.4, "b")]
    path = write_csv(tmp_path / "in.csv", ["y", "score", "g"], rows)
    before = path.read_text()
    argv = ["audit", str(path), "--y-true", "y", "--score", "score", "--sensitive", "g"]
    argv += ["--bootstrap", "0"]
    out = tmp_path / "r.json"
    cases = [
        (["--json", str(path)], "is the input file"),
        (["--json", str(out), "--plot", str(out)], "is also the --json path"),
        (["--json", str(tmp_path)], "is a folder"),
        (["--json", str(tmp_path / "no" / "r.json")], "its folder does not exist"),
    ]
    for extra, message in cases:
        assert cli.main([*argv, *extra]) == 2
        assert message in capsys.readouterr().err
    assert path.read_text() == before
    assert cli.main([*argv, "--json", str(out)]) == 0
    out.write_text("kept")
    assert cli.main([*argv, "--json", str(out)]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "kept"
    assert cli.main([*argv, "--json", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["n"] == 4


def test_a_single_group_is_not_reported_as_fair_without_a_warning(tmp_path, capsys):
    rows = [(1, 0.9, "a"), (0, 0.2, "a"), (1, 0.7, "a"), (0, 0.4, "a")]
    path = write_csv(tmp_path / "one.csv", ["y", "score", "g"], rows)
    argv = ["audit", str(path), "--y-true", "y", "--score", "score", "--sensitive", "g"]
    assert cli.main([*argv, "--bootstrap", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "only 1 group has rows (a)" in out and "not evidence of fairness" in out


def test_a_gap_without_a_pair_of_groups_is_flagged_as_a_convention(tmp_path, capsys):
    # Group b has no positive label: no TPR to compare, and the equal opportunity difference
    # printed 0.0000 with no word (the one-group case warns).
    rng = np.random.default_rng(0)
    n = 200
    g = np.array(["a", "b"])[rng.integers(0, 2, n)]
    y = np.where(g == "b", 0, rng.integers(0, 2, n))
    p = rng.integers(0, 2, n)
    path = tmp_path / "eo.csv"
    path.write_text("g,y,p\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(g, y, p, strict=True)))
    assert cli.main(["audit", str(path), "--sensitive", "g", "--y-true", "y", "--y-pred", "p",
                     "--bootstrap", "0"]) == 0  # fmt: skip
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: equal opportunity difference: fewer than two groups have the rate's" in out
    assert "equalized odds difference:" not in out  # its FPR has a pair


@pytest.mark.parametrize("chunk_size", [None, 64])
def test_a_bad_cell_is_named_by_its_file_row_streamed_too(tmp_path, chunk_size):
    # Streamed, the row was the cell's position among the distinct values ("row 3").
    pytest.importorskip("pyarrow")
    path = tmp_path / "rows.csv"
    cells = ["" if i == 150 else "FM"[i % 2] for i in range(300)]
    path.write_text("s,y,p\n" + "".join(f"{c},{i % 2},1\n" for i, c in enumerate(cells)))
    with pytest.raises(cli.AuditError, match=r"empty cell in row 151$"):
        cli.audit(path, sensitive=["s"], y_pred="p", num_resamples=0, chunk_size=chunk_size)
    labels = [str(i % 2) if i != 200 else "7" for i in range(300)]
    path.write_text("s,y,p\n" + "".join(f"{'FM'[i % 2]},{y},1\n" for i, y in enumerate(labels)))
    with pytest.raises(cli.AuditError, match="row 201 holds '7'"):
        cli.audit(path, sensitive=["s"], y_true="y", y_pred="p", num_resamples=0,
                  chunk_size=chunk_size)  # fmt: skip


def test_streamed_parquet_reads_a_categorical_column(tmp_path):
    # A pandas categorical is a dictionary column in Parquet: dictionary_encode() of it raised
    # a TypeError in the streamed reading.
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "cat.parquet"
    pd.DataFrame({"sex": pd.Categorical(["F", "M", "M"] * 40), "pred": [0, 1, 1] * 40}).to_parquet(
        path
    )
    base = dict(sensitive=["sex"], y_pred="pred", num_resamples=0)
    streamed, in_memory = cli.audit(path, chunk_size=32, **base), cli.audit(path, **base)
    assert streamed["groups"] == in_memory["groups"]
    assert streamed["metrics"] == in_memory["metrics"]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_dash_in_the_group_table_is_explained(tmp_path, capsys, task):
    # Group b's rows all have weight 0: its cells read '-', and the regression table (and the
    # label-free classification table) printed them without a word.
    rows = [
        ("a", 1, 1, 1.0),
        ("a", 0, 1, 1.0),
        ("a", 1, 0, 2.0),
        ("b", 1, 1, 0.0),
        ("b", 0, 0, 0.0),
    ]
    path = write_csv(tmp_path / "w.csv", ["g", "y", "p", "w"], rows)
    argv = ["audit", str(path), "--sensitive", "g", "--y-pred", "p", "--weight", "w"]
    if task == "regression":
        argv += ["--task", "regression", "--y-true", "y"]
    assert cli.main([*argv, "--bootstrap", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert " - " in out
    assert "'-': the group has no row of positive weight" in out or (
        task == "classification" and "'-': a rate over an empty set" in out
    )
