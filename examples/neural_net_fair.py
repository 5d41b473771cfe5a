"""A Flax (NNX) or Equinox network trained fair on Adult with optax and a fairjax penalty.

The network is split into a static part and a PyTree of arrays (``nnx.split`` for Flax,
``eqx.partition`` for Equinox); the pure function ``params -> logits`` then goes through the
same fairjax training loop as any JAX model: the task loss (logistic) plus ``lam`` times the
smooth demographic-parity penalty ``penalties.sigmoid_rate_difference``, mini-batched with
``training.fit``. The only framework-specific lines are the model's definition and split
(``flax_model`` and ``equinox_model`` below): the training and the metrics are the same.

It prints the test accuracy and demographic-parity difference without the penalty and with it.
Neither framework is a fairjax dependency: ``pip install flax`` or ``pip install equinox``.

Run (the data home holds the raw Adult files, see docs/datasets.md)::

    FAIRJAX_DATA_HOME=path/to/data python examples/neural_net_fair.py
    FAIRJAX_DATA_HOME=path/to/data python examples/neural_net_fair.py --framework equinox
    FAIRJAX_DATA_HOME=path/to/data python examples/neural_net_fair.py --lam 5 --epochs 30
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from fairjax import datasets, metrics, penalties, training


def flax_model(in_features: int, hidden: int) -> tuple[object, Callable]:
    """A one-hidden-layer ``flax.nnx`` MLP: its parameter PyTree and ``(params, X) -> logits``."""
    from flax import nnx

    class MLP(nnx.Module):
        """``x -> w2 . relu(W1 x + b1) + b2``: one logit per row."""

        def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
            self.hidden = nnx.Linear(in_features, hidden, rngs=rngs)
            self.out = nnx.Linear(hidden, 1, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.out(nnx.relu(self.hidden(x)))[:, 0]

    graphdef, params = nnx.split(MLP(in_features, hidden, rngs=nnx.Rngs(0)))
    return params, lambda p, X: nnx.merge(graphdef, p)(X)


def equinox_model(in_features: int, hidden: int) -> tuple[object, Callable]:
    """A one-hidden-layer ``equinox.nn.MLP``: its array PyTree and ``(params, X) -> logits``."""
    import equinox as eqx

    mlp = eqx.nn.MLP(
        in_features, "scalar", hidden, depth=1, activation=jax.nn.relu, key=jax.random.key(0)
    )
    params, static = eqx.partition(mlp, eqx.is_array)
    return params, lambda p, X: jax.vmap(eqx.combine(p, static))(X)


MODELS = {"flax": flax_model, "equinox": equinox_model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=tuple(MODELS), default="flax")
    parser.add_argument("--lam", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=32)
    args = parser.parse_args()

    data = datasets.load_adult()
    G = data.num_groups
    train, (X_test, y_test, s_test) = data.batch("train"), data.batch("test")
    params0, logits = MODELS[args.framework](train[0].shape[1], args.hidden)

    # With `model=`, the loss and the penalty take the model's outputs: the network runs once
    # per step for both (one forward and one backward pass).
    def model_fn(params, batch):
        return logits(params, batch[0])

    def loss_fn(z, batch):
        return optax.sigmoid_binary_cross_entropy(z, batch[1]).mean()

    def penalty_fn(z, batch):
        return penalties.sigmoid_rate_difference(z, batch[2], num_groups=G, temperature=0.5)

    shape = f"{train[0].shape[0]} x {train[0].shape[1]}"
    print(f"Adult: {shape}, {args.framework} MLP ({args.hidden} hidden)")
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
