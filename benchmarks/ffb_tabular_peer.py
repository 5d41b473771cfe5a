"""The Fair Fairness Benchmark's own PyTorch code on the grid of ``ffb_tabular.py`` (the peer).

Runs in FFB's environment (torch, pandas 1.5, scikit-learn 1.2, statsmodels; no jax), not
fairjax's. It imports FFB's modules from ``--ffb-src`` (their ``src/`` folder) and calls their
own functions for every step that decides a number: ``dataset.load_adult_data`` /
``load_compas_data``, ``networks.MLP`` / ``AdvDebiasing`` / ``LAFTR``, ``loss.DiffDP`` /
``DiffEOpp`` / ``DiffEOdd`` /
``HSIC`` / ``PRLoss``, ``utils.seed_everything``, ``PandasDataSet``, ``InfiniteDataLoader``,
the ``train_step`` of each ``ffb_tabular_<method>.py`` and ``metrics.metric_evaluation``.
The glue of their scripts' ``__main__`` block (one-hot encoding, the 40/30/30 stratified
split, standard scaling of the numerical columns fitted on the training part, Adam, StepLR)
is restated here with the same calls and defaults, because their block evaluates train,
validation and test sets after *every* step; this driver evaluates the test set once, after
the last step, as ``ffb_tabular.py`` does. wandb is replaced by a stub module (no logging),
and tensors stay on the CPU (``.cuda()`` and ``.to("cuda")`` in FFB's losses are made no-ops).

Usage (in FFB's environment, from the repository root)::

    FAIRJAX_DATA_HOME=path/to/data python benchmarks/ffb_tabular_peer.py \
        --ffb-src path/to/fair_fairness_benchmark/src --dataset adult --sensitive-attr sex \
        --methods erm,diffdp,hsic --lams 0.5,1,2 --seeds 2 --json FILE
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import types

try:  # run as a script (benchmarks/ on the path) or as benchmarks.ffb_tabular_peer
    from _common import write_json
except ImportError:
    from benchmarks._common import write_json

METHODS = ("erm", "diffdp", "diffeopp", "diffeodd", "hsic", "pr", "adv", "laftr")
SCRIPTS = {"adv": "adv_gr"}  # method -> the suffix of FFB's ffb_tabular_<suffix>.py
LOSSES = {
    "diffdp": "DiffDP",
    "diffeopp": "DiffEOpp",
    "diffeodd": "DiffEOdd",
    "hsic": "HSIC",
    "pr": "PRLoss",
}
NAMES = ("acc", "auc", "ap", "dp", "eopp", "eodd", "prule", "abcc")


def _stub_wandb_and_cuda(torch):
    """No wandb, no CUDA: FFB's modules import wandb and move a few tensors to ``cuda``.

    Their ``dataset.py`` also imports torchvision (for the image data sets only) and
    ``tkinter``: stubs stand in for those that are not installed.
    """
    sys.modules["wandb"] = types.ModuleType("wandb")
    for name in ("torchvision", "torchvision.datasets", "torchvision.transforms", "tkinter"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    folder = sys.modules.get("torchvision.datasets.folder") or types.ModuleType("folder")
    folder.pil_loader = getattr(folder, "pil_loader", None)
    sys.modules["torchvision.datasets.folder"] = folder
    sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.datasets"].folder = folder
    if not hasattr(sys.modules["tkinter"], "S"):
        sys.modules["tkinter"].S = "s"
    torch.Tensor.cuda = lambda self, *a, **k: self
    to = torch.Tensor.to

    def to_cpu(self, *args, **kwargs):
        args = tuple("cpu" if a == "cuda" else a for a in args)
        return to(self, *args, **kwargs)

    torch.Tensor.to = to_cpu


def _data(ffb, dataset, attr, data_home, seed):
    """FFB's loader, then their script's one-hot, split and scaling (same calls, same order)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if dataset == "adult":
        X, y, s = ffb.dataset.load_adult_data(
            path=os.path.join(data_home, "adult"), sensitive_attribute=attr
        )
    else:
        X, y, s = ffb.dataset.load_compas_data(
            path=os.path.join(data_home, "compas"), sensitive_attribute=attr
        )
    cat = X.select_dtypes("string").columns
    if len(cat) > 0:
        X = pd.get_dummies(X, columns=cat)
    X_tr, X_tv, y_tr, y_tv, s_tr, s_tv = train_test_split(
        X, y, s, test_size=0.6, stratify=y, random_state=seed
    )
    X_te, _X_va, y_te, _y_va, s_te, _s_va = train_test_split(
        X_tv, y_tv, s_tv, test_size=0.5, stratify=y_tv, random_state=seed
    )
    num = X.select_dtypes("float32").columns
    if len(num) > 0:
        scaler = StandardScaler().fit(X_tr[num])
        for part in (X_tr, X_te):
            part[num] = pd.DataFrame(scaler.transform(part[num]), columns=num, index=part.index)
    return (X_tr, y_tr, s_tr), (X_te, y_te, s_te), X.shape[1]


