"""Test configuration: 8 host CPU devices for the sharding tests, and the shared data home."""

import os

# Must happen before jax is imported anywhere: the multi-device tests need several devices,
# and on CPU XLA only makes them when asked.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# The test workers (pytest-xdist) share an accelerator if there is one: none preallocates it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import pathlib

import pytest


def data_home() -> pathlib.Path | None:
    """The folder named by FAIRJAX_DATA_HOME, if it is set and exists."""
    value = os.environ.get("FAIRJAX_DATA_HOME")
    if value and pathlib.Path(value).is_dir():
        return pathlib.Path(value)
    return None


@pytest.fixture
def shared_data_home() -> pathlib.Path:
    """The benchmark data home; skips the test when it is not available."""
    home = data_home()
    if home is None:
        pytest.skip("FAIRJAX_DATA_HOME is not set to an existing folder with the raw data sets")
    return home
