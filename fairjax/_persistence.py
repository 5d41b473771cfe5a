"""The one file format of every fitted state: ``.npz`` arrays plus JSON metadata, no pickle.

A file written by :func:`save_arrays` is a plain NumPy ``.npz`` archive. Next to the caller's
arrays it holds one entry ``metadata``: UTF-8 JSON bytes (a ``uint8`` array) with

* ``format``: the *kind* of state (``"fairjax.ferm.projection"``, ...), so a file of one kind is
  never read as another;
* ``format_version``: the layout version of that kind, so an old reader refuses a newer file
  instead of misreading it;
* the caller's own metadata keys (static fields: option strings, sizes, constructor parameters);
* ``sha256``: a SHA-256 digest over the canonical JSON of all the other metadata and over every
  array's name, dtype, shape and bytes.

:func:`load_arrays` opens the archive with ``allow_pickle=False`` (an object array, the only way
a pickle can ride in an ``.npz``, is refused, nothing is unpickled) and checks, in this order,
that the file is a readable archive whose members cannot ask for more memory than the file
accounts for (see :func:`load_arrays`), that it has JSON metadata, its kind, its version and the
digest; each failure is a ``ValueError`` naming the file and what is wrong. The digest detects
corruption and hand edits (a changed byte, an added, dropped or renamed array, an edited option);
it is not a signature: whoever can write the file can recompute it. What makes loading an
untrusted file safe is that nothing in it is ever executed: arrays are data and the metadata is
JSON, decoded by the reader of each kind into a whitelist of types.

The leaf helpers :func:`put_value` / :func:`get_value` store a numeric leaf of a state (a Python
number, a NumPy or a JAX array) as an array and describe it in the metadata, so that it comes
back as the same type with bit-equal values and the same dtype and shape; :func:`put_labels` /
:func:`get_labels` do the same for the label arrays of the scikit-learn estimators (``classes_``,
feature names), which may be object arrays of strings.

This layout is version 1 of the barycenter post-processor's file (``format`` and
``format_version`` at the top level of the metadata, the same digest), so post-processor files
written before this module existed load through it unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import stat
import warnings
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "device_array",
    "digest",
    "get_labels",
    "get_object",
    "get_value",
    "load_arrays",
    "put_labels",
    "put_object",
    "put_value",
    "register_codec",
    "resolve",
    "save_arrays",
]

#: Metadata keys written by :func:`save_arrays` itself; a caller's metadata may not use them.
RESERVED_KEYS = ("format", "format_version", "sha256", "dtypes")
#: Name of the archive entry holding the JSON metadata.
METADATA = "metadata"
#: dtypes NumPy cannot describe in an ``.npz`` header (it writes them as raw ``V2``/``V1``):
#: stored as a same-width unsigned view, their name recorded under ``dtypes``.
_EXTENDED_DTYPES = ("bfloat16", "float8_e4m3fn", "float8_e5m2")
_VIEW = {2: np.uint16, 1: np.uint8}
#: A deflate-compressed member may inflate to at most this many times its compressed size plus
#: :data:`INFLATION_SLACK` bytes. fairjax writes uncompressed members; this admits a file someone
#: recompressed (``np.savez_compressed``) while refusing a decompression bomb (zeros deflate
#: about 1000:1) before anything is inflated.
MAX_INFLATION = 100
#: Bytes any deflated member may inflate to whatever its compressed size (small members).
INFLATION_SLACK = 1 << 20
_SUFFIX = ".npz"


class FormatError(ValueError):
    """A file that is not a valid fairjax state file of the requested kind."""


def digest(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """SHA-256 over the metadata (all but ``sha256``, canonical JSON) and the arrays.

    Each array contributes its name, dtype, shape and C-order bytes, in sorted name order.

    Example:
      >>> import numpy as np
      >>> from fairjax._persistence import digest
      >>> a = digest({"x": np.zeros(2)}, {"format": "k"})
      >>> a == digest({"x": np.zeros(2)}, {"format": "k", "sha256": "ignored"})
      True
      >>> a == digest({"x": np.zeros(2, np.float32)}, {"format": "k"})
      False
    """
    h = hashlib.sha256()
    header = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(header, sort_keys=True).encode("utf-8"))
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(arr.dtype).encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _canonical(meta: dict[str, Any], what: str) -> str:
    try:
        return json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{what} must be JSON data (dicts with string keys, lists, str, finite numbers, "
            f"bool, None): {err}"
        ) from err


def save_arrays(
    path: str | os.PathLike,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    *,
    kind: str,
    version: int = 1,
) -> None:
    """Writes ``arrays`` and JSON ``meta`` to an ``.npz`` file tagged ``kind``, with a digest.

    Args:
      path: destination, written exactly as given (no suffix is added: ``"model"`` writes
        ``model``, as :func:`load_arrays` reads it), or a binary file object. An existing
        file is replaced, once the new one is completely written (a failed save leaves it
        as it was).
      arrays: name -> array (NumPy or JAX; numeric or bool, never object). Names may hold ``/``.
      meta: JSON-serialisable static fields (tuples are written as lists). The keys
        ``format``, ``format_version``, ``sha256`` and ``dtypes`` are reserved.
      kind: what the file holds, e.g. ``"fairjax.ferm.projection"``; :func:`load_arrays` refuses
        a file of another kind.
      version: the layout version of this kind (a reader refuses newer versions).

    Raises:
      TypeError: an object array, or metadata that is not JSON data.
      ValueError: a reserved metadata key or array name.

    Example:
      >>> import os, tempfile, numpy as np
      >>> from fairjax._persistence import save_arrays, load_arrays
      >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
      >>> save_arrays(path, {"w": np.arange(3.0)}, {"loss": "hinge"}, kind="demo")
      >>> arrays, meta = load_arrays(path, kind="demo")
      >>> arrays["w"], meta["loss"], meta["format_version"]
      (array([0., 1., 2.]), 'hinge', 1)
    """
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"`kind` must be a non-empty string, got {kind!r}.")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TypeError(f"`version` must be an int >= 1, got {version!r}.")
    clash = sorted(set(meta) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"metadata keys {clash} are reserved by the file format.")
    if METADATA in arrays:
        raise ValueError(f"the array name {METADATA!r} is reserved by the file format.")
    stored: dict[str, np.ndarray] = {}
    extended: dict[str, str] = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise TypeError(
                f"array {name!r} has dtype object, which cannot be saved without pickle."
            )
        if arr.dtype.kind == "V":
            if arr.dtype.name not in _EXTENDED_DTYPES or arr.dtype.itemsize not in _VIEW:
                raise TypeError(f"array {name!r} has dtype {arr.dtype}, which cannot be saved.")
            extended[name] = arr.dtype.name
            arr = arr.view(_VIEW[arr.dtype.itemsize])
        stored[name] = arr
    header = dict(meta, format=kind, format_version=version)
    if extended:
        header["dtypes"] = extended
    header = json.loads(_canonical(header, "`meta`"))  # tuples -> lists, as it will load
    header["sha256"] = digest(stored, header)
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    if isinstance(path, (str, bytes, os.PathLike)):
        _write_atomically(path, lambda fh: np.savez(fh, **{METADATA: blob}, **stored))
    else:
        np.savez(path, **{METADATA: blob}, **stored)


def _write_atomically(path: str | bytes | os.PathLike, write: Any) -> None:
    """``write(fh)`` into a new file beside ``path``, which then replaces ``path`` in one
    step: a write that fails (a full disk, an interrupt) leaves the file that was there as it
    was, where opening ``path`` for writing first emptied it. (np.savez, given a name, would
    also append ".npz" to it; a file object keeps the name as given.)

    A link is followed (its target is replaced); an existing file keeps its permissions, and
    a new one gets those ``open()`` would give it (the umask applies).
    """
    target = os.path.realpath(os.fsdecode(os.fspath(path)))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    folder, name = os.path.split(target)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name beside {target}")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def resolve(path: Any) -> Any:
    """The file :func:`load_arrays` reads for ``path``: ``path`` itself, or ``path + ".npz"``.

    :func:`save_arrays` writes exactly ``path``; fairjax before 0.1.0 let NumPy append ``.npz``
    to a name without it. A name without the suffix that does not exist while its ``.npz``
    sibling does is such an older file, and reads from the sibling. File objects pass through.

    Example:
      >>> import os, tempfile, numpy as np
      >>> from fairjax._persistence import resolve, save_arrays
      >>> path = os.path.join(tempfile.mkdtemp(), "state")
      >>> resolve(path) == path
      True
      >>> np.savez(path, x=np.zeros(1))  # an older file: NumPy wrote "state.npz"
      >>> resolve(path) == path + ".npz"
      True
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        return path
    name = os.fspath(path)
    suffix = _SUFFIX.encode() if isinstance(name, bytes) else _SUFFIX
    if not os.path.exists(name) and not name.endswith(suffix) and os.path.exists(name + suffix):
        return name + suffix
    return path


