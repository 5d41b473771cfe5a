"""fairjax: fair machine learning in JAX.

Fairness metrics, differentiable penalties, constraints and post-processing as pure functions on
arrays: they jit-compile, differentiate, vmap and shard, and compose with optax and ott-jax.
Optional layers (``fairjax.sklearn``, ``fairjax.plotting``) are imported on their own, as they
need the scikit-learn and matplotlib extras.
"""

from fairjax import (
    criteria,
    datasets,
    ferm,
    groups,
    kernels,
    losses,
    metrics,
    ot1d,
    penalties,
    postprocessing,
    representation,
    training,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    "criteria",
    "datasets",
    "ferm",
    "groups",
    "kernels",
    "losses",
    "metrics",
    "ot1d",
    "penalties",
    "postprocessing",
    "representation",
    "training",
]
