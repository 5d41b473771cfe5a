"""Validation at every public entry point (DESIGN.md, convention 5; issue 7, part 1).

One table of entry points, one table of faults. Each entry point says which of the shared inputs
it reads (data, groups, labels, weights); every fault that touches one of those inputs is tried
on it, and must raise ``ValueError``/``TypeError`` whose message names the argument. Entry-point
specific hyperparameters (eps, alpha, epsilon, temperature, ...) have their own table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fairjax import (
    criteria,
    datasets,
    dependence,
    ferm,
    kernels,
    metrics,
    ot1d,
    penalties,
    postprocessing,
    representation,
    training,
)
from fairjax import groups as gs

N = 8
KEY = jax.random.key(0)


def good() -> dict:
    """Valid inputs shared by every entry point (fresh copies, so faults can edit them)."""
    rng = np.random.default_rng(0)
    return dict(
        pred=np.array([1, 0, 1, 1, 0, 0, 1, 0], np.float32),
        scores=rng.normal(size=N).astype(np.float32),
        h=rng.normal(size=(N, 2)).astype(np.float32),
        X=rng.normal(size=(N, 3)).astype(np.float32),
        labels=np.array([1, 0, 1, 1, 0, 1, 1, 0], np.int32),
        groups=np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int32),
        num_groups=2,
        weights=None,
    )


@dataclasses.dataclass(frozen=True)
class Entry:
    call: Callable[[dict], object]
    data: str  # key of the data input in `good()`
    data_name: str  # the argument's name, as the error message must say it
    labels: str | None = None  # the labels argument's name, when it must be binary
    uses_weights: bool = True
    uses_num_groups: bool = True
    fixed_rank: bool = True  # False: trailing axes of the data are allowed (group statistics)


def _grouped(fn: Callable, *keys: str, labels_kw: str | None = None, **options) -> Callable:
    """``d -> fn(*d[keys], d["groups"], num_groups=..., weights=..., **options)``.

    ``labels_kw``: the keyword that receives ``d["labels"]`` (penalties take labels by keyword).
    """

    def call(d: dict) -> object:
        extra = {} if labels_kw is None else {labels_kw: d["labels"]}
        return fn(
            *(d[k] for k in keys),
            d["groups"],
            num_groups=d["num_groups"],
            weights=d["weights"],
            **extra,
            **options,
        )

    return call


F = metrics
EO = {"labels_kw": "labels", "criterion": "equal_opportunity"}
ENTRIES: dict[str, Entry] = {
    "metrics.demographic_parity_difference": Entry(
        _grouped(F.demographic_parity_difference, "pred"), "pred", "y_pred"
    ),
    "metrics.demographic_parity_ratio": Entry(
        _grouped(F.demographic_parity_ratio, "pred"), "pred", "y_pred"
    ),
    "metrics.equal_opportunity_difference": Entry(
        _grouped(F.equal_opportunity_difference, "labels", "pred"), "pred", "y_pred", "y_true"
    ),
    "metrics.equalized_odds_difference": Entry(
        _grouped(F.equalized_odds_difference, "labels", "pred"), "pred", "y_pred", "y_true"
    ),
    "metrics.ks_unfairness": Entry(_grouped(F.ks_unfairness, "scores"), "scores", "scores"),
    "metrics.wasserstein_unfairness": Entry(
        _grouped(F.wasserstein_unfairness, "scores"), "scores", "scores"
    ),
    "metrics.by_group": Entry(_grouped(F.by_group, "labels", "pred"), "pred", "y_pred", "y_true"),
    "penalties.mean_difference": Entry(
        _grouped(penalties.mean_difference, "scores", **EO), "scores", "scores", "labels"
    ),
    "penalties.sigmoid_rate_difference": Entry(
        _grouped(penalties.sigmoid_rate_difference, "scores", **EO), "scores", "logits", "labels"
    ),
    "penalties.wasserstein": Entry(
        _grouped(penalties.wasserstein, "scores", **EO), "scores", "scores", "labels"
    ),
    "penalties.mmd": Entry(_grouped(penalties.mmd, "h"), "h", "h"),
    "penalties.sinkhorn": Entry(_grouped(penalties.sinkhorn, "h"), "h", "h"),
    "groups.group_means": Entry(
        _grouped(gs.group_means, "scores"), "scores", "values", fixed_rank=False
    ),
    "ot1d.pooled_group_cdfs": Entry(_grouped(ot1d.pooled_group_cdfs, "scores"), "scores", "values"),
    "ferm.fairness_direction": Entry(_grouped(ferm.fairness_direction, "X", "labels"), "X", "X"),
    "ferm.fit_projection": Entry(_grouped(ferm.fit_projection, "X", "labels"), "X", "X"),
    "ferm.fit_linear": Entry(_grouped(ferm.fit_linear, "X", "labels", num_steps=2), "X", "X", "y"),
    "postprocessing.fit_barycenter": Entry(
        _grouped(postprocessing.fit_barycenter, "scores", key=KEY), "scores", "scores"
    ),
}


def _with_nan(x):
    x = np.array(x, np.float32)
    x.flat[1] = np.nan
    return x


def _with_inf(x):
    x = np.array(x, np.float32)
    x.flat[2] = np.inf
    return x


def _zero_rows(d: dict, e: Entry) -> None:
    for k in (e.data, "groups", "labels"):
        d[k] = np.asarray(d[k])[:0]


# Each fault: (which input it needs, how it edits the inputs, the argument the message must name).
# "DATA" and "LABELS" stand for the entry point's own data and labels argument names.
FAULTS: dict[str, tuple[str, Callable[[dict, Entry], None], str]] = {
    "groups shorter than data": (
        "groups",
        lambda d, e: d.update(groups=d["groups"][:-1]),
        "groups",
    ),
    "groups rank 3": ("groups", lambda d, e: d.update(groups=d["groups"][:, None, None]), "groups"),
    "group id == num_groups": (
        "groups",
        lambda d, e: d.update(groups=np.where(d["groups"] == 1, 2, 0).astype(np.int32)),
        "groups",
    ),
    "negative group id": (
        "groups",
        lambda d, e: d.update(groups=d["groups"] - 1),
        "groups",
    ),
    "float group ids": (
        "groups",
        lambda d, e: d.update(groups=d["groups"].astype(np.float32) + 0.5),
        "groups",
    ),
    "membership with wrong columns": (
        "groups",
        lambda d, e: d.update(groups=np.eye(3, dtype=np.float32)[d["groups"]]),
        "groups|num_groups",
    ),
    "negative membership": (
        "groups",
        lambda d, e: d.update(groups=np.eye(2, dtype=np.float32)[d["groups"]] - 0.5),
        "groups",
    ),
    "num_groups missing": ("num_groups", lambda d, e: d.update(num_groups=None), "num_groups"),
    "num_groups zero": ("num_groups", lambda d, e: d.update(num_groups=0), "num_groups"),
    "num_groups a float": ("num_groups", lambda d, e: d.update(num_groups=2.0), "num_groups"),
    # Issue 18, item 2: without x64 JAX casts int64/uint64 ids to int32, so the range must be
    # checked on the original dtype (2**32 used to wrap to group 0 and pass).
    "int64 id 2**32": (
        "groups",
        lambda d, e: d.update(groups=np.where(d["groups"] == 1, 2**32, 0).astype(np.int64)),
        "groups",
    ),
    "int64 id -2**40": (
        "groups",
        lambda d, e: d.update(groups=np.where(d["groups"] == 1, -(2**40), 0).astype(np.int64)),
        "groups",
    ),
    "uint64 id 2**63": (
        "groups",
        lambda d, e: d.update(groups=np.where(d["groups"] == 1, 2**63, 0).astype(np.uint64)),
        "groups",
    ),
    # Issue 18, item 10: a cast to float dropped the imaginary part silently.
    "complex data": (
        "data",
        lambda d, e: d.update({e.data: np.asarray(d[e.data]) * (1 + 1j)}),
        "DATA",
    ),
    # Issue 18, item 11: a statistic of no rows is an error, not 0.
    "zero rows": ("data", lambda d, e: _zero_rows(d, e), "DATA"),
    "NaN in data": ("data", lambda d, e: d.update({e.data: _with_nan(d[e.data])}), "DATA"),
    "inf in data": ("data", lambda d, e: d.update({e.data: _with_inf(d[e.data])}), "DATA"),
    "data of wrong rank": (
        "rank",
        lambda d, e: d.update({e.data: np.zeros((N, 2, 2), np.float32)}),
        "DATA",
    ),
    "string data": ("data", lambda d, e: d.update({e.data: np.array(["a"] * N)}), "DATA"),
    "labels not binary": (
        "labels",
        lambda d, e: d.update(labels=np.array([0, 1, 2, 1, 0, 1, 2, 0], np.int32)),
        "LABELS",
    ),
    "labels shorter than data": (
        "labels",
        lambda d, e: d.update(labels=d["labels"][:-1]),
        "LABELS",
    ),
    "negative weight": (
        "weights",
        lambda d, e: d.update(weights=np.array([1, 1, -1, 1, 1, 1, 1, 1], np.float32)),
        "weights",
    ),
    "all-zero weights": (
        "weights",
        lambda d, e: d.update(weights=np.zeros(N, np.float32)),
        "weights",
    ),
    "NaN weight": ("weights", lambda d, e: d.update(weights=_with_nan(np.ones(N))), "weights"),
    "weights shorter than data": (
        "weights",
        lambda d, e: d.update(weights=np.ones(N - 1, np.float32)),
        "weights",
    ),
    "weights of rank 2": (
        "weights",
        lambda d, e: d.update(weights=np.ones((N, 1), np.float32)),
        "weights",
    ),
    "weights summing beyond float32": (
        "weights",
        lambda d, e: d.update(weights=np.full(N, 1e38, np.float32)),
        "weights",
    ),
}

# Faults an entry point is known to let through: (entry, fault) -> what is wrong. Each becomes a
# strict xfail, so the table documents the defect and the test flips when it is fixed.
KNOWN_GAPS: dict[tuple[str, str], str] = {}
# Gaps fixed on another branch, non-strict until it is merged (none left).
PENDING: dict[tuple[str, str], str] = {}


def _applies(entry: Entry, needs: str) -> bool:
    if needs == "labels":
        return entry.labels is not None
    if needs == "weights":
        return entry.uses_weights
    if needs == "num_groups":
        return entry.uses_num_groups
    if needs == "rank":
        return entry.fixed_rank
    return True


# The metrics take concrete integer ids without `num_groups` (issue 24, item 5): the number is
# inferred (max id + 1) instead of refused; tested below against the explicit value.
INFERS_NUM_GROUPS = {name for name in ENTRIES if name.startswith("metrics.")}

CASES = []
for _name, _entry in ENTRIES.items():
    for _fault, (_needs, _edit, _arg) in FAULTS.items():
        if not _applies(_entry, _needs):
            continue
        if _fault == "num_groups missing" and _name in INFERS_NUM_GROUPS:
            continue
        _marks = []
        if (_name, _fault) in KNOWN_GAPS:
            _marks = [pytest.mark.xfail(reason=KNOWN_GAPS[(_name, _fault)], strict=True)]
        elif (_name, _fault) in PENDING:
            _marks = [pytest.mark.xfail(reason=PENDING[(_name, _fault)], strict=False)]
        _CASE = pytest.param(_name, _fault, id=f"{_name}-{_fault}", marks=_marks)
        CASES.append(_CASE)


def _expected_name(arg: str, entry: Entry) -> str:
    return {"DATA": entry.data_name, "LABELS": entry.labels or ""}.get(arg, arg)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_good_inputs_are_accepted(name):
    """The baseline of every fault: the unedited inputs pass, so a raise below is the fault's."""
    ENTRIES[name].call(good())


