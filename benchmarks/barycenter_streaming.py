"""The barycenter fit without gathering, streamed in chunks, against the gathered fit.

Generates ``--rows`` calibration rows chunk by chunk from per-chunk seeds (the streamed fit
never holds more than one chunk): two groups (30 % / 70 %), group 1 scoring higher, scores
rounded to 3 decimals (many ties), float32. Each ``--modes`` entry runs in a child process
under ``/usr/bin/time -v`` (Linux), which gives its wall time and peak resident memory; the
1-minute load average is sampled during the run. ``streamed`` fits with
:func:`fairjax.postprocessing.fit_barycenter_streaming`, ``gathered`` with
:func:`fairjax.postprocessing.fit_barycenter` (``method="quantile_grid"``, all rows in
memory). With both modes the two states are compared field by field (bit-equal, and the
largest difference). Results are merged into ``--out``.json / .md::

    python benchmarks/barycenter_streaming.py --rows 1e8 --modes streamed
    python benchmarks/barycenter_streaming.py --rows 1e7 --modes streamed gathered
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time

import numpy as np

try:  # run as a script (benchmarks/ on the path) or as benchmarks.barycenter_streaming
    from audit_streaming import RESULTS, machine, merge_runs, timed
except ImportError:
    from benchmarks.audit_streaming import RESULTS, machine, merge_runs, timed

FIELDS = ("cdf_values", "quantile_values", "proportions", "cdf_count", "quantile_count")


def chunk(i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``i``: two groups (30 % / 70 %), group 1 scores higher, scores rounded (ties)."""
    rng = np.random.default_rng(1000 + i)
    s = (rng.uniform(size=size) < 0.3).astype(np.int32)
    x = np.round(rng.normal(size=size) + 1.5 * s, 3).astype(np.float32)
    return x, s


def fit(mode: str, rows: int, chunk_rows: int, grid: int, bits_per_pass: int, save: str):
    """One fit (in the child process); the state's fields saved to ``save``."""
    import jax

    from fairjax.postprocessing import fit_barycenter, fit_barycenter_streaming

    sizes = [min(chunk_rows, rows - a) for a in range(0, rows, chunk_rows)]
    kw = dict(num_groups=2, key=jax.random.key(0), grid_size=grid)
    start = time.perf_counter()
    if mode == "streamed":
        chunks = lambda: (chunk(i, n) for i, n in enumerate(sizes))
        state = fit_barycenter_streaming(chunks, bits_per_pass=bits_per_pass, **kw)
    else:
        parts = [chunk(i, n) for i, n in enumerate(sizes)]
        x = np.concatenate([p[0] for p in parts])
        s = np.concatenate([p[1] for p in parts])
        del parts
        state = fit_barycenter(x, s, method="quantile_grid", **kw)
    jax.block_until_ready(state)
    print(
        f"{mode}: {rows:,} rows in chunks of {chunk_rows:,}, grid {grid}: "
        f"{time.perf_counter() - start:.1f} s in the fit (compilation included)"
    )
    np.savez(save, **{f: np.asarray(getattr(state, f)) for f in FIELDS})


def compare(a: dict, b: dict) -> dict:
    out = {}
    for f in FIELDS:
        diff = float(np.max(np.abs(a[f].astype(np.float64) - b[f]))) if a[f].size else 0.0
        out[f] = {"bit_equal": bool(np.array_equal(a[f], b[f])), "max_abs_diff": diff}
    return out


def save(entry: dict, out: str) -> None:
    """Merges ``entry`` into ``out``.json (same rows and modes replaced), rewrites ``out``.md."""
    entries = merge_runs(entry, out, ("rows", "chunk_rows", "grid_size", "bits_per_pass", "modes"))
    lines = [
        "# Barycenter post-processor fitted streamed in chunks vs gathered (CPU)",
        "",
        "Produced by `benchmarks/barycenter_streaming.py` (the command of each run below).",
        "Data: two groups (30/70 %), float32 scores rounded to 3 decimals (ties), generated",
        "chunk by chunk. `fit_barycenter_streaming` (exact distributed selection, one read of",
        'the chunks per pass) vs `fit_barycenter(method="quantile_grid")` on all rows in',
        "memory, same key. Wall time and peak RSS of each fit's child process (data generation",
        "included) from `/usr/bin/time -v`; the 1-minute load average was sampled every 5 s",
        "during the run: the machine is shared.",
        "",
        "| rows | mode | chunk rows | grid | bits/pass | wall (s) | CPU user+sys (s) "
        "| peak RSS (GiB) | load avg min/mean/max |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for e in entries:
        for mode in e["modes"]:
            r, ld = e[mode], e[mode]["load_avg_1min"]
            lines.append(
                f"| {e['rows']:,} | {mode} | {e['chunk_rows']:,} | {e['grid_size']} | "
                f"{e['bits_per_pass']} | {r['wall_s']} | {r.get('cpu_s', '-')} | "
                f"{r['peak_rss_gib']} | "
                f"{ld['min']}/{ld['mean']}/{ld['max']} |"
            )
    for e in entries:
        m = e["machine"]
        lines += [
            "",
            f"## {e['rows']:,} rows, {' and '.join(e['modes'])}",
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB.",
            "",
            f"- benchmark: `{e['benchmark_command']}`",
        ]
        lines += [f"- {mode}: `{e[mode]['command']}`" for mode in e["modes"]]
        if "comparison" in e:
            lines += ["", "| field | bit-equal | max abs. difference |", "|---|---|---:|"]
            lines += [
                f"| {f} | {c['bit_equal']} | {c['max_abs_diff']:.3g} |"
                for f, c in e["comparison"].items()
            ]
    with open(out + ".md", "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=float, default=1e6, help="rows (e.g. 1e8)")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="rows per chunk")
    parser.add_argument("--grid", type=int, default=1024)
    parser.add_argument("--bits-per-pass", type=int, default=8)
    parser.add_argument(
        "--modes", nargs="+", choices=("streamed", "gathered"), default=["streamed", "gathered"]
    )
    parser.add_argument(
        "--out",
        default=os.path.join(RESULTS, "barycenter_streaming_cpu"),
        help="results path without extension ('' writes nothing)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # mode, in the child
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = int(args.rows)
    if args.child:
        fit(args.child, rows, args.chunk, args.grid, args.bits_per_pass, args.save)
        return
    entry = {
        "rows": rows,
        "chunk_rows": args.chunk,
        "grid_size": args.grid,
        "bits_per_pass": args.bits_per_pass,
        "modes": list(args.modes),
        "machine": machine(),
        "benchmark_command": shlex.join(["python", *sys.argv]),
    }
    states = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            path = os.path.join(tmp, f"{mode}.npz")
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                mode,
                "--rows",
                str(rows),
                "--chunk",
                str(args.chunk),
                "--grid",
                str(args.grid),
                "--bits-per-pass",
                str(args.bits_per_pass),
                "--save",
                path,
            ]
            entry[mode] = r = timed(cmd)
            print(
                f"{mode}: {rows:,} rows: wall {r['wall_s']} s, peak RSS {r['peak_rss_gib']} "
                f"GiB, load average {r['load_avg_1min']}",
                flush=True,
            )
            with np.load(path) as z:
                states[mode] = {f: z[f] for f in FIELDS}
    if len(states) == 2:
        entry["comparison"] = c = compare(states["streamed"], states["gathered"])
        for f, x in c.items():
            print(f"{f:16s} bit-equal: {x['bit_equal']}  max |difference|: {x['max_abs_diff']:.3g}")
    if args.out:
        save(entry, args.out)
        print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
