"""The Fair Fairness Benchmark's tabular protocol in JAX: methods x weights x seeds, vmapped.

FFB (Han et al., ICLR 2024) trains one PyTorch process per (method, penalty weight, seed).
This script follows its tabular protocol (``src/ffb_tabular_*.py`` of their code) and trains
a whole method's grid of penalty weights x seeds as one compiled program (``jax.vmap`` over
the weights inside ``jax.vmap`` over the seeds): one compilation per method.

The protocol, as in FFB's code:

- data: FFB's loaders' preprocessing (Adult: ``fnlwgt`` dropped, rows with a missing value
  dropped, sex = Male / race = White (White and Black rows only); COMPAS: ProPublica's
  filters, AIF360's features, sex = Male / race = Caucasian); categorical columns one-hot;
- split: ``train_test_split(test_size=0.6, stratify=y, random_state=seed)``, then the 60 %
  halved into test and validation the same way (40 / 30 / 30); the numerical columns (not the
  one-hot ones) standardised with a scaler fitted on the training part;
- model: MLP ``d -> 512 -> 256 -> 64 -> 1``, ReLU then dropout after each hidden layer
  (``F.dropout``'s default rate 0.5 in training, none at evaluation), PyTorch's default
  initialisation (uniform in :math:`\\pm 1/\\sqrt{\\text{fan-in}}`), sigmoid output;
- training: ``BCELoss`` on the probabilities + ``lam`` x the fairness term of the batch, Adam
  (lr 0.01), ``StepLR(step_size=50, gamma=0.1)`` stepped every update, batches of 1024 drawn
  by a reshuffled loader that drops the last partial batch, ``--num-steps`` updates (FFB's
  default 150);
- metrics on the test part, after the last step, x100, under FFB's names: ``acc`` (threshold
  0.5), ``auc``, ``ap``, ``dp``, ``eopp``, ``eodd`` (the sum of the TPR and FPR gaps),
  ``prule``, ``abcc`` (area between the groups' empirical CDFs of the probability, on
  FFB's grid of 10,000 points in [0, 1]).

The fairness terms (all on the probabilities, ``s`` in {0, 1}): ``diffdp``/``diffeopp``/
``diffeodd``: :func:`fairjax.penalties.mean_difference` with ``criterion=`` demographic
parity / equal opportunity / equalized odds (FFB's ``DiffDP``/``DiffEOpp``/``DiffEOdd``:
``tests/penalties/test_ffb.py`` checks they are equal); ``hsic``:
:func:`fairjax.penalties.hsic` with FFB's kernels (``exp(-d^2)``, i.e. bandwidth
:math:`1/\\sqrt 2`) and its :math:`1/(m-1)^2` normalisation; ``pr``: the Prejudice Remover
(``fairjax.penalties.prejudice_remover``, FFB's ``PRLoss``); and fairjax's own
``mmd``, ``wasserstein`` (and ``sinkhorn``, about 100 s a run on a 2-core CPU: not in the
default grid) as extra rows. Two methods bring their own networks: ``adv`` (FFB's
``adv_gr``: :func:`fairjax.training.adversarial_objective` with the adversary on the last
hidden layer, :func:`adversarial_method`) and ``laftr`` (FFB's LAFTR:
:func:`fairjax.training.laftr_objective`, :func:`laftr_method`); their ``lam`` is the
adversary's weight.

Reports: ``--compare`` (side by side with FFB's records), ``--plot`` (trade-off plot and the
table of best accuracy at DP <= 5, 3, 1 with the area under each method's front),
``--floor`` (the matrix products of the grid alone, timed: the CPU floor).

Timing: each method's program is timed end to end (compilation included, data preparation
excluded and reported apart); a record's ``wall_s`` is its share (the method's time divided by
its number of runs).

Usage::

    FAIRJAX_DATA_HOME=path/to/data python benchmarks/ffb_tabular.py --dataset adult \
        --sensitive-attr sex --methods erm,diffdp,hsic --lams 0,1 --seeds 3 --json FILE
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fairjax import penalties, training
from fairjax.penalties import prejudice_remover

try:  # run as a script (benchmarks/ on the path) or as benchmarks.ffb_tabular
    from _common import write_json
except ImportError:
    from benchmarks._common import write_json

NAMES = ("acc", "auc", "ap", "dp", "eopp", "eodd", "prule", "abcc")
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native-country", "target",
]  # fmt: skip
ADULT_CATEGORICAL = [
    "workclass", "marital-status", "occupation", "relationship", "native-country", "education",
]  # fmt: skip
COMPAS_FEATURES = [
    "sex", "age", "age_cat", "race", "juv_fel_count", "juv_misd_count", "juv_other_count",
    "priors_count", "c_charge_degree", "c_charge_desc", "two_year_recid",
]  # fmt: skip
COMPAS_CATEGORICAL = ["age_cat", "c_charge_degree", "c_charge_desc"]
PRIVILEGED = {("adult", "sex"): "Male", ("adult", "race"): "White",
              ("compas", "sex"): "Male", ("compas", "race"): "Caucasian"}  # fmt: skip


# --------------------------------------------------------------------------- data


def load(dataset: str, attr: str, data_home: str):
    """FFB's preprocessing: features (one-hot), labels, binary attribute, numerical columns."""
    if (dataset, attr) not in PRIVILEGED:
        raise SystemExit(f"--dataset/--sensitive-attr: {dataset}/{attr} is not in FFB's grid")
    if dataset == "adult":
        read = dict(names=ADULT_COLUMNS, na_values="?", sep=r"\s*,\s*", engine="python")
        path = os.path.join(data_home, "adult")
        df = pd.concat(
            [
                pd.read_csv(os.path.join(path, "adult.data"), **read),
                pd.read_csv(os.path.join(path, "adult.test"), skiprows=1, **read),
            ]
        )
        df = df.drop(columns=["fnlwgt"]).dropna()
        if attr == "race":
            df = df[df["race"].isin(["White", "Black"])]
        y = df["target"].str.startswith(">50K").to_numpy(np.float32)
        categorical = [*ADULT_CATEGORICAL, "race" if attr == "sex" else "sex"]
        X = df.drop(columns=["target", attr])
    else:
        df = pd.read_csv(os.path.join(data_home, "compas", "compas-scores-two-years.csv"))
        df = df[(df["days_b_screening_arrest"] <= 30) & (df["days_b_screening_arrest"] >= -30)]
        df = df[(df["is_recid"] != -1) & (df["c_charge_degree"] != "O")]
        df = df[df["score_text"] != "N/A"][COMPAS_FEATURES]
        y = (df["two_year_recid"] == 1).to_numpy(np.float32)
        categorical = [*COMPAS_CATEGORICAL, "race" if attr == "sex" else "sex"]
        X = df.drop(columns=["two_year_recid", attr])
    s = (df[attr] == PRIVILEGED[dataset, attr]).to_numpy(np.int32)
    numerical = [c for c in X.columns if c not in categorical]
    X = pd.get_dummies(X.astype({c: str for c in categorical}), columns=categorical)
    return X, y, s, numerical


