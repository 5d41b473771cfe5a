"""Differentiable fairness penalties: fairjax against fairret (PyTorch), values and speed.

fairret (Buyl, Defrance, De Bie, 2024) penalises the *relative* violation of a statistic:
with :math:`p_i = \\sigma(f_i)`, per-group rates :math:`r_g` (``PositiveRate``: the mean of
:math:`p` over the group; ``TruePositiveRate``: over its rows with :math:`y = 1`) and the
overall rate :math:`\\bar r` of the same rows,

.. math::

    \\texttt{NormLoss(stat, p)} = \\big\\| (|r_g / \\bar r - 1|)_g \\big\\|_p .

fairjax's :func:`fairjax.penalties.sigmoid_rate_difference` (``temperature=1``) uses the same
rates in absolute units. Since :math:`\\bar r` is the pooled mean of the group rates (one-hot
groups, none empty), the two are the same quantity up to the factor :math:`\\bar r`:

* ``reduction="squared"`` (any number of groups): :math:`\\sum_g (r_g - \\bar r)^2 =
  (\\bar r \\cdot \\texttt{NormLoss}(p=2))^2`;
* ``reduction="max"`` with two groups: :math:`|r_1 - r_0| = \\bar r \\cdot
  \\texttt{NormLoss}(p=1)` (with more groups the max gap and the 1-norm differ);
* ``criterion="demographic_parity"`` pairs with ``PositiveRate``, ``"equal_opportunity"`` with
  ``TruePositiveRate``.

fairret does not detach :math:`\\bar r`, so the gradients of both sides of the mapping agree
too. The script

1. checks the mapping on every timed input: value and gradient with respect to the logits
   (fairret's side is the mapped quantity, differentiated by torch autograd);
2. times value + gradient with respect to the logits at n rows and G groups: fairjax
   ``jax.jit(jax.value_and_grad(...))`` (first call, then the median of ``--repeats`` calls
   after a warm-up; compile time = first call - median) against fairret's loss forward +
   ``backward()`` in torch (median of ``--repeats`` after a warm-up), each with its own
   library's input form (integer ids for fairjax, the one-hot ``(n, G)`` float matrix fairret
   takes, built outside the timing);
3. (``--adult``, on by default) trains a logistic regression on Adult (sex) for a fixed number
   of full-batch gradient-descent steps with cross-entropy + ``lam`` x the two-group DP gap,
   written with each library (fairjax's penalty in one compiled ``lax.scan``; fairret's
   :math:`\\bar r \\cdot` ``NormLoss(PositiveRate())`` in a torch loop), which is the same
   objective, and reports time, test accuracy and DP gap; plus fairret's ``NormLoss`` as
   shipped (the relative gap) with the same ``lam`` for context.

torch runs on CUDA when it has it, else on the CPU, timed with ``torch.set_num_threads(k)`` for
each ``k`` of ``--torch-threads`` (default: the CPU count and 1; on a shared machine torch's
spinning worker threads can be much slower than one thread); jax on its default backend.
Records the devices, versions and the load average, and writes
``benchmarks/results/penalties_vs_fairret_<platform>.{json,md}`` (``_quick`` added with
``--quick``). Exits with a message (status 0) when torch or fairret is not installed
(``pip install -e ".[peers-torch]"``).

Usage::

    python benchmarks/penalties_vs_fairret.py            # n = 1e4, 1e5, 1e6; G = 2, 5; Adult
    python benchmarks/penalties_vs_fairret.py --quick    # n = 1e3, 1e4, 1e5; shorter training
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, metrics, penalties

RESULTS = pathlib.Path(__file__).parent / "results"

# name: (fairjax criterion, fairjax reduction, fairret statistic, fairret p)
TERMS = {
    "dp_squared": ("demographic_parity", "squared", "PositiveRate", 2),
    "eo_squared": ("equal_opportunity", "squared", "TruePositiveRate", 2),
    "dp_max": ("demographic_parity", "max", "PositiveRate", 1),
}


def load_torch():
    """torch and fairret's modules, or None when either is missing."""
    try:
        torch = importlib.import_module("torch")
        fairret_loss = importlib.import_module("fairret.loss")
        fairret_statistic = importlib.import_module("fairret.statistic")
    except ImportError:
        return None
    return torch, fairret_loss, fairret_statistic


