"""Accuracy vs demographic parity on Adult: a vmapped Pareto sweep, fairlearn points overlaid.

Trains 32 logistic regressions (:func:`fairjax.training.logistic_regression`) at once
(``jax.vmap`` over the penalty weight of the smooth DP gap,
:func:`fairjax.training.pareto_sweep`), evaluates each on the test split, and draws the
front with :func:`fairjax.plotting.pareto_front`. With ``--fairlearn``, fairlearn's
``ExponentiatedGradient(LogisticRegression(), DemographicParity(difference_bound=b))`` is fit
for a few bounds and overlaid (slow: tens of seconds per bound).

Usage::

    python examples/pareto_sweep.py                       # writes pareto_sweep.png
    python examples/pareto_sweep.py --fairlearn --out front.png
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, metrics, plotting, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-lams", type=int, default=32)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--out", default="pareto_sweep.png")
    parser.add_argument("--fairlearn", action="store_true", help="overlay ExponentiatedGradient")
    args = parser.parse_args()

    data = datasets.load_adult()
    G = data.num_groups
    train, test = data.batch("train"), data.batch("test")

    # A linear logistic regression (logit X w + b) with the smooth demographic-parity gap as
    # penalty, in `model=` style: the model runs once per step and the loss and the penalty take
    # its outputs. Any function of a parameter PyTree can take its place (see flax_fair.py).
    model, loss_fn, dp_penalty = training.logistic_regression(G, l2=0.0, temperature=0.5)

    params = {"w": jnp.zeros(train[0].shape[1]), "b": jnp.zeros(())}
    lams = jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.01, 10.0, args.num_lams - 1)])
    start = time.perf_counter()
    sweep = training.pareto_sweep(
        loss_fn,
        dp_penalty,
        params,
        train,
        lams,
        optimizer=optax.adam(0.05),
        num_steps=args.steps,
        model=model,
    )
    jax.block_until_ready(sweep.params)
    print(f"{args.num_lams} models in one vmapped program: {time.perf_counter() - start:.2f} s")

    @jax.vmap
    def evaluate(p):
        logits, _ = model(p, test)
        pred = (logits > 0).astype(jnp.float32)
        dp = metrics.demographic_parity_difference(pred, test[2], num_groups=G)
        return jnp.mean(pred == test[1]), dp

    acc, dp = (np.asarray(a) for a in evaluate(sweep.params))
    for lam, a, d in zip(np.asarray(lams), acc, dp, strict=True):
        print(f"lambda {lam:8.3f}  accuracy {a:.4f}  DP gap {d:.4f}")

    reference = None
    if args.fairlearn:
        from fairlearn.reductions import DemographicParity, ExponentiatedGradient
        from sklearn.linear_model import LogisticRegression

        ref_u, ref_a = [], []
        Xtr, Xte = data.X_train.astype(np.float64), data.X_test.astype(np.float64)
        for bound in (0.01, 0.03, 0.1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                eg = ExponentiatedGradient(
                    LogisticRegression(max_iter=1000), DemographicParity(difference_bound=bound)
                ).fit(Xtr, data.y_train, sensitive_features=data.groups_train)
            pred = eg.predict(Xte, random_state=0).astype(np.float32)
            ref_a.append(float(np.mean(pred == data.y_test)))
            ref_u.append(
                float(metrics.demographic_parity_difference(pred, data.groups_test, num_groups=G))
            )
            print(f"ExponentiatedGradient bound {bound}: acc {ref_a[-1]:.4f}, DP {ref_u[-1]:.4f}")
        reference = {"fairlearn ExponentiatedGradient": (ref_u, ref_a)}

    plotting.pareto_front(
        dp, acc, reference=reference, name="fairjax penalised sweep", path=args.out
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
