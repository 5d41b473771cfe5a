"""One process of the multi-process test (``tests/properties/test_multiprocess.py``).

Started ``num_processes`` times by the test, each with its ``process_id``; the processes join
one JAX runtime with :func:`jax.distributed.initialize` (loopback only, CPU collectives over
gloo), one CPU device each. Process ``i`` holds the ``i``-th block of the rows of
:func:`make_data` and computes, through ``jax.shard_map`` over all processes' devices with
``axis_name=``, every metric that takes ``axis_name``, every penalty's value and gradient, a
``training.fit_constrained`` run and the barycenter post-processor's fit (without gathering)
and application. It writes what it holds to ``OUT/process_<i>.npz``; the test compares the
pieces with one process's results on all the rows.

``--drop-axis-name`` makes every term reduce over its own shard only (``axis_name=None``,
``shard_map``'s replication check off): the negative control, whose results must differ.

Run by hand (two shells, or ``&``)::

    python tests/properties/_multiprocess_worker.py --process-id 0 --num-processes 2 \\
        --port 12345 --out /tmp/mp
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

NUM_GROUPS = 3
ROWS_PER_PROCESS = 96
# The barycenter fit: unequal real rows per process, padded with rows of weight 0.
FIT_ROWS = (84, 106, 70, 90)
GRID = 32


def make_data(num_processes: int) -> dict[str, np.ndarray]:
    """All the rows, in global order (the same in every process and in the test)."""
    n = ROWS_PER_PROCESS * num_processes
    rng = np.random.default_rng(0)
    s = rng.choice(NUM_GROUPS, size=n, p=[0.5, 0.3, 0.2]).astype(np.int32)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    x[:, 0] += 0.8 * s
    scores = (x @ np.array([1.0, -0.5, 0.3]) + 0.2 * rng.normal(size=n)).astype(np.float32)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-scores))).astype(np.int32)
    w = rng.uniform(0.5, 2.0, size=n).astype(np.float32)
    w[::11] = 0.0
    m = sum(FIT_ROWS[:num_processes])
    fit_s = rng.choice(NUM_GROUPS, size=m, p=[0.6, 0.3, 0.1]).astype(np.int32)
    # Scores rounded to 0.1: many ties, broken by the jitter draws of each row.
    fit_x = np.round(rng.normal(size=m) + fit_s, 1).astype(np.float32)
    query_x = (rng.normal(size=n) + s).astype(np.float32)
    return dict(x=x, scores=scores, y=y, s=s, w=w, fit_x=fit_x, fit_s=fit_s, query_x=query_x)


def fit_blocks(num_processes: int) -> list[tuple[int, int]]:
    """(offset, real rows) of each process's block of the barycenter's calibration rows."""
    sizes = FIT_ROWS[:num_processes]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [(int(o), int(c)) for o, c in zip(offsets, sizes, strict=True)]


def metric_terms(metrics, ax):
    """name -> f(scores, proba, y, s, w) -> value (a dict for by_group)."""
    g = NUM_GROUPS
    return {
        "demographic_parity_difference": lambda sc, p, y, s, w: (
            metrics.demographic_parity_difference(p, s, num_groups=g, weights=w, axis_name=ax)
        ),
        "demographic_parity_ratio": lambda sc, p, y, s, w: metrics.demographic_parity_ratio(
            p, s, num_groups=g, weights=w, axis_name=ax
        ),
        "equal_opportunity_difference": lambda sc, p, y, s, w: metrics.equal_opportunity_difference(
            y, p, s, num_groups=g, weights=w, axis_name=ax
        ),
        "equalized_odds_difference": lambda sc, p, y, s, w: metrics.equalized_odds_difference(
            y, p, s, num_groups=g, weights=w, axis_name=ax
        ),
        "ks_unfairness": lambda sc, p, y, s, w: metrics.ks_unfairness(
            sc, s, num_groups=g, weights=w, axis_name=ax
        ),
        "wasserstein_unfairness": lambda sc, p, y, s, w: metrics.wasserstein_unfairness(
            sc, s, num_groups=g, weights=w, axis_name=ax
        ),
        "by_group": lambda sc, p, y, s, w: metrics.by_group(
            y, p, s, num_groups=g, weights=w, axis_name=ax
        ),
    }


def penalty_terms(penalties, kernels, jnp, ax):
    """name -> f(scores, y, s, w) -> scalar, differentiable in the scores."""
    g = NUM_GROUPS

    def h(x):
        return jnp.stack([x, jnp.sin(x)], axis=1)

    return {
        "mean_difference": lambda x, y, s, w: penalties.mean_difference(
            x, s, num_groups=g, weights=w, labels=y, criterion="equalized_odds", axis_name=ax
        ),
        "sigmoid_rate_difference": lambda x, y, s, w: penalties.sigmoid_rate_difference(
            x, s, num_groups=g, weights=w, axis_name=ax
        ),
        "wasserstein": lambda x, y, s, w: penalties.wasserstein(
            x, s, num_groups=g, weights=w, axis_name=ax
        ),
        "mmd": lambda x, y, s, w: penalties.mmd(
            h(x), s, num_groups=g, weights=w, kernel=kernels.gaussian(bandwidth=1.0), axis_name=ax
        ),
        "sinkhorn": lambda x, y, s, w: penalties.sinkhorn(
            h(x), s, num_groups=g, weights=w, axis_name=ax, solver_kwargs={"threshold": 1e-6}
        ),
    }


def training_terms(penalties, optax, jnp, n_total, ax):
    """(loss_fn, constraint_fn) on a batch (x, y, s) of this device's rows."""
    import jax

    def loss_fn(params, batch):
        logits = batch["x"] @ params["w"] + params["b"]
        total = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, batch["y"]))
        if ax is not None:
            total = jax.lax.psum(total, ax)  # the task loss of all the rows
        return total / n_total

    def constraint_fn(params, batch):
        logits = batch["x"] @ params["w"] + params["b"]
        return penalties.sigmoid_rate_difference(
            logits, batch["s"], num_groups=NUM_GROUPS, axis_name=ax
        )

    return loss_fn, constraint_fn