def loadavg() -> list[float]:
    try:
        return [float(x) for x in pathlib.Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return list(os.getloadavg())


def make_data(n: int, num_groups: int, seed: int):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, num_groups, size=n).astype(np.int32)
    f = (rng.normal(size=n) + 0.5 * s - 1.0).astype(np.float32)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * f))).astype(np.int32)
    return f, s, y


def median_time(fn, repeats: int):
    """First call, one warm-up, then the median of ``repeats`` calls; ``fn`` must block."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return out, {"first_call_s": first, "median_s": median, "compile_s": max(first - median, 0.0)}


# ----------------------------------------------------------------------------- penalty terms


def fairjax_value_and_grad(term: str, num_groups: int):
    criterion, reduction, _, _ = TERMS[term]

    def penalty(logits, s, y):
        return penalties.sigmoid_rate_difference(
            logits, s, num_groups=num_groups, labels=y, criterion=criterion, reduction=reduction
        )

    return jax.jit(jax.value_and_grad(penalty))


def fairret_loss(term: str, mods):
    _, fairret_loss_mod, fairret_statistic = mods
    _, _, stat_name, p = TERMS[term]
    return fairret_loss_mod.NormLoss(getattr(fairret_statistic, stat_name)(), p=p)


def fairret_mapped(term: str, loss, torch, logits, sens, label):
    """fairret's loss times the overall rate, squared for the 2-norm: fairjax's quantity."""
    criterion, reduction, _, _ = TERMS[term]
    args = (label,) if criterion == "equal_opportunity" else ()
    prob = torch.sigmoid(logits)
    rbar = prob.mean() if criterion == "demographic_parity" else (prob * label).sum() / label.sum()
    mapped = rbar * loss(logits, sens, *args)
    return mapped**2 if reduction == "squared" else mapped


def run_term(term, n, num_groups, mods, device, repeats, threads):
    torch = mods[0]
    criterion, reduction, stat_name, p = TERMS[term]
    f, s, y = make_data(n, num_groups, seed=n + num_groups)
    fj = fairjax_value_and_grad(term, num_groups)
    fj_args = (jnp.asarray(f), jnp.asarray(s), jnp.asarray(y))
    (fj_value, fj_grad), fj_time = median_time(lambda: jax.block_until_ready(fj(*fj_args)), repeats)

    loss = fairret_loss(term, mods)
    logits = torch.tensor(f[:, None], device=device, requires_grad=True)
    sens = torch.nn.functional.one_hot(torch.as_tensor(s, dtype=torch.int64), num_groups)
    sens = sens.to(device=device, dtype=torch.float32)
    label = torch.tensor(y[:, None], device=device, dtype=torch.float32)
    args = (label,) if criterion == "equal_opportunity" else ()

    def fairret_call():
        logits.grad = None
        value = loss(logits, sens, *args)
        value.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return value.item()

    fr_time = {}
    for k in threads:
        if k is not None:
            torch.set_num_threads(k)
        fr_value, fr_time[str(k)] = median_time(fairret_call, repeats)
    best = min(t["median_s"] for t in fr_time.values())

    logits.grad = None
    mapped = fairret_mapped(term, loss, torch, logits, sens, label)
    mapped.backward()
    mapped_grad = logits.grad.detach().cpu().numpy()[:, 0]
    fj_grad = np.asarray(fj_grad)
    comparable = reduction == "squared" or num_groups == 2
    row = {
        "term": term,
        "n": n,
        "groups": num_groups,
        "fairjax": f"sigmoid_rate_difference(criterion={criterion!r}, reduction={reduction!r})",
        "fairret": f"NormLoss({stat_name}(), p={p})",
        "fairjax_value": float(fj_value),
        "fairret_value": fr_value,
        "fairret_mapped_value": float(mapped.item()),
        "mapping_exact": comparable,
        "fairjax_time": fj_time,
        "fairret_time": fr_time,
        "fairret_best_over_fairjax": best / fj_time["median_s"],
    }
    if comparable:
        row["value_rel_diff"] = abs(row["fairret_mapped_value"] - row["fairjax_value"]) / abs(
            row["fairjax_value"]
        )
        row["grad_rel_diff"] = float(
            np.max(np.abs(mapped_grad - fj_grad)) / np.max(np.abs(fj_grad))
        )
    return row


# ----------------------------------------------------------------------------- Adult training


def train_fairjax(X, y, s, *, lam, lr, steps):
    def objective(params, X, y, s):
        logits = X @ params["w"] + params["b"]
        bce = jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))
        return bce + lam * penalties.sigmoid_rate_difference(logits, s, num_groups=2)

    @jax.jit
    def train(X, y, s):
        params = {"w": jnp.zeros(X.shape[1], X.dtype), "b": jnp.zeros((), X.dtype)}

        def step(params, _):
            grads = jax.grad(objective)(params, X, y, s)
            return jax.tree.map(lambda p, g: p - lr * g, params, grads), None

        return jax.lax.scan(step, params, None, length=steps)[0]

    return train


def train_torch(X, y, sens, *, lam, lr, steps, mods, relative):
    """Gradient descent in torch with fairret's NormLoss(PositiveRate()) (times rbar unless
    ``relative``, so that the objective equals fairjax's)."""
    torch = mods[0]
    loss_fn = fairret_loss("dp_max", mods)
    w = torch.zeros(X.shape[1], 1, dtype=X.dtype, device=X.device, requires_grad=True)
    b = torch.zeros(1, dtype=X.dtype, device=X.device, requires_grad=True)
    for _ in range(steps):
        logits = X @ w + b
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        fair = loss_fn(logits, sens)
        if not relative:
            fair = torch.sigmoid(logits).mean() * fair
        total = bce + lam * fair
        w.grad, b.grad = None, None
        total.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    if X.device.type == "cuda":
        torch.cuda.synchronize()
    return w.detach().cpu().numpy()[:, 0], float(b.detach().cpu().numpy()[0])


