"""The one input path of the estimators (fairjax/sklearn/_inputs.py): sample weights and
sensitive features are refused alike by every estimator, at fit and at predict time."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")
from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeRegressor  # noqa: E402

from fairjax.sklearn import (  # noqa: E402
    FairLogisticRegression,
    FERMClassifier,
    WassersteinFairRegressor,
)

N = 40
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, 3))
S = np.array(["a", "b"])[np.arange(N) % 2]
Y = (X[:, 0] + 0.5 * (S == "b") > 0).astype(int)

ESTIMATORS = {
    "ferm": lambda: FERMClassifier(max_iter=5),
    "logistic": lambda: FairLogisticRegression(max_iter=5),
    "logistic_target": lambda: FairLogisticRegression(target=0.1, max_iter=5),
    "wasserstein": lambda: WassersteinFairRegressor(Ridge(), split=False, random_state=0),
}


def _weights(kind, value):
    w = np.ones(N)
    w[3] = value
    return {"numpy": w, "list": w.tolist(), "pandas": pd.Series(w)}[kind]


@pytest.mark.parametrize("value", [-1.0, -1e-9, np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", ["numpy", "list", "pandas"])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_bad_sample_weights_are_refused_alike(name, kind, value):
    # FairLogisticRegression accepted negative weights (issue 18, item 6).
    est = ESTIMATORS[name]()
    message = r"`sample_weight` must be finite and >= 0, got 1 negative, NaN or infinite .* row 3"
    with pytest.raises(ValueError, match=message):
        est.fit(X, Y, sensitive_features=S, sample_weight=_weights(kind, value))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_weights_of_another_length_zero_or_complex_are_refused(name):
    est = ESTIMATORS[name]()
    with pytest.raises(ValueError, match=r"`sample_weight` must have shape \(40,\)"):
        est.fit(X, Y, sensitive_features=S, sample_weight=np.ones(N - 1))
    with pytest.raises(ValueError, match="`sample_weight` must not be all zero"):
        est.fit(X, Y, sensitive_features=S, sample_weight=np.zeros(N))
    with pytest.raises(TypeError, match="`sample_weight` must be real numbers"):
        est.fit(X, Y, sensitive_features=S, sample_weight=np.ones(N) * 1j)


def _missing(kind):
    """Sensitive features with a missing value in rows 5 and 8 (several spellings)."""
    s = S.astype(object)
    if kind == "object_none":
        s[[5, 8]] = None
        return s
    if kind == "object_nan":
        s[[5, 8]] = np.nan
        return s
    if kind == "list_none":
        s[[5, 8]] = None
        return s.tolist()
    if kind == "list_nan":  # NumPy alone would turn this NaN into the string 'nan'
        s[[5, 8]] = float("nan")
        return s.tolist()
    if kind == "float_nan":
        f = (S == "b").astype(float)
        f[[5, 8]] = np.nan
        return f
    if kind == "datetime_nat":
        d = np.array(["2020-01-01", "2021-01-01"], "datetime64[D]")[np.arange(N) % 2]
        d[[5, 8]] = np.datetime64("NaT")
        return d
    if kind == "pandas_na":
        return pd.Series(s, dtype="string").where(~np.isin(np.arange(N), [5, 8]), pd.NA)
    if kind == "pandas_nan":
        return pd.Series((S == "b").astype(float)).where(~np.isin(np.arange(N), [5, 8]))
    if kind == "pandas_nat":
        d = pd.Series(pd.to_datetime(["2020-01-01", "2021-01-01"] * (N // 2)))
        return d.where(~np.isin(np.arange(N), [5, 8]))
    if kind == "pandas_category":
        return pd.Series(s, dtype="category").where(~np.isin(np.arange(N), [5, 8]))
    if kind == "dataframe":
        frame = pd.DataFrame({"s": S, "t": np.arange(N) % 3})
        frame.loc[[5, 8], "t"] = None
        return frame
    if kind == "two_columns":
        two = np.c_[S.astype(object), (np.arange(N) % 3).astype(object)]
        two[[5, 8], 1] = None
        return two
    raise AssertionError(kind)


MISSING = [
    "object_none", "object_nan", "list_none", "list_nan", "float_nan", "datetime_nat",
    "pandas_na", "pandas_nan", "pandas_nat", "pandas_category", "dataframe", "two_columns",
]  # fmt: skip
MISSING_MESSAGE = r"`sensitive_features` holds missing values .* in 2 of 40 rows \(first: row 5\)"


@pytest.mark.parametrize("kind", MISSING)
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_missing_sensitive_values_are_refused_at_fit(name, kind):
    # Before: a group named 'None' / 'nan' / 'NaT', on which parity was enforced (item 7).
    with pytest.raises(ValueError, match=MISSING_MESSAGE):
        ESTIMATORS[name]().fit(X, Y, sensitive_features=_missing(kind))


@pytest.fixture(scope="module")
def fitted_wasserstein():
    return ESTIMATORS["wasserstein"]().fit(X, Y, sensitive_features=S)


@pytest.mark.parametrize("kind", MISSING)
def test_missing_sensitive_values_are_refused_at_predict(fitted_wasserstein, kind):
    # Refused before the values are compared with those seen at fit time (whatever the width).
    with pytest.raises(ValueError, match=MISSING_MESSAGE):
        fitted_wasserstein.predict(X, sensitive_features=_missing(kind))


def test_a_number_is_one_group_however_it_is_written():
    # Fitted on integer ids, predicted on floats (a pandas column with a NaN elsewhere turns
    # float): the same groups, as the audit CLI reads 1, 1.0 and 1e0 as one group.
    from fairjax.sklearn._inputs import encode_groups

    _, groups = encode_groups(np.array([0, 1, 1, 0]), 4)
    assert groups.tolist() == ["0", "1"]
    for spelled in (np.array([1.0, 0.0]), np.array(["1e0", "0.0"]), [np.int8(1), 0]):
        got, same = encode_groups(spelled, 2, classes=groups)
        assert got.tolist() == [1, 0] and same is groups
    with pytest.raises(ValueError, match=r"value\(s\) \['2'\] not seen at fit time"):
        encode_groups(np.array([2.0]), 1, classes=groups)
    # Two fitted values that are the same number stay two groups, matched as written.
    _, written = encode_groups(np.array(["1", "1.0", "a"], dtype=object), 3)
    assert encode_groups(np.array(["1.0", "1", "a"]), 3, classes=written)[0].tolist() == [1, 0, 2]
    # Text that is not a number, and booleans, are matched as written.
    _, flags = encode_groups(np.array([True, False]), 2)
    assert encode_groups(np.array([False]), 1, classes=flags)[0].tolist() == [0]
    with pytest.raises(ValueError, match="not seen at fit time"):
        encode_groups(np.array([" 1"]), 1, classes=groups)


SLOW = pytest.mark.slow  # a first fit compiles the estimator's program (~10 s)


@SLOW
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_valid_inputs_of_every_kind_agree(name):
    """Lists, pandas and NumPy inputs (weights and sensitive values) give the same model."""
    w = np.linspace(0.5, 1.5, N)
    outputs = []
    for s, sw in ((S, w), (S.tolist(), w.tolist()), (pd.Series(S), pd.Series(w))):
        est = ESTIMATORS[name]().fit(X, Y, sensitive_features=s, sample_weight=sw)
        outputs.append(
            est.predict(X, sensitive_features=s) if name == "wasserstein" else est.predict(X)
        )
        assert list(est.groups_) == ["a", "b"]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[0], outputs[2])
    # The string 'nan' written by a user is a value, not a missing one.
    s = np.where(S == "a", "nan", S)
    assert "nan" in list(ESTIMATORS[name]().fit(X, Y, sensitive_features=s).groups_)


@pytest.mark.parametrize(
    "name", ["wasserstein", pytest.param("ferm", marks=SLOW), pytest.param("logistic", marks=SLOW)]
)
def test_predict_checks_the_width_and_finiteness_of_X(name):
    est = ESTIMATORS[name]().fit(X, Y, sensitive_features=S)
    kw = {"sensitive_features": S} if name == "wasserstein" else {}
    with pytest.raises(ValueError, match="X has 2 features"):
        est.predict(X[:, :2], **kw)
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict(bad, **kw)


def _one_hot_frame():
    """A table whose ColumnTransformer output (default OneHotEncoder) is sparse."""
    rng = np.random.default_rng(1)
    city = rng.choice([f"c{k}" for k in range(12)], N)
    frame = pd.DataFrame({"age": X[:, 0], "city": city, "job": np.array(["x", "y"])[Y]})
    encode = ColumnTransformer(
        [("num", StandardScaler(), ["age"]), ("cat", OneHotEncoder(), ["city", "job"])]
    )
    return frame, encode


@pytest.mark.parametrize(
    "name",
    # ~2 s a case (the first fit compiles): the two input paths run by default, all in -m slow.
    [
        "logistic",
        "wasserstein",
        pytest.param("ferm", marks=SLOW),
        pytest.param("logistic_target", marks=SLOW),
    ],
)
def test_sparse_X_from_a_column_transformer_equals_dense(name):
    # Before: "Sparse data was passed for X, but dense data is required" (issue 24, item 9).
    frame, encode = _one_hot_frame()
    Z = encode.fit_transform(frame)
    assert sp.issparse(Z) and Z.shape[1] > 10  # 1 + the levels of city and job
    sparse, dense = ESTIMATORS[name](), ESTIMATORS[name]()
    if name == "wasserstein":  # a base estimator that is exact on sparse and dense X
        sparse.set_params(estimator=DecisionTreeRegressor(max_depth=3, random_state=0))
        dense.set_params(estimator=DecisionTreeRegressor(max_depth=3, random_state=0))
    pipe = make_pipeline(clone(encode), sparse)
    step = pipe.steps[-1][0]
    pipe.fit(frame, Y, **{f"{step}__sensitive_features": S})
    dense.fit(Z.toarray(), Y, sensitive_features=S)
    kw = {"sensitive_features": S} if name == "wasserstein" else {}
    np.testing.assert_array_equal(pipe.predict(frame, **kw), dense.predict(Z.toarray(), **kw))
    if name != "wasserstein":
        np.testing.assert_allclose(
            sparse.decision_function(Z.tocsc()), dense.decision_function(Z.toarray()), atol=1e-9
        )


def _cv_data(n=240):
    rng = np.random.default_rng(2)
    s = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    Xc = np.c_[rng.normal(size=(n, 2)), s == "b"]
    yc = Xc[:, 0] + 2 * (s == "b") + 0.1 * rng.normal(size=n)
    return Xc, yc, s


def _manual_cv(est, Xc, yc, s, *, cv, scored_with_s):
    """The folds' scores computed by hand: what routing must reproduce."""
    out = []
    for train, test in cv.split(Xc, yc):
        fitted = clone(est).fit(Xc[train], yc[train], sensitive_features=s[train])
        kw = {"sensitive_features": s[test]} if scored_with_s else {}
        out.append(fitted.score(Xc[test], yc[test], **kw))
    return np.array(out)


