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
import numpy as np
import pytest

from fairjax import ferm, kernels, metrics, ot1d, penalties, postprocessing
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


F = metrics
ENTRIES: dict[str, Entry] = {
    "metrics.demographic_parity_difference": Entry(
        lambda d: F.demographic_parity_difference(
            d["pred"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "pred",
        "y_pred",
    ),
    "metrics.demographic_parity_ratio": Entry(
        lambda d: F.demographic_parity_ratio(
            d["pred"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "pred",
        "y_pred",
    ),
    "metrics.equal_opportunity_difference": Entry(
        lambda d: F.equal_opportunity_difference(
            d["labels"], d["pred"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "pred",
        "y_pred",
        labels="y_true",
    ),
    "metrics.equalized_odds_difference": Entry(
        lambda d: F.equalized_odds_difference(
            d["labels"], d["pred"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "pred",
        "y_pred",
        labels="y_true",
    ),
    "metrics.ks_unfairness": Entry(
        lambda d: F.ks_unfairness(
            d["scores"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "scores",
        "scores",
    ),
    "metrics.wasserstein_unfairness": Entry(
        lambda d: F.wasserstein_unfairness(
            d["scores"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "scores",
        "scores",
    ),
    "metrics.by_group": Entry(
        lambda d: F.by_group(
            d["labels"], d["pred"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "pred",
        "y_pred",
        labels="y_true",
    ),
    "penalties.mean_difference": Entry(
        lambda d: penalties.mean_difference(
            d["scores"],
            d["groups"],
            num_groups=d["num_groups"],
            labels=d["labels"],
            weights=d["weights"],
            criterion="equal_opportunity",
        ),
        "scores",
        "scores",
        labels="labels",
    ),
    "penalties.sigmoid_rate_difference": Entry(
        lambda d: penalties.sigmoid_rate_difference(
            d["scores"],
            d["groups"],
            num_groups=d["num_groups"],
            labels=d["labels"],
            weights=d["weights"],
            criterion="equal_opportunity",
        ),
        "scores",
        "logits",
        labels="labels",
    ),
    "penalties.wasserstein": Entry(
        lambda d: penalties.wasserstein(
            d["scores"],
            d["groups"],
            num_groups=d["num_groups"],
            labels=d["labels"],
            weights=d["weights"],
            criterion="equal_opportunity",
        ),
        "scores",
        "scores",
        labels="labels",
    ),
    "penalties.mmd": Entry(
        lambda d: penalties.mmd(
            d["h"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "h",
        "h",
    ),
    "penalties.sinkhorn": Entry(
        lambda d: penalties.sinkhorn(
            d["h"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "h",
        "h",
    ),
    "groups.group_means": Entry(
        lambda d: gs.group_means(
            d["scores"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "scores",
        "values",
        fixed_rank=False,
    ),
    "ot1d.pooled_group_cdfs": Entry(
        lambda d: ot1d.pooled_group_cdfs(
            d["scores"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "scores",
        "values",
    ),
    "ferm.fairness_direction": Entry(
        lambda d: ferm.fairness_direction(
            d["X"], d["labels"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "X",
        "X",
    ),
    "ferm.fit_projection": Entry(
        lambda d: ferm.fit_projection(
            d["X"], d["labels"], d["groups"], num_groups=d["num_groups"], weights=d["weights"]
        ),
        "X",
        "X",
    ),
    "ferm.fit_linear": Entry(
        lambda d: ferm.fit_linear(
            d["X"],
            d["labels"],
            d["groups"],
            num_groups=d["num_groups"],
            weights=d["weights"],
            steps=2,
        ),
        "X",
        "X",
        labels="y",
    ),
    "postprocessing.fit_barycenter": Entry(
        lambda d: postprocessing.fit_barycenter(
            d["scores"], d["groups"], num_groups=d["num_groups"], key=KEY, weights=d["weights"]
        ),
        "scores",
        "scores",
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


CASES = []
for _name, _entry in ENTRIES.items():
    for _fault, (_needs, _edit, _arg) in FAULTS.items():
        if not _applies(_entry, _needs):
            continue
        _marks = []
        if (_name, _fault) in KNOWN_GAPS:
            _marks = [pytest.mark.xfail(reason=KNOWN_GAPS[(_name, _fault)], strict=True)]
        _CASE = pytest.param(_name, _fault, id=f"{_name}-{_fault}", marks=_marks)
        CASES.append(_CASE)


def _expected_name(arg: str, entry: Entry) -> str:
    return {"DATA": entry.data_name, "LABELS": entry.labels or ""}.get(arg, arg)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_good_inputs_are_accepted(name):
    """The baseline of every fault: the unedited inputs pass, so a raise below is the fault's."""
    ENTRIES[name].call(good())


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
        lambda: ferm.fit_linear(_X, _Y, _G, num_groups=2, C=0.0, steps=2),
        "`C`",
    ),
    "ferm.fit_linear eps<0": (
        lambda: ferm.fit_linear(_X, _Y, _G, num_groups=2, eps=-0.1, steps=2),
        "eps",
    ),
    "ferm.fit_linear loss": (
        lambda: ferm.fit_linear(_X, _Y, _G, num_groups=2, loss="l2", steps=2),
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
