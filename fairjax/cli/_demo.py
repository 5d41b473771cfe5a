"""``fairjax demo``: fair models on Adult (and Communities and Crime), their figures printed."""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import _loop, datasets, ferm, losses, metrics, postprocessing, training
from fairjax.cli._format import output_path_problem, print_table, timed


def _logistic_regression(
    X: jax.Array, y: jax.Array, *, steps: int = 500, learning_rate: float = 0.05, l2: float = 1e-4
) -> dict[str, jax.Array]:
    """Full-batch logistic regression trained with optax (Adam), the whole loop jitted."""
    params = {"w": jnp.zeros(X.shape[1], X.dtype), "b": jnp.zeros((), X.dtype)}

    def objective(p, _):
        logits = X @ p["w"] + p["b"]
        return losses.logistic(logits, y).mean() + l2 * p["w"] @ p["w"]

    params, _, _ = _loop.run(objective, optax.adam(learning_rate), params, num_steps=steps)
    return params


def _ridge(X: jax.Array, y: jax.Array, *, alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Ridge regression in closed form (centred, unpenalised intercept): ``(w, b)``."""
    mx, my = jnp.mean(X, axis=0), jnp.mean(y)
    Xc = X - mx
    w = jnp.linalg.solve(Xc.T @ Xc + alpha * jnp.eye(X.shape[1], dtype=X.dtype), Xc.T @ (y - my))
    return w, my - mx @ w


def _regression_part(seed: int) -> dict[str, float] | None:
    """Communities and Crime: ridge, then barycenter post-processing (Chzhen et al. 2020).

    Returns None (after saying why) when the data set is not in the data home: it is not
    embedded in the package.
    """
    try:
        data = datasets.load_communities_crime(test_size=0.5, seed=0)
    except datasets.DatasetNotFoundError:
        print(
            "\nRegression (Communities and Crime): skipped, the data set is not embedded in the"
            "\npackage; set FAIRJAX_DATA_HOME to a folder holding communities_crime/"
            "communities.data\n(or call datasets.load_communities_crime(download=True) once)."
        )
        return None
    start = time.perf_counter()
    w, b = _ridge(jnp.asarray(data.X_train), jnp.asarray(data.y_train))
    f = np.asarray(jnp.asarray(data.X_test) @ w + b, np.float32)
    # The test half is split again: unlabelled calibration rows fit the post-processor, the
    # other rows evaluate it.
    perm = np.random.default_rng(seed).permutation(len(f))
    cal, ev = perm[: len(f) // 2], perm[len(f) // 2 :]
    s, y = data.groups_test, data.y_test
    state = postprocessing.fit_barycenter(
        f[cal], s[cal], num_groups=2, key=jax.random.key(seed), split=True
    )
    fair = np.asarray(
        postprocessing.apply_barycenter(state, f[ev], s[ev], key=jax.random.key(seed + 1))
    )
    seconds = time.perf_counter() - start

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - y[ev]) ** 2)))

    out = {
        "rmse_before": rmse(f[ev]),
        "rmse_after": rmse(fair),
        "ks_before": float(metrics.ks_unfairness(f[ev], s[ev], num_groups=2)),
        "ks_after": float(metrics.ks_unfairness(fair, s[ev], num_groups=2)),
        "seconds": seconds,
    }
    print(
        f"\nRegression: Communities and Crime, violent crimes per capita; groups: share of Black"
        f"\nresidents above the median. Ridge on {len(data.y_train):,} rows; post-processor"
        f" fitted on {len(cal)} unlabelled\nrows, evaluated on {len(ev)} (Chzhen et al. 2020)\n"
    )
    print_table(
        ["model", "RMSE", "KS between groups"],
        [
            ["ridge", f"{out['rmse_before']:.4f}", f"{out['ks_before']:.4f}"],
            [
                "ridge + barycenter post-processing",
                f"{out['rmse_after']:.4f}",
                f"{out['ks_after']:.4f}",
            ],
        ],
    )
    print("Exact demographic parity of a regressor costs squared error: the RMSE rises.")
    return out


def _fit_models(data: datasets.Dataset, seed: int) -> tuple[dict[str, Any], dict[str, float]]:
    """The three Adult models of the demo (logistic, linear FERM, post-processed logistic)."""
    X_train, y_train = jnp.asarray(data.X_train), jnp.asarray(data.y_train, jnp.float32)
    X_test = jnp.asarray(data.X_test)
    s_test = jnp.asarray(data.groups_test)
    G = data.num_groups
    times = {}

    fit = jax.jit(_logistic_regression)
    params, times["compile_fit"] = timed(fit, X_train, y_train)
    params, times["fit"] = timed(fit, X_train, y_train)
    y_pred = (X_test @ params["w"] + params["b"] > 0).astype(jnp.int32)

    # Linear FERM (Donini et al., 2018): the same kind of linear model, trained with optax under
    # the exact equal-opportunity constraint <w, u> = 0 (hinge loss, C = 0.1).
    def fit_ferm():
        return ferm.fit_linear(
            data.X_train, data.y_train, data.groups_train, num_groups=G, C=0.1, loss="hinge"
        )

    model, times["compile_ferm"] = timed(fit_ferm)
    model, times["ferm"] = timed(fit_ferm)
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

    (score_test, score_fair), times["post"] = timed(post_process)
    y_post = (score_fair > 0.5).astype(jnp.int32)
    fitted = {
        "y_pred": y_pred,
        "models": [
            ("logistic regression", y_pred, score_test),
            ("linear FERM, hinge, C=0.1", y_ferm, ferm.decision_function(model, X_test)),
            ("logistic + barycenter post-processing", y_post, score_fair),
        ],
    }
    return fitted, times


def _print_group_table(data: datasets.Dataset, y_pred: jax.Array) -> tuple[dict, float]:
    """The logistic model's per-group table; returns the overall row's statistics and time."""
    y_test, s_test = jnp.asarray(data.y_test), jnp.asarray(data.groups_test)
    G = data.num_groups

    def evaluate():
        table = metrics.by_group(y_test, y_pred, s_test, num_groups=G)
        overall = metrics.by_group(y_test, y_pred, jnp.zeros_like(s_test), num_groups=1)
        return table, overall

    (table, overall), t_eval = timed(evaluate)
    print(
        f"Logistic regression, unconstrained (optax Adam, {data.X_train.shape[0]:,} x "
        f"{data.X_train.shape[1]} train, {data.X_test.shape[0]:,} test rows)\n"
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
    print_table(header, rows)
    return overall, t_eval


def _print_bootstrap(
    data: datasets.Dataset, y_pred: jax.Array, *, num_resamples: int, seed: int
) -> tuple[dict[str, float], float]:
    """The four fairness metrics of the logistic model with bootstrap intervals."""
    y_test, s_test = jnp.asarray(data.y_test), jnp.asarray(data.groups_test)
    G = data.num_groups
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
    print(f"\nFairness on the test set (95% bootstrap interval, {num_resamples} resamples)\n")
    rows, results = [], {}
    start = time.perf_counter()
    for name, (fn, args) in fairness.items():
        key, sub = jax.random.split(key)
        res = metrics.bootstrap(fn, *args, key=sub, num_resamples=num_resamples)
        results[name] = float(res.estimate)
        rows.append(
            [
                name,
                f"{float(res.estimate):.4f}",
                f"[{float(res.lower):.4f}, {float(res.upper):.4f}]",
            ]
        )
    t_boot = time.perf_counter() - start
    print_table(["metric", "value", "95% interval"], rows)
    return results, t_boot


def _print_mitigation(data: datasets.Dataset, models: list) -> dict[str, float]:
    """Accuracy and gaps of each model on the test set."""
    y_test, s_test = jnp.asarray(data.y_test), jnp.asarray(data.groups_test)
    G = data.num_groups
    print("\nMitigation (test set): linear FERM for equal opportunity (Donini et al. 2018),")
    print("barycenter post-processing for demographic parity (Chzhen et al. 2020)\n")
    rows, results = [], {}
    zeros = jnp.zeros_like(s_test)
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
    print_table(["model", "accuracy", "DEO", "DP difference", "KS of scores"], rows)
    print(
        "Each method narrows the gap it targets; parity of selection rates and equal true-positive"
        "\nrates are different criteria, and enforcing one can widen the other."
    )
    return results


def _check_png_path(path: str | os.PathLike | None, name: str) -> None:
    """Refuses, before any training, a PNG path that could not be written."""
    if path is None:
        return
    try:
        problem = output_path_problem(path)
    except TypeError as err:
        raise TypeError(f"`{name}` must be a path or None, got {type(path).__name__}.") from err
    if problem is not None:
        raise ValueError(f"`{name}`: {os.fspath(path)!r}{problem}.")


def _pareto_part(pareto_path: str | os.PathLike | None) -> tuple[dict[str, float], float]:
    """The vmapped Pareto sweep of the demo; its end points and its time."""
    print("\nPareto front: logistic regression + lam * sigmoid_rate_difference (smooth DP gap)")
    front = demo_pareto(num_lams=16, path=pareto_path, verbose=True)
    if pareto_path is not None and front["path"] is None:
        print("(install matplotlib, e.g. pip install 'fairjax[plot]', to write the PNG)")
    results = {
        "pareto: accuracy at lam=0": float(front["accuracy"][0]),
        "pareto: DP at lam=0": float(front["dp_difference"][0]),
        "pareto: accuracy at max lam": float(front["accuracy"][-1]),
        "pareto: DP at max lam": float(front["dp_difference"][-1]),
    }
    return results, front["seconds"]


def _print_timings(times: dict[str, float], num_resamples: int) -> None:
    print("\nTimings")
    print_table(
        ["step", "seconds"],
        [
            ["load Adult", f"{times['load']:.3f}"],
            ["logistic regression (compile + first run)", f"{times['compile_fit']:.3f}"],
            ["logistic regression (compiled)", f"{times['fit']:.3f}"],
            ["linear FERM (compile + first run)", f"{times['compile_ferm']:.3f}"],
            ["linear FERM (compiled)", f"{times['ferm']:.3f}"],
            ["barycenter post-processing (fit + apply)", f"{times['post']:.3f}"],
            ["per-group table", f"{times['eval']:.3f}"],
            [f"bootstrap, 4 metrics x {num_resamples}", f"{times['boot']:.3f}"],
            ["Pareto sweep, 16 models (compile + run)", f"{times['pareto']:.3f}"],
            *(
                [["regression: ridge + post-processing", f"{times['regression']:.3f}"]]
                if "regression" in times
                else []
            ),
        ],
    )


def demo(
    *,
    bootstrap_resamples: int = 500,
    seed: int = 0,
    pareto_path: str | os.PathLike | None = "fairjax_pareto_front.png",
) -> dict[str, float]:
    """Trains fair models on Adult (and Communities and Crime) and prints their figures.

    A logistic regression trained with optax, its per-group table and bootstrap intervals;
    linear FERM and barycenter post-processing beside it; a Pareto front of accuracy against
    the demographic-parity gap from one vmapped sweep of 16 penalty weights
    (:func:`demo_pareto`), written as a PNG at ``pareto_path`` when matplotlib is installed
    (``None``: no file); and, when Communities and Crime is in the data home, ridge regression
    post-processed to demographic parity.

    Args:
      bootstrap_resamples: resamples of the bootstrap intervals.
      seed: seed of the bootstrap and of the post-processors' jitter.
      pareto_path: where to write the Pareto-front PNG (``None``: nowhere).

    Returns:
      The overall figures (accuracy, gaps, the Pareto front's end points), for tests and
      scripts.

    Example:
      Run ``fairjax demo`` (or ``python -m fairjax demo``) in a shell; from Python::

          from fairjax import cli
          results = cli.demo(bootstrap_resamples=100, pareto_path=None)
    """
    _check_png_path(pareto_path, "pareto_path")
    print(
        f"fairjax demo  (jax {jax.__version__}, {jax.devices()[0].platform} x{jax.device_count()})"
    )
    print("Data: UCI Adult (embedded copy), sensitive attribute: sex; task: income > 50K\n")

    data, t_load = timed(datasets.load_adult)
    fitted, times = _fit_models(data, seed)
    times["load"] = t_load
    overall, times["eval"] = _print_group_table(data, fitted["y_pred"])
    results, times["boot"] = _print_bootstrap(
        data, fitted["y_pred"], num_resamples=bootstrap_resamples, seed=seed
    )
    results.update(_print_mitigation(data, fitted["models"]))
    pareto, times["pareto"] = _pareto_part(pareto_path)
    results.update(pareto)

    regression = _regression_part(seed)
    if regression is not None:
        results.update({f"regression: {k}": v for k, v in regression.items()})
        times["regression"] = regression["seconds"]
    _print_timings(times, bootstrap_resamples)
    results["accuracy"] = float(overall["accuracy"][0])
    return results


def _write_front(dp, acc, lams, path, num_lams: int) -> str | None:
    """Plots the front to ``path``; None when matplotlib is missing."""
    try:
        from fairjax import plotting

        fig = plotting.pareto_front(
            dp,
            acc,
            labels=np.asarray(lams),
            title=f"Adult: {num_lams} models from one vmapped sweep (labels: lambda)",
            path=path,
        )
        written = os.fspath(path)
        import matplotlib.pyplot as plt

        plt.close(fig)
    except ImportError:
        written = None
    return written


def demo_pareto(
    *,
    num_lams: int = 16,
    max_lam: float = 1.0,
    num_steps: int = 500,
    path: str | os.PathLike | None = "pareto_front.png",
    verbose: bool = True,
) -> dict[str, Any]:
    r"""Adult: a Pareto front of accuracy vs demographic-parity gap from one vmapped sweep.

    Trains ``num_lams`` logistic regressions on the embedded UCI Adult data (sensitive
    attribute: sex), each minimising

    .. math:: \frac1n \sum_i \ell(y_i, \langle w, x_i\rangle + b) + 10^{-4}\|w\|^2
       + \lambda\, \tilde C(f)

    with :math:`\tilde C` the smooth demographic-parity gap
    :func:`fairjax.penalties.sigmoid_rate_difference` (temperature 0.5) and :math:`\lambda` on
    the grid :math:`\{0\} \cup` a geometric grid from 0.05 to ``max_lam``, in one
    ``jax.vmap``-ed program (:func:`fairjax.training.pareto_sweep`, Adam(0.05)). It evaluates
    each model on the test split, prints the front and writes it as a PNG when matplotlib is
    installed. The sweep behind ``fairjax demo``'s front.

    Args:
      num_lams: number of penalty weights (models).
      max_lam: the largest penalty weight.
      num_steps: full-batch Adam steps per model.
      path: where to write the PNG (``None`` writes nothing).
      verbose: print the front.

    Returns:
      dict with ``lams``, ``accuracy``, ``dp_difference`` (test, numpy arrays), ``seconds``
      (sweep wall time, compilation included) and ``path`` (the PNG written, or None).

    Example:
      A sweep of 4 weights, no file::

          from fairjax import cli
          front = cli.demo_pareto(num_lams=4, path=None, verbose=False)
          front["dp_difference"]  # one gap per weight, falling as the weight grows
    """
    _check_png_path(path, "path")
    data = datasets.load_adult()
    G = data.num_groups
    model, loss_fn, penalty_fn = training.logistic_regression(G, l2=1e-4, temperature=0.5)
    train, (X_test, y_test, s_test) = data.batch("train"), data.batch("test")
    lams = jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.05, max_lam, num_lams - 1)])
    params = {"w": jnp.zeros(train[0].shape[1]), "b": jnp.zeros(())}
    start = time.perf_counter()
    res = training.pareto_sweep(
        loss_fn,
        penalty_fn,
        params,
        train,
        lams,
        optimizer=optax.adam(0.05),
        num_steps=num_steps,
        model=model,
    )
    jax.block_until_ready(res.params)
    seconds = time.perf_counter() - start

    @jax.vmap
    def evaluate(p):
        pred = (model(p, (X_test,))[0] > 0).astype(jnp.float32)
        acc = jnp.mean(pred == y_test)
        return acc, metrics.demographic_parity_difference(pred, s_test, num_groups=G)

    acc, dp = (np.asarray(a) for a in evaluate(res.params))
    written = None if path is None else _write_front(dp, acc, lams, path, num_lams)
    if verbose:
        print(f"Pareto sweep: {num_lams} penalty weights, one vmapped program, {seconds:.2f} s")
        print(f"{'lambda':>8}  {'accuracy':>8}  {'DP gap':>8}")
        for lam, a, d in zip(np.asarray(lams), acc, dp, strict=True):
            print(f"{lam:8.3f}  {a:8.4f}  {d:8.4f}")
        if written:
            print(f"front written to {written}")
    return {
        "lams": np.asarray(lams),
        "accuracy": acc,
        "dp_difference": dp,
        "seconds": seconds,
        "path": written,
    }
