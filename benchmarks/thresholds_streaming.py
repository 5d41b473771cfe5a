"""Group thresholds fitted on chunks vs in memory: wall time, peak memory and equality.

Generates ``--rows`` calibration rows chunk by chunk from per-chunk seeds (three groups of 60,
30 and 10 % of the rows, float32 scores of a noisy logistic model, so millions of distinct
scores; ``--decimals 3`` rounds them: heavy ties), then, each in a fresh process run under
``/usr/bin/time -v`` (peak resident memory):

* ``streamed``: :func:`fairjax.postprocessing.fit_thresholds_streaming` for each criterion, the
  chunks generated again at every pass (the data is never held: at most one chunk);
* ``gathered``: the chunks concatenated in memory, then
  :func:`fairjax.postprocessing.fit_thresholds` for each criterion;
* ``baseline``: imports, one chunk and the four fits on 2000 rows (the footprint of the
  process and its compiled programs).

Each fit's time includes its compilation (a first call); the streamed time includes
generating the chunks at each pass, the gathered time does not (generation is timed apart).
The two states of every criterion are compared field by field, and so are their decisions on
the first chunk. Writes ``results/thresholds_streaming_<platform>[_decimals<d>].json`` and
``.md``::

    python benchmarks/thresholds_streaming.py --rows 10000000
    python benchmarks/thresholds_streaming.py --rows 10000000 --decimals 3
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

CRITERIA = ("demographic_parity", "equal_opportunity", "false_positive_parity", "equalized_odds")
FIELDS = ("lower", "upper", "probabilities", "fpr", "tpr", "positives", "negatives")
HERE = os.path.dirname(os.path.abspath(__file__))


def chunk(i: int, size: int, decimals: int | None) -> tuple[np.ndarray, ...]:
    """Chunk ``i``: (scores float32, labels, groups)."""
    rng = np.random.default_rng(1000 + i)
    g = rng.choice(3, size, p=[0.6, 0.3, 0.1]).astype(np.int32)
    logit = 1.5 * rng.normal(size=size) + 0.5 * g
    y = (rng.random(size) < 1 / (1 + np.exp(-(logit + rng.normal(size=size))))).astype(np.int32)
    s = 1 / (1 + np.exp(-logit))
    if decimals is not None:
        s = np.round(s, decimals)
    return s.astype(np.float32), y, g


def worker(args: argparse.Namespace) -> None:
    """One mode in this process: prints one JSON line of timings, saves the states."""
    import jax

    from fairjax.postprocessing import fit_thresholds, fit_thresholds_streaming

    sizes = [min(args.chunk, args.rows - a) for a in range(0, args.rows, args.chunk)]
    out: dict = {"mode": args.mode, "fits": {}}
    states = {}
    if args.mode == "baseline":  # the process, one chunk and the compiled programs
        s, y, g = chunk(0, sizes[0], args.decimals)
        for crit in CRITERIA:
            fit_thresholds(s[:2000], y[:2000], g[:2000], num_groups=3, criterion=crit)
    elif args.mode == "streamed":
        calls = []

        def chunks():
            calls.append(None)
            return (chunk(i, m, args.decimals) for i, m in enumerate(sizes))

        start = time.perf_counter()
        for _ in chunks():
            pass
        out["generate_s"] = time.perf_counter() - start
        for crit in CRITERIA:
            calls.clear()
            start = time.perf_counter()
            state = fit_thresholds_streaming(chunks, num_groups=3, criterion=crit, tolerance=0.01)
            jax.block_until_ready(state)
            out["fits"][crit] = {"s": time.perf_counter() - start, "passes": len(calls)}
            states[crit] = state
    else:
        start = time.perf_counter()
        parts = [chunk(i, m, args.decimals) for i, m in enumerate(sizes)]
        s, y, g = (np.concatenate([p[k] for p in parts]) for k in range(3))
        del parts
        out["generate_s"] = time.perf_counter() - start
        for crit in CRITERIA:
            start = time.perf_counter()
            state = fit_thresholds(s, y, g, num_groups=3, criterion=crit, tolerance=0.01)
            jax.block_until_ready(state)
            out["fits"][crit] = {"s": time.perf_counter() - start}
            states[crit] = state
    if args.save:
        arrays = {
            f"{c}.{f}": np.asarray(getattr(st, f)) for c, st in states.items() for f in FIELDS
        }
        np.savez(args.save, **arrays)
    print(json.dumps(out))


def run(mode: str, args: argparse.Namespace, save: str) -> dict:
    """Runs one mode in a fresh process under /usr/bin/time -v."""
    cmd = [sys.executable, __file__, "--mode", mode, "--rows", str(args.rows)]
    cmd += ["--chunk", str(args.chunk), "--save", save]
    if args.decimals is not None:
        cmd += ["--decimals", str(args.decimals)]
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    result["peak_rss_mib"] = int(rss.group(1)) / 1024 if rss else None
    print(f"{mode}: peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
    return result


def compare(streamed: str, gathered: str, args: argparse.Namespace) -> dict:
    """Field-by-field equality of the two fits, and of their decisions on the first chunk."""
    from fairjax.postprocessing import ThresholdState, apply_thresholds

    a, b = np.load(streamed), np.load(gathered)
    s, _, g = chunk(0, min(args.chunk, args.rows), args.decimals)
    out = {}
    for crit in CRITERIA:
        fa = {f: a[f"{crit}.{f}"] for f in FIELDS}
        fb = {f: b[f"{crit}.{f}"] for f in FIELDS}
        pa = np.asarray(apply_thresholds(ThresholdState(**fa), s, g))
        pb = np.asarray(apply_thresholds(ThresholdState(**fb), s, g))
        out[crit] = {
            "bit_equal": all(np.array_equal(fa[f], fb[f]) for f in FIELDS),
            "max_abs_difference": max(
                float(np.max(np.abs(np.nan_to_num(fa[f] - fb[f], nan=0.0)))) for f in FIELDS
            ),
            "decisions_equal": bool(np.array_equal(pa, pb)),
        }
    return out


def write(results: dict, args: argparse.Namespace) -> None:
    import jax

    platform = jax.default_backend()
    ties = "" if args.decimals is None else f"_decimals{args.decimals}"
    name = os.path.join(HERE, "results", f"thresholds_streaming_{platform}{ties}")
    with open(name + ".json", "w") as f:
        json.dump(results, f, indent=2)
    st, ga, base = results["streamed"], results["gathered"], results["baseline"]
    scores = "float32 of a logistic model"
    if args.decimals is not None:
        scores = f"rounded to {args.decimals} decimals"
    lines = [
        f"# Group thresholds: streamed vs in memory, {args.rows:,} rows",
        "",
        f"jax {jax.__version__}, {platform}, {os.cpu_count()} CPUs; chunks of {args.chunk:,} "
        f"rows; 3 groups (60/30/10 %); scores {scores}; tolerance 0.01. Times include "
        "compilation (one call per criterion); the streamed times include generating the "
        f"chunks at every pass ({st['generate_s']:.1f} s per pass), the gathered ones do not "
        f"({ga['generate_s']:.1f} s once).",
        "",
        "| criterion | streamed s | passes | in memory s | bit-equal | max abs difference "
        "| decisions equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for crit in CRITERIA:
        c = results["comparison"][crit]
        lines.append(
            f"| {crit} | {st['fits'][crit]['s']:.1f} | {st['fits'][crit]['passes']} | "
            f"{ga['fits'][crit]['s']:.1f} | {c['bit_equal']} | {c['max_abs_difference']:.3g} | "
            f"{c['decisions_equal']} |"
        )
    lines += [
        "",
        "| process | peak RSS (MiB, `/usr/bin/time -v`) |",
        "|---|---|",
        f"| streamed (4 fits) | {st['peak_rss_mib']:.0f} |",
        f"| in memory (data + 4 fits) | {ga['peak_rss_mib']:.0f} |",
        f"| baseline (imports, one chunk, 4 fits on 2000 rows) | {base['peak_rss_mib']:.0f} |",
        "",
    ]
    with open(name + ".md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--decimals", type=int, default=None)
    parser.add_argument("--mode", choices=("streamed", "gathered", "baseline"), default=None)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if args.mode:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = {m: os.path.join(tmp, f"{m}.npz") for m in ("streamed", "gathered", "baseline")}
        results = {m: run(m, args, p) for m, p in paths.items()}
        results["comparison"] = compare(paths["streamed"], paths["gathered"], args)
    results["rows"], results["chunk"], results["decimals"] = args.rows, args.chunk, args.decimals
    write(results, args)


if __name__ == "__main__":
    main()