def load_arrays(
    path: str | os.PathLike, *, kind: str, version: int = 1
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reads a file written by :func:`save_arrays` (``allow_pickle=False``) and checks it.

    Args:
      path: the file :func:`save_arrays` wrote (a file an older fairjax saved as ``path.npz``
        from a name without the suffix is found there: :func:`resolve`), or a file object.
      kind: the kind the caller expects; a file of another kind is refused.
      version: the newest layout version the caller reads; a newer file is refused (versions
        ``1..version`` load, so a reader can migrate older layouts using
        ``meta["format_version"]``).

    Returns:
      ``(arrays, meta)``: the arrays as NumPy arrays (extended dtypes such as bfloat16
      restored), and the caller's metadata plus ``format_version``.

    Raises:
      FileNotFoundError: there is no file at ``path``.
      ValueError: the file is not a readable ``.npz`` archive (truncated, corrupt, not a zip,
        holding an object array, a member declaring more data than it holds, a deflated member
        that would inflate more than :data:`MAX_INFLATION` times), has no or
        garbled metadata, is of another kind, has a newer or invalid version, or its arrays or
        metadata do not match the recorded digest.
    """
    path = resolve(path)
    where = repr(os.fspath(path)) if isinstance(path, (str, bytes, os.PathLike)) else repr(path)
    data = None
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a .npy: one array, not an archive
            raise ValueError("it holds a single .npy array")
        with data:
            _check_members(path)
            files = {name: np.asarray(data[name]) for name in data.files}
    except FileNotFoundError:
        raise
    except (
        OSError,
        ValueError,
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        NotImplementedError,  # an unknown zip compression method
        ArithmeticError,
        MemoryError,
    ) as err:
        # NumPy reads any file that is not an array as a pickle, and suggests loading it
        # "unsafely": fairjax never does, so it says what the file is not instead.
        opened = data is not None
        why = str(err) if opened or "pickle" not in str(err) else "it is not a NumPy .npz archive"
        raise FormatError(f"{where} is not a readable .npz file: {why}") from err
    if METADATA not in files:
        raise FormatError(f"{where} has no fairjax metadata entry; it is not a fairjax file.")
    try:
        meta = json.loads(files.pop(METADATA).astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError, RecursionError) as err:
        raise FormatError(f"{where}: its metadata is not valid JSON.") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), str):
        raise FormatError(f"{where}: its metadata names no format; it is not a fairjax file.")
    if meta["format"] != kind:
        raise FormatError(
            f"{where} holds a {meta['format']!r} file, not a {kind!r} file; load it with the "
            "function that reads that kind."
        )
    found = meta.get("format_version")
    if isinstance(found, bool) or not isinstance(found, int) or not 1 <= found <= version:
        newer = isinstance(found, int) and not isinstance(found, bool) and found > version
        raise FormatError(
            f"{where} has format version {found!r}; this fairjax reads version"
            f"{f's 1 to {version}' if version > 1 else ' 1'}"
            + ("; it was written by a newer fairjax, upgrade to read it." if newer else ".")
        )
    if digest(files, meta) != meta.get("sha256"):
        raise FormatError(
            f"{where} is corrupt or was modified: its arrays and metadata do not match the "
            "recorded SHA-256 digest."
        )
    extended = meta.pop("dtypes", {})
    if not isinstance(extended, dict):
        raise FormatError(f"{where}: malformed `dtypes` metadata.")
    for name, dtype in extended.items():
        if dtype not in _EXTENDED_DTYPES or name not in files:
            raise FormatError(f"{where}: unsupported stored dtype {dtype!r} for {name!r}.")
        files[name] = files[name].view(jnp.dtype(dtype))
    for key in ("format", "sha256"):
        meta.pop(key)
    return files, meta


def _check_members(path: Any) -> None:
    """Refuses archive members that would make reading them allocate more than the file holds.

    ``np.load`` allocates the array a member's ``.npy`` header declares, and inflates a
    deflated member in full, before the digest can be checked. So, before any member is read,
    each must lie within the file, a stored member must hold as many bytes as it declares, a
    deflated one may inflate at most :data:`MAX_INFLATION` times (plus :data:`INFLATION_SLACK`)
    and its ``.npy`` header may declare at most the bytes its zip entry declares. Reading an
    accepted file thus allocates at most about :data:`MAX_INFLATION` times its size. Raises
    ``ValueError`` (or ``BadZipFile``).
    """
    with zipfile.ZipFile(path) as archive:
        archive.fp.seek(0, os.SEEK_END)
        total = archive.fp.tell()
        for info in archive.infolist():
            name = repr(info.filename)
            if info.header_offset + info.compress_size > total:
                raise ValueError(f"member {name} lies past the end of the file.")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.file_size != info.compress_size:
                    raise ValueError(f"stored member {name} declares two different sizes.")
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                bound = MAX_INFLATION * info.compress_size + INFLATION_SLACK
                if info.file_size > bound:
                    raise ValueError(
                        f"member {name} would inflate {info.compress_size} compressed bytes to "
                        f"{info.file_size}, more than {MAX_INFLATION} times (a decompression "
                        "bomb, or a recompressed file: save it again, uncompressed)."
                    )
            else:
                raise ValueError(f"member {name} uses an unsupported compression.")
            with archive.open(info) as fh:
                major, minor = np.lib.format.read_magic(fh)
                if (major, minor) == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif (major, minor) == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"member {name}: .npy version {major}.{minor}.")
            count = 1
            for n in shape:
                count *= int(n)
            if count * dtype.itemsize > info.file_size:
                raise ValueError(
                    f"member {name} declares {count * dtype.itemsize} bytes of data "
                    f"but holds {info.file_size}."
                )


def malformed(path: str | os.PathLike, err: BaseException) -> ValueError:
    """The error for a file whose digest holds but whose content does not decode."""
    return FormatError(f"{os.fspath(path)!r}: incomplete or malformed state file ({err!r}).")


# ----------------------------------------------------------------------------- leaves

_NUMBER_TYPES = {"float": float, "int": int}
#: The most ``None`` labels a file may ask to rebuild (an object array of that many entries).
_MAX_NONE_LABELS = 10**7


def put_value(arrays: dict[str, np.ndarray], name: str, value: Any) -> dict[str, Any]:
    """Stores one numeric leaf under ``arrays[name]``; returns the JSON spec to rebuild it.

    A Python ``float``/``int`` comes back as the same Python number, a NumPy array or scalar
    as a NumPy array or scalar, a JAX array as a JAX array (same dtype, shape and bits; a
    weakly typed JAX scalar stays weakly typed).

    Raises:
      TypeError: anything else (a bool, a string, an arbitrary object).
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name!r}: a bool is not a numeric leaf.")
    if isinstance(value, (float, int)) and not isinstance(value, np.generic):
        kind = "float" if isinstance(value, float) else "int"
        arrays[name] = np.asarray(value, np.float64 if kind == "float" else np.int64)
        return {"array": name, "type": kind}
    if isinstance(value, jax.Array):
        arrays[name] = np.asarray(value)
        weak = bool(getattr(value, "weak_type", False)) and value.ndim == 0
        return {"array": name, "type": "jax", "weak": weak}
    if isinstance(value, (np.ndarray, np.generic)) and np.asarray(value).dtype.kind in "biufcV":
        arrays[name] = np.asarray(value)
        return {"array": name, "type": "numpy_scalar" if np.isscalar(value) else "numpy"}
    raise TypeError(f"{name!r}: cannot save a value of type {type(value).__name__}.")


