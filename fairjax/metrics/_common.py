"""Edge validation and reductions shared by the metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fairjax import _validation as v

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# ----------------------------------------------------------------------------- validation


def labelled_groups(groups: ArrayLike, num_groups: int | None) -> ArrayLike:
    """Any group labels as the metrics take them: labels of any kind (strings, pandas
    categoricals, concrete integer ids without ``num_groups``) become a one-hot ``(n, G)``
    membership matrix (which every metric takes without ``num_groups``); others pass as they
    are. The one place the metrics factorise labels (:func:`fairjax._validation.factorize_groups`).
    """
    fact = v.factorize_groups(groups, num_groups)
    if fact is None:
        return groups
    codes, size, _ = fact
    return np.eye(size, dtype=np.float32)[codes]


def check_agg(agg: str) -> None:
    """Raises unless ``agg`` is ``"worst_case"`` or ``"mean"``, how a metric combines the gaps
    of its criterion's rates."""
    if agg not in ("worst_case", "mean"):
        raise ValueError(f"`agg` must be 'worst_case' or 'mean', got {agg!r}.")


def check_inputs(
    y_true: ArrayLike | None,
    y_pred: ArrayLike,
    groups: ArrayLike,
    num_groups: int | None,
    weights: ArrayLike | None,
    *,
    pred_name: str = "y_pred",
    unit_interval: bool = True,
) -> tuple[Array | None, Array, Array, Array | None]:
    """Edge validation shared by every metric: shapes always, values on concrete inputs."""
    pred = v.as_array(y_pred, pred_name, ndim=1)
    n = pred.shape[0]
    if n == 0:
        raise ValueError(f"`{pred_name}` is empty: a metric needs at least one sample.")
    v.check_finite(pred, pred_name)
    if unit_interval:
        v.check_unit_interval(pred, pred_name)
    true = None
    if y_true is not None:
        true = v.as_array(y_true, "y_true", ndim=1)
        v.check_length(true, n, "y_true", pred_name)
        v.check_binary(true, "y_true")
    grp = v.check_groups(labelled_groups(groups, num_groups), num_groups=num_groups, n=n)
    w = v.check_weights(weights, n)
    return true, pred, grp, w


def hard_decisions(y_pred: Array) -> Array:
    """Integer decisions as booleans (nonzero: positive), whose rates are exact counts
    (:func:`fairjax.criteria.group_rates`); probabilities unchanged. Eager calls have checked
    that integer decisions are 0 or 1, so the rates are theirs; under a caller's ``jit``,
    where nothing is checked, any nonzero integer counts as a positive decision."""
    if jnp.issubdtype(y_pred.dtype, jnp.integer):
        return y_pred != 0
    return y_pred


def check_regression_inputs(
    y_true: ArrayLike, y_pred: ArrayLike, groups: ArrayLike, num_groups: int | None, weights
) -> tuple[Array, Array, Array, Array | None]:
    """Edge validation of a regression metric: real targets and predictions of one length."""
    pred = v.as_array(y_pred, "y_pred", ndim=1)
    v.check_nonempty(pred, "y_pred")
    true = v.as_array(y_true, "y_true", ndim=1)
    v.check_length(true, pred.shape[0], "y_true", "y_pred")
    v.check_finite(pred, "y_pred")
    v.check_finite(true, "y_true")
    grp = v.check_groups(
        labelled_groups(groups, num_groups), num_groups=num_groups, n=pred.shape[0]
    )
    w = v.check_weights(weights, pred.shape[0])
    return true, pred, grp, w


def shifted_on_host(scores: object) -> object:
    """Concrete float64 or integer scores (NumPy, pandas, lists) less the midpoint of their
    finite range, on the host, for the metrics that no common shift changes (KS, W1).

    Without x64, JAX reads float64 as float32, whose spacing at 1e8 is 8: scores of 1e8 + k,
    or epoch timestamps seconds apart, became one tied value and the distances read 0. Shifted
    first, they keep float32's resolution of their spread. Anything else (JAX arrays, traced
    values under ``jit``, other dtypes, x64 on) is returned as it is: under ``jit`` the
    caller's float32 conversion comes first, so shift such scores before.
    """
    if isinstance(scores, jax.Array) or jax.dtypes.canonicalize_dtype(np.float64) == np.float64:
        return scores
    try:
        a = np.asarray(scores)
    except (TypeError, ValueError):
        return scores  # the checks that follow name the argument
    if a.ndim != 1 or not (a.dtype == np.float64 or a.dtype.kind in "iu"):
        return scores  # integers too: int64 epoch seconds are typical, float32 holds 2**24
    a = a.astype(np.float64)
    finite = a[np.isfinite(a)]
    if not finite.size:
        return scores
    return a - (float(finite.min()) + float(finite.max())) / 2
