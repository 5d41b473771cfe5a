"""Tests of fairjax.penalties.mmd against a NumPy double-loop reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fairjax import kernels
from fairjax.penalties import mmd


def _gauss(x, y, h):
    return np.exp(-np.sum((x - y) ** 2) / (2 * h * h))


def _expect(X, a, b, h, *, unbiased):
    """Double loop: sum_{i,j} a_i b_j k(x_i, x_j) / sum a_i b_j (i != j when unbiased)."""
    num = den = 0.0
    for i in range(len(X)):
        for j in range(len(X)):
            if unbiased and i == j:
                continue
            num += a[i] * b[j] * _gauss(X[i], X[j], h)
            den += a[i] * b[j]
    return num / den


def _mmd_ref(X, a, b, h, *, unbiased):
    return (
        _expect(X, a, a, h, unbiased=unbiased)
        + _expect(X, b, b, h, unbiased=unbiased)
        - 2 * _expect(X, a, b, h, unbiased=unbiased)
    )


def _data(seed=0, n=14, r=3, num_groups=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, r))
    s = np.arange(n) % num_groups
    X[s == 1] += 0.7
    w = rng.uniform(0.2, 2.0, size=n)
    return X, s, w


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_matches_double_loop_reference_with_weights(estimator):
    X, s, w = _data()
    h = 1.3
    unbiased = estimator == "unbiased"
    M = np.eye(3)[s]
    A = M.T * w[None, :]
    pooled = np.array([_mmd_ref(X, A[g], w, h, unbiased=unbiased) for g in range(3)])
    pairs = {
        (i, j): _mmd_ref(X, A[i], A[j], h, unbiased=unbiased) for i, j in [(0, 1), (0, 2), (1, 2)]
    }
    props = A.sum(1) / A.sum()
    k = kernels.gaussian(bandwidth=h)
    kw = dict(num_groups=3, kernel=k, weights=w, estimator=estimator)
    with jax.enable_x64(True):
        got = mmd(X, s, reduction="none", **kw)
        np.testing.assert_allclose(got, pooled, rtol=1e-10, atol=1e-12)
        full = np.asarray(mmd(X, s, reference="pairwise", reduction="none", **kw))
        for (i, j), val in pairs.items():
            np.testing.assert_allclose(full[i, j], val, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(full[j, i], val, rtol=1e-10, atol=1e-12)
        if unbiased:
            return  # the reductions below do not depend on the estimator
        np.testing.assert_allclose(mmd(X, s, **kw), props @ pooled, rtol=1e-10)
        np.testing.assert_allclose(mmd(X, s, reduction="max", **kw), pooled.max(), rtol=1e-10)
        pw = np.array([props[i] * props[j] for i, j in pairs])
        np.testing.assert_allclose(
            mmd(X, s, reference="pairwise", **kw), pw @ np.array(list(pairs.values())) / pw.sum()
        )
    # float32 to 1e-5, as the issue asks
    got32 = mmd(X.astype(np.float32), s, reduction="none", **kw)
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(got32, pooled, atol=1e-5)


def test_unbiased_equals_gretton_u_statistic_on_sliced_groups():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(9, 2)) + 0.5
    h = 0.9
    Kxx = np.array([[_gauss(a, b, h) for b in X] for a in X])
    Kyy = np.array([[_gauss(a, b, h) for b in Y] for a in Y])
    Kxy = np.array([[_gauss(a, b, h) for b in Y] for a in X])
    m, n = len(X), len(Y)
    ref = (
        (Kxx.sum() - np.trace(Kxx)) / (m * (m - 1))
        + (Kyy.sum() - np.trace(Kyy)) / (n * (n - 1))
        - 2 * Kxy.mean()
    )
    s = np.r_[np.zeros(m, int), np.ones(n, int)]
    with jax.enable_x64(True):
        got = mmd(
            np.r_[X, Y],
            s,
            num_groups=2,
            kernel=kernels.gaussian(bandwidth=h),
            estimator="unbiased",
            reference="pairwise",
        )
        np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_two_groups_pooled_is_p0_p1_times_pairwise():
    X, _, w = _data(2, n=12)
    s = (np.arange(12) % 3 == 0).astype(int)
    kw = dict(num_groups=2, weights=w, kernel=kernels.gaussian(bandwidth=1.0))
    p1 = w[s == 1].sum() / w.sum()
    with jax.enable_x64(True):
        np.testing.assert_allclose(
            mmd(X, s, **kw), p1 * (1 - p1) * mmd(X, s, reference="pairwise", **kw), rtol=1e-10
        )


@pytest.mark.slow
def test_same_points_give_zero_and_identical_points_are_finite():
    X = np.random.default_rng(3).normal(size=(5, 2)).astype(np.float32)
    H = np.r_[X, X]
    s = np.r_[np.zeros(5, int), np.ones(5, int)]
    for ref in ("pooled", "pairwise"):
        assert abs(float(mmd(H, s, num_groups=2, reference=ref))) < 1e-6
    # All rows identical: the median bandwidth falls back to 1; value 0, gradient finite (0).
    same = jnp.ones((6, 3))
    s6 = jnp.array([0, 0, 0, 1, 1, 1])
    for est in ("biased", "unbiased"):
        val, g = jax.value_and_grad(lambda z, est=est: mmd(z, s6, num_groups=2, estimator=est))(
            same
        )
        assert abs(float(val)) < 1e-6
        assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.slow
def test_masked_rows_equal_the_subset():
    X, s, w = _data(4, n=15)
    keep = np.arange(15) % 4 != 1
    for est, ref in (("biased", "pooled"), ("unbiased", "pairwise")):
        kw = dict(num_groups=3, estimator=est, reference=ref)
        masked = mmd(X, s, weights=w * keep, **kw)
        subset = mmd(X[keep], s[keep], weights=w[keep], **kw)
        np.testing.assert_allclose(masked, subset, rtol=1e-5, atol=1e-7)


def test_labels_condition_on_the_positive_rows():
    X, s, w = _data(5, n=16)
    y = (np.arange(16) % 2).astype(int)
    kw = dict(num_groups=3, weights=w)
    # The same rows, summed in another order (the shift to their mean): equal to rounding.
    np.testing.assert_allclose(
        mmd(X, s, labels=y, **kw),
        mmd(X[y == 1], s[y == 1], weights=w[y == 1], num_groups=3),
        rtol=1e-6,
    )


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_empty_group_finite_value_and_gradient(estimator):
    X, s, _ = _data(6, n=12)
    s = np.where(s == 2, 0, s)  # group 2 is empty, group 1 has members
    kw = dict(num_groups=3, estimator=estimator)

    def f(z):  # one program: the pairwise max and the pooled per-group values
        none = mmd(z, s, reduction="none", **kw)
        return mmd(z, s, reduction="max", reference="pairwise", **kw) + jnp.sum(none), none

    (val, none), g = jax.jit(jax.value_and_grad(f, has_aux=True))(jnp.asarray(X, jnp.float32))
    assert np.isfinite(float(val))
    assert np.all(np.isfinite(np.asarray(g)))
    # The empty group contributes exactly 0, the others match the two-group problem.
    assert float(none[2]) == 0.0
    np.testing.assert_allclose(
        none[:2],
        mmd(X, s, num_groups=2, estimator=estimator, reduction="none"),
        rtol=1e-5,
        atol=1e-6,
    )
    # A single-row group has no unbiased within-group term: it is left out, not NaN.
    one = np.r_[np.zeros(11, int), 1]
    assert np.isfinite(float(mmd(X, one, num_groups=2, estimator=estimator)))


def test_jit_and_no_retrace():
    X, s, w = _data(7)
    traces = []

    @jax.jit
    def f(x, w):
        traces.append(1)
        return mmd(x, s, num_groups=3, weights=w, estimator="unbiased")

    np.testing.assert_allclose(
        f(X, w), mmd(X, s, num_groups=3, weights=w, estimator="unbiased"), rtol=1e-5
    )
    f(X + 1.0, w * 2)
    assert len(traces) == 1


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_check_grads_float64(estimator):
    X, s, w = _data(8, n=9, r=2)
    with jax.enable_x64(True):
        kern = (
            kernels.multi_bandwidth(bandwidths=(0.5, 1.5))
            if estimator == "biased"
            else kernels.inverse_multiquadric(bandwidth=1.0)
        )
        f = lambda z: mmd(z, s, num_groups=3, weights=w, kernel=kern, estimator=estimator)
        check_grads(f, (jnp.asarray(X),), order=1, modes=("rev",), eps=1e-6)
        # ... and with respect to the sample weights (e.g. learned importance weights)
        g = lambda ww: mmd(X, s, num_groups=3, weights=ww, kernel=kern, estimator=estimator)
        check_grads(g, (jnp.asarray(w),), order=1, modes=("rev",), eps=1e-6)
        if estimator == "unbiased":
            return
        # The default median bandwidth is a constant for differentiation (stop_gradient).
        fixed = kernels.gaussian(bandwidth=kernels.median_bandwidth(X, weights=w))
        grad_default = jax.grad(lambda z: mmd(z, s, num_groups=3, weights=w, estimator=estimator))
        grad_fixed = jax.grad(
            lambda z: mmd(z, s, num_groups=3, weights=w, kernel=fixed, estimator=estimator)
        )
        np.testing.assert_allclose(grad_default(X), grad_fixed(X), rtol=1e-10, atol=1e-14)


@pytest.mark.slow
def test_random_fourier_features_approximate_the_exact_mmd():
    rng = np.random.default_rng(9)
    n = 400
    s = (rng.uniform(size=n) < 0.4).astype(int)
    X = rng.normal(size=(n, 4)) + 0.8 * s[:, None]
    k = kernels.gaussian(bandwidth=2.0)
    phi = kernels.random_fourier_features(jax.random.key(1), 4, num_features=4096, bandwidth=2.0)
    exact = float(mmd(X, s, num_groups=2, kernel=k, estimator="unbiased", reference="pairwise"))
    approx = float(
        mmd(X, s, num_groups=2, features=phi, estimator="unbiased", reference="pairwise")
    )
    assert abs(approx - exact) < 0.1 * exact
    # With an exact feature map (Nystrom on every row) the two agree to rounding.
    exact = mmd(X[:60], s[:60], num_groups=2, kernel=k)
    nys = kernels.nystrom(k, X[:60].astype(np.float32), rcond=1e-7)
    np.testing.assert_allclose(mmd(X[:60], s[:60], num_groups=2, features=nys), exact, atol=2e-4)


@pytest.mark.slow
def test_membership_matrix_and_axis_name():
    X, s, w = _data(10, n=16, num_groups=2)
    M = np.eye(2)[s]
    np.testing.assert_allclose(mmd(X, M, weights=w), mmd(X, s, num_groups=2, weights=w), rtol=1e-6)
    devices = jax.devices()[:4]
    if len(devices) < 4:
        pytest.skip("needs 4 devices")
    mesh = jax.sharding.Mesh(np.array(devices), ("b",))
    P = jax.sharding.PartitionSpec
    f = jax.shard_map(
        lambda x, g, ww: mmd(x, g, num_groups=2, weights=ww, axis_name="b"),
        mesh=mesh,
        in_specs=(P("b"), P("b"), P("b")),
        out_specs=P(),
        check_vma=False,
    )
    np.testing.assert_allclose(
        f(jnp.asarray(X, jnp.float32), jnp.asarray(s), jnp.asarray(w, jnp.float32)),
        mmd(X, s, num_groups=2, weights=w),
        rtol=1e-5,
    )


def test_bad_inputs():
    X, s, _ = _data(11)
    with pytest.raises(ValueError, match="`estimator`"):
        mmd(X, s, num_groups=3, estimator="u")
    with pytest.raises(ValueError, match="`reference`"):
        mmd(X, s, num_groups=3, reference="barycenter")
    with pytest.raises(ValueError, match="`reduction`"):
        mmd(X, s, num_groups=3, reduction="sum")
    with pytest.raises(TypeError, match="`kernel` must be a fairjax kernel"):
        mmd(X, s, num_groups=3, kernel="rbf")
    with pytest.raises(ValueError, match="either `kernel` or `features`"):
        mmd(X, s, num_groups=3, kernel=kernels.gaussian(), features=lambda z: z)
    with pytest.raises(ValueError, match="`features` must map the"):  # was a dot_general error
        mmd(X, s, num_groups=3, features=lambda z: z[:2])
    with pytest.raises(ValueError, match="`h` must be finite"):
        mmd(np.full((3, 2), np.nan), np.array([0, 1, 0]), num_groups=2)
    with pytest.raises(ValueError, match="`groups` ids must lie"):
        mmd(X, s + 1, num_groups=3)
    with pytest.raises(ValueError, match="`h` must have rank"):
        mmd(np.ones((2, 2, 2)), np.array([0, 1]), num_groups=2)


@pytest.mark.parametrize(
    "label_value,criterion", [(1, "equal_opportunity"), (0, "false_positive_parity")]
)
def test_deprecated_label_value_warns_and_gives_the_criterion_value(label_value, criterion):
    X, s, w = _data(7, n=16)
    y = (np.arange(16) % 2).astype(int)
    kw = dict(num_groups=3, weights=w, labels=y)
    with pytest.warns(DeprecationWarning, match=f"criterion='{criterion}'"):
        old = mmd(X, s, label_value=label_value, **kw)
    np.testing.assert_array_equal(old, mmd(X, s, criterion=criterion, **kw))
    keep = y == label_value
    np.testing.assert_allclose(  # masked rows vs a subset: sums in another order
        old, mmd(X[keep], s[keep], weights=w[keep], num_groups=3), rtol=1e-6
    )
    # Without labels, label_value never had an effect: still all rows, with a warning.
    with pytest.warns(DeprecationWarning, match="no effect"):
        alone = mmd(X, s, num_groups=3, weights=w, label_value=label_value)
    np.testing.assert_array_equal(alone, mmd(X, s, num_groups=3, weights=w))
    with pytest.raises(ValueError, match="give the criterion once"):
        mmd(X, s, criterion=criterion, label_value=label_value, **kw)


def test_default_criterion_follows_the_labels():
    X, s, w = _data(8, n=16)
    y = (np.arange(16) % 2).astype(int)
    kw = dict(num_groups=3, weights=w)
    np.testing.assert_array_equal(
        mmd(X, s, labels=y, **kw), mmd(X, s, labels=y, criterion="equal_opportunity", **kw)
    )
    np.testing.assert_array_equal(
        mmd(X, s, **kw), mmd(X, s, labels=y, criterion="demographic_parity", **kw)
    )
    with pytest.raises(ValueError, match="`labels` are required"):
        mmd(X, s, criterion="equalized_odds", **kw)


@pytest.mark.parametrize("reference", ["pooled", "pairwise"])
@pytest.mark.parametrize("reduction", ["mean", "max", "none"])
def test_equalized_odds_is_the_sum_of_its_two_conditions(reference, reduction):
    X, s, w = _data(9, n=18)
    y = (np.arange(18) % 3 == 0).astype(int)
    kw = dict(num_groups=3, weights=w, labels=y, reference=reference, reduction=reduction)
    eodds = mmd(X, s, criterion="equalized_odds", **kw)
    tpr = mmd(X, s, criterion="equal_opportunity", **kw)
    fpr = mmd(X, s, criterion="false_positive_parity", **kw)
    np.testing.assert_allclose(eodds, tpr + fpr, rtol=1e-6)
    # Each term on its own rows, with its own median bandwidth: the sliced calls.
    sliced = sum(
        mmd(
            X[y == c],
            s[y == c],
            weights=w[y == c],
            num_groups=3,
            reference=reference,
            reduction=reduction,
        )
        for c in (0, 1)
    )
    np.testing.assert_allclose(eodds, sliced, rtol=1e-5, atol=1e-7)


def test_reference_and_reduction_values_come_from_criteria():
    from fairjax import criteria
    from fairjax.penalties import _mmd

    assert set(_mmd._REFERENCES) <= set(criteria.REFERENCES)
    assert set(_mmd._REDUCTIONS) <= set(criteria.REDUCTIONS)
