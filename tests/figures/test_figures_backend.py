"""Library plots leave the caller's matplotlib alone: no backend switch, no pyplot figure left open.

That no library module imports pyplot or calls ``matplotlib.use`` is ruff's banned-API rule (TID251,
pyproject.toml); this test checks the behaviour.
"""

from __future__ import annotations

import matplotlib
import pytest


@pytest.fixture
def svg_backend():
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # the caller's choice, e.g. a notebook's inline backend
    yield plt
    matplotlib.use(before)


def test_plots_keep_the_callers_backend_and_open_no_pyplot_figure(svg_backend, tmp_path):
    from vlnav_data.figures import subplots
    from vlnav_data.policy.dagger import _plot
    from vlnav_data.policy.fit import CurvePoint
    from vlnav_data.policy.model_dir import write_curve
    from vlnav_data.probes.report import save_figure

    plt = svg_backend
    write_curve(tmp_path, [CurvePoint(step=s, train_loss=1.0 / s, valid_loss=2.0 / s, elapsed_s=s) for s in (1, 2, 3)])
    success = {"rate": 0.5, "low": 0.3, "high": 0.7}
    _plot(tmp_path / "dagger.png", [{"iteration": 0, "success": success}, {"iteration": 1, "success": success}])
    fig, ax = subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "probe.png")
    assert matplotlib.get_backend() == "svg" and plt.get_fignums() == []
    for name in ("curve.png", "dagger.png", "probe.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # PNG files, whatever the backend
