"""Safe persistence (issue 7, part 7): no pickle anywhere, and tampered files are refused.

The library source never unpickles; a file smuggling an object (pickle) array or an extra array
is refused without running anything, and the JSON metadata (the static fields) is covered by the
file's integrity check too. Every fitted state saves through one format
(``fairjax._persistence``): the FERM projections and models and the three scikit-learn
estimators round-trip exactly (bit-equal arrays, identical outputs), and a flipped byte in any
array, any edited metadata value, a dropped or added array, a truncated file, another kind, a
newer version, a non-npz file and garbled metadata are each refused with a clear ``ValueError``.
The post-processor's own round trip is in ``tests/postprocessing/test_postprocessing.py``.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.utils.validation import check_is_fitted

from fairjax import _persistence as io
from fairjax import ferm, kernels
from fairjax import postprocessing as pp
from fairjax.sklearn import FairLogisticRegression, FERMClassifier, WassersteinFairRegressor

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "fairjax"
KEY = jax.random.key(0)
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve"}


def _sources():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10  # the scan really sees the package
    return files


PICKLE_CALLS = re.compile(r"allow_pickle\s*=\s*True|pickle\.loads?\(|torch\.load\(|\.read_pickle\(")


def unsafe_imports(source: str) -> list[str]:
    """``line module`` for every import of an unpickling module in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            continue
        found += [f"{node.lineno} {n}" for n in names if n in UNSAFE_MODULES]
    return found


def unpickling_lines(source: str) -> list[str]:
    return [
        f"{i}: {line.strip()}"
        for i, line in enumerate(source.splitlines(), start=1)
        if PICKLE_CALLS.search(line)
    ]


def test_no_pickle_imports_in_the_library():
    offenders = {p.name: unsafe_imports(p.read_text(encoding="utf-8")) for p in _sources()}
    assert not any(offenders.values()), offenders


def test_no_allow_pickle_true_and_no_unpickling_loaders():
    hits = {p.name: unpickling_lines(p.read_text(encoding="utf-8")) for p in _sources()}
    assert not any(hits.values()), hits


def test_the_scans_catch_a_file_that_unpickles():
    """The scanners are not vacuous: they flag source that unpickles."""
    src = (
        "import numpy as np\nfrom pickle import loads\nimport cloudpickle.cloudpickle\n"
        "x = np.load('f.npy', allow_pickle=True)\n"
    )
    assert unsafe_imports(src) == ["2 pickle", "3 cloudpickle"]
    assert unpickling_lines(src) == ["4: x = np.load('f.npy', allow_pickle=True)"]


def test_every_np_load_says_allow_pickle_false():
    """Explicit is safer than NumPy's default (which was True before NumPy 1.16.3)."""
    calls = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("np", "numpy")
            ):
                explicit = any(
                    k.arg == "allow_pickle"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is False
                    for k in node.keywords
                )
                calls.append((f"{path.name}:{node.lineno}", explicit))
    assert all(ok for _, ok in calls), calls


def _saved(tmp_path):
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, 200).astype(np.int32)
    f = (rng.normal(size=200) + s).astype(np.float32)
    state = pp.fit_barycenter(f, s, num_groups=2, key=KEY)
    path = tmp_path / "state.npz"
    pp.save_barycenter(path, state)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return path, arrays, f, s


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def test_a_failed_save_leaves_the_file_that_was_there(tmp_path, monkeypatch):
    # The file was opened for writing (emptied) before the arrays were written: a save that
    # failed midway (a full disk) lost the model saved before.
    path = tmp_path / "model.npz"
    io.save_arrays(path, {"w": np.arange(3.0)}, {"v": 1}, kind="demo")
    before = path.read_bytes()

    def full_disk(fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.save_arrays(path, {"w": np.arange(4.0)}, {"v": 2}, kind="demo")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left
    # A successful save replaces it, keeping its permissions; a new file gets open()'s.
    os.chmod(path, 0o600)
    io.save_arrays(path, {"w": np.arange(4.0)}, {"v": 2}, kind="demo")
    arrays, meta = io.load_arrays(path, kind="demo")
    assert meta["v"] == 2 and arrays["w"].shape == (4,)
    assert path.stat().st_mode & 0o777 == 0o600
    fresh = tmp_path / "fresh.npz"
    io.save_arrays(fresh, {"w": np.arange(4.0)}, {"v": 2}, kind="demo")
    with open(tmp_path / "by_open", "wb"):
        pass
    assert fresh.stat().st_mode & 0o777 == (tmp_path / "by_open").stat().st_mode & 0o777
    # A link is followed: the file it points to is replaced, the link stays.
    link = tmp_path / "link.npz"
    link.symlink_to(path)
    io.save_arrays(link, {"w": np.arange(5.0)}, {"v": 3}, kind="demo")
    assert link.is_symlink() and io.load_arrays(path, kind="demo")[1]["v"] == 3


def test_object_array_is_refused_without_unpickling(tmp_path):
    _, arrays, _, _ = _saved(tmp_path)
    arrays["stage0/jitter"] = np.array([{"payload": 1}], dtype=object)  # needs pickle to load
    bad = _write(tmp_path / "object.npz", arrays)
    with pytest.raises(ValueError, match=r"object\.npz"):
        pp.load_barycenter(bad)


def test_extra_array_is_refused(tmp_path):
    _, arrays, _, _ = _saved(tmp_path)
    arrays["stage0/extra"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"modified|corrupt"):
        pp.load_barycenter(_write(tmp_path / "extra.npz", arrays))


def test_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        pp.load_barycenter(path)
    with pytest.raises((ValueError, OSError)):
        pp.load_barycenter(tmp_path / "missing.npz")


def _tamper_metadata(tmp_path, edit):
    _, arrays, _, _ = _saved(tmp_path)
    meta = json.loads(arrays["metadata"].tobytes())
    edit(meta)
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return _write(tmp_path / "meta.npz", arrays)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda m: m["stages"][0].update(interpolation="linear"), id="interpolation"),
        pytest.param(lambda m: m["stages"][0].update(uniform=False), id="uniform"),
    ],
)
def test_tampered_metadata_is_refused(tmp_path, edit):
    # The digest covers the metadata too: an edited static field is a different post-processor.
    path = _tamper_metadata(tmp_path, edit)
    with pytest.raises(ValueError, match="modified"):
        pp.load_barycenter(path)


