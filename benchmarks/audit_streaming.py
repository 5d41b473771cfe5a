"""Streamed ``fairjax audit --chunk-size`` on a generated Parquet file: peak memory and time.

Writes a Parquet file of ``--rows`` rows (score, label, two sensitive columns) in chunks into a
temporary directory, runs ``fairjax audit FILE --chunk-size ROWS`` under ``/usr/bin/time -v``
(Linux) and prints its wall time and peak resident memory; with ``--compare``, also the
in-memory ``fairjax.cli.audit`` on the same file and the largest difference of the two
reports' numbers (estimates and table; intervals are different bootstraps). Deletes the file.

    python benchmarks/audit_streaming.py --rows 10000000 --compare
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_parquet(path: str, rows: int, chunk: int = 2_000_000, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        a = rng.integers(0, 3, n).astype(np.int8)
        b = rng.integers(0, 2, n).astype(np.int8)
        score = (1 / (1 + np.exp(-(rng.normal(size=n) + 0.2 * a - 0.1 * b)))).astype(np.float32)
        label = (rng.random(n) < score).astype(np.int8)
        table = pa.table({"score": score, "label": label, "region": a, "sex": b})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1_000_000)
    writer.close()


def numbers(report: dict) -> dict[str, float]:
    out = {}
    for r in [report["overall"], *report["groups"]]:
        for k, v in r.items():
            if isinstance(v, float):
                out[f"{r['group']}.{k}"] = v
    for k, m in report["metrics"].items():
        out[k] = m["estimate"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--chunk-size", type=int, default=1_000_000)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--compare", action="store_true", help="also run the in-memory audit")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "predictions.parquet")
        t = time.perf_counter()
        write_parquet(path, args.rows)
        print(f"wrote {args.rows:,} rows ({os.path.getsize(path) / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.0f} s")  # fmt: skip
        out = os.path.join(tmp, "streamed.json")
        cmd = [sys.executable, "-m", "fairjax", "audit", path, "--y-true", "label",
               "--score", "score", "--sensitive", "region", "--sensitive", "sex",
               "--chunk-size", str(args.chunk_size), "--bootstrap", str(args.bootstrap),
               "--json", out]  # fmt: skip
        run = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
        if run.returncode:
            sys.exit(run.stdout + run.stderr)
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)[1])
        wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", run.stderr)[1]
        print(run.stdout)
        print(
            f"streamed audit, {args.rows:,} rows, chunks of {args.chunk_size:,}, "
            f"{args.bootstrap} resamples: wall {wall}, peak RSS {rss / 2**20:.2f} GiB"
        )
        if args.compare:
            from fairjax.cli import audit

            t = time.perf_counter()
            in_memory = audit(path, y_true="label", score="score", sensitive=["region", "sex"],
                              num_resamples=0)  # fmt: skip
            print(f"in-memory audit (no bootstrap): {time.perf_counter() - t:.0f} s")
            with open(out) as fh:
                streamed = json.load(fh)
            a, b = numbers(streamed), numbers(in_memory)
            assert a.keys() == b.keys()
            worst = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in a)
            pairs = all(
                streamed["metrics"][k]["between"] == m["between"]
                for k, m in in_memory["metrics"].items()
            )
            print(f"largest relative difference of {len(a)} numbers: {worst:.2e}; "
                  f"same pairs of groups: {pairs}")  # fmt: skip


if __name__ == "__main__":
    main()
