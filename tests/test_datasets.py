"""Tests for fairjax.datasets.

Tests of COMPAS, Communities and Crime and Law School read the raw files from the folder named by
``FAIRJAX_DATA_HOME`` (CI: ``../shared/data``) and are skipped when it is unset or absent. Adult
and German are embedded in the package, so their tests always run. No test touches the network:
downloads go through a monkeypatched ``urlopen`` or a ``file://`` URL.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import warnings
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fairjax.datasets as fd
from fairjax.datasets import _registry

_SHARED = os.environ.get("FAIRJAX_DATA_HOME")
SHARED_HOME = Path(_SHARED).resolve() if _SHARED else None


def shared_file(relpath: str) -> Path:
    """The data home file, or a skip naming what is missing."""
    if SHARED_HOME is None:
        pytest.skip("FAIRJAX_DATA_HOME is not set; it must name the shared benchmark data folder")
    if not SHARED_HOME.is_dir():
        pytest.skip(f"FAIRJAX_DATA_HOME={_SHARED} is not a folder")
    path = SHARED_HOME / relpath
    if not path.is_file():
        pytest.skip(f"{relpath} is not in FAIRJAX_DATA_HOME={_SHARED}")
    return path


def embedded_bytes(name: str) -> bytes:
    gz = resources.files("fairjax.datasets").joinpath("_data", name + ".gz").read_bytes()
    return gzip.decompress(gz)


def check_dataset(data: fd.Dataset, *, n_train: int, n_test: int, n_features: int) -> None:
    assert data.X_train.shape == (n_train, n_features)
    assert data.X_test.shape == (n_test, n_features)
    assert data.X_train.dtype == np.float32 and data.X_test.dtype == np.float32
    y_dtype = np.float32 if data.task == "regression" else np.int32
    for y, g, n in (
        (data.y_train, data.groups_train, n_train),
        (data.y_test, data.groups_test, n_test),
    ):
        assert y.shape == (n,) and g.shape == (n,)
        assert y.dtype == y_dtype
        assert g.dtype == np.int32
        assert g.min() >= 0 and g.max() < data.num_groups
        assert np.isfinite(y).all()
        if data.task == "classification":
            assert set(np.unique(y)) <= {0, 1}
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()
    assert len(data.feature_names) == n_features == len(set(data.feature_names))
    assert data.num_groups == len(data.group_names) >= 2
    assert data.task in ("classification", "multiclass", "regression")
    assert data.description and data.target_name and data.sensitive_name


def numeric_column(data: fd.Dataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    j = data.feature_names.index(name)
    return data.X_train[:, j], data.X_test[:, j]


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No data home configured: env var unset and the cache pointed at an empty folder."""
    monkeypatch.delenv("FAIRJAX_DATA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def adult() -> fd.Dataset:
    # An explicit, empty data home forces the embedded copies.
    return fd.load_adult(data_home="/nonexistent-fairjax-data-home")


# ----------------------------------------------------------------------------- Adult (embedded)


def test_adult_shapes_counts_and_groups(adult):
    check_dataset(adult, n_train=30162, n_test=15060, n_features=104)
    assert adult.group_names == ("Female", "Male")
    assert adult.task == "classification"
    # Counts from the UCI documentation of the cleaned data: 7508 of 30162 train rows are >50K.
    assert int(adult.y_train.sum()) == 7508
    assert int(adult.y_test.sum()) == 3700
    # Group ids agree with the one-hot sex columns.
    male = adult.X_train[:, adult.feature_names.index("sex=Male")]
    np.testing.assert_array_equal(male, adult.groups_train)


def test_adult_standardisation_uses_train_statistics_only(adult):
    # Independent parse of the raw age column.
    def ages(name: str) -> np.ndarray:
        lines = embedded_bytes(name).decode().splitlines()
        rows = [[f.strip() for f in ln.split(",")] for ln in lines if ln and not ln.startswith("|")]
        return np.array([float(r[0]) for r in rows if "?" not in r])

    age_train, age_test = ages("adult.data"), ages("adult.test")
    mean, std = age_train.mean(), age_train.std()
    z_train, z_test = numeric_column(adult, "age")
    np.testing.assert_allclose(z_train, (age_train - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z_test, (age_test - mean) / std, rtol=1e-5, atol=1e-5)
    assert abs(z_train.mean()) < 1e-4 and abs(z_train.std() - 1) < 1e-4
    # The test part is not re-standardised with its own statistics.
    test_std = (age_test - age_test.mean()) / age_test.std()
    assert not np.allclose(z_test, test_std, atol=1e-3)


def test_adult_include_sensitive_drops_sex_columns(adult):
    no_sex = fd.load_adult(include_sensitive=False, data_home="/nonexistent-fairjax-data-home")
    check_dataset(no_sex, n_train=30162, n_test=15060, n_features=102)
    assert not any(name.startswith("sex=") for name in no_sex.feature_names)
    keep = [j for j, name in enumerate(adult.feature_names) if not name.startswith("sex=")]
    np.testing.assert_array_equal(no_sex.X_train, adult.X_train[:, keep])
    np.testing.assert_array_equal(no_sex.groups_test, adult.groups_test)


def test_adult_from_data_home_equals_embedded(adult):
    shared_file("adult/adult.data")
    shared_file("adult/adult.test")
    from_home = fd.load_adult(data_home=SHARED_HOME)
    for a, b in zip(from_home, adult, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


def test_dataset_is_immutable(adult):
    with pytest.raises(AttributeError):
        adult.X_train = None


# ----------------------------------------------------------------------------- German (embedded)


@pytest.mark.parametrize(
    ("sensitive", "names", "counts"),
    [("age", ("age <= 25", "age > 25"), (190, 810)), ("sex", ("Female", "Male"), (310, 690))],
)
def test_german_groups(no_env, sensitive, names, counts):
    data = fd.load_german(sensitive=sensitive)
    check_dataset(data, n_train=700, n_test=300, n_features=61)
    assert data.group_names == names
    groups = np.concatenate([data.groups_train, data.groups_test])
    assert tuple(np.bincount(groups)) == counts
    y = np.concatenate([data.y_train, data.y_test])
    assert int(y.sum()) == 700  # 700 good, 300 bad credit risks in the file
    # Stratified by (group, label): each cell is split 70/30 up to rounding.
    for g in range(2):
        for label in range(2):
            n_cell = np.sum((groups == g) & (y == label))
            n_test = np.sum((data.groups_test == g) & (data.y_test == label))
            assert n_test == round(0.3 * n_cell)


def test_german_sex_rule_against_raw_codes(no_env):
    rows = [ln.split() for ln in embedded_bytes("german.data").decode().splitlines() if ln]
    female = np.array([r[8] in ("A92", "A95") for r in rows])
    data = fd.load_german(sensitive="sex", include_sensitive=False, test_size=0.5, seed=3)
    assert np.sum(female) == np.sum(np.concatenate([data.groups_train, data.groups_test]) == 0)
    assert not any(n.startswith("personal_status_sex=") for n in data.feature_names)
    assert data.X_train.shape[1] == 57


def test_german_include_sensitive_and_seed(no_env):
    full = fd.load_german()
    no_age = fd.load_german(include_sensitive=False)
    assert "age" in full.feature_names and "age" not in no_age.feature_names
    assert no_age.X_train.shape[1] == full.X_train.shape[1] - 1
    again = fd.load_german()
    np.testing.assert_array_equal(full.X_train, again.X_train)
    other = fd.load_german(seed=1)
    assert not np.array_equal(full.y_train, other.y_train) or not np.array_equal(
        full.X_train, other.X_train
    )
    small = fd.load_german(test_size=0.1)
    assert small.X_test.shape[0] == 100


# ----------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("call", "kwargs", "error", "name"),
    [
        (fd.load_german, {"sensitive": "race"}, ValueError, "sensitive"),
        (fd.load_german, {"test_size": 0.0}, ValueError, "test_size"),
        (fd.load_german, {"test_size": 1.0}, ValueError, "test_size"),
        (fd.load_german, {"test_size": 1.5}, ValueError, "test_size"),
        (fd.load_german, {"test_size": "0.3"}, TypeError, "test_size"),
        (fd.load_german, {"seed": -1}, ValueError, "seed"),
        (fd.load_german, {"seed": 1.5}, TypeError, "seed"),
        (fd.load_german, {"include_sensitive": "yes"}, TypeError, "include_sensitive"),
        (fd.load_adult, {"include_sensitive": 1}, TypeError, "include_sensitive"),
        (fd.load_law_school, {"target": "GPA"}, ValueError, "target"),
        (fd.load_compas, {"test_size": -0.1}, ValueError, "test_size"),
        (fd.load_communities_crime, {"threshold": float("nan")}, ValueError, "threshold"),
    ],
)
def test_bad_arguments_are_named(no_env, call, kwargs, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        call(**kwargs)


# ----------------------------------------------------------------------------- data home, errors


def test_get_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRJAX_DATA_HOME", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fd.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert fd.get_data_home() == tmp_path / "env"
    monkeypatch.delenv("FAIRJAX_DATA_HOME")
    assert fd.get_data_home() == tmp_path / "xdg" / "fairjax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert fd.get_data_home() == Path.home() / ".cache" / "fairjax"


def write_german(folder: Path, *, corrupt: bool) -> Path:
    data = bytearray(embedded_bytes("german.data"))
    if corrupt:
        data[100] = ord("9") if data[100] != ord("9") else ord("8")
    path = folder / "german" / "german.data"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(data))
    return path


def test_checksum_mismatch_names_the_file(no_env, tmp_path):
    path = write_german(tmp_path, corrupt=True)
    with pytest.raises(fd.DatasetChecksumError, match="sha256 mismatch") as info:
        fd.load_german(data_home=tmp_path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert _registry.REGISTRY["german/german.data"].sha256 in str(info.value)


def test_checksum_mismatch_of_a_shared_file(no_env, tmp_path):
    src = shared_file("compas/compas-scores-two-years.csv")
    dst = tmp_path / "compas" / src.name
    dst.parent.mkdir()
    data = bytearray(src.read_bytes())
    data[-3] ^= 1  # flip one bit in the last record (a digit of two_year_recid's row)
    dst.write_bytes(bytes(data))
    with pytest.raises(fd.DatasetChecksumError, match=re.escape("compas-scores-two-years.csv")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fd.load_compas(data_home=tmp_path)


def test_data_home_precedence_when_loading(monkeypatch, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    write_german(good, corrupt=False)
    write_german(bad, corrupt=True)
    monkeypatch.setenv("FAIRJAX_DATA_HOME", str(bad))
    # The argument beats the environment variable ...
    assert fd.load_german(data_home=good).X_train.shape == (700, 61)
    # ... and the environment variable beats the cache folder and the embedded copy.
    with pytest.raises(fd.DatasetChecksumError, match=re.escape(str(bad))):
        fd.load_german()
    monkeypatch.delenv("FAIRJAX_DATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    write_german(tmp_path / "xdg" / "fairjax", corrupt=True)
    with pytest.raises(fd.DatasetChecksumError, match="xdg"):
        fd.load_german()


@pytest.mark.parametrize(
    ("loader", "relpath"),
    [
        (fd.load_compas, "compas/compas-scores-two-years.csv"),
        (fd.load_communities_crime, "communities_crime/communities.data"),
        (fd.load_law_school, "law_school/law_data.csv"),
        (fd.load_drug_consumption, "drug_consumption/drug_consumption.data"),
    ],
)
def test_missing_file_error_message(no_env, tmp_path, loader, relpath):
    with pytest.raises(fd.DatasetNotFoundError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loader(data_home=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert relpath in message
    assert str(tmp_path) in message
    assert _registry.REGISTRY[relpath].url in message
    assert f"{loader.__name__}(download=True)" in message


def test_missing_file_message_names_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRJAX_DATA_HOME", str(tmp_path))
    with pytest.raises(fd.DatasetNotFoundError, match="FAIRJAX_DATA_HOME"):
        fd.load_law_school()


# ----------------------------------------------------------------------------- download


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_through_monkeypatched_urlopen(no_env, monkeypatch, tmp_path):
    raw = embedded_bytes("german.data")
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return FakeResponse(raw)

    monkeypatch.setattr(_registry.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(_registry, "_read_embedded", lambda raw_file: None)  # a stripped install
    with pytest.raises(fd.DatasetNotFoundError):
        fd.load_german(data_home=tmp_path)
    assert calls == []
    data = fd.load_german(data_home=tmp_path, download=True)
    assert calls == [
        "https://archive.ics.uci.edu/ml/machine-learning-databases/statlog/german/german.data"
    ]
    target = tmp_path / "german" / "german.data"
    assert (
        hashlib.sha256(target.read_bytes()).hexdigest()
        == _registry.REGISTRY["german/german.data"].sha256
    )
    assert [p.name for p in target.parent.iterdir()] == ["german.data"]  # no temp file left
    # A second call reads the data home and does not download again.
    again = fd.load_german(data_home=tmp_path, download=True)
    assert len(calls) == 1
    np.testing.assert_array_equal(data.X_train, again.X_train)


def test_download_with_bad_checksum_writes_nothing(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(
        _registry.urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"not it")
    )
    with pytest.raises(fd.DatasetChecksumError, match=re.escape("raw.githubusercontent.com")):
        fd.load_law_school(data_home=tmp_path, download=True)
    assert not (tmp_path / "law_school").exists()


def test_download_from_file_url(no_env, monkeypatch, tmp_path):
    src = shared_file("law_school/law_data.csv")
    entry = _registry.REGISTRY["law_school/law_data.csv"]
    registry = dict(_registry.REGISTRY)
    registry[entry.path] = entry._replace(url=src.as_uri())
    monkeypatch.setattr(_registry, "REGISTRY", MappingProxyType(registry))
    home = tmp_path / "new" / "home"
    data = fd.load_law_school(data_home=home, download=True)
    assert (home / "law_school" / "law_data.csv").read_bytes() == src.read_bytes()
    assert data.X_train.shape[0] + data.X_test.shape[0] == 21791


@pytest.mark.network
@pytest.mark.skipif(
    os.environ.get("FAIRJAX_NETWORK_TESTS") != "1",
    reason="needs internet; set FAIRJAX_NETWORK_TESTS=1 to run",
)
def test_download_german_from_uci(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(_registry, "_read_embedded", lambda raw_file: None)
    data = fd.load_german(data_home=tmp_path, download=True)
    assert data.X_train.shape == (700, 61)


# ----------------------------------------------------------------------------- data home sets


def test_compas(no_env):
    home = shared_file("compas/compas-scores-two-years.csv").parent.parent
    with pytest.warns(UserWarning, match="COMPAS"):
        data = fd.load_compas(data_home=home)
    check_dataset(data, n_train=3695, n_test=1583, n_features=13)
    assert data.group_names == ("African-American", "Caucasian")
    groups = np.concatenate([data.groups_train, data.groups_test])
    assert tuple(np.bincount(groups)) == (3175, 2103)
    y = np.concatenate([data.y_train, data.y_test])
    assert int(y.sum()) == 2483
    allowed = ("sex=", "age_cat=", "race=", "c_charge_degree=", "priors_count", "juv_")
    assert all(name.startswith(allowed) for name in data.feature_names)
    with pytest.warns(UserWarning):
        no_race = fd.load_compas(data_home=home, include_sensitive=False, seed=1)
    assert not any(name.startswith("race=") for name in no_race.feature_names)
    assert no_race.X_train.shape[1] == 11
    z_train, _ = numeric_column(no_race, "priors_count")
    assert abs(z_train.mean()) < 1e-4 and abs(z_train.std() - 1) < 1e-4


def test_communities_crime(no_env):
    home = shared_file("communities_crime/communities.data").parent.parent
    data = fd.load_communities_crime(data_home=home)
    check_dataset(data, n_train=1396, n_test=598, n_features=100)
    assert data.task == "regression"
    assert data.y_train.min() >= 0 and data.y_train.max() <= 1
    groups = np.concatenate([data.groups_train, data.groups_test])
    assert tuple(np.bincount(groups)) == (956, 1038)
    assert "OtherPerCap" in data.feature_names
    assert not {"state", "fold", "communityname", "PolicCars"} & set(data.feature_names)
    # The group rule on the raw column: racepctblack >= threshold.
    j = data.feature_names.index("racepctblack")
    raw = np.concatenate([data.X_train[:, j], data.X_test[:, j]])
    assert raw[groups == 1].min() > raw[groups == 0].max()
    no_black = fd.load_communities_crime(data_home=home, include_sensitive=False, threshold=0.2)
    assert "racepctblack" not in no_black.feature_names and no_black.X_train.shape[1] == 99
    assert no_black.group_names == ("racepctblack < 0.2", "racepctblack >= 0.2")
    with pytest.raises(ValueError, match="`threshold`"):
        fd.load_communities_crime(data_home=home, threshold=2.0)


@pytest.mark.parametrize(
    ("target", "task"), [("ZFYA", "regression"), ("pass_bar", "classification")]
)
def test_law_school(no_env, target, task):
    home = shared_file("law_school/law_data.csv").parent.parent
    data = fd.load_law_school(data_home=home, target=target)
    n_train = data.X_train.shape[0]
    check_dataset(data, n_train=n_train, n_test=21791 - n_train, n_features=23)
    assert abs(data.X_test.shape[0] - 0.3 * 21791) <= 2
    assert data.task == task
    assert data.group_names == ("non-White", "White")
    groups = np.concatenate([data.groups_train, data.groups_test])
    assert tuple(np.bincount(groups)) == (3506, 18285)
    white = data.X_train[:, data.feature_names.index("race=White")]
    np.testing.assert_array_equal(white, data.groups_train)
    if task == "classification":
        assert int(np.concatenate([data.y_train, data.y_test]).sum()) == 19360
    no_race = fd.load_law_school(data_home=home, target=target, include_sensitive=False)
    assert no_race.X_train.shape[1] == 15
    assert not any(name.startswith("race=") for name in no_race.feature_names)


# ----------------------------------------------------------------------------- as_frame

LOADER_FUNCTIONS = (
    fd.load_adult,
    fd.load_german,
    fd.load_compas,
    fd.load_communities_crime,
    fd.load_law_school,
    fd.load_drug_consumption,
)
# Every loader, with the data home file it needs (None: embedded, always available).
LOADERS = [
    pytest.param(fd.load_adult, {}, None, marks=pytest.mark.slow),  # 2 s a load
    (fd.load_german, {"sensitive": "sex"}, None),
    (fd.load_compas, {}, "compas/compas-scores-two-years.csv"),
    (fd.load_communities_crime, {}, "communities_crime/communities.data"),
    (fd.load_law_school, {"target": "pass_bar"}, "law_school/law_data.csv"),
    (fd.load_drug_consumption, {}, "drug_consumption/drug_consumption.data"),
]


@pytest.mark.parametrize(
    ("loader", "kwargs", "relpath"), LOADERS, ids=lambda x: getattr(x, "__name__", None)
)
def test_as_frame_names_the_same_values(loader, kwargs, relpath):
    pd = pytest.importorskip("pandas")
    if relpath is not None:
        kwargs = dict(kwargs, data_home=shared_file(relpath).parent.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # COMPAS's label warning
        arrays = loader(**kwargs)
        frames = loader(as_frame=True, **kwargs)
    for part in ("train", "test"):
        X, y, g = (getattr(frames, f"{name}_{part}") for name in ("X", "y", "groups"))
        assert isinstance(X, pd.DataFrame) and isinstance(y, pd.Series)
        assert list(X.columns) == list(arrays.feature_names)
        np.testing.assert_array_equal(X.to_numpy(), getattr(arrays, f"X_{part}"))
        assert X.dtypes.unique().tolist() == [np.float32]
        assert y.name == arrays.target_name and y.dtype == getattr(arrays, f"y_{part}").dtype
        np.testing.assert_array_equal(y.to_numpy(), getattr(arrays, f"y_{part}"))
        # Groups by name, categories in id order, so that the codes are the ids.
        assert g.name == arrays.sensitive_name and isinstance(g.dtype, pd.CategoricalDtype)
        assert tuple(g.cat.categories) == arrays.group_names
        ids = getattr(arrays, f"groups_{part}")
        np.testing.assert_array_equal(g.cat.codes.to_numpy(), ids)
        np.testing.assert_array_equal(g.astype(str).to_numpy(), np.array(arrays.group_names)[ids])
        assert X.index.equals(y.index) and X.index.equals(g.index) and X.index.name == "row"
        # batch() gives the same JAX arrays either way.
        for a, b in zip(frames.batch(part), arrays.batch(part), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = np.concatenate([frames.X_train.index, frames.X_test.index])
    np.testing.assert_array_equal(np.sort(rows), np.arange(rows.size))  # a partition of the rows
    assert frames.feature_names == arrays.feature_names


def test_as_frame_works_with_fairlearn_metric_frame():
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    data = fd.load_german(sensitive="sex", as_frame=True)
    mf = fairlearn_metrics.MetricFrame(
        metrics=fairlearn_metrics.selection_rate,
        y_true=data.y_test,
        y_pred=data.y_test,
        sensitive_features=data.groups_test,
    )
    assert list(mf.by_group.index) == ["Female", "Male"]
    assert mf.by_group.index.name == "sex"
    g = np.asarray(fd.load_german(sensitive="sex").groups_test)
    expected = [data.y_test.to_numpy()[g == k].mean() for k in (0, 1)]
    np.testing.assert_allclose(mf.by_group.to_numpy(), expected)


@pytest.mark.parametrize("loader", LOADER_FUNCTIONS, ids=lambda f: f.__name__)
def test_as_frame_must_be_a_bool(no_env, loader):
    # Checked before any file is read: no data home is needed.
    with pytest.raises(TypeError, match="`as_frame`"):
        loader(as_frame="yes")


# ----------------------------------------------------------------------------- synthetic


def base_rate_gap(data: fd.Dataset) -> float:
    y = np.concatenate([data.y_train, data.y_test]).astype(np.float64)
    g = np.concatenate([data.groups_train, data.groups_test])
    return float(y[g == data.num_groups - 1].mean() - y[g == 0].mean())


def test_make_classification_bias_controls_gap():
    key = jax.random.key(0)
    gaps = [
        base_rate_gap(fd.make_classification(key, n_samples=20000, bias=b))
        for b in (0.0, 0.5, 1.0, 2.0)
    ]
    assert abs(gaps[0]) < 0.03
    assert 0.05 < gaps[1] < gaps[2] < gaps[3]
    # With bias = 0 the features do not depend on the group either.
    data = fd.make_classification(key, n_samples=20000, bias=0.0)
    x0, g = data.X_train[:, 0], data.groups_train
    assert abs(x0[g == 1].mean() - x0[g == 0].mean()) < 0.05


def test_make_regression_mean_gap_is_two_bias():
    key = jax.random.key(1)
    for bias in (0.0, 0.5, 2.0):
        data = fd.make_regression(key, n_samples=20000, bias=bias)
        check_dataset(data, n_train=14000, n_test=6000, n_features=5)
        assert abs(base_rate_gap(data) - 2 * bias) < 0.06


def test_synthetic_determinism_shapes_and_groups():
    key = jax.random.key(42)
    a = fd.make_classification(key, n_samples=500, n_features=3, num_groups=3)
    b = fd.make_classification(key, n_samples=500, n_features=3, num_groups=3)
    c = fd.make_classification(jax.random.key(43), n_samples=500, n_features=3, num_groups=3)
    check_dataset(a, n_train=350, n_test=150, n_features=3)
    for x, y in zip(a[:6], b[:6], strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.X_train, c.X_train)
    assert a.group_names == ("group 0", "group 1", "group 2")
    skewed = fd.make_regression(
        key, n_samples=20000, group_proportions=(0.8, 0.2), bias=0.0, test_size=0.5
    )
    assert abs(np.mean(skewed.groups_train == 0) - 0.8) < 0.02
    assert skewed.y_train.dtype == np.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_samples": 1}, ValueError, "n_samples"),
        ({"n_features": 0}, ValueError, "n_features"),
        ({"num_groups": 0}, ValueError, "num_groups"),
        ({"bias": float("inf")}, ValueError, "bias"),
        ({"group_proportions": (0.5, 0.6)}, ValueError, "group_proportions"),
        ({"group_proportions": (1.0,)}, ValueError, "group_proportions"),
        ({"test_size": 1.0}, ValueError, "test_size"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
    ],
)
def test_synthetic_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        fd.make_classification(jax.random.key(0), **kwargs)
    with pytest.raises(error, match=f"`{name}`"):
        fd.make_regression(jax.random.key(0), **kwargs)


def test_synthetic_key_must_be_a_jax_key():
    with pytest.raises(TypeError, match="`key`"):
        fd.make_classification(0)
    with pytest.raises(TypeError, match=r"`key` must be a jax\.random key"):
        fd.make_classification(jnp.zeros(2))
    with pytest.raises(ValueError, match="`key` must be a single key"):
        fd.make_classification(jax.random.split(jax.random.key(0), 3))
    # The raw key data of jax.random.PRNGKey draws what its typed key draws.
    raw = fd.make_classification(jax.random.PRNGKey(3), n_samples=50)
    typed = fd.make_classification(jax.random.key(3), n_samples=50)
    np.testing.assert_array_equal(raw.X_train, typed.X_train)
    with pytest.raises(ValueError, match="`noise`"):
        fd.make_regression(jax.random.key(0), noise=-1.0)


def test_public_names_are_documented():
    for name in fd.__all__:
        obj = getattr(fd, name)
        assert obj.__doc__ and obj.__doc__.strip(), name


def test_embedded_copies_are_the_registered_files():
    for name, relpath in (
        ("adult.data", "adult/adult.data"),
        ("adult.test", "adult/adult.test"),
        ("german.data", "german/german.data"),
    ):
        digest = hashlib.sha256(embedded_bytes(name)).hexdigest()
        assert digest == _registry.REGISTRY[relpath].sha256


# ----------------------------------------------------------------------------- drug consumption


@pytest.mark.parametrize(
    ("sensitive", "names", "column"),
    [("gender", ("female", "male"), 2), ("age", ("18-34", "35+"), 1)],
)
def test_drug_consumption(no_env, sensitive, names, column):
    home = shared_file("drug_consumption/drug_consumption.data").parent.parent
    data = fd.load_drug_consumption(data_home=home, sensitive=sensitive)
    check_dataset(data, n_train=1320, n_test=565, n_features=12)
    assert data.task == "multiclass" and data.group_names == names
    # Counted from the raw file independently of the loader: gender is +-0.48246 (female
    # positive), the two youngest age bands are the negative values.
    raw = [
        row.split(",")
        for row in (home / "drug_consumption/drug_consumption.data").read_text().split()
    ]
    value = np.array([float(row[column]) for row in raw])
    want = np.bincount((value < 0) if sensitive == "gender" else (value > 0))
    groups = np.concatenate([data.groups_train, data.groups_test])
    assert tuple(np.bincount(groups)) == tuple(want)
    y = np.concatenate([data.y_train, data.y_test])
    cannabis = [row[13 + 5] for row in raw]  # the 6th substance after the 13 personal columns
    assert tuple(np.bincount(y)) == tuple(cannabis.count(f"CL{k}") for k in range(7))
    fewer = fd.load_drug_consumption(data_home=home, sensitive=sensitive, include_sensitive=False)
    assert fewer.X_train.shape[1] == 11
    with pytest.raises(ValueError, match="drug"):
        fd.load_drug_consumption(data_home=home, drug="coffee")