def split(X: pd.DataFrame, y, s, numerical, seed: int):
    """FFB's 40/30/30 stratified split and training-set scaling; returns (train, test) arrays."""
    idx = np.arange(len(y))
    tr, tv = train_test_split(idx, test_size=0.6, stratify=y, random_state=seed)
    te, _val = train_test_split(tv, test_size=0.5, stratify=y[tv], random_state=seed)
    X = X.astype(np.float32)
    cols = [X.columns.get_loc(c) for c in numerical]
    A = X.to_numpy(np.float32)
    scaler = StandardScaler().fit(A[tr][:, cols])
    A[:, cols] = scaler.transform(A[:, cols])
    return (A[tr], y[tr], s[tr]), (A[te], y[te], s[te])


# --------------------------------------------------------------------------- model


class MLP(eqx.Module):
    """FFB's ``networks.MLP``: ReLU + dropout after each hidden layer, one logit out."""

    hidden: list
    head: eqx.nn.Linear
    rate: float = eqx.field(static=True)

    def __init__(self, n_features: int, widths=(512, 256, 64), *, rate=0.5, key):
        keys = jax.random.split(key, len(widths) + 1)
        sizes = (n_features, *widths)
        # eqx.nn.Linear's default init is PyTorch's: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        pairs = zip(sizes, widths, keys, strict=False)
        self.hidden = [eqx.nn.Linear(i, o, key=k) for i, o, k in pairs]
        self.head = eqx.nn.Linear(widths[-1], 1, key=keys[-1])
        self.rate = rate

    def __call__(self, x, key=None, *, features=False):
        """Logits ``(n,)`` of a batch ``(n, d)``; dropout when a key is given (training).

        With ``features=True``, ``(logits, h)``: ``h`` the last hidden layer's output (after
        its ReLU and dropout), FFB's first return value.
        """
        for i, layer in enumerate(self.hidden):
            x = jax.nn.relu(x @ layer.weight.T + layer.bias)
            if key is not None and self.rate > 0:
                keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1 - self.rate, x.shape)
                x = jnp.where(keep, x / (1 - self.rate), 0)
        logits = (x @ self.head.weight.T + self.head.bias)[:, 0]
        return (logits, x) if features else logits


def bce(logits, y):
    """PyTorch's ``BCELoss`` on ``sigmoid(logits)`` (log terms clamped at -100)."""
    log_p = jnp.maximum(jax.nn.log_sigmoid(logits), -100.0)
    log_q = jnp.maximum(jax.nn.log_sigmoid(-logits), -100.0)
    return -jnp.mean(y * log_p + (1 - y) * log_q)


