"""Tests of fairjax.penalties.orthogonality."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from fairjax.penalties import orthogonality


def test_values_closed_form():
    rng = np.random.default_rng(0)
    w, U = rng.normal(size=4), rng.normal(size=(3, 4))
    np.testing.assert_allclose(orthogonality(w, U), np.sum((U @ w) ** 2), rtol=1e-5)
    np.testing.assert_allclose(orthogonality(w, U, squared=False), np.linalg.norm(U @ w), rtol=1e-5)
    np.testing.assert_allclose(orthogonality(w, U[0], squared=False), abs(U[0] @ w), rtol=1e-5)
    W = rng.normal(size=(4, 2))
    np.testing.assert_allclose(orthogonality(W, U), np.sum((U @ W) ** 2), rtol=1e-5)


def test_grads_float64_and_finite_at_zero():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        w, U = jnp.asarray(rng.normal(size=4)), jnp.asarray(rng.normal(size=(2, 4)))
        for squared in (True, False):
            check_grads(lambda w, sq=squared: orthogonality(w, U, squared=sq), (w,), order=2)
    u = jnp.array([1.0, 0.0])
    g = jax.grad(lambda w: orthogonality(w, u, squared=False))(jnp.array([0.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0])
    assert jax.jit(lambda w: orthogonality(w, u))(jnp.ones(2)).dtype == jnp.float32


def test_bad_shapes():
    with pytest.raises(ValueError, match="`u` must have d = 3"):
        orthogonality(jnp.ones(3), jnp.ones(2))