def test_malformed_metadata_is_refused(tmp_path):
    path = _tamper_metadata(tmp_path, lambda m: m.update(stages="x"))
    with pytest.raises(ValueError):
        pp.load_barycenter(path)
    _, arrays, _, _ = _saved(tmp_path)
    arrays["metadata"] = np.frombuffer(b"\xff\xfe not json", np.uint8)
    with pytest.raises(ValueError, match="metadata"):
        pp.load_barycenter(_write(tmp_path / "garbled.npz", arrays))


# ============================================================================================
# Every fitted state: the shared file format (fairjax._persistence), FERM states and models,
# the scikit-learn estimators. Round trips are exact; every kind of damaged file is refused.
# ============================================================================================


def assert_identical(a, b):
    """Same PyTree structure, leaf types, dtypes, shapes and bits (weak types included)."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y), (type(x), type(y))
        if isinstance(x, (float, int, str, bool)) or x is None:
            assert x == y
            continue
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        if x.dtype.kind == "O":
            assert x.tolist() == y.tolist()
        else:
            assert x.tobytes() == y.tobytes()
    for x, y in zip(la, lb, strict=True):
        assert getattr(x, "weak_type", None) == getattr(y, "weak_type", None)


# ----------------------------------------------------------------------------- FERM states

_RNG = np.random.default_rng(3)
XF = _RNG.normal(size=(60, 3)).astype(np.float32)
SF = (XF[:, 0] > 0).astype(np.int32)
YF = (XF[:, 0] * XF[:, 1] + 0.3 * XF[:, 2] > 0).astype(np.int32)


def _ferm_states():
    """Each saved FERM state: (loader, saver, state, outputs of the state on XF)."""
    out = {}
    for method in ("orthogonal", "pivot"):
        st = ferm.fit_projection(XF, YF, SF, num_groups=2, method=method)
        out[f"projection_{method}"] = (ferm.save_projection, ferm.load_projection, st)
    models = {
        "model_linear": ferm.fit_linear(XF, YF, SF, num_groups=2, num_steps=20),
        "model_kernel_exact": ferm.fit_kernel(
            XF, YF, SF, num_groups=2, kernel=kernels.gaussian(bandwidth=0.8)
        ),
        "model_nystrom_sum": ferm.fit_kernel(
            XF,
            YF,
            SF,
            num_groups=2,
            num_landmarks=16,
            key=KEY,
            num_steps=20,
            kernel=kernels.multi_bandwidth(
                bandwidths=(0.5, 2.0), kind="laplace", scale=jnp.asarray(1.5)
            ),
        ),
        "model_nystrom_imq": ferm.fit_kernel(
            XF,
            YF,
            SF,
            num_groups=2,
            solver="adam",
            num_steps=20,
            kernel=kernels.inverse_multiquadric(bandwidth=np.float32(2.0), exponent=1),
        ),
        "model_random_fourier": ferm.fit_linear(
            XF,
            YF,
            SF,
            num_groups=2,
            num_steps=20,
            feature_map=kernels.random_fourier_features(KEY, 3, num_features=8),
        ),
        "model_linear_kernel_rff": ferm.fit_kernel(
            XF, YF, SF, num_groups=2, kernel=kernels.linear(), solver="adam", num_steps=10
        ),
    }
    for name, model in models.items():
        out[name] = (ferm.save_model, ferm.load_model, model)
    return out


FERM_STATES = _ferm_states()


def _outputs(state):
    if isinstance(state, ferm.FERMModel):
        return np.asarray(ferm.decision_function(state, XF))
    return np.asarray(ferm.transform(state, XF))


@pytest.mark.parametrize("name", sorted(FERM_STATES))
def test_ferm_state_round_trip_is_exact(tmp_path, name):
    save, load, state = FERM_STATES[name]
    path = tmp_path / f"{name}.npz"
    save(path, state)
    loaded = load(path)
    assert type(loaded) is type(state)
    assert_identical(state, loaded)
    assert _outputs(state).tobytes() == _outputs(loaded).tobytes()
    # The kernels come back as the same kernel values (Sum of Laplace, IMQ with a NumPy scalar).
    if state.__class__ is ferm.FERMModel and state.feature_map is not None:
        assert type(loaded.feature_map) is type(state.feature_map)


def test_ferm_kinds_are_not_interchangeable(tmp_path):
    ferm.save_projection(tmp_path / "p.npz", FERM_STATES["projection_pivot"][2])
    ferm.save_model(tmp_path / "m.npz", FERM_STATES["model_linear"][2])
    with pytest.raises(ValueError, match=r"holds a 'fairjax.ferm.projection' file, not a"):
        ferm.load_model(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"holds a 'fairjax.ferm.model' file, not a"):
        ferm.load_projection(tmp_path / "m.npz")
    with pytest.raises(
        ValueError, match=r"not a (fairjax barycenter|'fairjax.postprocessing.barycenter')"
    ):
        pp.load_barycenter(tmp_path / "m.npz")


class _MyKernel(NamedTuple):
    def matrix(self, X, Y):
        return X @ Y.T


class _MyGaussian(kernels.Gaussian):
    """A subclass may compute something else: refused, not saved as a Gaussian."""


@pytest.mark.parametrize(
    "feature_map",
    [
        pytest.param(lambda X: X, id="callable"),
        pytest.param(ferm.KernelExpansion(_MyKernel(), jnp.ones((2, 3))), id="custom-kernel"),
        pytest.param(
            kernels.NystromFeatures(_MyGaussian(), jnp.ones((2, 3)), jnp.ones((2, 2))),
            id="kernel-subclass",
        ),
    ],
)
def test_unsaveable_models_are_refused_clearly(tmp_path, feature_map):
    model = FERM_STATES["model_linear"][2]._replace(feature_map=feature_map)
    with pytest.raises(TypeError, match=r"cannot save a (kernel|feature map) of type"):
        ferm.save_model(tmp_path / "m.npz", model)
    assert not (tmp_path / "m.npz").exists()
    with pytest.raises(TypeError, match="OrthogonalProjection or PivotElimination"):
        ferm.save_projection(tmp_path / "p.npz", model)


# ----------------------------------------------------------------------------- estimators


def _estimators():
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 120
    s = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 3)) + s[:, None]
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.5).astype(int)
    labels = pd.Series(np.where(y == 1, "approved", "denied"), dtype=object)
    frame = pd.DataFrame(X, columns=["income", "age", "debt"])
    colour = np.where(s == 1, "blue", "green")
    out = {
        "ferm_linear": (FERMClassifier(max_iter=30), X, y, s, {}),
        "ferm_rbf_exact": (FERMClassifier(kernel="rbf", gamma=0.5), X, y, s, {}),
        "ferm_rbf_nystrom_logistic": (
            FERMClassifier(
                kernel="rbf",
                loss="logistic",
                n_components=16,
                max_iter=20,
                random_state=np.int64(3),
            ),
            frame,
            labels,
            None,
            {},
        ),
        "logistic_penalty": (FairLogisticRegression(max_iter=20), frame, labels, colour, {}),
        "logistic_target": (
            FairLogisticRegression("equalized_odds", target=0.05, max_iter=20),
            X,
            y,
            s,
            {},
        ),
        "wasserstein_trained": (
            WassersteinFairRegressor(Ridge(alpha=2.0), random_state=1),
            frame,
            X[:, 0],
            colour,
            {"sensitive_features": colour},
        ),
        "wasserstein_prefit": (
            WassersteinFairRegressor(LinearRegression().fit(X, y), alpha=0.5, jitter=0.01),
            X,
            y,
            s,
            {"sensitive_features": s},
        ),
    }
    fitted = {}
    for name, (est, X_, y_, s_, predict_kw) in out.items():
        fitted[name] = (est.fit(X_, y_, sensitive_features=s_), X_, predict_kw)
    return fitted


@pytest.fixture(scope="module")
def estimators():
    return _estimators()


ESTIMATOR_NAMES = [
    "ferm_linear",
    "ferm_rbf_exact",
    "ferm_rbf_nystrom_logistic",
    "logistic_penalty",
    "logistic_target",
    "wasserstein_trained",
    "wasserstein_prefit",
]


def _load(est, path, **kw):
    if isinstance(est, WassersteinFairRegressor):
        kw.setdefault("estimator", est.estimator_)
    return type(est).load(path, **kw)


def _fitted_attributes(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and k != "estimator_"}


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_estimator_round_trip_is_exact(tmp_path, estimators, name):
    est, X, predict_kw = estimators[name]
    path = tmp_path / f"{name}.npz"
    est.save(path)
    loaded = _load(est, path)
    assert type(loaded) is type(est)
    params, loaded_params = est.get_params(deep=False), loaded.get_params(deep=False)
    assert params.keys() == loaded_params.keys()
    for key in params:
        if key != "estimator":
            assert loaded_params[key] == params[key] and type(loaded_params[key]) is type(
                params[key].item() if isinstance(params[key], np.generic) else params[key]
            )
    attrs, loaded_attrs = _fitted_attributes(est), _fitted_attributes(loaded)
    assert attrs.keys() == loaded_attrs.keys() and len(attrs) >= 3
    for key in attrs:
        assert_identical(attrs[key], loaded_attrs[key])
    methods = [m for m in ("predict", "predict_proba", "decision_function") if hasattr(est, m)]
    for method in methods:
        expected = getattr(est, method)(X, **predict_kw)
        got = getattr(loaded, method)(X, **predict_kw)
        assert got.dtype == expected.dtype and got.shape == expected.shape, method
        if got.dtype.kind == "O":  # string labels: the same Python objects' values
            assert got.tolist() == expected.tolist(), method
        else:
            assert got.tobytes() == expected.tobytes(), method


def test_the_round_trip_covers_labels_names_and_models(estimators):
    """The fixtures really exercise string labels, feature names, no groups and both models."""
    nystrom = estimators["ferm_rbf_nystrom_logistic"][0]
    assert nystrom.classes_.dtype == object and nystrom.groups_.tolist() == [None]
    assert nystrom.feature_names_in_.tolist() == ["income", "age", "debt"]
    assert isinstance(nystrom.model_.feature_map, kernels.NystromFeatures)
    exact = estimators["ferm_rbf_exact"][0]
    assert isinstance(exact.model_.feature_map, ferm.KernelExpansion)
    assert estimators["logistic_penalty"][0].groups_.tolist() == ["blue", "green"]
    assert estimators["wasserstein_trained"][0].estimator_ is not (
        estimators["wasserstein_trained"][0].estimator
    )


def test_a_ferm_file_saved_before_criterion_loads(tmp_path, estimators):
    """Files written when FERMClassifier took ``condition=`` (no ``criterion`` parameter)."""
    est, X, _ = estimators["ferm_linear"]
    est.save(tmp_path / "new.npz")
    arrays, meta = _contents(tmp_path / "new.npz")
    old = json.loads(json.dumps(meta))
    del old["params"]["criterion"]
    old["params"]["condition"] = "positive"
    loaded = FERMClassifier.load(_resigned(tmp_path, arrays, old))
    assert loaded.condition == "positive" and loaded.criterion == "equal_opportunity"
    np.testing.assert_array_equal(loaded.decision_function(X), est.decision_function(X))


def test_wasserstein_load_needs_the_fitted_base_estimator(tmp_path, estimators):
    est, X, _ = estimators["wasserstein_trained"]
    path = tmp_path / "w.npz"
    est.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert not any(k.startswith("fitted/estimator_") for k in data.files)
    with pytest.raises(TypeError, match=r"pass the fitted base estimator"):
        WassersteinFairRegressor.load(path)
    with pytest.raises(ValueError, match="not fitted"):
        WassersteinFairRegressor.load(path, estimator=Ridge())
    with pytest.raises(ValueError, match=r"class sklearn.linear_model._ridge.Ridge, got .*Linear"):
        WassersteinFairRegressor.load(path, estimator=LinearRegression().fit(X, X["age"]))
    with pytest.raises(ValueError, match="3 features, got 2"):
        WassersteinFairRegressor.load(path, estimator=Ridge().fit(X.iloc[:, :2], X["age"]))
    loaded = WassersteinFairRegressor.load(path, estimator=est.estimator_)
    # It was trained by fit: the loaded template is an unfitted clone, so a refit trains again.
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded.estimator)
    assert loaded.estimator.get_params() == est.estimator.get_params()
    prefit, _, _ = estimators["wasserstein_prefit"]
    prefit.save(tmp_path / "p.npz")
    assert (
        WassersteinFairRegressor.load(tmp_path / "p.npz", estimator=prefit.estimator_).estimator
        is prefit.estimator_
    )


def test_unsaveable_estimators_are_refused(tmp_path, estimators):
    with pytest.raises(NotFittedError):
        FERMClassifier().save(tmp_path / "unfitted.npz")
    est, _, _ = estimators["ferm_linear"]
    odd = clone(est).set_params(random_state=np.random.RandomState(0))
    odd.__dict__.update(_fitted_attributes(est))
    with pytest.raises(TypeError, match=r"parameter random_state=.* is not a number"):
        odd.save(tmp_path / "odd.npz")
    mixed = clone(est)
    mixed.__dict__.update(_fitted_attributes(est), classes_=np.array([0, "a"], dtype=object))
    with pytest.raises(TypeError, match=r"classes_.*cannot be saved without pickle"):
        mixed.save(tmp_path / "mixed.npz")
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- damaged files


def _saver(case, estimators):
    """(save(path), load(path)) of a FERM state or an estimator, by case name."""
    if case in FERM_STATES:
        save, load, state = FERM_STATES[case]
        return (lambda p: save(p, state)), load
    est = estimators[case][0]
    return est.save, (lambda p: _load(est, p))


ALL_CASES = sorted(FERM_STATES) + ESTIMATOR_NAMES


def _contents(path):
    with np.load(path, allow_pickle=False) as data:  # no pickle needed to read any entry
        arrays = {k: data[k] for k in data.files}
    assert all(a.dtype.kind != "O" for a in arrays.values())
    return arrays, json.loads(arrays["metadata"].tobytes().decode("utf-8"))


def _rewrite(path, arrays, meta=None):
    arrays = dict(arrays)
    if meta is not None:
        arrays["metadata"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    np.savez(path, **arrays)
    return path


def _leaves(obj, where=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*where, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*where, i))
    else:
        yield where, obj


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if value is None:
        return 0
    return value + "x"


@pytest.mark.parametrize("case", ALL_CASES)
def test_damaged_files_are_refused(tmp_path, estimators, case):
    save, load = _saver(case, estimators)
    path = tmp_path / "good.npz"
    save(path)
    arrays, meta = _contents(path)
    # Version 2 for the regressor whose state holds standardised scores; 1 for the others.
    assert meta["format_version"] == (2 if case.startswith("wasserstein_") else 1)
    assert len(meta["sha256"]) == 64
    bad = tmp_path / "bad.npz"
    # One flipped byte in any array.
    for name, a in arrays.items():
        if name == "metadata" or a.nbytes == 0:
            continue
        raw = bytearray(a.tobytes())
        raw[len(raw) // 2] ^= 0x01
        flipped = np.frombuffer(bytes(raw), a.dtype).reshape(a.shape)
        with pytest.raises(ValueError, match=r"bad\.npz' is corrupt or was modified"):
            load(_rewrite(bad, {**arrays, name: flipped}))
    # Any edited metadata value (a parameter, an option, a field name...), or an added key.
    user = {k: v for k, v in meta.items() if k not in ("format", "format_version", "sha256")}
    n_edits = 0
    for where, value in _leaves(user):
        edited = json.loads(json.dumps(meta))
        node = edited
        for step in where[:-1]:
            node = node[step]
        node[where[-1]] = _changed(value)
        with pytest.raises(ValueError, match="corrupt or was modified"):
            load(_rewrite(bad, arrays, edited))
        n_edits += 1
    assert n_edits >= 3
    with pytest.raises(ValueError, match="corrupt or was modified"):
        load(_rewrite(bad, arrays, {**meta, "note": "hello"}))
    # A dropped or an added array.
    dropped = dict(arrays)
    dropped.pop(sorted(k for k in arrays if k != "metadata")[0])
    with pytest.raises(ValueError, match="corrupt or was modified"):
        load(_rewrite(bad, dropped))
    with pytest.raises(ValueError, match="corrupt or was modified"):
        load(_rewrite(bad, {**arrays, "extra": np.zeros(2)}))
    # Truncated anywhere.
    raw = path.read_bytes()
    for cut in (len(raw) // 3, len(raw) - 30):
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"not a readable .npz file"):
            load(bad)
    # Text, which NumPy takes for a pickle: no advice to load it "unsafely".
    bad.write_text("hello\n")
    with pytest.raises(ValueError, match=r"not a readable .npz file: it is not a NumPy") as err:
        load(bad)
    assert "allow_pickle" not in str(err.value) and "unsafely" not in str(err.value)
    # A newer format version.
    newer = meta["format_version"] + 1
    with pytest.raises(
        ValueError,
        match=f"format version {newer}; this fairjax reads versions? (1 to )?{newer - 1}; "
        "it was written by a newer",
    ):
        load(_rewrite(bad, arrays, {**meta, "format_version": newer}))
    with pytest.raises(ValueError, match="format version '1'"):
        load(_rewrite(bad, arrays, {**meta, "format_version": "1"}))
    # Another kind.
    with pytest.raises(ValueError, match=r"holds a 'fairjax.other' file, not a"):
        load(_rewrite(bad, arrays, {**meta, "format": "fairjax.other"}))
    # Not an npz at all, a .npy, an npz without metadata, garbled metadata.
    bad.write_text("just text")
    with pytest.raises(ValueError, match=r"not a readable .npz file"):
        load(bad)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"not a readable .npz file"):
        load(tmp_path / "single.npy")
    with pytest.raises(ValueError, match="no fairjax metadata entry"):
        load(_rewrite(bad, {k: v for k, v in arrays.items() if k != "metadata"}))
    garbled = {**arrays, "metadata": np.frombuffer(b"\xff{not json", np.uint8)}
    with pytest.raises(ValueError, match="metadata is not valid JSON"):
        load(_rewrite(bad, garbled))
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")
    # The untouched file still loads (the refusals above are about the damage, not the file).
    load(path)


@pytest.mark.parametrize("case", ["projection_pivot", "model_nystrom_sum", "logistic_target"])
def test_a_resigned_but_malformed_file_is_refused_without_crashing(tmp_path, estimators, case):
    """Whoever recomputes the digest still cannot make the loader run anything or crash."""
    save, load = _saver(case, estimators)
    save(tmp_path / "good.npz")
    arrays, meta = _contents(tmp_path / "good.npz")
    data = {k: v for k, v in arrays.items() if k != "metadata"}
    for where, original in list(
        _leaves({k: v for k, v in meta.items() if k not in ("format", "format_version", "sha256")})
    ):
        # A spec of an unknown type, an infinite or huge number (int() overflows, a shape asks
        # for terabytes), a negative one, a null.
        for bad in ({"array": "nope", "type": "pickle"}, float("inf"), [2**40, 2**40], -1, None):
            if bad == original or (where[0] == "params" and not isinstance(bad, dict)):
                continue  # unchanged; a constructor parameter may be any number or None
            edited = json.loads(json.dumps(meta))
            node = edited
            for step in where[:-1]:
                node = node[step]
            node[where[-1]] = bad
            edited["sha256"] = io.digest(data, edited)
            with pytest.raises(ValueError, match=r"resigned\.npz"):  # never KeyError & co.
                load(_rewrite(tmp_path / "resigned.npz", data, edited))


def test_an_object_array_in_a_state_file_is_refused_unread(tmp_path):
    save, load, state = FERM_STATES["projection_orthogonal"]
    save(tmp_path / "p.npz", state)
    arrays, _ = _contents(tmp_path / "p.npz")
    name = next(k for k in arrays if k != "metadata")
    arrays[name] = np.array([{"payload": 1}], dtype=object)
    with pytest.raises(ValueError, match=r"not a readable .npz file.*allow_pickle"):
        load(_rewrite(tmp_path / "obj.npz", arrays))


# ----------------------------------------------------------------------------- the format


def test_save_arrays_round_trip_of_dtypes(tmp_path):
    arrays = {
        "f32": np.arange(3, dtype=np.float32),
        "f64/x": np.array([[1e-300, -0.0]]),
        "i8": np.array([-1, 2], np.int8),
        "b": np.array([True, False]),
        "u": np.array(["a", "bé"]),
        "bf16": np.asarray(jnp.array([1.5, -2.25], jnp.bfloat16)),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.float64(np.pi),
    }
    io.save_arrays(tmp_path / "a.npz", arrays, {"note": "é", "sizes": (2, 3)}, kind="demo")
    loaded, meta = io.load_arrays(tmp_path / "a.npz", kind="demo")
    assert meta == {"note": "é", "sizes": [2, 3], "format_version": 1}
    assert loaded.keys() == arrays.keys()
    for k, a in arrays.items():
        assert loaded[k].dtype == np.asarray(a).dtype and loaded[k].tobytes() == a.tobytes(), k
    # A reader of versions 1..2 reads version 1; a writer of version 3 is refused by it.
    io.save_arrays(tmp_path / "v3.npz", {}, {}, kind="demo", version=3)
    assert io.load_arrays(tmp_path / "a.npz", kind="demo", version=2)[1]["format_version"] == 1
    with pytest.raises(ValueError, match="reads versions 1 to 2; it was written by a newer"):
        io.load_arrays(tmp_path / "v3.npz", kind="demo", version=2)


def test_save_arrays_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        io.save_arrays(tmp_path / "x.npz", {"o": np.array([None])}, {}, kind="demo")
    with pytest.raises(TypeError, match="JSON data"):
        io.save_arrays(tmp_path / "x.npz", {}, {"f": np.float32(1)}, kind="demo")
    with pytest.raises(TypeError, match="JSON data"):
        io.save_arrays(tmp_path / "x.npz", {}, {"nan": float("nan")}, kind="demo")
    with pytest.raises(ValueError, match="reserved"):
        io.save_arrays(tmp_path / "x.npz", {}, {"sha256": "0"}, kind="demo")
    with pytest.raises(ValueError, match="reserved"):
        io.save_arrays(tmp_path / "x.npz", {"metadata": np.zeros(1)}, {}, kind="demo")
    assert not any(tmp_path.iterdir())


def test_the_digest_sees_every_byte_dtype_shape_and_name():
    base = {"a": np.arange(4, dtype=np.int32)}
    d = io.digest(base, {"k": 1})
    assert d == io.digest({"a": np.arange(4, dtype=np.int32)}, {"k": 1, "sha256": "x"})
    for arrays, meta in [
        ({"a": np.arange(4, dtype=np.int64)}, {"k": 1}),
        ({"a": np.arange(4, dtype=np.int32).reshape(2, 2)}, {"k": 1}),
        ({"b": np.arange(4, dtype=np.int32)}, {"k": 1}),
        ({"a": np.array([0, 1, 2, 4], np.int32)}, {"k": 1}),
        (base, {"k": 2}),
        (base, {"k": 1, "j": None}),
    ]:
        assert io.digest(arrays, meta) != d


def test_barycenter_files_are_files_of_the_shared_format(tmp_path):
    """The post-processor's file is a _persistence file (so it can switch without a break)."""
    path, arrays, _, _ = _saved(tmp_path)
    loaded, meta = io.load_arrays(path, kind="fairjax.postprocessing.barycenter")
    assert meta["format_version"] == pp.FORMAT_VERSION and meta["sequential"] is False
    assert loaded.keys() == {k for k in arrays if k != "metadata"}


