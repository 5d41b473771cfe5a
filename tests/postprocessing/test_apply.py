"""Tests of fairjax.postprocessing._apply: ties broken whatever the scores' scale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import ot1d
from fairjax import postprocessing as pp
from fairjax.metrics import ks_unfairness
from fairjax.postprocessing._apply import _rank
from fairjax.postprocessing._state import _cdf_samples

# Five atoms, weighted differently in the two groups: the base scores are far from fair.
_ATOMS = np.arange(5.0)
_MASS = np.array([0.4, 0.3, 0.15, 0.1, 0.05])

# (magnitude, offset): scores are offset + magnitude * atom. On the old code (jitter alone) the
# atoms stayed tied wherever 1e-5 is below the float spacing: float32 from ~100, float64 from
# ~1e11.
_CASES = {
    "float32": [(1e-3, 0.0), (1e-3, 1.0), (1e3, 0.0), (1e6, 0.0), (1.0, 1e3), (1e3, 1e6)],
    "float64": [(1e-3, 0.0), (1e3, 0.0), (1e6, 0.0), (1e12, 0.0), (1.0, 1e12), (1e6, 1e12)],
}
# Every way a state is fitted and ranks a query: the exact method (step or linear quantiles,
# with and without the split, unit or general weights, with or without jitter) and the grid.
_CONFIGS = {
    "split-step": dict(),
    "split-linear": dict(interpolation="linear"),
    "nosplit-step": dict(split=False),
    "nosplit-linear": dict(split=False, interpolation="linear"),
    "weighted": dict(weighted=True),
    "no-jitter": dict(jitter=0.0),
    "grid": dict(method="quantile_grid", grid_size=256),
}
# KS at a magnitude may exceed the KS at magnitude 1 by this much (sampling noise of ~2000
# rows per group; the old code gave 0.3 on these atoms).
_TOL = 0.03


def _atoms(n, seed, magnitude, offset, dtype):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n).astype(np.int32)
    idx = np.where(s == 0, rng.choice(5, n, p=_MASS), rng.choice(5, n, p=_MASS[::-1]))
    return (offset + magnitude * _ATOMS[idx]).astype(dtype), s


def _ks_after(magnitude, offset, dtype, weighted=False, **options):
    f, s = _atoms(4000, 0, magnitude, offset, dtype)
    fq, sq = _atoms(4000, 1, magnitude, offset, dtype)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 4000).astype(dtype) if weighted else None
    k_fit, k_apply = jax.random.split(jax.random.key(0))
    st = pp.fit_barycenter(f, s, num_groups=2, key=k_fit, weights=w, **options)
    out = pp.apply_barycenter(st, fq, sq, key=k_apply)
    assert out.dtype == jnp.dtype(dtype)
    return float(ks_unfairness(out, sq, num_groups=2)), float(ks_unfairness(fq, sq, num_groups=2))


@pytest.mark.parametrize("config", list(_CONFIGS))
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_atoms_are_made_fair_at_every_scale(dtype, config):
    with jax.enable_x64(dtype == "float64"):
        reference, before = _ks_after(1.0, 0.0, dtype, **_CONFIGS[config])
        assert before > 0.3 and reference < 0.1
        for magnitude, offset in _CASES[dtype]:
            ks, _ = _ks_after(magnitude, offset, dtype, **_CONFIGS[config])
            assert ks <= reference + _TOL, (magnitude, offset, ks, reference)


@pytest.mark.slow
def test_sequential_and_intersection_atoms_large_scale():
    # Two attributes, atoms around 1000 in float32: parity on each attribute (sequential) and
    # on their intersection (the default), as at magnitude 1.
    rng = np.random.default_rng(3)
    n = 8000
    a, b = rng.integers(0, 2, n).astype(np.int32), rng.integers(0, 2, n).astype(np.int32)
    idx = np.minimum(rng.poisson(0.5 + a + 1.5 * b), 6)
    for offset in (0.0, 1000.0):
        f = (offset + idx).astype(np.float32)
        fit, test = slice(0, n // 2), slice(n // 2, n)
        for multi in ("sequential", "intersection"):
            st = pp.fit_barycenter(
                f[fit], (a[fit], b[fit]), num_groups=(2, 2), key=jax.random.key(1), multi=multi
            )
            out = pp.apply_barycenter(st, f[test], (a[test], b[test]), key=jax.random.key(2))
            for attr in (a[test], b[test]):
                assert float(ks_unfairness(out, attr, num_groups=2)) < 0.08, (offset, multi)
            if multi == "intersection":
                both = 2 * a[test] + b[test]
                assert float(ks_unfairness(out, both, num_groups=4)) < 0.12, offset


def test_tied_query_level_is_uniform_over_the_jump():
    # Group 0 is one atom at 1000 (float32: the jitter 1e-5 is below its spacing 6e-5): a
    # query at the atom gets a level uniform on [0, 1], not the left limit 0.
    s = np.array([0] * 500 + [1] * 500, np.int32)
    f = np.r_[np.full(500, 1000.0), np.linspace(0, 1, 500)].astype(np.float32)
    st = pp.fit_barycenter(f, s, num_groups=2, key=jax.random.key(0), split=False)
    q = jnp.full(4000, 1000.0, jnp.float32)
    u = np.asarray(_rank(st, jnp.zeros(4000, jnp.int32), q, jax.random.key(1)))
    assert u.min() >= 0 and u.max() <= 1
    np.testing.assert_allclose(np.quantile(u, [0.1, 0.5, 0.9]), [0.1, 0.5, 0.9], atol=0.03)
    # A query at no calibration value keeps the left limit, bit for bit.
    g1 = jnp.ones(3, jnp.int32)
    z = jnp.array([-1.0, 0.5 + 1e-4, 2.0], jnp.float32)
    want = ot1d.group_cdf(_cdf_samples(st), g1, z, interpolation="step", uniform=True)
    np.testing.assert_array_equal(_rank(st, g1, z, jax.random.key(1)), want)


def test_atom_at_zero_uses_the_right_limit():
    # nextafter(0) is subnormal, which XLA flushes to zero: the right limit at 0 must still
    # count the atom (the old rule gave every query at 0 the level 0).
    s = np.array([0] * 400 + [1] * 400, np.int32)
    f = np.r_[np.zeros(400), np.linspace(-1, 1, 400)].astype(np.float32)
    st = pp.fit_barycenter(f, s, num_groups=2, key=jax.random.key(0), split=False, jitter=0.0)
    u = np.asarray(_rank(st, jnp.zeros(1000, jnp.int32), jnp.zeros(1000), jax.random.key(3)))
    assert 0.4 < u.mean() < 0.6


# ----------------------------------------------------------------------------- host path


def _host_data(n, m, num_groups, seed, decimals=None, sizes=None):
    rng = np.random.default_rng(seed)

    def draw(k):
        s = rng.choice(num_groups, k, p=sizes).astype(np.int32)
        f = rng.normal(size=k) * (1 + 0.3 * s) + 0.8 * s
        return (f if decimals is None else np.round(f, decimals)).astype(np.float32), s

    return draw(n), draw(m)


# (groups, decimals, jitter, fit options, n calibration, m queries, alpha): no ties, ties with
# and without jitter, step and linear, split or not, few queries (one search each), more than
# 16 groups (ids sorted, not masked), groups of one row, alpha below 1.
_HOST_CASES = [
    (2, None, 1e-4, dict(split=False, interpolation="linear"), 20000, 20000, 1.0),
    (5, None, 1e-4, dict(split=False, interpolation="linear"), 10000, 30000, 1.0),
    (2, 2, 0.0, dict(split=False, interpolation="linear"), 10000, 10000, 1.0),
    (3, 1, 1e-4, dict(), 10000, 10000, 1.0),
    (2, None, 1e-5, dict(), 20000, 500, 0.7),
    (20, 1, 0.0, dict(split=False), 8000, 8000, 0.3),
    (2, None, 1e-4, dict(split=False, interpolation="linear"), 500, 20000, 1.0),
    (4, 0, 0.0, dict(interpolation="linear"), 3000, 5000, 1.0),
]


@pytest.mark.parametrize("case", range(len(_HOST_CASES)))
def test_host_apply_equals_the_compiled_apply(case, monkeypatch):
    # Concrete float32 inputs on the CPU are applied with NumPy: the same bits as the compiled
    # program (same draws, XLA's fused multiply-adds emulated), on every branch of the host path.
    from fairjax.postprocessing import _apply

    num, dec, jitter, options, n, m, alpha = _HOST_CASES[case]
    (f, s), (fq, sq) = _host_data(n, m, num, case, dec)
    st = pp.fit_barycenter(f, s, num_groups=num, key=jax.random.key(case), jitter=jitter, **options)
    key = jax.random.key(100 + case)
    calls = []
    host = _apply._apply_host
    monkeypatch.setattr(_apply, "_apply_host", lambda *a: calls.append(1) or host(*a))
    ours = np.asarray(pp.apply_barycenter(st, fq, sq, key=key, alpha=alpha))
    assert calls, "the host path did not run"
    monkeypatch.setattr(_apply, "_use_host", lambda *arrays: False)
    compiled = np.asarray(pp.apply_barycenter(st, fq, sq, key=key, alpha=alpha))
    np.testing.assert_array_equal(ours.view(np.uint32), compiled.view(np.uint32))


def test_host_apply_with_a_group_without_calibration_rows():
    # Intersections absent from the calibration data (p = 0): queries of the other groups read
    # the empty segment's clipped index as the compiled program does.
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 2, 4000).astype(np.int32), rng.integers(0, 2, 4000).astype(np.int32)
    a[b == 1] = 0  # no (1, 1) row
    f = (rng.normal(size=4000) + a + b).astype(np.float32)
    st = pp.fit_barycenter(f, (a, b), num_groups=(2, 2), key=jax.random.key(0))
    qa, qb = a[:1000], b[:1000]
    ours = pp.apply_barycenter(st, f[:1000], (qa, qb), key=jax.random.key(1))
    jitted = jax.jit(lambda st, x, g, k: pp.apply_barycenter(st, x, g, key=k))
    np.testing.assert_array_equal(ours, jitted(st, f[:1000], (qa, qb), jax.random.key(1)))


def test_host_apply_leaves_tiny_magnitudes_and_float64_to_the_compiled_path():
    from fairjax.postprocessing import _apply

    (f, s), (fq, sq) = _host_data(2000, 500, 2, 0)
    st = pp.fit_barycenter(f, s, num_groups=2, key=jax.random.key(0))

    def use(st, y):
        return _apply._use_host(st, y, sq, jax.random.key(1), jnp.float32(1))

    assert use(st, jnp.asarray(fq))
    tiny = fq.copy()
    tiny[0] = 1e-30  # a product of it could be subnormal, which XLA flushes to zero
    assert not use(st, jnp.asarray(tiny))
    with jax.enable_x64(True):
        st64 = pp.fit_barycenter(f.astype(np.float64), s, num_groups=2, key=jax.random.key(0))
        assert not use(st64, jnp.asarray(fq, jnp.float64))


def test_a_large_batch_runs_on_the_host_once_then_compiled(monkeypatch):
    # Past _HOST_MAX_QUERIES the first call of a program (shape bucket, dtypes, state layout)
    # runs on the host, without waiting for a compilation; the next calls of the same program
    # compile it (faster from then on); the same numbers either way.
    from fairjax.postprocessing import _apply

    monkeypatch.setattr(_apply, "_HOST_MAX_QUERIES", 1000)
    monkeypatch.setattr(_apply, "_PROGRAMS_MET", set())
    (f, s), (fq, sq) = _host_data(3000, 3050, 3, 7, decimals=1)
    st = pp.fit_barycenter(f, s, num_groups=3, key=jax.random.key(0), jitter=0.0)
    calls = []
    host = _apply._apply_host
    monkeypatch.setattr(_apply, "_apply_host", lambda *a: calls.append(a[1].shape[0]) or host(*a))

    def apply(m, key=1):
        return np.asarray(pp.apply_barycenter(st, fq[:m], sq[:m], key=jax.random.key(key)))

    first, second = apply(3000), apply(3000)
    assert calls == [3000]
    np.testing.assert_array_equal(first.view(np.uint32), second.view(np.uint32))
    apply(3050, key=2)  # the same shape bucket and dtypes: the compiled program
    apply(500)  # a small batch: always the host
    assert calls == [3000, 500]
    st2 = pp.fit_barycenter(f, s, num_groups=3, key=jax.random.key(0), interpolation="linear")
    apply_other = pp.apply_barycenter(st2, fq, sq, key=jax.random.key(1))  # another program
    assert calls == [3000, 500, 3050]
    jitted = jax.jit(lambda st, x, g, k: pp.apply_barycenter(st, x, g, key=k))
    np.testing.assert_array_equal(apply_other, jitted(st2, fq, sq, jax.random.key(1)))


@pytest.mark.parametrize("interpolation", ["step", "linear"])
def test_one_group_applies_as_under_jit_on_every_call(interpolation, monkeypatch):
    # With one group XLA folds the apply's sums and divisions (0 + x to x, a division by the
    # one count to a product), which the host path does not reproduce: one group compiles.
    # Signed zeros and ties without jitter: the layout keeps -0.0 and +0.0 in input order.
    from fairjax.postprocessing import _apply

    monkeypatch.setattr(_apply, "_HOST_MAX_QUERIES", 100)
    monkeypatch.setattr(_apply, "_PROGRAMS_MET", set())
    rng = np.random.default_rng(3)
    f = np.round(rng.normal(size=800), 1).astype(np.float32)
    f[:40] = np.where(np.arange(40) % 2, -0.0, 0.0)
    s = np.zeros(800, np.int32)
    kwargs = dict(num_groups=1, key=jax.random.key(0), interpolation=interpolation)
    st = pp.fit_barycenter(f, s, jitter=0.0, **kwargs)
    fit_jit = jax.jit(lambda f, s: pp.fit_barycenter(f, s, jitter=0.0, **kwargs))(f, s)
    for a, b in zip(jax.tree.leaves(st), jax.tree.leaves(fit_jit), strict=True):
        a, b = np.atleast_1d(a), np.atleast_1d(b)
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
    jitted = jax.jit(lambda st, x, g, k: pp.apply_barycenter(st, x, g, key=k))
    for m in (50, 500, 500):  # small, then the first and second calls of a large batch
        want = jitted(st, f[:m], s[:m], jax.random.key(1))
        got = pp.apply_barycenter(st, f[:m], s[:m], key=jax.random.key(1))
        np.testing.assert_array_equal(np.asarray(got).view(np.uint32), want.view(np.uint32))


def test_float64_state_applies_to_float32_scores_in_their_dtype():
    rng = np.random.default_rng(4)
    f, s = rng.normal(size=300), np.arange(300) % 2
    q = np.float32([0.1, -0.3, 0.7])
    with jax.enable_x64(True):
        for method, interpolation in [
            ("exact", "step"),
            ("exact", "linear"),
            ("quantile_grid", "linear"),
        ]:
            st = pp.fit_barycenter(
                f,
                s,
                num_groups=2,
                key=jax.random.key(1),
                method=method,
                interpolation=interpolation,
            )
            out = pp.apply_barycenter(st, q, np.array([0, 1, 0]), key=jax.random.key(2))
            assert out.dtype == np.float32
            want = pp.apply_barycenter(
                st, q.astype(np.float64), np.array([0, 1, 0]), key=jax.random.key(2)
            )
            # The same map; the queries' jitter is drawn in their own dtype.
            np.testing.assert_allclose(out, want, atol=1e-3)


def _round_f32(x):
    """The float32 nearest the exact rational ``x`` (ties to even)."""
    from fractions import Fraction

    r = np.float32(float(x))
    cands = [np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))]
    dist = [abs(Fraction(float(c)) - x) for c in cands]
    best = min(dist)
    near = [c for c, d in zip(cands, dist, strict=True) if d == best]
    return min(near, key=lambda c: int(np.asarray(c).view(np.uint32)) & 1)


def test_fma_emulation_rounds_once():
    from fractions import Fraction

    from fairjax.postprocessing._host_math import _fma

    # The float64 sum lands exactly halfway between two float32 values while the exact value
    # is just below: rounding the float64 sum again would go up (ties to even), fma goes down.
    i = np.arange(1, 50, dtype=np.float32)
    a = np.float32(2.0**-24) * (1 - i * np.float32(2.0**-23))
    b = 1 + i * np.float32(2.0**-23)
    c = np.full(i.shape, 1 + 2.0**-23, np.float32)
    naive = (a.astype(np.float64) * b + c).astype(np.float32)
    assert np.all(naive == np.float32(1 + 2.0**-22))
    rng = np.random.default_rng(0)
    ra, rb = rng.normal(size=300).astype(np.float32), rng.normal(size=300).astype(np.float32)
    rc = (rng.normal(size=300) * 10.0 ** rng.integers(-8, 3, 300)).astype(np.float32)
    a, b, c = np.r_[a, ra], np.r_[b, rb], np.r_[c, rc]
    want = [
        _round_f32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
        for x, y, z in zip(a, b, c, strict=True)
    ]
    np.testing.assert_array_equal(_fma(a, b, c), np.array(want, np.float32))
    assert np.all(_fma(a[:49], b[:49], c[:49]) == np.float32(1 + 2.0**-23))
    np.testing.assert_array_equal(_fma(np.float32(0.5), b, c), _fma(b, np.float32(0.5), c))


@pytest.mark.parametrize("m", [10, 3000])
def test_host_ranks_equal_searchsorted(m):
    # Both branches (one search per query; one sort of sample and queries together), with
    # ties, negative values and both zeros.
    from fairjax.postprocessing._apply import _ranks

    rng = np.random.default_rng(m)
    sample = np.sort(np.round(rng.normal(size=1000), 1).astype(np.float32))
    sample[sample == 0] = -0.0
    q = np.round(rng.normal(size=m), 1).astype(np.float32)
    q[:5] = [0.0, -0.0, sample[0], sample[-1], 10.0]
    order, k = _ranks(sample, q)
    np.testing.assert_array_equal(np.sort(order), np.arange(m))
    np.testing.assert_array_equal(k, np.searchsorted(sample, q[order], side="left"))