def device_array(arr: np.ndarray, name: str) -> jax.Array:
    """A saved array on the device, with a warning where JAX narrows it without a word: 64-bit
    floats read as float32 with ``jax_enable_x64`` off (the state is then not restored
    exactly), or 64-bit integers whose values int32 cannot hold (an error: they would wrap)."""
    out = jnp.asarray(arr)
    if out.dtype.itemsize < arr.dtype.itemsize and arr.size:
        if arr.dtype.kind in "iu" and not np.array_equal(np.asarray(out, arr.dtype), arr):
            raise ValueError(
                f"{name!r} holds 64-bit integers past int32's range: enable jax_enable_x64 "
                "before loading this file."
            )
        if arr.dtype.kind in "fc":
            warnings.warn(
                f"arrays saved as {arr.dtype} are read as {out.dtype} because jax_enable_x64 "
                "is off, so the saved state is not restored exactly: run "
                "jax.config.update('jax_enable_x64', True) before loading to keep them.",
                UserWarning,
                stacklevel=3,
            )
    return out


def get_value(arrays: dict[str, np.ndarray], spec: Any) -> Any:
    """Rebuilds a leaf stored by :func:`put_value` from its spec.

    Raises:
      KeyError, TypeError, ValueError: a malformed spec (callers turn these into
        :func:`malformed` errors).
    """
    if not isinstance(spec, dict):
        raise TypeError(f"a leaf spec must be a dict, got {type(spec).__name__}.")
    arr = arrays[spec["array"]]
    kind = spec["type"]
    if kind in _NUMBER_TYPES:
        if arr.ndim != 0:
            raise ValueError(f"{spec['array']!r} must be a scalar.")
        return _NUMBER_TYPES[kind](arr.item())
    if kind == "numpy":
        return arr
    if kind == "numpy_scalar":
        if arr.ndim != 0:
            raise ValueError(f"{spec['array']!r} must be a scalar.")
        return arr[()]
    if kind == "jax":
        if not isinstance(spec["weak"], bool):
            raise TypeError(f"`weak` of {spec['array']!r} must be a bool.")
        if spec["weak"] and arr.ndim == 0:
            # A weakly typed scalar (e.g. from a Python number) promotes like a Python number;
            # rebuilding it from the Python value keeps that, and its bits (checked).
            try:
                out = jnp.asarray(arr.item())
            except OverflowError:  # a value the default dtype cannot hold: not weak then
                out = None
            if (
                out is not None
                and out.dtype == arr.dtype
                and np.asarray(out).tobytes() == arr.tobytes()
            ):
                return out
        return device_array(arr, spec["array"])
    raise ValueError(f"unknown leaf type {kind!r}.")


