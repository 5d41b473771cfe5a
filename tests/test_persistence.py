"""Safe persistence (issue 7, part 7): no pickle anywhere, and tampered files are refused.

The round trip, a modified array, a truncated file and another format version are tested in
``tests/test_postprocessing.py``; here: the library source never unpickles, a file smuggling an
object (pickle) array or an extra array is refused without running anything, and the JSON
metadata (the static fields) is covered by the file's integrity check too.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re

import jax
import numpy as np
import pytest

from fairjax import postprocessing as pp

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