def _init(args) -> None:
    import jax

    try:
        # jax 0.10 needs CPU collectives named (gloo); later versions may drop the option.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, KeyError, ValueError):  # pragma: no cover - newer jax
        pass
    address = f"127.0.0.1:{args.port}"  # loopback only
    jax.distributed.initialize(
        coordinator_address=address,
        coordinator_bind_address=address,
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=args.timeout,
        heartbeat_timeout_seconds=args.timeout,
        shutdown_timeout_seconds=args.timeout,
    )


def run(args) -> dict[str, np.ndarray]:
    """This process's results (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from fairjax import kernels, metrics, penalties, postprocessing, training
    from fairjax.postprocessing._distributed import fit_barycenter_sharded

    nproc, pid = args.num_processes, args.process_id
    ax = None if args.drop_axis_name else "rows"
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    mesh = Mesh(np.array(devices), ("rows",))
    rows = NamedSharding(mesh, P("rows"))
    data = make_data(nproc)
    block = slice(pid * ROWS_PER_PROCESS, (pid + 1) * ROWS_PER_PROCESS)

    def glob(a):  # this process's block as its part of one global array
        return jax.make_array_from_process_local_data(rows, np.ascontiguousarray(a[block]))

    def local(a):  # this process's part of a global array
        return np.asarray(a.addressable_shards[0].data)

    def mapped(f, n_in):
        return jax.shard_map(
            f, mesh=mesh, in_specs=(P("rows"),) * n_in, out_specs=P(), check_vma=ax is not None
        )

    x, sc, y, s, w = (glob(data[k]) for k in ("x", "scores", "y", "s", "w"))
    proba = jax.nn.sigmoid(sc)
    out: dict[str, np.ndarray] = {}
    for name, f in metric_terms(metrics, ax).items():
        val = jax.jit(mapped(f, 5))(sc, proba, y, s, w)
        val = np.stack([np.asarray(val[k]) for k in sorted(val)]) if name == "by_group" else val
        out[f"metric/{name}"] = np.asarray(val)
    # The automatic way: jit over global arrays, XLA inserts the collectives (no axis_name).
    auto = jax.jit(
        lambda p, s, w: metrics.demographic_parity_difference(
            p, s, num_groups=NUM_GROUPS, weights=w
        )
    )
    out["auto/demographic_parity_difference"] = np.asarray(auto(proba, s, w))
    for name, f in penalty_terms(penalties, kernels, jnp, ax).items():
        m = mapped(f, 4)
        val, grad = jax.jit(jax.value_and_grad(lambda v, *b, m=m: m(v, *b)))(sc, y, s, w)
        out[f"penalty/{name}"] = np.asarray(val)
        out[f"penalty_grad/{name}"] = local(grad)  # this process's rows of the gradient

    n_total = ROWS_PER_PROCESS * nproc
    loss_fn, constraint_fn = training_terms(penalties, optax, jnp, n_total, ax)
    batch_spec = {"x": P("rows"), "y": P("rows"), "s": P("rows")}

    def per_device(f):
        return jax.shard_map(
            f, mesh=mesh, in_specs=(P(), batch_spec), out_specs=P(), check_vma=ax is not None
        )

    res = training.fit_constrained(
        per_device(loss_fn),
        per_device(constraint_fn),
        {"w": jnp.zeros(3), "b": jnp.zeros(())},
        {"x": x, "y": y.astype(jnp.float32), "s": s},
        target=0.02,
        optimizer=optax.adam(0.05),
        num_steps=40,
    )
    out["train/w"], out["train/b"] = np.asarray(res.params["w"]), np.asarray(res.params["b"])
    out["train/multiplier"] = np.asarray(res.state.multiplier)
    out.update(_barycenter(args, data, mesh, fit_barycenter_sharded, postprocessing))
    return out


def _barycenter(args, data, mesh, fit_sharded, postprocessing) -> dict[str, np.ndarray]:
    """Fit without gathering (uneven real rows, padded), then apply to this process's rows."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    nproc, pid = args.num_processes, args.process_id
    ax = None if args.drop_axis_name else "rows"
    blocks = fit_blocks(nproc)
    width = max(c for _, c in blocks)
    offset, real = blocks[pid]
    pad = width - real
    fx = np.pad(data["fit_x"][offset : offset + real], (0, pad))
    fs = np.pad(data["fit_s"][offset : offset + real], (0, pad))
    mask = np.pad(np.ones(real, np.float32), (0, pad))
    rows = NamedSharding(mesh, P("rows"))
    glob = [jax.make_array_from_process_local_data(rows, a) for a in (fx, fs, mask)]
    off = jax.make_array_from_process_local_data(rows, np.array([offset], np.uint32))
    key = jax.random.key(7)
    fit = jax.shard_map(
        lambda x, s, m, o: fit_sharded(
            x, s, num_groups=NUM_GROUPS, key=key, offset=o, weights=m, axis_name=ax, grid_size=GRID
        ),
        mesh=mesh,
        in_specs=(P("rows"),) * 4,
        out_specs=P(),
        check_vma=ax is not None,
    )
    state = jax.jit(fit)(*glob, off)
    block = slice(pid * ROWS_PER_PROCESS, (pid + 1) * ROWS_PER_PROCESS)
    # Applying is row-wise: each process maps its own rows with the (replicated) state.
    local_state = jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), state)
    fair = postprocessing.apply_barycenter(
        local_state,
        data["query_x"][block],
        data["s"][block],
        key=jax.random.fold_in(jax.random.key(8), pid),
    )
    out = {f"fit/{k}": np.asarray(getattr(state, k)) for k in STATE_FIELDS}
    out["apply/fair"] = np.asarray(fair)
    return out


STATE_FIELDS = (
    "cdf_values",
    "cdf_count",
    "quantile_values",
    "quantile_count",
    "proportions",
    "jitter",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--timeout", type=int, default=60, help="seconds for the runtime")
    parser.add_argument("--drop-axis-name", action="store_true", help="the negative control")
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    _init(args)
    import jax

    out = run(args)
    np.savez(args.out / f"process_{args.process_id}.npz", **out)
    jax.distributed.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    main()
