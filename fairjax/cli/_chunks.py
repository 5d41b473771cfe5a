"""Reading a CSV or Parquet table in chunks of rows, for the streamed ``fairjax audit``.

A chunk maps each column to its values: a categorical column (sensitive attributes, labels,
decisions) as ``(texts, codes)``, its distinct cells as text and each row's index into them; a
numeric column (scores, weights) as a float64 array. Parquet is read with pyarrow (row batches
of the file's row groups); CSV with pyarrow's streaming reader when it is installed, else with
Python's ``csv`` module.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class ChunkError(ValueError):
    """A table that cannot be read (the audit turns it into its own error)."""


def _is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".pq"))


def total_rows(path: str) -> int | None:
    """The rows of a Parquet file (from its metadata), or None for CSV (unknown in advance)."""
    if not _is_parquet(path):
        return None
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def iter_chunks(
    path: str, categorical: Sequence[str], numeric: Sequence[str], chunk_rows: int
) -> Iterator[dict[str, Any]]:
    """Yields the table's chunks of at most ``chunk_rows`` rows (module docstring)."""
    if _is_parquet(path):
        yield from _arrow_chunks(_parquet_batches(path, [*categorical, *numeric], chunk_rows),
                                 categorical, numeric)  # fmt: skip
        return
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        yield from _csv_chunks(path, categorical, numeric, chunk_rows)
        return
    yield from _arrow_chunks(_csv_batches(path, [*categorical, *numeric], chunk_rows),
                             categorical, numeric)  # fmt: skip


def check_columns(header: Sequence[str], columns: Sequence[str], path: str) -> None:
    """Refuses a table whose ``header`` lacks some of ``columns``, naming them and the header."""
    missing = [c for c in columns if c not in header]
    if missing:
        raise ChunkError(
            f"column(s) {', '.join(repr(c) for c in missing)} not in {path}; "
            f"it has: {', '.join(header)}"
        )


def _check_text(cells: Sequence[str], path: str, line: int) -> None:
    """Refuses NUL characters: valid UTF-8, but the mark of UTF-16 text or a binary file."""
    if any("\x00" in cell for cell in cells):
        raise ChunkError(
            f"{path}, line {line}: a NUL character (UTF-16 text or a binary file?); "
            "save it as UTF-8 CSV"
        )


def _csv_header(reader, path: str) -> list[str]:
    """The stripped header of a ``csv.reader`` at the start of the file."""
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ChunkError(f"{path} is empty") from None
    except csv.Error as err:  # a cell over csv.field_size_limit(), a NUL byte
        raise ChunkError(f"{path}, line 1: {err}") from None
    _check_text(header, path, 1)
    return header


def csv_rows(path: str, columns: Sequence[str]) -> Iterator[list[str]]:
    """The stripped cells of ``columns`` in each non-empty row of a UTF-8 CSV file (csv
    module), checked: the header names the columns, every row has the header's number of
    fields, no NUL character, no cell over the csv module's limit, UTF-8 text."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = _csv_header(reader, path)
            check_columns(header, columns, path)
            index = [header.index(c) for c in columns]
            line = 1
            try:
                for line, row in enumerate(reader, start=2):
                    if not row:
                        continue
                    if len(row) != len(header):
                        raise ChunkError(
                            f"{path}, line {line}: {len(row)} fields, the header has {len(header)}"
                        )
                    cells = [row[i].strip() for i in index]
                    _check_text(cells, path, line)
                    yield cells
            except csv.Error as err:  # a cell over csv.field_size_limit(), a NUL byte
                raise ChunkError(f"{path}, line {line + 1}: {err}") from None
    except UnicodeDecodeError as err:
        raise ChunkError(
            f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8 CSV"
        ) from None


def _parquet_batches(path: str, columns: list[str], chunk_rows: int):
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ChunkError("reading Parquet in chunks needs pyarrow (pip install pyarrow)") from err
    try:
        f = pq.ParquetFile(path)
    except Exception as err:  # pyarrow's own errors: a damaged or non-Parquet file
        raise ChunkError(f"{path} is not a readable Parquet file: {err}") from None
    check_columns(f.schema_arrow.names, columns, path)
    yield from f.iter_batches(batch_size=chunk_rows, columns=columns)


def _csv_batches(path: str, columns: list[str], chunk_rows: int):
    """pyarrow's streaming CSV reader, every column read as text (the in-memory reading)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = _csv_header(csv.reader(fh), path)  # checked (a NUL, a cell over the limit)
        fh.seek(0)
        raw_header = next(csv.reader(fh))
    check_columns(header, columns, path)
    # pyarrow names the columns as the file spells them (" score"): ask for those, then name
    # them as stripped, as the other readers do.
    raw = [raw_header[header.index(c)] for c in columns]
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=max(1 << 20, 32 * chunk_rows)),
        convert_options=pcsv.ConvertOptions(
            include_columns=raw,
            column_types=dict.fromkeys(raw, pa.string()),
            strings_can_be_null=False,
        ),
    )
    for batch in reader:
        batch = pa.RecordBatch.from_arrays(batch.columns, names=list(columns))
        for start in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(start, chunk_rows)


