"""Tests of fairjax.ferm._model: decision_function checks its input and the model's arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import ferm, kernels
from tests.ferm.common import data

X, Y, S = data(n=60, d=3)
KEY = jax.random.key(0)


def _models():
    return {
        "linear": ferm.fit_linear(X, Y, S, num_groups=2, num_steps=5),
        "kernel_expansion": ferm.fit_kernel(X, Y, S, num_groups=2, kernel=kernels.gaussian()),
        "nystrom": ferm.fit_kernel(
            X, Y, S, num_groups=2, kernel=kernels.gaussian(), num_landmarks=8, key=KEY,
            num_steps=5,
        ),
        "random_fourier": ferm.fit_linear(
            X, Y, S, num_groups=2, num_steps=5,
            feature_map=kernels.random_fourier_features(KEY, 3, num_features=8),
        ),
    }  # fmt: skip


MODELS = _models()
KINDS = sorted(MODELS)


def inconsistent(kind):
    """The model of ``kind`` with arrays that disagree (each way one can), by description."""
    m = MODELS[kind]
    out = {
        "weights_short": m._replace(weights=m.weights[:-1]),
        "directions_wide": m._replace(directions=jnp.pad(m.directions, ((0, 0), (0, 1)))),
        "bias_vector": m._replace(bias=jnp.stack([m.bias, m.bias])),
        "weights_nan": m._replace(weights=m.weights.at[0].set(jnp.nan)),
        "directions_inf": m._replace(directions=m.directions.at[0, 0].set(jnp.inf)),
    }
    fmap = m.feature_map
    if isinstance(fmap, ferm.KernelExpansion):  # the item-8 case: weights vs expansion points
        out["points_fewer"] = m._replace(feature_map=fmap._replace(points=fmap.points[:-1]))
        out["points_nan"] = m._replace(
            feature_map=fmap._replace(points=fmap.points.at[0, 0].set(jnp.nan))
        )
        out["bandwidth_nan"] = m._replace(
            feature_map=fmap._replace(kernel=fmap.kernel._replace(bandwidth=jnp.asarray(jnp.nan)))
        )
    if isinstance(fmap, kernels.NystromFeatures):
        out["projection_cols"] = m._replace(
            feature_map=fmap._replace(projection=fmap.projection[:, :-1])
        )
        out["landmarks_fewer"] = m._replace(
            feature_map=fmap._replace(landmarks=fmap.landmarks[:-1])
        )
    if isinstance(fmap, kernels.RandomFourierFeatures):
        out["frequencies_cols"] = m._replace(
            feature_map=fmap._replace(weights=fmap.weights[:, :-1])
        )
        out["offsets_nan"] = m._replace(
            feature_map=fmap._replace(offsets=fmap.offsets.at[0].set(jnp.nan))
        )
    return out  # fmt: skip


CASES = [(kind, case) for kind in KINDS for case in inconsistent(kind)]


@pytest.mark.parametrize("kind", KINDS)
def test_decision_function_checks_the_width_of_X(kind):
    # Before: a JAX dot_general TypeError (item 8).
    with pytest.raises(ValueError, match=r"`X` must have 3 features \(the model's input\), got 2"):
        ferm.decision_function(MODELS[kind], X[:, :2])
    with pytest.raises(ValueError, match="`X` must have rank 2"):
        ferm.decision_function(MODELS[kind], X[0])


@pytest.mark.parametrize("kind", KINDS)
def test_decision_function_refuses_nan_and_inf_in_X(kind):
    for value in (np.nan, np.inf):
        bad = X.copy()
        bad[4, 1] = value
        with pytest.raises(ValueError, match="`X` must be finite, got 1 NaN or infinite"):
            ferm.decision_function(MODELS[kind], bad)


@pytest.mark.parametrize("kind, case", CASES)
def test_decision_function_refuses_an_inconsistent_model(kind, case):
    with pytest.raises(ValueError, match="`model"):
        ferm.decision_function(inconsistent(kind)[case], X)


@pytest.mark.parametrize("kind", KINDS)
def test_decision_function_still_traces_and_matches_under_jit(kind):
    m = MODELS[kind]
    np.testing.assert_allclose(
        jax.jit(ferm.decision_function)(m, X), ferm.decision_function(m, X), rtol=1e-5, atol=1e-5
    )


def test_a_model_of_another_type_is_refused():
    with pytest.raises(TypeError, match="`model` must be a FERMModel"):
        ferm.decision_function((None, jnp.ones(3), 0.0, jnp.ones((1, 3))), X)
