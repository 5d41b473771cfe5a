"""Training to a DP target on Adult: fairjax vs fairlearn's ExponentiatedGradient.

One run each, on the embedded UCI Adult split (sensitive attribute: sex). A user asks for a
demographic-parity gap (the largest difference between the groups' positive rates) of at most
``--target`` (default 0.02):

- fairjax :func:`fairjax.training.fit_constrained`: logistic regression, Adam on the weights
  with the smooth surrogate ``sigmoid_rate_difference(logits, T=0.5)`` in the Lagrangian, and
  projected SGD ascent on the multiplier driven by the exact DP gap of the decisions
  (proxy-Lagrangian), ``--steps`` full-batch steps in one compiled program.
- fairjax :func:`fairjax.training.fit_rate_constrained`: the same model and steps, each step an
  Adam step on the cost-sensitive problem of the current multipliers (the reduction of
  ExponentiatedGradient, as gradient steps).
- fairjax :func:`fairjax.training.fit_rate_constrained_mixture`: the same steps at its own
  default multiplier rate (``optax.sgd(0.02)``), returning the best mixture of 200 evenly
  spaced iterates under the bound in expectation (a randomised classifier, like
  ExponentiatedGradient's); its decisions on test drawn with
  ``jax.random.key(0)``, and its expected decisions reported beside EG's.
- fairlearn ``ExponentiatedGradient(LogisticRegression(), DemographicParity(difference_bound=b))``
  and its (randomised) ``predict`` with ``random_state=0``, at two bounds. fairlearn's
  ``difference_bound`` limits each group's deviation from the overall rate, not the gap between
  groups. With two groups, deviation ``b`` allows a gap of ``b / (n_large / n)`` (0.0296 for
  ``b = 0.02`` on Adult). So EG runs with ``b = target`` (the bound as a user would pass it) and
  with ``b = target * n_large / n`` (the same constraint as fairjax's).
- For context, ``ThresholdOptimizer`` (DP, post-processing of a prefit logistic regression).

Fit times are wall time of the first call (compilation included); the compiled program's run
time (the median of ``--repeats`` further calls) is reported too. The requested bound is
checked on the *test* split. Writes ``benchmarks/results/training_vs_fairlearn_<platform>.json``
and ``.md``.

With ``--compilation-cache DIR`` it uses JAX's persistent compilation cache and writes
``training_vs_fairlearn_<platform>_compilation_cache.*``: a second run with the same ``DIR``
measures first calls whose compilation is a load from disk (a new process of a script run
before).

Usage::

    python benchmarks/training_vs_fairlearn.py
    python benchmarks/training_vs_fairlearn.py --target 0.01 --steps 1000
    python benchmarks/training_vs_fairlearn.py --compilation-cache /tmp/jax-cache  # twice
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, metrics, training

try:  # run as a script (benchmarks/ on the path) or as benchmarks.training_vs_fairlearn
    from _common import use_compilation_cache
except ImportError:
    from benchmarks._common import use_compilation_cache

RESULTS = pathlib.Path(__file__).parent / "results"


def _exponentiated_gradient(bound, data, evaluate):
    """fairlearn's ExponentiatedGradient at ``difference_bound=bound``: fit time, its randomised
    ``predict`` on test, the mixture in expectation on both splits, and each classifier it
    mixes (public attributes ``weights_`` and ``predictors_``)."""
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient
    from sklearn.linear_model import LogisticRegression

    splits = {
        "train": (data.X_train.astype(np.float64), data.y_train, data.groups_train),
        "test": (data.X_test.astype(np.float64), data.y_test, data.groups_test),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        eg = ExponentiatedGradient(
            LogisticRegression(max_iter=1000), DemographicParity(difference_bound=bound)
        ).fit(*splits["train"][:2], sensitive_features=splits["train"][2])
        seconds = time.perf_counter() - start
        X_test, y_test, s_test = splits["test"]
        res = evaluate(eg.predict(X_test, random_state=0), y_test, s_test)
    res.update(difference_bound=bound, fit_seconds=seconds)
    pairs = [(w, m) for w, m in zip(eg.weights_, eg.predictors_, strict=True) if w > 1e-6]
    for name, (X, y, s) in splits.items():
        positive = sum(w * m.predict(X) for w, m in pairs)
        rates = [positive[s == g].mean() for g in range(data.num_groups)]
        res[f"expected_{name}"] = {
            "accuracy": float(np.mean(np.where(y == 1, positive, 1 - positive))),
            "dp_difference": float(max(rates) - min(rates)),
        }
    res["members"] = [
        {"weight": float(w), **{n: evaluate(m.predict(X), y, s) for n, (X, y, s) in splits.items()}}
        for w, m in pairs
    ]
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target", type=float, default=0.02, help="the demographic-parity gap asked for"
    )
    parser.add_argument(
        "--steps", type=int, default=500, help="full-batch steps of each fairjax fit"
    )
    parser.add_argument(
        "--temperature", type=float, default=0.5, help="temperature of the sigmoid surrogate"
    )
    parser.add_argument(
        "--multiplier-lr", type=float, default=0.2, help="SGD rate of fit_constrained's multiplier"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="compiled runs of each fairjax fit (the median)"
    )
    parser.add_argument(
        "--compilation-cache",
        metavar="DIR",
        help="use JAX's persistent compilation cache in DIR (every program, however quick to "
        "compile): run twice, and the second run's first calls load the compiled programs",
    )
    parser.add_argument(
        "--skip-fairlearn", action="store_true", help="leave out the fairlearn methods"
    )
    args = parser.parse_args()
    cache_warm = use_compilation_cache(args.compilation_cache)

    data = datasets.load_adult()
    G = data.num_groups
    train, test = data.batch("train"), data.batch("test")
    model, loss_fn, surrogate = training.logistic_regression(
        G, l2=1e-4, temperature=args.temperature
    )

    def dp_gap(out, b):  # the exact gap of the decisions, for the multiplier
        pred = (out[0] > 0).astype(jnp.float32)
        return metrics.demographic_parity_difference(pred, b[2], num_groups=G)

    def evaluate(pred, y, s):
        pred = np.asarray(pred, np.float32)
        return {
            "accuracy": float(np.mean(pred == np.asarray(y))),
            "dp_difference": float(metrics.demographic_parity_difference(pred, s, num_groups=G)),
        }

    def report(params, fit_seconds, run_seconds, train_gap, multiplier):
        res = evaluate(np.asarray(model(params, test)[0] > 0), data.y_test, data.groups_test)
        res.update(
            train_accuracy=evaluate(
                np.asarray(model(params, train)[0] > 0), data.y_train, data.groups_train
            )["accuracy"],
            fit_seconds=fit_seconds,
            compiled_run_seconds=run_seconds,
            steps=args.steps,
            train_dp_difference=train_gap,
            multiplier=np.asarray(multiplier).tolist(),
        )
        res["within_target_pm_0_01"] = abs(res["dp_difference"] - args.target) <= 0.01
        return res

    def timed(fn):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        return out, time.perf_counter() - start

    def compiled_runs(fn):  # the median of --repeats calls that reuse the compiled program
        return float(np.median([timed(fn)[1] for _ in range(args.repeats)]))

    p0 = {"w": jnp.zeros(train[0].shape[1]), "b": jnp.zeros(())}
    optimizer, multiplier_optimizer = optax.adam(0.05), optax.sgd(args.multiplier_lr)
    # The JAX backend starts on the first jitted call of the process (a one-time cost, not this
    # program's compilation): started here, outside the timed fits.
    jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.zeros(())))

    # The options every fairjax fit below shares.
    common = dict(
        target=args.target, optimizer=optimizer, num_steps=args.steps, validation_data=test
    )

    def lagrangian():
        return training.fit_constrained(
            loss_fn,
            surrogate,
            p0,
            train,
            multiplier_optimizer=multiplier_optimizer,
            dual_constraint_fn=dp_gap,
            tolerance=0.01,
            model=model,
            **common,
        )

    # Each fit timed on its first call (compilation included), then on --repeats further calls
    # with the same arguments, which run the cached compiled program (the median).
    res, t_fit = timed(lagrangian)
    t_run = compiled_runs(lagrangian)
    fj = report(res.params, t_fit, t_run, res.train_constraint, res.state.multiplier)
    print(f"fairjax fit_constrained  fit {t_fit:.2f} s (compiled run {t_run:.2f} s): {fj}")

    def logits(p, b):
        return model(p, b)[0]

    def l2(p):
        return 1e-4 * jnp.sum(p["w"] ** 2)

    # The reduction's options, for the deterministic model and for the mixture.
    rate_options = dict(common, num_groups=G, regularizer=l2)

    def reduction():
        return training.fit_rate_constrained(logits, p0, train, **rate_options)

    res, t_fit = timed(reduction)
    t_run = compiled_runs(reduction)
    fr = report(res.params, t_fit, t_run, res.train_constraint, res.state.multiplier)
    print(f"fairjax fit_rate_constrained  fit {t_fit:.2f} s (compiled run {t_run:.2f} s): {fr}")

    def mixture():
        return training.fit_rate_constrained_mixture(logits, p0, train, **rate_options)

    mix, t_fit = timed(mixture)
    t_run = compiled_runs(mixture)

    def expected_decisions(batch):
        return np.asarray(training.mixture_decisions(logits, mix.params, mix.probabilities, batch))

    drawn = training.mixture_decisions(
        logits, mix.params, mix.probabilities, test, key=jax.random.key(0)
    )
    fm = evaluate(drawn, data.y_test, data.groups_test)
    fm.update(
        train_accuracy=1 - mix.train_error,
        fit_seconds=t_fit,
        compiled_run_seconds=t_run,
        steps=args.steps,
        train_dp_difference=mix.train_constraint,
        components=[
            {
                "step": int(k),
                "weight": float(w),
                **{
                    name: evaluate(np.asarray(logits(member, batch) > 0), batch[1], batch[2])
                    for name, batch in (("train", train), ("test", test))
                },
            }
            for j, (k, w) in enumerate(zip(mix.steps, mix.probabilities, strict=True))
            for member in [jax.tree.map(lambda a, j=j: a[j], mix.params)]
        ],
    )
    fm["within_target_pm_0_01"] = abs(fm["dp_difference"] - args.target) <= 0.01
    for name, batch, (y, s) in (
        ("train", train, (data.y_train, data.groups_train)),
        ("test", test, (data.y_test, data.groups_test)),
    ):
        p = expected_decisions(batch)
        fm[f"expected_{name}"] = {
            "accuracy": float(np.mean(np.where(y == 1, p, 1 - p))),
            "dp_difference": float(metrics.demographic_parity_difference(p, s, num_groups=G)),
        }
    print(f"fairjax fit_rate_constrained_mixture  fit {t_fit:.2f} s (compiled {t_run:.2f} s): {fm}")

    counts = np.bincount(data.groups_train, minlength=G)
    result = {
        "benchmark": "training_vs_fairlearn",
        "data": f"UCI Adult (embedded), {train[0].shape[0]} train / {test[0].shape[0]} test, "
        f"{train[0].shape[1]} features, sensitive attribute: sex",
        "target_dp_difference": args.target,
        "platform": jax.devices()[0].platform,
        "device": str(jax.devices()[0].device_kind),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "compilation_cache": args.compilation_cache,
        "compilation_cache_warm": cache_warm,
        "fairjax_lagrangian": fj,
        "fairjax_rate_constrained": fr,
        "fairjax_rate_constrained_mixture": fm,
    }
    rows = [
        ("fairjax fit_constrained (sigmoid surrogate)", fj),
        ("fairjax fit_rate_constrained (cost-sensitive steps)", fr),
        ("fairjax fit_rate_constrained_mixture (randomised, drawn with key 0)", fm),
    ]
    if not args.skip_fairlearn:
        import fairlearn
        from fairlearn.postprocessing import ThresholdOptimizer
        from sklearn.linear_model import LogisticRegression

        # fairlearn bounds |r_g - r| (r: the overall rate); with two groups the largest of
        # these is the gap times n_large / n.
        assert G == 2, "the bound conversion below is for two groups"
        same = args.target * counts.max() / counts.sum()
        eg_as_passed = _exponentiated_gradient(args.target, data, evaluate)
        eg_same = _exponentiated_gradient(same, data, evaluate)
        for name, r in (("as passed", eg_as_passed), ("same constraint", eg_same)):
            print(f"fairlearn ExponentiatedGradient ({name}, b={r['difference_bound']:.4f}): {r}")

        Xtr, ytr, str_ = data.X_train.astype(np.float64), data.y_train, data.groups_train
        Xte = data.X_test.astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            lr = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
            t_lr = time.perf_counter() - start
            start = time.perf_counter()
            to = ThresholdOptimizer(
                estimator=lr, constraints="demographic_parity", prefit=True, predict_method="auto"
            ).fit(Xtr, ytr, sensitive_features=str_)
            t_to = time.perf_counter() - start
            to_res = evaluate(
                to.predict(Xte, sensitive_features=data.groups_test, random_state=0),
                data.y_test,
                data.groups_test,
            )
            to_res.update(fit_seconds=t_to, prefit_logistic_regression_seconds=t_lr)
            lr_res = evaluate(lr.predict(Xte), data.y_test, data.groups_test)
            lr_res["fit_seconds"] = t_lr
        result.update(
            fairlearn_version=fairlearn.__version__,
            fairlearn_exponentiated_gradient=eg_as_passed,
            fairlearn_exponentiated_gradient_same_constraint=eg_same,
            fairlearn_threshold_optimizer=to_res,
            sklearn_unconstrained_logistic_regression=lr_res,
        )
        for key, fair in (
            ("lagrangian", fj),
            ("rate_constrained", fr),
            ("rate_constrained_mixture", fm),
        ):
            result[f"fit_time_ratio_eg_same_constraint_over_{key}"] = (
                eg_same["fit_seconds"] / fair["fit_seconds"]
            )
            result[f"compiled_run_ratio_eg_same_constraint_over_{key}"] = (
                eg_same["fit_seconds"] / fair["compiled_run_seconds"]
            )
            result[f"accuracy_{key}_minus_eg_same_constraint"] = (
                fair["accuracy"] - eg_same["accuracy"]
            )
        rows += [
            (
                f"fairlearn ExponentiatedGradient, difference_bound={args.target:g} "
                f"(gap <= {args.target / (counts.max() / counts.sum()):.4f})",
                eg_as_passed,
            ),
            (
                f"fairlearn ExponentiatedGradient, difference_bound={same:.4f} "
                f"(gap <= {args.target:g})",
                eg_same,
            ),
            ("fairlearn ThresholdOptimizer (post-proc.)", to_res),
            ("sklearn LogisticRegression (unconstrained)", lr_res),
        ]

    RESULTS.mkdir(exist_ok=True)
    stem = f"training_vs_fairlearn_{result['platform']}" + (
        "_compilation_cache" if args.compilation_cache else ""
    )
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Training to DP gap <= {args.target} on Adult ({result['platform']}, "
        f"{result['device']}, jax {jax.__version__})",
        "",
        "Command: `python benchmarks/training_vs_fairlearn.py"
        + (f" --target {args.target}" if args.target != 0.02 else "")
        + (f" --compilation-cache {args.compilation_cache}" if args.compilation_cache else "")
        + f"` (one run; fairjax's compiled runs: the median of {args.repeats}; fairlearn and "
        "scikit-learn: one timed fit each).",
        "",
        "| method | fit s | test accuracy | test DP difference |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {r['fit_seconds']:.2f} | {r['accuracy']:.4f} | {r['dp_difference']:.4f} |"
        for name, r in rows
    ]
    lines += [
        "",
        f"fairjax: {args.steps} full-batch steps each; fit times include tracing and compilation "
        "(not the JAX backend's start-up, done once per process before timing)"
        + {
            None: "",
            True: "; JAX's persistent compilation cache was warm (filled by an earlier run: "
            "compilation was a load from disk)",
            False: "; JAX's persistent compilation cache was cold (this run filled it)",
        }[cache_warm]
        + ".",
        "",
        "| fairjax | compiled run s | train accuracy | train DP | test DP within target +-0.01 |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {name} | {r['compiled_run_seconds']:.2f} | {r['train_accuracy']:.4f} | "
        f"{r['train_dp_difference']:.4f} | {r['within_target_pm_0_01']} |"
        for name, r in rows[:3]
    ]
    if not args.skip_fairlearn:
        lines += [
            "",
            "fairlearn's `difference_bound` limits each group's deviation from the overall "
            "rate: with two groups it allows a gap of "
            f"`difference_bound / {same / args.target:.4f}`. "
            f"The second ExponentiatedGradient row has the same constraint as fairjax's. Against "
            f"it, fit-time ratios "
            f"{result['fit_time_ratio_eg_same_constraint_over_lagrangian']:.1f}x "
            f"(fit_constrained) and "
            f"{result['fit_time_ratio_eg_same_constraint_over_rate_constrained']:.1f}x "
            f"(fit_rate_constrained) with compilation, "
            f"{result['compiled_run_ratio_eg_same_constraint_over_lagrangian']:.1f}x and "
            f"{result['compiled_run_ratio_eg_same_constraint_over_rate_constrained']:.1f}x "
            f"for the compiled programs; test accuracy differences "
            f"{result['accuracy_lagrangian_minus_eg_same_constraint']:+.4f} and "
            f"{result['accuracy_rate_constrained_minus_eg_same_constraint']:+.4f}.",
            "",
            f"The randomised classifiers against each other: fit_rate_constrained_mixture "
            f"{result['fit_time_ratio_eg_same_constraint_over_rate_constrained_mixture']:.1f}x "
            f"faster with compilation, "
            f"{result['compiled_run_ratio_eg_same_constraint_over_rate_constrained_mixture']:.1f}x "
            "compiled (its time includes the linear program on the host).",
            "",
            "In expectation (the expected decisions on each row), and the classifiers each "
            "mixes (fairjax: the step of each iterate):",
            "",
            "| classifier | weight | train accuracy | train DP | test accuracy | test DP |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        e_tr, e_te = fm["expected_train"], fm["expected_test"]
        lines.append(
            f"| fairjax mixture, target {args.target:g} | mixture | {e_tr['accuracy']:.4f} | "
            f"{e_tr['dp_difference']:.4f} | {e_te['accuracy']:.4f} | "
            f"{e_te['dp_difference']:.4f} |"
        )
        lines += [
            f"| fairjax, step {c['step']} | {c['weight']:.3f} | {c['train']['accuracy']:.4f} | "
            f"{c['train']['dp_difference']:.4f} | {c['test']['accuracy']:.4f} | "
            f"{c['test']['dp_difference']:.4f} |"
            for c in fm["components"]
        ]
        for r in (eg_as_passed, eg_same):
            e_tr, e_te = r["expected_train"], r["expected_test"]
            lines.append(
                f"| EG, difference_bound {r['difference_bound']:.4f} | mixture | "
                f"{e_tr['accuracy']:.4f} | "
                f"{e_tr['dp_difference']:.4f} | {e_te['accuracy']:.4f} | "
                f"{e_te['dp_difference']:.4f} |"
            )
            lines += [
                f"| EG member | {m['weight']:.3f} | "
                f"{m['train']['accuracy']:.4f} | {m['train']['dp_difference']:.4f} | "
                f"{m['test']['accuracy']:.4f} | {m['test']['dp_difference']:.4f} |"
                for m in r["members"]
            ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