def fairness_term(method: str, p, s, y):
    """The fairness term of a batch, on the probabilities ``p`` (FFB's losses)."""
    if method == "erm":
        return jnp.zeros((), p.dtype)
    if method in ("diffdp", "diffeopp", "diffeodd"):
        crit = {"diffdp": "demographic_parity", "diffeopp": "equal_opportunity",
                "diffeodd": "equalized_odds"}[method]  # fmt: skip
        return penalties.mean_difference(p, s, num_groups=2, labels=y, criterion=crit)
    if method == "hsic":  # FFB: kernels exp(-d^2) (bandwidth 1/sqrt 2), tr(LHKH) / (m-1)^2
        m = p.shape[0]
        h = math.sqrt(0.5)
        value = penalties.hsic(p, s.astype(p.dtype), bandwidth_x=h, bandwidth_s=h)
        return value * (m / (m - 1)) ** 2
    if method == "pr":
        return prejudice_remover(p, s, num_groups=2)
    if method == "mmd":
        return penalties.mmd(p[:, None], s, num_groups=2)
    if method == "wasserstein":
        return penalties.wasserstein(p, s, num_groups=2)
    if method == "sinkhorn":
        return penalties.sinkhorn(p[:, None], s, num_groups=2, solver_kwargs=SINKHORN_SOLVER)
    raise SystemExit(f"--methods: unknown method {method!r}")


SINKHORN_SOLVER = {"max_iterations": 100}  # ott-jax checks convergence every 10
PENALTIES = (
    "erm",
    "diffdp",
    "diffeopp",
    "diffeodd",
    "hsic",
    "pr",
    "mmd",
    "wasserstein",
    "sinkhorn",
)
METHODS = (*PENALTIES, "adv", "laftr", "reduction")


class Method(NamedTuple):
    """How one method builds its networks, its objective for a weight, and its predictions.

    ``init(key, d) -> (params, static)``; ``objective(static, lam)(params, batch)`` with
    ``batch = (x, y, s, dropout_key)``; ``predict(static, params, x) -> probabilities``.
    """

    init: Callable
    objective: Callable
    predict: Callable


def _split(module):
    return eqx.partition(module, eqx.is_array)


def penalty_method(method: str) -> Method:
    """FFB's ``MLP`` + ``BCELoss`` + ``lam`` x a fairness term of the batch's probabilities."""

    def objective(static, lam):
        def f(params, batch):
            xb, yb, sb, key = batch
            logits = eqx.combine(params, static)(xb, key=key)
            return bce(logits, yb) + lam * fairness_term(method, jax.nn.sigmoid(logits), sb, yb)

        return f

    return Method(
        init=lambda key, d: _split(MLP(d, key=key)),
        objective=objective,
        predict=lambda static, params, x: jax.nn.sigmoid(eqx.combine(params, static)(x)),
    )


def adversarial_method() -> Method:
    """FFB's ``adv_gr``: ``networks.AdvDebiasing`` trained by gradient reversal.

    The predictor is an MLP ``d -> 512 -> 256 -> 64 -> 1`` without dropout; the adversary,
    ``64 -> 50 -> 1``, reads the last hidden layer through the reversal; the loss is
    ``BCE(y) + lam * BCE(s)`` (:func:`fairjax.training.adversarial_objective`,
    ``adversary_input="representation"``; the adversary's one logit ``l`` enters the softmax
    cross-entropy as the pair ``(0, l)``, which is the binary cross-entropy of ``sigmoid(l)``).
    """

    def init(key, d):
        k1, k2 = jax.random.split(key)
        pred, pred_static = _split(MLP(d, rate=0.0, key=k1))
        adv, adv_static = _split(MLP(64, (50,), rate=0.0, key=k2))
        return (pred, adv), (pred_static, adv_static)

    def objective(static, lam):
        def model(p, x):
            return eqx.combine(p, static[0])(x, features=True)

        def adversary(q, z):
            logit = eqx.combine(q, static[1])(z)
            return jnp.stack([jnp.zeros_like(logit), logit], axis=1)

        f = training.adversarial_objective(
            model, adversary, lam=lam, adversary_input="representation"
        )
        return lambda params, batch: f(params, batch[:3])

    return Method(
        init=init,
        objective=objective,
        predict=lambda static, params, x: jax.nn.sigmoid(eqx.combine(params[0], static[0])(x)),
    )


LAFTR_WEIGHTS = {"prediction_weight": 1.0, "reconstruction_weight": 0.1}  # FFB's A_y, A_x


def laftr_method() -> Method:
    """FFB's ``ffb_tabular_laftr.py``: LAFTR with their networks, losses and weights.

    Encoder ``d -> 256 -> 128`` (its last hidden layer, after ReLU and dropout, is ``z``),
    decoder ``128 -> d`` (the hidden layer of an MLP, after ReLU and dropout, as in FFB),
    classifier and adversary ``128 -> 64 -> 1``, all with dropout 0.5; the loss is
    ``A_y BCE(y) + A_x RMSE(x) + lam BCE(s)`` with FFB's ``A_y = 1``, ``A_x = 0.1`` and the
    penalty weight ``lam = A_z`` (FFB's default 5), the adversary behind a gradient reversal
    (:func:`fairjax.training.laftr_objective`, ``adversary_loss="cross_entropy"``,
    ``reconstruction="rmse"``).
    """
    names = ("encoder", "decoder", "classifier", "adversary")

    def init(key, d):
        ks = jax.random.split(key, 4)
        nets = (MLP(d, (256, 128), key=ks[0]), MLP(128, (d,), key=ks[1]),
                MLP(128, (64,), key=ks[2]), MLP(128, (64,), key=ks[3]))  # fmt: skip
        pairs = [_split(n) for n in nets]
        return {k: p[0] for k, p in zip(names, pairs, strict=True)}, {
            k: p[1] for k, p in zip(names, pairs, strict=True)
        }

    def objective(static, lam):
        def net(name, *, features):
            def f(p, z, *rest):
                key = rest[-1]
                out = eqx.combine(p, static[name])(z, key=key, features=features)
                return out[1] if features else out

            return f

        return training.laftr_objective(
            net("encoder", features=True),
            net("classifier", features=False),
            net("adversary", features=False),
            decoder=net("decoder", features=True),
            adversary_weight=lam,
            adversary_loss="cross_entropy",
            reconstruction="rmse",
            stochastic=True,
            **LAFTR_WEIGHTS,
        )

    def predict(static, params, x):
        z = eqx.combine(params["encoder"], static["encoder"])(x, features=True)[1]
        return jax.nn.sigmoid(eqx.combine(params["classifier"], static["classifier"])(z))

    return Method(init=init, objective=objective, predict=predict)


