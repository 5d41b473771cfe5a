"""Test configuration: 8 host CPU devices for the sharding tests, and the shared data home."""

import os
import tempfile

# Must happen before jax is imported anywhere: the multi-device tests need several devices,
# and on CPU XLA only makes them when asked.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# The test workers (pytest-xdist) share an accelerator if there is one: none preallocates it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite is mostly compilation, and the two workers (and the fast and slow runs) compile many
# of the same programs: one on-disk XLA cache serves them all, and the next run too. Programs
# that compile in under 0.2 s are not cached (the compile counter test makes trivial ones on
# purpose). Set JAX_COMPILATION_CACHE_DIR to another folder, or to "" to turn it off.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(
        tempfile.gettempdir(),
        f"fairjax-tests-xla-cache-{os.getuid() if hasattr(os, 'getuid') else 0}",
    ),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import pathlib

import pytest


def data_home() -> pathlib.Path | None:
    """The folder named by FAIRJAX_DATA_HOME, if it is set and exists."""
    value = os.environ.get("FAIRJAX_DATA_HOME")
    if value and pathlib.Path(value).is_dir():
        return pathlib.Path(value)
    return None


@pytest.fixture
def shared_data_home() -> pathlib.Path:
    """The benchmark data home; skips the test when it is not available."""
    home = data_home()
    if home is None:
        pytest.skip("FAIRJAX_DATA_HOME is not set to an existing folder with the raw data sets")
    return home


