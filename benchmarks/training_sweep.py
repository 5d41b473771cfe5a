"""Pareto sweep on Adult: 32 penalty weights in one vmapped program vs one training.

Logistic regression on the embedded UCI Adult split with the penalty
``lam * sigmoid_rate_difference(logits, T=0.5, reduction=...)`` (demographic parity),
``--steps`` full-batch Adam steps. :func:`fairjax.training.pareto_sweep` trains ``--num-lams``
models at once with ``jax.vmap``; the same function with one weight is "one training". Each is
timed after a warm-up call (compiled runs, best of ``--repeats``), and the first call
(compilation included) is reported too. The goal is a wall-time ratio (32 models / 1 model) of
at most 3. For scale, it also times the model's two products with ``X`` alone, for one model and
for all of them: the sweep computes these products and more, so their time over one whole
training is a measured reference floor for the ratio on the machine it runs on, and the
sweep's time over theirs (timed in the same rounds) is how far the sweep is from that floor.

It also compares each of the sweep's models with a separate training of the same weight, for
both reductions of the group gap: ``"squared"`` (smooth) and ``"max"`` (the largest gap, with a
kink where the gap changes sign), in float32 and in float64.

Writes ``benchmarks/results/training_sweep_<platform>.json`` and ``.md``.

Usage::

    python benchmarks/training_sweep.py
    python benchmarks/training_sweep.py --num-lams 64 --steps 1000 --reduction max
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, metrics, training

RESULTS = pathlib.Path(__file__).parent / "results"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args, **kwargs))
    return out, time.perf_counter() - start


def param_diffs(sweep, res_all, lams):
    """Largest |sweep model - separate training| over the parameters, for every weight."""
    diffs = []
    for k in range(len(lams)):
        single = sweep(lams[k : k + 1])
        diffs.append(max(float(jnp.max(jnp.abs(res_all[n][k] - single[n][0]))) for n in ("w", "b")))
    return np.asarray(diffs)


def hlo_summary(loss_fn, penalty_fn, opt, steps, model, p0, train, lams):
    """The dot products and scatters of the compiled sweep: their shapes show whether the K
    models' logits are one matmul ``(K, d) x (d, n)`` or K matvecs, and whether group
    statistics are contractions or per-model scatters."""

    def sweep(params, data, lam_values):  # the public sweep, lowered as one program
        return training.pareto_sweep(
            loss_fn,
            penalty_fn,
            params,
            data,
            lam_values,
            optimizer=opt,
            num_steps=steps,
            model=model,
        )

    text = jax.jit(sweep).lower(p0, train, lams).compile().as_text()
    dots = re.findall(r"= (\w+\[[\d,]*\])\S* dot\(", text)
    return {"dots": dots, "scatters": len(re.findall(r" scatter\(", text))}


def products_only(model, p0, train, num_models, steps):
    """A program of ``steps`` iterations that do nothing but the model's two products with
    ``X`` (forward, and backward with the logits as cotangent), vmapped over ``num_models``
    parameter sets as in the sweep, compiled and warmed up; returns a call that runs it once.
    A lower bound on the sweep's time on this machine (the sweep also evaluates the loss, the
    penalty and Adam)."""

    def run(params):
        def body(p, _):
            z, pull = jax.vjp(lambda q: model(q, train)[0], p)
            (g,) = pull(z)
            return jax.tree.map(lambda a, b: a - 1e-9 * b, p, g), None

        return jax.lax.scan(body, params, None, length=steps)[0]

    run = jax.jit(jax.vmap(run))
    params = jax.tree.map(lambda a: jnp.broadcast_to(a + 0.01, (num_models, *a.shape)), p0)
    jax.block_until_ready(run(params))
    return lambda: run(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-lams", type=int, default=32)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reduction",
        choices=("squared", "max"),
        default="squared",
        help="the penalty of the timed sweep (the agreement is measured for both)",
    )
    args = parser.parse_args()

    data = datasets.load_adult()
    G = data.num_groups
    train, (X_test, y_test, s_test) = data.batch("train"), data.batch("test")
    objectives = {
        r: training.logistic_regression(G, l2=1e-4, temperature=0.5, reduction=r)
        for r in ("squared", "max")
    }
    model, loss_fn, penalty_fn = objectives[args.reduction]
    p0 = {"w": jnp.zeros(train[0].shape[1]), "b": jnp.zeros(())}
    opt = optax.adam(0.05)
    lams = jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.01, 10.0, args.num_lams - 1)])

    def sweeper(penalty, params, data):
        def sweep(lam_values):
            return training.pareto_sweep(
                loss_fn,
                penalty,
                params,
                data,
                lam_values,
                optimizer=opt,
                num_steps=args.steps,
                model=model,
            ).params

        return sweep

    sweep = sweeper(penalty_fn, p0, train)
    one = lams[-1:]
    _, t_one_first = timed(sweep, one)
    res_all, t_all_first = timed(sweep, lams)
    floor_calls = {k: products_only(model, p0, train, k, args.steps) for k in (1, len(lams))}
    # Compiled runs and the floors, interleaved round by round and repeated (the best of
    # --repeats of each): on a shared machine a single run mostly measures the other jobs, and
    # a floor timed minutes after the sweep would measure another machine speed.
    t_ones, t_alls = [], []
    floors = {k: [] for k in floor_calls}
    for _ in range(args.repeats):
        t_ones.append(timed(sweep, one)[1])
        res_all, t = timed(sweep, lams)
        t_alls.append(t)
        for k, call in floor_calls.items():
            floors[k].append(timed(call)[1])
    t_one, t_all = min(t_ones), min(t_alls)
    floor = {k: min(ts) for k, ts in floors.items()}
    hlo = hlo_summary(loss_fn, penalty_fn, opt, args.steps, model, p0, train, lams)

    # Each sweep model against its own separate training, for both reductions; then in
    # float64, where a float32 difference that is reduction order (a matmul X @ W sums in
    # another order than a matvec X @ w) vanishes.
    diffs = {}
    for r, (_, _, penalty) in objectives.items():
        fn = sweeper(penalty, p0, train)
        diffs[r] = param_diffs(fn, res_all if r == args.reduction else fn(lams), lams)
    jax.config.update("jax_enable_x64", True)
    train64 = (train[0].astype(jnp.float64), train[1].astype(jnp.float64), train[2])
    p64 = jax.tree.map(lambda a: a.astype(jnp.float64), p0)
    lams64 = lams.astype(jnp.float64)
    max_diff64 = {}
    for r, (_, _, penalty) in objectives.items():
        fn = sweeper(penalty, p64, train64)
        max_diff64[r] = float(param_diffs(fn, fn(lams64), lams64).max())
    jax.config.update("jax_enable_x64", False)

    @jax.vmap
    def evaluate(p):
        pred = (model(p, (X_test,))[0] > 0).astype(jnp.float32)
        return jnp.mean(pred == y_test), metrics.demographic_parity_difference(
            pred, s_test, num_groups=G
        )

    acc, dp = (np.asarray(a) for a in evaluate(res_all))
    within = {r: int(np.sum(d <= 1e-5)) for r, d in diffs.items()}
    result = {
        "benchmark": "training_sweep",
        "data": f"UCI Adult (embedded), {train[0].shape[0]} x {train[0].shape[1]}",
        "platform": jax.devices()[0].platform,
        "device": str(jax.devices()[0].device_kind),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "steps": args.steps,
        "num_lams": args.num_lams,
        "reduction": args.reduction,
        "one_training_seconds": t_one,
        "sweep_seconds": t_all,
        "ratio_sweep_over_one": t_all / t_one,
        "one_training_first_call_seconds": t_one_first,
        "sweep_first_call_seconds": t_all_first,
        "ratio_first_call": t_all_first / t_one_first,
        "repeats": args.repeats,
        "one_training_seconds_all": t_ones,
        "sweep_seconds_all": t_alls,
        "products_only_one_model_seconds": floor[1],
        "products_only_sweep_seconds": floor[len(lams)],
        "products_only_sweep_seconds_all": floors[len(lams)],
        "ratio_products_only_sweep_over_one_training": floor[len(lams)] / t_one,
        "ratio_sweep_over_products_only_sweep": t_all / floor[len(lams)],
        "load_average": os.getloadavg(),
        "compiled_sweep_dots": hlo["dots"],
        "compiled_sweep_scatters": hlo["scatters"],
        "lams": np.asarray(lams).tolist(),
        "test_accuracy": acc.tolist(),
        "test_dp_difference": dp.tolist(),
    }
    for r in objectives:
        result[f"max_abs_param_diff_vs_separate_{r}"] = float(diffs[r].max())
        result[f"models_within_1e-5_{r}"] = within[r]
        result[f"abs_param_diff_vs_separate_per_lambda_{r}"] = diffs[r].tolist()
        result[f"max_abs_param_diff_vs_separate_float64_{r}"] = max_diff64[r]
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    stem = f"training_sweep_{result['platform']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    command = "python benchmarks/training_sweep.py" + (
        f" --reduction {args.reduction}" if args.reduction != "squared" else ""
    )
    lines = [
        f"# Pareto sweep: {args.num_lams} penalty weights vs one training "
        f"({result['platform']}, {result['device']}, {os.cpu_count()} CPUs, jax {jax.__version__})",
        "",
        f"Command: `{command}` (Adult, logistic regression, DP penalty with "
        f'`reduction="{args.reduction}"`, {args.steps} full-batch Adam steps; compiled runs: '
        f"best of {args.repeats}, interleaved; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs).",
        "",
        "| | one training | vmapped sweep | ratio |",
        "|---|---:|---:|---:|",
        f"| compiled run, s | {t_one:.3f} | {t_all:.3f} | {t_all / t_one:.2f}x |",
        f"| first call (with compilation), s | {t_one_first:.3f} | {t_all_first:.3f} "
        f"| {t_all_first / t_one_first:.2f}x |",
        "",
        f"All compiled runs, s: one training {', '.join(f'{t:.3f}' for t in t_ones)}; "
        f"sweep {', '.join(f'{t:.3f}' for t in t_alls)}.",
        "",
        f"The model's two products with `X` alone ({args.steps} iterations of the forward "
        f"product and its transpose, nothing else, timed in the same rounds): {floor[1]:.3f} s "
        f"for one model, {floor[len(lams)]:.3f} s for {len(lams)} models "
        f"({', '.join(f'{t:.3f}' for t in floors[len(lams)])}), which is "
        f"{floor[len(lams)] / t_one:.2f}x one whole training: a measured reference floor for "
        "the ratio on this machine, as the sweep computes these products and more. "
        f"**The sweep takes {t_all / floor[len(lams)]:.2f}x its floor** (best of each).",
        "",
        f"Dot products in the compiled sweep (result shapes): {', '.join(hlo['dots'])}; "
        f"scatters: {hlo['scatters']}.",
        "",
        f"Largest parameter difference between the sweep's {args.num_lams} models and "
        f"{args.num_lams} separate trainings (per weight in the table):",
        "",
    ]
    lines += [
        f'- `reduction="{r}"`: {diffs[r].max():.2e} in float32, {within[r]} of '
        f"{args.num_lams} within 1e-5; {max_diff64[r]:.2e} in float64."
        for r in objectives
    ]
    lines += [
        "",
        f'| lambda | test accuracy ("{args.reduction}") | test DP difference '
        '| float32 difference, "squared" | float32 difference, "max" |',
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {lam:.3g} | {a:.4f} | {d:.4f} | {e1:.1e} | {e2:.1e} |"
        for lam, a, d, e1, e2 in zip(lams, acc, dp, diffs["squared"], diffs["max"], strict=True)
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
