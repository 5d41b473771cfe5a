"""Command line: ``fairjax demo`` (also ``python -m fairjax demo``)."""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, ferm, metrics, postprocessing

__all__ = ["main"]


def _logistic_regression(
    X: jax.Array, y: jax.Array, *, steps: int = 500, learning_rate: float = 0.05, l2: float = 1e-4
) -> dict[str, jax.Array]:
    """Full-batch logistic regression trained with optax (Adam), the whole loop jitted."""
    params = {"w": jnp.zeros(X.shape[1], X.dtype), "b": jnp.zeros((), X.dtype)}
    optimizer = optax.adam(learning_rate)

    def loss(p):
        logits = X @ p["w"] + p["b"]
        return optax.sigmoid_binary_cross_entropy(logits, y).mean() + l2 * p["w"] @ p["w"]

    def step(carry, _):
        p, state = carry
        grads = jax.grad(loss)(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return params


def _timed(fn: Callable, *args, **kwargs):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - start


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(f"{c:>{w}}" for c, w in zip(r, widths, strict=True)))


def demo(*, bootstrap_resamples: int = 500, seed: int = 0) -> dict[str, float]:
    """Trains a logistic regression on Adult with optax and prints accuracy and fairness.

    Returns the overall figures, for tests and scripts.
    """
    print(
        f"fairjax demo  (jax {jax.__version__}, {jax.devices()[0].platform} x{jax.device_count()})"
    )
    print("Data: UCI Adult (embedded copy), sensitive attribute: sex; task: income > 50K\n")

    data, t_load = _timed(datasets.load_adult)
    X_train, y_train = jnp.asarray(data.X_train), jnp.asarray(data.y_train, jnp.float32)
    X_test, y_test = jnp.asarray(data.X_test), jnp.asarray(data.y_test)
    s_test = jnp.asarray(data.groups_test)
    G = data.num_groups

    fit = jax.jit(_logistic_regression)
    params, t_compile_fit = _timed(fit, X_train, y_train)
    params, t_fit = _timed(fit, X_train, y_train)
    y_pred = (X_test @ params["w"] + params["b"] > 0).astype(jnp.int32)

    # Linear FERM (Donini et al., 2018): the same kind of linear model, trained with optax under
    # the exact equal-opportunity constraint <w, u> = 0 (hinge loss, C = 0.1).
    def fit_ferm():
        return ferm.fit_linear(
            data.X_train, data.y_train, data.groups_train, num_groups=G, C=0.1, loss="hinge"
        )

    model, t_compile_ferm = _timed(fit_ferm)
    model, t_ferm = _timed(fit_ferm)
    y_ferm = (ferm.decision_function(model, X_test) > 0).astype(jnp.int32)

    # Wasserstein-barycenter post-processing (Chzhen et al., 2020): the logistic model's scores
    # are mapped onto the barycenter of the groups' score distributions (demographic parity),
    # calibrated on the (unlabelled) training scores.
    def post_process():
        score_train = jax.nn.sigmoid(X_train @ params["w"] + params["b"])
        score_test = jax.nn.sigmoid(X_test @ params["w"] + params["b"])
        state = postprocessing.fit_barycenter(
            score_train, data.groups_train, num_groups=G, key=jax.random.key(seed)
        )
        fair = postprocessing.apply_barycenter(
            state, score_test, s_test, key=jax.random.key(seed + 1)
        )
        return score_test, fair

    (score_test, score_fair), t_post = _timed(post_process)
    y_post = (score_fair > 0.5).astype(jnp.int32)

    def evaluate():
        table = metrics.by_group(y_test, y_pred, s_test, num_groups=G)
        overall = metrics.by_group(y_test, y_pred, jnp.zeros_like(s_test), num_groups=1)
        return table, overall

    (table, overall), t_eval = _timed(evaluate)

    print(
        f"Logistic regression, unconstrained (optax Adam, {X_train.shape[0]:,} x "
        f"{X_train.shape[1]} train, {X_test.shape[0]:,} test rows)\n"
    )
    header = ["group", "count", "accuracy", "selection", "TPR", "FPR"]
    rows = []
    named = [("overall", overall, 0)] + [(n, table, i) for i, n in enumerate(data.group_names)]
    for name, stats, g in named:
        rows.append(
            [
                name,
                f"{int(stats['count'][g]):,}",
                f"{float(stats['accuracy'][g]):.4f}",
                f"{float(stats['selection_rate'][g]):.4f}",
                f"{float(stats['tpr'][g]):.4f}",
                f"{float(stats['fpr'][g]):.4f}",
            ]
        )
    _print_table(header, rows)

    key = jax.random.key(seed)
    fairness = {
        "demographic parity difference": (
            functools.partial(metrics.demographic_parity_difference, num_groups=G),
            (y_pred, s_test),
        ),
        "demographic parity ratio": (
            functools.partial(metrics.demographic_parity_ratio, num_groups=G),
            (y_pred, s_test),
        ),
        "equal opportunity difference (DEO)": (
            functools.partial(metrics.equal_opportunity_difference, num_groups=G),
            (y_test, y_pred, s_test),
        ),
        "equalized odds difference": (
            functools.partial(metrics.equalized_odds_difference, num_groups=G),
            (y_test, y_pred, s_test),
        ),
    }
    print(f"\nFairness on the test set (95% bootstrap interval, {bootstrap_resamples} resamples)\n")
    rows, results = [], {}
    start = time.perf_counter()
    for name, (fn, args) in fairness.items():
        key, sub = jax.random.split(key)
        res = metrics.bootstrap(fn, *args, key=sub, num_resamples=bootstrap_resamples)
        results[name] = float(res.estimate)
        rows.append(
            [
                name,
                f"{float(res.estimate):.4f}",
                f"[{float(res.lower):.4f}, {float(res.upper):.4f}]",
            ]
        )
    t_boot = time.perf_counter() - start
    _print_table(["metric", "value", "95% interval"], rows)

    print("\nMitigation (test set): linear FERM for equal opportunity (Donini et al. 2018),")
    print("barycenter post-processing for demographic parity (Chzhen et al. 2020)\n")
    rows = []
    zeros = jnp.zeros_like(s_test)
    models = [
        ("logistic regression", y_pred, score_test),
        ("linear FERM, hinge, C=0.1", y_ferm, ferm.decision_function(model, X_test)),
        ("logistic + barycenter post-processing", y_post, score_fair),
    ]
    for name, pred, score in models:
        acc = metrics.by_group(y_test, pred, zeros, num_groups=1)["accuracy"][0]
        deo = metrics.equal_opportunity_difference(y_test, pred, s_test, num_groups=G)
        dp = metrics.demographic_parity_difference(pred, s_test, num_groups=G)
        ks = metrics.ks_unfairness(score, s_test, num_groups=G)
        rows.append(
            [name, f"{float(acc):.4f}", f"{float(deo):.4f}", f"{float(dp):.4f}", f"{float(ks):.4f}"]
        )
        results[f"{name}: accuracy"], results[f"{name}: DEO"] = float(acc), float(deo)
        results[f"{name}: DP"], results[f"{name}: KS"] = float(dp), float(ks)
    _print_table(["model", "accuracy", "DEO", "DP difference", "KS of scores"], rows)
    print(
        "Each method narrows the gap it targets; parity of selection rates and equal true-positive"
        "\nrates are different criteria, and enforcing one can widen the other."
    )

    print("\nTimings")
    _print_table(
        ["step", "seconds"],
        [
            ["load Adult", f"{t_load:.3f}"],
            ["logistic regression (compile + first run)", f"{t_compile_fit:.3f}"],
            ["logistic regression (compiled)", f"{t_fit:.3f}"],
            ["linear FERM (compile + first run)", f"{t_compile_ferm:.3f}"],
            ["linear FERM (compiled)", f"{t_ferm:.3f}"],
            ["barycenter post-processing (fit + apply)", f"{t_post:.3f}"],
            ["per-group table", f"{t_eval:.3f}"],
            [f"bootstrap, 4 metrics x {bootstrap_resamples}", f"{t_boot:.3f}"],
        ],
    )
    results["accuracy"] = float(overall["accuracy"][0])
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fairjax`` console script."""
    parser = argparse.ArgumentParser(prog="fairjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="train on Adult and print accuracy and fairness")
    p_demo.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples")
    p_demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        np.set_printoptions(precision=4)
        demo(bootstrap_resamples=args.bootstrap, seed=args.seed)
    return 0