def test_a_float64_state_loaded_without_x64_warns_and_with_x64_is_exact(tmp_path):
    # With x64 off, JAX reads a float64 file as float32 without a word: a state saved under
    # x64 (scores near 1e6) came back 1e3 off (reported by a probe).
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=300) * 1e3 + 1e6, rng.integers(0, 2, 300)
    path = tmp_path / "x64.npz"
    with jax.enable_x64(True):
        st = pp.fit_barycenter(f, g, num_groups=2, key=jax.random.key(0))
        assert st.cdf_values.dtype == np.float64
        pp.save_barycenter(path, st)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            back = pp.load_barycenter(path)
        np.testing.assert_array_equal(back.cdf_values, st.cdf_values)
    with jax.enable_x64(False), pytest.warns(UserWarning, match="float64 are read as float32"):
        assert pp.load_barycenter(path).cdf_values.dtype == np.float32
    # 64-bit integers past int32's range would wrap: refused.
    big = {"a": np.array([2**40], np.int64)}
    with jax.enable_x64(False), pytest.raises(ValueError, match="past int32's range"):
        io.device_array(big["a"], "a")


def _resigned(tmp_path, arrays, meta, name="crafted.npz"):
    data = {k: v for k, v in arrays.items() if k != "metadata"}
    return _rewrite(tmp_path / name, data, {**meta, "sha256": io.digest(data, meta)})


