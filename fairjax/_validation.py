"""Input validation shared by every public entry point (DESIGN.md, convention 5).

Shape and dtype checks are static and always run, also under ``jit``. Value checks (ranges, NaN,
binary labels, negative weights) need concrete arrays: they run when the function is called
eagerly and are skipped when an argument is a tracer, because a jitted program cannot raise on
array values. Every error names the argument, what was expected and what was received.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def is_concrete(*arrays: object) -> bool:
    """True when no argument is a JAX tracer, so its values can be inspected."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays if a is not None)


def on_cpu_host(*arrays: object) -> bool:
    """True on the CPU backend when no argument is a tracer: the condition of the NumPy host
    paths (sorts, hulls, small linear programs), which beat compiling and running an XLA
    program there; elsewhere (an accelerator, or under a trace) the jitted path runs."""
    return jax.default_backend() == "cpu" and is_concrete(*arrays)


def _on_host(arr: object) -> bool:
    """True for a concrete JAX array held in host memory (the CPU backend) or a NumPy array."""
    if isinstance(arr, np.ndarray):
        return True
    if not isinstance(arr, jax.Array) or isinstance(arr, jax.core.Tracer):
        return False
    try:
        # np.asarray needs every shard in this process (not so across hosts).
        return arr.is_fully_addressable and all(d.platform == "cpu" for d in arr.devices())
    except (AttributeError, RuntimeError):  # a deleted or otherwise unusual array
        return False


def holds(predicate: Callable[[Any, Any], Any], *arrays: Any) -> bool:
    """Evaluates a check ``predicate(xp, *arrays)`` on concrete arrays to a Python bool.

    ``xp`` is NumPy when every array is in host memory: on the CPU backend ``np.asarray`` of a
    JAX array is a view, and a NumPy reduction over 10^5 values takes about 10 us, against
    about 1.5 ms for dispatching the same JAX operations one by one (eager calls validate
    every input). Elsewhere (an accelerator) ``xp`` is ``jax.numpy``, run at once under
    ``ensure_compile_time_eval``, so a check on a constant closed over by a ``jit`` trace still
    works.
    """
    if all(_on_host(a) for a in arrays):
        return bool(predicate(np, *(np.asarray(a) for a in arrays)))
    with jax.ensure_compile_time_eval():
        return bool(predicate(jnp, *arrays))


def float_dtype(*arrays: object) -> jnp.dtype:
    """The floating dtype to compute in: the inputs' float dtype, at least float32.

    bfloat16 and float16 inputs are promoted so that sums accumulate in float32; float64 is kept
    when x64 is enabled; integer and boolean inputs give the default float dtype.
    """
    # The dtype JAX gives each array, read without converting it (``jnp.asarray`` of a NumPy
    # array copies it, and compiles a copy program per new shape on jax 0.10).
    every = [
        jax.dtypes.canonicalize_dtype(a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype)
        for a in arrays
        if a is not None
    ]
    dtypes = [d for d in every if jnp.issubdtype(d, jnp.floating)]
    dtype = jnp.result_type(*dtypes) if dtypes else jnp.result_type(float)
    return jnp.promote_types(dtype, jnp.float32)


