"""Per-group tables and bootstrap confidence intervals of any metric."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Hashable
from typing import Any, Literal, NamedTuple

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax.metrics._common import check_inputs, check_regression_inputs

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


# ----------------------------------------------------------------------------- per-group table


@functools.partial(jax.jit, static_argnames=("num_groups", "task", "axis_name"))
def _by_group(y_true, y_pred, groups, weights, num_groups, task, axis_name):
    kw = dict(num_groups=num_groups, weights=weights, axis_name=axis_name)
    out = {"count": gs.group_counts(groups, **kw)}
    err = y_pred - y_true
    if task == "classification":
        out["accuracy"] = gs.group_means(1 - jnp.abs(err), groups, **kw)
        out["selection_rate"] = gs.group_means(y_pred, groups, **kw)
        # The rates of equalized odds, rows y = 1 then y = 0 (fairjax.criteria's conditions).
        (out["tpr"], out["fpr"]), _ = criteria.group_rates(
            y_pred, groups, y_true, criterion="equalized_odds", **kw
        )
        out["base_rate"] = gs.group_means(y_true, groups, **kw)
        # The mean squared error of probabilities is the Brier score (of decisions, the error
        # rate): an RMSE is a regression statistic.
        out["brier_score"] = gs.group_means(err**2, groups, **kw)
        return out
    out["mean_prediction"] = gs.group_means(y_pred, groups, **kw)
    out["mean_target"] = gs.group_means(y_true, groups, **kw)
    out["mae"] = gs.group_means(jnp.abs(err), groups, **kw)
    mse = gs.group_means(err**2, groups, **kw)
    # Double where: sqrt's gradient is infinite at 0 (a group predicted exactly); give it 0.
    positive = mse > 0
    out["rmse"] = jnp.where(positive, jnp.sqrt(jnp.where(positive, mse, 1)), 0)
    return out


class _Table(dict):
    """``by_group``'s dict; ``table["rmse"]`` of a classification call still answers (the root
    of ``brier_score``) with a :class:`DeprecationWarning`; ``names`` are the group labels."""

    names: list

    def __getitem__(self, key):
        if key == "rmse" and "brier_score" in self:
            warnings.warn(
                "by_group's 'rmse' of a classification call is deprecated: it is the root of "
                "'brier_score' (jnp.sqrt(table['brier_score'])); 'rmse' stays in "
                "task='regression'.",
                DeprecationWarning,
                stacklevel=2,
            )
            return jnp.sqrt(dict.__getitem__(self, "brier_score"))
        return dict.__getitem__(self, key)


jax.tree_util.register_pytree_node(
    _Table,
    lambda t: (tuple(t.values()), (tuple(t.keys()), tuple(getattr(t, "names", None) or ()))),
    lambda aux, values: _with_names(_Table(zip(aux[0], values, strict=True)), list(aux[1])),
)


def _with_names(table: _Table, names: list | None) -> _Table:
    table.names = names
    return table


def by_group(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    axis_name: Hashable | None = None,
    task: Literal["classification", "regression"] = "classification",
    as_frame: bool = False,
) -> Any:
    """Per-group table of performance and rates, like fairlearn's ``MetricFrame.by_group``.

    For ``task="classification"`` (``y_true`` binary, ``y_pred`` decisions or probabilities):
    ``count`` (total weight), ``accuracy``, ``selection_rate``, ``tpr``, ``fpr``,
    ``base_rate`` (share of positive labels) and ``brier_score`` (the mean squared error of
    the probabilities; of decisions, the error rate). ``"rmse"`` is no longer among them: it
    still answers, deprecated, as the root of ``brier_score``. For ``task="regression"``:
    ``count``, ``mean_prediction``, ``mean_target``,
    ``mae`` and ``rmse``. A statistic over an empty set (a group with no rows, or TPR in a group
    with no positives) is 0; check ``count`` (and :func:`fairjax.groups.group_counts` with
    ``labels=``) to tell it apart. With probabilities, accuracy is the expected accuracy of the
    randomised classifier. For the overall row pass ``groups=jnp.zeros(n, int), num_groups=1``.

    Args:
      y_true: labels (binary for classification) or targets, shape ``(n,)``.
      y_pred: decisions/probabilities or regression predictions, shape ``(n,)``.
      groups: integer ids ``(n,)``, labels of any kind (strings, a pandas categorical:
        factorised, names kept) or membership matrix ``(n, G)``.
      num_groups: static number of groups (inferred from concrete labels; required for
        traced ids under ``jit``).
      weights: optional non-negative sample weights ``(n,)``.
      axis_name: mapped axis name inside ``shard_map``/``pmap``: each device holds a shard of
        the rows and the result is the metric of the whole batch (see the module docstring).
      task: ``"classification"`` or ``"regression"``.
      as_frame: return a pandas ``DataFrame`` indexed by the group names (needs pandas).

    Returns:
      Dict from statistic name to an array of shape ``(G,)`` (its ``names`` attribute: the
      group labels), or with ``as_frame`` a ``DataFrame``. :func:`group_table` adds the
      overall row, differences and ratios.

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.metrics import by_group
      >>> table = by_group(jnp.array([1, 0, 1, 1]), jnp.array([1, 0, 0, 1]),
      ...                  jnp.array([0, 0, 1, 1]), num_groups=2)
      >>> table["accuracy"], table["tpr"]
      (Array([1. , 0.5], dtype=float32), Array([1. , 0.5], dtype=float32))
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"`task` must be 'classification' or 'regression', got {task!r}.")
    names = None
    if num_groups is not None:
        v.check_num_groups(num_groups)
    fact = v.factorize_groups(groups, num_groups, named=True)
    if fact is not None:
        groups, num_groups, names = fact
    elif num_groups is not None and jnp.ndim(groups) == 1:
        names = list(range(num_groups))
    if task == "classification":
        true, pred, grp, w = check_inputs(y_true, y_pred, groups, num_groups, weights)
    else:
        true, pred, grp, w = check_regression_inputs(y_true, y_pred, groups, num_groups, weights)
    dtype = v.float_dtype(true, pred)
    out = _by_group(true.astype(dtype), pred.astype(dtype), grp, w, num_groups, task, axis_name)
    table = _with_names(_Table(out), names if names is not None else list(range(grp.shape[1])))
    return _frame(table) if as_frame else table


