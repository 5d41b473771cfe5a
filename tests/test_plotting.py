"""Tests of fairjax.plotting (skipped without the optional matplotlib extra)."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from fairjax import plotting  # noqa: E402


def test_pareto_front_draws_front_and_reference(tmp_path):
    u = np.array([0.20, 0.10, 0.12, 0.05, 0.01])
    a = np.array([0.85, 0.84, 0.80, 0.82, 0.78])
    path = tmp_path / "front.png"
    fig = plotting.pareto_front(
        u,
        a,
        labels=[0, 1, 2, 3, 4],
        reference={"ExponentiatedGradient": ([0.02], [0.83])},
        path=path,
    )
    assert path.stat().st_size > 1000
    ax = fig.axes[0]
    front_line = ax.get_lines()[0]
    # (0.12, 0.80) is dominated by (0.10, 0.84): not on the front
    np.testing.assert_allclose(front_line.get_xdata(), [0.01, 0.05, 0.10, 0.20])
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "ExponentiatedGradient"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_pareto_front_on_given_axes_and_bad_input():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert plotting.pareto_front([0.1, 0.2], [0.8, 0.9], ax=ax, title=None) is fig
    plt.close(fig)
    with pytest.raises(ValueError, match="same length"):
        plotting.pareto_front([0.1], [0.8, 0.9])
    with pytest.raises(ValueError, match="finite"):
        plotting.pareto_front([np.nan], [0.8])
    # One label per model (zip raised a message that named no argument).
    with pytest.raises(ValueError, match="`labels` must have one entry per model"):
        plotting.pareto_front([0.1, 0.2], [0.8, 0.9], labels=[1])


def test_group_names_of_integer_ids_say_that_ids_count_every_group_below_the_largest():
    x, g = np.arange(6.0), np.array([3, 7, 3, 7, 3, 7])
    with pytest.raises(ValueError, match=r"8 entries, got 2 \(integer ids are ids"):
        plotting.group_cdfs(x, g, group_names=["A", "B"])
    fig = plotting.group_cdfs(x, np.where(g == 3, "A", "B"))  # labels name only those present
    assert [t.get_text().split(" ")[0] for t in fig.axes[0].get_legend().get_texts()] == ["A", "B"]


def test_roc_operating_points_refuses_a_batch_of_rules():
    import jax
    import jax.numpy as jnp

    from fairjax.postprocessing import fit_thresholds, roc_hull

    rng = np.random.default_rng(0)
    s, y, g = rng.random(200), rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    hull = roc_hull(s, y, g, num_groups=2)
    batch = jax.vmap(lambda t: fit_thresholds(s, y, g, num_groups=2, tolerance=t))(
        jnp.array([0.0, 0.1, 0.2])
    )
    # It drew the first rule's points for both groups, the second's, and dropped the third.
    with pytest.raises(ValueError, match=r"`states\['sweep'\]` must hold one rule per group"):
        plotting.roc_operating_points(hull, {"sweep": batch})
    one = jax.tree.map(lambda a: a[1], batch)
    assert plotting.roc_operating_points(hull, {"one": one}) is not None


def test_group_cdfs_before_after(tmp_path):
    import matplotlib.pyplot as plt

    from fairjax.metrics import ks_unfairness

    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, 600)
    f = rng.normal(size=600) + s
    fair = rng.normal(size=600)  # stands in for post-processed scores
    path = tmp_path / "cdfs.png"
    fig = plotting.group_cdfs(
        f, s, num_groups=3, group_names=["a", "b", "c"], after=fair, path=path
    )
    assert path.stat().st_size > 1000
    before, after = fig.axes
    assert [len(ax.get_lines()) for ax in fig.axes] == [3, 3]
    # The KS in the titles is the metric's value.
    ks = float(ks_unfairness(f.astype(np.float32), s, num_groups=3))
    assert before.get_title() == f"before (KS {ks:.3f})"
    line = before.get_lines()[1]  # group "b": its sorted scores, levels 1/n .. 1
    np.testing.assert_allclose(line.get_xdata(), np.sort(f[s == 1]))
    np.testing.assert_allclose(line.get_ydata()[-1], 1.0)
    counts = [int(np.sum(s == k)) for k in range(3)]
    assert [t.get_text() for t in after.get_legend().get_texts()] == [
        f"{name} (n={c:,})" for name, c in zip("abc", counts, strict=True)
    ]
    plt.close(fig)
    one = plotting.group_cdfs(f, s, num_groups=3)
    assert len(one.axes) == 1
    plt.close(one)
    with pytest.raises(ValueError, match="groups"):
        plotting.group_cdfs(f, s + 1, num_groups=3)
    with pytest.raises(ValueError, match="after"):
        plotting.group_cdfs(f, s, num_groups=3, after=fair[:-1])


def _legend_outside(fig, ax):
    """Whether the legend of ``ax`` lies right of every axes of ``fig`` (covers no curve)."""
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent()
    return all(box.x0 >= a.get_window_extent().x1 for a in fig.axes)


@pytest.mark.parametrize("num_groups", [2, 6, 12, 25])
def test_group_cdfs_many_groups_distinct_styles_legend_outside_threshold(num_groups):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(num_groups)
    s = np.arange(400) % num_groups
    f = rng.random(400) + 0.05 * s
    fig = plotting.group_cdfs(f, s, num_groups=num_groups, after=rng.random(400), threshold=0.5)
    before, after = fig.axes
    curves = [ln for ln in before.get_lines() if ln.get_marker() in ("None", "", None)]
    curves = [ln for ln in curves if len(ln.get_xdata()) > 2]
    styles = {
        (
            ln.get_color() if isinstance(ln.get_color(), str) else tuple(ln.get_color()),
            ln.get_linestyle(),
        )
        for ln in curves
    }
    assert len(curves) == len(styles) == num_groups  # no two curves alike
    assert _legend_outside(fig, after)
    # The threshold: a dotted vertical line and one dot per group at F_g(threshold).
    dots = [ln for ln in before.get_lines() if ln.get_marker() == "o"]
    assert len(dots) == num_groups
    for k, dot in enumerate(dots):
        expected = np.mean(f[s == k] <= 0.5)
        np.testing.assert_allclose(dot.get_ydata(), [expected])
    assert before.get_title().startswith("before (KS ") and after.get_title().startswith(
        "after (KS "
    )
    assert (before.get_xlabel(), before.get_ylabel()) == ("score", "P(score <= t | group)")
    plt.close(fig)


def test_group_cdfs_takes_string_labels_and_names_them():
    import matplotlib.pyplot as plt

    labels = np.array(["women", "men", "women", "men", "other"])
    fig = plotting.group_cdfs(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), labels)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["men (n=2)", "other (n=1)", "women (n=2)"]
    plt.close(fig)


def test_pareto_legend_names_once_and_overlapping_points_share_a_label():
    import matplotlib.pyplot as plt

    u = np.array([0.2, 0.1, 0.1001, 0.1002, 0.05])
    a = np.array([0.85, 0.83, 0.8301, 0.8299, 0.80])
    fig = plotting.pareto_front(u, a, labels=[0.0, 0.5, 0.6, 0.7, 1.0])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Pareto front", "models"]
    assert _legend_outside(fig, ax)
    notes = sorted(t.get_text() for t in ax.texts)
    assert notes == ["0", "0.5, 0.6, 0.7", "1"]  # every model labelled, the cluster once
    plt.close(fig)
