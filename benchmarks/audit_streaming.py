"""Streamed ``fairjax audit --chunk-size`` on a generated Parquet file: peak memory, time, and
the same report as the in-memory audit.

Writes a Parquet file of ``--rows`` rows (``score`` float32, ``label`` 0/1, two sensitive
int8 columns with unequal group sizes: ``region`` 60/30/10 %, ``sex`` 70/30 %) row group by
row group (bounded memory), then runs ``fairjax audit FILE --chunk-size ROWS`` in a child
process under ``/usr/bin/time -v`` (Linux) and records its wall time and peak resident memory,
with the 1-minute load average sampled during the run. With ``--compare``, also runs the
in-memory ``fairjax audit`` (no ``--chunk-size``) on the same file the same way and records
the largest absolute and relative difference of every number of the two reports (estimates
and the per-group table; the bootstrap intervals are recorded too, but they come from two
different bootstraps, Poisson streamed and multinomial in memory, so they agree only to Monte
Carlo error).

The results are merged into ``--out``.json / .md (one entry per rows / chunk size / mode)::

    python benchmarks/audit_streaming.py --rows 1e8 --file /tmp/audit_1e8.parquet
    python benchmarks/audit_streaming.py --rows 1e7 --compare

``--file`` keeps the generated file (reused when it already has ``--rows`` rows); without it
the file goes to a temporary directory and is deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

try:  # run as a script (benchmarks/ on the path) or as benchmarks.audit_streaming
    from _common import host_info
except ImportError:
    from benchmarks._common import host_info

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_parquet(path: str, rows: int, chunk: int = 1_000_000, seed: int = 0) -> None:
    """``rows`` rows written one row group of ``chunk`` rows at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for k, start in enumerate(range(0, rows, chunk)):
        rng = np.random.default_rng([seed, k])
        n = min(chunk, rows - start)
        region = rng.choice(3, n, p=[0.6, 0.3, 0.1]).astype(np.int8)
        sex = (rng.random(n) < 0.3).astype(np.int8)
        z = rng.normal(size=n) + 0.3 * region - 0.2 * sex
        score = (1 / (1 + np.exp(-z))).astype(np.float32)
        label = (rng.random(n) < score).astype(np.int8)
        table = pa.table({"score": score, "label": label, "region": region, "sex": sex})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=chunk)
    writer.close()


def parquet_rows(path: str) -> int | None:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


def timed(cmd: list[str]) -> dict:
    """Runs ``cmd`` under ``/usr/bin/time -v``: wall seconds, peak RSS, load averages."""
    loads: list[float] = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            loads.append(os.getloadavg()[0])
            done.wait(5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    if run.returncode:
        sys.exit(run.stdout + run.stderr)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)[1])
    cpu = sum(
        float(re.search(rf"{k} time \(seconds\): (\S+)", run.stderr)[1]) for k in ("User", "System")
    )
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_gib": round(rss / 2**20, 3),
        "load_avg_1min": {
            "min": round(min(loads), 2),
            "mean": round(float(np.mean(loads)), 2),
            "max": round(max(loads), 2),
        },
        "command": " ".join(cmd).replace(sys.executable, "python"),
    }


def numbers(report: dict) -> dict[str, float]:
    """Every number of a report: table cells, estimates, intervals (keys say which)."""
    out = {}
    for r in [report["overall"], *report["groups"]]:
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"table {r['group']}.{k}"] = float(v)
    for k, m in report["metrics"].items():
        for part in ("estimate", "lower", "upper"):
            if m.get(part) is not None:
                out[f"{part} {k}"] = float(m[part])
    return out


