"""Tests of fairjax.groups against a NumPy reference."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fairjax import groups as gs

try:  # jax >= 0.6 exports shard_map at the top level; older versions keep it experimental.
    shard_map = jax.shard_map
except AttributeError:  # pragma: no cover
    from jax.experimental.shard_map import shard_map


def reference_stats(values, ids, num_groups, weights, labels=None, label_value=1):
    """Plain NumPy loop: counts, sums and means per group (boolean masks, no tricks)."""
    w = np.asarray(weights, np.float64)
    if labels is not None:
        w = w * (np.asarray(labels) == label_value)
    counts, sums, means = [], [], []
    for g in range(num_groups):
        mask = np.asarray(ids) == g
        c = w[mask].sum()
        s = (w[mask, None] * np.asarray(values, np.float64).reshape(len(w), -1)[mask]).sum(0)
        counts.append(c)
        sums.append(s)
        means.append(s / c if c > 0 else np.zeros_like(s))
    return np.array(counts), np.array(sums), np.array(means)


@pytest.mark.parametrize("num_groups", [1, 2, 3, 5, gs._MASKED_MAX_GROUPS + 3])
@pytest.mark.parametrize("conditioned", [False, True])
def test_stats_match_reference(num_groups, conditioned):
    rng = np.random.default_rng(num_groups)
    n = 200
    ids = rng.integers(0, num_groups, n)
    values = rng.normal(size=(n, 3)).astype(np.float32)
    weights = rng.uniform(0, 2, n).astype(np.float32)
    labels = rng.integers(0, 2, n) if conditioned else None
    kw = dict(num_groups=num_groups, weights=weights, labels=labels, label_value=1)
    counts, sums, means = reference_stats(values, ids, num_groups, weights, labels)
    np.testing.assert_allclose(gs.group_counts(ids, **kw), counts, rtol=1e-5)
    np.testing.assert_allclose(gs.group_sums(values, ids, **kw), sums, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gs.group_means(values, ids, **kw), means, rtol=1e-4, atol=1e-5)


def test_membership_matrix_equals_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, 50)
    values = rng.normal(size=50).astype(np.float32)
    onehot = np.eye(4, dtype=np.float32)[ids]
    np.testing.assert_allclose(
        gs.group_means(values, onehot), gs.group_means(values, ids, num_groups=4), rtol=1e-6
    )


def test_soft_membership_is_weighted_mean():
    values = jnp.array([1.0, 3.0])
    soft = jnp.array([[0.5, 0.5], [0.0, 1.0]])
    # group 0: only row 0 (mass 0.5) -> 1; group 1: (0.5 * 1 + 3) / 1.5
    np.testing.assert_allclose(gs.group_means(values, soft), [1.0, 3.5 / 1.5], rtol=1e-6)


def test_empty_group_mean_is_zero_with_finite_gradient():
    ids = jnp.array([0, 0, 2, 2])
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    means = gs.group_means(x, ids, num_groups=3)
    np.testing.assert_allclose(means, [1.5, 0.0, 3.5])

    def loss(x, w):
        return jnp.sum(gs.group_means(x, ids, num_groups=3, weights=w) ** 2)

    w = jnp.array([1.0, 1.0, 0.0, 0.0])  # groups 1 and 2 both empty
    gx, gw = jax.grad(loss, argnums=(0, 1))(x, w)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gw))
    np.testing.assert_allclose(gx, [1.5, 1.5, 0.0, 0.0], rtol=1e-6)  # d/dx of 2 * mean^2 / 2


@pytest.mark.slow
def test_gradient_matches_finite_differences():
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        ids = jnp.asarray(rng.integers(0, 3, 30))
        x = jnp.asarray(rng.normal(size=30))
        w = jnp.asarray(rng.uniform(0.5, 1.5, 30))

        def f(x, w):
            return gs.group_means(x, ids, num_groups=3, weights=w)

        check_grads(f, (x, w), order=2, modes=["fwd", "rev"])


def test_zero_weight_rows_equal_subset():
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 3, 40)
    x = rng.normal(size=40).astype(np.float32)
    keep = rng.uniform(size=40) < 0.6
    masked = gs.group_means(x, ids, num_groups=3, weights=keep.astype(np.float32))
    subset = gs.group_means(x[keep], ids[keep], num_groups=3)
    # Masked rows enter the sums as zeros, so the two sums add in different orders: they agree
    # to float32 rounding of the summands (eps * max|x| ~ 3e-7), not bit for bit; group 0's
    # mean (0.003) is a cancellation, so a relative tolerance alone would demand more.
    np.testing.assert_allclose(masked, subset, rtol=1e-6, atol=3e-7)


def test_jit_no_retrace_and_dtypes():
    traces = []

    @functools.partial(jax.jit, static_argnames="num_groups")
    def f(x, ids, num_groups):
        traces.append(1)
        return gs.group_means(x, ids, num_groups=num_groups)

    ids = jnp.array([0, 1, 1])
    for _ in range(3):
        f(jnp.array([1.0, 2.0, 3.0]), ids, num_groups=2)
    assert len(traces) == 1
    bf16 = gs.group_means(jnp.array([1.0, 2.0, 3.0], jnp.bfloat16), ids, num_groups=2)
    assert bf16.dtype == jnp.float32  # accumulates in at least float32
    with jax.enable_x64(True):
        f64 = gs.group_means(jnp.array([1.0, 2.0, 3.0], jnp.float64), ids, num_groups=2)
        assert f64.dtype == jnp.float64


def test_axis_name_psum_equals_global_mean():
    devices = np.array(jax.devices())
    if devices.size < 2:
        pytest.skip("needs several devices (tests set XLA_FLAGS for 8 host devices)")
    mesh = Mesh(devices, ("batch",))
    n = 16 * devices.size
    rng = np.random.default_rng(3)
    ids = jnp.asarray(rng.integers(0, 3, n))
    x = jnp.asarray(rng.normal(size=n).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, 2, n))

    def local(x, ids, labels):
        return gs.group_means(x, ids, num_groups=3, labels=labels, axis_name="batch")

    spec = PartitionSpec("batch")
    sharded = shard_map(local, mesh=mesh, in_specs=(spec, spec, spec), out_specs=PartitionSpec())
    put = functools.partial(jax.device_put, device=NamedSharding(mesh, spec))
    got = jax.jit(sharded)(put(x), put(ids), put(labels))
    want = gs.group_means(x, ids, num_groups=3, labels=labels)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_intersect_is_a_bijection():
    a = np.repeat(np.arange(2), 12)
    b = np.tile(np.repeat(np.arange(3), 4), 2)
    c = np.tile(np.arange(4), 6)
    ids = np.asarray(gs.intersect(a, b, c, num_groups=(2, 3, 4)))
    assert sorted(ids.tolist()) == list(range(24))  # every combination, each once
    np.testing.assert_array_equal(ids, a * 12 + b * 4 + c)
    names = gs.intersection_names(["a0", "a1"], ["b0", "b1", "b2"], ["c0", "c1", "c2", "c3"])
    assert names[int(ids[5])] == f"a{a[5]} & b{b[5]} & c{c[5]}"
    traced = jax.jit(lambda a, b: gs.intersect(a, b, num_groups=(2, 3)))(a, b)
    np.testing.assert_array_equal(traced, a * 3 + b)


def test_intersection_names_refuses_a_string_for_a_list_of_labels():
    with pytest.raises(TypeError, match=r"`names\[1\]`.*'MF'"):
        gs.intersection_names(["young", "old"], "MF")
    assert gs.intersection_names(["a"], ("x", "y"), separator="/") == ["a/x", "a/y"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: gs.group_means(jnp.ones(3), jnp.array([0, 1, 2]), num_groups=2), "num_groups=2"),
        (lambda: gs.group_means(jnp.ones(3), jnp.array([0, -1, 1]), num_groups=2), "groups"),
        (lambda: gs.group_means(jnp.ones(3), jnp.array([0, 1]), num_groups=2), "groups"),
        (lambda: gs.group_means(jnp.ones(2), jnp.array([0, 1])), "num_groups"),
        (lambda: gs.group_means(jnp.ones(2), jnp.array([0.0, 1.0]), num_groups=2), "integer"),
        (lambda: gs.group_counts(jnp.array([0, 1]), num_groups=2, weights=[1.0, -1.0]), "weights"),
        (lambda: gs.group_counts(jnp.array([0, 1]), num_groups=2, weights=[0.0, 0.0]), "zero"),
        (lambda: gs.group_counts(jnp.array([0, 1]), num_groups=2, weights=[1.0]), "weights"),
        (lambda: gs.group_counts(jnp.array([0, 1]), num_groups=2.0), "num_groups"),
        (lambda: gs.group_counts(jnp.ones((2, 3)), num_groups=2), "columns"),
        (lambda: gs.intersect(jnp.array([0, 1]), jnp.array([0]), num_groups=(2, 2)), "shape"),
        (lambda: gs.intersect(jnp.array([0, 1]), num_groups=(2, 2)), "one size per"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_return_counts_matches_group_counts():
    ids = jnp.array([0, 0, 2, 2, 2])
    x = jnp.arange(10.0).reshape(5, 2)
    labels = jnp.array([1, 0, 1, 1, 0])
    means, counts = gs.group_means(x, ids, num_groups=3, labels=labels, return_counts=True)
    np.testing.assert_allclose(counts, gs.group_counts(ids, num_groups=3, labels=labels))
    np.testing.assert_allclose(means, [[0.0, 1.0], [0.0, 0.0], [5.0, 6.0]])


def test_many_groups_use_the_same_statistics():
    # Above the dense threshold the implementation switches to a segment sum: same values.
    num_groups = gs._DENSE_MAX_GROUPS + 7
    rng = np.random.default_rng(4)
    ids = rng.integers(0, num_groups, 500)
    x = rng.normal(size=500).astype(np.float32)
    w = rng.uniform(size=500).astype(np.float32)
    counts, _, means = reference_stats(x, ids, num_groups, w)
    got_means, got_counts = gs.group_means(
        x, ids, num_groups=num_groups, weights=w, return_counts=True
    )
    np.testing.assert_allclose(got_counts, counts, rtol=1e-5)
    np.testing.assert_allclose(got_means, means[:, 0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("num_groups", [2, gs._MASKED_MAX_GROUPS + 3, gs._DENSE_MAX_GROUPS + 1])
@pytest.mark.parametrize("trailing", [(), (3,)])
@pytest.mark.parametrize("as_matrix", [False, True])
def test_float32_sums_stay_accurate_over_many_rows(num_groups, trailing, as_matrix):
    # A running float32 sum over 3 * 10^5 weighted rows drifts visibly; the masked reductions
    # (one value per row) and the blocked contractions (trailing axes) must not.
    if as_matrix and num_groups > 2:
        pytest.skip("a membership matrix of more groups is the same contraction")
    n = 300_000
    rng = np.random.default_rng(5)
    ids = rng.integers(0, num_groups, n)
    x = rng.uniform(size=(n, *trailing)).astype(np.float32)
    w = rng.uniform(size=n).astype(np.float32)
    groups = np.eye(num_groups, dtype=np.float32)[ids] if as_matrix else ids
    got = np.asarray(gs.group_sums(x, groups, num_groups=num_groups, weights=w))
    weighted = x.astype(np.float64) * w.reshape(w.shape + (1,) * len(trailing))
    want = np.stack([weighted[ids == g].sum(axis=0) for g in range(num_groups)])
    np.testing.assert_allclose(got, want, rtol=2e-6)


@pytest.mark.parametrize("as_matrix", [False, True])
def test_vmapped_statistics_equal_separate_calls(as_matrix):
    # A Pareto sweep vmaps the group statistics over models: the batched program must compute
    # the same means and counts as one call per model.
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 3, 5000)
    groups = jnp.asarray(np.eye(3, dtype=np.float32)[ids] if as_matrix else ids)
    values = jnp.asarray(rng.normal(size=(4, 5000)).astype(np.float32))
    w = jnp.asarray(rng.uniform(size=5000).astype(np.float32))

    def stats(v):
        return gs.group_means(v, groups, num_groups=3, weights=w, return_counts=True)

    batched_means, batched_counts = jax.jit(jax.vmap(stats))(values)
    for k in range(values.shape[0]):
        means, counts = jax.jit(stats)(values[k])
        np.testing.assert_allclose(batched_means[k], means, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(batched_counts[k], counts)


@pytest.mark.parametrize("num_groups", [3, 8, 64, gs._DENSE_MAX_GROUPS * 2 + 5])
def test_one_pass_group_sums_equal_masked_reductions_and_bincount(num_groups):
    # Beyond the masked threshold one value per row is summed by one blocked segment sum: the
    # same sums as the masked reductions it replaced and as NumPy's weighted bincount, under
    # jit and vmap, with an empty group (the last id never occurs) counted 0.
    n = 3 * gs._BLOCK_ROWS + 17  # several blocks and a partial one
    rng = np.random.default_rng(num_groups)
    ids = rng.integers(0, num_groups - 1, n).astype(np.int32)
    x = rng.normal(size=(4, n)).astype(np.float32)
    w = rng.uniform(size=n).astype(np.float32)

    def stats(values):
        sums = gs.group_sums(values, ids, num_groups=num_groups, weights=w)
        return sums, gs.group_counts(ids, num_groups=num_groups, weights=w)

    batched_sums, batched_counts = jax.jit(jax.vmap(stats))(jnp.asarray(x))
    for k in range(x.shape[0]):
        sums, counts = jax.jit(stats)(jnp.asarray(x[k]))
        masked = [np.sum(np.where(ids == g, x[k] * w, 0)) for g in range(num_groups)]
        want = np.bincount(ids, weights=x[k].astype(np.float64) * w, minlength=num_groups)
        np.testing.assert_allclose(sums, want, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(sums, np.stack(masked), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(batched_sums[k], sums, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            counts, np.bincount(ids, weights=w, minlength=num_groups), rtol=1e-5
        )
        np.testing.assert_array_equal(batched_counts[k], counts)
    assert counts[-1] == 0


def reference_decision_counts(decisions, ids, labels, num_groups, label_values):
    """NumPy bincounts: rows and nonzero decisions of each group, one row per condition."""
    rows, positives = [], []
    for c in label_values:
        keep = np.ones(len(ids), bool) if c is None else np.asarray(labels) == c
        ids_c = np.asarray(ids)[keep]
        rows.append(np.bincount(ids_c, minlength=num_groups))
        positives.append(
            np.bincount(ids_c, weights=np.asarray(decisions)[keep] != 0, minlength=num_groups)
        )
    return np.array(rows), np.array(positives)


# Lengths around the block of rows that decision_counts sums first: none, a part, exactly one,
# several and a remainder.
_BLOCK = gs._COUNT_BLOCK_ROWS


@pytest.mark.parametrize("n", [0, _BLOCK - 1, _BLOCK, 3 * _BLOCK + 17])
@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int32"])
@pytest.mark.parametrize("num_groups", [1, 5, gs.DECISION_COUNTS_MAX_GROUPS])
def test_decision_counts_equal_bincounts(n, dtype, num_groups):
    rng = np.random.default_rng(n + num_groups)
    ids = rng.integers(0, num_groups, n)
    labels = rng.integers(0, 2, n).astype(dtype)
    decisions = (rng.random(n) < 0.4).astype(dtype)
    conditions = (None, 1, 0)
    rows, positives = gs.decision_counts(
        decisions, ids, labels, num_groups=num_groups, label_values=conditions
    )
    want_rows, want_pos = reference_decision_counts(decisions, ids, labels, num_groups, conditions)
    assert rows.dtype == positives.dtype == jnp.int32
    assert rows.shape == positives.shape == (3, num_groups)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(positives, want_pos)


def test_decision_counts_count_nonzero_decisions_and_blocks_full_of_ones():
    # A whole block of positive rows of one group: each block count reaches its largest value
    # (the block length), which must not wrap in the narrow block sums of one-byte inputs.
    n = 2 * _BLOCK + 5
    ids = np.zeros(n, np.int8)
    decisions = np.full(n, -3, np.int8)  # nonzero: positive
    rows, positives = gs.decision_counts(decisions, ids, num_groups=2)
    np.testing.assert_array_equal(rows, [[n, 0]])
    np.testing.assert_array_equal(positives, [[n, 0]])


def test_decision_counts_under_jit_vmap_and_shard_map():
    rng = np.random.default_rng(7)
    n, G = 8 * 40, 3
    ids = jnp.asarray(rng.integers(0, G, n))
    labels = jnp.asarray(rng.integers(0, 2, n))
    batch = jnp.asarray(rng.random((4, n)) < 0.5)
    count = functools.partial(gs.decision_counts, num_groups=G, label_values=(None, 1))
    one_by_one = [count(d, ids, labels) for d in batch]
    vmapped = jax.jit(jax.vmap(count, in_axes=(0, None, None)))(batch, ids, labels)
    for k, (rows, positives) in enumerate(one_by_one):
        np.testing.assert_array_equal(vmapped[0][k], rows)
        np.testing.assert_array_equal(vmapped[1][k], positives)
    devices = np.array(jax.devices())
    if devices.size < 2:
        pytest.skip("needs several devices (tests set XLA_FLAGS for 8 host devices)")
    mesh = Mesh(devices, ("batch",))
    spec = PartitionSpec("batch")
    sharded = shard_map(
        functools.partial(count, axis_name="batch"),
        mesh=mesh,
        in_specs=(spec, spec, spec),
        out_specs=PartitionSpec(),
    )
    put = functools.partial(jax.device_put, device=NamedSharding(mesh, spec))
    got = jax.jit(sharded)(put(batch[0]), put(ids), put(labels))
    np.testing.assert_array_equal(got[0], one_by_one[0][0])
    np.testing.assert_array_equal(got[1], one_by_one[0][1])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: gs.decision_counts(np.ones(4), np.zeros(4, int), num_groups=2),
            TypeError,
            "`decisions` must be integer or boolean",
        ),
        (
            lambda: gs.decision_counts(
                np.ones(4, int), np.zeros(4, int), np.ones(4), num_groups=2, label_values=(1,)
            ),
            TypeError,
            "`labels` must be integer or boolean",
        ),
        (
            lambda: gs.decision_counts(
                np.ones(4, int), np.zeros(4, int), num_groups=2, label_values=(1,)
            ),
            ValueError,
            "`labels` are required",
        ),
        (
            lambda: gs.decision_counts(np.ones(4, int), np.zeros(4, int), num_groups=9),
            ValueError,
            "`num_groups` must be at most 8",
        ),
        (
            lambda: gs.decision_counts(np.ones(4, int), np.zeros(3, int), num_groups=2),
            ValueError,
            "groups",
        ),
        (
            lambda: gs.decision_counts(np.ones(4, int), np.eye(4, 2), num_groups=2),
            ValueError,
            "groups",
        ),
        (
            lambda: gs.decision_counts(
                np.ones(4, int), np.zeros(4, int), num_groups=2, label_values=()
            ),
            ValueError,
            "`label_values`",
        ),
        (
            lambda: gs.decision_counts(
                np.ones(4, int), np.zeros(4, int), np.ones(4, int), num_groups=2, label_values="1"
            ),
            TypeError,
            "`label_values` must be a sequence",
        ),
        (
            lambda: gs.decision_counts(
                np.ones(4, int), np.zeros(4, int), np.ones(4, int), num_groups=2, label_values=1
            ),
            TypeError,
            "`label_values` must be a sequence",
        ),
        (
            lambda: gs.decision_counts(
                np.ones(4, int), np.zeros(4, int), np.ones(4, int), num_groups=2, label_values=["1"]
            ),
            TypeError,
            "`label_values` must hold numbers or None",
        ),
    ],
)
def test_decision_counts_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("num_groups", [1, 3, gs.DECISION_COUNTS_MAX_GROUPS])
@pytest.mark.parametrize("labels_dtype", [None, "bool", "int32", "float32"])
def test_counts_without_weights_equal_unit_weights(num_groups, labels_dtype):
    # Without weights, integer ids of up to 8 groups are counted exactly in one pass (with
    # integer or boolean labels; float labels take the float sums); unit weights take the float
    # sums. Both give the same counts and means, bit for bit, under jit too.
    rng = np.random.default_rng(num_groups)
    n = 3 * gs._COUNT_BLOCK_ROWS + 5
    ids = jnp.asarray(rng.integers(0, num_groups, n))
    x = jnp.asarray(rng.normal(size=(n, 2)).astype(np.float32))
    labels = None if labels_dtype is None else jnp.asarray(rng.integers(0, 2, n), labels_dtype)
    kw = dict(num_groups=num_groups, labels=labels, label_value=0)
    unit = dict(kw, weights=jnp.ones(n))
    np.testing.assert_array_equal(gs.group_counts(ids, **kw), gs.group_counts(ids, **unit))
    means, counts = jax.jit(lambda x, i: gs.group_means(x, i, return_counts=True, **kw))(x, ids)
    want_means, want_counts = gs.group_means(x, ids, return_counts=True, **unit)
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(means, want_means)
    keep = np.ones(n, bool) if labels is None else np.asarray(labels) == 0
    np.testing.assert_array_equal(counts, np.bincount(np.asarray(ids)[keep], minlength=num_groups))


def test_missing_num_groups_message_fits_concrete_and_traced_ids():
    x, ids = np.array([1.0, 0.0, 1.0]), np.array([0, 1, 0])
    with pytest.raises(ValueError, match=r"`num_groups` is required .* with integer group ids"):
        gs.group_means(x, ids)
    with pytest.raises(ValueError, match=r"`num_groups` is required .* traced ids"):
        jax.jit(lambda a, b: gs.group_means(a, b))(x, ids)


def test_intersect_names_a_membership_matrix_as_the_wrong_attribute():
    # A membership matrix first was blamed on attribute 1 ("like attribute 0"; probe).
    onehot = jax.nn.one_hot(jnp.array([0, 1, 0, 1]), 2)
    with pytest.raises(ValueError, match="attribute 0 must be integer ids"):
        gs.intersect(onehot, jnp.array([0, 1, 1, 0]), num_groups=[2, 2])


def test_bad_arguments_are_named():
    # A string label_value gave "'bool' object has no attribute 'astype'", a scalar to
    # column_sums an IndexError, a bare int num_groups to intersect "'int' object is not
    # iterable"; a short labels array named `groups`, which row_weights does not take.
    labels = jnp.array([1, 0, 1])
    for value in ("1", None):
        with pytest.raises(TypeError, match="`label_value` must be a number"):
            gs.row_weights(3, labels=labels, label_value=value)
    with pytest.raises(ValueError, match="`labels` must have one row per sample of the data"):
        gs.row_weights(3, labels=jnp.array([1, 0]))
    with pytest.raises(ValueError, match="`rows` must have a leading axis"):
        gs.column_sums(3.0)
    with pytest.raises(TypeError, match="`num_groups` must give one size per attribute"):
        gs.intersect(jnp.array([0, 1]), num_groups=2)
