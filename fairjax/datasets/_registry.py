"""Where each raw benchmark file lives, what it must hash to, and how it is obtained.

Every raw file is identified by its path relative to the data home (the same layout as the
project's ``shared/data`` folder) and the sha256 of its exact bytes. A file is read from the data
home when present, else (Adult and German only) from the gzip-compressed copy embedded in the
package, else fetched from its canonical URL when the caller passed ``download=True``. The bytes
are verified against the hard-coded sha256 on every read, whatever their origin.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

ENV_VAR = "FAIRJAX_DATA_HOME"
_UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases"
_COMPAS_COMMIT = "bafff5da3f2e45eca6c2d5055faad269defd135a"
_LAW_COMMIT = "8d9a9e501a1774d01144d9943de9e6b1ff84361c"
_DOWNLOAD_TIMEOUT_S = 60.0


class DatasetNotFoundError(FileNotFoundError):
    """A raw data file is neither in the data home nor embedded in the package."""


class DatasetChecksumError(ValueError):
    """A raw data file's sha256 differs from the one fairjax expects."""


class RawFile(NamedTuple):
    """One raw file of a benchmark data set.

    Attributes:
        path: path relative to the data home, e.g. ``"adult/adult.data"``.
        sha256: hex digest of the exact, uncompressed bytes.
        url: canonical source URL used by ``download=True``.
        embedded: name of the gzip copy under ``fairjax/datasets/_data``, or ``None``.
    """

    path: str
    sha256: str
    url: str
    embedded: str | None = None


REGISTRY: MappingProxyType[str, RawFile] = MappingProxyType(
    {
        "adult/adult.data": RawFile(
            "adult/adult.data",
            "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
            f"{_UCI}/adult/adult.data",
            "adult.data.gz",
        ),
        "adult/adult.test": RawFile(
            "adult/adult.test",
            "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
            f"{_UCI}/adult/adult.test",
            "adult.test.gz",
        ),
        "compas/compas-scores-two-years.csv": RawFile(
            "compas/compas-scores-two-years.csv",
            "c451db85908b2f7fef1d83203bedf6b71ecda0d5af468d82ae62178f91d0cc7d",
            "https://raw.githubusercontent.com/propublica/compas-analysis/"
            f"{_COMPAS_COMMIT}/compas-scores-two-years.csv",
        ),
        "german/german.data": RawFile(
            "german/german.data",
            "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871",
            f"{_UCI}/statlog/german/german.data",
            "german.data.gz",
        ),
        "communities_crime/communities.data": RawFile(
            "communities_crime/communities.data",
            "09e0b5c07eae24c1efab19b2edee05e160e7f5743b6f31e31eec3d73624da2ea",
            f"{_UCI}/communities/communities.data",
        ),
        "drug_consumption/drug_consumption.data": RawFile(
            "drug_consumption/drug_consumption.data",
            "37333e8db8a5529906b3729e5131d41313b5fa3f50dc3afeb4add892108be213",
            f"{_UCI}/00373/drug_consumption.data",
        ),
        "law_school/law_data.csv": RawFile(
            "law_school/law_data.csv",
            "cbf494af5e0ac317015cf64945a20587c08ec77118e183d3ddb0026719956d88",
            "https://raw.githubusercontent.com/osu-srml/CF_Representation_Learning/"
            f"{_LAW_COMMIT}/data/law_data.csv",
        ),
    }
)


def _resolve_data_home(data_home: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The data home and a few words on where it came from (for error messages)."""
    if data_home is not None:
        return Path(data_home).expanduser(), "the `data_home` argument"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), f"the {ENV_VAR} environment variable"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "fairjax", "$XDG_CACHE_HOME/fairjax (the default)"
    return Path.home() / ".cache" / "fairjax", "~/.cache/fairjax (the default)"


def get_data_home(data_home: str | os.PathLike[str] | None = None) -> Path:
    """The folder fairjax reads raw benchmark files from.

    The first of these that is set wins: the ``data_home`` argument, the ``FAIRJAX_DATA_HOME``
    environment variable, ``$XDG_CACHE_HOME/fairjax``, ``~/.cache/fairjax``. The folder is not
    created here; ``download=True`` creates it when it fetches a file.

    Inside the data home the layout is ``adult/adult.data``, ``adult/adult.test``,
    ``compas/compas-scores-two-years.csv``, ``german/german.data``,
    ``communities_crime/communities.data``, ``law_school/law_data.csv`` and
    ``drug_consumption/drug_consumption.data``.

    Args:
        data_home: an explicit folder (``~`` is expanded), or ``None``.

    Returns:
        The resolved folder as a ``pathlib.Path`` (it may not exist).

    Example:
        >>> from fairjax.datasets import get_data_home
        >>> str(get_data_home("/tmp/fairjax-data"))
        '/tmp/fairjax-data'
    """
    return _resolve_data_home(data_home)[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _verify(data: bytes, raw: RawFile, origin: str) -> bytes:
    digest = _sha256(data)
    if digest != raw.sha256:
        raise DatasetChecksumError(
            f"sha256 mismatch for '{raw.path}' read from {origin}: expected {raw.sha256}, got "
            f"{digest}. The file is corrupted or a different version; delete it and obtain the "
            f"original from {raw.url}."
        )
    return data


def _read_embedded(raw: RawFile) -> bytes | None:
    if raw.embedded is None:
        return None
    resource = resources.files("fairjax.datasets").joinpath("_data", raw.embedded)
    if not resource.is_file():
        return None
    return _verify(gzip.decompress(resource.read_bytes()), raw, "the copy embedded in fairjax")


def _fetch(raw: RawFile, target: Path) -> bytes:
    """Downloads ``raw.url`` to ``target`` atomically, after checking its sha256."""
    with urllib.request.urlopen(raw.url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        data = response.read()
    # Verify before anything is written, so a bad download never lands in the data home.
    _verify(data, raw, raw.url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return data


def read_raw(
    path: str,
    *,
    data_home: str | os.PathLike[str] | None,
    download: bool,
    loader: str,
) -> bytes:
    """The verified bytes of one registered raw file.

    Order: the data home, then the embedded copy (Adult, German), then a download into the data
    home when ``download`` is true. Raises ``DatasetNotFoundError`` when all of these fail and
    ``DatasetChecksumError`` when bytes are found but do not hash to the registered sha256.
    """
    raw = REGISTRY[path]
    home, home_origin = _resolve_data_home(data_home)
    target = home / raw.path
    if target.is_file():
        return _verify(target.read_bytes(), raw, f"'{target}'")
    embedded = _read_embedded(raw)
    if embedded is not None:
        return embedded
    if download:
        return _fetch(raw, target)
    raise DatasetNotFoundError(
        f"'{raw.path}' was not found in the data home '{home}' (set by {home_origin}). "
        f"Download it from {raw.url} and save it as '{target}', or call {loader}(download=True). "
        f"The data home is the `data_home` argument, else ${ENV_VAR}, else the user cache folder."
    )