def differences(streamed: dict, in_memory: dict) -> dict:
    a, b = numbers(streamed), numbers(in_memory)
    point = lambda k: not k.startswith(("lower", "upper"))
    if {k for k in a if point(k)} != {k for k in b if point(k)}:
        sys.exit(f"the two reports hold different numbers: {sorted(a.keys() ^ b.keys())}")
    a = {k: x for k, x in a.items() if k in b}  # intervals only where both have them
    per = {
        k: {
            "streamed": a[k],
            "in_memory": b[k],
            "abs_diff": abs(a[k] - b[k]),
            "rel_diff": abs(a[k] - b[k]) / max(abs(b[k]), 1e-30),
        }
        for k in sorted(a)
    }
    point = [k for k in per if point(k)]
    same_pairs = all(
        streamed["metrics"][k]["between"] == m["between"] for k, m in in_memory["metrics"].items()
    )
    return {
        "numbers": per,
        "largest_abs_diff_point": max(per[k]["abs_diff"] for k in point),
        "largest_rel_diff_point": max(per[k]["rel_diff"] for k in point),
        "same_groups_named": same_pairs,
    }


def merge_runs(entry: dict, out: str, same: tuple[str, ...]) -> list[dict]:
    """The runs of ``out``.json with ``entry`` in place of a run with the same ``same``
    settings, sorted by rows; written back."""
    entries = []
    if os.path.exists(out + ".json"):
        with open(out + ".json") as fh:
            entries = json.load(fh)["runs"]
    entries = [e for e in entries if any(e.get(k) != entry.get(k) for k in same)] + [entry]
    strip = lambda cmd: re.sub(r"/\S*/(?=[^\s/]+)", "", cmd)  # file names, no machine paths
    for e in entries:
        e["benchmark_command"] = strip(e["benchmark_command"])
        for run in e.values():
            if isinstance(run, dict) and "command" in run:
                run["command"] = strip(run["command"])
    entries.sort(key=lambda e: (e["rows"], len(json.dumps(e))))
    with open(out + ".json", "w") as fh:
        json.dump({"runs": entries}, fh, indent=1)
    return entries