def as_array(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    host: bool = False,
    range_checked: bool = False,
) -> Array:
    """Converts ``x`` to a JAX array and checks its rank.

    ``host=True`` (for the NumPy host paths) keeps an input that is not a JAX array as a NumPy
    array in the dtype JAX would give it (``float64`` becomes ``float32`` without x64): the same
    checks and dtype, without a copy to the device and back. Without x64, 64-bit integers
    become 32-bit ones, which would wrap a value beyond their range (``2**32`` to 0): such a
    value is refused, naming the argument (``range_checked``: the caller has already checked
    the values' range, e.g. group ids against ``num_groups``).
    """
    if x is None:
        raise TypeError(f"`{name}` is required, got None.")
    try:
        given = x if isinstance(x, jax.Array) else np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be array-like, got {type(x).__name__}.") from err
    # Objects, strings, bytes, raw void; not ml_dtypes' bfloat16 and kin (kind "V" too, but
    # numbers to JAX).
    if (
        isinstance(given, np.ndarray)
        and given.dtype.kind in "OUSV"
        and not jnp.issubdtype(given.dtype, jnp.number)
    ):
        raise TypeError(f"`{name}` must be numeric, got dtype {given.dtype}.")
    if given.dtype.kind == "c":  # a cast to real would drop the imaginary part silently
        raise TypeError(f"`{name}` must be real-valued, got complex dtype {given.dtype}.")
    if not range_checked and isinstance(given, np.ndarray):
        _check_integer_range(given, name)
    try:
        # device_put, not jnp.asarray: the latter compiles a small copy program for every new
        # shape on jax 0.10 (about 15 ms each on CPU); both give the same array and dtype.
        # Without x64 float64 becomes float32: a finite value past its range would become inf.
        with np.errstate(over="raise"):
            if isinstance(given, jax.Array):
                arr = given
            elif host:
                arr = given.astype(jax.dtypes.canonicalize_dtype(given.dtype), copy=False)
            else:
                arr = jax.device_put(given)
    except FloatingPointError:
        target = jax.dtypes.canonicalize_dtype(given.dtype)
        top = float(np.finfo(target).max)
        raise ValueError(
            f"`{name}` holds finite values beyond +-{top:.3g}, the range of {target} that JAX "
            f"converts {given.dtype} to without x64: rescale them, or enable jax_enable_x64."
        ) from None
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a numeric array, got dtype {given.dtype}.") from err
    if arr.dtype == jnp.dtype("O") or not (
        jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_
    ):
        raise TypeError(f"`{name}` must be numeric, got dtype {arr.dtype}.")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"`{name}` must have rank {want}, got shape {arr.shape}.")
    return arr


def _check_integer_range(given: np.ndarray, name: str) -> None:
    """Refuses 64-bit integers that JAX's 32-bit cast (x64 off) would wrap."""
    if given.dtype.kind not in "iu" or given.dtype.itemsize != 8 or not given.size:
        return
    target = np.dtype(jax.dtypes.canonicalize_dtype(given.dtype))
    if target.itemsize == 8:
        return  # x64 on: no cast
    info = np.iinfo(target)
    lo, hi = int(np.min(given)), int(np.max(given))
    if lo < info.min or hi > info.max:
        raise ValueError(
            f"`{name}` holds integers in [{lo}, {hi}], beyond the range of {target} that JAX "
            f"converts {given.dtype} to without x64 (values past it would wrap): enable "
            "jax_enable_x64, or pass values that are not ids as floats."
        )


def check_nonempty(arr: Array, name: str) -> None:
    """Raises if ``arr`` has no rows (a statistic of no samples is undefined, not 0)."""
    if arr.ndim and arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape}): at least one row is needed.")


def check_length(arr: Array, n: int, name: str, reference: str) -> None:
    """Checks that ``arr`` has ``n`` rows, like ``reference``."""
    if arr.shape[0] != n:
        # An argument name is quoted; a description ("the data") is not.
        ref = reference if reference.startswith("the ") else f"`{reference}`"
        raise ValueError(
            f"`{name}` must have one row per sample of {ref} ({n}), "
            f"got {arr.shape[0]} (shape {arr.shape})."
        )


def check_features(X: object, num_features: int, name: str = "X") -> Array:
    """Converts ``X`` to a rank-2 array and checks it has ``num_features`` columns."""
    X = as_array(X, name, ndim=2)
    if X.shape[1] != num_features:
        raise ValueError(f"`{name}` must have {num_features} features, got {X.shape[1]}.")
    return X


