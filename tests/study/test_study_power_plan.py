"""`vlnav-study plan`: simulated power of compare_arms, runs needed, pilot estimates, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.study import app
from vlnav_data.study.power import SimulatedDesign, rejection_rates
from vlnav_data.study.power_plan import PowerPlanConfig, plan_power, read_pilot

runner = CliRunner()
SHIPPED = Path(__file__).resolve().parents[2] / "docs" / "results" / "encoder_study"


def _pilot(tmp_path: Path, per_arm: list[list[float]], pairs: int = 3, starts: int = 200) -> Path:
    arms = [{"label": f"arm{i}", "per_seed_success_rate": r} for i, r in enumerate(per_arm)]
    payload = {"evaluation": {"num_episodes": starts}, "analysis": {"arms": arms, "comparisons": [{}] * pairs}}
    (tmp_path / "result.json").write_text(json.dumps(payload))
    return tmp_path


def _power(runs: int, spread: float, seed: int, studies: int) -> float:
    design = SimulatedDesign(
        runs_a=runs, runs_b=runs, num_starts=200, success_a=0.55, success_b=0.45, run_spread=spread
    )
    (rate,) = rejection_rates(design, num_studies=studies, alpha=0.05, rng=seed, pooled=False)
    return rate.rate


def test_runs_needed_is_the_first_design_reaching_the_target_power():
    cfg = PowerPlanConfig(
        difference_pts=10, success_pct=50, run_spread_pts=5, runs=3, starts_options=(200,), num_studies=200, seed=3
    )
    plan = plan_power(cfg)
    (row,) = plan.rows
    assert row.runs_needed is not None and 4 <= row.runs_needed <= 12
    assert _power(row.runs_needed, 0.05, 3, 200) == pytest.approx(row.power)
    assert row.power >= 0.8
    assert _power(row.runs_needed - 1, 0.05, 3, 200) < 0.8
    assert plan.design_power == pytest.approx(_power(3, 0.05, 3, 200))
    wider = plan_power(PowerPlanConfig(**{**cfg.__dict__, "run_spread_pts": 10.0}))
    assert wider.rows[0].runs_needed > row.runs_needed  # more spread between runs, more runs


def test_holm_family_and_an_unreachable_target():
    plan = plan_power(
        PowerPlanConfig(
            difference_pts=10,
            success_pct=50,
            run_spread_pts=15,
            comparisons=10,
            max_runs=8,
            starts_options=(200,),
            num_studies=100,
        )
    )
    assert plan.alpha_per_test == pytest.approx(0.005)
    assert plan.rows[0].runs_needed is None and plan.rows[0].power < 0.8
    assert plan.design_runs is None and plan.design_power is None


def test_pilot_estimates_come_from_its_runs(tmp_path):
    runs = [[0.5, 0.6, 0.55], [0.3, 0.2, 0.25], [0.9]]
    est = read_pilot(_pilot(tmp_path, runs))
    assert est["success_pct"] == pytest.approx(100 * np.mean([0.55, 0.25, 0.9]))
    assert est["run_spread_pts"] == pytest.approx(100 * math.sqrt(np.mean([np.var(r, ddof=1) for r in runs[:2]])))
    assert (est["runs"], est["num_starts"], est["comparisons"]) == (3, 200, 3)


def test_cli_plan_on_a_pilot_as_json(tmp_path):
    pilot = _pilot(tmp_path, [[0.5, 0.6, 0.55], [0.3, 0.2, 0.25]], pairs=1)
    res = runner.invoke(app, ["plan", str(pilot), "--difference-pts", "20", "--studies", "100", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["sources"] == {
        "success_pct": "pilot",
        "run_spread_pts": "pilot",
        "runs": "pilot",
        "num_starts": "pilot",
        "comparisons": "pilot",
    }
    assert out["design_runs"] == 3 and [r["num_starts"] for r in out["rows"]] == [100, 200, 400]
    text = runner.invoke(app, ["plan", str(pilot), "--difference-pts", "20", "--studies", "100"]).stdout
    assert "power of the pilot design (3 runs per arm x 200 starts): " in text
    assert "runs per arm for 80% power:" in text and "  200 starts: " in text


@pytest.mark.skipif(not (SHIPPED / "result.json").is_file(), reason="no shipped study")
def test_cli_plan_on_the_shipped_study():
    res = runner.invoke(app, ["plan", str(SHIPPED), "--difference-pts", "10", "--studies", "50", "--max-runs", "8"])
    assert res.exit_code == 0, res.output
    assert "power of the pilot design (" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--difference-pts", "10"], "error: --success-pct is needed (or a pilot study directory to estimate it from)"),
        (
            ["--difference-pts", "20", "--success-pct", "95", "--run-spread-pts", "5"],
            "error: arms at 95% ± 10 points leave 0-100%: choose a smaller --difference-pts",
        ),
        (["--difference-pts", "0", "--success-pct", "50", "--run-spread-pts", "5"], "error: --difference-pts must be"),
        (
            ["--difference-pts", "10", "--success-pct", "50", "--run-spread-pts", "49.9"],
            "error: a run spread of 49.9 points cannot occur at 45.0% mean success",
        ),
        (
            ["--difference-pts", "10", "--success-pct", "50", "--run-spread-pts", "5", "--runs", "1"],
            "error: --runs must be at least 2, got 1",
        ),
        (
            ["--difference-pts", "10", "--success-pct", "50", "--run-spread-pts", "5", "--alpha", "1.5"],
            "error: --alpha must be in (0, 1), got 1.5",
        ),
    ],
)
def test_impossible_inputs_are_one_line_errors(args, message):
    res = runner.invoke(app, ["plan", *args])
    assert res.exit_code == 2
    assert res.stderr.startswith(message) and res.stderr.count("\n") == 1


def test_pilot_errors(tmp_path):
    res = runner.invoke(app, ["plan", str(tmp_path), "--difference-pts", "10"])
    assert res.exit_code == 2 and "holds no study result (result.json missing)" in res.stderr
    one_run = _pilot(tmp_path, [[0.5], [0.2]])
    res = runner.invoke(app, ["plan", str(one_run), "--difference-pts", "10"])
    assert res.exit_code == 2 and "no arm with 2 or more finished training runs" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]  # nothing written
