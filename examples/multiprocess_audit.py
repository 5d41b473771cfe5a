"""A fairness audit and a barycenter fit over N processes, equal to one process's.

Starts N local processes (``--processes``, default 2) that join one JAX runtime with
:func:`jax.distributed.initialize` over loopback, one CPU device each (CPU collectives over
gloo). Each process holds only its own block of the rows. Through ``jax.shard_map`` with
``axis_name=`` the processes compute fairness metrics of all the rows, and fit the
quantile-grid barycenter post-processor without gathering the rows
(:func:`fairjax.postprocessing.fit_barycenter_sharded`: exact selection with ``psum``-ed
counts). Process 0 then computes the same things on all the rows in one place and prints both::

    python examples/multiprocess_audit.py --processes 4

On a cluster, start the same program on every host (``--process-id``, ``--coordinator``
naming host 0) instead of letting it spawn local processes; see ``docs/multi_process.md``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

import numpy as np

NUM_GROUPS = 3


def make_data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Scores that depend on the group, labels, groups of unequal sizes (all the rows)."""
    rng = np.random.default_rng(seed)
    s = rng.choice(NUM_GROUPS, size=n, p=[0.55, 0.3, 0.15]).astype(np.int32)
    scores = (rng.normal(size=n) + 0.7 * s).astype(np.float32)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-scores))).astype(np.int32)
    return {"scores": scores, "y": y, "s": s}


def audit(metrics, scores, y, s, weights=None, axis_name=None):
    """Metrics of the rows given: all of them, or this device's with ``axis_name`` (padded
    rows left out by weight 0)."""
    kw = dict(num_groups=NUM_GROUPS, axis_name=axis_name, weights=weights)
    decisions = (scores > 0).astype(scores.dtype)
    table = metrics.by_group(y, decisions, s, **kw)
    return {
        "demographic parity difference": metrics.demographic_parity_difference(decisions, s, **kw),
        "equal opportunity difference": metrics.equal_opportunity_difference(y, decisions, s, **kw),
        "equalized odds difference": metrics.equalized_odds_difference(y, decisions, s, **kw),
        "KS unfairness of the scores": metrics.ks_unfairness(scores, s, **kw),
        "W1 unfairness of the scores": metrics.wasserstein_unfairness(scores, s, **kw),
        "selection rate, group 0": table["selection_rate"][0],
        "selection rate, group 2": table["selection_rate"][2],
    }


def worker(args: argparse.Namespace) -> None:
    import jax

    try:  # jax 0.10 names the CPU collectives; later versions may drop the option
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, KeyError, ValueError):
        pass
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.processes,
        process_id=args.process_id,
        initialization_timeout=120,
    )
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from fairjax import metrics, postprocessing

    nproc, pid = args.processes, args.process_id
    data = make_data(args.rows)
    per = -(-args.rows // nproc)  # rows per process; the last one pads with weight-0 rows
    lo, hi = pid * per, min((pid + 1) * per, args.rows)
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    mesh = Mesh(np.array(devices), ("rows",))
    rows = NamedSharding(mesh, P("rows"))

    def mine(a, fill=0):  # this process's rows, padded to the common length
        return jax.make_array_from_process_local_data(
            rows, np.pad(a[lo:hi], (0, per - (hi - lo)), constant_values=fill)
        )

    sc, y, s = mine(data["scores"]), mine(data["y"]), mine(data["s"])
    mask = mine(np.ones(args.rows, np.float32))
    offset = jax.make_array_from_process_local_data(rows, np.array([lo], np.uint32))
    key = jax.random.key(0)

    def per_device(sc, y, s, mask, offset):
        # Padded rows: weight 0 in the fit; in the audit they are cut by the mask below.
        out = audit(metrics, sc, y, s, mask, axis_name="rows")
        state = postprocessing.fit_barycenter_sharded(
            sc, s, num_groups=NUM_GROUPS, key=key, offset=offset, weights=mask,
            axis_name="rows", grid_size=args.grid,
        )  # fmt: skip
        return out, state

    spec = P("rows")
    mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(spec,) * 5, out_specs=P())
    dist, state = jax.jit(mapped)(sc, y, s, mask, offset)
    if pid != 0:
        jax.distributed.shutdown()
        return
    one = audit(metrics, data["scores"], data["y"], data["s"], None)
    gathered = postprocessing.fit_barycenter(
        data["scores"], data["s"], num_groups=NUM_GROUPS, key=key,
        method="quantile_grid", grid_size=args.grid,
    )  # fmt: skip
    print(f"{nproc} processes x 1 CPU device; {args.rows} rows, each process holds <= {per}")
    print(f"{'':32s} {f'{nproc} processes':>14s} {'one process':>14s}")
    worst = 0.0
    for name in one:
        a, b = float(dist[name]), float(one[name])
        worst = max(worst, abs(a - b))
        print(f"{name:32s} {a:14.6f} {b:14.6f}")
    same = all(
        np.array_equal(np.asarray(getattr(state, f)), np.asarray(getattr(gathered, f)))
        for f in ("cdf_values", "quantile_values", "proportions")
    )
    print(f"largest metric difference: {worst:.2e}")
    print(
        f"barycenter fit without gathering ({args.grid} quantiles per group): "
        + ("bit-equal to the gathered fit" if same else "DIFFERENT from the gathered fit")
    )
    fair = postprocessing.apply_barycenter(
        jax.tree.map(np.asarray, state), data["scores"], data["s"], key=jax.random.key(1)
    )
    before = float(metrics.ks_unfairness(data["scores"], data["s"], num_groups=NUM_GROUPS))
    after = float(metrics.ks_unfairness(fair, data["s"], num_groups=NUM_GROUPS))
    print(f"KS unfairness before / after the post-processor: {before:.3f} / {after:.3f}")
    jax.distributed.shutdown()
    if worst > 1e-5 or not same:
        raise SystemExit(1)


def launch(args: argparse.Namespace) -> None:
    """Starts the N local processes (loopback) and waits for them, with a timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    options = {"--processes": args.processes, "--rows": args.rows, "--grid": args.grid}
    base = [sys.executable, __file__, "--coordinator", f"127.0.0.1:{port}"]
    base += [str(a) for item in options.items() for a in item]
    procs = [
        subprocess.Popen([*base, "--process-id", str(i)], env=env) for i in range(args.processes)
    ]
    try:
        codes = [p.wait(timeout=args.timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(codes):
        raise SystemExit(f"a process failed: exit codes {codes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--grid", type=int, default=256, help="quantiles per group")
    parser.add_argument("--process-id", type=int, default=None, help="set by the launcher")
    parser.add_argument("--coordinator", default=None, help="host:port of process 0")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if args.process_id is None:
        launch(args)
    else:
        worker(args)


if __name__ == "__main__":
    main()