def check_same_features(X: Array, Y: Array) -> None:
    """Checks that the rank-2 arrays ``X`` and ``Y`` have the same number of columns."""
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"`X` and `Y` must have the same number of features, got {X.shape[1]} and {Y.shape[1]}."
        )


def check_finite(arr: Array, name: str) -> None:
    """Raises if a concrete floating array holds NaN or infinity."""
    if is_concrete(arr) and jnp.issubdtype(arr.dtype, jnp.inexact):
        if not holds(lambda xp, a: xp.all(xp.isfinite(a)), arr):
            bad = int(np.sum(~np.isfinite(np.asarray(arr))))
            raise ValueError(f"`{name}` must be finite, got {bad} NaN or infinite value(s).")


def _within_unit_interval(xp, a) -> bool:
    """``0 <= a <= 1`` everywhere (False with NaN): a minimum and a maximum, which read the
    array without writing the temporaries of elementwise comparisons."""
    return a.size == 0 or (bool(xp.min(a) >= 0) and bool(xp.max(a) <= 1))


def check_binary(arr: Array | None, name: str) -> None:
    """Raises if a concrete array holds values other than 0 and 1 (None passes)."""
    if arr is not None and is_concrete(arr) and arr.dtype != jnp.bool_:
        if jnp.issubdtype(arr.dtype, jnp.integer):
            binary = holds(_within_unit_interval, arr)
        else:
            binary = holds(lambda xp, a: xp.all((a == 0) | (a == 1)), arr)
        if not binary:
            values = np.unique(np.asarray(arr))[:6]
            raise ValueError(f"`{name}` must be binary (0 or 1), got values {values.tolist()}.")


def check_labels(arr: Array, name: str) -> None:
    """Raises if a concrete array holds labels other than {0, 1} or {-1, +1} (1 is positive):
    a 2 or a NaN would otherwise read as a negative label."""
    if is_concrete(arr) and arr.dtype != jnp.bool_:
        if not holds(lambda xp, a: xp.all((a == 0) | (a == 1) | (a == -1)), arr):
            values = np.unique(np.asarray(arr))[:6]
            raise ValueError(
                f"`{name}` must hold labels in {{0, 1}} or {{-1, +1}}, got values "
                f"{values.tolist()}."
            )


def check_unit_interval(arr: Array, name: str, *, nan_ok: bool = False) -> None:
    """Raises if a concrete array holds values outside [0, 1] (decisions or probabilities);
    with ``nan_ok`` a NaN passes (to give NaN out)."""
    if is_concrete(arr) and arr.dtype != jnp.bool_:
        if nan_ok and jnp.issubdtype(arr.dtype, jnp.inexact):
            arr = np.asarray(arr)
            arr = arr[~np.isnan(arr)]
        if not holds(_within_unit_interval, arr):
            lo, hi = float(np.min(np.asarray(arr))), float(np.max(np.asarray(arr)))
            raise ValueError(
                f"`{name}` must hold decisions or probabilities in [0, 1], "
                f"got values in [{lo:g}, {hi:g}]."
            )


