"""Library plots leave the caller's matplotlib alone: no backend switch, no pyplot figure left open."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vlnav_data"


def test_no_library_module_uses_pyplot_or_switches_the_backend():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ("pyplot" in line or "matplotlib.use(" in line) and not line.lstrip().startswith("#")
    ]
    assert [o for o in offenders if not o.startswith("figures.py")] == []


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