def _frame(table: _Table) -> Any:
    """A per-group table as a pandas DataFrame indexed by the group names."""
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("`as_frame=True` needs pandas: pip install pandas") from err
    cols = {k: np.asarray(val) for k, val in table.items()}
    return pd.DataFrame(cols, index=pd.Index(table.names, name="group"))


class GroupTable(NamedTuple):
    """A named per-group table, like fairlearn's ``MetricFrame`` (see :func:`group_table`).

    Attributes:
      by_group: statistic name -> per-group values (a pandas ``DataFrame`` indexed by the
        group names with ``as_frame``).
      overall: statistic name -> the value on all rows (a ``Series`` with ``as_frame``).
      difference: largest minus smallest value over the non-empty groups (fairlearn's
        ``difference(method="between_groups")``).
      ratio: smallest over largest value over the non-empty groups (1 when the largest is 0
        or negative: a ratio of values that are not positive says nothing of parity).
      names: the group labels, in the order of the rows.
    """

    by_group: Any
    overall: Any
    difference: Any
    ratio: Any
    names: list


def group_table(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    weights: ArrayLike | None = None,
    task: Literal["classification", "regression"] = "classification",
    as_frame: bool | None = None,
) -> GroupTable:
    r"""Per-group statistics with the overall value, differences and ratios (a ``MetricFrame``).

    The statistics of :func:`by_group` for each group (any labels: strings and pandas
    categoricals keep their names), the same on all rows, and across the non-empty groups
    (``count > 0``) the difference :math:`\max_g r_g - \min_g r_g` and the ratio
    :math:`\min_g r_g / \max_g r_g` of each statistic (for ``selection_rate`` they are the
    demographic-parity difference and ratio). Concrete inputs only (it reads group names).

    Args:
      y_true, y_pred, groups, num_groups, weights, task: as in :func:`by_group`.
      as_frame: pandas objects (``None``: when pandas is installed), else NumPy dicts.

    Returns:
      A :class:`GroupTable`.

    Example:
      >>> import numpy as np
      >>> from fairjax.metrics import group_table
      >>> t = group_table(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]),
      ...                 np.array(["a", "a", "b", "b"]), as_frame=False)
      >>> t.names, t.by_group["accuracy"], float(t.difference["accuracy"])
      (['a', 'b'], array([1. , 0.5], dtype=float32), 0.5)
    """
    table = by_group(y_true, y_pred, groups, num_groups=num_groups, weights=weights, task=task)
    overall = by_group(
        y_true,
        y_pred,
        np.zeros(np.shape(y_pred)[0], np.int32),
        num_groups=1,
        weights=weights,
        task=task,
    )
    present = np.asarray(table["count"]) > 0
    per = {k: np.asarray(val) for k, val in table.items()}
    diff, ratio = {}, {}
    for k, val in per.items():
        hi, lo = np.max(val[present]), np.min(val[present])
        diff[k] = hi - lo
        ratio[k] = np.asarray(lo / hi if hi > 0 else 1, val.dtype)
    total = {k: np.asarray(val)[0] for k, val in overall.items()}
    if as_frame is None:
        try:
            import pandas  # noqa: F401
        except ImportError:
            as_frame = False
        else:
            as_frame = True
    if not as_frame:
        return GroupTable(per, total, diff, ratio, table.names)
    import pandas as pd

    return GroupTable(
        _frame(table), pd.Series(total), pd.Series(diff), pd.Series(ratio), table.names
    )


