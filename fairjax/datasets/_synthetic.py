"""Synthetic data with a known, controllable dependence of the label on the group.

Both generators share one generative model for groups and features:

.. math::

    s_i \\sim \\mathrm{Categorical}(p), \\qquad
    a_s = \\frac{2s}{G - 1} - 1 \\in [-1, 1] \\ (a_s = 0 \\text{ when } G = 1), \\qquad
    z_i \\sim \\mathcal{N}(0, I_d), \\qquad
    x_i = z_i + \\mathrm{bias} \\cdot a_{s_i} e_1,

so the first feature is a proxy of the group whose group means differ by ``bias * (a_s - a_t)``,
and the score is :math:`\\eta_i = \\langle w, z_i \\rangle + \\mathrm{bias} \\cdot a_{s_i}` with
:math:`w = \\mathbf{1}_d / \\sqrt{d}`. With ``bias = 0`` neither the features nor the label
depend on the group.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax.datasets._base import Dataset, check_test_size


def _check_positive_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}.")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    return int(value)


def _check_real(value: object, name: str, *, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a float, got {type(value).__name__}.")
    if not np.isfinite(float(value)) or (nonnegative and float(value) < 0):
        kind = "a finite, non-negative" if nonnegative else "a finite"
        raise ValueError(f"`{name}` must be {kind} float, got {value}.")
    return float(value)


def _check_proportions(proportions: Sequence[float] | None, num_groups: int) -> np.ndarray:
    if proportions is None:
        return np.full(num_groups, 1.0 / num_groups)
    p = np.asarray(proportions, dtype=np.float64)
    if p.shape != (num_groups,):
        raise ValueError(
            f"`group_proportions` must have shape ({num_groups},) (one entry per group), "
            f"got {p.shape}."
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(
            f"`group_proportions` must be non-negative and sum to 1, got {p.tolist()}."
        )
    return p


def _groups_and_features(
    key: jax.Array, n_samples: int, n_features: int, num_groups: int, bias: float, p: np.ndarray
) -> tuple[jax.Array, jax.Array, jax.Array]:
    key_s, key_z = jax.random.split(key)
    s = jax.random.choice(key_s, num_groups, shape=(n_samples,), p=jnp.asarray(p))
    a = (2.0 * s / (num_groups - 1) - 1.0) if num_groups > 1 else jnp.zeros(n_samples)
    z = jax.random.normal(key_z, (n_samples, n_features), dtype=jnp.float32)
    x = z.at[:, 0].add(bias * a)
    eta = z @ jnp.full((n_features,), 1.0 / np.sqrt(n_features), jnp.float32) + bias * a
    return s.astype(jnp.int32), x, eta.astype(jnp.float32)


def _generate(
    key: object,
    task: str,
    n_samples: object,
    n_features: object,
    num_groups: object,
    bias: object,
    noise: object,
    group_proportions: Sequence[float] | None,
    test_size: object,
) -> Dataset:
    """Checks the arguments, draws the data of :func:`make_classification` or
    :func:`make_regression` (``task``; ``noise`` is used by regression only) and splits it."""
    key = v.check_key(key)
    n = _check_positive_int(n_samples, "n_samples", 2)
    n_features = _check_positive_int(n_features, "n_features", 1)
    num_groups = _check_positive_int(num_groups, "num_groups", 1)
    bias = _check_real(bias, "bias")
    if task == "regression":
        noise = _check_real(noise, "noise", nonnegative=True)
    p = _check_proportions(group_proportions, num_groups)
    test_size = check_test_size(test_size)
    key_xs, key_y = jax.random.split(key)
    s, x, eta = _groups_and_features(key_xs, n, n_features, num_groups, bias, p)
    if task == "classification":
        y = np.asarray(jax.random.bernoulli(key_y, jax.nn.sigmoid(2.0 * eta)), np.int32)
        description = f"synthetic classification, bias={bias:g} (see make_classification)."
    else:
        y = np.asarray(eta + noise * jax.random.normal(key_y, (n,), dtype=jnp.float32), np.float32)
        description = f"synthetic regression, bias={bias:g}, noise={noise:g} (see make_regression)."
    n_test = round(test_size * n)
    if n_test == 0 or n_test == n:
        raise ValueError(
            f"`test_size`={test_size} with `n_samples`={n} leaves an empty train or test part."
        )
    n_train = n - n_test
    x, s = np.asarray(x, np.float32), np.asarray(s, np.int32)
    # Rows are i.i.d., so the first n_train rows are a uniformly random train part.
    return Dataset(
        X_train=x[:n_train],
        y_train=y[:n_train],
        groups_train=s[:n_train],
        X_test=x[n_train:],
        y_test=y[n_train:],
        groups_test=s[n_train:],
        feature_names=tuple(f"x{j}" for j in range(x.shape[1])),
        group_names=tuple(f"group {g}" for g in range(num_groups)),
        target_name="y",
        sensitive_name="group",
        task=task,
        description=description,
    )


def make_classification(
    key: jax.Array,
    *,
    n_samples: int = 1000,
    n_features: int = 5,
    num_groups: int = 2,
    bias: float = 1.0,
    group_proportions: Sequence[float] | None = None,
    test_size: float = 0.3,
) -> Dataset:
    """Binary classification data whose base rate depends on the group through ``bias``.

    Generative model (``G = num_groups``, ``d = n_features``, :math:`e_1` the first unit vector):

    .. math::

        s_i \\sim \\mathrm{Categorical}(p), \\quad a_s = \\tfrac{2s}{G-1} - 1, \\quad
        z_i \\sim \\mathcal{N}(0, I_d), \\quad x_i = z_i + \\mathrm{bias}\\, a_{s_i} e_1,

    .. math::

        y_i \\sim \\mathrm{Bernoulli}\\big(\\sigma(2\\,\\eta_i)\\big), \\quad
        \\eta_i = \\langle w, z_i \\rangle + \\mathrm{bias}\\, a_{s_i}, \\quad
        w = \\mathbf{1}_d / \\sqrt{d}.

    ``bias = 0``: ``x`` and ``y`` are independent of ``s`` (equal base rates). As ``bias``
    grows, the log-odds of group ``G-1`` exceed those of group 0 by ``4 * bias`` at equal ``z``,
    so the gap in base rates grows monotonically, and the first feature becomes a proxy of the
    group (its group means are ``bias * a_s``), so a model that never sees ``s`` still learns it.
    A negative ``bias`` reverses the direction. With ``G = 1``, ``a = 0``.

    Args:
        key: a ``jax.random`` key; the same key gives the same data.
        n_samples: total number of rows (train + test), at least 2.
        n_features: ``d``, at least 1.
        num_groups: ``G``, at least 1.
        bias: strength of the group dependence (finite).
        group_proportions: ``p``, one non-negative entry per group summing to 1; default
            uniform.
        test_size: fraction of rows in the test part, in ``(0, 1)``; the test part is the last
            ``round(test_size * n_samples)`` rows (rows are i.i.d.).

    Returns:
        A :class:`Dataset` with ``task="classification"``, ``y`` ``int32`` in ``{0, 1}``.

    Example:
        >>> import jax
        >>> from fairjax.datasets import make_classification
        >>> data = make_classification(jax.random.key(0), n_samples=100, bias=2.0)
        >>> data.X_train.shape, data.X_test.shape
        ((70, 5), (30, 5))
    """
    options = (n_samples, n_features, num_groups, bias, None, group_proportions, test_size)
    return _generate(key, "classification", *options)


def make_regression(
    key: jax.Array,
    *,
    n_samples: int = 1000,
    n_features: int = 5,
    num_groups: int = 2,
    bias: float = 1.0,
    noise: float = 0.5,
    group_proportions: Sequence[float] | None = None,
    test_size: float = 0.3,
) -> Dataset:
    """Regression data whose mean target depends on the group through ``bias``.

    Generative model (as :func:`make_classification` for ``s``, ``a``, ``z`` and ``x``):

    .. math::

        y_i = \\langle w, z_i \\rangle + \\mathrm{bias}\\, a_{s_i} + \\mathrm{noise}\\,
        \\varepsilon_i, \\quad \\varepsilon_i \\sim \\mathcal{N}(0, 1), \\quad
        w = \\mathbf{1}_d / \\sqrt{d},

    so :math:`\\mathbb{E}[y \\mid s] = \\mathrm{bias} \\cdot a_s`: the mean target of group
    ``G-1`` exceeds that of group 0 by exactly ``2 * bias`` (in expectation), and ``bias = 0``
    makes ``x`` and ``y`` independent of ``s``. The conditional distributions of ``y`` given
    ``s`` are normal with the same variance ``1 + noise**2``; they differ only by a shift.

    Args:
        key, n_samples, n_features, num_groups, bias, group_proportions, test_size: as in
            :func:`make_classification`.
        noise: standard deviation of the additive noise, non-negative.

    Returns:
        A :class:`Dataset` with ``task="regression"``, ``y`` ``float32``.

    Example:
        >>> import jax
        >>> from fairjax.datasets import make_regression
        >>> data = make_regression(jax.random.key(0), n_samples=100, num_groups=3)
        >>> data.y_train.dtype, data.num_groups
        (dtype('float32'), 3)
    """
    options = (n_samples, n_features, num_groups, bias, noise, group_proportions, test_size)
    return _generate(key, "regression", *options)
