"""What the tests of the estimators share: scikit-learn's estimator checks, and the save/load
round trip of an estimator that wraps a base estimator."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks


def not_exact_under_weights(reason: str) -> dict[str, str]:
    """The weight-equivalence checks (dense and sparse X) that an estimator cannot pass, with
    why: weights and repeated rows agree only to the solver's precision, or not at all."""
    return {
        f"check_sample_weight_equivalence_on_{kind}_data": reason for kind in ("dense", "sparse")
    }


def estimator_checks(estimator, expected_failed: Mapping[str, str]) -> Callable:
    """A test running every scikit-learn estimator check on ``estimator``; the checks named in
    ``expected_failed`` (name -> reason) are expected to fail. Bind it to a ``test_`` name."""

    @parametrize_with_checks([estimator], expected_failed_checks=lambda est: dict(expected_failed))
    def test_sklearn_estimator_checks(estimator, check):
        check(estimator)

    return test_sklearn_estimator_checks


def check_round_trip(clf, path: str | os.PathLike, X, y, s, *, method: str = "predict"):
    """Saves ``clf`` (fitted, wrapping a base estimator) to ``path`` and loads it back with its
    base estimator: ``method`` gives the same outputs, and a base estimator of another class is
    refused. Returns the loaded estimator."""
    clf.save(path)
    loaded = type(clf).load(path, estimator=clf.estimator_)
    np.testing.assert_array_equal(
        getattr(loaded, method)(X, sensitive_features=s),
        getattr(clf, method)(X, sensitive_features=s),
    )
    with pytest.raises(ValueError, match="class"):
        type(clf).load(path, estimator=DecisionTreeClassifier().fit(X, y))
    return loaded
