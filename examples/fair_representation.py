"""Fair and transferable representations on Adult (Oneto et al., NeurIPS 2020, in spirit).

Protocol (documented in docs/representation.md):

- data: ``fairjax.datasets.load_adult(include_sensitive=False)`` (30,162 train / 15,060 test
  rows, standard split), sensitive attribute sex (Female = 0, Male = 1). The columns the tasks
  are built from are removed from the inputs: ``hours-per-week``, ``education-num`` and the
  ``education=...`` one-hots (84 input features remain).
- representation-learning tasks (two heads on a shared MLP representation):
  T1 "works more than 40 h/week" (the standardised ``hours-per-week`` above its mode, 40 h) and
  T2 "holds a Bachelor's degree or higher" (Bachelors, Masters, Prof-school, Doctorate).
- transfer task (never seen while learning the representation): the usual Adult target,
  income > 50K. The representation is frozen and a new logistic head is fitted on it
  (``fairjax.representation.transfer``).
- model: MLP 84 -> 64 -> 16 (ReLU), two logistic heads, Adam, mini-batches of 512 rows,
  penalty ``lam * D`` with D = ``penalties.mmd`` (Gaussian kernel, median heuristic, pooled
  reference) or ``penalties.sinkhorn`` (epsilon = 0.1 x mean cost), several seeds.

Reported on the test rows: accuracy and demographic-parity difference (DP) of the two training
heads, and accuracy, DP and equal-opportunity difference (DEO) of the transferred income head.

Run:  FAIRJAX_DATA_HOME=/path/to/data python examples/fair_representation.py
      [--penalty mmd|sinkhorn] [--lams 0 1 10] [--seeds 0 1 2] [--steps 1500]
      [--batch-size 512]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax

from fairjax import metrics
from fairjax import representation as rep
from fairjax.datasets import load_adult

BACHELOR_OR_MORE = ("Bachelors", "Masters", "Prof-school", "Doctorate")


def build_tasks(data):
    """Inputs without the task columns, the two training tasks and the transfer task."""
    names = list(data.feature_names)
    hours = names.index("hours-per-week")
    # The standardised column is discrete; its mode is 40 hours a week.
    values, counts = np.unique(data.X_train[:, hours], return_counts=True)
    forty = values[np.argmax(counts)]
    degree = [names.index(f"education={e}") for e in BACHELOR_OR_MORE]
    drop = {hours, names.index("education-num")} | {
        i for i, n in enumerate(names) if n.startswith("education=")
    }
    keep = [i for i in range(len(names)) if i not in drop]

    def split(X, y):
        tasks = np.c_[X[:, hours] > forty, X[:, degree].sum(axis=1) > 0].astype(np.int32)
        return X[:, keep].astype(np.float32), tasks, y.astype(np.int32)

    return split(data.X_train, data.y_train), split(data.X_test, data.y_test)


def run(train, test, *, penalty, lam, seed, steps, batch_size=512):
    (x_tr, t_tr, inc_tr, s_tr), (x_te, t_te, inc_te, s_te) = train, test
    key = jax.random.key(seed)
    k_init, k_train = jax.random.split(key)
    net = rep.init_mlp(k_init, (x_tr.shape[1], 64, 16))
    params = rep.init_params(net, rep_dim=16, num_tasks=2)
    batch = rep.multitask_batch(x_tr, t_tr, s_tr, num_groups=2)
    objective = rep.multitask_objective(
        rep.mlp, num_groups=2, lam=float(lam), penalty=penalty, l2=1e-4
    )
    t0 = time.perf_counter()
    res = rep.train(
        objective,
        params,
        batch,
        optimizer=optax.adam(1e-3),
        num_steps=steps,
        batch_size=batch_size,
        key=k_train,
    )
    res.losses.block_until_ready()
    seconds = time.perf_counter() - t0
    h_te = rep.mlp(res.params.representation, x_te)
    pred = np.asarray(h_te @ res.params.weights + res.params.bias > 0).astype(np.int32)
    out = {"seconds": seconds}
    for t in range(2):
        out[f"T{t + 1} acc"] = float(np.mean(pred[:, t] == t_te[:, t]))
        out[f"T{t + 1} DP"] = float(
            metrics.demographic_parity_difference(pred[:, t], s_te, num_groups=2)
        )
    tr = rep.transfer(
        rep.mlp,
        res.params.representation,
        (x_tr, inc_tr, s_tr),
        (x_te, inc_te, s_te),
        num_groups=2,
        num_steps=500,
    )
    out["income acc"] = float(tr.accuracy)
    out["income DP"] = float(tr.dp_difference)
    out["income DEO"] = float(tr.eo_difference)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--penalty", default="mmd", choices=("mmd", "sinkhorn"))
    parser.add_argument("--lams", type=float, nargs="+", default=[0.0, 1.0, 10.0, 100.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args(argv)

    data = load_adult(include_sensitive=False)
    (x_tr, t_tr, inc_tr), (x_te, t_te, inc_te) = build_tasks(data)
    train = (x_tr, t_tr, inc_tr, data.groups_train)
    test = (x_te, t_te, inc_te, data.groups_test)
    print(
        f"Adult: {x_tr.shape[0]} train / {x_te.shape[0]} test rows, {x_tr.shape[1]} features; "
        f"penalty={args.penalty}, steps={args.steps}, batch={args.batch_size}, seeds={args.seeds}"
    )
    cols = ["T1 acc", "T1 DP", "T2 acc", "T2 DP", "income acc", "income DP", "income DEO"]
    print(f"{'lambda':>8} | " + " | ".join(f"{c:>14}" for c in cols) + " | seconds/run")
    for lam in args.lams:
        rows = [
            run(
                train,
                test,
                penalty=args.penalty,
                lam=lam,
                seed=s,
                steps=args.steps,
                batch_size=args.batch_size,
            )
            for s in args.seeds
        ]
        cells = []
        for c in cols:
            vals = np.array([r[c] for r in rows])
            cells.append(f"{vals.mean():.3f} +- {vals.std():.3f}")
        secs = np.mean([r["seconds"] for r in rows])
        print(f"{lam:>8g} | " + " | ".join(f"{c:>14}" for c in cells) + f" | {secs:.1f}")


if __name__ == "__main__":
    main()