@pytest.mark.parametrize("name", sorted(INFERS_NUM_GROUPS))
def test_metrics_infer_num_groups_from_concrete_ids(name):
    explicit = ENTRIES[name].call(good())
    inputs = good()
    inputs["num_groups"] = None
    inferred = ENTRIES[name].call(inputs)
    for a, b in zip(jax.tree.leaves(explicit), jax.tree.leaves(inferred), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(("name", "fault"), CASES)
def test_fault_raises_and_names_the_argument(name, fault):
    entry = ENTRIES[name]
    _, edit, arg = FAULTS[fault]
    inputs = good()
    edit(inputs, entry)
    expected = _expected_name(arg, entry)
    with pytest.raises((ValueError, TypeError)) as info:
        entry.call(inputs)
    message = str(info.value)
    assert any(f"`{a}`" in message or a in message for a in expected.split("|")), (
        f"message does not name `{expected}`: {message}"
    )


# ----------------------------------------------------------------------------- hyperparameters

D = good()
_S, _G, _H, _X, _Y = D["scores"], D["groups"], D["h"], D["X"], D["labels"]

HYPERPARAMETERS = {
    "sigmoid_rate_difference temperature=0": (
        lambda: penalties.sigmoid_rate_difference(_S, _G, num_groups=2, temperature=0.0),
        "temperature",
    ),
    "sigmoid_rate_difference temperature<0": (
        lambda: penalties.sigmoid_rate_difference(_S, _G, num_groups=2, temperature=-1.0),
        "temperature",
    ),
    "mean_difference criterion": (
        lambda: penalties.mean_difference(_S, _G, num_groups=2, criterion="pos"),
        "criterion",
    ),
    "mean_difference positive without labels": (
        lambda: penalties.mean_difference(_S, _G, num_groups=2, criterion="equal_opportunity"),
        "labels",
    ),
    "wasserstein p<1": (lambda: penalties.wasserstein(_S, _G, num_groups=2, p=0.5), "`p`"),
    "wasserstein reference": (
        lambda: penalties.wasserstein(_S, _G, num_groups=2, reference="x"),
        "reference",
    ),
    "mmd estimator": (lambda: penalties.mmd(_H, _G, num_groups=2, estimator="x"), "estimator"),
    "mmd kernel not a kernel": (lambda: penalties.mmd(_H, _G, num_groups=2, kernel=1.0), "kernel"),
    "sinkhorn epsilon=0": (
        lambda: penalties.sinkhorn(_H, _G, num_groups=2, epsilon=0.0),
        "epsilon",
    ),
    "sinkhorn epsilon<0": (
        lambda: penalties.sinkhorn(_H, _G, num_groups=2, epsilon=-0.1),
        "epsilon",
    ),
    "sinkhorn epsilon NaN": (
        lambda: penalties.sinkhorn(_H, _G, num_groups=2, epsilon=float("nan")),
        "epsilon",
    ),
    "orthogonality shapes": (
        lambda: penalties.orthogonality(np.ones(3, np.float32), np.ones(4, np.float32)),
        "`u`",
    ),
    "orthogonality NaN in w": (
        lambda: penalties.orthogonality(_with_nan(np.ones(3)), np.ones(3, np.float32)),
        "`w`",
    ),
    "ferm.project eps<0": (
        lambda: ferm.project(np.ones(3, np.float32), np.ones(3, np.float32), eps=-1.0),
        "eps",
    ),
    "ferm.project eps inf": (
        lambda: ferm.project(np.ones(3, np.float32), np.ones(3, np.float32), eps=np.inf),
        "eps",
    ),
    "ferm.fit_linear C=0": (
        lambda: ferm.fit_linear(_X, _Y, _G, num_groups=2, C=0.0, num_steps=2),
        "`C`",
    ),
    "ferm.fit_linear eps<0": (
        lambda: ferm.fit_linear(_X, _Y, _G, num_groups=2, eps=-0.1, num_steps=2),
        "eps",
    ),
    "ferm.fit_linear loss": (
        lambda: ferm.fit_linear(_X, _Y, _G, num_groups=2, loss="l2", num_steps=2),
        "loss",
    ),
    "ferm.project_orthogonal eps<0": (
        lambda: ferm.project_orthogonal(np.ones(3, np.float32), eps=-1.0),
        "eps",
    ),
    "postprocessing alpha>1": (
        lambda: postprocessing.apply_barycenter(
            postprocessing.fit_barycenter(_S, _G, num_groups=2, key=KEY), _S, _G, key=KEY, alpha=2
        ),
        "alpha",
    ),
    "postprocessing jitter<0": (
        lambda: postprocessing.fit_barycenter(_S, _G, num_groups=2, key=KEY, jitter=-1.0),
        "jitter",
    ),
    "postprocessing grid_size=1": (
        lambda: postprocessing.fit_barycenter(
            _S, _G, num_groups=2, key=KEY, method="quantile_grid", grid_size=1
        ),
        "grid_size",
    ),
    "kernels.gaussian bandwidth=0": (lambda: kernels.gaussian(bandwidth=0.0), "bandwidth"),
    "kernels.laplace bandwidth<0": (lambda: kernels.laplace(bandwidth=-1.0), "bandwidth"),
    "kernels.inverse_multiquadric exponent=0": (
        lambda: kernels.inverse_multiquadric(exponent=0.0),
        "exponent",
    ),
    "kernels.median_bandwidth NaN": (
        lambda: kernels.median_bandwidth(_with_nan(_H)),
        "x",
    ),
    "kernels.kernel_matrix dims": (
        lambda: kernels.kernel_matrix(kernels.gaussian(), _H, np.ones((3, 5), np.float32)),
        "Y|X",
    ),
    "metrics.bootstrap confidence_level": (
        lambda: metrics.bootstrap(
            lambda p, s, weights: metrics.demographic_parity_difference(
                p, s, num_groups=2, weights=weights
            ),
            D["pred"],
            _G,
            key=KEY,
            confidence_level=1.5,
        ),
        "confidence_level",
    ),
    "ot1d.wasserstein_distance p<1": (
        lambda: ot1d.wasserstein_distance(_S, _S, p=0.5),
        "`p`",
    ),
    "ot1d.wasserstein_distance negative weights": (
        lambda: ot1d.wasserstein_distance(_S, _S, u_weights=-np.ones(N, np.float32)),
        "u_values|u_weights",
    ),
    "ot1d.wasserstein_distance all-zero weights": (
        lambda: ot1d.wasserstein_distance(_S, _S, u_weights=np.zeros(N, np.float32)),
        "u_values|u_weights",
    ),
    "ot1d.barycenter negative barycenter_weights": (
        lambda: ot1d.barycenter(_H.T, barycenter_weights=np.array([1.0, -0.5], np.float32)),
        "barycenter_weights",
    ),
    "ot1d.quantile all-zero weights": (
        lambda: ot1d.quantile(_S, np.array([0.5], np.float32), weights=np.zeros(N, np.float32)),
        "values",
    ),
    "ot1d.quantile NaN level": (
        lambda: ot1d.quantile(_S, np.array([0.5, np.nan], np.float32)),
        "levels",
    ),
    "groups.intersect sizes": (
        lambda: gs.intersect(_G, _G, num_groups=(2,)),
        "num_groups",
    ),
    "groups.intersect out of range": (
        lambda: gs.intersect(_G, _G + 1, num_groups=(2, 2)),
        "groups",
    ),
}

# Known gaps, each a strict xfail that flips when fixed (none open at the moment).
HYPER_GAPS: dict[str, str] = {}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c,
            marks=[pytest.mark.xfail(reason=HYPER_GAPS[c], strict=True)] if c in HYPER_GAPS else [],
        )
        for c in sorted(HYPERPARAMETERS)
    ],
)
def test_hyperparameter_out_of_range_raises(case):
    call, expected = HYPERPARAMETERS[case]
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert any(a in message for a in expected.split("|")), message


