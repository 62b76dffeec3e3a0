"""A study's statistics, computed from the per-episode records of its finished cells.

Inputs are the cells' ``eval/episodes.npz`` and ``eval/expert_episodes.npz`` (one row per evaluation
episode, in the order of the study's evaluation seeds) and the probe cells' ``probe_scores.json``.

Per arm (dataset, encoder, features, recipe), pooled over its training seeds: success with a Wilson
95% interval; the across-seed mean and standard deviation of the success rate; env steps over
successes (one 30 Hz control step counted once, never the published counter's ticks); SPL; the
paired step ratio to the expert on the same starts; termination causes.

Between arms (:func:`vlnav_data.stats.compare_arms`): the unit is the training run. Each run's
success rate over the shared starts is one observation; the p-value is Welch's t-test on the two arms'
run rates (the exact permutation test over run labels when neither arm's runs differ at all), the
difference comes with Welch's t interval, and the probability of improvement P(run of A > run of B)
with a stratified bootstrap interval. Holm's correction runs over every pair of arms; a pair is
*significant* when its Holm-adjusted p-value is at most ``alpha``, and *too few runs* when even the
smallest p-value the test can produce with these run counts, times the number of pairs, exceeds
``alpha`` (no outcome of these runs could have been significant: not evidence of no difference).

Kept beside it, labelled and never feeding the verdict: the pooled McNemar table, a pair being
(training seed k of A, training seed k of B, start j). It conditions on these trained policies and these
starts (how often *these* runs disagree), which is why it must not be read as a verdict about encoders:
with run-to-run spread it rejects true nulls most of the time (``bench/RESULTS.md``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.eval_summary import paired_step_ratio, summarize_outcomes, unpaired_step_ratio
from vlnav_data.jsonio import to_jsonable
from vlnav_data.stats import (
    compare_arms,
    holm_adjust,
    mcnemar_exact,
    mean_spread,
    paired_difference_interval,
    paired_table,
)

ArmKey = tuple[str, str, str, str]


@dataclass(frozen=True, kw_only=True)
class CellRecords:
    """A finished BC cell's evaluation: student and expert records on the shared starts."""

    arm: ArmKey
    train_seed: int
    cell_id: str
    student: Any  # EpisodeRecords
    expert: Any  # EpisodeRecords


def load_cell_records(cell_id: str, arm: ArmKey, train_seed: int, directory: Path) -> CellRecords:
    """Read ``eval/episodes.npz`` and ``eval/expert_episodes.npz`` of a finished BC cell."""
    from vlnav_data.policy.records import EXPERT_RECORDS, STUDENT_RECORDS, EpisodeRecords

    eval_dir = Path(directory) / "eval"
    return CellRecords(
        arm=arm,
        train_seed=train_seed,
        cell_id=cell_id,
        student=EpisodeRecords.load(eval_dir / STUDENT_RECORDS),
        expert=EpisodeRecords.load(eval_dir / EXPERT_RECORDS),
    )


def start_poses(records: Any) -> np.ndarray:
    """float32 (M, 3) start pose ``[x_m, y_m, yaw_rad]`` of every episode of a records file."""
    index = records.offsets[:-1] + np.arange(len(records))
    return records.poses[index]


def check_shared_starts(cells: list[CellRecords], evaluation_seeds: np.ndarray) -> None:
    """Every student and expert run must have used exactly the study's evaluation starts.

    Raises:
        ConfigError: a cell evaluated other seeds, or drew other starts from them.
    """
    if not cells:
        return
    ref = cells[0].student
    for c in cells:
        for who, rec in (("student", c.student), ("expert", c.expert)):
            if not np.array_equal(rec.episode_seed, evaluation_seeds):
                raise ConfigError(
                    f"cell '{c.cell_id}': the {who} ran other episode seeds than the study's evaluation seeds; "
                    "delete the cell directory to recompute it"
                )
            if not (
                np.array_equal(rec.target_index, ref.target_index)
                and np.array_equal(start_poses(rec), start_poses(ref))
            ):
                raise ConfigError(
                    f"cell '{c.cell_id}': the {who} started from other poses or targets than the other cells; "
                    "the comparison would not be paired"
                )


def _arena(sim_config: dict[str, Any]) -> Any:
    from vlnav_data.sim import arena_config_from_json

    return arena_config_from_json(sim_config)


