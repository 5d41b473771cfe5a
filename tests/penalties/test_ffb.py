"""fairjax's terms equal the Fair Fairness Benchmark's losses (Han et al., ICLR 2024).

``data/ffb_losses.npz`` holds FFB's own ``DiffDP``, ``DiffEOpp``, ``DiffEOdd``, ``HSIC`` and
``PRLoss`` (their ``src/loss.py``, PyTorch) and their gradients on two batches of
probabilities (257 rows in unequal groups; 64 rows with ties), written by
``python benchmarks/ffb_tabular_peer.py --ffb-src FFB/src --losses-fixture FILE`` in FFB's
environment. The terms used by ``benchmarks/ffb_tabular.py`` must give the same values and
gradients.
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fairjax import penalties
from fairjax.penalties._prejudice import prejudice_remover

FIXTURE = np.load(pathlib.Path(__file__).parent / "data" / "ffb_losses.npz")
CRITERIA = {
    "diffdp": "demographic_parity",
    "diffeopp": "equal_opportunity",
    "diffeodd": "equalized_odds",
}


def _batch(tag):
    p = jnp.asarray(FIXTURE[f"{tag}_p"])
    s = jnp.asarray(FIXTURE[f"{tag}_s"]).astype(jnp.int32)
    y = jnp.asarray(FIXTURE[f"{tag}_y"])
    return p, s, y


def _ffb_hsic(p, s):
    """FFB's HSIC: kernels exp(-d^2) (bandwidth 1/sqrt 2), tr(L H K H) / (m - 1)^2."""
    m = p.shape[0]
    h = math.sqrt(0.5)
    return penalties.hsic(p, s.astype(p.dtype), bandwidth_x=h, bandwidth_s=h) * (m / (m - 1)) ** 2


def _diff(crit):
    return lambda p, s, y: penalties.mean_difference(p, s, num_groups=2, labels=y, criterion=crit)


TERMS = {
    **{name: _diff(crit) for name, crit in CRITERIA.items()},
    "hsic": lambda p, s, y: _ffb_hsic(p, s),
    "pr": lambda p, s, y: prejudice_remover(p, s, num_groups=2),
}


@pytest.mark.parametrize("tag", ["a", "b"])
@pytest.mark.parametrize("name", sorted(TERMS))
def test_value_and_gradient_equal_ffb(name, tag):
    p, s, y = _batch(tag)
    value, grad = jax.value_and_grad(TERMS[name])(p, s, y)
    # Both sides are float32; HSIC and the prejudice index are small sums of cancelling
    # terms, so they agree to ~1e-3 relative (a missing (m/(m-1))^2 would be 0.8 % / 3 %).
    np.testing.assert_allclose(float(value), FIXTURE[f"{tag}_{name}"], rtol=2e-3, atol=1e-8)
    scale = np.abs(FIXTURE[f"{tag}_{name}_grad"]).max()
    np.testing.assert_allclose(
        np.asarray(grad), FIXTURE[f"{tag}_{name}_grad"], rtol=2e-3, atol=2e-3 * scale
    )


def test_fixture_terms_are_not_trivial():
    # The comparison above would pass for terms that are all 0: they are not.
    for tag in ("a", "b"):
        for name in TERMS:
            assert abs(FIXTURE[f"{tag}_{name}"]) > 1e-6, (tag, name)
            assert np.abs(FIXTURE[f"{tag}_{name}_grad"]).max() > 1e-8, (tag, name)


def test_swapping_the_groups_changes_no_term():
    # FFB's losses treat s = 0 and s = 1 symmetrically (absolute gaps, symmetric kernels, MI).
    p, s, y = _batch("a")
    for _name, term in TERMS.items():
        np.testing.assert_allclose(float(term(p, 1 - s, y)), float(term(p, s, y)), rtol=1e-5)