def test_checks_inside_jit_are_static_only():
    """Under jit, value checks are skipped (a traced array cannot raise), shape checks still run."""
    s = np.array([0, 0, 1, 5], np.int32)  # id 5 out of range: only visible on concrete input
    f = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    with pytest.raises(ValueError, match="groups"):
        penalties.mean_difference(f, s, num_groups=2)
    jitted = jax.jit(lambda f, s: penalties.mean_difference(f, s, num_groups=2))
    assert np.isfinite(jitted(f, s))
    with pytest.raises(ValueError, match="groups"):
        jitted(f, s[:3])


@pytest.mark.parametrize("host", [True, False])
def test_value_checks_agree_on_the_host_and_the_device_path(monkeypatch, host):
    # On an accelerator the checks run in jax.numpy, on the CPU backend in NumPy on a view:
    # both must accept and refuse the same inputs (a narrow dtype must not wrap the bound).
    from fairjax import _validation

    if not host:
        monkeypatch.setattr(_validation, "_on_host", lambda a: False)
    ids = jax.device_put(np.array([0, 255, 3], np.uint8))
    assert float(gs.group_counts(ids, num_groups=300)[255]) == 1.0
    with pytest.raises(ValueError, match=r"num_groups=200\), got values in \[0, 255\]"):
        gs.group_counts(ids, num_groups=200)
    with pytest.raises(ValueError, match="finite"):
        metrics.ks_unfairness(np.array([0.1, np.nan]), np.array([0, 1]), num_groups=2)
    with pytest.raises(ValueError, match="non-negative"):
        gs.group_means(np.ones(2), np.array([0, 1]), num_groups=2, weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="beyond the range of float32"):
        gs.group_means(np.ones(4), np.array([0, 1, 0, 1]), num_groups=2, weights=np.full(4, 1e38))
    assert np.isfinite(
        gs.group_means(np.ones(4), np.array([0, 1, 0, 1]), num_groups=2, weights=np.full(4, 8e37))
    ).all()


