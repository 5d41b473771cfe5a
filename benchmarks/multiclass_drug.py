"""Multiclass fairness: drug consumption (7 usage classes), a bound on each class's DP gap.

Softmax regression of the usage class of a drug (default cannabis: never used, over a decade
ago, ..., in the last day) on the UCI Drug consumption data without the gender column; groups:
female / male. The unconstrained model is compared with models trained by
:func:`fairjax.training.fit_constrained` to a bound on the worst class's demographic-parity gap
(:func:`fairjax.penalties.softmax_rate_difference` at temperature 1: the gap of the model's
expected decisions, the randomised classifier that draws a class from the softmax), for a few
bounds. On the test split it reports accuracy (of the argmax and of the randomised classifier)
and the worst class's DP gap of both decision rules
(:func:`fairjax.metrics.multiclass_parity_difference`), against the bound.

A third table post-processes the unconstrained model's probabilities to the same tolerances with
:func:`fairjax.postprocessing.fit_multiclass_parity` (class offsets per group).

A second table bounds the decisions themselves with the K-class reduction:
:func:`fairjax.training.fit_rate_constrained` with ``num_classes=7`` (the argmax decisions of one
deterministic model) and :func:`fairjax.training.fit_rate_constrained_mixture` (a randomised
mixture of iterates, bounded in expectation), for the same bounds.

Writes ``benchmarks/results/multiclass_drug_<platform>.json`` and ``.md``.

Usage::

    FAIRJAX_DATA_HOME=path/to/data python benchmarks/multiclass_drug.py
    FAIRJAX_DATA_HOME=path/to/data python benchmarks/multiclass_drug.py --drug Nicotine
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform

import jax
import jax.numpy as jnp
import optax

from fairjax import datasets, metrics, penalties, postprocessing, training

RESULTS = pathlib.Path(__file__).parent / "results"
K = 7


def logits(params, batch):
    return batch[0] @ params["W"] + params["b"]


def cross_entropy(z, batch):
    return optax.softmax_cross_entropy_with_integer_labels(z, batch[1]).mean()


def dp_gap(z, batch):  # the worst class's DP gap of the expected decisions
    return penalties.softmax_rate_difference(z, batch[2], num_groups=2)


def evaluate(params, batch):
    z = logits(params, batch)
    probs = jax.nn.softmax(z, axis=-1)
    y, s = batch[1], batch[2]
    return {
        "accuracy_argmax": float(jnp.mean(jnp.argmax(z, -1) == y)),
        "accuracy_randomised": float(jnp.mean(probs[jnp.arange(len(y)), y])),
        "dp_gap_randomised": float(
            metrics.multiclass_parity_difference(None, probs, s, num_classes=K, num_groups=2)
        ),
        "dp_gap_argmax": float(
            metrics.multiclass_parity_difference(
                None, jnp.argmax(z, -1), s, num_classes=K, num_groups=2
            )
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drug", default="Cannabis")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--bounds", type=float, nargs="+", default=[0.1, 0.05, 0.02])
    args = parser.parse_args()

    data = datasets.load_drug_consumption(drug=args.drug, include_sensitive=False)
    train = (jnp.asarray(data.X_train), jnp.asarray(data.y_train), jnp.asarray(data.groups_train))
    test = (jnp.asarray(data.X_test), jnp.asarray(data.y_test), jnp.asarray(data.groups_test))
    p0 = {"W": jnp.zeros((train[0].shape[1], K)), "b": jnp.zeros(K)}

    def fit(target):
        return training.fit_constrained(
            cross_entropy,
            dp_gap,
            p0,
            train,
            target=target,
            optimizer=optax.adam(0.02),
            multiplier_optimizer=optax.sgd(1.0),
            num_steps=args.steps,
            model=logits,
            iterate="best",
            tolerance=1e-4,
        )

    rows, unconstrained = [], None
    for bound in [None, *args.bounds]:
        res = fit(1e6 if bound is None else bound)
        unconstrained = res.state.params if bound is None else unconstrained
        row = {"bound": bound, "train": evaluate(res.state.params, train)}
        row["test"] = evaluate(res.state.params, test)
        rows.append(row)
        t = row["test"]
        print(
            f"bound {'-' if bound is None else bound:>5}  test acc {t['accuracy_argmax']:.4f} "
            f"(randomised {t['accuracy_randomised']:.4f})  worst-class DP gap: randomised "
            f"{t['dp_gap_randomised']:.4f}, argmax {t['dp_gap_argmax']:.4f}  "
            f"(train {row['train']['dp_gap_randomised']:.4f})"
        )

    reduction = reduction_rows(train, test, p0, args.bounds, args.steps)
    post = postprocessing_rows(unconstrained, train, test, args.bounds)

    RESULTS.mkdir(exist_ok=True)
    tag = jax.default_backend()
    meta = {
        "command": f"python benchmarks/multiclass_drug.py --drug {args.drug} --steps {args.steps}"
        f" --bounds {' '.join(map(str, args.bounds))}",
        "jax": jax.__version__,
        "platform": platform.platform(),
        "n_train": int(train[0].shape[0]),
        "n_test": int(test[0].shape[0]),
    }
    (RESULTS / f"multiclass_drug_{tag}.json").write_text(
        json.dumps(
            {"meta": meta, "rows": rows, "reduction": reduction, "postprocessing": post}, indent=1
        )
    )
    base = rows[0]["test"]
    lines = [
        f"# Multiclass: drug consumption ({args.drug}, 7 classes), groups female / male",
        "",
        f"Command: `{meta['command']}` (jax {meta['jax']}, {tag}); {meta['n_train']} training "
        f"and {meta['n_test']} test rows.",
        "",
        "| bound (worst-class DP gap, expected decisions) | train gap | test gap (randomised) "
        "| test gap (argmax) | test accuracy (argmax) | accuracy cost (points) "
        "| test accuracy (randomised) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t = r["test"]
        cost = 100 * (base["accuracy_argmax"] - t["accuracy_argmax"])
        lines.append(
            f"| {'none' if r['bound'] is None else r['bound']} | "
            f"{r['train']['dp_gap_randomised']:.4f} | {t['dp_gap_randomised']:.4f} | "
            f"{t['dp_gap_argmax']:.4f} | {t['accuracy_argmax']:.4f} | {cost:.2f} | "
            f"{t['accuracy_randomised']:.4f} |"
        )
    lines += [
        "",
        "The K-class reduction, to the same bounds on the worst class's DP gap of the decisions "
        "(`fit_rate_constrained(num_classes=7)`: the argmax of one model; "
        "`fit_rate_constrained_mixture`: expected decisions of the mixture); accuracy cost "
        "against the unconstrained argmax above:",
        "",
        "| bound | trainer | train gap | test gap | test accuracy | accuracy cost (points) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += table_rows(reduction, base, ("bound", "trainer"))
    lines += [
        "",
        "Post-processing the unconstrained model's class probabilities "
        "(`postprocessing.fit_multiclass_parity`, tolerance = the bound, fitted on the training "
        "rows; decisions `argmax_k (p_k - offset[group, k])`, deterministic):",
        "",
        "| tolerance | train gap | test gap | test accuracy | accuracy cost (points) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += table_rows(post, base, ("bound",))
    (RESULTS / f"multiclass_drug_{tag}.md").write_text("\n".join(lines) + "\n")


def table_rows(records, base, keys) -> list[str]:
    """Markdown rows: the ``keys`` columns, the gaps, test accuracy and its cost (points)."""
    out = []
    for r in records:
        cost = 100 * (base["accuracy_argmax"] - r["test_accuracy"])
        cells = [str(r[k]) for k in keys]
        cells += [f"{r[k]:.4f}" for k in ("train_gap", "test_gap", "test_accuracy")]
        out.append("| " + " | ".join([*cells, f"{cost:.2f}"]) + " |")
    return out


def postprocessing_rows(params, train, test, bounds) -> list[dict]:
    """Class offsets per group on the unconstrained model's probabilities, at each tolerance."""
    rows = []
    for bound in bounds:
        p_train = jax.nn.softmax(logits(params, train), axis=-1)
        state = postprocessing.fit_multiclass_parity(
            p_train, train[2], num_groups=2, tolerance=bound
        )
        row = {"bound": bound}
        for name, batch in (("train", train), ("test", test)):
            d = postprocessing.apply_multiclass_parity(
                state, jax.nn.softmax(logits(params, batch), axis=-1), batch[2]
            )
            row[f"{name}_gap"] = float(
                metrics.multiclass_parity_difference(None, d, batch[2], num_classes=K, num_groups=2)
            )
            row[f"{name}_accuracy"] = float(jnp.mean(jnp.argmax(d, -1) == batch[1]))
        rows.append(row)
        print(
            f"post-processing, tolerance {bound}: test gap {row['test_gap']:.4f}, "
            f"accuracy {row['test_accuracy']:.4f} (train gap {row['train_gap']:.4f})"
        )
    return rows


