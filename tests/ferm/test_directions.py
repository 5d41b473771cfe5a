"""Tests of fairjax.ferm._directions (fairness_direction) against numpy group means."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from fairjax import ferm
from tests.ferm.common import data, np_direction


@pytest.mark.parametrize("G", [2, 4])
def test_direction_matches_numpy(G):
    X, y, s = data(G=G)
    u = ferm.fairness_direction(X, y, s, num_groups=G)
    np.testing.assert_allclose(u, np_direction(X, y, s, G), rtol=1e-5, atol=1e-5)


def test_direction_condition_all_and_pm1_labels():
    X, y, s = data()
    u_all = ferm.fairness_direction(X, y, s, num_groups=2, criterion="demographic_parity")
    np.testing.assert_allclose(u_all[0], X[s == 1].mean(0) - X[s == 0].mean(0), atol=1e-5)
    u01 = ferm.fairness_direction(X, y, s, num_groups=2)
    upm = ferm.fairness_direction(X, 2 * y - 1, s, num_groups=2)
    np.testing.assert_allclose(u01, upm)


def test_direction_pooled_spans_same_subspace():
    X, y, s = data(G=4)
    a = np.asarray(ferm.fairness_direction(X, y, s, num_groups=4))
    b = np.asarray(ferm.fairness_direction(X, y, s, num_groups=4, reference="pooled"))
    pa = a.T @ np.linalg.pinv(a.T)
    pb = b.T @ np.linalg.pinv(b.T)
    np.testing.assert_allclose(pa, pb, atol=1e-4)


def test_direction_jit_weights_mask_equals_subset():
    X, y, s = data()
    w = np.ones(len(y), np.float32)
    w[::3] = 0.0
    f = jax.jit(lambda X, y, s, w: ferm.fairness_direction(X, y, s, num_groups=2, weights=w))
    keep = w > 0
    np.testing.assert_allclose(
        f(X, y, s, w), ferm.fairness_direction(X[keep], y[keep], s[keep], num_groups=2), atol=1e-5
    )


def test_direction_empty_group_is_zero_row_and_reference_skips_it():
    X, y, s = data(G=2)
    s3 = s + 1  # group 0 is empty; groups 1, 2 hold the data
    u = ferm.fairness_direction(X, y, s3, num_groups=3)
    np.testing.assert_allclose(u[0], 0.0)  # the empty group 0
    np.testing.assert_allclose(u[1], np_direction(X, y, s, 2)[0], atol=1e-5)


def test_direction_bad_inputs():
    X, y, s = data()
    y_bad = y.copy()
    y_bad[s == 1] = 0
    with pytest.raises(ValueError, match=r"group\(s\) \[1\].*no positive"):
        ferm.fairness_direction(X, y_bad, s, num_groups=2)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="`X` must be finite"):
        ferm.fairness_direction(Xn, y, s, num_groups=2)
    with pytest.raises(ValueError, match="`y` must have one row per sample"):
        ferm.fairness_direction(X, y[:-1], s, num_groups=2)
    # A NaN label counted as a negative example (fit_projection too, which calls this).
    yn = y.astype(np.float32)
    yn[0] = np.nan
    with pytest.raises(ValueError, match="`y` must be finite"):
        ferm.fairness_direction(X, yn, s, num_groups=2)
    with pytest.raises(ValueError, match="`y` must be finite"):
        ferm.fit_projection(X, yn, s, num_groups=2)
    with pytest.raises(ValueError, match="`condition`"):
        ferm.fairness_direction(X, y, s, num_groups=2, condition="negative")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"condition": "positive"}, "equal_opportunity"),
        ({"condition": "all"}, "demographic_parity"),
        ({"label_value": 1}, "equal_opportunity"),
        ({"label_value": 0}, "false_positive_parity"),
        ({"condition": "positive", "label_value": 0}, "false_positive_parity"),
        ({"condition": "all", "label_value": 0}, "demographic_parity"),
    ],
)
def test_direction_deprecated_keywords_warn_and_agree(old, new):
    X, y, s = data()
    with pytest.warns(DeprecationWarning, match=r"ferm\.fairness_direction: .* is deprecated"):
        u_old = ferm.fairness_direction(X, y, s, num_groups=2, **old)
    u_new = ferm.fairness_direction(X, y, s, num_groups=2, criterion=new)
    np.testing.assert_array_equal(u_old, u_new)


def test_direction_criteria_closed_forms():
    X, y, s = data(G=3)
    for c, rows in (("false_positive_parity", y == 0), ("demographic_parity", y >= 0)):
        u = ferm.fairness_direction(X, 2 * y - 1, s, num_groups=3, criterion=c)  # -1/+1 labels
        means = np.stack([X[(s == g) & rows].mean(0) for g in range(3)])
        np.testing.assert_allclose(u, means[1:] - means[0], atol=1e-5)
    eo = ferm.fairness_direction(X, y, s, num_groups=3, criterion="equalized_odds")
    np.testing.assert_array_equal(
        eo,
        np.concatenate([
            ferm.fairness_direction(X, y, s, num_groups=3, criterion="equal_opportunity"),
            ferm.fairness_direction(X, y, s, num_groups=3, criterion="false_positive_parity"),
        ]),
    )  # fmt: skip
    with pytest.raises(ValueError, match="`criterion` must be one of"):
        ferm.fairness_direction(X, y, s, num_groups=3, criterion="parity")
    with pytest.raises(ValueError, match="give the criterion once"):
        ferm.fairness_direction(
            X, y, s, num_groups=3, criterion="equal_opportunity", condition="all"
        )
    y_bad = y.copy()
    y_bad[s == 1] = 1
    with pytest.raises(ValueError, match=r"group\(s\) \[1\].*no negative"):
        ferm.fairness_direction(X, y_bad, s, num_groups=3, criterion="false_positive_parity")
