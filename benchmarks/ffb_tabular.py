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
``mmd``, ``wasserstein`` as extra rows.

Timing: each method's program is timed end to end (compilation included, data preparation
excluded and reported apart); a record's ``wall_s`` is its share (the method's time divided by
its number of runs).

Usage::

    FAIRJAX_DATA_HOME=path/to/data python benchmarks/ffb_tabular.py --dataset adult \
        --sensitive-attr sex --methods erm,diffdp,hsic --lams 0,1 --seeds 3 --json FILE
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

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

    def __call__(self, x, key=None):
        """Logits ``(n,)`` of a batch ``(n, d)``; dropout when a key is given (training)."""
        for i, layer in enumerate(self.hidden):
            x = jax.nn.relu(x @ layer.weight.T + layer.bias)
            if key is not None:
                keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1 - self.rate, x.shape)
                x = jnp.where(keep, x / (1 - self.rate), 0)
        return (x @ self.head.weight.T + self.head.bias)[:, 0]


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
    raise SystemExit(f"--methods: unknown method {method!r}")


METHODS = ("erm", "diffdp", "diffeopp", "diffeodd", "hsic", "pr", "mmd", "wasserstein")


# --------------------------------------------------------------------------- training


def batch_schedule(key, n: int, *, batch_size: int, num_steps: int):
    """FFB's infinite loader: each pass reshuffles, drops the last partial batch; (steps, B)."""
    per_pass = n // batch_size
    passes = -(-num_steps // per_pass)
    keys = jax.random.split(key, passes)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n)[: per_pass * batch_size])(keys)
    return perms.reshape(passes * per_pass, batch_size)[:num_steps]


def make_grid_program(method: str, static, *, num_steps: int, batch_size: int, lr: float):
    """``program(params, train, key, lams) -> params``: seeds x lams models, one compilation."""
    schedule = optax.exponential_decay(lr, transition_steps=50, decay_rate=0.1, staircase=True)
    optimizer = optax.adam(schedule)  # torch Adam's defaults: betas (0.9, 0.999), eps 1e-8

    def train_one(params, data, idx, drop_keys, lam):
        X, y, s = data

        def objective(p, batch):
            xb, yb, sb, k = batch
            logits = eqx.combine(p, static)(xb, key=k)
            prob = jax.nn.sigmoid(logits)
            return bce(logits, yb) + lam * fairness_term(method, prob, sb, yb)

        step = training.make_step(objective, optimizer, jit=False)

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


def ffb_metrics(p: np.ndarray, y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """FFB's ``metric_evaluation`` (x100) for the names in :data:`NAMES`."""
    d = p > 0.5

    def gap(mask):
        a, b = d[mask & (s == 1)], d[mask & (s == 0)]
        return abs(a.mean() - b.mean()) if len(a) and len(b) else 0.0

    every = np.ones_like(d)
    r1, r0 = d[s == 1].mean(), d[s == 0].mean()
    odds = r1 / (r0 + 1e-8)
    grid = np.linspace(0, 1, 10000)
    cdf = [np.searchsorted(np.sort(p[s == g]), grid, side="right") / (s == g).sum() for g in (0, 1)]
    trapezoid = getattr(np, "trapezoid", None) or np.trapezoid
    return {
        "acc": 100 * float(np.mean(d == y)),
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


def best_at_dp(paths, bounds=(5, 3, 1)) -> str:
    """Markdown: each method's best seed-mean accuracy among its weights with seed-mean DP <= b."""
    _, recs = _load_records(paths)
    G = _group(recs)
    lines = ["| method | weights | " + " | ".join(f"best acc, dp <= {b}" for b in bounds) + " |",
             "|---" * (2 + len(bounds)) + "|"]  # fmt: skip
    for m in sorted({k[0] for k in G}):
        pts = [(np.mean([r["dp"] for r in G[k]]), np.mean([r["acc"] for r in G[k]]), k[1])
               for k in sorted(G) if k[0] == m]  # fmt: skip
        cells = []
        for b in bounds:
            ok = [(a, lam) for d, a, lam in pts if d <= b]
            cells.append(f"{max(ok)[0]:.1f} (lam {max(ok)[1]:g})" if ok else "none")
        lines.append(f"| {m} | {len(pts)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tradeoff_plot(paths, png: str) -> None:
    """FFB-style trade-off: accuracy against DP gap and abcc, normalised to ERM (seed means)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, recs = _load_records(paths)
    G = _group(recs)
    erm = G.get(("erm", 0.0)) or G[min(G, key=lambda k: k[1])]
    base = {c: np.mean([r[c] for r in erm]) for c in ("acc", "dp", "abcc")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for m in sorted({k[0] for k in G}):
        keys = sorted(k for k in G if k[0] == m)
        for ax, c in zip(axes, ("dp", "abcc"), strict=False):
            xs = [np.mean([r[c] for r in G[k]]) / base[c] for k in keys]
            ys = [np.mean([r["acc"] for r in G[k]]) / base["acc"] for k in keys]
            ax.plot(
                xs, ys, "o-" if m != "erm" else "k*", label=m, markersize=8 if m == "erm" else 4
            )
    for ax, c in zip(axes, ("DP gap", "abcc"), strict=False):
        ax.set_xlabel(f"{c} / ERM's")
        ax.set_ylabel("accuracy / ERM's")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("Adult (sex), FFB protocol, seed means over penalty weights")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


# --------------------------------------------------------------------------- driver


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
    _, static = eqx.partition(MLP(d, key=jax.random.key(0)), eqx.is_array)
    init = jax.vmap(lambda k: eqx.partition(MLP(d, key=jax.random.fold_in(k, 1)), eqx.is_array)[0])
    # one seed's models (a leading axis of lams) on that seed's test part
    forward = jax.jit(
        jax.vmap(lambda p, x: jax.nn.sigmoid(eqx.combine(p, static)(x)), in_axes=(0, None))
    )
    lams = jnp.asarray([float(x) for x in args.lams.split(",")], jnp.float32)
    records, methods = [], {}
    for method in args.methods.split(","):
        if method not in METHODS:
            raise SystemExit(f"--methods: unknown method {method!r}; choose from {METHODS}")
        mlams = lams[:1] * 0 if method == "erm" else lams
        program = make_grid_program(
            method, static, num_steps=args.num_steps, batch_size=args.batch_size, lr=args.lr
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
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("JAX_JSONS", "FFB_JSONS"),
        default=None,
        help="only print the side-by-side table of comma-separated result files",
    )
    p.add_argument(
        "--plot",
        nargs=2,
        metavar=("JSONS", "PNG"),
        default=None,
        help="only draw the trade-off plot of comma-separated result files",
    )
    args = p.parse_args(argv)
    if args.compare:
        print(side_by_side(args.compare[0].split(","), args.compare[1].split(",")))
        return
    if args.plot:
        tradeoff_plot(args.plot[0].split(","), args.plot[1])
        print(best_at_dp(args.plot[0].split(",")))
        return
    out = run(args)
    for r in out["records"]:
        print(
            " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        )
    print(f"total wall time {out['total_wall_s']:.1f} s ({len(out['records'])} runs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