def policy_stats(records: list[Any], experts: list[Any], arena: Any) -> dict[str, Any]:
    """Pooled statistics of one arm's seeds (``records[k]`` paired with ``experts[k]``).

    The pooled episodes are summarised in the schema every evaluation shares (:mod:`vlnav_data.eval_summary`:
    ``success``, env steps over successes, ``termination_causes``, ``paired_step_ratio`` to the expert,
    ``unpaired_step_ratio``), plus the per-seed success rates, their mean and spread, SPL and wrong-sphere
    failures.
    """
    from vlnav_data.policy.evaluate import summarize

    summaries = [summarize(r, arena) for r in records]
    pooled = summarize_outcomes(
        np.concatenate([r.success.astype(bool) for r in records]),
        np.concatenate([r.num_steps for r in records]),
        np.concatenate([r.termination for r in records]),
    )
    expert = summarize_outcomes(
        np.concatenate([e.success.astype(bool) for e in experts]),
        np.concatenate([e.num_steps for e in experts]),
        np.concatenate([e.termination for e in experts]),
    )
    paired = paired_step_ratio(
        np.concatenate([r.num_steps for r in records]),
        np.concatenate([r.success.astype(bool) for r in records]),
        np.concatenate([e.num_steps for e in experts]),
        np.concatenate([e.success.astype(bool) for e in experts]),
        policy="student",
        reference="expert",
    )
    per_seed = [float(r.success.mean()) for r in records]
    return {
        **to_jsonable(pooled),
        "per_seed_success_rate": per_seed,
        "across_seeds": mean_spread(per_seed).__dict__,
        "spl": float(np.average([s.spl for s in summaries], weights=[len(r) for r in records])),
        "paired_step_ratio": to_jsonable(paired),
        "unpaired_step_ratio": unpaired_step_ratio(pooled, expert),
        "failures_reaching_wrong_sphere": int(sum(s.failures_reaching_wrong_sphere for s in summaries)),
        "num_episodes": int(pooled.success["trials"]),
    }


def arm_label(arm: ArmKey, varying: tuple[bool, bool, bool, bool]) -> str:
    """``encoder`` plus the parts of the arm that vary across the study (dataset, features, recipe)."""
    dataset, encoder, features, recipe = arm
    parts = [dataset] if varying[0] else []
    parts.append(encoder)
    if varying[2]:
        parts.append(features)
    if varying[3]:
        parts.append(recipe)
    return " / ".join(parts)


