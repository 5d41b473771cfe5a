"""The chunked reading of ``fairjax audit --chunk-size`` (``fairjax/cli/_chunks.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from fairjax.cli import _chunks
from tests.cli.test_audit import _bad_text_files


def _plain_chunks(path, categorical, numeric, chunk_rows):
    """The csv-module reading, the one used where pyarrow is not installed."""
    return list(_chunks._csv_chunks(str(path), categorical, numeric, chunk_rows))


def test_csv_module_chunks_equal_pyarrow_chunks(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.csv"
    path.write_text("g,y,x\n a,1,0.5\nb,0,1.5\n\na,1,2\nc , 0,-1\nb,1,3\n")
    arrow = list(_chunks.iter_chunks(str(path), ["g", "y"], ["x"], 2))
    plain = _plain_chunks(path, ["g", "y"], ["x"], 2)
    assert len(plain) == len(arrow) == 3
    for p, a in zip(plain, arrow, strict=True):
        for c in ("g", "y"):
            assert p[c][0] == a[c][0]
            np.testing.assert_array_equal(p[c][1], a[c][1])
        np.testing.assert_array_equal(p["x"], a["x"])
    assert plain[0]["g"][0] == ["a", "b"] and plain[2]["g"][0] == ["b"]


@pytest.mark.parametrize(
    "name",
    ["latin-1", "utf-16", "utf-16-le", "huge-cell", "huge-unread-cell", "huge-header", "nul-byte"],
)
def test_csv_module_chunks_refuse_what_the_whole_table_reading_refuses(tmp_path, name):
    path, message = _bad_text_files(tmp_path)[name]
    with pytest.raises(_chunks.ChunkError, match=message):
        _plain_chunks(path, ["g"], [], 1)


def test_csv_module_chunks_name_a_missing_column_and_a_ragged_line(tmp_path):
    empty, ragged = tmp_path / "empty.csv", tmp_path / "ragged.csv"
    empty.write_text("")
    ragged.write_text("y,p,g\n1,0,0\n1,0\n")
    with pytest.raises(_chunks.ChunkError, match="is empty"):
        _plain_chunks(empty, ["g"], [], 1)
    with pytest.raises(_chunks.ChunkError, match=r"'q' not in .*it has: y, p, g"):
        _plain_chunks(ragged, ["q"], [], 1)
    with pytest.raises(_chunks.ChunkError, match="line 3: 2 fields, the header has 3"):
        _plain_chunks(ragged, ["g"], [], 1)