def reduction_rows(train, test, p0, bounds, steps) -> list[dict]:
    """The K-class reduction (deterministic, then the mixture) at each bound; test figures."""
    kw = dict(num_groups=2, num_classes=K, optimizer=optax.adam(0.02), num_steps=steps)
    y, s = test[1], test[2]
    rows = []
    for bound in bounds:
        det = training.fit_rate_constrained(
            logits, p0, train, target=bound, validation_data=test, **kw
        )
        pred = jnp.argmax(logits(det.params, test), -1)
        rows.append(
            {
                "bound": bound,
                "trainer": "fit_rate_constrained (argmax)",
                "train_gap": det.train_constraint,
                "test_gap": det.validation_constraint,
                "test_accuracy": float(jnp.mean(pred == y)),
            }
        )
        mix = training.fit_rate_constrained_mixture(
            logits, p0, train, target=bound, validation_data=test, num_candidates=100, **kw
        )
        P = training.mixture_decisions(logits, mix.params, mix.probabilities, test)
        rows.append(
            {
                "bound": bound,
                "trainer": "fit_rate_constrained_mixture (expected)",
                "train_gap": mix.train_constraint,
                "test_gap": float(
                    metrics.multiclass_parity_difference(None, P, s, num_classes=K, num_groups=2)
                ),
                "test_accuracy": float(jnp.mean(P[jnp.arange(len(y)), y])),
            }
        )
        for r in rows[-2:]:
            print(
                f"bound {bound:>5}  {r['trainer']:<42} train gap {r['train_gap']:.4f}  "
                f"test gap {r['test_gap']:.4f}  test acc {r['test_accuracy']:.4f}"
            )
    return rows


if __name__ == "__main__":
    main()