def method_spec(method: str) -> Method:
    """The :class:`Method` of a name in :data:`METHODS`."""
    if method == "adv":
        return adversarial_method()
    if method == "laftr":
        return laftr_method()
    if method in PENALTIES:
        return penalty_method(method)
    raise SystemExit(f"--methods: unknown method {method!r}; choose from {METHODS}")


# --------------------------------------------------------------------------- training


def batch_schedule(key, n: int, *, batch_size: int, num_steps: int):
    """FFB's infinite loader: each pass reshuffles, drops the last partial batch; (steps, B)."""
    per_pass = n // batch_size
    passes = -(-num_steps // per_pass)
    keys = jax.random.split(key, passes)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n)[: per_pass * batch_size])(keys)
    return perms.reshape(passes * per_pass, batch_size)[:num_steps]


def make_grid_program(spec: Method, static, *, num_steps: int, batch_size: int, lr: float):
    """``program(params, train, key, lams) -> params``: seeds x lams models, one compilation."""
    schedule = optax.exponential_decay(lr, transition_steps=50, decay_rate=0.1, staircase=True)
    optimizer = optax.adam(schedule)  # torch Adam's defaults: betas (0.9, 0.999), eps 1e-8

    def train_one(params, data, idx, drop_keys, lam):
        X, y, s = data
        step = training.make_step(spec.objective(static, lam), optimizer, jit=False)

        def body(state, inputs):
            i, k = inputs
            return step(state, (X[i], y[i], s[i], k))

        state, losses = jax.lax.scan(body, training.init_state(params, optimizer), (idx, drop_keys))
        return state.params, losses

    def one_seed(params, data, key, lams):
        k_batch, k_drop = jax.random.split(key)
        idx = batch_schedule(k_batch, data[1].shape[0], batch_size=batch_size, num_steps=num_steps)
        drop_keys = jax.random.split(k_drop, num_steps)
        over_lams = jax.vmap(train_one, in_axes=(None, None, None, None, 0))
        return over_lams(params, data, idx, drop_keys, lams)

    return jax.jit(jax.vmap(one_seed, in_axes=(0, 0, 0, None)))


# --------------------------------------------------------------------------- metrics


def ffb_metrics(p: np.ndarray, y: np.ndarray, s: np.ndarray, decisions=None) -> dict[str, float]:
    """FFB's ``metric_evaluation`` (x100) for the names in :data:`NAMES`.

    ``decisions``: expected decisions in [0, 1] of a randomised classifier (the mixture); the
    accuracy and the rate gaps are then their expected values (default: ``p > 0.5``).
    """
    d = (p > 0.5) if decisions is None else np.asarray(decisions, np.float64)

    def gap(mask):
        a, b = d[mask & (s == 1)], d[mask & (s == 0)]
        return abs(a.mean() - b.mean()) if len(a) and len(b) else 0.0

    every = np.ones(d.shape, bool)
    r1, r0 = d[s == 1].mean(), d[s == 0].mean()
    odds = r1 / (r0 + 1e-8)
    grid = np.linspace(0, 1, 10000)
    cdf = [np.searchsorted(np.sort(p[s == g]), grid, side="right") / (s == g).sum() for g in (0, 1)]
    trapezoid = getattr(np, "trapezoid", None) or np.trapezoid
    return {
        "acc": 100 * float(np.mean(1 - np.abs(d - y))),
        "auc": 100 * skm.roc_auc_score(y, p),
        "ap": 100 * skm.average_precision_score(y, p),
        "dp": 100 * gap(every),
        "eopp": 100 * gap(y == 1),
        "eodd": 100 * (gap(y == 1) + gap(y == 0)),
        "prule": 100 * float(np.nanmin([odds, 1 / (odds + 1e-8)])),
        "abcc": 100 * float(trapezoid(np.abs(cdf[0] - cdf[1]), grid)),
    }


# --------------------------------------------------------------------------- report


def _load_records(paths):
    runs = [json.load(open(p)) for p in paths]
    recs = [r for run in runs for r in run["records"]]
    return runs, recs


def _group(recs):
    out = {}
    for r in recs:
        out.setdefault((r["method"], round(float(r["lam"]), 6)), []).append(r)
    return out


