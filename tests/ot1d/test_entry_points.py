"""Bad input at every public entry point of fairjax.ot1d (issue 18: zero rows, NaN queries,
complex arrays, wide group ids): each class over all the functions concerned."""

import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import _validation, ot1d

_X = np.array([0.5, 1.5, 0.2, 2.5, 1.0, 3.0], np.float32)
_G = np.array([0, 0, 1, 1, 0, 1])


def _layout():
    return ot1d.group_samples(_X, _G, num_groups=2)


# Every public function, called with one array argument replaced by ``a`` (the rest valid).
CALLS = {
    "cdf/values": lambda a: ot1d.cdf(a, _X),
    "cdf/points": lambda a: ot1d.cdf(_X, a),
    "quantile/values": lambda a: ot1d.quantile(a, [0.5]),
    "quantile/levels": lambda a: ot1d.quantile(_X, a),
    "wasserstein_distance/u": lambda a: ot1d.wasserstein_distance(a, _X),
    "wasserstein_distance/v": lambda a: ot1d.wasserstein_distance(_X, a),
    "wasserstein_distance/u_weights": lambda a: ot1d.wasserstein_distance(_X, _X, u_weights=a),
    "barycenter/values": lambda a: ot1d.barycenter(np.reshape(a, (1, -1))),
    "barycenter/barycenter_weights": lambda a: ot1d.barycenter(
        np.stack([_X, _X]), barycenter_weights=a[:2]
    ),
    "pooled_group_cdfs/values": lambda a: ot1d.pooled_group_cdfs(a, _G, num_groups=2),
    "group_views/values": lambda a: ot1d.group_views(a, _G, num_groups=2),
    "group_samples/values": lambda a: ot1d.group_samples(a, _G, num_groups=2),
    "group_order/values": lambda a: ot1d.group_order(a, _G, num_groups=2),
    "group_cdf/points": lambda a: ot1d.group_cdf(_layout(), _G, a),
    "group_quantile/levels": lambda a: ot1d.group_quantile(_layout(), 0, a),
    "barycenter_quantile/levels": lambda a: ot1d.barycenter_quantile(_layout(), [0.5, 0.5], a),
}

# Functions taking integer group ids, called with ids ``g`` (as NumPy int64).
ID_CALLS = {
    "pooled_group_cdfs": lambda g: ot1d.pooled_group_cdfs(_X, g, num_groups=2),
    "group_views": lambda g: ot1d.group_views(_X, g, num_groups=2),
    "group_samples": lambda g: ot1d.group_samples(_X, g, num_groups=2),
    "group_order": lambda g: ot1d.group_order(_X, g, num_groups=2),
    "group_cdf": lambda g: ot1d.group_cdf(_layout(), g, _X),
    "group_quantile": lambda g: ot1d.group_quantile(_layout(), g[:1], [0.5]),
}


def _strict_as_array(original):
    def as_array(x, name, **kw):
        if np.iscomplexobj(x):
            raise TypeError(f"`{name}` must be real, got a complex array.")
        return original(x, name, **kw)

    return as_array


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_array_goes_through_as_array(name, monkeypatch):
    """Routing: with an ``as_array`` that refuses complex input, every argument refuses it
    (the refusal itself is ``_validation``'s; this checks that no ot1d input bypasses it)."""
    monkeypatch.setattr(_validation, "as_array", _strict_as_array(_validation.as_array))
    with pytest.raises(TypeError, match="complex"):
        CALLS[name](_X.astype(np.complex64) * 1j)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_complex_input_is_refused(name):
    with pytest.raises(TypeError):
        CALLS[name](_X * 1j)


def test_wasserstein_distance_of_complex_samples_is_refused():
    # The case: on main it returned 1.0 (the imaginary parts dropped).
    with pytest.raises(TypeError):
        ot1d.wasserstein_distance([1j, 2j, 3j], [0, 1, 2])


_E = np.zeros((0,), np.float32)
_EG = np.zeros((0,), np.int32)
ZERO_ROWS = {
    "cdf": lambda: ot1d.cdf(_E, _X),
    "quantile": lambda: ot1d.quantile(_E, [0.5]),
    "wasserstein_distance/u": lambda: ot1d.wasserstein_distance(_E, _X),
    "wasserstein_distance/v": lambda: ot1d.wasserstein_distance(_X, _E),
    "barycenter": lambda: ot1d.barycenter(np.zeros((2, 0), np.float32)),
    "pooled_group_cdfs": lambda: ot1d.pooled_group_cdfs(_E, _EG, num_groups=2),
    "pooled_group_cdfs/membership": lambda: ot1d.pooled_group_cdfs(_E, np.zeros((0, 2))),
    "group_views": lambda: ot1d.group_views(_E, _EG, num_groups=2),
}


@pytest.mark.parametrize("name", sorted(ZERO_ROWS))
def test_zero_rows_are_refused_with_a_value_error(name):
    with pytest.raises(ValueError, match=r"empty|n >= 1"):
        ZERO_ROWS[name]()


def test_barycenter_of_no_samples_is_refused():
    with pytest.raises(ValueError, match="K >= 1"):
        ot1d.barycenter(np.zeros((0, 3), np.float32))


@pytest.mark.parametrize(
    "call",
    [
        lambda t: ot1d.cdf(_X, t),
        lambda t: ot1d.cdf(_X, t, strict=True),
        lambda t: ot1d.group_cdf(_layout(), np.zeros(t.shape, np.int32), t),
        lambda t: ot1d.group_cdf(_layout(), np.zeros(t.shape, np.int32), t, uniform=True),
        lambda t: ot1d.group_cdf(_layout(), np.zeros(t.shape, np.int32), t, interpolation="linear"),
    ],
)
def test_cdf_at_a_nan_point_is_nan(call):
    out = np.asarray(call(np.array([np.nan, 1.0], np.float32)))
    assert np.isnan(out[0]) and np.isfinite(out[1])


@pytest.mark.parametrize("interpolation", ["step", "linear"])
@pytest.mark.parametrize("uniform", [False, True])
def test_quantile_at_a_nan_level_is_nan(interpolation, uniform):
    u = jnp.array([jnp.nan, 0.5], jnp.float32)
    kw = dict(interpolation=interpolation, uniform=uniform)
    for out in (
        ot1d.group_quantile(_layout(), 0, u, **kw),
        ot1d.barycenter_quantile(_layout(), jnp.array([0.5, 0.5]), u, **kw),
    ):
        assert np.isnan(out[0]) and np.isfinite(out[1])


@pytest.mark.parametrize("name", sorted(ID_CALLS))
@pytest.mark.parametrize(
    "bad",
    [
        -1,
        2,
        2**31,
        2**32,
    ],
)
def test_group_ids_out_of_range_are_refused(name, bad):
    g = _G.astype(np.int64)
    g[-1] = bad
    with pytest.raises(ValueError, match=r"`groups?`"):
        ID_CALLS[name](g if name != "group_quantile" else g[::-1])


@pytest.mark.parametrize("name", sorted(ID_CALLS))
def test_float_group_ids_are_refused(name):
    with pytest.raises(TypeError):
        ID_CALLS[name](_G.astype(np.float32))
