"""fairret's side of the continuous-attribute benchmark: Adult with age, in PyTorch.

Runs in a Python environment with ``torch`` and ``fairret`` (it needs neither JAX nor
fairjax): ``benchmarks/continuous_attribute.py --fairret-python PATH`` writes the split it uses
to an ``.npz`` file, calls this script with that Python, and measures the saved logits with
fairjax's metrics, so both libraries' models are scored on the same rows by the same code.

fairret (Buyl, Defrance, De Bie, 2024) takes a sensitive feature matrix ``sens`` of shape
``(N, S)`` whose columns need not be one-hot: with one continuous, non-negative column
:math:`s` the ``PositiveRate`` statistic is the :math:`s`-weighted mean of the predicted
probabilities :math:`p_i = \\sigma(f_i)`, and ``NormLoss`` penalises its relative gap to the
overall rate,

.. math::

    \\Big| \\frac{\\sum_i s_i p_i / \\sum_i s_i}{\\bar p} - 1 \\Big|
    = \\frac{|\\operatorname{cov}(s, p)|}{\\bar s\\, \\bar p},

a normalised covariance: the linear statistic fairret supports for a continuous attribute. Age
enters as one column, min-max scaled to [0, 1] on the training rows (non-negative, so the
weighted rate is defined; an increasing affine map only rescales the penalty).

The model matches fairjax's side: logistic regression (``torch.nn.Linear``, zero
initialisation), full-batch Adam with the same learning rate and number of steps, binary
cross-entropy + ``lam`` x ``NormLoss(PositiveRate())``. For each ``lam`` it saves the logits
on the training and test rows (``logits_train_<k>.npy``, ``logits_test_<k>.npy``) and a
``fairret_run.json`` with the weights, versions and timings.

Usage::

    python benchmarks/continuous_attribute_fairret.py --split split.npz --out DIR \\
        --lams 0,1,3,10 --steps 600 --lr 0.05
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import pathlib
import time

import numpy as np


def train_one(X, y, sens, lam, *, steps, lr):
    """Logistic regression with BCE + lam * fairret's NormLoss(PositiveRate()), full batch."""
    import torch
    from fairret.loss import NormLoss
    from fairret.statistic import PositiveRate

    model = torch.nn.Linear(X.shape[1], 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    fairret_loss = NormLoss(PositiveRate())
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    bce = torch.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        logit = model(X)
        loss = bce(logit, y)
        if lam > 0:
            loss = loss + lam * fairret_loss(logit, sens)
        loss.backward()
        optimizer.step()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help=".npz written by continuous_attribute.py")
    parser.add_argument("--out", required=True, help="folder for the logits")
    parser.add_argument("--lams", required=True, help="comma-separated penalty weights")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch  # here, so that the module imports (and is collected) without torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    data = np.load(args.split)
    X = torch.tensor(data["X_train"], dtype=torch.float32)
    y = torch.tensor(data["y_train"], dtype=torch.float32)[:, None]
    age = data["s_train"].astype(np.float64)
    lo, hi = age.min(), age.max()
    sens = torch.tensor((age - lo) / (hi - lo), dtype=torch.float32)[:, None]
    X_test = torch.tensor(data["X_test"], dtype=torch.float32)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lams = [float(x) for x in args.lams.split(",")]
    seconds = []
    for k, lam in enumerate(lams):
        start = time.perf_counter()
        model = train_one(X, y, sens, lam, steps=args.steps, lr=args.lr)
        seconds.append(time.perf_counter() - start)
        with torch.no_grad():
            np.save(out / f"logits_train_{k}.npy", model(X)[:, 0].numpy())
            np.save(out / f"logits_test_{k}.npy", model(X_test)[:, 0].numpy())
        print(f"fairret lam={lam:g}: {seconds[-1]:.1f} s", flush=True)
    run = {
        "lams": lams,
        "steps": args.steps,
        "lr": args.lr,
        "torch_threads": args.threads,
        "seconds_per_model": seconds,
        "fairret": importlib.metadata.version("fairret"),
        "torch": torch.__version__,
        "sens": "age, min-max scaled to [0, 1] on the training rows, one column",
        "loss": "BCEWithLogits + lam * NormLoss(PositiveRate()) (p=1)",
        "load_average": list(os.getloadavg()),
    }
    (out / "fairret_run.json").write_text(json.dumps(run, indent=1))


if __name__ == "__main__":
    main()
