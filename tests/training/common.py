"""Shared data, models and NumPy references of the tests of fairjax.training."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, metrics, penalties


@functools.lru_cache
def _data():
    d = datasets.make_classification(
        jax.random.key(0), n_samples=600, n_features=4, num_groups=2, bias=1.0
    )
    train = (
        jnp.asarray(d.X_train),
        jnp.asarray(d.y_train, jnp.float32),
        jnp.asarray(d.groups_train),
    )
    test = (jnp.asarray(d.X_test), jnp.asarray(d.y_test, jnp.float32), jnp.asarray(d.groups_test))
    return train, test


def _logits(p, X):
    return X @ p["w"] + p["b"]


def _loss(p, batch):
    X, y, _ = batch
    return optax.sigmoid_binary_cross_entropy(_logits(p, X), y).mean() + 1e-3 * p["w"] @ p["w"]


def _penalty(p, batch):
    X, _, s = batch
    return penalties.sigmoid_rate_difference(_logits(p, X), s, num_groups=2)


def _hard_dp(p, batch):
    X, _, s = batch
    pred = (_logits(p, X) > 0).astype(jnp.float32)
    return metrics.demographic_parity_difference(pred, s, num_groups=2)


def _p0(d=4):
    return {"w": jnp.zeros(d), "b": jnp.zeros(())}


def _model(p, batch):
    return _logits(p, batch[0]), p


def _loss_out(out, batch):
    z, p = out
    return optax.sigmoid_binary_cross_entropy(z, batch[1]).mean() + 1e-3 * p["w"] @ p["w"]


def _penalty_out(out, batch):
    return penalties.sigmoid_rate_difference(out[0], batch[2], num_groups=2)


def _hard_dp_out(out, batch):
    pred = (out[0] > 0).astype(jnp.float32)
    return metrics.demographic_parity_difference(pred, batch[2], num_groups=2)


def _count_products_with(X, fn, *args):
    """Matrix products in ``fn``'s jaxpr (nested calls included) that read the matrix ``X``."""

    def subjaxprs(params):
        for value in params.values():
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(v, "eqns"):
                    yield v
                elif hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                    yield v.jaxpr

    def count(jx):
        total = 0
        for eqn in jx.eqns:
            if eqn.primitive.name == "dot_general":
                total += any(getattr(x.aval, "shape", None) == X.shape for x in eqn.invars)
            total += sum(count(sub) for sub in subjaxprs(eqn.params))
        return total

    return count(jax.make_jaxpr(fn)(*args).jaxpr)


def _linear(p, batch):
    return batch[0] @ p["w"] + p["b"]


def _biased_start():
    """A start away from zero: its decisions differ between the groups from step 0."""
    return {"w": jnp.asarray([1.0, 0.5, -0.5, 0.2]), "b": jnp.asarray(0.3)}


def _biased(num_groups, seed=0):
    d = datasets.make_classification(
        jax.random.key(seed), n_samples=3000, n_features=4, num_groups=num_groups, bias=1.0
    )
    return d.batch("train"), d.batch("test")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _rate_step_reference(params, X, y, s, w, mu, lr, conditions):
    """One gradient step on the reduction's surrogate, in NumPy: row i's cost is
    w_i (1 - 2 y_i) / W plus, for the condition that counts it, nu_{s_i} w_i / W_{s_i}."""
    cost = w * (1 - 2 * y) / w.sum()
    for c, value in enumerate(conditions):
        rows = w * (np.ones_like(y) if value is None else (y == value))
        group_w = np.bincount(s, weights=rows, minlength=2)
        nu = mu[c].sum(1) - mu[c].sum(0)
        cost = cost + nu[s] * rows / group_w[s]
    labels = (cost < 0).astype(float)
    r = np.abs(cost) * (_sigmoid(X @ params["w"] + params["b"]) - labels)
    return {"w": params["w"] - lr * (X.T @ r), "b": params["b"] - lr * r.sum()}


def _rate_gaps_reference(params, X, y, s, w, conditions):
    decisions = (X @ params["w"] + params["b"] > 0).astype(float)
    gaps = []
    for value in conditions:
        rows = w * (np.ones_like(y) if value is None else (y == value))
        rates = np.array([(rows * decisions)[s == g].sum() / rows[s == g].sum() for g in (0, 1)])
        gaps.append(rates[:, None] - rates[None, :])
    return np.stack(gaps)


_RATE_METRICS = {
    "demographic_parity": lambda y, pred, s, G: metrics.demographic_parity_difference(
        pred, s, num_groups=G
    ),
    "equal_opportunity": lambda y, pred, s, G: metrics.equal_opportunity_difference(
        y, pred, s, num_groups=G
    ),
    "equalized_odds": lambda y, pred, s, G: metrics.equalized_odds_difference(
        y, pred, s, num_groups=G
    ),
}


def _decisions(params, X):
    return (X @ np.asarray(params["w"]) + np.asarray(params["b"]) > 0).astype(np.float32)


def _expected_best(res_last, X, y, w, bound):
    """The step ``iterate="best"`` must pick, from an ``iterate="last"`` run: among the iterates
    each step starts from and the last one, those with a gap <= bound, the earliest of lowest
    weighted error (recomputed here for the last iterate, exact for integer weights)."""
    pred = _decisions(res_last.params, X)
    last_error = np.float32(np.sum(w * (pred != y))) / np.float32(w.sum())
    errors = np.append(res_last.history["error"], last_error)
    gaps = np.append(res_last.history["constraint"], np.float32(res_last.train_constraint))
    feasible = np.flatnonzero(gaps <= bound)
    return errors, gaps, feasible, int(feasible[np.argmin(errors[feasible])])


def _lp_by_vertices(errors, gaps, bound):
    """min q @ errors over the simplex with q @ gaps <= bound, by enumerating the vertices of
    the feasible set (each: J linearly independent active constraints, the sum to 1 among
    them), in NumPy: the reference of the mixture's linear program."""
    import itertools

    num, m = gaps.shape
    rows = np.vstack([-np.eye(num), gaps.T])  # -q_j <= 0 and q @ gaps <= bound
    rhs = np.concatenate([np.zeros(num), np.full(m, bound)])
    best = np.inf
    for active in itertools.combinations(range(num + m), num - 1):
        A = np.vstack([np.ones(num), rows[list(active)]])
        if abs(np.linalg.det(A)) < 1e-12:
            continue
        q = np.linalg.solve(A, np.concatenate([[1.0], rhs[list(active)]]))
        if np.all(rows @ q <= rhs + 1e-12):
            best = min(best, q @ errors)
    return best


def _minibatches(data, batch_size, num_batches, seed=0):
    """A stream of ``num_batches`` random mini-batches of ``data`` (rows without replacement)."""
    rng = np.random.default_rng(seed)
    n = data[0].shape[0]
    for _ in range(num_batches):
        idx = rng.choice(n, batch_size, replace=False)
        yield tuple(x[idx] for x in data)