def put_labels(arrays: dict[str, np.ndarray], name: str, labels: Any) -> dict[str, Any]:
    """Stores a label array (``classes_``, group values, feature names) without pickle.

    Numeric, bool and fixed-width string arrays are stored as they are; an object array is
    stored when all its elements are ``str`` (as a unicode array) or all ``None`` (as its shape).

    Raises:
      TypeError: an object array mixing types or holding other objects.
    """
    a = np.asarray(labels)
    if a.dtype.kind != "O":
        arrays[name] = a
        return {"array": name, "object": None}
    items = a.ravel().tolist()
    if all(x is None for x in items):
        arrays[name] = np.asarray(a.shape, np.int64)
        return {"array": name, "object": "none"}
    if all(type(x) is str for x in items):
        arrays[name] = a.astype(str)
        return {"array": name, "object": "str"}
    kinds = sorted({type(x).__name__ for x in items})
    raise TypeError(
        f"{name!r}: an object array of {kinds} cannot be saved without pickle; only numbers, "
        "bools, strings or None."
    )


def get_labels(arrays: dict[str, np.ndarray], spec: Any) -> np.ndarray:
    """Rebuilds a label array stored by :func:`put_labels`."""
    if not isinstance(spec, dict):
        raise TypeError(f"a label spec must be a dict, got {type(spec).__name__}.")
    arr = arrays[spec["array"]]
    kind = spec["object"]
    if kind is None:
        return arr
    if kind == "str":
        if arr.dtype.kind != "U":
            raise ValueError(f"{spec['array']!r} must hold strings.")
        return arr.astype(object)
    if kind == "none":
        shape = tuple(int(n) for n in arr.ravel()) if arr.dtype.kind in "iu" else None
        if shape is None or arr.ndim != 1 or any(n < 0 for n in shape):
            raise ValueError(f"{spec['array']!r} must hold a shape (non-negative ints).")
        if int(np.prod(shape, dtype=np.float64)) > _MAX_NONE_LABELS:
            raise ValueError(f"{spec['array']!r}: {shape} is too many labels.")
        return np.full(shape, None, dtype=object)
    raise ValueError(f"unknown label type {kind!r}.")