def run_one(ffb, torch, *, method, lam, seed, args):
    """One FFB run: data, model, ``num_steps`` of their ``train_step``, test metrics once."""
    t0 = time.perf_counter()
    ffb.utils.seed_everything(seed=seed)
    (X_tr, y_tr, s_tr), (X_te, y_te, s_te), d = _data(
        ffb, args.dataset, args.sensitive_attr, args.data_home, seed
    )
    train = ffb.utils.PandasDataSet(X_tr, y_tr, s_tr)
    test = ffb.utils.PandasDataSet(X_te, y_te, s_te)
    loader = ffb.utils.InfiniteDataLoader(
        train, batch_size=args.batch_size, shuffle=True, drop_last=True
    )
    clf = torch.nn.BCELoss()
    if method == "adv":  # ffb_tabular_adv_gr.py's __main__: AdvDebiasing, two BCELoss
        net = ffb.networks.AdvDebiasing(n_features=d, num_classes=1, hidden_layers=[512, 256, 64])
    elif method == "laftr":  # ffb_tabular_laftr.py's __main__ (A_x 0.1, A_y 1, A_z = lam)
        MLP = ffb.networks.MLP
        net = ffb.networks.LAFTR(
            MLP(n_features=d, num_classes=1, mlp_layers=[256, 128]),
            MLP(n_features=128, num_classes=1, mlp_layers=[d]),
            MLP(n_features=128, num_classes=1, mlp_layers=[64]),
            MLP(n_features=128, num_classes=1, mlp_layers=[64]),
            A_x=0.1,
            A_y=1.0,
            A_z=lam,
        )
    else:
        net = ffb.networks.MLP(n_features=d, num_classes=1, mlp_layers=[512, 256, 64])
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=50, gamma=0.1)
    script = importlib.import_module(f"ffb_tabular_{SCRIPTS.get(method, method)}")
    for step, (X, y, s) in enumerate(loader):
        if step >= args.num_steps:
            break
        if method == "erm":
            script.train_step(net, X, y, s, sched, opt, clf, "cpu")
        elif method == "adv":
            script.train_step(net, X, y, s, clf, torch.nn.BCELoss(), opt, sched, lam, "cpu")
        elif method == "laftr":
            script.train_step(net, X, y, s, opt, sched, "cpu")
        else:
            fair = getattr(ffb.loss, LOSSES[method])()
            script.train_step(net, X, y, s, sched, opt, clf, fair, lam, "cpu")
    net.eval()
    with torch.no_grad():
        Xt, yt, st = test.tensors
        if method == "adv":
            out, _ = net(Xt)
        elif method == "laftr":
            _, _, out, _ = net(Xt, st)
        else:
            _, out = net(Xt)
    m = ffb.metrics.metric_evaluation(
        y_gt=yt.numpy(), y_pre=out.numpy(), s=st.numpy(), prefix="test"
    )
    rec = {k: float(m[f"test/{k}"]) for k in NAMES}
    rec.update(method=method, lam=lam, seed=seed, wall_s=time.perf_counter() - t0)
    return rec


def losses_fixture(ffb, torch, path):
    """FFB's fairness losses and their gradients on random probabilities, saved for the tests.

    ``tests/penalties/test_ffb.py`` compares fairjax's terms with these arrays (two batches:
    unequal groups of 257 rows, and 64 rows with ties).
    """
    import numpy as np

    rng = np.random.default_rng(0)
    out = {}
    for tag, n in (("a", 257), ("b", 64)):
        p = rng.uniform(0.02, 0.98, n).astype(np.float32)
        if tag == "b":
            p[::4] = 0.5  # ties
        s = (rng.uniform(size=n) < 0.3).astype(np.float32)
        y = (rng.uniform(size=n) < 0.4).astype(np.float32)
        out[f"{tag}_p"], out[f"{tag}_s"], out[f"{tag}_y"] = p, s, y
        for name, cls in LOSSES.items():
            pt = torch.tensor(p[:, None], requires_grad=True)
            st, yt = torch.tensor(s[:, None]), torch.tensor(y[:, None])
            loss = getattr(ffb.loss, cls)()
            val = loss(pt, st, yt) if name in ("diffeopp", "diffeodd") else loss(pt, st)
            val.backward()
            out[f"{tag}_{name}"] = np.float64(val.item())
            out[f"{tag}_{name}_grad"] = pt.grad.numpy()[:, 0]
    np.savez(path, **out)
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ffb-src", required=True)
    p.add_argument("--data-home", default=os.environ.get("FAIRJAX_DATA_HOME", "."))
    p.add_argument("--dataset", default="adult", choices=["adult", "compas"])
    p.add_argument("--sensitive-attr", default="sex")
    p.add_argument("--methods", default="erm,diffdp,hsic")
    p.add_argument("--lams", default="0.5,1,2")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--num-steps", type=int, default=150, help="FFB's default: 150")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--json", default=None)
    p.add_argument("--losses-fixture", default=None, help="only write FFB's losses to this .npz")
    args = p.parse_args(argv)

    import torch

    _stub_wandb_and_cuda(torch)
    sys.path.insert(0, os.path.abspath(args.ffb_src))
    ffb = types.SimpleNamespace(
        **{
            m: importlib.import_module(m)
            for m in ("dataset", "networks", "loss", "utils", "metrics")
        }
    )
    if args.losses_fixture:
        return losses_fixture(ffb, torch, args.losses_fixture)
    lams = [float(x) for x in args.lams.split(",")]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    records, t0, c0 = [], time.perf_counter(), time.process_time()
    for method in args.methods.split(","):
        if method not in METHODS:
            raise SystemExit(f"--methods: unknown method {method!r}; choose from {METHODS}")
        for lam in [0.0] if method == "erm" else lams:
            for seed in seeds:
                rec = run_one(ffb, torch, method=method, lam=lam, seed=seed, args=args)
                records.append(rec)
                print(json.dumps(rec), flush=True)
    total = time.perf_counter() - t0
    out = {
        "side": "ffb-pytorch",
        "dataset": args.dataset,
        "sensitive_attr": args.sensitive_attr,
        "num_steps": args.num_steps,
        "batch_size": args.batch_size,
        "evaluation": "test set once, after the last step",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "total_wall_s": total,
        "total_cpu_s": time.process_time() - c0,
        "records": records,
    }
    print(f"total wall time {total:.1f} s for {len(records)} runs")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