def test_crafted_states_with_a_valid_digest_are_refused(tmp_path):
    """Content that decodes but does not form a state (review findings) is a ValueError."""
    s = jnp.array([0, 1] * 50)
    state = pp.fit_barycenter(jnp.arange(100.0), s, num_groups=2, key=jax.random.key(0))
    pp.save_barycenter(tmp_path / "post.npz", state)
    arrays, meta = _contents(tmp_path / "post.npz")
    # More groups than the arrays hold: ids 2..6 would pass validation and be clamped.
    for sizes in ([7], [float("inf")], [0], [2.5]):
        bad = json.loads(json.dumps(meta))
        bad["stages"][0]["attribute_sizes"] = sizes
        with pytest.raises(ValueError, match="crafted"):
            pp.load_barycenter(_resigned(tmp_path, arrays, bad))
    # Segments pointing outside the stored values; a float start array.
    for field, value in (("cdf_count", np.array([10**6, 1], np.int32)),
                         ("quantile_start", np.array([0.0, 1.0], np.float32))):  # fmt: skip
        with pytest.raises(ValueError, match="crafted"):
            pp.load_barycenter(_resigned(tmp_path, {**arrays, f"stage0/{field}": value}, meta))
    # An integer leaf holding infinity (int() overflows) in an estimator file.
    X = np.random.default_rng(0).normal(size=(60, 2))
    y, g = (X[:, 0] > 0).astype(int), (X[:, 1] > 0).astype(int)
    clf = FairLogisticRegression(max_iter=20).fit(X, y, sensitive_features=g)
    clf.save(tmp_path / "clf.npz")
    arrays, meta = _contents(tmp_path / "clf.npz")
    leaf = meta["fitted"]["n_iter_"]["spec"]["array"]
    with pytest.raises(ValueError, match="crafted"):
        FairLogisticRegression.load(_resigned(tmp_path, {**arrays, leaf: np.array(np.inf)}, meta))
    # "None" labels asking for 2^40 x 2^40 entries.
    labels = {"array": "huge", "object": "none"}
    bad = json.loads(json.dumps(meta))
    bad["fitted"]["classes_"] = {"codec": "labels", "spec": labels}
    huge = {**arrays, "huge": np.array([2**40, 2**40], np.int64)}
    with pytest.raises(ValueError, match="crafted"):
        FairLogisticRegression.load(_resigned(tmp_path, huge, bad))