def check_groups(
    groups: object, *, num_groups: int | None, n: int | None = None, host: bool = False
) -> Array:
    """Validates group ids or a membership matrix and returns it as an array.

    Args:
      groups: integer ids of shape ``(n,)`` in ``[0, num_groups)``, or a float membership matrix
        of shape ``(n, G)`` with non-negative entries.
      num_groups: the static number of groups; required for integer ids, optional (but must
        match) for a membership matrix.
      n: the expected number of rows, or None to skip the length check.
      host: keep NumPy input on the host (see :func:`as_array`).
    """
    checked = _check_host_ids(groups, num_groups)
    arr = as_array(groups, "groups", ndim=(1, 2), host=host, range_checked=checked)
    if arr.ndim == 1:
        if not (jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_):
            raise TypeError(
                "`groups` must be integer group ids (or a float (n, num_groups) membership "
                f"matrix), got a 1-D array of dtype {arr.dtype}."
            )
        if num_groups is None and not is_concrete(arr):
            raise ValueError(
                "`num_groups` is required (a static int) when `groups` holds traced ids (under "
                "jit); outside jit the metrics infer it from concrete labels."
            )
        if num_groups is None:  # concrete ids that the caller did not count
            raise ValueError("`num_groups` is required (a static int) with integer group ids.")
        check_num_groups(num_groups)
        if is_concrete(arr) and arr.size and not checked:
            # Compared as Python ints: a narrow dtype (uint8 ids, num_groups=300) would wrap
            # num_groups in jax.numpy, not in NumPy.
            if not holds(lambda xp, a: int(xp.min(a)) >= 0 and int(xp.max(a)) < num_groups, arr):
                _raise_id_range(np.asarray(arr), num_groups)
    else:
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            raise TypeError(
                f"a 2-D `groups` membership matrix must be floating, got dtype {arr.dtype}."
            )
        if num_groups is not None and arr.shape[1] != num_groups:
            raise ValueError(
                f"`groups` membership matrix has {arr.shape[1]} columns, "
                f"but num_groups={num_groups}."
            )
        check_finite(arr, "groups")
        if is_concrete(arr) and not holds(lambda xp, a: xp.all(a >= 0), arr):
            raise ValueError("`groups` membership matrix must be non-negative.")
    if n is not None:
        check_length(arr, n, "groups", "the data")
    return arr


def factorize_groups(
    groups: object, num_groups: int | None = None, *, named: bool = False
) -> tuple[np.ndarray, int, list] | None:
    """Group labels of any kind as integer codes, at the edge (concrete inputs only).

    Strings, objects and pandas categoricals become codes ``0..G-1`` with their names (sorted
    labels; a categorical keeps its category order: the observed categories, or all of them
    when ``num_groups`` is their number), and concrete
    integer ids without ``num_groups`` get ``num_groups = max + 1`` (names ``0..G-1``).

    With ``named`` (a table whose rows carry the names), fewer labels than ``num_groups`` is
    refused: the extra groups would have no name.

    Returns:
      ``(codes, num_groups, names)``, or ``None`` when ``groups`` need no factorising (integer
      ids with ``num_groups``, a membership matrix, traced values, float ids left to
      :func:`check_groups`).
    """
    if isinstance(groups, jax.core.Tracer) or groups is None:
        return None
    categorical = getattr(getattr(groups, "dtype", None), "name", None) == "category"
    if categorical:
        cat = getattr(groups, "cat", None) or groups  # a Series' accessor, or a Categorical
        codes = np.asarray(cat.codes)
        if np.any(codes < 0):
            raise ValueError("`groups` has missing labels (NaN in a categorical).")
        if num_groups is not None and int(num_groups) == len(cat.categories):
            names = list(cat.categories)  # every category a group: the codes are the ids
        else:
            used = np.unique(codes)
            names = [cat.categories[int(c)] for c in used]
            codes = np.searchsorted(used, codes)
    else:
        try:
            arr = np.asarray(groups)
        except (TypeError, ValueError):
            return None
        if arr.ndim != 1:
            return None
        if arr.dtype.kind in "iub":
            if num_groups is not None or not arr.size:
                return None
            top = int(arr.max()) + 1
            if int(arr.min()) < 0:
                return None  # check_groups reports the range
            return arr.astype(np.int32), top, list(range(top))
        if arr.dtype.kind not in "OUS":
            return None
        if any(x is None or (isinstance(x, float) and x != x) for x in arr.tolist()):
            raise ValueError("`groups` has missing labels (None or NaN).")
        try:
            names, codes = np.unique(arr, return_inverse=True)
        except TypeError as err:
            raise TypeError(f"`groups` labels must be sortable (one type), got {err}.") from None
        names = names.tolist()
    if num_groups is not None and len(names) > num_groups:
        raise ValueError(f"`groups` has {len(names)} labels, more than num_groups={num_groups}.")
    if named and num_groups is not None and len(names) < num_groups:
        # The extra groups would have no name: a table's rows would not match its names.
        raise ValueError(
            f"`groups` has {len(names)} labels {names[:5]}, fewer than num_groups={num_groups}: "
            "with labels, leave num_groups out (it is their number), or pass a pandas "
            "Categorical whose categories are all the groups."
        )
    size = len(names) if num_groups is None else int(num_groups)
    return np.asarray(codes, np.int32).reshape(-1), size, names