def side_by_side(jax_paths, peer_paths) -> str:
    """Markdown: per (method, lam), mean +- sd over seeds of each side, and whether they agree.

    Agreement: the difference of the means is within twice its standard error
    (``2 * sqrt(sd_a^2 / n_a + sd_b^2 / n_b)``, sample SDs over the seeds).
    """
    jruns, jrecs = _load_records(jax_paths)
    pruns, precs = _load_records(peer_paths)
    J, P = _group(jrecs), _group(precs)
    cols = ("acc", "auc", "dp", "eodd", "abcc")
    lines = ["| method | lam | seeds | " + " | ".join(f"{c} fairjax / FFB" for c in cols) + " |",
             "|---" * (3 + len(cols)) + "|"]  # fmt: skip
    agree = total = 0
    for key in sorted(set(J) & set(P)):
        a, b = J[key], P[key]
        cells = []
        for c in cols:
            x, y = np.array([r[c] for r in a]), np.array([r[c] for r in b])
            se = math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
            ok = abs(x.mean() - y.mean()) <= 2 * se
            agree, total = agree + ok, total + 1
            cells.append(f"{x.mean():.1f} ± {x.std(ddof=1):.1f} / {y.mean():.1f} ± "
                         f"{y.std(ddof=1):.1f}{'' if ok else ' **x**'}")  # fmt: skip
        lines.append(f"| {key[0]} | {key[1]:g} | {len(a)}/{len(b)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| method | runs | fairjax s per run | FFB s per run | ratio |",
        "|---|---|---|---|---|",
    ]
    for m in sorted({k[0] for k in set(J) & set(P)}):
        jw = sum(run["methods"][m]["wall_s"] for run in jruns if m in run["methods"])
        jn = sum(run["methods"][m]["runs"] for run in jruns if m in run["methods"])
        pw = [r["wall_s"] for r in precs if r["method"] == m]
        lines.append(f"| {m} | {jn}/{len(pw)} | {jw / jn:.2f} | {np.mean(pw):.2f} | "
                     f"{np.mean(pw) / (jw / jn):.1f}x |")  # fmt: skip
    lines += ["", "fairjax: the method's compiled program (compilation included) divided by its "
              "runs; FFB: each run's data loading, training and evaluation."]  # fmt: skip
    jt = sum(r["total_wall_s"] for r in jruns)
    pt = sum(r["total_wall_s"] for r in pruns)
    jc = sum(r.get("total_cpu_s", float("nan")) for r in jruns)
    pc = sum(r.get("total_cpu_s", float("nan")) for r in pruns)
    lines += [
        "",
        f"{agree} of {total} (configuration, metric) pairs agree within twice the standard "
        "error of the difference of the seed means (**x**: outside).",
        "",
        f"Total wall time: fairjax {jt:.0f} s ({len(jrecs)} runs), FFB {pt:.0f} s "
        f"({len(precs)} runs); process CPU time: fairjax {jc:.0f} s, FFB {pc:.0f} s.",
    ]
    return "\n".join(lines)


def majority_accuracy(dataset: str, attr: str, seeds) -> float:
    """x100 accuracy of the constant classifier (the test part's majority class), seed mean."""
    X, y, s, numerical = load(dataset, attr, os.environ.get("FAIRJAX_DATA_HOME", "."))
    shares = []
    for seed in seeds:
        yte = split(X, y, s, numerical, seed)[1][1]
        shares.append(100 * max(yte.mean(), 1 - yte.mean()))
    return float(np.mean(shares))


def front_area(points, *, erm, floor: float) -> float:
    """Mean best accuracy over the DP budgets ``x`` in ``[0, dp_ERM]`` (the area under the front).

    ``points``: ``(dp, acc)`` seed means of a method's weights; ``erm``: ERM's ``(dp, acc)``;
    ``floor``: the constant classifier's accuracy (DP gap 0, always reachable). The best
    accuracy at budget ``x`` is the largest accuracy among the points (ERM's included) with
    ``dp <= x``, at least ``floor``; the area is its integral over ``[0, dp_ERM]`` divided by
    ``dp_ERM``: ERM's accuracy for a method that is as accurate as ERM at every budget, the
    floor for one that never does better than the constant classifier below ERM's gap.
    """
    top = erm[0]
    pts = sorted([*points, erm])
    xs = [min(d, top) for d, _ in pts] + [top]
    area, best, prev = 0.0, floor, 0.0
    for (d, a), x in zip(pts, xs, strict=False):
        area += best * (x - prev)
        prev = x
        best = max(best, a) if d <= top else best
    return (area + best * (top - prev)) / top


