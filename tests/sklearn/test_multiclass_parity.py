"""Tests of fairjax.sklearn.MulticlassParityClassifier (K classes, demographic parity)."""

import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from fairjax import metrics
from fairjax.sklearn import MulticlassParityClassifier

from .common import check_round_trip, estimator_checks

# Without sensitive features every row is in one group: no constraint, the rule is the base
# estimator's argmax, and every check applies.
test_sklearn_estimator_checks = pytest.mark.slow(
    estimator_checks(MulticlassParityClassifier(LogisticRegression()), {})
)


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["a", "b", "c"]), size=n, p=[0.5, 0.3, 0.2])
    code = (s == "b") + 2 * (s == "c")
    X = np.c_[rng.normal(size=(n, 2)), code]
    y = np.digitize(X[:, 0] + 0.4 * X[:, 1] + 0.6 * code + 0.5 * rng.normal(size=n), [0.3, 1.3])
    return X, np.array(["low", "mid", "high"])[y], s, code


def test_pandas_input_parity_on_fitted_and_held_out_rows():
    pd = pytest.importorskip("pandas")
    X, y, s, code = _data(4000)
    frame = pd.DataFrame(X, columns=["x0", "x1", "code"])
    base = LogisticRegression().fit(frame[:2000], y[:2000])
    clf = MulticlassParityClassifier(base, prefit=True)
    clf.fit(frame[2000:], y[2000:], sensitive_features=pd.Series(s[2000:]))
    assert list(clf.classes_) == ["high", "low", "mid"] and list(clf.groups_) == ["a", "b", "c"]
    assert list(clf.feature_names_in_) == ["x0", "x1", "code"]
    d = clf.predict_proba(frame[2000:], sensitive_features=s[2000:])
    np.testing.assert_array_equal(d.sum(1), 1)
    gap = float(
        metrics.multiclass_parity_difference(None, d, code[2000:], num_classes=3, num_groups=3)
    )
    before = float(
        metrics.multiclass_parity_difference(
            None, base.predict_proba(frame[2000:]), code[2000:], num_classes=3, num_groups=3
        )
    )
    assert gap <= 0.01 < before
    pred = clf.predict(frame[2000:], sensitive_features=s[2000:])
    np.testing.assert_array_equal(pred, clf.classes_[d.argmax(1)])
    # fitted on the calibration rows, measured on the training rows (new to the offsets)
    d_train = clf.predict_proba(frame[:2000], sensitive_features=s[:2000])
    assert (
        float(
            metrics.multiclass_parity_difference(
                None, d_train, code[:2000], num_classes=3, num_groups=3
            )
        )
        < 0.06
    )


def test_tolerance_one_is_the_base_estimators_argmax():
    X, y, s, _ = _data()
    clf = MulticlassParityClassifier(LogisticRegression(), tolerance=1.0).fit(
        X, y, sensitive_features=s
    )
    np.testing.assert_array_equal(clf.predict(X, sensitive_features=s), clf.estimator_.predict(X))


def test_save_load_round_trip(tmp_path):
    X, y, s, _ = _data()
    clf = MulticlassParityClassifier(LogisticRegression(), tolerance=0.02).fit(
        X, y, sensitive_features=s
    )
    loaded = check_round_trip(clf, os.path.join(tmp_path, "mc.npz"), X, y, s)
    assert loaded.get_params()["tolerance"] == 0.02


def test_bad_input():
    X, y, s, _ = _data(n=300)
    with pytest.raises(ValueError, match="predict_proba"):
        MulticlassParityClassifier(LinearSVC()).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="labels"):
        MulticlassParityClassifier(LogisticRegression()).fit(
            X, np.linspace(0, 1, 300), sensitive_features=s
        )
    with pytest.raises(ValueError, match="prefit"):
        MulticlassParityClassifier(LogisticRegression(), prefit=True).fit(
            X, y, sensitive_features=s
        )
    with pytest.raises(ValueError, match="tolerance"):
        MulticlassParityClassifier(LogisticRegression(), tolerance=-0.1).fit(
            X, y, sensitive_features=s
        )
    clf = MulticlassParityClassifier(LogisticRegression()).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="not seen"):
        clf.predict(X, sensitive_features=np.full(300, "z"))
