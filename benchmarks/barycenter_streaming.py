"""The barycenter fit without gathering, streamed in chunks, against the gathered fit.

Generates ``--rows`` calibration rows chunk by chunk from per-chunk seeds (the streamed fit
never holds more than one chunk), fits the quantile-grid post-processor either streamed
(:func:`fairjax.postprocessing.fit_barycenter_streaming`) or gathered
(:func:`fairjax.postprocessing.fit_barycenter`, all rows in memory), prints the wall time,
and saves the state to ``--save`` so that two runs can be compared::

    /usr/bin/time -v python benchmarks/barycenter_streaming.py --mode streamed --save s.npz
    /usr/bin/time -v python benchmarks/barycenter_streaming.py --mode gathered --save g.npz
    python benchmarks/barycenter_streaming.py --compare s.npz g.npz

Peak memory comes from ``/usr/bin/time -v`` ("Maximum resident set size").
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from fairjax.postprocessing import fit_barycenter, fit_barycenter_streaming

FIELDS = ("cdf_values", "quantile_values", "proportions", "cdf_count", "quantile_count")


def chunk(i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk ``i``: two groups (30 % / 70 %), group 1 scores higher, scores rounded (ties)."""
    rng = np.random.default_rng(1000 + i)
    s = (rng.uniform(size=size) < 0.3).astype(np.int32)
    x = np.round(rng.normal(size=size) + 1.5 * s, 3).astype(np.float32)
    return x, s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--grid", type=int, default=1024)
    parser.add_argument("--bits-per-pass", type=int, default=8)
    parser.add_argument("--mode", choices=("streamed", "gathered"), default="streamed")
    parser.add_argument("--save", default=None)
    parser.add_argument("--compare", nargs=2, default=None)
    args = parser.parse_args()
    if args.compare:
        a, b = (np.load(p) for p in args.compare)
        for f in FIELDS:
            same = np.array_equal(a[f], b[f])
            diff = float(np.max(np.abs(a[f].astype(np.float64) - b[f])))
            print(f"{f:16s} bit-equal: {same}  max |difference|: {diff:.3g}")
        return
    sizes = [min(args.chunk, args.rows - a) for a in range(0, args.rows, args.chunk)]
    key = jax.random.key(0)
    kw = dict(num_groups=2, key=key, grid_size=args.grid)
    start = time.perf_counter()
    if args.mode == "streamed":
        chunks = lambda: (chunk(i, n) for i, n in enumerate(sizes))
        state = fit_barycenter_streaming(chunks, bits_per_pass=args.bits_per_pass, **kw)
    else:
        parts = [chunk(i, n) for i, n in enumerate(sizes)]
        x = np.concatenate([p[0] for p in parts])
        s = np.concatenate([p[1] for p in parts])
        del parts
        state = fit_barycenter(x, s, method="quantile_grid", **kw)
    jax.block_until_ready(state)
    elapsed = time.perf_counter() - start
    print(f"{args.mode}: {args.rows} rows in chunks of {args.chunk}, grid {args.grid}: "
          f"{elapsed:.1f} s (compilation included)")  # fmt: skip
    if args.save:
        np.savez(args.save, **{f: np.asarray(getattr(state, f)) for f in FIELDS})


if __name__ == "__main__":
    main()
