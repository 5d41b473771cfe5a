"""fairjax: fair machine learning in JAX.

Fairness metrics, differentiable penalties, constraints and post-processing as pure functions on
arrays: they jit-compile, differentiate, vmap and shard, and compose with optax and ott-jax.
"""

from fairjax import groups, metrics

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "groups", "metrics"]
