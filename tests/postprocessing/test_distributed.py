"""The quantile-grid barycenter fit without gathering equals the gathered fit, bit for bit.

``fairjax/postprocessing/_distributed.py``: exact order statistics by radix selection on
order-preserving integer keys, with counts summed over devices (``psum``) or chunks. The
reference is :func:`fairjax.postprocessing.fit_barycenter` with ``method="quantile_grid"`` on
all the rows in one place; data with many ties (scores rounded to 0.1, ``jitter=0``) and
unequal groups.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from fairjax.postprocessing import apply_barycenter, fit_barycenter
from fairjax.postprocessing._distributed import (
    _edge_counts,
    _from_keys,
    _order_keys,
    _row_uniform,
    _select,
    fit_barycenter_sharded,
    fit_barycenter_streaming,
)

G = 3
FIELDS = [f.name for f in dataclasses.fields(fit_barycenter(np.zeros(4), np.arange(4) % 2,
          num_groups=2, key=jax.random.key(0), split=False))]  # fmt: skip


def data(n=3000, seed=0, decimals=1):
    """Unequal groups (60/30/10 %), scores rounded: many exact ties."""
    rng = np.random.default_rng(seed)
    s = rng.choice(G, size=n, p=[0.6, 0.3, 0.1]).astype(np.int32)
    x = np.round(rng.normal(size=n) + 1.5 * s, decimals).astype(np.float32)
    return x, s


def assert_same_state(got, want):
    for name in FIELDS:
        a, b = getattr(got, name), getattr(want, name)
        if isinstance(a, (str, bool, tuple)):
            assert a == b, name
        else:
            assert np.asarray(a).dtype == np.asarray(b).dtype, name
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def chunked(x, s, sizes):
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == x.shape[0]
    return lambda: ((x[a:b], s[a:b]) for a, b in itertools.pairwise(bounds))


# ----------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("dtype,lo,hi", [("float32", -1.0, 1.0), ("float32", 0.0, 1.0)])
def test_row_draws_equal_jax_uniform_at_any_offset(dtype, lo, hi):
    key = jax.random.key(11)
    full = jax.random.uniform(key, (5000,), dtype, lo, hi)
    index = jnp.arange(1234, 4321, dtype=jnp.uint32)
    np.testing.assert_array_equal(_row_uniform(key, index, dtype, lo, hi), full[1234:4321])
    raw = jax.random.PRNGKey(11)  # a raw uint32 key gives the same draws
    np.testing.assert_array_equal(_row_uniform(raw, index, dtype, lo, hi), full[1234:4321])


def test_order_keys_sort_like_the_floats_and_invert():
    x = jnp.array([-np.inf, -3.0, -1e-30, -0.0, 0.0, 1e-30, 2.5, np.inf], jnp.float32)
    k = np.asarray(_order_keys(x))
    assert np.all(np.diff(k.astype(np.int64)) >= 0)
    assert k[3] == k[4]  # -0.0 and +0.0 are one key
    np.testing.assert_array_equal(np.asarray(_from_keys(_order_keys(x), jnp.float32)),
                                  np.where(np.asarray(x) == 0, 0.0, np.asarray(x)))  # fmt: skip


@pytest.mark.parametrize("bits_per_pass", [2, 8])
def test_select_finds_exact_order_statistics_with_ties(bits_per_pass):
    rng = np.random.default_rng(1)
    seg = rng.choice(3, size=400, p=[0.7, 0.3, 0.0]).astype(np.int32)  # segment 2 is empty
    vals = np.round(rng.normal(size=400), 1).astype(np.float32)  # ties
    keys = _order_keys(jnp.asarray(vals))
    ranks = np.array([[-1, 0, 5, 100, 250], [0, 1, 50, 80, 119], [0, 0, 0, 0, 0]], np.int32)
    ranks[1] = np.minimum(ranks[1], (seg == 1).sum() - 1)
    got, below = _select(
        lambda e: jax.jit(_edge_counts)(keys, jnp.asarray(seg), e), jnp.asarray(ranks),
        key_bits=32, bits_per_pass=bits_per_pass, rolled=False,
    )  # fmt: skip
    got, below = np.asarray(got), np.asarray(below)
    for s in range(2):
        v = np.sort(vals[seg == s])
        for j, r in enumerate(ranks[s]):
            if r < 0:
                assert got[s, j] == 0
                continue
            assert np.asarray(_from_keys(jnp.asarray(got[s, j]), jnp.float32)) == v[r]
            assert below[s, j] == np.sum(v < v[r])  # rows strictly below the answer
    assert np.all(got[2] == np.iinfo(np.uint32).max)  # an empty segment: no answer


# ----------------------------------------------------------------------------- streaming


def test_streaming_equals_gathered_small():
    x, s = data(600)
    key = jax.random.key(3)
    want = fit_barycenter(x, s, num_groups=G, key=key, method="quantile_grid", grid_size=16,
                          split=False, jitter=0.0)  # fmt: skip
    got = fit_barycenter_streaming(chunked(x, s, [250, 250, 100]), num_groups=G, key=key,
                                   grid_size=16, split=False, jitter=0.0)  # fmt: skip
    assert_same_state(got, want)


@pytest.mark.slow
@pytest.mark.parametrize("split", [True, False])
@pytest.mark.parametrize("jitter", [0.0, 1e-5, 0.3])
def test_streaming_equals_gathered(split, jitter):
    x, s = data(5000, seed=2)
    key = jax.random.key(5)
    kw = dict(num_groups=G, key=key, grid_size=128, split=split, jitter=jitter)
    want = fit_barycenter(x, s, method="quantile_grid", **kw)
    got = fit_barycenter_streaming(chunked(x, s, [1700, 1, 2000, 1299]), **kw)
    assert_same_state(got, want)
    # ... and so the fitted maps agree on new scores.
    q, qs = data(500, seed=9, decimals=3)
    k = jax.random.key(1)
    np.testing.assert_array_equal(apply_barycenter(got, q, qs, key=k),
                                  apply_barycenter(want, q, qs, key=k))  # fmt: skip


@pytest.mark.slow
def test_streaming_two_attributes_intersections():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, 3000).astype(np.int32)
    b = rng.choice(3, size=3000, p=[0.5, 0.45, 0.05]).astype(np.int32)
    x = np.round(rng.normal(size=3000) + a - b, 1).astype(np.float32)
    key = jax.random.key(6)
    kw = dict(num_groups=(2, 3), key=key, grid_size=32)
    want = fit_barycenter(x, (a, b), method="quantile_grid", **kw)
    chunks = lambda: (
        (x[i : i + 700], (a[i : i + 700], b[i : i + 700])) for i in range(0, 3000, 700)
    )
    assert_same_state(fit_barycenter_streaming(chunks, **kw), want)


# ----------------------------------------------------------------------------- sharded


@pytest.mark.slow
@pytest.mark.skipif(jax.device_count() < 4, reason="needs 4 devices (conftest sets 8 CPUs)")
def test_sharded_uneven_shards_equal_gathered_and_need_the_axis():
    """4 devices with 700, 1, 1200 and 99 real rows, padded with weight-0 rows to 1200."""
    x, s = data(2000, seed=7)
    sizes = [700, 1, 1200, 99]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.uint32)
    width = max(sizes)

    def pad(a, fill=0):
        return np.concatenate([np.pad(a[o : o + c], (0, width - c), constant_values=fill)
                               for o, c in zip(offsets, sizes, strict=True)])  # fmt: skip

    mask = pad(np.ones(2000, np.float32))
    key = jax.random.key(8)
    mesh = Mesh(np.array(jax.devices()[:4]), ("rows",))
    rows = NamedSharding(mesh, P("rows"))
    args = [jax.device_put(a, rows) for a in (pad(x, 99.0), pad(s), mask, offsets)]

    def fit(axis_name, check_vma=True):
        f = jax.shard_map(
            lambda x, s, m, o: fit_barycenter_sharded(
                x, s, num_groups=G, key=key, offset=o, weights=m, axis_name=axis_name,
                grid_size=64, bits_per_pass=4,
            ),
            mesh=mesh, in_specs=(P("rows"),) * 4, out_specs=P(), check_vma=check_vma,
        )  # fmt: skip
        return jax.jit(f)(*args)

    want = fit_barycenter(x, s, num_groups=G, key=key, method="quantile_grid", grid_size=64)
    assert_same_state(fit("rows"), want)
    local = fit(None, check_vma=False)  # each device fits its own rows: a different state
    assert not np.array_equal(np.asarray(local.quantile_values), np.asarray(want.quantile_values))


def test_sharded_fit_of_a_nan_score_or_an_id_out_of_range_is_a_nan_state():
    # Always traced (inside shard_map), the sharded fit dropped such rows and returned a state
    # that looked whole, 98% of its outputs finite (found by review).
    x, s = data(400, seed=3)
    mesh = Mesh(np.array(jax.devices()[:4]), ("rows",))
    offsets = np.arange(4, dtype=np.uint32) * 100
    fit = jax.jit(jax.shard_map(
        lambda x, s, o: fit_barycenter_sharded(
            x, s, num_groups=G, key=jax.random.key(1), offset=o, axis_name="rows", grid_size=16),
        mesh=mesh, in_specs=(P("rows"),) * 3, out_specs=P(),
    ))  # fmt: skip
    assert np.isfinite(np.asarray(fit(x, s, offsets).proportions)).all()
    for bad_x, bad_s in ((np.where(np.arange(400) == 250, np.nan, x), s),
                         (x, np.where(np.arange(400) == 250, G + 2, s))):  # fmt: skip
        state = fit(bad_x.astype(x.dtype), bad_s.astype(s.dtype), offsets)
        assert np.isnan(np.asarray(state.proportions)).all()
        assert np.isnan(np.asarray(state.quantile_values)).all()


@pytest.mark.slow
def test_sharded_on_one_device_equals_gathered_float64():
    x, s = data(500, seed=3)
    with jax.enable_x64(True):
        x64 = x.astype(np.float64)
        key = jax.random.key(2)
        want = fit_barycenter(x64, s, num_groups=G, key=key, method="quantile_grid", grid_size=8)
        got = fit_barycenter_sharded(x64, s, num_groups=G, key=key, grid_size=8)
        assert got.quantile_values.dtype == jnp.float64
        assert_same_state(got, want)


@pytest.mark.slow
def test_x64_float32_scores_one_split_on_every_path():
    # Under x64 the compiled fit drew its split in float64, the host path and the streamed
    # fit in float32: another split each (cdf_values 1.26 apart).
    x, s = data(500, seed=4)
    x = x.astype(np.float32)
    key = jax.random.key(0)
    with jax.enable_x64(True):
        eager = fit_barycenter(x, s, num_groups=G, key=key)
        jitted = jax.jit(lambda x, s: fit_barycenter(x, s, num_groups=G, key=key))(x, s)
        assert_same_state(eager, jitted)
        grid = fit_barycenter(x, s, num_groups=G, key=key, method="quantile_grid", grid_size=8)
        chunks = [(x[:250], s[:250]), (x[250:], s[250:])]
        streamed = fit_barycenter_streaming(lambda: chunks, num_groups=G, key=key, grid_size=8)
        assert_same_state(streamed, grid)


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_argument():
    x, s = data(200)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="bits_per_pass"):
        fit_barycenter_sharded(x, s, num_groups=G, key=key, bits_per_pass=3)
    with pytest.raises(ValueError, match="weights"):
        fit_barycenter_sharded(x, s, num_groups=G, key=key, weights=np.full(200, 0.5))
    with pytest.raises(ValueError, match="grid_size"):
        fit_barycenter_sharded(x, s, num_groups=G, key=key, grid_size=1)
    bad = x.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match=r"chunk 1"):
        fit_barycenter_streaming(chunked(bad, s, [3, 197]), num_groups=G, key=key)
    with pytest.raises(ValueError, match="no chunk"):
        fit_barycenter_streaming(lambda: iter(()), num_groups=G, key=key)
    with pytest.raises(ValueError, match="group"):
        fit_barycenter_streaming(chunked(x, np.minimum(s, 1), [200]), num_groups=G, key=key)