# ----------------------------------------------------------------------------- issue 18
# Item 2 (group ids range-checked before any cast) at the entry points outside ENTRIES that take
# `groups`; ENTRIES get the same faults from the table above.

_WIDE_IDS = {
    "int64 2**32": np.array([0, 0, 0, 1, 1, 2**32], np.int64),
    "int64 -2**40": np.array([0, 0, 0, 1, 1, -(2**40)], np.int64),
    "uint64 2**63": np.array([0, 0, 0, 1, 1, 2**63], np.uint64),
    "list 2**32": [0, 0, 0, 1, 1, 2**32],
}
_P6 = np.array([1, 0, 1, 1, 0, 0], np.float32)
_S6 = np.linspace(-1, 1, 6).astype(np.float32)
_X6 = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
_Y6 = np.array([1, 0, 1, 1, 0, 1], np.int32)


def _rate_model(p, batch):
    return batch[0] @ p["w"] + p["b"]


_RATE_PARAMS = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
_SGD = optax.sgd(0.1)

GROUP_ENTRIES: dict[str, Callable[[object], object]] = {
    "groups.group_counts": lambda g: gs.group_counts(g, num_groups=2),
    "groups.group_sums": lambda g: gs.group_sums(_S6, g, num_groups=2),
    "groups.membership": lambda g: gs.membership(g, num_groups=2),
    "groups.intersect": lambda g: gs.intersect(g, np.zeros(6, np.int32), num_groups=(2, 1)),
    "criteria.group_rates": lambda g: criteria.group_rates(
        _P6, g, criterion="demographic_parity", num_groups=2
    ),
    "metrics.audit_report": lambda g: metrics.audit_report(
        _Y6, _P6, g, num_groups=2, num_resamples=2
    ),
    "ot1d.group_samples": lambda g: ot1d.group_samples(_S6, g, num_groups=2),
    "ferm.fit_kernel": lambda g: ferm.fit_kernel(_X6, _Y6, g, num_groups=2),
    "postprocessing.apply_barycenter": lambda g: postprocessing.apply_barycenter(
        postprocessing.fit_barycenter(_S6, np.array([0, 0, 0, 1, 1, 1]), num_groups=2, key=KEY),
        _S6,
        g,
        key=KEY,
    ),
    "representation.multitask_batch": lambda g: representation.multitask_batch(
        _X6, _Y6[:, None], g, num_groups=2
    ),
    "training.fit_rate_constrained": lambda g: training.fit_rate_constrained(
        _rate_model,
        _RATE_PARAMS,
        (_X6, _Y6, g),
        target=0.1,
        num_groups=2,
        optimizer=_SGD,
        num_steps=2,
    ),
}


@pytest.mark.parametrize("ids", sorted(_WIDE_IDS))
@pytest.mark.parametrize("name", sorted(GROUP_ENTRIES))
def test_wide_group_ids_are_range_checked_before_the_cast(name, ids):
    GROUP_ENTRIES[name](np.array([0, 0, 0, 1, 1, 1]))  # the same call with valid ids passes
    with pytest.raises(ValueError, match="groups"):
        GROUP_ENTRIES[name](_WIDE_IDS[ids])


def test_wide_group_id_no_longer_wraps_to_group_0():
    """The probe's case: 2**32 became group 0 and the metric returned 0.0."""
    with pytest.raises(ValueError, match=r"num_groups=2\), got values in \[0, 4294967296\]"):
        metrics.demographic_parity_difference(
            [1, 0, 1, 1, 0, 0], np.array([0, 0, 0, 1, 1, 2**32]), num_groups=2
        )


# Item 10 at entry points outside ENTRIES: complex input refused, naming the argument.
COMPLEX_ENTRIES: dict[str, tuple[Callable[[object], object], str]] = {
    "ot1d.wasserstein_distance": (
        lambda z: ot1d.wasserstein_distance(z, [0.0, 1.0, 2.0]),
        "u_values",
    ),
    "ot1d.quantile": (lambda z: ot1d.quantile(z, np.array([0.5], np.float32)), "values"),
    "ot1d.cdf": (lambda z: ot1d.cdf(z, np.array([0.5], np.float32)), "values"),
    "ot1d.barycenter": (lambda z: ot1d.barycenter(np.stack([z, z])), "values"),
    "kernels.kernel_matrix": (lambda z: kernels.kernel_matrix(kernels.gaussian(), z[:, None]), "X"),
    "kernels.squared_distances": (lambda z: kernels.squared_distances(z[:, None]), "X"),
    "kernels.median_bandwidth": (lambda z: kernels.median_bandwidth(z), "x"),
    "penalties.orthogonality": (lambda z: penalties.orthogonality(z, np.ones(3)), "w"),
    "ferm.project": (lambda z: ferm.project(z, np.ones(3, np.float32)), "w"),
}