def adult_rows(mods, device, *, lam, lr, steps, repeats, threads):
    torch = mods[0]
    data = datasets.load_adult()
    Xtr = np.asarray(data.X_train, np.float32)
    ytr = np.asarray(data.y_train, np.float32)
    str_ = np.asarray(data.groups_train, np.int32)
    Xte, yte, ste = data.X_test, np.asarray(data.y_test), np.asarray(data.groups_test)

    def evaluate(w, b):
        pred = (np.asarray(Xte, np.float32) @ w + b > 0).astype(np.int32)
        return {
            "test_accuracy": float(np.mean(pred == yte)),
            "test_dp_gap": float(metrics.demographic_parity_difference(pred, ste, num_groups=2)),
        }

    rows = []
    train = train_fairjax(Xtr, ytr, str_, lam=lam, lr=lr, steps=steps)
    args = (jnp.asarray(Xtr), jnp.asarray(ytr), jnp.asarray(str_))
    params, t = median_time(lambda: jax.block_until_ready(train(*args)), repeats)
    w_fj, b_fj = np.asarray(params["w"]), float(params["b"])
    rows.append({"impl": "fairjax", "penalty": "sigmoid_rate_difference (max, T=1)", **t})
    rows[-1].update(evaluate(w_fj, b_fj))

    X = torch.tensor(Xtr, device=device)
    y = torch.tensor(ytr[:, None], device=device)
    sens = torch.nn.functional.one_hot(torch.as_tensor(str_, dtype=torch.int64), 2)
    sens = sens.to(device=device, dtype=torch.float32)
    train = functools.partial(train_torch, X, y, sens, lam=lam, lr=lr, steps=steps, mods=mods)
    for k in threads:
        if k is not None:
            torch.set_num_threads(k)
        (w, b), t = median_time(functools.partial(train, relative=False), repeats)
        rows.append(
            {
                "impl": "fairret",
                "penalty": "rbar * NormLoss(PositiveRate(), p=1) (= fairjax's objective)",
                "torch_threads": k,
                **t,
                **evaluate(w, b),
                "max_abs_weight_diff_vs_fairjax": float(np.max(np.abs(w - w_fj))),
            }
        )
    # fairret's loss as shipped penalises the relative gap: a different objective, trained
    # once for its accuracy and gap (not timed).
    w, b = train(relative=True)
    rows.append(
        {
            "impl": "fairret",
            "penalty": "NormLoss(PositiveRate(), p=1) as shipped (relative gap)",
            **evaluate(w, b),
        }
    )
    return rows


