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
    assert [t.get_text() for t in after.get_legend().get_texts()] == ["a", "b", "c"]
    plt.close(fig)
    one = plotting.group_cdfs(f, s, num_groups=3)
    assert len(one.axes) == 1
    plt.close(one)
    with pytest.raises(ValueError, match="groups"):
        plotting.group_cdfs(f, s + 1, num_groups=3)
    with pytest.raises(ValueError, match="after"):
        plotting.group_cdfs(f, s, num_groups=3, after=fair[:-1])