@pytest.mark.parametrize("name", sorted(COMPLEX_ENTRIES))
def test_complex_input_is_refused(name):
    call, arg = COMPLEX_ENTRIES[name]
    call(np.array([1.0, 2.0, 3.0], np.float32))  # the real input passes
    with pytest.raises(TypeError, match=arg):
        call(np.array([1j, 2j, 3j]))


# Item 11 at entry points outside ENTRIES: zero rows refused, naming the argument.
EMPTY_ENTRIES: dict[str, tuple[Callable[[], object], str]] = {
    "kernels.median_bandwidth": (
        lambda: kernels.median_bandwidth(np.zeros((0, 2), np.float32)),
        "x",
    ),
    "kernels.nystrom": (
        lambda: kernels.nystrom(kernels.gaussian(), np.zeros((0, 2), np.float32)),
        "landmarks",
    ),
    "kernels.kernel_matrix": (
        lambda: kernels.kernel_matrix(kernels.gaussian(), np.zeros((0, 2), np.float32)),
        "X",
    ),
    "penalties.mean_difference (no labels)": (
        lambda: penalties.mean_difference(np.zeros(0), np.zeros(0, np.int32), num_groups=2),
        "scores",
    ),
    "penalties.sigmoid_rate_difference (no labels)": (
        lambda: penalties.sigmoid_rate_difference(np.zeros(0), np.zeros(0, np.int32), num_groups=2),
        "logits",
    ),
    "groups.group_means 2-D": (
        lambda: gs.group_means(np.zeros((0, 3)), np.zeros(0, np.int32), num_groups=2),
        "values",
    ),
}


@pytest.mark.parametrize("name", sorted(EMPTY_ENTRIES))
def test_zero_rows_are_refused(name):
    call, arg = EMPTY_ENTRIES[name]
    with pytest.raises(ValueError, match=arg):
        call()


def test_kernel_matrix_refuses_nan():
    with pytest.raises(ValueError, match="`X` must be finite"):
        kernels.kernel_matrix(kernels.gaussian(), np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="`Y` must be finite"):
        kernels.kernel_matrix(kernels.gaussian(), np.zeros((2, 1)), np.array([[np.inf]]))


# Item 5: every scalar option of every public entry point goes through one check. Each row:
# a call taking the option's value, the argument's name, and the kind of the option.
_INF, _NAN = float("inf"), float("nan")
BAD_SCALARS: dict[str, list] = {
    "positive": [np.float32(0), np.int64(-1), -1.0, _INF, _NAN, True],
    "nonnegative": [np.float32(-1), np.int64(-1), _INF, _NAN, True],
    "real": [_INF, -_INF, _NAN, np.float32(_NAN), True, "1.0"],
    "integer>=1": [np.int64(0), np.int64(-1), 2.5, np.float32(3), True, _INF],
    "integer>=2": [np.int64(1), np.int64(-1), 2.5, True],
    "integer>=0": [np.int64(-1), 2.5, True],
    # In a sequence of options NumPy turns [1.0, True] into [1.0, 1.0]: no bool case.
    "real entries": [_INF, -_INF, _NAN, np.float32(_NAN)],
    "nonnegative entries": [np.float32(-1), np.int64(-1), _INF, _NAN],
    "[0, 1]": [np.float32(1.5), np.int64(-1), _NAN, True],
    "(0, 1)": [np.float32(0), np.float32(1), _NAN, _INF, True],
}
_SQ = lambda p, b: jnp.mean((p - b[0]) ** 2)
_FIT_DATA = (np.arange(4.0, dtype=np.float32),)
_RATE_DATA = (_X6, _Y6, np.array([0, 0, 0, 1, 1, 1], np.int32))
_DP = lambda p, s, weights: metrics.demographic_parity_difference(
    p, s, num_groups=2, weights=weights
)
_BATCH = representation.multitask_batch(_X6, _Y6[:, None], _RATE_DATA[2], num_groups=2)
_REP_PARAMS = representation.init_params([(np.eye(3, 2, dtype=np.float32), np.zeros(2))],
                                         rep_dim=2, num_tasks=1)  # fmt: skip
_REP_OBJ = representation.multitask_objective(representation.mlp, num_groups=2)
_STATE = postprocessing.fit_barycenter(_S6, _RATE_DATA[2], num_groups=2, key=KEY)
_U3 = np.ones(3, np.float32)

