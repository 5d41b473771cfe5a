"""Compare fairjax's values and times in two sets of runner results (same kernels and sizes).

Run the runner on two checkouts, alternating, into separate folders, then compare:

    python -m benchmarks --quick --no-scripts --out /tmp/a_r1    # checkout A, round 1
    python -m benchmarks --quick --no-scripts --out /tmp/b_r1    # checkout B, round 1
    ...                                                           # more rounds, alternating
    python benchmarks/compare_runs.py --before /tmp/a_r1 /tmp/a_r2 --after /tmp/b_r1 /tmp/b_r2

It prints a Markdown table: fairjax's value in both (and whether they are equal), the median
time of each round, and the ratio of the medians over rounds (after / before). Nothing is
timed here: it reads the runner's JSON files.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics


def _kernels(folder: str) -> dict[str, dict]:
    files = sorted(glob.glob(os.path.join(folder, "runner_*.json")))
    if not files:
        raise SystemExit(f"no runner_*.json in {folder}")
    with open(files[0]) as f:
        return {k["name"]: k for k in json.load(f)["kernels"]}


def compare(before: list[str], after: list[str]) -> list[str]:
    """The Markdown lines of the comparison."""
    b_runs, a_runs = [_kernels(d) for d in before], [_kernels(d) for d in after]
    lines = [
        "| kernel | n | value before | value after | equal | median per round before "
        "| median per round after | after / before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, kernel in b_runs[0].items():
        if name not in a_runs[0]:
            continue
        for i, row in enumerate(kernel["rows"]):
            vb = row["fairjax"]["value"]
            va = a_runs[0][name]["rows"][i]["fairjax"]["value"]
            tb = [run[name]["rows"][i]["fairjax"]["median_s"] for run in b_runs]
            ta = [run[name]["rows"][i]["fairjax"]["median_s"] for run in a_runs]
            equal = "yes" if vb == va else f"rel. diff {abs(vb - va) / max(abs(vb), 1e-30):.1e}"
            ratio = statistics.median(ta) / statistics.median(tb)
            ms_b = " / ".join(f"{t * 1e3:.2f}" for t in tb)
            ms_a = " / ".join(f"{t * 1e3:.2f}" for t in ta)
            lines.append(
                f"| {name} | {row['n']:,} | {vb:.6g} | {va:.6g} | {equal} "
                f"| {ms_b} ms | {ms_a} ms | {ratio:.2f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", nargs="+", required=True, help="result folders, one a round")
    parser.add_argument("--after", nargs="+", required=True, help="result folders, one a round")
    args = parser.parse_args()
    print("\n".join(compare(args.before, args.after)))


if __name__ == "__main__":
    main()
