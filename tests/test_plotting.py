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