SCALAR_OPTIONS: list[tuple[str, str, str, Callable[[object], object]]] = [
    ("penalties.sigmoid_rate_difference", "temperature", "positive",
     lambda x: penalties.sigmoid_rate_difference(_S6, _RATE_DATA[2], num_groups=2, temperature=x)),
    ("penalties.sinkhorn", "epsilon", "positive",
     lambda x: penalties.sinkhorn(_X6, _RATE_DATA[2], num_groups=2, epsilon=x)),
    ("penalties.sinkhorn", "group_size", "integer>=1",
     lambda x: penalties.sinkhorn(_X6, _RATE_DATA[2], num_groups=2, group_size=x)),
    ("penalties.wasserstein", "p", "positive",
     lambda x: penalties.wasserstein(_S6, _RATE_DATA[2], num_groups=2, p=x)),
    ("kernels.gaussian", "bandwidth", "positive", lambda x: kernels.gaussian(bandwidth=x)),
    ("kernels.laplace", "bandwidth", "positive", lambda x: kernels.laplace(bandwidth=x)),
    ("kernels.inverse_multiquadric", "bandwidth", "positive",
     lambda x: kernels.inverse_multiquadric(bandwidth=x)),
    ("kernels.inverse_multiquadric", "exponent", "positive",
     lambda x: kernels.inverse_multiquadric(exponent=x)),
    ("kernels.multi_bandwidth", "bandwidths", "positive",
     lambda x: kernels.multi_bandwidth(bandwidths=[1.0, x])),
    ("kernels.multi_bandwidth", "scale", "positive",
     lambda x: kernels.multi_bandwidth(bandwidths=[1.0], scale=x)),
    ("kernels.random_fourier_features", "dim", "integer>=1",
     lambda x: kernels.random_fourier_features(KEY, x, num_features=4)),
    ("kernels.random_fourier_features", "num_features", "integer>=1",
     lambda x: kernels.random_fourier_features(KEY, 2, num_features=x)),
    ("kernels.random_fourier_features", "bandwidth", "positive",
     lambda x: kernels.random_fourier_features(KEY, 2, num_features=4, bandwidth=x)),
    ("kernels.nystrom", "rcond", "nonnegative",
     lambda x: kernels.nystrom(kernels.gaussian(), _X6, rcond=x)),
    ("groups.row_weights", "n", "integer>=0", lambda x: gs.row_weights(x)),
    ("ferm.fit_linear", "C", "positive",
     lambda x: ferm.fit_linear(_X6, _Y6, _RATE_DATA[2], num_groups=2, C=x, num_steps=2)),
    ("ferm.fit_linear", "eps", "nonnegative",
     lambda x: ferm.fit_linear(_X6, _Y6, _RATE_DATA[2], num_groups=2, eps=x, num_steps=2)),
    ("ferm.fit_linear", "num_steps", "integer>=1",
     lambda x: ferm.fit_linear(_X6, _Y6, _RATE_DATA[2], num_groups=2, num_steps=x)),
    ("ferm.fit_linear", "learning_rate", "positive",
     lambda x: ferm.fit_linear(_X6, _Y6, _RATE_DATA[2], num_groups=2, learning_rate=x,
                               num_steps=2)),
    ("ferm.fit_kernel", "C", "positive",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, C=x)),
    ("ferm.fit_kernel", "eps", "nonnegative",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, eps=x, num_steps=2)),
    ("ferm.fit_kernel", "tol", "positive",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, tol=x)),
    ("ferm.fit_kernel", "max_iter", "integer>=1",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, max_iter=x)),
    ("ferm.fit_kernel", "num_landmarks", "integer>=1",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, num_landmarks=x, key=KEY,
                               num_steps=2)),
    ("ferm.fit_kernel", "num_steps", "integer>=1",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, num_steps=x,
                               solver="adam")),
    ("ferm.fit_kernel", "learning_rate", "positive",
     lambda x: ferm.fit_kernel(_X6, _Y6, _RATE_DATA[2], num_groups=2, learning_rate=x,
                               solver="adam", num_steps=2)),
    ("ferm.project", "eps", "nonnegative", lambda x: ferm.project(_U3, _U3, eps=x)),
    ("ferm.project", "max_iter", "integer>=1", lambda x: ferm.project(_U3, _U3, max_iter=x)),
    ("ferm.project_orthogonal", "eps", "nonnegative",
     lambda x: ferm.project_orthogonal(_U3, eps=x)),
    ("ferm.project_orthogonal", "max_iter", "integer>=1",
     lambda x: ferm.project_orthogonal(_U3, max_iter=x)),
    ("ferm.project_gradient", "eps", "nonnegative", lambda x: ferm.project_gradient(_U3, eps=x)),
    ("postprocessing.fit_barycenter", "jitter", "nonnegative",
     lambda x: postprocessing.fit_barycenter(_S6, _RATE_DATA[2], num_groups=2, key=KEY,
                                             jitter=x)),
    ("postprocessing.fit_barycenter", "grid_size", "integer>=2",
     lambda x: postprocessing.fit_barycenter(_S6, _RATE_DATA[2], num_groups=2, key=KEY,
                                             method="quantile_grid", grid_size=x)),
    ("postprocessing.apply_barycenter", "alpha", "[0, 1]",
     lambda x: postprocessing.apply_barycenter(_STATE, _S6, _RATE_DATA[2], key=KEY, alpha=x)),
    ("training.fit", "num_epochs", "integer>=1",
     lambda x: training.fit(_SQ, np.zeros(()), _FIT_DATA, optimizer=_SGD, num_epochs=x)),
    ("training.fit", "batch_size", "integer>=1",
     lambda x: training.fit(_SQ, np.zeros(()), _FIT_DATA, optimizer=_SGD, num_epochs=1,
                            batch_size=x, key=KEY)),
    ("training.fit", "patience", "integer>=1",
     lambda x: training.fit(_SQ, np.zeros(()), _FIT_DATA, optimizer=_SGD, num_epochs=1,
                            validation_data=_FIT_DATA, patience=x)),
    ("training.fit", "min_delta", "real",
     lambda x: training.fit(_SQ, np.zeros(()), _FIT_DATA, optimizer=_SGD, num_epochs=1,
                            min_delta=x)),
    ("training.fit_constrained", "target", "real",
     lambda x: training.fit_constrained(_SQ, _SQ, np.zeros(()), _FIT_DATA, target=x,
                                        optimizer=_SGD, num_steps=2)),
    ("training.fit_constrained", "num_steps", "integer>=1",
     lambda x: training.fit_constrained(_SQ, _SQ, np.zeros(()), _FIT_DATA, target=1.0,
                                        optimizer=_SGD, num_steps=x)),
    ("training.fit_constrained", "tolerance", "nonnegative",
     lambda x: training.fit_constrained(_SQ, _SQ, np.zeros(()), _FIT_DATA, target=1.0,
                                        optimizer=_SGD, num_steps=2, tolerance=x)),
    ("training.fit_constrained", "init_multiplier", "nonnegative",
     lambda x: training.fit_constrained(_SQ, _SQ, np.zeros(()), _FIT_DATA, target=1.0,
                                        optimizer=_SGD, num_steps=2, init_multiplier=x)),
    ("training.fit_rate_constrained", "target", "nonnegative",
     lambda x: training.fit_rate_constrained(_rate_model, _RATE_PARAMS, _RATE_DATA, target=x,
                                             num_groups=2, optimizer=_SGD, num_steps=2)),
    ("training.fit_rate_constrained", "num_steps", "integer>=1",
     lambda x: training.fit_rate_constrained(_rate_model, _RATE_PARAMS, _RATE_DATA, target=0.1,
                                             num_groups=2, optimizer=_SGD, num_steps=x)),
    ("training.fit_rate_constrained", "tolerance", "nonnegative",
     lambda x: training.fit_rate_constrained(_rate_model, _RATE_PARAMS, _RATE_DATA, target=0.1,
                                             num_groups=2, optimizer=_SGD, num_steps=2,
                                             tolerance=x)),
    ("training.fit_rate_constrained_mixture", "num_candidates", "integer>=1",
     lambda x: training.fit_rate_constrained_mixture(
         _rate_model, _RATE_PARAMS, _RATE_DATA, target=0.1, num_groups=2, optimizer=_SGD,
         num_steps=2, num_candidates=x)),
    ("training.fit_rate_constrained_mixture", "target", "nonnegative",
     lambda x: training.fit_rate_constrained_mixture(
         _rate_model, _RATE_PARAMS, _RATE_DATA, target=x, num_groups=2, optimizer=_SGD,
         num_steps=2, num_candidates=2)),
    ("training.constrained_sweep", "targets", "real entries",
     lambda x: training.constrained_sweep(_SQ, _SQ, np.zeros(()), _FIT_DATA, [1.0, x],
                                          optimizer=_SGD, num_steps=2)),
    ("training.constrained_sweep", "num_steps", "integer>=1",
     lambda x: training.constrained_sweep(_SQ, _SQ, np.zeros(()), _FIT_DATA, [1.0],
                                          optimizer=_SGD, num_steps=x)),
    ("training.constrained_sweep", "tolerance", "nonnegative",
     lambda x: training.constrained_sweep(_SQ, _SQ, np.zeros(()), _FIT_DATA, [1.0],
                                          optimizer=_SGD, num_steps=2, tolerance=x)),
    ("training.pareto_sweep", "lams", "nonnegative entries",
     lambda x: training.pareto_sweep(_SQ, _SQ, np.zeros(()), _FIT_DATA, [0.0, x],
                                     optimizer=_SGD, num_steps=2)),
    ("training.pareto_sweep", "num_steps", "integer>=1",
     lambda x: training.pareto_sweep(_SQ, _SQ, np.zeros(()), _FIT_DATA, [0.0],
                                     optimizer=_SGD, num_steps=x)),
    ("training.best_mixture", "target", "nonnegative",
     lambda x: training.best_mixture({"error": np.ones(2), "gaps": np.zeros(2)}, target=x)),
    ("training.penalized", "lam", "nonnegative", lambda x: training.penalized(_SQ, _SQ, x)),
    ("training.logistic_regression", "l2", "nonnegative",
     lambda x: training.logistic_regression(2, l2=x, temperature=1.0)),
    ("training.logistic_regression", "temperature", "positive",
     lambda x: training.logistic_regression(2, l2=0.0, temperature=x)),
    ("representation.multitask_objective", "lam", "nonnegative",
     lambda x: representation.multitask_objective(representation.mlp, num_groups=2, lam=x)),
    ("representation.multitask_objective", "l2", "nonnegative",
     lambda x: representation.multitask_objective(representation.mlp, num_groups=2, l2=x)),
    ("representation.train", "num_steps", "integer>=1",
     lambda x: representation.train(_REP_OBJ, _REP_PARAMS, _BATCH, optimizer=_SGD,
                                    num_steps=x)),
    ("representation.train", "batch_size", "integer>=1",
     lambda x: representation.train(_REP_OBJ, _REP_PARAMS, _BATCH, optimizer=_SGD, num_steps=1,
                                    batch_size=x, key=KEY)),
    ("representation.transfer", "l2", "nonnegative",
     lambda x: representation.transfer(representation.mlp, _REP_PARAMS.representation,
                                       (_X6, _Y6, _RATE_DATA[2]), (_X6, _Y6, _RATE_DATA[2]),
                                       num_groups=2, num_steps=1, l2=x)),
    ("representation.transfer", "num_steps", "integer>=1",
     lambda x: representation.transfer(representation.mlp, _REP_PARAMS.representation,
                                       (_X6, _Y6, _RATE_DATA[2]), (_X6, _Y6, _RATE_DATA[2]),
                                       num_groups=2, num_steps=x)),
    ("representation.transfer", "learning_rate", "positive",
     lambda x: representation.transfer(representation.mlp, _REP_PARAMS.representation,
                                       (_X6, _Y6, _RATE_DATA[2]), (_X6, _Y6, _RATE_DATA[2]),
                                       num_groups=2, num_steps=1, learning_rate=x)),
    ("metrics.bootstrap", "num_resamples", "integer>=2",
     lambda x: metrics.bootstrap(_DP, _P6, _RATE_DATA[2], key=KEY, num_resamples=x)),
    ("metrics.bootstrap", "confidence_level", "(0, 1)",
     lambda x: metrics.bootstrap(_DP, _P6, _RATE_DATA[2], key=KEY, num_resamples=2,
                                 confidence_level=x)),
    ("metrics.bootstrap", "batch_size", "integer>=1",
     lambda x: metrics.bootstrap(_DP, _P6, _RATE_DATA[2], key=KEY, num_resamples=2,
                                 batch_size=x)),
    ("metrics.audit_report", "num_resamples", "integer>=2",
     lambda x: metrics.audit_report(_Y6, _P6, _RATE_DATA[2], num_groups=2, num_resamples=x)),
    ("metrics.audit_report", "confidence_level", "(0, 1)",
     lambda x: metrics.audit_report(_Y6, _P6, _RATE_DATA[2], num_groups=2, num_resamples=2,
                                    confidence_level=x)),
]  # fmt: skip

