"""FairLogisticRegression on Adult at a demographic-parity target, as a new user would fit it.

Fits ``FairLogisticRegression(target=...)`` (default parameters otherwise) on the embedded UCI
Adult training split (sensitive attribute: sex) and prints the test accuracy, the test and
training demographic-parity differences and the fit time (first call, compilation included).

Usage::

    python benchmarks/estimators_adult.py [--target 0.02]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fairjax import datasets, metrics
from fairjax.sklearn import FairLogisticRegression


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.02)
    args = parser.parse_args(argv)
    data = datasets.load_adult()
    start = time.perf_counter()
    clf = FairLogisticRegression(target=args.target).fit(
        data.X_train, data.y_train, sensitive_features=data.groups_train
    )
    seconds = time.perf_counter() - start
    G = data.num_groups
    out = {"target": args.target, "fit_seconds": round(seconds, 2)}
    for split, X, y, s in (
        ("train", data.X_train, data.y_train, data.groups_train),
        ("test", data.X_test, data.y_test, data.groups_test),
    ):
        pred = clf.predict(X).astype(np.float32)
        out[f"{split}_accuracy"] = round(float(np.mean(pred == y)), 4)
        dp = metrics.demographic_parity_difference(pred, s, num_groups=G)
        out[f"{split}_dp_difference"] = round(float(dp), 4)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
