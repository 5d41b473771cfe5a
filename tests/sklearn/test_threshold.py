"""Tests of fairjax.sklearn.FairThresholdClassifier (beside fairlearn's ThresholdOptimizer)."""

import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from fairjax import criteria
from fairjax.sklearn import FairThresholdClassifier

from .common import check_round_trip


@parametrize_with_checks([FairThresholdClassifier(LogisticRegression())])
@pytest.mark.slow
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.choice(np.array(["a", "b", "c"]), size=n, p=[0.5, 0.3, 0.2])
    code = (s == "b") + 2 * (s == "c")
    X = np.c_[rng.normal(size=(n, 2)), code]
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.6 * code + rng.normal(size=n) > 0.8).astype(int)
    return X, y, s, code


def test_pandas_input_exact_parity_and_drawn_decisions():
    pd = pytest.importorskip("pandas")
    X, y, s, code = _data()
    frame = pd.DataFrame(X, columns=["x0", "x1", "code"])
    labels = np.where(y == 1, "yes", "no")
    clf = FairThresholdClassifier(LogisticRegression(), criterion="equalized_odds")
    clf.fit(frame, labels, sensitive_features=pd.Series(s))
    assert list(clf.classes_) == ["no", "yes"] and list(clf.groups_) == ["a", "b", "c"]
    assert list(clf.feature_names_in_) == ["x0", "x1", "code"]
    proba = clf.predict_proba(frame, sensitive_features=s)
    np.testing.assert_allclose(proba.sum(1), 1)
    rates, counts = criteria.group_rates(
        proba[:, 1], code, y, criterion="equalized_odds", num_groups=3
    )
    assert np.all(np.asarray(criteria.largest_gap(rates, counts)) < 1e-5)
    pred = clf.predict(frame, sensitive_features=s, random_state=0)
    assert set(pred) <= {"no", "yes"}
    assert np.array_equal(pred, clf.predict(frame, sensitive_features=s, random_state=0))
    assert abs(np.mean(pred == "yes") - proba[:, 1].mean()) < 0.05


@pytest.mark.parametrize(
    "criterion",
    ["demographic_parity"]
    + [
        pytest.param(c, marks=pytest.mark.slow)
        for c in ("true_positive_rate_parity", "equalized_odds")
    ],
)
def test_training_accuracy_at_least_fairlearns(criterion):
    """Exact LP optimum >= ThresholdOptimizer's grid solution on the same prefit scores."""
    fairlearn = pytest.importorskip("fairlearn.postprocessing")
    X, y, s, _code = _data(seed=1)
    base = LogisticRegression().fit(X, y)
    ours = FairThresholdClassifier(base, criterion=criterion, prefit=True)
    ours.fit(X, y, sensitive_features=s)
    to = fairlearn.ThresholdOptimizer(
        estimator=base, constraints=criterion, prefit=True, predict_method="predict_proba"
    )
    to.fit(X, y, sensitive_features=s)
    p_ours = ours.predict_proba(X, sensitive_features=s)[:, 1]
    p_to = to._pmf_predict(X, sensitive_features=s)[:, 1]
    acc = [np.mean(np.where(y == 1, p, 1 - p)) for p in (p_ours, p_to)]
    assert acc[0] >= acc[1] - 1e-6


def test_save_load_round_trip_and_checks(tmp_path):
    X, y, s, _ = _data()
    clf = FairThresholdClassifier(
        LogisticRegression(), criterion="equal_opportunity", tolerance=0.02
    ).fit(X, y, sensitive_features=s)
    path = os.path.join(tmp_path, "thr.npz")
    loaded = check_round_trip(clf, path, X, y, s, method="predict_proba")
    assert loaded.get_params()["tolerance"] == 0.02
    with pytest.raises(TypeError, match="estimator"):
        FairThresholdClassifier.load(path)