@SLOW  # ~4 s: three fits compile the barycenter programs
def test_wasserstein_cross_validates_with_metadata_routing():
    # Before: the default scorer called predict without sensitive features (every score NaN),
    # and with routing score() refused the argument (issue 24, item 10).
    Xc, yc, s = _cv_data()
    cv = KFold(3, shuffle=True, random_state=0)
    base = WassersteinFairRegressor(Ridge(), split=False, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        reg = clone(base).set_fit_request(sensitive_features=True)
        reg = reg.set_score_request(sensitive_features=True)
        scores = cross_val_score(reg, Xc, yc, cv=cv, params={"sensitive_features": s})
    expected = _manual_cv(base, Xc, yc, s, cv=cv, scored_with_s=True)
    np.testing.assert_array_equal(scores, expected)
    assert np.isfinite(scores).all()
    # score is R^2 of the fair predictions, with the rows' weights.
    fitted = clone(base).fit(Xc, yc, sensitive_features=s)
    w = np.linspace(0.5, 2.0, len(yc))
    pred = fitted.predict(Xc, sensitive_features=s)
    assert fitted.score(Xc, yc, sensitive_features=s, sample_weight=w) == pytest.approx(
        r2_score(yc, pred, sample_weight=w), rel=1e-12
    )
    with pytest.raises(ValueError, match="set_score_request"):
        fitted.score(Xc, yc)


@SLOW
@pytest.mark.parametrize("name", ["logistic", "ferm"])
def test_classifiers_cross_validate_with_and_without_routing(name):
    # Their predictions need no sensitive values: routing them to fit is enough.
    Xc, yc, s = _cv_data()
    yc = (yc > np.median(yc)).astype(int)
    cv = KFold(3, shuffle=True, random_state=0)
    est = ESTIMATORS[name]()
    expected = _manual_cv(est, Xc, yc, s, cv=cv, scored_with_s=False)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = clone(est).set_fit_request(sensitive_features=True)
        scores = cross_val_score(routed, Xc, yc, cv=cv, params={"sensitive_features": s})
    np.testing.assert_array_equal(scores, expected)
    # Without routing, params go to fit (scikit-learn's older behaviour): the same scores.
    legacy = cross_val_score(clone(est), Xc, yc, cv=cv, params={"sensitive_features": s})
    np.testing.assert_array_equal(legacy, expected)


def _unfitted_estimators():
    from sklearn.linear_model import LogisticRegression

    from fairjax import sklearn as fs

    base = {"estimator": LogisticRegression()}
    return [
        fs.FERMClassifier(),
        fs.FairLogisticRegression(),
        fs.WassersteinFairRegressor(Ridge()),
        fs.FairThresholdClassifier(**base),
        fs.MulticlassParityClassifier(**base),
        fs.BoundedGroupLossRegressor(),
    ]


@pytest.mark.parametrize("est", _unfitted_estimators(), ids=lambda e: type(e).__name__)
def test_saving_an_unfitted_estimator_says_not_fitted(est, tmp_path):
    # The wrappers of a base estimator raised AttributeError (`estimator_`), reading it for the
    # file's metadata before the fitted check (reported by a probe).
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        est.save(tmp_path / "model.npz")
    assert not (tmp_path / "model.npz").exists()


def test_intersections_of_values_holding_the_separator_stay_apart():
    # ("R|D", "Paris") and ("R", "D|Paris") both read "R|D|Paris": one group, and a fairness
    # constraint between them silently disappeared.
    from fairjax.sklearn._inputs import encode_groups

    s = np.array([["R|D", "Paris"], ["R", "D|Paris"], ["R|D", "Paris"], ["a\\", "b"]], object)
    ids, values = encode_groups(s, 4)
    assert len(values) == 3 and ids[0] == ids[2] != ids[1]
    again, _ = encode_groups(s[::-1], 4, values)  # predict time: the same encoding
    np.testing.assert_array_equal(again, ids[::-1])


def test_groups_saved_with_the_unescaped_join_still_match():
    # A model fitted before the escaping holds "C:\\x|a" as the class of ("C:\\x", "a").
    from fairjax.sklearn._inputs import encode_groups

    s = np.array([["C:\\x", "a"], ["b", "c"]], object)
    old_classes = np.array(["C:\\x|a", "b|c"], object)
    ids, classes = encode_groups(s, 2, old_classes)
    np.testing.assert_array_equal(ids, [0, 1])
    assert classes is old_classes


def test_float32_and_float64_values_are_one_group():
    # A float32 0.1 became the group "0.10000000149011612", so predicting on the float64 0.1
    # of the same column (or the reverse) was refused as a value not seen at fit time.
    from fairjax.sklearn._inputs import encode_groups

    values = np.array([0.1, 0.2, 0.1])
    for fit_dtype, predict_dtype in [(np.float32, np.float64), (np.float64, np.float32)]:
        _, groups = encode_groups(values.astype(fit_dtype), 3)
        assert groups.tolist() == ["0.1", "0.2"]
        ids, _ = encode_groups(values[::-1].astype(predict_dtype), 3, classes=groups)
        np.testing.assert_array_equal(ids, [0, 1, 0])
    # pandas: a float16 Series, a nullable Float32 one, and a float32 column intersected with
    # a text column.
    assert encode_groups(pd.Series(values.astype(np.float16)), 3)[1].tolist() == ["0.1", "0.2"]
    assert encode_groups(pd.Series(values, dtype="Float32"), 3)[1].tolist() == ["0.1", "0.2"]
    frame = pd.DataFrame({"a": values.astype(np.float32), "b": ["x", "y", "x"]})
    _, groups = encode_groups(frame, 3)
    assert groups.tolist() == ["0.1|x", "0.2|y"]
    wide = frame.assign(a=values)  # the float64 column the float32 one was made from
    np.testing.assert_array_equal(encode_groups(wide, 3, groups)[0], [0, 1, 0])
    # A model saved before holds the float64 text of its float32 values: float32 still matches.
    saved = np.array(["0.10000000149011612", "0.20000000298023224"], object)
    ids, same = encode_groups(values.astype(np.float32), 3, saved)
    np.testing.assert_array_equal(ids, [0, 1, 0])
    assert same is saved


def test_without_scikit_learn_the_package_says_which_extra_to_install():
    # The README installs ".[plot]": fairjax.sklearn failed in a private module with
    # "No module named 'sklearn'" (reported by a new-user walkthrough).
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "import fairjax, fairjax.metrics\n"  # the core imports without it
        "try:\n    import fairjax.sklearn\n"
        "except ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "fairjax[sklearn]"' in out.stdout
