"""Data-parallel fair training: the batch sharded over devices, the penalty reduced across them.

A logistic model is trained with a demographic-parity penalty (the smoothed gap in positive
rate between groups, :func:`fairjax.penalties.sigmoid_rate_difference`) three ways, and the
three runs end at the same parameters:

1. one device;
2. ``jax.jit`` with the batch sharded along its rows by a ``NamedSharding`` over every device:
   the code is the single-device code, XLA partitions it and inserts the reductions;
3. ``jax.shard_map``: each device computes on its own rows and the fairness penalty sums its
   group statistics across devices with ``axis_name=`` (a ``psum`` of G numbers per statistic,
   independent of the batch size), like the task loss.

Run on CPU with 8 simulated devices::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/data_parallel.py

On a machine with several accelerators, drop the flag; on several hosts, call
``jax.distributed.initialize()`` first (see ``docs/multi_device.md``).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fairjax import metrics, penalties

NUM_GROUPS = 2


def make_data(n: int, d: int, seed: int = 0):
    """Features whose first coordinate depends on the group, so an unfair model is easy."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, NUM_GROUPS, n).astype(np.int32)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 0] += 1.5 * s
    logit = x @ np.linspace(1.0, -0.5, d) + 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return x, y, s


def objective(params, x, y, s, *, lam, n_total, axis_name=None):
    """Mean logistic loss + lam * DP penalty; with axis_name, x, y, s are this device's rows."""
    logits = x @ params["w"] + params["b"]
    loss_sum = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, y))
    if axis_name is not None:
        loss_sum = jax.lax.psum(loss_sum, axis_name)  # the task loss of the whole batch
    # The penalty reduces its group statistics across devices itself through axis_name.
    penalty = penalties.sigmoid_rate_difference(
        logits, s, num_groups=NUM_GROUPS, axis_name=axis_name, reduction="squared"
    )
    return loss_sum / n_total + lam * penalty


def train(step, params, batch, num_steps):
    opt_state = OPTIMIZER.init(params)
    for _ in range(num_steps):
        params, opt_state = step(params, opt_state, *batch)
        # One step in flight at a time: XLA's CPU collectives wait for every simulated device's
        # thread, and on a machine with few cores queued steps can starve that rendezvous.
        jax.block_until_ready(params)
    return params


OPTIMIZER = optax.adam(0.05)


def make_step(loss):
    @jax.jit
    def step(params, opt_state, x, y, s):
        grads = jax.grad(loss)(params, x, y, s)
        updates, opt_state = OPTIMIZER.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096, help="batch size (full batch)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lam", type=float, default=20.0, help="penalty weight")
    args = parser.parse_args()

    devices = jax.devices()
    if args.n % len(devices):
        raise SystemExit(f"--n must be a multiple of the {len(devices)} devices")
    x, y, s = make_data(args.n, 5)
    params = {"w": jnp.zeros(5), "b": jnp.zeros(())}
    obj = dict(lam=args.lam, n_total=args.n)

    # 1. One device (and, for reference, without the penalty).
    single = train(make_step(lambda p, *b: objective(p, *b, **obj)), params, (x, y, s), args.steps)
    unpenalised = train(
        make_step(lambda p, *b: objective(p, *b, lam=0.0, n_total=args.n)),
        params,
        (x, y, s),
        args.steps,
    )

    # 2. jit with sharded inputs: the same code, XLA inserts the cross-device reductions.
    mesh = Mesh(np.array(devices), ("batch",))
    rows = NamedSharding(mesh, PartitionSpec("batch"))
    batch = tuple(jax.device_put(a, rows) for a in (x, y, s))
    print(
        f"{len(devices)} device(s); each holds {batch[0].addressable_shards[0].data.shape[0]} rows"
    )
    auto = train(make_step(lambda p, *b: objective(p, *b, **obj)), params, batch, args.steps)

    # 3. shard_map: explicit per-device code, group statistics psum-ed through axis_name.
    spec = PartitionSpec("batch")
    per_device = jax.shard_map(
        lambda p, *b: objective(p, *b, axis_name="batch", **obj),
        mesh=mesh,
        in_specs=(PartitionSpec(), spec, spec, spec),
        out_specs=PartitionSpec(),
    )
    explicit = train(make_step(per_device), params, batch, args.steps)

    def report(name, p):
        logits = x @ p["w"] + p["b"]
        proba = jax.nn.sigmoid(logits)
        acc = float(jnp.mean((logits > 0) == (y > 0)))
        dp = float(metrics.demographic_parity_difference(proba, s, num_groups=NUM_GROUPS))
        print(f"{name:32s} accuracy {acc:.3f}  DP gap (expected rates) {dp:.3f}")

    report("single device, no penalty", unpenalised)
    report("single device", single)
    report("jit + NamedSharding", auto)
    report("shard_map + axis_name psum", explicit)
    ok = True
    for name, p in (("jit + NamedSharding", auto), ("shard_map + axis_name", explicit)):
        diff = max(float(jnp.max(jnp.abs(p[k] - single[k]))) for k in single)
        same = diff < 1e-4
        ok &= same
        print(f"{name}: max |param - single-device param| = {diff:.2e} -> "
              f"{'equal to the single-device run' if same else 'DIFFERENT'}")  # fmt: skip
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
