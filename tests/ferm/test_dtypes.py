"""Every FERM function that returns parameters computes in a float dtype: integer inputs are
promoted, never truncated (issue 18, item 9); floating inputs keep their dtype."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import ferm

DTYPES = ["int32", "float32", "float64", "bfloat16"]
U = np.array([[1.0, 1.0, 0.0]])
W = np.array([1, 2, 4])  # integer-valued: exact in every dtype
XI = np.array([[1, 0, 2], [3, 1, 0], [0, 2, 1], [2, 2, 2], [1, 3, 0], [4, 0, 1]])
Y = np.array([1, 1, 1, 1, 0, 1])
S = np.array([0, 0, 1, 1, 1, 0])


@contextlib.contextmanager
def _dtype_scope(name):
    with jax.enable_x64(name == "float64"):
        yield jnp.dtype(name)


def _expected_dtype(dtype):
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.result_type(float))


def _results(dtype):
    """Each FERM function that returns parameters, on inputs of ``dtype``."""
    w = jnp.asarray(W, dtype)
    X = jnp.asarray(XI, dtype)
    orth = ferm.fit_projection(XI.astype(np.float32), Y, S, num_groups=2)
    pivot = ferm.fit_projection(XI.astype(np.float32), Y, S, num_groups=2, method="pivot")
    tx = ferm.project_orthogonal(U)
    gx = ferm.project_gradient(U)
    return {
        "project": ferm.project(w, U),
        "project_eps": ferm.project(w, U, eps=0.5),
        "project_orthogonal": tx.update(jnp.zeros_like(w), tx.init(w), w)[0],
        "project_gradient": gx.update(w, gx.init(w), jnp.zeros_like(w))[0],
        "effective_weights": ferm.effective_weights(orth, w),
        "effective_weights_pivot": ferm.effective_weights(pivot, w[:2]),
        "transform": ferm.transform(orth, X),
        "fairness_direction": ferm.fairness_direction(X, Y, S, num_groups=2),
        "fit_projection": ferm.fit_projection(X, Y, S, num_groups=2).basis,
    }


@pytest.mark.slow  # compiles every projection in four dtypes and float64 (~30 s)
@pytest.mark.parametrize("name", DTYPES)
def test_parameters_are_computed_in_a_float_dtype(name):
    with _dtype_scope(name) as dtype:
        got = _results(dtype)
        with jax.enable_x64(True):
            reference = _results(jnp.dtype("float64"))
        for what, value in got.items():
            assert jnp.issubdtype(value.dtype, jnp.floating), what
            if what.startswith("project"):  # the parameter's dtype, promoted when integer
                assert value.dtype == _expected_dtype(dtype), (what, value.dtype)
            tol = 5e-2 if name == "bfloat16" else 1e-5
            np.testing.assert_allclose(
                np.asarray(value, np.float64), np.asarray(reference[what]), atol=tol, err_msg=what
            )


def test_integer_weights_are_not_truncated():
    # Before: [0, 0] (the float result cast back to int32).
    np.testing.assert_allclose(ferm.project(jnp.array([1, 2]), [1.0, 1.0]), [-0.5, 0.5], atol=1e-6)
    tx = optax.chain(optax.identity(), ferm.project_orthogonal(jnp.array([1.0, 1.0])))
    w = jnp.array([1, 2])
    update = tx.update(jnp.zeros(2, jnp.int32), tx.init(w), w)[0]
    np.testing.assert_allclose(update, [-1.5, -1.5], atol=1e-6)


@pytest.mark.slow
def test_fit_linear_on_integer_features_returns_float_parameters():
    model = ferm.fit_linear(XI, Y, S, num_groups=2, num_steps=3)
    assert jnp.issubdtype(model.weights.dtype, jnp.floating)
    assert jnp.issubdtype(model.bias.dtype, jnp.floating)
    assert jnp.issubdtype(model.directions.dtype, jnp.floating)