def save(entry: dict, out: str) -> None:
    """Merges ``entry`` into ``out``.json (same rows, chunk size and mode replaced) and
    rewrites ``out``.md from all entries."""
    entries = merge_runs(entry, out, ("rows", "chunk_size", "bootstrap", "compare", "label"))
    lines = [
        "# Streamed `fairjax audit --chunk-size` on generated Parquet files (CPU)",
        "",
        "Produced by `benchmarks/audit_streaming.py` (the command of each run below). Columns:",
        "`score` float32, `label` 0/1, `region` (60/30/10 %) and `sex` (70/30 %) int8: 6 groups.",
        "Wall time and peak RSS of the `fairjax audit` child process from `/usr/bin/time -v`;",
        "the load average (1 min) was sampled every 5 s during the run: the machine is shared.",
        "",
        "| rows | mode | chunk rows | resamples | wall (s) | CPU user+sys (s) | peak RSS (GiB) "
        "| load avg min/mean/max |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for e in entries:
        for mode in ("streamed", "in_memory"):
            if mode in e:
                r, ld = e[mode], e[mode]["load_avg_1min"]
                lines.append(
                    f"| {e['rows']:,} | {mode.replace('_', '-')}{e.get('label', '')} | "
                    f"{e['chunk_size'] if mode == 'streamed' else '-'} | "
                    f"{e['bootstrap'] if mode == 'streamed' else e['in_memory_bootstrap']} | "
                    f"{r['wall_s']} | {r.get('cpu_s', '-')} | {r['peak_rss_gib']} | "
                    f"{ld['min']}/{ld['mean']}/{ld['max']} |"
                )
    for e in entries:
        lines += [
            "",
            f"## {e['rows']:,} rows{e.get('label', '')}",
            "",
            f"Machine: {e['machine']['cpu']}, "
            f"{e['machine']['cores']} cores, {e['machine']['memory_gib']} GiB.",
            "",
            f"- benchmark: `{e['benchmark_command']}`",
        ]
        for mode in ("streamed", "in_memory"):
            if mode in e:
                lines.append(f"- {mode.replace('_', '-')}: `{e[mode]['command']}`")
        if "differences" in e:
            d = e["differences"]
            lines += [
                "",
                f"Streamed vs in-memory: largest absolute difference of a point estimate or table "
                f"number {d['largest_abs_diff_point']:.3g} (relative "
                f"{d['largest_rel_diff_point']:.3g}); same pair of groups named for every metric: "
                f"{d['same_groups_named']}. The intervals (`lower`, `upper`) come from a Poisson "
                "bootstrap (streamed) and a multinomial one (in memory): they differ by design, "
                "to Monte Carlo error.",
                "",
                "| number | streamed | in-memory | abs. difference | rel. difference |",
                "|---|---:|---:|---:|---:|",
            ]
            for k, x in d["numbers"].items():
                lines.append(
                    f"| {k} | {x['streamed']:.9g} | {x['in_memory']:.9g} | "
                    f"{x['abs_diff']:.3g} | {x['rel_diff']:.3g} |"
                )
    with open(out + ".md", "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=float, default=1e6, help="rows of the file (e.g. 1e8)")
    p.add_argument("--chunk-size", type=int, default=1_000_000)
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of both audits")
    p.add_argument("--compare", action="store_true", help="also run the in-memory audit")
    p.add_argument(
        "--compare-bootstrap",
        type=int,
        default=None,
        help="resamples of the in-memory audit (default --bootstrap; its multinomial "
        "bootstrap sorts all rows per resample: slow at 10^7 rows)",
    )
    p.add_argument("--label", default="", help="text appended to the mode in the results")
    p.add_argument("--file", default=None, help="keep (or reuse) the generated file here")
    p.add_argument(
        "--out",
        default=os.path.join(RESULTS, "audit_streaming_cpu"),
        help="results path without extension ('' writes nothing)",
    )
    args = p.parse_args()
    rows = int(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or os.path.join(tmp, "predictions.parquet")
        if parquet_rows(path) != rows:
            t = time.perf_counter()
            write_parquet(path, rows)
            print(
                f"wrote {rows:,} rows ({os.path.getsize(path) / 2**20:.0f} MiB) in "
                f"{time.perf_counter() - t:.0f} s",
                flush=True,
            )
        base = [
            sys.executable,
            "-m",
            "fairjax",
            "audit",
            path,
            "--y-true",
            "label",
            "--score",
            "score",
            "--sensitive",
            "region",
            "--sensitive",
            "sex",
        ]
        in_memory_bootstrap = (
            args.bootstrap if args.compare_bootstrap is None else args.compare_bootstrap
        )
        entry = {
            "rows": rows,
            "chunk_size": args.chunk_size,
            "bootstrap": args.bootstrap,
            "compare": args.compare,
            "label": args.label,
            "in_memory_bootstrap": in_memory_bootstrap,
            "machine": host_info(),
            "benchmark_command": shlex.join(["python", *sys.argv]),
        }
        reports = {}
        modes = [("streamed", ["--chunk-size", str(args.chunk_size)], args.bootstrap)]
        if args.compare:
            modes.append(("in_memory", [], in_memory_bootstrap))
        for mode, extra, resamples in modes:
            json_path = os.path.join(tmp, f"{mode}.json")
            cmd = [*base, "--bootstrap", str(resamples), *extra, "--json", json_path]
            entry[mode] = timed(cmd)
            with open(json_path) as fh:
                reports[mode] = json.load(fh)
            r = entry[mode]
            print(
                f"{mode}: {rows:,} rows, {resamples} resamples: wall {r['wall_s']} s, "
                f"peak RSS {r['peak_rss_gib']} GiB, load average {r['load_avg_1min']}",
                flush=True,
            )
        if args.compare:
            entry["differences"] = d = differences(reports["streamed"], reports["in_memory"])
            for k, x in d["numbers"].items():
                print(f"  {k:45s} abs {x['abs_diff']:.3g}  rel {x['rel_diff']:.3g}")
            print(
                f"largest difference of a point number: abs {d['largest_abs_diff_point']:.3g}, "
                f"rel {d['largest_rel_diff_point']:.3g}; same groups named: "
                f"{d['same_groups_named']}"
            )
    if args.out:
        save(entry, args.out)
        print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