# ----------------------------------------------------------------------------- state codecs

# A fitted state stored inside another file (an estimator's fitted attribute): its class, the
# codec name written to the metadata, and its put/get functions. Each module that owns a state
# registers it here when imported, so the files of a higher layer (the estimators) store states
# of lower layers without reaching into their private helpers.
_CODECS: dict[str, tuple[type, Any, Any]] = {}


def register_codec(name: str, cls: type, put: Any, get: Any) -> None:
    """Registers how a state of type ``cls`` is stored inside a file.

    ``put(arrays, where, value) -> spec`` stores the value's arrays under ``where/...`` and
    returns its JSON spec; ``get(arrays, where, spec) -> value`` is the inverse. ``name`` is
    written to the file, so it must never change once files exist.
    """
    _CODECS[name] = (cls, put, get)


def put_object(arrays: dict[str, np.ndarray], where: str, value: Any) -> dict[str, Any] | None:
    """``{"codec": name, "spec": ...}`` of a value of a registered type, else None."""
    for name, (cls, put, _) in _CODECS.items():
        if isinstance(value, cls):
            return {"codec": name, "spec": put(arrays, where, value)}
    return None


def get_object(arrays: dict[str, np.ndarray], where: str, codec: str, spec: Any) -> Any:
    """The value stored by :func:`put_object` (``KeyError`` for an unknown codec)."""
    return _CODECS[codec][2](arrays, where, spec)
