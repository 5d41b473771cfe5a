"""Pareto sweep on Adult: 32 penalty weights in one vmapped program vs one training.

Logistic regression on the embedded UCI Adult split with the penalty
``lam * sigmoid_rate_difference(logits, T=0.5)`` (demographic parity), ``--steps`` full-batch
Adam steps. :func:`fairjax.training.pareto_sweep` trains ``--num-lams`` models at once with
``jax.vmap``; the same function with one weight is "one training". Each is timed once after a
warm-up call (compiled run), and the first call (compilation included) is reported too. The
goal is a wall-time ratio (32 models / 1 model) of at most 3. Also reports the parameter
difference between each of the sweep's models and a separate training of the same weight.

Writes ``benchmarks/results/training_sweep_<platform>.json`` and ``.md``.

Usage::

    python benchmarks/training_sweep.py
    python benchmarks/training_sweep.py --num-lams 64 --steps 1000
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
    text = (
        training._sweep.lower(loss_fn, penalty_fn, opt, steps, model, p0, train, lams)
        .compile()
        .as_text()
    )
    dots = re.findall(r"= (\w+\[[\d,]*\])\S* dot\(", text)
    return {"dots": dots, "scatters": len(re.findall(r" scatter\(", text))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-lams", type=int, default=32)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    data = datasets.load_adult()
    G = data.num_groups
    train, (X_test, y_test, s_test) = data.batch("train"), data.batch("test")
    model, loss_fn, penalty_fn = training._logistic_objectives(G, l2=1e-4, temperature=0.5)
    p0 = {"w": jnp.zeros(train[0].shape[1]), "b": jnp.zeros(())}
    opt = optax.adam(0.05)
    lams = jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.01, 10.0, args.num_lams - 1)])

    def sweep(lam_values):
        return training.pareto_sweep(
            loss_fn,
            penalty_fn,
            p0,
            train,
            lam_values,
            optimizer=opt,
            num_steps=args.steps,
            model=model,
        ).params

    one = lams[-1:]
    _, t_one_first = timed(sweep, one)
    res_all, t_all_first = timed(sweep, lams)
    # Compiled runs, interleaved and repeated (the best of --repeats): on a shared machine a
    # single run mostly measures the other jobs.
    t_ones, t_alls = [], []
    for _ in range(args.repeats):
        t_ones.append(timed(sweep, one)[1])
        res_all, t = timed(sweep, lams)
        t_alls.append(t)
    t_one, t_all = min(t_ones), min(t_alls)
    hlo = hlo_summary(loss_fn, penalty_fn, opt, args.steps, model, p0, train, lams)

    diffs = param_diffs(sweep, res_all, lams)
    max_diff = float(diffs.max())
    # The same comparison in float64: if the float32 gap is reduction order (a matmul X @ W
    # sums in another order than a matvec X @ w), it vanishes here.
    jax.config.update("jax_enable_x64", True)
    train64 = (train[0].astype(jnp.float64), train[1].astype(jnp.float64), train[2])
    p64 = jax.tree.map(lambda a: a.astype(jnp.float64), p0)
    lams64 = lams.astype(jnp.float64)

    def sweep64(lam_values):
        return training.pareto_sweep(
            loss_fn,
            penalty_fn,
            p64,
            train64,
            lam_values,
            optimizer=opt,
            num_steps=args.steps,
            model=model,
        ).params

    max_diff64 = float(param_diffs(sweep64, sweep64(lams64), lams64).max())
    jax.config.update("jax_enable_x64", False)

    @jax.vmap
    def evaluate(p):
        pred = (model(p, (X_test,))[0] > 0).astype(jnp.float32)
        return jnp.mean(pred == y_test), metrics.demographic_parity_difference(
            pred, s_test, num_groups=G
        )

    acc, dp = (np.asarray(a) for a in evaluate(res_all))
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
        "one_training_seconds": t_one,
        "sweep_seconds": t_all,
        "ratio_sweep_over_one": t_all / t_one,
        "one_training_first_call_seconds": t_one_first,
        "sweep_first_call_seconds": t_all_first,
        "ratio_first_call": t_all_first / t_one_first,
        "repeats": args.repeats,
        "one_training_seconds_all": t_ones,
        "sweep_seconds_all": t_alls,
        "load_average": os.getloadavg(),
        "max_abs_param_diff_vs_separate": max_diff,
        "abs_param_diff_vs_separate_per_lambda": diffs.tolist(),
        "max_abs_param_diff_vs_separate_float64": max_diff64,
        "compiled_sweep_dots": hlo["dots"],
        "compiled_sweep_scatters": hlo["scatters"],
        "lams": np.asarray(lams).tolist(),
        "test_accuracy": acc.tolist(),
        "test_dp_difference": dp.tolist(),
    }
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    stem = f"training_sweep_{result['platform']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Pareto sweep: {args.num_lams} penalty weights vs one training "
        f"({result['platform']}, {result['device']}, {os.cpu_count()} CPUs, jax {jax.__version__})",
        "",
        "Command: `python benchmarks/training_sweep.py` (Adult, logistic regression, "
        f"{args.steps} full-batch Adam steps; compiled runs: best of {args.repeats}, "
        f"interleaved; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
        "CPUs).",
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
        f"Dot products in the compiled sweep (result shapes): {', '.join(hlo['dots'])}; "
        f"scatters: {hlo['scatters']}.",
        "",
        f"Largest parameter difference between the sweep's {args.num_lams} models and "
        f"{args.num_lams} separate trainings: {max_diff:.2e} in float32 (per weight in the "
        f"table), {max_diff64:.2e} in float64.",
        "",
        "| lambda | test accuracy | test DP difference | float32 difference vs separate |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {lam:.3g} | {a:.4f} | {d:.4f} | {e:.1e} |"
        for lam, a, d, e in zip(lams, acc, dp, diffs, strict=True)
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