def test_archive_members_that_would_exhaust_memory_or_crash_are_refused(tmp_path):
    import zipfile

    state = pp.fit_barycenter(jnp.arange(8.0), jnp.array([0, 1] * 4), num_groups=2,
                              key=jax.random.key(0))  # fmt: skip
    pp.save_barycenter(tmp_path / "post.npz", state)
    # A member whose .npy header declares 2^42 float64 (32 TiB) over a few bytes of data.
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**42,)}
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(tmp_path / "post.npz") as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        buf = __import__("io").BytesIO()
        np.lib.format.write_array_header_1_0(buf, header)
        dst.writestr("bomb.npy", buf.getvalue() + b"\0" * 64)
    with pytest.raises(ValueError, match="declares 35184372088832 bytes"):
        pp.load_barycenter(bomb)
    # A member stored with a compression method zipfile does not implement.
    odd = tmp_path / "odd.npz"
    with zipfile.ZipFile(tmp_path / "post.npz") as src, zipfile.ZipFile(odd, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
    raw = bytearray(odd.read_bytes())
    at = raw.index(b"PK\x01\x02")  # the first central-directory entry: its compression method
    raw[at + 10 : at + 12] = (99).to_bytes(2, "little")
    odd.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        pp.load_barycenter(odd)
    # Metadata nested deeper than the JSON decoder's recursion limit.
    arrays, _ = _contents(tmp_path / "post.npz")
    deep = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)
    with pytest.raises(ValueError, match="metadata is not valid JSON"):
        pp.load_barycenter(_rewrite(tmp_path / "deep.npz", {**arrays, "metadata": deep}))