def test_bad_input():
    X, y, s, _ = _data(n=200)
    with pytest.raises(ValueError, match="binary"):
        FairThresholdClassifier(LogisticRegression()).fit(
            X, y + (np.arange(200) % 3 == 0), sensitive_features=s
        )
    with pytest.raises(ValueError, match="prefit"):
        FairThresholdClassifier(LogisticRegression(), prefit=True).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="criterion"):
        FairThresholdClassifier(LogisticRegression(), criterion="parity").fit(
            X, y, sensitive_features=s
        )
    clf = FairThresholdClassifier(LogisticRegression()).fit(X, y, sensitive_features=s)
    with pytest.raises(ValueError, match="not seen"):
        clf.predict(X, sensitive_features=np.full(200, "z"))


@pytest.mark.parametrize(
    ("criterion", "label", "match"),
    [
        ("equal_opportunity", 1, "with y == 'yes'"),
        ("false_positive_parity", 0, "with y == 'no'"),
        ("equalized_odds", 1, "with y == 'yes'"),
    ],
)
def test_a_group_without_a_needed_label_is_named_by_its_value(criterion, label, match):
    # Before: "group(s) [1] have no calibration positive rows", the internal group id.
    X, y, s, _ = _data(n=200)
    s = np.where(s == s[0], "women", "men")
    y = np.where(s == "women", 1 - label, y)
    y_text = np.where(y == 1, "yes", "no")
    clf = FairThresholdClassifier(LogisticRegression(), criterion=criterion)
    with pytest.raises(ValueError, match=rf"\['women'\] have no sample {match}"):
        clf.fit(X, y_text, sensitive_features=s)
    # All of a group's rows at weight 0: named too, for the criterion that counts all rows.
    w = np.where(s == "men", 0.0, 1.0)
    with pytest.raises(ValueError, match=r"\['men'\] have no sample of positive weight"):
        FairThresholdClassifier(LogisticRegression()).fit(
            X, y_text, sensitive_features=s, sample_weight=w
        )


def test_score_takes_the_sensitive_features_so_cross_validation_can_route_them():
    # score() took no sensitive_features: with several groups every fold of a grid search
    # scored NaN and best_params_ was arbitrary.
    import sklearn
    from sklearn.model_selection import GridSearchCV

    from fairjax.sklearn import MulticlassParityClassifier

    rng = np.random.default_rng(3)
    n = 900
    s = rng.integers(0, 2, n)
    X = np.c_[rng.normal(size=n), s]
    y = (X[:, 0] + s + 0.5 * rng.normal(size=n) > 0.5).astype(int)
    clf = FairThresholdClassifier(LogisticRegression()).fit(X, y, sensitive_features=s)
    # The expected accuracy of the randomised rule: its decisions' accuracy on average.
    p = clf.predict_proba(X, sensitive_features=s)[:, 1]
    expected = np.mean(np.where(y == 1, p, 1 - p))
    assert clf.score(X, y, sensitive_features=s) == pytest.approx(expected)
    w = rng.uniform(0, 2, n)
    weighted = np.average(np.where(y == 1, p, 1 - p), weights=w)
    assert clf.score(X, y, sensitive_features=s, sample_weight=w) == pytest.approx(weighted)
    with pytest.raises(ValueError, match="`sensitive_features` are required to score"):
        clf.score(X, y)
    y3 = np.digitize(X[:, 0] + s, [0.0, 1.0])
    with sklearn.config_context(enable_metadata_routing=True):
        for est, target in ((FairThresholdClassifier(LogisticRegression()), y),
                            (MulticlassParityClassifier(LogisticRegression()), y3)):  # fmt: skip
            est = est.set_fit_request(sensitive_features=True)
            est = est.set_score_request(sensitive_features=True)
            search = GridSearchCV(est, {"tolerance": [0.0, 0.2]}, cv=3)
            search.fit(X, target, sensitive_features=s)
            scores = search.cv_results_["mean_test_score"]
            assert np.isfinite(scores).all() and 0.5 < scores.min() <= scores.max() <= 1
