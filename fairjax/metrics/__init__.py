"""Fairness metrics on decisions, probabilities or scores.

Every metric jit-compiles, takes sample ``weights=`` (a zero weight masks a row) and any number of
groups. Signatures follow scikit-learn and fairlearn: a metric that needs labels is
``f(y_true, y_pred, groups, *, num_groups, weights=None)``, one that does not is
``f(y_pred, groups, *, num_groups, weights=None)``.

Gaps between groups are the **largest gap over all pairs of non-empty groups**,
:math:`\\max_{a, b} |r_a - r_b| = \\max_g r_g - \\min_g r_g`, which is fairlearn's
``method="between_groups"``; a group with no rows (zero total weight) is left out, and with fewer
than two non-empty groups the gap is 0. For the rates conditioned on a label (TPR, FPR), a group
with no row of that label is left out of that rate's gap (fairlearn would count its rate as 0).

``y_pred`` holds hard decisions in {0, 1}, or probabilities in [0, 1], in which case rates are the
expected rates of the randomised classifier that says 1 with that probability.

On several devices, two ways give the metric of the whole batch: call it under ``jax.jit`` with
inputs sharded along the rows (``jax.sharding.NamedSharding``; XLA inserts the reductions), or
call it inside ``shard_map``/``pmap`` with ``axis_name=``: the rate metrics then sum their group
statistics across devices with :func:`jax.lax.psum` (communication O(G), independent of n), and
the score metrics (KS, Wasserstein), which need one global sort, gather all rows on every
device (communication O(n)).
"""

from fairjax.metrics._audit import audit_report
from fairjax.metrics._confusion import (
    accuracy_difference,
    conditional_statistical_parity_difference,
    criterion_difference,
    false_negative_rate_difference,
    false_omission_rate_difference,
    predictive_parity_difference,
    treatment_equality_difference,
    true_negative_rate_difference,
)
from fairjax.metrics._continuous import (
    binned_parity_difference,
    distance_correlation,
    hgr_correlation,
    hsic,
)
from fairjax.metrics._multiclass import class_group_rates, multiclass_parity_difference
from fairjax.metrics._parity import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from fairjax.metrics._regression import (
    group_loss_difference,
    regression_audit_report,
    worst_group_loss,
)
from fairjax.metrics._scores import ks_unfairness, wasserstein_unfairness
from fairjax.metrics._streaming import audit_report_streaming
from fairjax.metrics._streaming_scores import (
    ks_unfairness_streaming,
    wasserstein_unfairness_streaming,
)
from fairjax.metrics._tables import BootstrapResult, GroupTable, bootstrap, by_group, group_table

__all__ = [
    "BootstrapResult",
    "GroupTable",
    "accuracy_difference",
    "audit_report",
    "audit_report_streaming",
    "binned_parity_difference",
    "bootstrap",
    "by_group",
    "class_group_rates",
    "conditional_statistical_parity_difference",
    "criterion_difference",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "distance_correlation",
    "equal_opportunity_difference",
    "equalized_odds_difference",
    "false_negative_rate_difference",
    "false_omission_rate_difference",
    "group_loss_difference",
    "group_table",
    "hgr_correlation",
    "hsic",
    "ks_unfairness",
    "ks_unfairness_streaming",
    "multiclass_parity_difference",
    "predictive_parity_difference",
    "regression_audit_report",
    "treatment_equality_difference",
    "true_negative_rate_difference",
    "wasserstein_unfairness",
    "wasserstein_unfairness_streaming",
    "worst_group_loss",
]
