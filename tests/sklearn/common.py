"""What the tests of the three estimators share: scikit-learn's estimator checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