# ----------------------------------------------------------------------------- paths (issue 18)

# Every public saver and its loader: (save(path), load(path) -> state, the state to save).
SAVERS = ["projection", "model", "barycenter", "ferm_linear", "logistic_penalty", "wasserstein"]


def _public_saver(name, estimators):
    if name in ("projection", "model"):
        save, load, state = FERM_STATES[f"{name}_pivot" if name == "projection" else "model_linear"]
        return (lambda p: save(p, state)), load, state
    if name == "barycenter":
        state = pp.fit_barycenter(jnp.arange(40.0), jnp.arange(40) % 2, num_groups=2, key=KEY)
        return (lambda p: pp.save_barycenter(p, state)), pp.load_barycenter, state
    est = estimators["wasserstein_trained" if name == "wasserstein" else name][0]
    return est.save, (lambda p: _fitted_attributes(_load(est, p))), _fitted_attributes(est)


@pytest.mark.parametrize("filename", ["state.npz", "state", "state.bin", "dir.npz.d/st"])
@pytest.mark.parametrize("name", SAVERS)
def test_save_and_load_agree_on_the_path(tmp_path, estimators, name, filename):
    """Issue 18.12: NumPy appended ``.npz`` to ``state``; loading ``state`` then failed."""
    save, load, state = _public_saver(name, estimators)
    path = tmp_path / filename
    path.parent.mkdir(exist_ok=True)
    save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # exactly that file
    assert_identical(state, load(path))
    assert_identical(state, load(str(path)))  # a str path as well as a pathlib.Path


