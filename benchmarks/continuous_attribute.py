"""Fairness for a continuous attribute: Adult with age, HGR and HSIC penalties, fairret beside.

Logistic regression on the embedded UCI Adult split, predicting income > 50K **without** the age
column; the sensitive attribute is age (continuous). For each penalty, one
:func:`fairjax.training.pareto_sweep` trains a model per weight ``lam`` (one compiled program,
full batch, zero initialisation, Adam):

* ``hgr``: Mary et al.'s chi-square bound of the HGR correlation between the logits and age
  (:func:`fairjax.penalties.hgr`, full batch);
* ``hsic``: normalised HSIC between the logits and age with 64 random Fourier features per
  variable (:func:`fairjax.penalties.hsic`, linear in n; the exact HSIC would need 30,162^2
  kernel entries); ``--seeds`` draws the random features with several keys.
* ``fairret`` (with ``--fairret-python PATH``, a Python with torch and fairret): the same model
  trained in PyTorch with fairret's ``NormLoss(PositiveRate())`` and age as one continuous
  ``sens`` column (``benchmarks/continuous_attribute_fairret.py``), its logits measured here.

Every model is scored by the same code on the same rows. On the test split: accuracy, and the
dependence of the predicted probabilities on age as :func:`fairjax.metrics.hgr_correlation`
(ranks, degree 3), :func:`fairjax.metrics.hsic` (exact, normalised) and
:func:`fairjax.metrics.distance_correlation` (both on a fixed 4,000-row subsample), and
:func:`fairjax.metrics.binned_parity_difference` (the DP gap of the hard decisions across age
quartiles: what binning the attribute sees), and fairret's own statistic, the normalised
covariance :math:`|\\operatorname{cov}(s, p)| / (\\bar s \\bar p)` with age min-max scaled
(:func:`fairret_statistic`). The training accuracy and HGR are recorded too. ``--hidden H``
trains a one-hidden-layer MLP instead (initialised with the ``--seeds`` keys).

The summary row of a penalty is chosen **on the training rows**: the most accurate model (on
train) whose training HGR is at most 30% of the unpenalised model's; its test accuracy cost
and test HGR reduction are reported with 95% intervals from a paired bootstrap of the test rows
(the training itself is deterministic: full batch from zero, except the HSIC features' key).

Writes ``benchmarks/results/continuous_attribute_<platform>.json`` and ``.md`` (with the
default grids, ``continuous_attribute_<platform>_quick.*``); it replaces the rows of the
(penalty, seed) fronts it ran in an existing results file and keeps the others.

Usage::

    python benchmarks/continuous_attribute.py                 # a few minutes: a coarse HGR front
    python benchmarks/continuous_attribute.py --full \\
        --fairret-python path/to/venv/bin/python              # the fronts of the results page
    python benchmarks/continuous_attribute.py --penalties hsic --lams 0,3.8,4.1 --seeds 1,2
    python benchmarks/continuous_attribute.py --render      # rewrite the .md from the .json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, metrics, penalties, training

RESULTS = pathlib.Path(__file__).parent / "results"
HERE = pathlib.Path(__file__).parent
LR = 0.05
TARGET = 0.3  # HGR at most 30% of the unpenalised model's: a 70% reduction

# The weights of each penalty: the quick default, and the --full front.
GRIDS = {
    "hgr": (
        [0.0, 0.5, 1.0, 1.3, 2.0],
        [0.0, 0.1, 0.31, 0.55, 0.8, 1.0, 1.1, 1.2, 1.45, 1.7, 3.0],
    ),
    "hsic": ([0.0, 1.0, 3.0, 10.0], [0.0, 1.73, 2.8, 3.8, 4.1, 4.48]),
    "fairret": ([0.0, 0.3, 1.0, 3.0], [0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 3.0, 10.0]),
}


def adult_with_age():
    """Adult without its age column, and age (standardised) as the attribute."""
    data = datasets.load_adult()
    col = data.feature_names.index("age")
    keep = [i for i in range(len(data.feature_names)) if i != col]
    return (
        (data.X_train[:, keep], data.y_train.astype(np.float32), data.X_train[:, col]),
        (data.X_test[:, keep], data.y_test.astype(np.float32), data.X_test[:, col]),
    )


def logits(params, batch):
    """Logistic regression, or a one-hidden-layer MLP when ``params`` has ``"hidden"``."""
    x = batch[0]
    if "hidden" in params:
        x = jax.nn.relu(x @ params["hidden"]["w"] + params["hidden"]["b"])
    return x @ params["w"] + params["b"]


def init_params(num_inputs, hidden, seed):
    """Zeros for logistic regression; He-initialised hidden layer (key ``seed``) for the MLP."""
    if hidden == 0:
        return {"w": jnp.zeros(num_inputs), "b": jnp.zeros(())}
    scale = jnp.sqrt(2.0 / num_inputs)
    w = scale * jax.random.normal(jax.random.key(seed), (num_inputs, hidden))
    return {"hidden": {"w": w, "b": jnp.zeros(hidden)}, "w": jnp.zeros(hidden), "b": jnp.zeros(())}


def loss_fn(z, batch):
    return optax.sigmoid_binary_cross_entropy(z, batch[1]).mean()


def make_penalty(name, seed):
    if name == "hgr":
        return lambda z, batch: penalties.hgr(z, batch[2])
    key = jax.random.key(seed)
    return lambda z, batch: penalties.hsic(z, batch[2], num_features=64, key=key, normalized=True)


def fairret_statistic(prob, age, train_age):
    """fairret's continuous-attribute violation, measured: ``|cov(s, p)| / (mean s * mean p)``.

    With ``s`` the age min-max scaled on the training rows (as the fairret side feeds it), this
    is ``|(sum s p / sum s) / mean p - 1|``, the value of its ``NormLoss(PositiveRate())``.
    """
    lo, hi = float(np.min(train_age)), float(np.max(train_age))
    s = (np.asarray(age, np.float64) - lo) / (hi - lo)
    p = np.asarray(prob, np.float64)
    return float(abs(np.sum(s * p) / np.sum(s) / np.mean(p) - 1))


def evaluate(z_test, z_train, test, train, sub):
    """Test metrics of the logits ``z_test``; training accuracy and HGR of ``z_train``."""
    _, y, age = test
    z = np.asarray(z_test, np.float32)
    prob = 1 / (1 + np.exp(-z))
    pred = (z > 0).astype(np.float32)
    z_train = np.asarray(z_train, np.float32)
    return {
        "accuracy": float(np.mean(pred == y)),
        "hgr": float(metrics.hgr_correlation(prob, age)),
        "hsic": float(metrics.hsic(prob[sub], age[sub], normalized=True)),
        "dcor": float(metrics.distance_correlation(prob[sub], age[sub])),
        "binned_dp": float(metrics.binned_parity_difference(pred, age, num_bins=4)),
        "fairret_stat": fairret_statistic(prob, age, train[2]),
        "positive_rate": float(np.mean(pred)),
        "train_accuracy": float(np.mean((z_train > 0) == train[1])),
        "train_hgr": float(metrics.hgr_correlation(z_train, train[2])),
    }


def bootstrap(z_base, z_model, test, *, num=200, seed=0):
    """95% intervals of the accuracy cost (points) and HGR reduction (%) over test resamples."""
    _, y, age = test
    rng = np.random.default_rng(seed)
    hits = [(np.asarray(z) > 0) == y for z in (z_base, z_model)]
    cost, red = [], []
    for _ in range(num):
        w = rng.multinomial(len(y), np.full(len(y), 1 / len(y))).astype(np.float32)
        acc = [np.sum(w * h) / np.sum(w) for h in hits]
        hgr = [float(metrics.hgr_correlation(z, age, weights=w)) for z in (z_base, z_model)]
        cost.append(100 * (acc[0] - acc[1]))
        red.append(100 * (1 - hgr[1] / hgr[0]))
    return {
        "cost_points_95": [float(np.percentile(cost, 2.5)), float(np.percentile(cost, 97.5))],
        "hgr_reduction_pct_95": [float(np.percentile(red, 2.5)), float(np.percentile(red, 97.5))],
        "num_resamples": num,
    }


def sweep_fairjax(name, lams, seed, train, steps, hidden=0):
    """The parameters of one pareto_sweep over ``lams``, and its seconds."""
    p0 = init_params(train[0].shape[1], hidden, seed)
    start = time.perf_counter()
    result = training.pareto_sweep(
        loss_fn,
        make_penalty(name, seed),
        p0,
        train,
        jnp.asarray(lams, jnp.float32),
        optimizer=optax.adam(LR),
        num_steps=steps,
        model=logits,
    )
    jax.block_until_ready(result.params)
    seconds = time.perf_counter() - start
    out = []
    for k in range(len(lams)):
        params = jax.tree.map(lambda a, k=k: a[k], result.params)
        out.append(params)
    return out, seconds


def sweep_fairret(python, lams, train, test, steps):
    """Runs continuous_attribute_fairret.py with ``python``; its logits and its run record."""
    with tempfile.TemporaryDirectory() as tmp:
        split = pathlib.Path(tmp) / "split.npz"
        np.savez(split, X_train=train[0], y_train=train[1], s_train=train[2], X_test=test[0])
        cmd = [
            python,
            str(HERE / "continuous_attribute_fairret.py"),
            "--split",
            str(split),
            "--out",
            tmp,
            "--lams",
            ",".join(f"{x:g}" for x in lams),
            "--steps",
            str(steps),
            "--lr",
            str(LR),
        ]
        subprocess.run(cmd, check=True)
        run = json.loads((pathlib.Path(tmp) / "fairret_run.json").read_text())
        zs = [
            (np.load(f"{tmp}/logits_train_{k}.npy"), np.load(f"{tmp}/logits_test_{k}.npy"))
            for k in range(len(lams))
        ]
    return zs, run


def summarise(rows, zs, test):
    """The model chosen on the training rows, its test cost/reduction and bootstrap spread."""
    base = rows[0]
    ok = [k for k, r in enumerate(rows) if r["train_hgr"] <= TARGET * base["train_hgr"]]
    out = {
        "base_accuracy": base["accuracy"],
        "base_hgr": base["hgr"],
        "chosen_on_train": None,
    }
    if ok:
        k = max(ok, key=lambda i: rows[i]["train_accuracy"])
        r = rows[k]
        out["chosen_on_train"] = {
            "lam": r["lam"],
            "accuracy": r["accuracy"],
            "hgr": r["hgr"],
            "accuracy_cost_points": 100 * (base["accuracy"] - r["accuracy"]),
            "hgr_reduction_pct": 100 * (1 - r["hgr"] / base["hgr"]),
            **bootstrap(zs[0][1], zs[k][1], test),
        }
    ok_test = [r for r in rows if r["hgr"] <= TARGET * base["hgr"]]
    best = max(ok_test, key=lambda r: r["accuracy"]) if ok_test else None
    out["best_on_test_front"] = None
    if best is not None:
        out["best_on_test_front"] = {
            "lam": best["lam"],
            "accuracy_cost_points": 100 * (base["accuracy"] - best["accuracy"]),
            "hgr_reduction_pct": 100 * (1 - best["hgr"] / base["hgr"]),
        }
    return out


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the long sweep (every penalty)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--penalties", default=None, help="comma-separated: hgr, hsic, fairret")
    parser.add_argument("--lams", default=None, help="comma-separated weights (one penalty)")
    parser.add_argument(
        "--seeds", default="0", help="keys of the HSIC features and the MLP's initialisation"
    )
    parser.add_argument("--hidden", type=int, default=0, help="MLP hidden units (0: linear)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the results .json"
    )
    parser.add_argument(
        "--fairret-python",
        default=os.environ.get("FAIRRET_PYTHON"),
        help="a Python with torch and fairret (default: $FAIRRET_PYTHON; none: skip fairret)",
    )
    args = parser.parse_args()
    if args.penalties is None:
        chosen = ["hgr", "hsic"] if args.full else ["hgr"]
        if args.fairret_python:
            chosen.append("fairret")
    else:
        chosen = args.penalties.split(",")
    unknown = sorted(set(chosen) - set(GRIDS))
    if unknown:
        parser.error(f"unknown penalties {unknown}; choose from {sorted(GRIDS)}")
    if "fairret" in chosen and not args.fairret_python:
        parser.error("fairret needs --fairret-python (or $FAIRRET_PYTHON)")
    if args.lams is not None and len(chosen) != 1:
        parser.error("--lams needs exactly one penalty in --penalties")
    return args, chosen


def run_one(name, label, lams, seed, args, data):
    """Trains and scores one front; its rows and its summary."""
    train, test, sub = data
    load = list(os.getloadavg())
    if name == "fairret":
        zs, run = sweep_fairret(args.fairret_python, lams, train, test, args.steps)
        seconds = float(sum(run["seconds_per_model"]))
        extra = {k: run[k] for k in ("fairret", "torch", "sens", "loss", "torch_threads")}
    else:
        params, seconds = sweep_fairjax(name, lams, seed, train, args.steps, args.hidden)
        zs = [(logits(p, train), logits(p, test)) for p in params]
        extra = {"hidden": args.hidden}
    rows = []
    for lam, (z_train, z_test) in zip(lams, zs, strict=True):
        row = {"penalty": label, "seed": seed, "lam": float(lam)}
        row.update(evaluate(z_test, z_train, test, train, sub))
        row["hgr_reduction_pct"] = 100 * (1 - row["hgr"] / rows[0]["hgr"]) if rows else 0.0
        rows.append(row)
        print(
            f"{label} seed {seed} lam={lam:7.3f}  acc {row['accuracy']:.4f}  "
            f"HGR {row['hgr']:.3f} ({row['hgr_reduction_pct']:5.1f}%)  "
            f"HSIC {row['hsic']:.4f}  dCor {row['dcor']:.3f}  binned DP {row['binned_dp']:.3f}  "
            f"fairret stat {row['fairret_stat']:.4f}  train acc {row['train_accuracy']:.4f} "
            f"HGR {row['train_hgr']:.3f}",
            flush=True,
        )
    s = summarise(rows, zs, test)
    s.update(seconds=seconds, load_average_at_start=load, steps=args.steps, **extra)
    print(f"{label} seed {seed}: {len(lams)} models in {seconds:.1f} s, load {load}")
    print(json.dumps({k: s[k] for k in ("chosen_on_train", "best_on_test_front")}))
    return rows, s


def main() -> None:
    args, chosen = parse_args()
    if args.render:
        merge_and_write([], {}, {}, stem(args))
        return
    train, test = adult_with_age()
    sub = np.asarray(jax.random.choice(jax.random.key(1), len(test[1]), (4000,), replace=False))
    labels = {
        n: n if n == "fairret" or not args.hidden else f"{n}-mlp{args.hidden}" for n in chosen
    }
    rows, summary, commands = [], {}, {}
    quick = stem(args).endswith("_quick")
    for name, label in labels.items():
        lams = GRIDS[name][1 if args.full else 0]
        if args.lams is not None:
            lams = [float(x) for x in args.lams.split(",")]
        if lams[0] != 0.0:
            lams = [0.0, *lams]
        seeds = [0] if name == "fairret" else [int(x) for x in args.seeds.split(",")]
        for seed in seeds:
            mine, s = run_one(name, label, lams, seed, args, (train, test, sub))
            rows += mine
            summary[label if seed == 0 else f"{label}:{seed}"] = s
        commands[label if seeds == [0] else f"{label}:{args.seeds}"] = (
            "python benchmarks/continuous_attribute.py "
            f"--penalties {name} --steps {args.steps}"
            + ("" if quick else f" --lams {','.join(f'{x:g}' for x in lams)}")
            + (f" --seeds {args.seeds}" if seeds != [0] else "")
            + (f" --hidden {args.hidden}" if args.hidden and name != "fairret" else "")
            + (" --fairret-python path/to/python" if name == "fairret" else "")
        )
    merge_and_write(rows, summary, commands, stem(args))


def stem(args) -> str:
    """The results file: ``_quick`` for the default grids, so they never replace the fronts."""
    quick = not (args.full or args.lams is not None or args.render)
    return f"continuous_attribute_{jax.default_backend()}" + ("_quick" if quick else "")


def merge_and_write(rows, summary, commands, file_stem) -> None:
    """Replaces the fronts (penalty, seed) just run in the results file, read now (runs may
    overlap)."""
    tag = jax.default_backend()
    path = RESULTS / f"{file_stem}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    if any("fairret_stat" not in r for r in old.get("rows", [])):
        old = {}  # a results file of an older version of this script: start afresh
    done = {(r["penalty"], r["seed"]) for r in rows}
    rows = [r for r in old.get("rows", []) if (r["penalty"], r["seed"]) not in done] + rows
    summary = {**old.get("summary", {}), **summary}
    write(rows, summary, {**old.get("commands", {}), **commands}, tag, file_stem)


def write(rows, summary, commands, tag, file_stem) -> None:
    RESULTS.mkdir(exist_ok=True)
    rows = sorted(rows, key=lambda r: (r["penalty"], r["seed"], r["lam"]))
    meta = {"jax": jax.__version__, "platform": platform.platform(), "backend": tag}
    meta["python"] = sys.version.split()[0]
    out = {"meta": meta, "commands": commands, "rows": rows, "summary": summary}
    (RESULTS / f"{file_stem}.json").write_text(json.dumps(out, indent=1))
    lines = [
        "# Continuous attribute: Adult, age (logistic regression without the age column)",
        "",
        "Commands: "
        + "; ".join(f"`{c}`" for c in commands.values())
        + f" (jax {meta['jax']}, {tag}).",
        "",
        "Front (test split; HGR, HSIC and dCor of the predicted probabilities and age):",
        "",
        "| penalty | seed | lam | test accuracy | test HGR | HGR reduction | HSIC (normalised) "
        "| dCor | binned DP (age quartiles) | fairret statistic | train accuracy | train HGR |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['penalty']} | {r['seed']} | {r['lam']:.3g} | {r['accuracy']:.4f} | "
            f"{r['hgr']:.3f} | {r['hgr_reduction_pct']:.1f}% | {r['hsic']:.4f} | "
            f"{r['dcor']:.3f} | {r['binned_dp']:.3f} | {r['fairret_stat']:.4f} | "
            f"{r['train_accuracy']:.4f} | "
            f"{r['train_hgr']:.3f} |"
        )
    lines += [
        "",
        "Chosen on the training rows (most accurate on train with train HGR <= 30% of the "
        "unpenalised model's), scored on test; 95% intervals from 200 paired bootstrap "
        "resamples of the test rows:",
        "",
        "| penalty | base accuracy | base HGR | chosen lam | test accuracy | cost (points) [95%] "
        "| HGR reduction [95%] | best on the test front: lam, cost, reduction | sweep s | "
        "load average |",
        "|---|---:|---:|---:|---:|---|---|---|---:|---|",
    ]
    for name, s in summary.items():
        c, b = s["chosen_on_train"], s["best_on_test_front"]
        chosen = "none | - | - | -"
        if c is not None:
            lo, hi = c["cost_points_95"]
            rlo, rhi = c["hgr_reduction_pct_95"]
            chosen = (
                f"{c['lam']:.3g} | {c['accuracy']:.4f} | {c['accuracy_cost_points']:.2f} "
                f"[{lo:.2f}, {hi:.2f}] | {c['hgr_reduction_pct']:.1f}% [{rlo:.1f}, {rhi:.1f}]"
            )
        best = (
            "none"
            if b is None
            else (f"{b['lam']:.3g}, {b['accuracy_cost_points']:.2f}, {b['hgr_reduction_pct']:.1f}%")
        )
        load = ", ".join(f"{x:.1f}" for x in s["load_average_at_start"])
        lines.append(
            f"| {name} | {s['base_accuracy']:.4f} | {s['base_hgr']:.3f} | {chosen} | {best} | "
            f"{s['seconds']:.0f} | {load} |"
        )
    lines += seed_lines(summary)
    (RESULTS / f"{file_stem}.md").write_text("\n".join(lines) + "\n")


def seed_lines(summary) -> list[str]:
    """Mean and spread over the seeds of each front that has several (HSIC feature keys)."""
    fronts: dict[str, list] = {}
    for key, s in summary.items():
        fronts.setdefault(key.split(":")[0], []).append(s["chosen_on_train"])
    lines = []
    for label, chosen in fronts.items():
        if len(chosen) < 2:
            continue
        found = [c for c in chosen if c is not None]
        line = f"{label}, the model chosen on train, over {len(chosen)} seeds: "
        if len(found) < len(chosen):
            line += f"{len(chosen) - len(found)} found none; "
        if found:
            cost = np.array([c["accuracy_cost_points"] for c in found])
            red = np.array([c["hgr_reduction_pct"] for c in found])
            lams = ", ".join(f"{c['lam']:g}" for c in found)
            line += (
                f"cost {cost.mean():.2f} points (range {cost.min():.2f}-{cost.max():.2f}), "
                f"HGR reduction {red.mean():.1f}% (range {red.min():.1f}-{red.max():.1f}); "
                f"chosen lam {lams}."
            )
        lines += ["", line]
    return lines


if __name__ == "__main__":
    main()