def _arrow_chunks(batches, categorical: Sequence[str], numeric: Sequence[str]):
    import pyarrow as pa
    import pyarrow.compute as pc

    for batch in batches:
        out: dict[str, Any] = {}
        for c in categorical:
            col = batch.column(c)
            if pa.types.is_dictionary(col.type):  # a pandas categorical column
                col = col.dictionary_decode()
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                col = pc.utf8_trim_whitespace(col)
            enc = col.dictionary_encode(null_encoding="encode")
            texts = ["" if t is None else str(t) for t in enc.dictionary.to_pylist()]
            out[c] = (texts, np.asarray(enc.indices, np.int64))
        for c in numeric:
            col = batch.column(c)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                try:
                    col = pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
                except pa.ArrowInvalid as err:
                    raise ChunkError(f"column {c!r} must be numeric: {err}") from None
            out[c] = np.asarray(col.to_numpy(zero_copy_only=False), np.float64)
        yield out


def _csv_chunks(path: str, categorical: Sequence[str], numeric: Sequence[str], chunk_rows: int):
    """The csv-module reader (no pyarrow): chunks of text cells, coded here."""
    rows: list[list[str]] = []
    for cells in csv_rows(path, [*categorical, *numeric]):
        rows.append(cells)
        if len(rows) == chunk_rows:
            yield _code_rows(rows, categorical, numeric)
            rows = []
    if rows:
        yield _code_rows(rows, categorical, numeric)


def _code_rows(rows: list[list[str]], categorical: Sequence[str], numeric: Sequence[str]):
    cells = np.asarray(rows, dtype=object)
    out: dict[str, Any] = {}
    for j, c in enumerate(categorical):
        texts, first, codes = np.unique(
            cells[:, j].astype(str), return_index=True, return_inverse=True
        )
        order = np.argsort(first)  # the texts in the order they first occur, as pyarrow's
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        out[c] = ([str(t) for t in texts[order]], rank[codes].astype(np.int64))
    for j, c in enumerate(numeric, start=len(categorical)):
        try:
            out[c] = cells[:, j].astype(np.float64)
        except ValueError as err:
            raise ChunkError(f"column {c!r} must be numeric: {err}") from None
    return out


class Progress:
    """A progress bar on stderr (only when it is a terminal, or when forced)."""

    def __init__(self, total: int | None, *, enabled: bool | None = None):
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.passes, self.last = 0, 0.0

    def start_pass(self) -> None:
        self.passes += 1

    def update(self, rows: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.2 and not final):
            return
        self.last = now
        head = f"\rfairjax audit: pass {self.passes} "
        if self.total:
            done = min(1.0, rows / self.total)
            bar = "#" * int(30 * done) + "." * (30 - int(30 * done))
            text = f"[{bar}] {rows:,}/{self.total:,} rows"
        else:
            text = f"{rows:,} rows"
        print(head + text, end="\n" if final else "", file=sys.stderr, flush=True)