@pytest.mark.parametrize("name", SAVERS)
def test_a_file_saved_before_the_path_rule_still_loads(tmp_path, estimators, name):
    """Before, ``save("state")`` wrote ``state.npz``: ``load("state")`` now finds it."""
    save, load, state = _public_saver(name, estimators)
    save(tmp_path / "state.npz")  # the file the old save("state") wrote
    assert_identical(state, load(tmp_path / "state"))
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "other")


def test_the_given_path_wins_over_its_npz_sibling(tmp_path):
    io.save_arrays(tmp_path / "s", {"x": np.zeros(1)}, {}, kind="demo")
    io.save_arrays(tmp_path / "s.npz", {"x": np.ones(1)}, {}, kind="demo")
    assert io.load_arrays(tmp_path / "s", kind="demo")[0]["x"][0] == 0
    assert io.load_arrays(tmp_path / "s.npz", kind="demo")[0]["x"][0] == 1
    buf = __import__("io").BytesIO()  # a file object is written and read as it is
    io.save_arrays(buf, {"x": np.full(1, 2.0)}, {}, kind="demo")
    buf.seek(0)
    assert io.load_arrays(buf, kind="demo")[0]["x"][0] == 2


# ----------------------------------------------------------------------------- decompression

BOMB_BYTES = 64 << 20  # 64 MiB of zeros, deflated to about 64 KiB