def _raise_id_range(ids: np.ndarray, num_groups: int) -> None:
    lo, hi = int(np.min(ids)), int(np.max(ids))
    raise ValueError(
        f"`groups` ids must lie in [0, num_groups={num_groups}), got values in [{lo}, {hi}]."
    )


def _check_host_ids(groups: object, num_groups: object) -> bool:
    """Range-checks integer ids in their own dtype, before JAX casts them: without x64, int64
    and uint64 ids become int32 and ``2**32`` would wrap to group 0 and pass the check.

    Returns whether it checked them: ids in ``[0, num_groups)`` keep their values in the cast
    (``num_groups`` is a valid int32 count), so no second check is needed."""
    if isinstance(groups, jax.Array) or groups is None:
        return False  # already a JAX dtype: no cast ahead (a tracer has no values to check)
    try:
        host = np.asarray(groups)
    except (TypeError, ValueError):
        return False  # as_array reports it
    if host.ndim != 1 or host.dtype.kind not in "iu" or not host.size:
        return False
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        return False  # check_num_groups reports it
    if num_groups < 1:
        return False  # so does it for 0 or a negative count
    if int(np.min(host)) < 0 or int(np.max(host)) >= int(num_groups):
        _raise_id_range(host, int(num_groups))
    return 0 < int(num_groups) < 2**31


def check_num_groups(num_groups: object) -> int:
    """Checks that ``num_groups`` is a static positive Python int."""
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)):
        raise TypeError(
            f"`num_groups` must be a static Python int, got {type(num_groups).__name__}."
        )
    if num_groups < 1:
        raise ValueError(f"`num_groups` must be >= 1, got {num_groups}.")
    return int(num_groups)


def check_weights(weights: object, n: int, *, host: bool = False) -> Array | None:
    """Validates sample weights: shape ``(n,)``, finite, non-negative, not all zero, and a sum
    within the range of the dtype they are summed in (else every weighted mean is NaN)."""
    if weights is None:
        return None
    arr = as_array(weights, "weights", ndim=1, host=host)
    check_length(arr, n, "weights", "the data")
    check_finite(arr, "weights")
    if is_concrete(arr):
        if not holds(lambda xp, a: xp.all(a >= 0), arr):
            raise ValueError(
                f"`weights` must be non-negative, got minimum {float(np.min(np.asarray(arr))):g}."
            )
        if n and not holds(lambda xp, a: xp.any(a > 0), arr):
            raise ValueError("`weights` must not be all zero.")
        dtype = float_dtype(arr)
        limit = float(jnp.finfo(dtype).max)
        # The sum in float64 on the host (no overflow warning); on a device in ``dtype``,
        # where an overflow gives inf.
        wide = np.float64 if _on_host(arr) else dtype
        if not holds(lambda xp, a: float(xp.sum(a.astype(wide))) <= limit, arr):
            total = float(np.sum(np.asarray(arr, np.float64)))
            raise ValueError(f"`weights` sum to {total:g}, beyond the range of {dtype}.")
    return arr


