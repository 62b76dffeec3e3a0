"""`vlnav-expert eval`: the PPO expert and the pursuit controller on the same seeded start states."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import resolve_device
from vlnav_data.eval_summary import (
    OutcomeSummary,
    PairedStepRatio,
    paired_step_ratio,
    summarize_outcomes,
    unpaired_step_ratio,
)
from vlnav_data.expert.checkpoint import load_expert
from vlnav_data.expert.config import EvalConfig
from vlnav_data.expert.pursuit import PursuitController

#: Stream tags that keep the episode seeds of different uses apart (same ``seed``, different starts).
EVAL_STREAM = 0x65766C  # "evl": `vlnav-expert eval`
TRAIN_MONITOR_STREAM = 0x74726E  # "trn": periodic evaluation during training

PolicyFn = Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray]


def episode_seeds(seed: int, num_episodes: int, stream: int = EVAL_STREAM) -> list[int]:
    """Episode seeds ``0..num_episodes-1`` of an evaluation; a pure function of its arguments.

    Seed ``i`` is drawn from ``SeedSequence([seed, i, stream])``, so the first k episodes of a longer
    evaluation are the same k episodes as a shorter one with the same ``seed``.

    Returns:
        ``num_episodes`` ints in [0, 2**63).
    """
    seeds = []
    for i in range(num_episodes):
        words = np.random.SeedSequence([seed, i, stream]).generate_state(2, np.uint32)
        seeds.append(int((int(words[0]) << 31) ^ int(words[1])))
    return seeds


def run_episodes(env: Any, policy_fn: PolicyFn, seeds: Sequence[int]) -> dict[str, np.ndarray]:
    """Run one episode per seed through ``vlnav_data.sim.rollout``; results in the order of ``seeds``.

    Args:
        env: a state-only (or rendering) arena from ``make_arena``.
        policy_fn: ``policy_fn(obs, info) -> actions (N, 2)``.
        seeds: episode seeds (each start from ``sample_episode_start``).

    Returns:
        dict of ``(E,)`` arrays: ``episode_seed`` int64, ``success`` bool, ``num_steps`` int64,
        ``termination`` str.
    """
    from vlnav_data.sim import rollout

    by_seed: dict[int, tuple[bool, int, str]] = {}
    for episode in rollout(env, policy_fn, list(seeds)):
        by_seed[int(episode.episode_seed)] = (bool(episode.success), int(episode.num_steps), str(episode.termination))
    missing = [s for s in seeds if s not in by_seed]
    if missing:
        raise RuntimeError(f"rollout returned no episode for {len(missing)} of {len(seeds)} seeds, e.g. {missing[0]}")
    rows = [by_seed[s] for s in seeds]
    return {
        "episode_seed": np.asarray(seeds, dtype=np.int64),
        "success": np.array([r[0] for r in rows], dtype=bool),
        "num_steps": np.array([r[1] for r in rows], dtype=np.int64),
        "termination": np.array([r[2] for r in rows], dtype=str),
    }


def compare_to_pursuit(expert_runs: dict[str, np.ndarray], pursuit_runs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Both policies' summaries and the step ratios expert / pursuit on shared starts (``vlnav_data.eval_summary``).

    Returns:
        ``{"expert": OutcomeSummary, "pursuit": OutcomeSummary, "paired_step_ratio": PairedStepRatio,
        "unpaired_step_ratio": float | None}``.
    """
    expert = summarize_outcomes(expert_runs["success"], expert_runs["num_steps"], expert_runs["termination"])
    pursuit = summarize_outcomes(pursuit_runs["success"], pursuit_runs["num_steps"], pursuit_runs["termination"])
    ratio = paired_step_ratio(
        expert_runs["num_steps"],
        expert_runs["success"],
        pursuit_runs["num_steps"],
        pursuit_runs["success"],
        policy="expert",
        reference="pursuit",
    )
    return {
        "expert": expert,
        "pursuit": pursuit,
        "paired_step_ratio": ratio,
        "unpaired_step_ratio": unpaired_step_ratio(expert, pursuit),
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalResult:
    """What `vlnav-expert eval` writes to ``result.json``.

    Attributes:
        config: the evaluation config.
        checkpoint: the checkpoint file evaluated.
        preset: arena preset.
        action_mapping: arena action mapping.
        num_episodes: episodes per policy (the same starts for both).
        expert: the expert's :class:`~vlnav_data.eval_summary.OutcomeSummary` (success with its Wilson
            interval, env steps over successes, termination causes): the schema of ``vlnav-policy eval``.
        pursuit: the same for the pursuit controller.
        paired_step_ratio: expert / pursuit env steps over the starts both solved
            (:class:`~vlnav_data.eval_summary.PairedStepRatio`).
        unpaired_step_ratio: mean env steps over each one's own successes, expert / pursuit (None if either
            has none).
        published_expert: the published expert's figures (reference spec §2.5) for comparison.
        wall_time_s: seconds for both evaluations.
        first_episode_seeds: the first few episode seeds (to reproduce a start by hand).
    """

    config: EvalConfig
    checkpoint: Path
    preset: str
    action_mapping: str
    num_episodes: int
    expert: OutcomeSummary
    pursuit: OutcomeSummary
    paired_step_ratio: PairedStepRatio
    unpaired_step_ratio: float | None
    published_expert: dict
    wall_time_s: float
    first_episode_seeds: list[int]


#: The published privileged expert (spec §2.5): 215/215 successes, 113.97 env steps over successes.
PUBLISHED_EXPERT = {"success_rate": 1.0, "num_episodes": 215, "mean_env_steps_successes": 113.97}


def evaluate_expert(cfg: EvalConfig) -> EvalResult:
    """Evaluate a PPO expert checkpoint against the pursuit controller on the same seeded starts.

    Raises:
        CheckpointError: checkpoint missing, corrupt, or trained for another preset.
        ConfigError: invalid device.
    """
    from vlnav_data.sim import get_preset, make_arena

    expert = load_expert(cfg.checkpoint)
    if cfg.preset is not None and cfg.preset != expert.preset:
        expert.check_arena(cfg.preset, get_preset(cfg.preset).action_mapping)  # raises CheckpointError
    preset = cfg.preset or expert.preset  # another simulator of the same task (text2nav-mujoco) is allowed
    device = resolve_device(cfg.device)
    arena_config = dataclasses.replace(get_preset(preset), action_mapping=expert.action_mapping)
    pursuit = PursuitController.for_arena(arena_config)
    seeds = episode_seeds(cfg.seed, cfg.num_episodes)

    t0 = time.perf_counter()
    num_envs = min(cfg.num_envs, cfg.num_episodes)
    env = make_arena(preset, num_envs=num_envs, device=device, render=False, action_mapping=expert.action_mapping)
    expert_runs = run_episodes(env, expert, seeds)
    pursuit_runs = run_episodes(env, pursuit, seeds)
    wall = time.perf_counter() - t0
    summary = compare_to_pursuit(expert_runs, pursuit_runs)
    return EvalResult(
        config=cfg,
        checkpoint=expert.path,
        preset=preset,
        action_mapping=expert.action_mapping,
        num_episodes=cfg.num_episodes,
        published_expert=PUBLISHED_EXPERT,
        wall_time_s=wall,
        first_episode_seeds=seeds[:5],
        **summary,
    )
