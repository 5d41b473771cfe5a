"""Penalties on 8 devices equal the single-device values (issue 7, part 6).

The batch is sharded along its rows over 8 host CPU devices (``tests/conftest.py`` sets
``XLA_FLAGS=--xla_force_host_platform_device_count=8``), two ways: ``jax.jit`` with inputs placed
by a ``NamedSharding`` (XLA inserts the collectives), and ``jax.shard_map`` with ``axis_name=``
(each device holds its rows; the group statistics are reduced with ``psum``, or the rows
all-gathered for the distribution penalties). Values and gradients must agree to 1e-5. The
metrics have their own such test in ``tests/metrics/``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fairjax import groups as gs
from fairjax import kernels, penalties

N, G, DEVICES = 64, 3, 8
KERNEL = kernels.gaussian(bandwidth=1.0)

pytestmark = pytest.mark.skipif(
    jax.device_count() < DEVICES, reason="needs 8 devices (conftest sets 8 host CPU devices)"
)


def batch():
    rng = np.random.default_rng(0)
    s = rng.integers(0, G, N).astype(np.int32)
    x = (rng.normal(size=N) + 0.5 * s).astype(np.float32)
    y = rng.integers(0, 2, N).astype(np.int32)
    w = rng.uniform(0.2, 2.0, N).astype(np.float32)
    w[::7] = 0.0  # some masked rows, spread over the devices
    return x, s, y, w


def _h(x):
    return jnp.stack([x, jnp.sin(x)], axis=1)


# f(scores, groups, labels, weights, axis_name) -> scalar
PENALTIES = {
    "mean_difference": lambda x, s, y, w, ax: penalties.mean_difference(
        x, s, num_groups=G, weights=w, axis_name=ax
    ),
    "mean_difference positive squared": lambda x, s, y, w, ax: penalties.mean_difference(
        x,
        s,
        num_groups=G,
        weights=w,
        labels=y,
        criterion="equal_opportunity",
        reduction="squared",
        axis_name=ax,
    ),
    "sigmoid_rate_difference": lambda x, s, y, w, ax: penalties.sigmoid_rate_difference(
        x, s, num_groups=G, weights=w, axis_name=ax, temperature=0.5
    ),
    "wasserstein": lambda x, s, y, w, ax: penalties.wasserstein(
        x, s, num_groups=G, weights=w, axis_name=ax
    ),
    "wasserstein p=1 pooled": lambda x, s, y, w, ax: penalties.wasserstein(
        x, s, num_groups=G, weights=w, axis_name=ax, p=1, reference="pooled"
    ),
    "mmd": lambda x, s, y, w, ax: penalties.mmd(
        _h(x), s, num_groups=G, weights=w, kernel=KERNEL, axis_name=ax
    ),
    "mmd median bandwidth pairwise": lambda x, s, y, w, ax: penalties.mmd(
        _h(x), s, num_groups=G, weights=w, reference="pairwise", axis_name=ax
    ),
    "sinkhorn": lambda x, s, y, w, ax: penalties.sinkhorn(
        _h(x), s, num_groups=G, weights=w, axis_name=ax, solver_kwargs={"threshold": 1e-6}
    ),
    "group_means (sum of)": lambda x, s, y, w, ax: jnp.sum(
        gs.group_means(x, s, num_groups=G, weights=w, labels=y, axis_name=ax)
    ),
}
TOL = {"sinkhorn": 1e-4}  # an iterative solver: equal to its convergence threshold


def _mesh():
    return Mesh(np.array(jax.devices()[:DEVICES]), ("batch",))


def _shard_mapped(f, mesh):
    spec = PartitionSpec("batch")
    return jax.shard_map(
        lambda *a: f(*a, "batch"), mesh=mesh, in_specs=(spec,) * 4, out_specs=PartitionSpec()
    )


def _single(f, args):
    return jax.value_and_grad(lambda x: f(x, *args[1:], None))(args[0])


def _sharded(args):
    rows = NamedSharding(_mesh(), PartitionSpec("batch"))
    out = [jax.device_put(jnp.asarray(a), rows) for a in args]
    assert len(out[0].sharding.device_set) == DEVICES
    return out


def _assert_equal(name, got, want):
    tol = TOL.get(name, 1e-5)
    np.testing.assert_allclose(got[0], want[0], rtol=tol, atol=tol)  # value
    np.testing.assert_allclose(got[1], want[1], rtol=tol, atol=tol)  # gradient in the scores
    assert float(want[0]) > 1e-3  # groups differ: the comparison has something to compare


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] * (n == "sinkhorn")) for n in sorted(PENALTIES)],
)
def test_jit_with_sharded_inputs_equals_single_device(name):
    """jit over NamedSharding-placed inputs: XLA partitions the program, inserts reductions."""
    f = PENALTIES[name]
    args = batch()
    got = jax.jit(jax.value_and_grad(lambda x, *rest: f(x, *rest, None)))(*_sharded(args))
    _assert_equal(name, got, _single(f, args))


# The distribution penalties gather all rows across devices with groups.gather_rows (typed
# replicated, so shard_map's replication check passes); the others psum group statistics.
@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_shard_map_with_axis_name_equals_single_device(name):
    """Inside shard_map each device holds its rows; the penalty reduces through axis_name."""
    f = PENALTIES[name]
    args = batch()
    mapped = _shard_mapped(f, _mesh())
    got = jax.jit(jax.value_and_grad(lambda x, *rest: mapped(x, *rest)))(*_sharded(args))
    _assert_equal(name, got, _single(f, args))


def test_shard_map_without_axis_name_gives_the_local_value():
    """The check above can fail: forgetting axis_name gives each device its own shard's value."""
    f = PENALTIES["mean_difference"]
    args = batch()
    mesh = _mesh()
    spec = PartitionSpec("batch")
    local = jax.shard_map(
        lambda *a: f(*a, None)[None],
        mesh=mesh,
        in_specs=(spec,) * 4,
        out_specs=spec,
    )
    per_device = np.asarray(jax.jit(local)(*args))
    single = float(f(*args, None))
    assert per_device.shape == (DEVICES,)
    assert np.max(np.abs(per_device - single)) > 1e-3


def test_gather_rows_in_float64():
    """With x64 on, the device's row offset (int32) and the other offsets share one type."""
    spec = PartitionSpec("batch")
    with jax.enable_x64(True):
        x = np.arange(DEVICES * 3 * 2, dtype=np.float64).reshape(DEVICES * 3, 2)
        gather = jax.shard_map(
            lambda a: gs.gather_rows(a, axis_name="batch")[0],
            mesh=_mesh(),
            in_specs=(spec,),
            out_specs=PartitionSpec(),
        )
        got = jax.jit(gather)(x)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, x)
