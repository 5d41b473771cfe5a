"""Tests of fairjax.ferm._persist: a file whose arrays do not form a model is refused at load."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import _persistence as io
from fairjax import ferm
from tests.ferm.common import data
from tests.ferm.test_model import CASES, MODELS, inconsistent


def _resign(path, edit):
    """Rewrites a saved file with ``edit(arrays, meta)`` applied and a recomputed digest (what a
    tool that re-signs files would do)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays.pop("metadata").tobytes().decode("utf-8"))
    meta.pop("sha256")
    edit(arrays, meta)
    meta["sha256"] = io.digest(arrays, meta)
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("kind, case", CASES)
def test_an_inconsistent_model_is_refused_at_save_and_at_load(tmp_path, kind, case):
    bad = inconsistent(kind)[case]
    with pytest.raises(ValueError, match="`model"):
        ferm.save_model(tmp_path / "bad.npz", bad)
    # The same arrays in a re-signed file of a consistent model: refused at load, not at use.
    path = tmp_path / "model.npz"
    ferm.save_model(path, MODELS[kind])
    flat_bad = _flatten(bad)

    def edit(arrays, meta):
        arrays.update(flat_bad)  # the description holds no shapes: the arrays are the model

    _resign(path, edit)
    with pytest.raises(ValueError, match=r"model\.npz"):
        ferm.load_model(path)


def _flatten(model):
    """The arrays of ``model`` under the names save_model gives them (computed without the
    consistency check, which would refuse the model)."""
    out = {}
    for field in ("weights", "bias", "directions"):
        out[f"model/{field}"] = np.asarray(getattr(model, field))
    fmap = model.feature_map
    if fmap is not None:
        for field, value in zip(fmap._fields, fmap, strict=True):
            if field == "kernel":
                for kf, kv in zip(value._fields, value, strict=True):
                    out[f"model/feature_map/kernel/{kf}"] = np.asarray(kv)
            else:
                out[f"model/feature_map/{field}"] = np.asarray(value)
    return out


@pytest.mark.parametrize("method", ["orthogonal", "pivot"])
def test_an_inconsistent_projection_is_refused_at_load_and_at_use(tmp_path, method):
    X, y, s = data(n=60, d=3)
    state = ferm.fit_projection(X, y, s, num_groups=2, method=method)
    path = tmp_path / "projection.npz"
    ferm.save_projection(path, state)
    field = "basis" if method == "orthogonal" else "direction"
    value = np.asarray(getattr(state, field)).copy()
    value.reshape(-1)[0] = np.nan
    _resign(path, lambda arrays, meta: arrays.__setitem__(f"state/{field}", value))
    with pytest.raises(ValueError, match=r"projection\.npz"):
        ferm.load_projection(path)
    bad = state._replace(**{field: jnp.asarray(value)})
    with pytest.raises(ValueError, match=f"`state.{field}` must be finite"):
        ferm.transform(bad, X)
    with pytest.raises(ValueError, match=f"`state.{field}` must be finite"):
        ferm.effective_weights(bad, np.ones(3 if method == "orthogonal" else 2))