def best_at_dp(paths, bounds=(5, 3, 1)) -> str:
    """Markdown: each method's best accuracy at DP <= b (seed means), and its front's area.

    The area is :func:`front_area` with ERM's point and the constant classifier's accuracy
    (recomputed from the data sets' test parts, ``FAIRJAX_DATA_HOME``).
    """
    runs, recs = _load_records(paths)
    G = _group(recs)
    erm_recs = G.get(("erm", 0.0))
    erm = (np.mean([r["dp"] for r in erm_recs]), np.mean([r["acc"] for r in erm_recs]))
    seeds = sorted({r["seed"] for r in recs})
    floor = majority_accuracy(runs[0]["dataset"], runs[0]["sensitive_attr"], seeds)
    lines = [f"ERM: acc {erm[1]:.1f}, dp {erm[0]:.1f}; constant classifier: acc {floor:.1f}", "",
             "| method | weights x seeds | " + " | ".join(f"best acc, dp <= {b}" for b in bounds)
             + " | area under the front |",
             "|---" * (3 + len(bounds)) + "|"]  # fmt: skip
    for m in sorted({k[0] for k in G}):
        keys = [k for k in sorted(G) if k[0] == m]
        pts = [(np.mean([r["dp"] for r in G[k]]), np.mean([r["acc"] for r in G[k]]), k[1])
               for k in keys]  # fmt: skip
        cells = []
        for b in bounds:
            ok = [(a, lam) for d, a, lam in pts if d <= b]
            if ok:
                a, lam = max(ok)
                sd = np.std([r["acc"] for r in G[m, lam]], ddof=1)
                cells.append(f"{a:.1f} ± {sd:.1f} (lam {lam:g})")
            else:
                cells.append("none")
        area = front_area([(d, a) for d, a, _ in pts], erm=erm, floor=floor)
        n_seeds = min(len(G[k]) for k in keys)
        lines.append(f"| {m} | {len(pts)} x {n_seeds} | " + " | ".join(cells) + f" | {area:.1f} |")
    return "\n".join(lines)


