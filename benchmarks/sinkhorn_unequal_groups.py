"""Sinkhorn penalty on unequal groups: per-group blocks against one block size for all groups.

``jit(value_and_grad)`` of :func:`fairjax.penalties.sinkhorn` (``reference="pairwise"``,
epsilon 1, 8-dim representations, ``n`` rows) with the group ids traced, as in a training
step, given ``group_size`` as one bound for every group (the largest group's rows: every block
padded to the largest) or as one bound per group, and called with the ids concrete (the
block sizes computed from them). Groups of 10%/90% and 50/50 of the rows. The calls of a row
are timed in interleaved rounds (median of ``--repeats``); the values must agree.

Usage::

    python benchmarks/sinkhorn_unequal_groups.py [--n 2048] [--repeats 15]

Writes ``benchmarks/results/sinkhorn_unequal_groups_<platform>.md``.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import statistics
import time

import jax
import numpy as np

from fairjax import penalties

RESULTS = pathlib.Path(__file__).parent / "results"


def variants(h, s, kw):
    """The compiled calls of one composition of the groups, by name."""
    counts = tuple(int(c) for c in np.bincount(s, minlength=2))

    def traced(bound):
        f = jax.jit(
            jax.value_and_grad(lambda z, g: penalties.sinkhorn(z, g, group_size=bound, **kw))
        )
        return lambda: jax.block_until_ready(f(h, s))

    eager = jax.jit(jax.value_and_grad(lambda z: penalties.sinkhorn(z, s, **kw)))
    return {
        "one bound for all groups": traced(max(counts)),
        "one bound per group": traced(counts),
        "ids concrete": lambda: jax.block_until_ready(eager(h)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    h = rng.normal(size=(args.n, 8)).astype(np.float32)
    kw = dict(num_groups=2, reference="pairwise", epsilon=1.0, relative_epsilon=None)
    lines = [
        f"# Sinkhorn penalty on unequal groups ({jax.devices()[0].platform})",
        "",
        f"`python benchmarks/sinkhorn_unequal_groups.py --n {args.n} --repeats {args.repeats}`;"
        f" jax {jax.__version__}, Python {platform.python_version()}, "
        f"{jax.devices()[0].device_kind}. `jit(value_and_grad)` of the pairwise Sinkhorn "
        "divergence, epsilon 1, 8-dim representations; median ms of interleaved calls.",
        "",
        "| group sizes | one bound for all groups | one bound per group | ids concrete "
        "| speed-up (per group) | values agree |",
        "|---|---|---|---|---|---|",
    ]
    for share in (0.1, 0.5):
        s = (rng.random(args.n) < share).astype(np.int32)
        calls = variants(h, s, kw)
        values = {name: float(call()[0]) for name, call in calls.items()}  # warm-up
        times = {name: [] for name in calls}
        for _ in range(args.repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        agree = np.allclose(list(values.values()), values["ids concrete"], rtol=1e-5)
        sizes = "/".join(str(c) for c in np.bincount(s, minlength=2))
        row = " | ".join(f"{ms[name]:.1f}" for name in calls)
        speedup = ms["one bound for all groups"] / ms["one bound per group"]
        lines.append(f"| {sizes} | {row} | {speedup:.2f}x | {agree} |")
        print(lines[-1])
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"sinkhorn_unequal_groups_{jax.devices()[0].platform}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
