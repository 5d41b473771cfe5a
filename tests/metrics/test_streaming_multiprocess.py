"""Streamed KS and W1 over 2 real processes (``jax.distributed``, loopback, gloo).

Each process reads its own chunks (unequal shares, one holding no row of one group) and calls
:func:`fairjax.metrics.ks_unfairness_streaming` and
:func:`fairjax.metrics.wasserstein_unfairness_streaming` with
``allgather=functools.partial(multihost_utils.process_allgather, tiled=False)``; both must
return the in-memory metric of all rows. The control runs the same workers without
``allgather``: then each returns its own share's value, which must differ.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fairjax import metrics

pytestmark = pytest.mark.slow  # two fresh JAX processes: ~20 s on 2 loaded cores
ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 180

WORKER = r"""
import functools, json, sys
import numpy as np
import jax
from jax.experimental import multihost_utils

pid, port, out, gather = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
try:  # jax 0.10 needs CPU collectives named (gloo)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
except (AttributeError, KeyError, ValueError):
    pass
address = f"127.0.0.1:{port}"
jax.distributed.initialize(coordinator_address=address, coordinator_bind_address=address,
                           num_processes=2, process_id=pid, initialization_timeout=60)
from fairjax import metrics
sys.path.insert(0, sys.argv[5])
from test_streaming_multiprocess import data, share

x, s, w = data()
chunks = share(x, s, w, pid)
allgather = functools.partial(multihost_utils.process_allgather, tiled=False) if gather else None
res = {
    "ks": float(metrics.ks_unfairness_streaming(chunks, num_groups=3, allgather=allgather)),
    "w1": float(metrics.wasserstein_unfairness_streaming(
        chunks, num_groups=3, max_rows_in_memory=500, allgather=allgather)),
    "w1_pairwise": float(metrics.wasserstein_unfairness_streaming(
        chunks, num_groups=3, reference="pairwise", max_rows_in_memory=500,
        allgather=allgather)),
}
with open(f"{out}/process_{pid}.json", "w") as fh:
    json.dump(res, fh)
jax.distributed.shutdown()
"""


def data():
    """3 unequal groups, tied scores, weights (some 0)."""
    rng = np.random.default_rng(11)
    s = rng.choice(3, 6000, p=[0.6, 0.3, 0.1])
    x = np.round(rng.normal(size=6000) + 0.4 * s, 2).astype(np.float32)
    w = rng.exponential(size=6000)
    w[rng.random(6000) < 0.05] = 0
    return x, s, w


def share(x, s, w, pid):
    """Process 0: the first 4000 rows without group 2, in 3 chunks; process 1: the rest."""
    idx = (
        np.arange(4000)[s[:4000] != 2]
        if pid == 0
        else np.r_[4000:6000, np.flatnonzero(s[:4000] == 2)]
    )

    def chunks():
        for part in np.array_split(idx, 3):
            yield {"scores": x[part], "groups": s[part], "weights": w[part]}

    return chunks


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(tmp_path: pathlib.Path, gather: bool) -> list[dict]:
    """Both workers, each killed by ``subprocess.run`` if it outlives ``TIMEOUT``."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    port, here = str(_free_port()), str(pathlib.Path(__file__).parent)

    def worker(i: int) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-c", WORKER, str(i), port, str(tmp_path), str(int(gather)), here]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)

    try:
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(worker, range(2)))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the workers did not finish within {TIMEOUT} s")
    for i, p in enumerate(done):
        assert p.returncode == 0, f"worker {i} failed:\n{(p.stdout + p.stderr)[-4000:]}"
    return [json.loads((tmp_path / f"process_{i}.json").read_text()) for i in range(2)]


def _in_memory() -> dict[str, float]:
    x, s, w = data()
    return {
        "ks": float(metrics.ks_unfairness(x, s, num_groups=3, weights=w)),
        "w1": float(metrics.wasserstein_unfairness(x, s, num_groups=3, weights=w)),
        "w1_pairwise": float(
            metrics.wasserstein_unfairness(x, s, num_groups=3, weights=w, reference="pairwise")
        ),
    }


def test_two_processes_equal_the_in_memory_metrics(tmp_path):
    want = _in_memory()
    for got in _run(tmp_path, gather=True):
        for k, v in want.items():
            np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_without_allgather_each_process_has_its_own_value(tmp_path):
    want = _in_memory()
    for got in _run(tmp_path, gather=False):
        for k, v in want.items():
            assert abs(got[k] - v) > 1e-3, k