# ----------------------------------------------------------------------------- bootstrap


class BootstrapResult(NamedTuple):
    """Bootstrap estimate of a metric (see :func:`bootstrap`).

    Attributes:
      estimate: the metric on the full data (same PyTree structure as the metric's output).
      lower: lower end of the percentile confidence interval.
      upper: upper end of the percentile confidence interval.
      samples: the metric on every resample, with a leading axis of size ``num_resamples``.
    """

    estimate: Any
    lower: Any
    upper: Any
    samples: Any


def bootstrap(
    metric: Callable[..., Any],
    *arrays: ArrayLike,
    key: Array,
    weights: ArrayLike | None = None,
    num_resamples: int = 1000,
    confidence_level: float = 0.95,
    batch_size: int | None = None,
    memory_limit: int = 2**28,
) -> BootstrapResult:
    """Percentile bootstrap confidence interval of any metric, vmapped over resamples.

    A resample draws ``n`` rows with replacement. Instead of gathering rows, which would give
    each resample its own copy of the data, it is expressed as multinomial counts ``c`` used as
    weights, ``metric(*arrays, weights=w * c)``: shapes stay static, so one compiled program
    evaluates ``batch_size`` resamples at a time with :func:`jax.vmap`. Its memory is the
    batch times what one resample allocates, which depends on the metric: :math:`O(n)` for the
    rate gaps, :math:`O(nG)` for :func:`ks_unfairness` and :func:`wasserstein_unfairness`
    (per-group CDFs at the pooled points), :math:`O(nG^2)` for the pairwise Wasserstein
    distance. Works for any function that takes ``weights=`` and
    returns a PyTree of arrays: every fairjax metric does, including :func:`by_group`.

    Args:
      metric: ``metric(*arrays, weights=...)``, e.g.
        ``functools.partial(demographic_parity_difference, num_groups=2)``.
      *arrays: the metric's positional data, each with ``n`` rows, numeric (group labels as
        integer ids: the resampled program is compiled, so it cannot read strings).
      key: a :func:`jax.random.key` (or legacy ``PRNGKey``).
      weights: optional sample weights ``(n,)`` of the original data.
      num_resamples: number of bootstrap resamples.
      confidence_level: coverage of the interval, in (0, 1).
      batch_size: resamples evaluated together by ``vmap``; ``None`` picks it from
        ``memory_limit``.
      memory_limit: with ``batch_size=None``, the batch is the largest (at most
        ``num_resamples``, at least 1) for which the largest intermediate array of one
        resample, found by tracing the metric once (no run), times the batch stays
        within this many bytes (default 2**28, 256 MiB). The program's peak memory is a small
        multiple of it (the few intermediates alive together), plus the data.

    Returns:
      :class:`BootstrapResult` with the full-data estimate, the interval and the samples.

    Example:
      >>> import functools, jax, jax.numpy as jnp
      >>> from fairjax.metrics import bootstrap, demographic_parity_difference
      >>> y_pred = jax.random.bernoulli(jax.random.key(0), 0.5, (500,)).astype(int)
      >>> s = jnp.arange(500) % 2
      >>> metric = functools.partial(demographic_parity_difference, num_groups=2)
      >>> res = bootstrap(metric, y_pred, s, key=jax.random.key(1), num_resamples=200)
      >>> bool(res.lower <= res.estimate <= res.upper)
      True

    References:
      Efron, Tibshirani, *An Introduction to the Bootstrap*, 1993, Chapter 13.
    """
    if not arrays:
        raise ValueError("`bootstrap` needs at least one data array.")
    key = v.check_key(key)
    data = [v.as_array(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    n = data[0].shape[0]
    for i, a in enumerate(data[1:], start=1):
        v.check_length(a, n, f"arrays[{i}]", "arrays[0]")
    v.check_scalar(confidence_level, "confidence_level", low=0, high=1, inclusive=(False, False))
    num_resamples = v.check_scalar(num_resamples, "num_resamples", integer=True, low=2)
    batch_size = v.check_scalar(
        batch_size, "batch_size", integer=True, positive=True, optional=True
    )
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit < 1:
        raise ValueError(f"`memory_limit` must be a positive int of bytes, got {memory_limit!r}.")
    w = v.check_weights(weights, n)
    base = jnp.ones((n,), v.float_dtype(w)) if w is None else w.astype(v.float_dtype(w))
    if batch_size is None:
        per_resample = _resample_bytes(metric, *data, weights=base)
        batch_size = max(1, min(int(num_resamples), memory_limit // max(per_resample, 1)))
    options = dict(num_resamples=int(num_resamples), batch_size=int(batch_size))
    try:
        hash(metric)
    except TypeError:  # an unhashable metric cannot key the compile cache: compile per call
        samples = _resamples(metric, tuple(data), base, key, **options)
    else:  # one compiled program per (metric, shapes, options): repeated calls do not retrace
        samples = _resamples_jit(metric, tuple(data), base, key, **options)
    estimate = metric(*data, weights=w)
    alpha = (1 - confidence_level) / 2
    lower = jax.tree.map(lambda s: jnp.quantile(s, alpha, axis=0), samples)
    upper = jax.tree.map(lambda s: jnp.quantile(s, 1 - alpha, axis=0), samples)
    return BootstrapResult(estimate, lower, upper, samples)


def _resample_bytes(metric: Callable[..., Any], *arrays: ArrayLike, weights: ArrayLike) -> int:
    """Bytes of the largest intermediate array of one bootstrap resample of ``metric``.

    Traces (does not run) the resample that :func:`bootstrap` evaluates — the multinomial
    counts and ``metric(*arrays, weights=weights * counts)`` — and returns the size of its
    largest array, nested compiled functions and loop bodies included.
    """
    data = tuple(jnp.asarray(a) for a in arrays)
    base = jnp.asarray(weights)
    traced = jax.make_jaxpr(functools.partial(_one, metric, data, base))(jax.random.key(0))
    return _largest(traced.jaxpr)


def _largest(jaxpr: Any) -> int:
    """Bytes of the largest array a jaxpr (or one nested in it) defines."""
    best = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            shape, dtype = getattr(var.aval, "shape", None), getattr(var.aval, "dtype", None)
            if shape is not None and dtype is not None:
                best = max(best, math.prod(shape) * dtype.itemsize)
    for sub in jex.core.subjaxprs(jaxpr):
        best = max(best, _largest(sub))
    return best


def _one(metric: Callable[..., Any], data: tuple, base: Array, k: Array) -> Any:
    """The metric on one bootstrap resample drawn with key ``k``."""
    n = base.shape[0]
    # Multinomial resample of n rows as counts: static shape, no gather of the data.
    counts = jnp.bincount(jax.random.randint(k, (n,), 0, n), length=n)
    return metric(*data, weights=base * counts.astype(base.dtype))


def _resamples(
    metric: Callable[..., Any],
    data: tuple,
    base: Array,
    key: Array,
    *,
    num_resamples: int,
    batch_size: int,
) -> Any:
    """The metric on ``num_resamples`` bootstrap resamples, ``batch_size`` at a time."""
    keys = jax.random.split(key, num_resamples)
    return jax.lax.map(functools.partial(_one, metric, data, base), keys, batch_size=batch_size)


_resamples_jit = jax.jit(_resamples, static_argnames=("metric", "num_resamples", "batch_size"))