def full_table(paths, cols=("acc", "auc", "dp", "eopp", "eodd", "abcc")) -> str:
    """Markdown: every (method, lam), mean ± standard deviation over the seeds of each metric."""
    _, recs = _load_records(paths)
    G = _group(recs)
    lines = ["| method | lam | seeds | " + " | ".join(cols) + " |", "|---" * (3 + len(cols)) + "|"]
    for key in sorted(G):
        rs = G[key]
        cells = [f"{np.mean([r[c] for r in rs]):.1f} ± {np.std([r[c] for r in rs], ddof=1):.1f}"
                 for c in cols]  # fmt: skip
        lines.append(f"| {key[0]} | {key[1]:g} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(paths, md: str, png: str) -> None:
    """Writes a data set's results file (``md``: both tables) and its trade-off plot."""
    runs, recs = _load_records(paths)
    tradeoff_plot(paths, png)
    r0 = runs[0]
    walls = sum(r["total_wall_s"] for r in runs)
    text = "\n".join([
        f"# FFB grid, {r0['dataset']} ({r0['sensitive_attr']}), {r0['num_steps']} steps",
        "",
        f"{len(recs)} runs from {len(runs)} calls of `benchmarks/ffb_tabular.py` "
        f"({', '.join(os.path.basename(p) for p in paths)}); jax {r0['jax']} on "
        f"{r0['device']}, {r0['cpu_count']} CPUs; calls' wall time {walls:.0f} s in all. "
        "Test metrics x100, seed means ± standard deviations; the best accuracy at a DP "
        "budget is over a method's penalty weights (seed means), the area under the front is "
        "the mean of that best accuracy over the budgets from 0 to ERM's gap (the constant "
        "classifier's accuracy where no weight reaches the budget).",
        "",
        best_at_dp(paths),
        "",
        "## Every configuration",
        "",
        full_table(paths),
        "",
    ])  # fmt: skip
    with open(md, "w") as f:
        f.write(text)


def tradeoff_plot(paths, png: str) -> None:
    """FFB-style trade-off: accuracy against DP gap and abcc, normalised to ERM (seed means)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, recs = _load_records(paths)
    G = _group(recs)
    erm = G.get(("erm", 0.0)) or G[min(G, key=lambda k: k[1])]
    base = {c: np.mean([r[c] for r in erm]) for c in ("acc", "dp", "abcc")}
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4))
    colors = plt.get_cmap("tab20").colors
    for i, m in enumerate(sorted({k[0] for k in G})):
        keys = sorted(k for k in G if k[0] == m)
        for ax, c in zip(axes, ("dp", "abcc"), strict=False):
            xs = [np.mean([r[c] for r in G[k]]) / base[c] for k in keys]
            ys = [np.mean([r["acc"] for r in G[k]]) / base["acc"] for k in keys]
            style = dict(color="k", marker="*", markersize=10, linestyle="none")
            if m != "erm":
                style = dict(color=colors[(2 * i) % 20 + (i // 10) % 2], marker="o",
                             markersize=4, linestyle="-")  # fmt: skip
            ax.plot(xs, ys, label=m, **style)
    for ax, c in zip(axes, ("DP gap", "abcc"), strict=False):
        ax.set_xlabel(f"{c} / ERM's")
        ax.set_ylabel("accuracy / ERM's")
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.suptitle(
        f"{runs[0]['dataset']} ({runs[0]['sensitive_attr']}), FFB protocol, "
        f"{runs[0]['num_steps']} steps, seed means over penalty weights"
    )
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    fig.savefig(png, dpi=110)


def matmul_floor(
    d: int, *, runs: int, num_steps: int, batch_size: int, widths=(512, 256, 64), repeats: int = 3
) -> dict:
    """The matrix products of ``runs`` MLP trainings alone: one compiled program, timed.

    Per step and run: the forward products of the MLP ``d -> widths -> 1`` on a batch, and the
    backward ones (each layer's weight gradient, each hidden layer's input gradient), then a
    plain gradient step; no gather of the batch's rows, no nonlinearity, no dropout, no Adam,
    no fairness term. ``vmap`` over the runs, ``lax.scan`` over the steps, as the grid.
    Returns the best of ``repeats`` timed calls (compiled first), the FLOPs and the rate.
    """
    sizes = (d, *widths, 1)
    key = jax.random.key(0)
    x = jax.random.normal(key, (runs, batch_size, d), jnp.float32)
    ws = [0.01 * jax.random.normal(jax.random.fold_in(key, i), (runs, a, b), jnp.float32)
          for i, (a, b) in enumerate(itertools.pairwise(sizes))]  # fmt: skip

    def one_run(ws, x):
        def body(ws, _):
            hs = [x]
            for w in ws:
                hs.append(hs[-1] @ w)
            delta = hs[-1]
            grads = []
            for i in range(len(ws) - 1, -1, -1):
                grads.append(hs[i].T @ delta)
                if i > 0:
                    delta = delta @ ws[i].T
            return [w - 1e-6 * g for w, g in zip(ws, grads[::-1], strict=True)], None

        return jax.lax.scan(body, ws, None, length=num_steps)[0]

    program = jax.jit(jax.vmap(one_run))
    jax.block_until_ready(program(ws, x))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(program(ws, x))
        times.append(time.perf_counter() - t0)
    pairs = list(itertools.pairwise(sizes))
    flops = 2 * batch_size * sum(a * b for a, b in pairs) * 3 - 2 * batch_size * d * widths[0]
    total = flops * num_steps * runs
    best = min(times)
    return {"floor_s": best, "flops": total, "gflops_per_s": total / best / 1e9, "runs": runs,
            "num_steps": num_steps, "batch_size": batch_size, "features": d}  # fmt: skip


# --------------------------------------------------------------------------- driver


REDUCTION_CANDIDATES = 20  # the mixture's candidate iterates (each evaluated on all rows)


def run_reduction_rows(args, train, test, seeds, d, bounds):
    """``reduction`` and ``mixture`` rows: fairjax's rate-constrained trainers, FFB's network.

    One :func:`fairjax.training.fit_rate_constrained_mixture` call per (seed, bound) on FFB's
    MLP (dropout, ``model_state={}``), Adam with FFB's schedule, the same batches and steps;
    the ``lam`` of a record is the bound on the training DP gap of the decisions. Its last
    iterate is the ``reduction`` row (the deterministic model of
    :func:`~fairjax.training.fit_rate_constrained`, same training), its mixture the
    ``mixture`` row, measured on its expected decisions (expected accuracy and gaps; AUC, AP and
    abcc of the expected decisions as scores). A Python loop, not vmapped: the reduction's
    trainers check their bound on the host.
    """
    spec = penalty_method("erm")
    static = spec.init(jax.random.key(0), d)[1]
    schedule = optax.exponential_decay(args.lr, transition_steps=50, decay_rate=0.1,
                                       staircase=True)  # fmt: skip

    def model(p, batch, key, state):
        return eqx.combine(p, static)(batch[0], key=key), state

    predict = jax.jit(lambda p, x: spec.predict(static, p, x))
    records, t0 = [], time.perf_counter()
    for i, seed in enumerate(seeds):
        data = tuple(a[i] for a in train)
        key = jax.random.key(seed)
        params = spec.init(jax.random.fold_in(key, 1), d)[0]
        Xte, yte, ste = test[i]
        for bound in bounds:
            res = training.fit_rate_constrained_mixture(
                model, params, data, target=float(bound), num_groups=2,
                optimizer=optax.adam(schedule), multiplier_optimizer=optax.sgd(args.reduction_lr),
                num_steps=args.num_steps, batch_size=args.batch_size, key=key, model_state={},
                num_candidates=REDUCTION_CANDIDATES,
            )  # fmt: skip
            last = np.asarray(predict(res.state.params, jnp.asarray(Xte)), np.float64)
            q = np.asarray(training.mixture_decisions(
                model, res.params, res.probabilities, (jnp.asarray(Xte),),
                model_state=res.model_state), np.float64)  # fmt: skip
            for name, rec in (("reduction", ffb_metrics(last, yte, ste)),
                              ("mixture", ffb_metrics(q, yte, ste, decisions=q))):  # fmt: skip
                rec.update(method=name, lam=float(bound), seed=seed)
                records.append(rec)
    wall = time.perf_counter() - t0
    for rec in records:
        rec["wall_s"] = wall / (len(seeds) * len(bounds))
    return records, wall


def run(args) -> dict:
    """Prepare each seed's split, run each method's program, evaluate; the results dict."""
    t0, c0 = time.perf_counter(), time.process_time()
    data_home = os.environ.get("FAIRJAX_DATA_HOME", ".")
    X, y, s, numerical = load(args.dataset, args.sensitive_attr, data_home)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    splits = [split(X, y, s, numerical, seed) for seed in seeds]
    train = tuple(jnp.asarray(np.stack([sp[0][j] for sp in splits])) for j in range(3))
    test = [sp[1] for sp in splits]
    prep_s = time.perf_counter() - t0
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    d = X.shape[1]
    lams = jnp.asarray([float(x) for x in args.lams.split(",")], jnp.float32)
    records, methods = [], {}
    for method in args.methods.split(","):
        if method == "reduction":
            recs, wall = run_reduction_rows(
                args, train, test, seeds, d, [float(x) for x in args.lams.split(",")]
            )
            records += recs
            runs = len(seeds) * len(lams)
            methods[method] = {"wall_s": wall, "runs": runs, "finite": True}
            print(f"reduction + mixture: {runs} runs in {wall:.1f} s", flush=True)
            continue
        spec = method_spec(method)
        static = spec.init(jax.random.key(0), d)[1]
        init = jax.vmap(lambda k, spec=spec: spec.init(jax.random.fold_in(k, 1), d)[0])
        # one seed's models (a leading axis of lams) on that seed's test part
        forward = jax.jit(
            jax.vmap(lambda p, x, spec=spec, static=static: spec.predict(static, p, x),
                     in_axes=(0, None))
        )  # fmt: skip
        mlams = lams[:1] * 0 if method == "erm" else lams
        program = make_grid_program(
            spec, static, num_steps=args.num_steps, batch_size=args.batch_size, lr=args.lr
        )
        t1 = time.perf_counter()
        params, losses = program(init(keys), train, keys, mlams)
        jax.block_until_ready(params)
        wall = time.perf_counter() - t1
        runs = len(seeds) * len(mlams)
        methods[method] = {"wall_s": wall, "runs": runs, "finite": bool(jnp.isfinite(losses).all())}
        for i, seed in enumerate(seeds):
            Xte, yte, ste = test[i]
            probs = np.asarray(forward(jax.tree.map(lambda a, i=i: a[i], params), jnp.asarray(Xte)))
            for j, lam in enumerate(np.round(np.asarray(mlams, np.float64), 6).tolist()):
                rec = ffb_metrics(probs[j].astype(np.float64), yte, ste)
                rec.update(method=method, lam=lam, seed=seed, wall_s=wall / runs)
                records.append(rec)
        print(f"{method}: {runs} runs in {wall:.1f} s (compilation included)", flush=True)
    total = time.perf_counter() - t0
    return {
        "side": "fairjax-jax",
        "dataset": args.dataset,
        "sensitive_attr": args.sensitive_attr,
        "num_steps": args.num_steps,
        "batch_size": args.batch_size,
        "evaluation": "test set once, after the last step",
        "num_features": d,
        "num_train": int(train[1].shape[1]),
        "num_test": len(test[0][1]),
        "jax": jax.__version__,
        "device": str(jax.devices()[0].platform),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "data_prep_s": prep_s,
        "methods": methods,
        "total_wall_s": total,
        "total_cpu_s": time.process_time() - c0,
        "records": records,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="adult", choices=["adult", "compas"])
    p.add_argument("--sensitive-attr", default="sex", choices=["sex", "race"])
    p.add_argument("--methods", default="erm,diffdp,hsic", help=f"comma-separated, of {METHODS}")
    p.add_argument("--lams", default="0,1", help="penalty weights, comma-separated (ERM: 0)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--num-steps", type=int, default=150, help="FFB's default: 150")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument(
        "--reduction-lr", type=float, default=0.1, help="the reduction's multiplier step size"
    )
    p.add_argument("--json", default=None, help="write the results here")
    reports = (  # the report modes: each reads result files instead of training
        ("--compare", ("JAX_JSONS", "FFB_JSONS"), "the side-by-side table of result files"),
        ("--plot", ("JSONS", "PNG"), "the trade-off plot and best-accuracy table"),
        ("--report", ("JSONS", "MD", "PNG"), "a data set's results file and trade-off plot"),
    )
    for flag, names, what in reports:
        p.add_argument(flag, nargs=len(names), metavar=names, help=f"only write {what} "
                       "(JSONS: comma-separated result files)")  # fmt: skip
    p.add_argument(
        "--floor",
        action="store_true",
        help="only time the matrix products of --seeds x (number of --lams) trainings",
    )
    args = p.parse_args(argv)
    if args.floor:
        X, _, _, _ = load(
            args.dataset, args.sensitive_attr, os.environ.get("FAIRJAX_DATA_HOME", ".")
        )
        runs = args.seeds * len(args.lams.split(","))
        out = matmul_floor(X.shape[1], runs=runs, num_steps=args.num_steps,
                           batch_size=args.batch_size)  # fmt: skip
        print(json.dumps(out))
        write_json(args.json, out)
        return
    if args.compare:
        print(side_by_side(args.compare[0].split(","), args.compare[1].split(",")))
        return
    if args.plot:
        tradeoff_plot(args.plot[0].split(","), args.plot[1])
        print(best_at_dp(args.plot[0].split(",")))
        return
    if args.report:
        report(args.report[0].split(","), args.report[1], args.report[2])
        print(open(args.report[1]).read())
        return
    out = run(args)
    for r in out["records"]:
        print(
            " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        )
    print(f"total wall time {out['total_wall_s']:.1f} s ({len(out['records'])} runs)")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