def analyse(
    cells: list[CellRecords],
    datasets: dict[str, dict[str, Any]],
    evaluation_seeds: np.ndarray,
    alpha: float,
    probe_scores: dict[tuple[str, str, str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every statistic of the report from the finished cells.

    Args:
        cells: the finished BC cells' records.
        datasets: label -> recorded dataset info (``sim_config``, ``instructions``, ``expert``, ...).
        evaluation_seeds: the study's shared episode seeds.
        alpha: family-wise level of the paired tests.
        probe_scores: ``(dataset, encoder, features)`` -> ``probe_scores.json`` of finished probe cells.

    Returns:
        ``{"arms": [...], "experts": {...}, "comparisons": [...], "ranking": [...], "probes": [...]}``;
        arms are ranked by pooled success (ties by label).
    """
    check_shared_starts(cells, evaluation_seeds)
    by_arm: dict[ArmKey, list[CellRecords]] = {}
    for c in sorted(cells, key=lambda c: (c.arm, c.train_seed)):
        by_arm.setdefault(c.arm, []).append(c)
    keys = list(by_arm)
    varying = tuple(len({k[i] for k in keys}) > 1 for i in range(4))
    arms = []
    for arm, group in by_arm.items():
        arena = _arena(datasets[arm[0]]["sim_config"])
        stats = policy_stats([c.student for c in group], [c.expert for c in group], arena)
        arms.append(
            {
                "label": arm_label(arm, varying),  # type: ignore[arg-type]
                "dataset": arm[0],
                "instructions": datasets[arm[0]].get("instructions"),
                "encoder": arm[1],
                "features": arm[2],
                "recipe": arm[3],
                "train_seeds": [c.train_seed for c in group],
                "cells": [c.cell_id for c in group],
                **stats,
            }
        )
    arms.sort(key=lambda a: (-a["success"]["rate"], a["label"]))
    experts = _experts(by_arm, datasets)
    comparisons = _comparisons(arms, by_arm, alpha)
    probes = []
    for (dataset, encoder, features), scores in sorted((probe_scores or {}).items()):
        probes.append({"dataset": dataset, "encoder": encoder, "features": features, **scores})
    return {
        "arms": arms,
        "experts": experts,
        "comparisons": comparisons,
        "ranking": [a["label"] for a in arms],
        "probes": probes,
        "alpha": alpha,
    }


def _experts(by_arm: dict[ArmKey, list[CellRecords]], datasets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The expert of each dataset on the shared starts (from the first cell; checked identical across cells)."""
    out: dict[str, Any] = {}
    for label in sorted({arm[0] for arm in by_arm}):
        runs = [c.expert for arm, group in by_arm.items() if arm[0] == label for c in group]
        first = runs[0]
        identical = all(
            np.array_equal(r.success, first.success) and np.array_equal(r.num_steps, first.num_steps) for r in runs
        )
        stats = policy_stats([first], [first], _arena(datasets[label]["sim_config"]))
        out[label] = {
            "expert": datasets[label].get("expert"),
            "instructions": datasets[label].get("instructions"),
            "identical_across_cells": bool(identical),
            "num_runs": len(runs),
            **stats,
        }
    return out


def _conditional_table(seeds_a: dict[int, CellRecords], seeds_b: dict[int, CellRecords]) -> dict[str, Any] | None:
    """The pooled McNemar table over the training seeds both arms ran: about these policies, not encoders."""
    common = sorted(set(seeds_a) & set(seeds_b))
    if not common:
        return None
    sa = np.concatenate([seeds_a[s].student.success.astype(bool) for s in common])
    sb = np.concatenate([seeds_b[s].student.success.astype(bool) for s in common])
    both, a_only, b_only, neither = paired_table(sa.tolist(), sb.tolist())
    diff, low, high = paired_difference_interval(both, a_only, b_only, neither)
    return {
        "scope": "conditional on these trained policies and these starts; not a verdict about encoders",
        "train_seeds": common,
        "num_pairs": int(sa.size),
        "table": {"both": both, "a_only": a_only, "b_only": b_only, "neither": neither},
        "difference": diff,
        "difference_low": low,
        "difference_high": high,
        "p_mcnemar": mcnemar_exact(a_only, b_only),
    }


def _comparisons(arms: list[dict[str, Any]], by_arm: dict[ArmKey, list[CellRecords]], alpha: float) -> list[dict]:
    """Every pair of arms by :func:`compare_arms`, Holm over its p-values, and a verdict per pair."""
    rows = []
    for a, b in itertools.combinations(arms, 2):
        ka = (a["dataset"], a["encoder"], a["features"], a["recipe"])
        kb = (b["dataset"], b["encoder"], b["features"], b["recipe"])
        res = compare_arms(
            np.stack([c.student.success.astype(np.int8) for c in by_arm[ka]]),
            np.stack([c.student.success.astype(np.int8) for c in by_arm[kb]]),
            alpha=alpha,
            rng=0,
        )
        rows.append(
            {
                "a": a["label"],
                "b": b["label"],
                "train_seeds_a": a["train_seeds"],
                "train_seeds_b": b["train_seeds"],
                "num_runs_a": res.num_runs_a,
                "num_runs_b": res.num_runs_b,
                "num_starts": res.num_starts,
                "run_success_a": list(res.run_success_a),
                "run_success_b": list(res.run_success_b),
                "success_a": float(np.mean(res.run_success_a)),
                "success_b": float(np.mean(res.run_success_b)),
                "difference": res.difference,
                "difference_low": res.low,
                "difference_high": res.high,
                "confidence": 1.0 - alpha,
                "probability_of_improvement": res.probability_of_improvement,
                "probability_of_improvement_low": res.probability_of_improvement_low,
                "probability_of_improvement_high": res.probability_of_improvement_high,
                "method": res.method,
                "p_value": res.p_value,
                "smallest_p_value": res.smallest_p_value,
                "conditional": _conditional_table(
                    {c.train_seed: c for c in by_arm[ka]}, {c.train_seed: c for c in by_arm[kb]}
                ),
            }
        )
    adjusted = holm_adjust([r["p_value"] for r in rows])
    lowest_floor = min((r["smallest_p_value"] for r in rows), default=0.0)
    for row, p in zip(rows, adjusted, strict=True):
        # The smallest Holm-adjusted p-value this pair could reach whatever the runs had shown.
        row["smallest_p_holm"] = min(1.0, max(len(rows) * lowest_floor, row["smallest_p_value"]))
        row["p_holm"] = p
        row["significant"] = bool(p <= alpha)
        row["verdict"] = "yes" if row["significant"] else ("too few runs" if row["smallest_p_holm"] > alpha else "no")
    return rows
