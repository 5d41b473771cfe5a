"""Data and reference computations shared by the tests of fairjax.ferm."""

from __future__ import annotations

import numpy as np

# One data shape (n, d) = (200, 4) for almost every test: each new shape or static option
# recompiles the jitted cores, and compilation, not computation, is what these tests pay for.
N, D = 200, 4
STEPS = 300  # the Adam steps of every fit_linear (and of test_sklearn_ferm): one compile


def data(n=N, d=D, G=2, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, G, n).astype(np.int32)
    X = rng.normal(size=(n, d)) + 0.7 * s[:, None] * np.linspace(1, -1, d)[None, :]
    y = (X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(np.int32)
    return X.astype(np.float32), y, s


def np_direction(X, y, s, G):
    means = np.stack([X[(s == g) & (y == 1)].mean(0) for g in range(G)])
    return means[1:] - means[0]


def hinge_objective(f, y, sqnorm, C=1.0, power=1):
    return C * np.sum(np.maximum(1 - (2 * y - 1) * f, 0) ** power) + 0.5 * sqnorm


def np_projected_kernel(K, y, s):
    """K' = K - tau tau^T / (c . tau), tau = K c: the kernel orthogonal to g = sum_j c_j k_j."""
    c = np.zeros(len(y))
    for g, sign in ((1, 1.0), (0, -1.0)):
        P = (s == g) & (y == 1)
        c[P] = sign / P.sum()
    tau = K @ c
    return K - np.outer(tau, tau) / (c @ tau), tau
