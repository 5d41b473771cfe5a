"""A Flax (NNX) network trained fair on Adult with optax and a fairjax penalty.

A one-hidden-layer MLP written with ``flax.nnx`` is split into a static graph and a parameter
PyTree (``nnx.split``); the pure function ``params -> logits`` then goes through the same
fairjax training loop as any JAX model: the task loss (logistic) plus ``lam`` times the smooth
demographic-parity gap :func:`fairjax.penalties.sigmoid_rate_difference`, composed by
:func:`fairjax.training.penalized` and minimised with optax Adam by
:func:`fairjax.training.fit` (mini-batches, one compiled program per epoch). It trains the
network with ``lam = 0`` and with ``--lam`` and reports test accuracy and the DP difference.

Flax is not a fairjax dependency: ``pip install flax`` to run this example.

Usage::

    python examples/flax_fair.py
    python examples/flax_fair.py --lam 5 --epochs 30
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from fairjax import datasets, metrics, penalties, training


class MLP(nnx.Module):
    """``x -> w2 . relu(W1 x + b1) + b2``: one logit per row."""

    def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(in_features, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(nnx.relu(self.hidden(x)))[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=32)
    args = parser.parse_args()

    data = datasets.load_adult()
    G = data.num_groups
    train, (X_test, y_test, s_test) = data.batch("train"), data.batch("test")

    model = MLP(train[0].shape[1], args.hidden, rngs=nnx.Rngs(0))
    graphdef, params0 = nnx.split(model)  # static structure + a PyTree of arrays

    def logits(params, X):
        return nnx.merge(graphdef, params)(X)

    # With `model=`, the loss and the penalty take the model's outputs: the network runs once
    # per step for both (one forward and one backward pass).
    def model_fn(params, batch):
        return logits(params, batch[0])

    def loss_fn(z, batch):
        return optax.sigmoid_binary_cross_entropy(z, batch[1]).mean()

    def penalty_fn(z, batch):
        return penalties.sigmoid_rate_difference(z, batch[2], num_groups=G, temperature=0.5)

    print(f"Adult: {train[0].shape[0]} x {train[0].shape[1]}, flax.nnx MLP ({args.hidden} hidden)")
    for lam in (0.0, args.lam):
        start = time.perf_counter()
        result = training.fit(
            training.penalized(loss_fn, penalty_fn, lam, model=model_fn),
            params0,
            train,
            optimizer=optax.adam(3e-3),
            num_epochs=args.epochs,
            batch_size=args.batch_size,
            key=jax.random.key(1),
            progress=False,
        )
        seconds = time.perf_counter() - start
        pred = (logits(result.state.params, X_test) > 0).astype(jnp.float32)
        acc = float(jnp.mean(pred == y_test))
        dp = float(metrics.demographic_parity_difference(pred, s_test, num_groups=G))
        print(
            f"lam={lam:<4g} test accuracy {acc:.4f}  test DP difference {dp:.4f}  "
            f"({args.epochs} epochs, {seconds:.1f} s with compilation)"
        )


if __name__ == "__main__":
    main()
