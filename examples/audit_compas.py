"""The CSV of ``docs/audit.md``'s COMPAS example: a logistic regression's test-split scores.

The model is the demo's first one (mean logistic loss plus an L2 term of ``1e-4``, full-batch
Adam with step ``0.05``, 500 steps), trained on the COMPAS training split without the race
column. The CSV holds only numeric columns (``y_true``, ``score``, ``race_group``,
``sex_group``) and no row of the raw data, which holds names and birth dates. Then::

    FAIRJAX_DATA_HOME=path/to/data python examples/audit_compas.py compas_predictions.csv
    fairjax audit compas_predictions.csv --y-true y_true --score score \\
        --sensitive race_group --json report.json --plot cdf.png
"""

from __future__ import annotations

import argparse
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fairjax import datasets, losses, training


def objective(params, batch):
    """Mean logistic loss of a linear model plus ``1e-4 |w|^2``."""
    X, y = batch
    logits = X @ params["w"] + params["b"]
    return losses.logistic(logits, y).mean() + 1e-4 * params["w"] @ params["w"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="the CSV to write")
    path = parser.parse_args().path
    with warnings.catch_warnings():  # the loader's note on what COMPAS labels record
        warnings.simplefilter("ignore", UserWarning)
        data = datasets.load_compas(include_sensitive=False)
    X = jnp.asarray(data.X_train, jnp.float32)
    y = jnp.asarray(data.y_train, jnp.float32)
    p0 = {"w": jnp.zeros(X.shape[1]), "b": jnp.zeros(())}
    fitted = training.fit(objective, p0, (X, y), optimizer=optax.adam(0.05), num_steps=500)
    p = fitted.state.params
    X_test = jnp.asarray(data.X_test, jnp.float32)
    score = np.asarray(jax.nn.sigmoid(X_test @ p["w"] + p["b"]))
    male = np.asarray(data.X_test)[:, list(data.feature_names).index("sex=Male")] > 0
    columns = (np.asarray(data.y_test).astype(int), score, np.asarray(data.groups_test), male)
    with open(path, "w") as f:
        f.write("y_true,score,race_group,sex_group\n")
        for y_true, s, race, sex in zip(*columns, strict=True):
            f.write(f"{y_true},{float(s):.9g},{int(race)},{int(sex)}\n")
    print(f"wrote {path}: {score.shape[0]:,} rows")


if __name__ == "__main__":
    main()