# ----------------------------------------------------------------------------- report


def write_report(meta, rows, adult, tag):
    RESULTS.mkdir(exist_ok=True)
    base = RESULTS / f"penalties_vs_fairret_{tag}"
    base.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": rows, "adult": adult}, indent=2) + "\n"
    )
    lines = [
        f"# Differentiable penalties: fairjax vs fairret ({meta['jax_backend']})",
        "",
        f"jax {meta['jax']} on {meta['jax_device']}; torch {meta['torch']} on "
        f"{meta['torch_device']}, fairret {meta['fairret']}; "
        f"{meta['cpu_count']} CPUs, {meta['machine']}; load average {meta['loadavg_start']} at "
        f"the start, {meta['loadavg_end']} at the end. Command: `{meta['command']}`.",
        "",
        "Value + gradient with respect to the logits, float32, median of "
        f"{meta['repeats']} calls after a warm-up (fairjax jitted; its compile time in "
        "brackets). Value and gradient differences compare fairjax with fairret's loss mapped "
        "to fairjax's units (squared: `(rbar * NormLoss(p=2))**2`; max, 2 groups: "
        "`rbar * NormLoss(p=1)`); `-` where no exact mapping exists (max gap vs 1-norm, > 2 "
        "groups).",
        "",
        "| term | n | G | fairjax ms (compile s) | fairret ms | fairret / fairjax "
        "| fairjax value | fairret loss | rel. diff value | rel. diff grad |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    threads = list(rows[0]["fairret_time"]) if rows else []
    fr_cols = "".join(f" fairret ms ({k} thr.) |" for k in threads)
    lines[-2:] = [
        f"| term | n | G | fairjax ms (compile s) |{fr_cols} best fairret / fairjax "
        "| fairjax value | fairret loss | rel. diff value | rel. diff grad |",
        "|---|---|---|---|" + "---|" * len(threads) + "---|---|---|---|---|",
    ]
    for r in rows:
        fj, fr = r["fairjax_time"], r["fairret_time"]
        fr_ms = "".join(f" {1e3 * fr[k]['median_s']:.2f} |" for k in threads)
        diff_v = f"{r['value_rel_diff']:.1e}" if "value_rel_diff" in r else "-"
        diff_g = f"{r['grad_rel_diff']:.1e}" if "grad_rel_diff" in r else "-"
        lines.append(
            f"| {r['term']} | {r['n']:.0e} | {r['groups']} | {1e3 * fj['median_s']:.2f} "
            f"({fj['compile_s']:.2f}) |{fr_ms} "
            f"{r['fairret_best_over_fairjax']:.1f} | {r['fairjax_value']:.4g} | "
            f"{r['fairret_value']:.4g} | {diff_v} | {diff_g} |"
        )
    lines += [
        "",
        'Terms: `dp_squared` = `sigmoid_rate_difference(reduction="squared")` vs '
        "`NormLoss(PositiveRate(), p=2)`; `eo_squared` = the same with "
        '`criterion="equal_opportunity"` vs `TruePositiveRate()`; `dp_max` = the default max '
        "gap vs `NormLoss(PositiveRate(), p=1)`.",
    ]
    if adult:
        a = meta["adult"]
        lines += [
            "",
            f"## Fair logistic regression on Adult (sex), {a['steps']} full-batch "
            f"gradient-descent steps, lr {a['lr']}, lam {a['lam']}",
            "",
            "Objective: mean cross-entropy + lam x the DP penalty; zero initial weights. "
            "fairjax: one jitted `lax.scan` (compile time in brackets); fairret: a torch loop. "
            f"Median of {meta['repeats']} trainings after a warm-up.",
            "",
            "| library | penalty | torch threads | time s (compile s) | test accuracy "
            "| test DP gap | max abs. weight diff. vs fairjax |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in adult:
            time_s = f"{r['median_s']:.2f}" if "median_s" in r else "not timed"
            if r["impl"] == "fairjax":
                time_s += f" ({r['compile_s']:.2f})"
            diff = r.get("max_abs_weight_diff_vs_fairjax")
            lines.append(
                f"| {r['impl']} | {r['penalty']} | {r.get('torch_threads', '-')} | {time_s} | "
                f"{r['test_accuracy']:.4f} | {r['test_dp_gap']:.4f} | "
                f"{'-' if diff is None else format(diff, '.1e')} |"
            )
    text = "\n".join(lines) + "\n"
    base.with_suffix(".md").write_text(text)
    print(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short training")
    parser.add_argument("--sizes", type=float, nargs="+", default=None)
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--terms", nargs="+", choices=list(TERMS), default=list(TERMS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=None,
        help="torch CPU thread counts to time (default: the CPU count and 1)",
    )
    parser.add_argument("--adult", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--steps", type=int, default=None, help="Adult training steps")
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=0.5)
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    mods = load_torch()
    if mods is None:
        print(
            "penalties_vs_fairret: torch and fairret are not installed; nothing to compare "
            '(pip install -e ".[peers-torch]").'
        )
        return 0
    torch = mods[0]
    sizes = args.sizes or ([1e3, 1e4, 1e5] if args.quick else [1e4, 1e5, 1e6])
    steps = args.steps or (100 if args.quick else 500)
    if torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        threads = [None]
    else:
        threads = list(dict.fromkeys(args.torch_threads or [os.cpu_count() or 1, 1]))
    meta = {
        "command": " ".join(["python", "benchmarks/penalties_vs_fairret.py", *sys.argv[1:]]),
        "jax": jax.__version__,
        "jaxlib": importlib.import_module("jaxlib").__version__,
        "jax_backend": jax.default_backend(),
        "jax_device": f"{len(jax.devices())} x {jax.devices()[0].device_kind}",
        "torch": torch.__version__,
        "torch_device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch_threads": threads,
        "fairret": importlib.metadata.version("fairret"),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "repeats": args.repeats,
        "loadavg_start": loadavg(),
    }
    print(json.dumps(meta), flush=True)
    rows = []
    for term in args.terms:
        for num_groups in args.groups:
            for n in [int(x) for x in sizes]:
                row = run_term(term, n, num_groups, mods, device, args.repeats, threads)
                rows.append(row)
                print(
                    f"{term:<11} n={n:>9,} G={num_groups}  fairjax "
                    f"{1e3 * row['fairjax_time']['median_s']:.2f} ms  fairret "
                    f"{1e3 * min(t['median_s'] for t in row['fairret_time'].values()):.2f} ms  "
                    "value diff "
                    f"{row.get('value_rel_diff', float('nan')):.1e}",
                    flush=True,
                )
    adult = []
    if args.adult:
        meta["adult"] = {
            "steps": steps,
            "lr": args.lr,
            "lam": args.lam,
        }
        adult = adult_rows(
            mods,
            device,
            lam=args.lam,
            lr=args.lr,
            steps=steps,
            repeats=args.repeats,
            threads=threads,
        )
        for r in adult:
            print(json.dumps(r), flush=True)
    meta["loadavg_end"] = loadavg()
    tag = meta["jax_backend"] + ("_quick" if args.quick else "")
    write_report(meta, rows, adult, tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