SCALAR_CASES = [
    pytest.param(i, bad, id=f"{entry}-{option}={bad!r}")
    for i, (entry, option, kind, _) in enumerate(SCALAR_OPTIONS)
    for bad in BAD_SCALARS[kind]
]


@pytest.mark.parametrize(("row", "bad"), SCALAR_CASES)
def test_scalar_option_is_checked_and_named(row, bad):
    _, option, _, call = SCALAR_OPTIONS[row]
    with pytest.raises((ValueError, TypeError)) as info:
        call(bad)
    message = str(info.value)
    assert f"`{option}" in message, message


def test_scalar_options_accept_numpy_scalars():
    """NumPy scalars are numbers: accepted like Python ones (int64 steps, float32 rates)."""
    kernels.gaussian(bandwidth=np.float32(0.5))
    kernels.random_fourier_features(KEY, np.int64(2), num_features=np.int32(4))
    penalties.sigmoid_rate_difference(_S6, _RATE_DATA[2], num_groups=2, temperature=np.float64(2))
    training.fit(_SQ, np.zeros(()), _FIT_DATA, optimizer=_SGD, num_epochs=np.int64(1))


def test_traced_scalar_options_skip_the_value_checks():
    f = jax.jit(lambda t: penalties.sigmoid_rate_difference(_S6, _RATE_DATA[2], num_groups=2,
                                                            temperature=t))  # fmt: skip
    assert np.isfinite(f(0.5))
    g = jax.jit(lambda h: kernels.kernel_matrix(kernels.gaussian(bandwidth=h), _X6))
    assert g(1.0).shape == (6, 6)


