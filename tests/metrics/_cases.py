"""Data and checks shared by the metric tests (parity, scores, tables)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def random_case(num_groups, n=400, seed=0, proba=False):
    rng = np.random.default_rng(seed + 10 * num_groups)
    groups = rng.integers(0, num_groups, n)
    y_true = rng.integers(0, 2, n)
    # Group-dependent prediction rates, so the gaps are not all near zero.
    p = 0.2 + 0.6 * groups / max(num_groups - 1, 1)
    y_pred = (rng.uniform(size=n) < p).astype(int)
    weights = rng.uniform(0.1, 3.0, n)
    return y_true, y_pred, groups, weights


def check_zero_weights_equal_subset_and_empty_group(metric):
    rng = np.random.default_rng(8)
    groups = rng.integers(0, 3, 120)
    scores = (rng.normal(size=120) + groups).astype(np.float32)
    keep = (rng.uniform(size=120) < 0.7) & (groups != 2)  # group 2 becomes empty
    masked = metric(scores, groups, keep.astype(np.float32))
    subset = metric(scores[keep], groups[keep], None)
    assert np.isfinite(float(masked))
    np.testing.assert_allclose(masked, subset, rtol=1e-6, atol=1e-7)


def check_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def check_same_under_jit(call):
    y_true, y_pred, groups, weights = random_case(3, n=200, seed=11)
    scores = np.random.default_rng(11).normal(size=200).astype(np.float32) + groups
    args = (y_true, y_pred, groups, scores, weights.astype(np.float32))
    eager = call(*args)
    jitted = jax.jit(call)(*args)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), eager, jitted)


def check_sharded_equals_single_device(call):
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    try:
        shard_map = jax.shard_map
    except AttributeError:  # pragma: no cover - older jax
        from jax.experimental.shard_map import shard_map

    devices = np.array(jax.devices())
    if devices.size < 8:
        pytest.skip("needs 8 devices (tests set XLA_FLAGS for 8 host devices)")
    y_true, y_pred, groups, weights = random_case(3, n=800, seed=12)
    scores = np.random.default_rng(12).normal(size=800).astype(np.float32) + groups
    args = (y_true, y_pred, groups, scores, weights.astype(np.float32))
    single = call(*args, None)

    mesh = Mesh(devices, ("batch",))
    rows = NamedSharding(mesh, PartitionSpec("batch"))
    sharded_args = [jax.device_put(jnp.asarray(a), rows) for a in args]
    through_jit = jax.jit(lambda *a: call(*a, None))(*sharded_args)
    spec = PartitionSpec("batch")
    mapped = shard_map(
        lambda *a: call(*a, "batch"),
        mesh=mesh,
        in_specs=(spec,) * 5,
        out_specs=PartitionSpec(),
    )
    inside = jax.jit(mapped)(*sharded_args)
    for got in (through_jit, inside):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, single
        )