def check_scalar(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    finite: bool = True,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    inclusive: tuple[bool, bool] = (True, True),
    optional: bool = False,
) -> Any:
    """Checks a scalar option (a hyperparameter) and returns it.

    Python numbers, NumPy scalars and 0-d arrays are checked alike; a bool is refused where a
    number is meant, and so is a complex number. A JAX tracer (an option traced under ``jit``
    or differentiated) skips the value checks, as every value check does.

    Args:
      value: the option's value.
      name: the argument's name, quoted in the error.
      positive: require ``value > 0``.
      nonnegative: require ``value >= 0``.
      finite: require a finite value (no NaN or infinity).
      integer: require an integer (Python or NumPy; a float such as ``2.5`` or ``2.0`` is
        refused) and return it as a Python int.
      low, high: optional bounds, inclusive or not per ``inclusive``.
      inclusive: whether ``low`` and ``high`` themselves are allowed.
      optional: allow None (returned as is).

    Returns:
      ``value`` unchanged (a Python int when ``integer``).

    Raises:
      TypeError: not a real number (a string, a complex number, an object).
      ValueError: a bool, not a scalar, a float where an integer is meant, NaN, infinite,
        or out of range.
    """
    if value is None:
        if optional:
            return None
        raise TypeError(f"`{name}` is required, got None.")
    if isinstance(value, jax.core.Tracer):
        return value
    kind = "an integer" if integer else "a real number"
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be {kind}, got the bool {value!r}.")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be {kind}, got {type(value).__name__}.") from err
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar ({kind}), got shape {arr.shape}.")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be {kind}, got {value!r} ({arr.dtype}).")
    if integer and arr.dtype.kind == "f":  # 2.5, and 2.0 too: a count is not a float
        raise ValueError(f"`{name}` must be {kind}, got {value!r} ({arr.dtype}).")
    number: int | float = operator.index(arr.item()) if integer else float(arr)
    if finite and not math.isfinite(number):
        raise ValueError(f"`{name}` must be finite, got {number!r}.")
    bad = (
        (positive and not number > 0, "> 0"),
        (nonnegative and not number >= 0, ">= 0"),
        (
            low is not None and not (number >= low if inclusive[0] else number > low),
            f"{'>=' if inclusive[0] else '>'} {low}",
        ),
        (
            high is not None and not (number <= high if inclusive[1] else number < high),
            f"{'<=' if inclusive[1] else '<'} {high}",
        ),
    )
    for failed, rule in bad:
        if failed:
            raise ValueError(f"`{name}` must be {rule}, got {value!r}.")
    return number if integer else value


def check_scalars(values: Any, name: str, **rules: Any) -> Any:
    """:func:`check_scalar` for each entry of a 1-D sequence or array of options (for example
    the penalty weights of a sweep); returns ``values`` unchanged."""
    if isinstance(values, jax.core.Tracer):
        return values
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`{name}` must be an array of numbers, got {type(values).__name__}."
        ) from err
    for i, x in enumerate(arr.reshape(-1)):
        label = name if arr.ndim == 0 else f"{name}[{i}]"
        check_scalar(x.item() if arr.dtype.kind != "O" else x, label, **rules)
    return values


def check_key(key: Any, name: str = "key") -> jax.Array:
    """One ``jax.random`` key, typed or raw ``uint32`` key data, as a typed key (no program:
    ``wrap_key_data`` only checks and wraps; a raw key is read with the default implementation,
    as ``jax.random`` reads it). ``None``, a seed, keys of another shape or data that is not a
    key raise an error naming ``name``."""
    if key is None:
        raise TypeError(f"`{name}` is required: a jax.random key (e.g. jax.random.key(0)).")
    if not (isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)):
        try:
            key = jax.random.wrap_key_data(key if isinstance(key, jax.Array) else np.asarray(key))
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"`{name}` must be a jax.random key (jax.random.key(seed), or the uint32 key "
                f"data of jax.random.PRNGKey(seed)), got {type(key).__name__}: {err}"
            ) from None
    if key.shape != ():
        raise ValueError(
            f"`{name}` must be a single key, got keys of shape {key.shape} (for several draws, "
            "call once per key, or jax.vmap over the keys)."
        )
    return key