# Cases of the default run measured over ~2.5 s each on a 2-core CPU (`pytest --durations`),
# and every case that compiles ott-jax's Sinkhorn solver: they run with the other slow tests
# (`pytest -m slow`, in CI), so the default run stays a quick loop. A prefix names every case
# that starts with it (parametrizations).
SLOW_CASES = (
    # LAFTR, the representation adversary and multiclass post-processing (this session's
    # compile-bound tests, 7-26 s each on a loaded machine with a cold cache)
    "tests/training/test_adversarial.py::test_the_adversary_reads_the_representation",
    "tests/training/test_adversarial.py::test_laftr_gradients_split_the_players",
    "tests/training/test_adversarial.py::test_laftr_stochastic_networks_get_their_own_keys",
    "tests/postprocessing/test_multiclass.py::test_parity_holds_on_held_out_rows",
    "tests/sklearn/test_multiclass_parity.py::test_pandas_input_parity_on_fitted_and_held_out",
    "tests/training/test_adversarial.py::test_reversal_gradients_split_the_players",
    "tests/training/test_adversarial.py::test_projection_gradient_is_orthogonal_to_the_adversary_at_lam_zero",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[diffdp-a]",
    "tests/penalties/test_ffb.py::test_swapping_the_groups_changes_no_term",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[pr-",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[diffeodd-a]",
    "tests/metrics/test_labels.py::test_rate_metrics_equal_fairlearn_with_the_same_labels[str]",
    "tests/metrics/test_labels.py::test_score_metrics_with_labels_equal_the_integer_ids[str]",
    "tests/penalties/test_prejudice.py::test_empty_group_is_left_out_and_gradient_is_finite",
    "tests/penalties/test_prejudice.py::test_matches_reference_with_weights[2]",
    "tests/test_loop.py::test_each_epoch_sees_every_row_once_then_a_partial_epoch",
    "tests/penalties/test_fractional.py::test_rates_of_decisions_equal_the_sigmoid_surrogate",
    "tests/penalties/test_fractional.py::test_value_at_hard_decisions_is_the_metric[2-",
    "tests/penalties/test_fractional.py::test_value_at_hard_decisions_is_the_metric[4-conditional_statistical_parity]",
    "tests/penalties/test_fractional.py::test_ppv_gradient_is_the_linear_fractional_one",
    "tests/penalties/test_fractional.py::test_finite_gradient_with_an_empty_group_and_under_jit",
    "tests/metrics/test_multiclass.py::test_softmax_penalty_at_low_temperature_is_the_metric_of_the_argmax",
    "tests/metrics/test_multiclass.py::test_two_classes_equal_the_binary_metric",
    "tests/metrics/test_multiclass.py::test_per_class_equals_fairlearn_one_vs_rest",
    "tests/metrics/test_multiclass.py::test_equal_numpy_reference_with_weights[ids-4-5-",
    "tests/metrics/test_multiclass.py::test_equal_numpy_reference_with_weights[ids-3-2-equalized_odds]",
    "tests/cli/test_audit.py::test_streamed_audit_equals_in_memory",
    "tests/cli/test_audit.py::test_parquet_is_read_or_refused_clearly",
    "tests/cli/test_audit.py::test_streamed_audit_command_and_bad_chunk_size",
    "tests/metrics/test_streaming.py::test_streamed_equals_in_memory",
    "tests/metrics/test_streaming.py::test_ks_is_exact_on_close_scores",
    "tests/metrics/test_streaming.py::test_without_labels_or_scores_and_with_an_empty_group",
    "tests/sklearn/test_threshold.py::test_pandas_input_exact_parity_and_drawn_decisions",
    "tests/sklearn/test_threshold.py::test_bad_input",
    "tests/sklearn/test_threshold.py::test_save_load_round_trip_and_checks",
    "tests/sklearn/test_threshold.py::test_training_accuracy_at_least_fairlearns",
    "tests/postprocessing/test_distributed.py::test_streaming_equals_gathered_small",
    "tests/postprocessing/test_distributed.py::test_select_finds_exact_order_statistics_with_ties",
    "tests/test_dependence.py::test_penalty_gradients_are_finite[varied-constant-",
    "tests/test_dependence.py::test_binned_parity_difference_is_dp_over_quantile_bins",
    "tests/test_dependence.py::test_hgr_gradient_finite_with_empty_grid_cells",
    "tests/test_dependence.py::test_hsic_equals_numpy_reference_float64_with_weights",
    "tests/postprocessing/test_thresholds.py::test_optimum_equals_linprog[equalized_odds-",
    "tests/postprocessing/test_thresholds.py::test_optimum_equals_linprog[demographic_parity-0.07]",
    "tests/postprocessing/test_thresholds.py::test_vmap_over_tolerance_equals_single_fits",
    "tests/postprocessing/test_thresholds.py::test_bad_input",
    "tests/test_criteria.py::test_gaps_with_fewer_than_two_groups_are_zero_and_gradients_finite",
    "tests/sklearn/test_wasserstein.py::test_tree_scores_in_the_thousands_are_made_fair[0.0]",
    "tests/metrics/test_confusion.py::test_matches_fairlearn_metricframe[accuracy_parity-2-False]",
    "fairjax/sklearn/_persist.py::fairjax.sklearn._persist.BaseEstimatorSaveLoadMixin.load",
    "fairjax/postprocessing/_distributed.py::",
    "fairjax/sklearn/_wasserstein.py::fairjax.sklearn._wasserstein.WassersteinFairRegressor.score",
    "tests/test_persistence.py::test_estimator_round_trip_is_exact[ferm_linear]",
    "tests/test_persistence.py::test_save_and_load_agree_on_the_path[model-state]",
    "tests/penalties/test_mmd.py::test_equalized_odds_is_the_sum_of_its_two_conditions[mean-pooled]",
    "tests/training/test_penalized.py::test_penalized_composition_and_validation",
    "tests/ot1d/test_layout.py::test_group_views_are_weighted_views_of_one_sort",
    "tests/penalties/test_surrogates.py::test_check_grads_float64[max-mean_difference]",
    "fairjax/training/_mixture.py::fairjax.training._mixture.fit_rate_constrained_mixture",
    "tests/postprocessing/test_apply.py::test_tied_query_level_is_uniform_over_the_jump",
    "tests/test_readme.py::test_readme_example_prints_what_the_readme_says",
    "tests/penalties/test_mmd.py::test_matches_double_loop_reference_with_weights[biased]",
    "tests/penalties/test_orthogonality.py::test_grads_float64_and_finite_at_zero",
    "fairjax/metrics/_audit.py::fairjax.metrics._audit.audit_report",
    "tests/test_losses.py::test_gradients_match_finite_differences_float64[logistic]",
    "tests/penalties/test_surrogates.py::test_empty_groups_finite_value_and_grad[max-mean_difference]",
    "tests/ot1d/test_layout.py::test_merged_quantiles_integrate_wasserstein_and_views_agree_with_segments",
    "tests/training/test_mixture.py::test_rate_constrained_mixture_satisfied_and_tolerance",
    "tests/test_losses.py::test_gradients_match_finite_differences_float64[hinge]",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[mmd]",
    "tests/postprocessing/test_postprocessing.py::test_quantile_grid_close_to_exact_and_small",
    "fairjax/representation.py::fairjax.representation.multitask_objective",
    "tests/penalties/test_surrogates.py::test_equalized_odds_is_the_sum_of_its_two_conditions[max-mean_difference]",
    "tests/metrics/test_tables.py::test_bootstrap_of_a_table",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[group_means",
    "fairjax/ferm/_kernel.py::fairjax.ferm._kernel.fit_kernel",
    "tests/postprocessing/test_postprocessing.py::test_ks_guarantee_shrinks_with_calibration_size",
    "tests/properties/test_gradients.py::test_check_grads_float64[mmd",
    "tests/test_datasets.py::test_make_classification_bias_controls_gap",
    "tests/properties/test_gradients.py::test_check_grads_float64[wasserstein",
    "tests/properties/test_validation.py::test_wide_group_ids_are_range_checked_before_the_cast[metrics.audit_report-int64",
    "tests/properties/test_gradients.py::test_check_grads_float64[ot1d.wasserstein_distance",
    "tests/penalties/test_surrogates.py::test_vmap_over_models_and_bfloat16",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[mean_difference]",
    "tests/ot1d/test_layout.py::test_group_quantile_weighted_matches_ot1d_quantile",
    "tests/metrics/test_tables.py::test_sharded_equals_single_device",
    "tests/penalties/test_wasserstein.py::test_penalty_decreases_under_gradient_descent",
    "tests/properties/test_gradients.py::test_check_grads_float64[mmd",
    "tests/test_kernels.py::test_laplace_gradient_finite_at_coinciding_points",
    "tests/penalties/test_mmd.py::test_labels_condition_on_the_positive_rows",
    "tests/ot1d/test_layout.py::test_barycenter_quantile_averages_group_quantiles",
    "tests/properties/test_gradients.py::test_check_grads_float64[wasserstein",
    "tests/penalties/test_mmd.py::test_equalized_odds_is_the_sum_of_its_two_conditions[mean-pairwise]",
    "tests/postprocessing/test_apply.py::test_atoms_are_made_fair_at_every_scale[float32-split-step]",
    "fairjax/postprocessing/_fit.py::fairjax.postprocessing._fit.fit_barycenter",
    "tests/penalties/test_wasserstein.py::test_equalized_odds_is_the_sum_of_its_two_terms[barycenter]",
    "fairjax/representation.py::fairjax.representation.transfer",
    "tests/training/test_penalized.py::test_fit_full_batch_reduces_objective_and_penalty_lowers_dp",
    "tests/postprocessing/test_postprocessing.py::test_bad_inputs_name_the_argument",
    "tests/penalties/test_mmd.py::test_equalized_odds_is_the_sum_of_its_two_conditions[none-pooled]",
    "tests/metrics/test_scores.py::test_sharded_equals_single_device[ks]",
    "tests/penalties/test_wasserstein.py::test_pooled_matches_ot1d_and_pot[1]",
    "fairjax/ferm/_linear.py::fairjax.ferm._linear.fit_linear",
    "tests/properties/test_gradients.py::test_check_grads_float64[ot1d.quantile",
    "tests/postprocessing/test_postprocessing.py::test_gaussian_closed_form_barycenter",
    "fairjax/ot1d/_layout.py::fairjax.ot1d._layout.group_quantile",
    "tests/metrics/test_tables.py::test_bootstrap_covers_and_is_reproducible",
    "tests/test_losses.py::test_logistic_is_stable_for_large_logits_and_matches_optax",
    "tests/penalties/test_mmd.py::test_equalized_odds_is_the_sum_of_its_two_conditions[max-pairwise]",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[mmd/unbiased-scores]",
    # Measured with --durations on the fast run of this session (over 3 s each on the loaded
    # 2-core machine, about 1.5-2 s quiet): moved so that the README's test command stays
    # under 5 minutes; they run in CI's slow job.
    "fairjax/metrics/_streaming_scores.py::fairjax.metrics._streaming_scores.wasserstein_unfairness_streaming",
    "fairjax/ot1d/_layout.py::fairjax.ot1d._layout.group_cdf",
    "fairjax/ot1d/_layout.py::fairjax.ot1d._layout.merged_quantiles",
    "fairjax/penalties/_fractional.py::fairjax.penalties._fractional.fractional_rate_difference",
    "fairjax/penalties/_mmd.py::fairjax.penalties._mmd.mmd",
    "fairjax/penalties/_multiclass.py::fairjax.penalties._multiclass.softmax_rate_difference",
    "fairjax/plotting.py::fairjax.plotting.group_cdfs",
    "fairjax/plotting.py::fairjax.plotting.roc_operating_points",
    "fairjax/postprocessing/_hull.py::fairjax.postprocessing._hull.roc_hull",
    "fairjax/postprocessing/_thresholds.py::fairjax.postprocessing._thresholds.apply_thresholds",
    "fairjax/postprocessing/_thresholds.py::fairjax.postprocessing._thresholds.fit_thresholds",
    "fairjax/sklearn/_threshold.py::fairjax.sklearn._threshold.FairThresholdClassifier",
    "fairjax/training/_adversarial.py::fairjax.training._adversarial.adversarial_objective",
    "tests/ferm/test_linear.py::test_linear_trainer_losses_are_fairjax_losses",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[diffdp-b]",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[diffeodd-b]",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[diffeopp-a]",
    "tests/penalties/test_fractional.py::test_equalized_odds_sums_its_rates",
    "tests/penalties/test_fractional.py::test_value_at_hard_decisions_is_the_metric[4-accuracy_parity]",
    "tests/penalties/test_mmd.py::test_deprecated_label_value_warns_and_gives_the_criterion_value[1-equal_opportunity]",
    "tests/penalties/test_mmd.py::test_equalized_odds_is_the_sum_of_its_two_conditions[max-pooled]",
    "tests/penalties/test_mmd.py::test_matches_double_loop_reference_with_weights[unbiased]",
    "tests/penalties/test_mmd.py::test_two_groups_pooled_is_p0_p1_times_pairwise",
    "tests/penalties/test_mmd.py::test_unbiased_equals_gretton_u_statistic_on_sliced_groups",
    "tests/penalties/test_prejudice.py::test_matches_reference_with_weights[3]",
    "tests/penalties/test_surrogates.py::test_check_grads_float64[max-sigmoid_rate_difference]",
    "tests/penalties/test_surrogates.py::test_check_grads_float64[squared-mean_difference]",
    "tests/penalties/test_surrogates.py::test_empty_groups_finite_value_and_grad[max-sigmoid_rate_difference]",
    "tests/penalties/test_surrogates.py::test_equalized_odds_is_the_sum_of_its_two_conditions[max-sigmoid_rate_difference]",
    "tests/penalties/test_surrogates.py::test_equalized_odds_is_the_sum_of_its_two_conditions[squared-mean_difference]",
    "tests/penalties/test_surrogates.py::test_masked_equals_subset[mean_difference]",
    "tests/penalties/test_surrogates.py::test_squared_rate_gap_is_fairret_norm_loss_times_overall_rate[demographic_parity-2]",
    "tests/penalties/test_wasserstein.py::test_equalized_odds_is_the_sum_of_its_two_terms[pooled]",
    "tests/penalties/test_wasserstein.py::test_pooled_matches_ot1d_and_pot[2]",
    "tests/postprocessing/test_apply.py::test_atom_at_zero_uses_the_right_limit",
    "tests/postprocessing/test_apply.py::test_atoms_are_made_fair_at_every_scale[float32-split-linear]",
    "tests/postprocessing/test_postprocessing.py::test_alpha_interpolates_and_trades_risk_for_fairness",
    "tests/postprocessing/test_thresholds.py::test_drawn_decisions_have_the_expected_frequencies",
    "tests/postprocessing/test_thresholds.py::test_rule_reaches_its_operating_points_and_constraint[equalized_odds]",
    "tests/properties/test_gradients.py::test_check_grads_float64[mean_difference",
    "tests/properties/test_gradients.py::test_check_grads_float64[sigmoid_rate_difference",
    "tests/properties/test_gradients.py::test_directional_finite_difference[wasserstein",
    "tests/properties/test_numerics.py::test_dtypes_accumulate_in_at_least_float32[mean_difference",
    "tests/properties/test_numerics.py::test_dtypes_accumulate_in_at_least_float32[mmd-float32]",
    "tests/properties/test_numerics.py::test_orthogonality_edges_and_dtypes",
    "tests/properties/test_properties.py::test_permutation_invariance[dp_difference]",
    "tests/properties/test_properties.py::test_zero_weight_rows_can_hold_anything",
    "tests/properties/test_retracing.py::test_eager_calls_compile_once[penalties.mean_difference]",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[mean_difference",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[mmd",
    "tests/properties/test_sharding.py::test_shard_map_with_axis_name_equals_single_device[mmd",
    "tests/properties/test_validation.py::test_wide_group_ids_are_range_checked_before_the_cast[metrics.audit_report-list",
    "tests/test_architecture.py::test_layers_and_private_names[benchmarks]",
    "tests/test_criteria.py::test_confusion_matrix_matches_numpy_with_strata_and_membership",
    "tests/test_criteria.py::test_group_rates_and_gaps_match_numpy[None-False-demographic_parity]",
    "tests/test_datasets.py::test_adult_from_data_home_equals_embedded",
    "tests/test_docs.py::test_page_runs_as_written[regression.md::FAIRJAX_DATA_HOME]",
    "tests/test_kernels.py::test_gaussian_matches_sklearn_and_pair_evaluation",
    "tests/test_kernels.py::test_laplace_and_inverse_multiquadric_closed_forms",
    "tests/test_losses.py::test_dtype_preserved[logistic]",
    "tests/test_losses.py::test_gradients_match_finite_differences_float64[squared]",
    "tests/test_losses.py::test_gradients_match_finite_differences_float64[squared_hinge]",
    "tests/test_persistence.py::test_estimator_round_trip_is_exact[ferm_rbf_exact]",
    "tests/test_persistence.py::test_no_pickle_imports_in_the_library",
    "tests/test_plotting.py::test_group_cdfs_before_after",
    "tests/training/test_penalized.py::test_binary_cross_entropy_matches_optax_in_value_and_gradient",
    "tests/training/test_rate_batching.py::test_a_stream_of_the_full_batch_is_the_full_batch",
    "tests/training/test_reduction.py::test_rate_constrained_fnr_and_tnr_parity_train_as_their_complements[true_negative_rate_parity-false_positive_parity]",
    # The same, from a run with a cold compilation cache on the quiet machine (over 2.5 s) and
    # the loaded run (2-3 s).
    "fairjax/datasets/_base.py::fairjax.datasets._base.Dataset.batch",
    "fairjax/datasets/_loaders.py::fairjax.datasets._loaders.load_adult",
    "fairjax/datasets/_synthetic.py::fairjax.datasets._synthetic.make_classification",
    "fairjax/dependence.py::fairjax.dependence.hgr_kde",
    "fairjax/metrics/_continuous.py::fairjax.metrics._continuous.binned_parity_difference",
    "fairjax/metrics/_tables.py::fairjax.metrics._tables.bootstrap",
    "fairjax/ot1d/_layout.py::fairjax.ot1d._layout.group_cdf_limits",
    "fairjax/postprocessing/_thresholds_streaming.py::fairjax.postprocessing._thresholds_streaming.fit_thresholds_streaming",
    "fairjax/representation.py::fairjax.representation.init_mlp",
    "tests/ferm/test_kernel.py::test_fit_kernel_unconstrained_matches_sklearn_svc",
    "tests/ferm/test_projection.py::test_projected_training_satisfies_constraint[4-0.05]",
    "tests/metrics/test_labels.py::test_rate_metrics_equal_fairlearn_with_the_same_labels[object]",
    "tests/metrics/test_scores.py::test_host_sort_path_equals_jitted_path[False-2]",
    "tests/metrics/test_scores.py::test_host_sort_path_equals_jitted_path[False-3]",
    "tests/metrics/test_scores.py::test_sharded_equals_single_device[w1]",
    "tests/ot1d/test_layout.py::test_cdf_levels_exact_at_masks_and_top",
    "tests/ot1d/test_layout.py::test_group_cdf_limits_equal_group_cdf_at_both_sides[False-False]",
    "tests/ot1d/test_layout.py::test_group_cdf_linear_interpolates_between_points",
    "tests/ot1d/test_layout.py::test_group_cdf_step_is_left_limit_and_uniform_agrees",
    "tests/ot1d/test_layout.py::test_pooled_group_cdfs_read_the_views",
    "tests/penalties/test_ffb.py::test_value_and_gradient_equal_ffb[diffeopp-b]",
    "tests/penalties/test_fractional.py::test_value_at_hard_decisions_is_the_metric[4-demographic_parity]",
    "tests/penalties/test_mmd.py::test_deprecated_label_value_warns_and_gives_the_criterion_value[0-false_positive_parity]",
    "tests/penalties/test_mmd.py::test_equalized_odds_is_the_sum_of_its_two_conditions[none-pairwise]",
    "tests/penalties/test_mmd.py::test_jit_and_no_retrace",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[wasserstein-scores]",
    "tests/penalties/test_prejudice.py::test_minimising_it_equalises_the_group_rates",
    "tests/penalties/test_surrogates.py::test_check_grads_float64[squared-sigmoid_rate_difference]",
    "tests/penalties/test_surrogates.py::test_empty_groups_finite_value_and_grad[squared-mean_difference]",
    "tests/penalties/test_surrogates.py::test_equalized_odds_is_the_sum_of_its_two_conditions[squared-sigmoid_rate_difference]",
    "tests/penalties/test_wasserstein.py::test_zero_when_groups_share_a_distribution_and_hand_case",
    "tests/postprocessing/test_apply.py::test_atoms_are_made_fair_at_every_scale[float32-nosplit-step]",
    "tests/postprocessing/test_apply.py::test_atoms_are_made_fair_at_every_scale[float32-weighted]",
    "tests/postprocessing/test_distributed.py::test_row_draws_equal_jax_uniform_at_any_offset[float32--1.0-1.0]",
    "tests/postprocessing/test_postprocessing.py::test_intersection_allows_empty_cells_but_not_at_apply",
    "tests/postprocessing/test_postprocessing.py::test_matches_equipy",
    "tests/postprocessing/test_postprocessing.py::test_save_load_round_trip_and_tamper[exact]",
    "tests/postprocessing/test_thresholds.py::test_one_rate_equals_brute_force_over_threshold_pairs[demographic_parity-0.1]",
    "tests/postprocessing/test_thresholds.py::test_weights_equal_repeated_rows",
    "tests/properties/test_gradients.py::test_check_grads_float64[ferm.project",
    "tests/properties/test_gradients.py::test_check_grads_float64[groups.group_means",
    "tests/properties/test_gradients.py::test_check_grads_float64[orthogonality",
    "tests/properties/test_gradients.py::test_directional_finite_difference[mean_difference",
    "tests/properties/test_gradients.py::test_directional_finite_difference[ot1d.wasserstein_distance",
    "tests/properties/test_numerics.py::test_dtypes_accumulate_in_at_least_float32[wasserstein",
    "tests/properties/test_properties.py::test_post_processed_scores_have_small_ks_unfairness",
    "tests/properties/test_properties.py::test_relabelling_groups_permutes_per_group_results",
    "tests/properties/test_retracing.py::test_eager_calls_compile_once[kernels.kernel_matrix]",
    "tests/properties/test_retracing.py::test_eager_calls_compile_once[penalties.wasserstein]",
    "tests/properties/test_retracing.py::test_eager_calls_compile_once[training.fit_rate_constrained]",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[sigmoid_rate_difference]",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[wasserstein]",
    "tests/properties/test_validation.py::test_scalar_options_accept_numpy_scalars",
    "tests/properties/test_validation.py::test_wide_group_ids_are_range_checked_before_the_cast[metrics.audit_report-uint64",
    "tests/properties/test_validation.py::test_wide_group_ids_are_range_checked_before_the_cast[training.fit_rate_constrained-int64",
    "tests/test_criteria.py::test_group_rates_and_gaps_match_numpy[2-False-equalized_odds]",
    "tests/test_criteria.py::test_largest_gap_preserves_dtype",
    "tests/test_datasets.py::test_adult_include_sensitive_drops_sex_columns",
    "tests/test_datasets.py::test_adult_shapes_counts_and_groups",
    "tests/test_datasets.py::test_make_regression_mean_gap_is_two_bias",
    "tests/test_datasets.py::test_synthetic_determinism_shapes_and_groups",
    "tests/test_dependence.py::test_penalty_gradients_are_finite[varied-duplicated-hgr-svd]",
    "tests/test_docs.py::test_page_runs_as_written[datasets.md]",
    "tests/test_docs.py::test_page_runs_as_written[metrics.md]",
    "tests/test_docs.py::test_page_runs_as_written[multi_device.md]",
    "tests/test_groups.py::test_axis_name_psum_equals_global_mean",
    "tests/test_groups.py::test_float32_sums_stay_accurate_over_many_rows[False-trailing1-2]",
    "tests/test_groups.py::test_return_counts_matches_group_counts",
    "tests/test_groups.py::test_stats_match_reference[False-1]",
    "tests/test_kernels.py::test_multi_bandwidth_is_the_sum",
    "tests/test_losses.py::test_dtype_preserved[hinge]",
    "tests/test_losses.py::test_weighted_mean_matches_numpy_and_masked_equals_subset",
    "tests/test_persistence.py::test_a_resigned_but_malformed_file_is_refused_without_crashing[model_nystrom_sum]",
    "tests/test_persistence.py::test_estimator_round_trip_is_exact[ferm_rbf_nystrom_logistic]",
    "tests/training/test_divergence.py::test_nan_in_the_data_is_reported_as_divergence[representation.train]",
    "tests/training/test_lagrangian.py::test_best_iterate_can_be_the_last_one",
    "tests/training/test_mixture.py::test_rate_constrained_mixture_without_a_feasible_mixture",
    "tests/training/test_multiclass_reduction.py::test_one_hot_labels_are_class_ids",
    "tests/training/test_rate_batching.py::test_stream_and_minibatch_options_are_checked",
    "tests/training/test_reduction.py::test_rate_constrained_with_an_inactive_bound_is_logistic_regression",
    # A third cold-cache run (over 1.8 s).
    "fairjax/criteria.py::fairjax.criteria",
    "fairjax/datasets/_synthetic.py::fairjax.datasets._synthetic.make_regression",
    "fairjax/dependence.py::fairjax.dependence.hgr_correlation",
    "fairjax/ferm/_persist.py::fairjax.ferm._persist.save_model",
    "fairjax/ferm/_persist.py::fairjax.ferm._persist.save_projection",
    "fairjax/metrics/_streaming.py::fairjax.metrics._streaming.audit_report_streaming",
    "fairjax/training/_adversarial.py::fairjax.training._adversarial.fit_adversarial",
    "tests/ferm/test_kernel.py::test_fit_kernel_deprecated_condition",
    "tests/ferm/test_linear.py::test_fit_linear_smooth_losses_eps[squared_hinge-0.02]",
    "tests/metrics/test_labels.py::test_rate_metrics_equal_fairlearn_with_the_same_labels[series]",
    "tests/metrics/test_labels.py::test_score_metrics_with_labels_equal_the_integer_ids[categorical]",
    "tests/metrics/test_scores.py::test_host_sort_path_equals_jitted_path[True-2]",
    "tests/metrics/test_scores.py::test_host_sort_path_equals_jitted_path[True-3]",
    "tests/penalties/test_fractional.py::test_value_at_hard_decisions_is_the_metric[4-equal_opportunity]",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[mmd-scores]",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[mmd/none-scores]",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[mmd/unbiased-weights]",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[wasserstein-weights]",
    "tests/penalties/test_surrogates.py::test_empty_groups_finite_value_and_grad[squared-sigmoid_rate_difference]",
    "tests/penalties/test_surrogates.py::test_squared_rate_gap_is_fairret_norm_loss_times_overall_rate[demographic_parity-3]",
    "tests/penalties/test_wasserstein.py::test_masked_equals_subset_labels_and_membership",
    "tests/postprocessing/test_apply.py::test_atoms_are_made_fair_at_every_scale[float32-nosplit-linear]",
    "tests/postprocessing/test_thresholds.py::test_rule_reaches_its_operating_points_and_constraint[demographic_parity]",
    "tests/postprocessing/test_thresholds_streaming.py::test_equals_in_memory_with_heavy_ties[equalized_odds]",
    "tests/properties/test_numerics.py::test_dtypes_accumulate_in_at_least_float32[mmd-bfloat16]",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[wasserstein",
    "tests/properties/test_sharding.py::test_shard_map_with_axis_name_equals_single_device[mean_difference]",
    "tests/properties/test_sharding.py::test_shard_map_with_axis_name_equals_single_device[wasserstein]",
    "tests/test_dependence.py::test_hgr_of_a_bivariate_gaussian_is_abs_rho[0-0.0]",
    "tests/test_docs.py::test_page_runs_as_written[multi_process.md]",
    "tests/test_persistence.py::test_estimator_round_trip_is_exact[logistic_penalty]",
    "tests/test_persistence.py::test_estimator_round_trip_is_exact[wasserstein_trained]",
    "tests/training/test_divergence.py::test_finite_training_is_not_flagged[representation.train]",
    "tests/training/test_mixture.py::test_rate_constrained_mixture_rejects_bad_options",
    "tests/training/test_reduction.py::test_rate_constrained_best_iterate_counts_a_gap_equal_to_the_bound",
)
SLOW_WORDS = ("sinkhorn",)

# The slowest slow cases (over ~5.5 s each on a 2-core CPU, `pytest -m slow --durations`):
# `heavy` too. CI runs them in a pytest run of their own (`pytest -m heavy`, about 4 minutes on
# 2 cores): in the same workers as the other slow tests, XLA's CPU compiler segfaulted twice late
# in a CI run.
HEAVY_CASES = (
    "fairjax/postprocessing/_distributed.py::fairjax.postprocessing._distributed.fit_barycenter_sharded",
    "fairjax/postprocessing/_distributed.py::fairjax.postprocessing._distributed.fit_barycenter_streaming",
    "tests/cli/test_audit.py::test_score_threshold_and_intersection",
    "tests/ferm/test_dtypes.py::test_parameters_are_computed_in_a_float_dtype[int32]",
    "tests/metrics/test_audit.py::test_report_holds_the_metrics_and_the_table",
    "tests/metrics/test_streaming.py::test_poisson_intervals_cover_like_the_multinomial_ones",
    "tests/metrics/test_streaming.py::test_streamed_equals_in_memory[False-1]",
    "tests/ot1d/test_univariate.py::test_wasserstein_gradients",
    "tests/penalties/test_mmd.py::test_check_grads_float64[biased]",
    "tests/penalties/test_mmd.py::test_membership_matrix_and_axis_name",
    "tests/penalties/test_mmd.py::test_random_fourier_features_approximate_the_exact_mmd",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[sinkhorn-scores]",
    "tests/penalties/test_nan.py::test_nan_in_gives_nan_out_under_jit[sinkhorn/max-scores]",
    "tests/penalties/test_orthogonality.py::test_grads_float64_and_finite_at_zero",
    "tests/penalties/test_sinkhorn.py::test_deprecated_label_value_warns_and_gives_the_criterion_value",
    "tests/penalties/test_sinkhorn.py::test_eager_empty_group_labels_and_membership_matrix",
    "tests/penalties/test_sinkhorn.py::test_edge_cases_empty_group_coinciding_points_masks",
    "tests/penalties/test_sinkhorn.py::test_equalized_odds_is_the_sum_of_its_two_conditions[pooled]",
    "tests/penalties/test_sinkhorn.py::test_equals_ott_on_the_sliced_groups_pooled_reference",
    "tests/penalties/test_sinkhorn.py::test_group_size_overflow_raises_when_concrete_and_truncates_when_traced",
    "tests/penalties/test_sinkhorn.py::test_group_size_under_jit_equals_the_eager_value",
    "tests/penalties/test_sinkhorn.py::test_pairwise_value_gradient_and_iterations_equal_ott_on_sliced_groups",
    "tests/penalties/test_sinkhorn.py::test_three_groups_every_comparison_equals_ott_on_sliced_groups",
    "tests/penalties/test_wasserstein.py::test_jit_empty_group_and_gradients",
    "tests/postprocessing/test_distributed.py::test_sharded_uneven_shards_equal_gathered_and_need_the_axis",
    "tests/postprocessing/test_distributed.py::test_streaming_equals_gathered[0.0-False]",
    "tests/postprocessing/test_distributed.py::test_streaming_equals_gathered[0.0-True]",
    "tests/postprocessing/test_distributed.py::test_streaming_two_attributes_intersections",
    "tests/postprocessing/test_postprocessing.py::test_cpu_search_blocks_equal_one_loop_search",
    "tests/postprocessing/test_thresholds.py::test_jit_and_vmap_over_tolerance",
    "tests/properties/test_gradients.py::test_check_grads_float64[sinkhorn",
    "tests/properties/test_properties.py::test_masked_equals_subset",
    "tests/properties/test_sharding.py::test_jit_with_sharded_inputs_equals_single_device[sinkhorn]",
    "tests/test_dependence.py::test_a_bound_on_dependence_is_met_by_the_lagrangian_trainer[hsic]",
    "tests/test_docs.py::test_page_runs_as_written[continuous.md]",
    "tests/test_docs.py::test_page_runs_as_written[getting_started.md]",
    "tests/test_docs.py::test_page_runs_as_written[representation.md]",
    "tests/test_docs.py::test_page_runs_as_written[thresholds.md]",
    "tests/test_docs.py::test_page_runs_as_written[training.md::flax1]",
    "tests/test_docs.py::test_page_runs_as_written[training.md]",
    "tests/test_losses.py::test_weighted_mean_gradients_float64_and_dtype",
    "tests/test_persistence.py::test_estimator_round_trip_is_exact[ferm_linear]",
    "tests/test_representation.py::test_objective_matches_a_manual_computation",
    "tests/test_representation.py::test_penalty_reduces_group_discrepancy_and_transfer_gap",
    "tests/training/test_adversarial.py::test_reversal_gradients_split_the_players",
    "tests/training/test_batching.py::test_fit_constrained_on_a_stream_measures_the_constraint_on_the_full_data",
    "tests/training/test_batching.py::test_fit_num_steps_and_num_epochs_are_one_budget",
    "tests/training/test_batching.py::test_minibatch_sweep_equals_separate_minibatch_sweeps",
    "tests/training/test_batching.py::test_one_batch_of_all_rows_equals_full_batch_in_every_trainer",
    "tests/training/test_mixture.py::test_rate_constrained_mixture_candidates_against_re_runs[demographic_parity]",
    "tests/training/test_mixture.py::test_rate_constrained_mixture_candidates_against_re_runs[equalized_odds]",
    "tests/training/test_mixture.py::test_rate_constrained_mixture_is_the_best_mixture_of_its_iterates[demographic_parity-0.02-False-False]",
    "tests/training/test_reduction.py::test_rate_constrained_reaches_the_bound_on_every_pair_of_groups[demographic_parity-2]",
    "tests/training/test_reduction.py::test_rate_constrained_weights_act_as_repeated_rows[demographic_parity]",
    "tests/training/test_stateful.py::test_flax_dropout_batchnorm_model_trains_with_fit_and_to_a_bound",
    "tests/training/test_sweeps.py::test_constrained_sweep_equals_separate_constrained_trainings",
    "tests/training/test_sweeps.py::test_model_in_sweeps_and_constrained_training_matches_params_style",
)


# Each compiled XLA CPU program keeps a few memory mappings while JAX caches it, and a test worker
# compiles thousands: the slow run reached 61,600 mappings in one worker, against Linux's default
# limit of 65,530 (vm.max_map_count), past which the next compilation segfaults (the worker
# crashes that CI saw late in its runs). Between tests, a worker over _MAX_MAPPINGS drops JAX's
# caches, which unmaps them; the on-disk cache above makes the recompilations cheap.
_MAX_MAPPINGS = 20_000
_MAPS = pathlib.Path("/proc/self/maps")


class _ReleaseCompiledPrograms:
    """Clears JAX's caches between tests when the process holds too many memory mappings."""

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item, nextitem):
        if not _MAPS.exists():
            return
        if _MAPS.read_bytes().count(b"\n") > _MAX_MAPPINGS:
            import gc

            import jax

            jax.clear_caches()
            gc.collect()


def pytest_configure(config):
    # A plugin, not a hook of this file: conftest hooks apply to the tests under tests/ only,
    # and the doctests under fairjax/ compile programs too.
    config.pluginmanager.register(_ReleaseCompiledPrograms(), "fairjax-release-compiled-programs")


def pytest_collection_modifyitems(config, items):
    slow, heavy = pytest.mark.slow, pytest.mark.heavy
    for item in items:
        nodeid = item.nodeid
        if nodeid.startswith(SLOW_CASES) or any(w in nodeid for w in SLOW_WORDS):
            item.add_marker(slow)
        if nodeid.startswith(HEAVY_CASES):
            item.add_marker(slow)
            item.add_marker(heavy)