def test_check_scalar_contract():
    from fairjax import _validation as v

    assert v.check_scalar(np.int64(3), "k", integer=True) == 3
    assert type(v.check_scalar(np.int64(3), "k", integer=True)) is int
    x = np.float32(0.5)
    assert v.check_scalar(x, "x", positive=True) is x  # floats returned unchanged
    assert v.check_scalar(None, "x", optional=True) is None
    with pytest.raises(ValueError, match=r"`c` must be < 1"):
        v.check_scalar(1.0, "c", low=0, high=1, inclusive=(False, False))
    with pytest.raises(TypeError, match="`c` must be a real number"):
        v.check_scalar(1j, "c")
    with pytest.raises(ValueError, match="`c` must be an integer"):
        v.check_scalar(2.0, "c", integer=True)
    with pytest.raises(ValueError, match=r"`lams\[1\]` must be >= 0"):
        v.check_scalars([0.0, -1.0], "lams", nonnegative=True)
    with pytest.raises(ValueError, match="`lam` must be >= 0"):
        v.check_scalars(-1.0, "lam", nonnegative=True)
    with pytest.raises(ValueError, match="`c` must be a scalar"):
        v.check_scalar(np.ones(2), "c")


# Each dtype with the bad values it can hold (a bool holds none, an unsigned int no -1).
_HELD = {
    "bool": [],
    "int8": [2, -1],
    "uint8": [2],
    "int32": [2, -1],
    "float32": [2, -1, 0.5, np.nan],
}


@pytest.mark.parametrize("dtype, bad", [(d, b) for d, bads in _HELD.items() for b in [None, *bads]])
@pytest.mark.parametrize("xp", ["numpy", "jax"])
def test_binary_and_unit_interval_checks_of_every_dtype(dtype, bad, xp, monkeypatch):
    # The checks read a minimum and a maximum (integers) or compare every value (floats):
    # each must refuse exactly what its contract refuses, in every dtype a user passes, with
    # NumPy (arrays in host memory) and with jax.numpy (as on an accelerator).
    from fairjax import _validation as v

    if xp == "jax":
        monkeypatch.setattr(v, "_on_host", lambda a: False)

    values = np.array([0, 1, 1, 0, 1] * 3, dtype=np.float64)
    if bad is not None:
        values[7] = bad
    arr = jnp.asarray(values.astype(dtype))
    in_unit = bad is None or (bad == 0.5)
    binary = bad is None
    for check, ok, match in (
        (v.check_unit_interval, in_unit, "in \\[0, 1\\]"),
        (v.check_binary, binary, "must be binary"),
    ):
        if ok:
            check(arr, "x")
        else:
            with pytest.raises(ValueError, match=match):
                check(arr, "x")
    v.check_unit_interval(np.zeros(0, dtype), "x")  # nothing to refuse
    v.check_binary(np.zeros(0, dtype), "x")


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="x64 keeps 64 bits: no cast")
def test_a_float64_value_beyond_float32_is_named_as_an_overflow():
    # Without x64 a finite float64 score of 1e39 becomes inf in float32: the message said only
    # "NaN or infinite", about a value the user passed finite (reported by a probe).
    scores = np.array([1e39, 1.0, 0.5, 0.2])
    y, s = np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"`scores` holds finite values beyond \+-3.4e\+38"):
        postprocessing.fit_thresholds(scores, y, s, num_groups=2)


@pytest.mark.parametrize(
    "call",
    [
        lambda big: gs.group_sums(np.array([big, 1]), np.array([0, 0]), num_groups=1),
        lambda big: metrics.worst_group_loss(
            np.array([big, 0, 3, 3]), np.array([5, 0, 3, 3]), np.array([0, 0, 1, 1]), num_groups=2
        ),
        lambda big: metrics.demographic_parity_difference(
            np.array([1, 0, 1, 0]),
            np.array([0, 0, 1, 1]),
            num_groups=2,
            weights=np.array([big, big, 1, 1]),
        ),
    ],
)
@pytest.mark.skipif(jax.config.jax_enable_x64, reason="x64 keeps 64 bits: no cast")
def test_int64_values_past_int32_are_refused_not_wrapped(call):
    # Without x64, JAX casts int64 to int32: 2**32 became 0, and the metrics read as fair
    # (reported by a probe). Group ids had this check; values, targets and weights did not.
    with pytest.raises(ValueError, match="beyond the range of int32"):
        call(2**32)
    call(2**20)  # in range: accepted


@pytest.mark.skipif(jax.config.jax_enable_x64, reason="x64 keeps 64 bits: no cast")
def test_int64_scores_past_int32_are_read_as_numbers_by_the_score_distances():
    # KS and W1 shift concrete integer scores to their middle in float64 on the host, so int64
    # beyond int32 (epoch nanoseconds) is measured, not wrapped (2**32 became 0) nor refused.
    big = 2**32
    x, g = np.array([0, big, 5, 2 * big]), np.array([0, 0, 1, 1])
    for metric in (metrics.ks_unfairness, metrics.wasserstein_unfairness):
        got = float(metric(x, g, num_groups=2))
        assert got == pytest.approx(float(metric(x.astype(np.float64), g, num_groups=2)))
    assert float(metrics.ks_unfairness(x, g, num_groups=2)) == 0.5


def _metric_of_weights(p, s, weights):
    return metrics.demographic_parity_difference(p, s, num_groups=2, weights=weights)


_KEYED = {
    "kernels.random_fourier_features": lambda k: kernels.random_fourier_features(
        k, 3, num_features=4
    ),
    "metrics.bootstrap": lambda k: metrics.bootstrap(
        _metric_of_weights, jnp.ones(8), jnp.arange(8) % 2, key=k, num_resamples=2
    ),
    "dependence.hsic": lambda k: dependence.hsic(
        jnp.arange(8.0), jnp.arange(8.0) % 2, num_features=4, key=k
    ),
    "postprocessing.fit_barycenter": lambda k: postprocessing.fit_barycenter(
        jnp.arange(8.0), jnp.arange(8) % 2, num_groups=2, key=k
    ),
    "datasets.make_classification": lambda k: datasets.make_classification(k, n_samples=20),
}


@pytest.mark.parametrize("name", sorted(_KEYED))
def test_a_seed_or_several_keys_where_one_key_belongs_is_named(name):
    # One check (fairjax._validation.check_key): these gave raw JAX errors ("invalid PRNG key
    # data", "split accepts a single key"), found by a probe and a review.
    call = _KEYED[name]
    with pytest.raises(TypeError, match=r"`key` must be a jax\.random key"):
        call(0)
    with pytest.raises(ValueError, match="`key` must be a single key"):
        call(jax.random.split(jax.random.key(0)))
    call(jax.random.PRNGKey(0))  # raw key data is a key