def _deflated_bomb(path, *, resigned):
    """A small file whose deflated member ``big.npy`` inflates to :data:`BOMB_BYTES` of zeros."""
    import zipfile

    meta = {"format": "demo", "format_version": 1}
    header = {"descr": "<f8", "fortran_order": False, "shape": (BOMB_BYTES // 8,)}
    if resigned:  # a correct digest: the refusal cannot come from the digest check
        meta["sha256"] = io.digest({"big": np.zeros(BOMB_BYTES // 8)}, meta)
    else:
        meta["sha256"] = "0" * 64
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
        with zf.open("big.npy", "w", force_zip64=True) as fh:
            buf = __import__("io").BytesIO()
            np.lib.format.write_array_header_1_0(buf, header)
            fh.write(buf.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(BOMB_BYTES >> 20):
                fh.write(chunk)
    return path


def _npy(arr):
    buf = __import__("io").BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("resigned", [False, True], ids=["bad_digest", "valid_digest"])
def test_a_decompression_bomb_is_refused_before_it_is_inflated(tmp_path, resigned):
    """Issue 18.13: a 64 KiB file inflating to 64 MiB is refused with little memory used."""
    import tracemalloc

    path = _deflated_bomb(tmp_path / "bomb.npz", resigned=resigned)
    assert path.stat().st_size < BOMB_BYTES // 100
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"would inflate .* more than 100 times"):
            io.load_arrays(path, kind="demo")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < BOMB_BYTES // 16, peak  # nothing near the member's size was allocated


@pytest.mark.parametrize("name", SAVERS)
def test_a_recompressed_state_still_loads_through_every_loader(tmp_path, estimators, name):
    """The bound refuses bombs, not compression: savez_compressed of a real state loads."""
    save, load, state = _public_saver(name, estimators)
    save(tmp_path / "plain.npz")
    arrays, _ = _contents(tmp_path / "plain.npz")
    np.savez_compressed(tmp_path / "packed.npz", **arrays)
    assert_identical(state, load(tmp_path / "packed.npz"))


def test_zip_entries_that_lie_about_their_sizes_are_refused(tmp_path):
    io.save_arrays(tmp_path / "s.npz", {"x": np.zeros(4)}, {}, kind="demo")
    raw = bytearray((tmp_path / "s.npz").read_bytes())
    at = raw.rindex(b"PK\x01\x02")  # the last central-directory entry: its compressed size
    raw[at + 20 : at + 24] = (1 << 30).to_bytes(4, "little")
    (tmp_path / "lie.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"not a readable \.npz file"):
        io.load_arrays(tmp_path / "lie.npz", kind="demo")
