"""``vlnav-study plan``: how many training runs (and starts) a target difference between encoders needs.

The power of :func:`vlnav_data.stats.compare_arms`'s test is estimated by simulating studies
(:mod:`vlnav_data.study.power`) at the arms' success, the run-to-run spread and the target difference,
either read from a pilot study directory (its ``result.json``) or given as options. The family of
comparisons is accounted for the way Holm's procedure treats its most demanding step: each test at
``alpha / comparisons`` (a pilot study's number of pairs by default).

Pilot estimates (choices the issue leaves open, said here and in the output):

- run spread: the root mean of the arms' per-run success variances (``ddof=1``) over the arms with at
  least 2 runs. It includes the binomial noise of the starts, so it slightly overstates the spread of
  retraining alone: the plan errs towards more runs.
- success: the mean of the arms' mean per-run success; the two simulated arms sit at
  ``success ± difference / 2``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.study.power import RUN_LEVEL, SimulatedDesign, arm_parameters, rejection_rates

RESULT_FILE = "result.json"


@dataclass(frozen=True, kw_only=True)
class PowerPlanConfig:
    """What ``vlnav-study plan`` was asked (rates in percent, differences and spreads in points).

    Attributes:
        pilot_dir: a study directory whose ``result.json`` gives success, spread, runs, starts, pairs.
        difference_pts: the smallest true difference between two arms worth detecting.
        success_pct: the arms' mean success (overrides the pilot's).
        run_spread_pts: sd across training runs of a run's success (overrides the pilot's).
        runs: runs per arm of the design whose power is reported (default: the pilot's).
        num_starts: evaluation starts of that design (default: the pilot's, else 200).
        comparisons: pairs in the Holm family (default: the pilot's pairs, else 1).
        alpha: family-wise level.
        target_power: the power to reach.
        starts_options: starts counts to plan for (default: half, once and twice ``num_starts``).
        max_runs: the most runs per arm searched.
        num_studies: simulated studies per design.
        seed: seed of the simulation.
    """

    pilot_dir: Path | None = None
    difference_pts: float
    success_pct: float | None = None
    run_spread_pts: float | None = None
    runs: int | None = None
    num_starts: int | None = None
    comparisons: int | None = None
    alpha: float = 0.05
    target_power: float = 0.8
    starts_options: tuple[int, ...] = ()
    max_runs: int = 50
    num_studies: int = 400
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class PlanRow:
    """Runs per arm needed at one number of starts (``runs_needed`` None: more than ``max_runs``)."""

    num_starts: int
    runs_needed: int | None
    power: float
    mc_se: float


@dataclass(frozen=True, kw_only=True)
class PowerPlan:
    """The resolved inputs, the power of the given (pilot) design and the runs needed per starts count."""

    success_pct: float
    difference_pts: float
    run_spread_pts: float
    alpha: float
    comparisons: int
    alpha_per_test: float
    target_power: float
    num_studies: int
    sources: dict[str, str]
    design_runs: int | None
    design_starts: int
    design_power: float | None
    design_mc_se: float | None
    rows: list[PlanRow] = field(default_factory=list)
    max_runs: int = 50

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return asdict(self)


def read_pilot(directory: Path) -> dict[str, Any]:
    """Success, run spread, runs per arm, starts and number of pairs of a finished (or partial) study.

    Raises:
        ConfigError: no ``result.json``, or no arm with 2 runs to estimate a spread from.
    """
    path = Path(directory) / RESULT_FILE
    if not path.is_file():
        raise ConfigError(
            f"'{directory}' holds no study result ({RESULT_FILE} missing); give a directory written by "
            "`vlnav-study run` (or `vlnav-study report DIR`), or --success-pct and --run-spread-pts"
        )
    payload = json.loads(path.read_text())
    arms = payload.get("analysis", {}).get("arms", [])
    runs = [[float(x) for x in a.get("per_seed_success_rate", [])] for a in arms]
    spread_arms = [r for r in runs if len(r) >= 2]
    if not spread_arms:
        raise ConfigError(
            f"the pilot '{directory}' has no arm with 2 or more finished training runs, so no run spread to "
            "estimate; finish more cells or pass --run-spread-pts"
        )
    return {
        "success_pct": 100.0 * float(np.mean([np.mean(r) for r in runs if r])),
        "run_spread_pts": 100.0 * math.sqrt(float(np.mean([np.var(r, ddof=1) for r in spread_arms]))),
        "runs": int(np.median([len(r) for r in runs if r])),
        "num_starts": int(payload["evaluation"]["num_episodes"]),
        "comparisons": max(1, len(payload["analysis"].get("comparisons", []))),
    }


def _resolve(config: PowerPlanConfig) -> tuple[dict[str, Any], dict[str, str]]:
    pilot = read_pilot(config.pilot_dir) if config.pilot_dir is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    defaults = {"runs": None, "num_starts": 200, "comparisons": 1}
    for key in ("success_pct", "run_spread_pts", "runs", "num_starts", "comparisons"):
        given = getattr(config, key)
        if given is not None:
            values[key], sources[key] = given, "option"
        elif key in pilot:
            values[key], sources[key] = pilot[key], "pilot"
        elif key in defaults:
            values[key], sources[key] = defaults[key], "default"
        else:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} is needed (or a pilot study directory to estimate it from)")
    return values, sources


def check_plan_config(config: PowerPlanConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """Every input checked and resolved before any simulation.

    Raises:
        ConfigError: an impossible input, with what was expected and what to do.
    """
    v, sources = _resolve(config)
    success, diff, spread = v["success_pct"], config.difference_pts, v["run_spread_pts"]
    if not 0.0 < diff < 100.0:
        raise ConfigError(f"--difference-pts must be in (0, 100) points, got {diff:g}")
    if not (0.0 < success - diff / 2 and success + diff / 2 < 100.0):
        raise ConfigError(
            f"arms at {success:g}% ± {diff / 2:g} points leave 0-100%: choose a smaller --difference-pts or "
            "another --success-pct (strictly between 0 and 100 for both arms)"
        )
    if spread < 0.0:
        raise ConfigError(f"--run-spread-pts must be >= 0, got {spread:g}")
    for name, value, low in (("runs", v["runs"], 2), ("starts", v["num_starts"], 1), ("max-runs", config.max_runs, 2)):
        if value is not None and value < low:
            raise ConfigError(f"--{name} must be at least {low}, got {value}")
    for name, value in (("alpha", config.alpha), ("power", config.target_power)):
        if not 0.0 < value < 1.0:
            raise ConfigError(f"--{name} must be in (0, 1), got {value:g}")
    if v["comparisons"] < 1 or config.num_studies < 10 or any(s < 1 for s in config.starts_options):
        raise ConfigError("--comparisons and every --plan-starts must be >= 1, and --studies >= 10")
    try:
        for s in (success - diff / 2, success + diff / 2):
            arm_parameters(
                s / 100.0, spread / 100.0, SimulatedDesign.__dataclass_fields__["start_spread_logit"].default
            )
    except ValueError as exc:
        raise ConfigError(f"{exc}; pass a smaller --run-spread-pts") from None
    return v, sources


def _power(
    config: PowerPlanConfig, v: dict[str, Any], runs: int, starts: int, alpha_test: float
) -> tuple[float, float]:
    diff = config.difference_pts / 100.0
    design = SimulatedDesign(
        runs_a=runs,
        runs_b=runs,
        num_starts=starts,
        success_a=v["success_pct"] / 100.0 + diff / 2,
        success_b=v["success_pct"] / 100.0 - diff / 2,
        run_spread=v["run_spread_pts"] / 100.0,
    )
    (rate,) = [
        r
        for r in rejection_rates(
            design, num_studies=config.num_studies, alpha=alpha_test, rng=config.seed, pooled=False
        )
        if r.method == RUN_LEVEL
    ]
    return rate.rate, rate.mc_se


def plan_power(config: PowerPlanConfig) -> PowerPlan:
    """Simulate and return the power of the given design and the runs per arm needed for the target power.

    The search over runs doubles from 2 until the target is reached, then bisects (power grows with runs;
    every design is simulated with the same seed, so the estimates are coupled).
    """
    v, sources = check_plan_config(config)
    alpha_test = config.alpha / v["comparisons"]
    design_power = design_se = None
    if v["runs"] is not None:
        design_power, design_se = _power(config, v, v["runs"], v["num_starts"], alpha_test)
    n = v["num_starts"]
    options = config.starts_options or tuple(sorted({max(1, n // 2), n, 2 * n}))
    rows = []
    for starts in options:
        cache: dict[int, tuple[float, float]] = {}

        def power(runs: int, starts: int = starts, cache: dict = cache) -> float:
            if runs not in cache:
                cache[runs] = _power(config, v, runs, starts, alpha_test)
            return cache[runs][0]

        low, high = 1, 2  # power(low) < target (or low = 1: no test), power(high) >= target
        while power(high) < config.target_power and high < config.max_runs:
            low, high = high, min(2 * high, config.max_runs)
        if power(high) < config.target_power:
            rows.append(PlanRow(num_starts=starts, runs_needed=None, power=cache[high][0], mc_se=cache[high][1]))
            continue
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if power(mid) >= config.target_power else (mid, high)
        rows.append(PlanRow(num_starts=starts, runs_needed=high, power=cache[high][0], mc_se=cache[high][1]))
    return PowerPlan(
        success_pct=float(v["success_pct"]),
        difference_pts=float(config.difference_pts),
        run_spread_pts=float(v["run_spread_pts"]),
        alpha=config.alpha,
        comparisons=int(v["comparisons"]),
        alpha_per_test=alpha_test,
        target_power=config.target_power,
        num_studies=config.num_studies,
        sources=sources,
        design_runs=v["runs"],
        design_starts=n,
        design_power=design_power,
        design_mc_se=design_se,
        rows=rows,
        max_runs=config.max_runs,
    )
