"""`vlnav-expert train`: PPO (stable-baselines3) on the privileged state of a state-only arena.

The learner sees :func:`~vlnav_data.expert.features.expert_features` of ``privileged_state`` (never
pixels) through :class:`~vlnav_data.expert.sb3_vec_env.ArenaSB3VecEnv`, and is rewarded by
:func:`~vlnav_data.expert.reward.expert_reward`. Every ``eval_every_steps`` env steps the deterministic
policy runs a fixed set of seeded episodes beside the pursuit controller on the same starts (the
"monitor"); with ``stop_at_success_rate`` training stops at the first monitor evaluation that meets the
success and step-ratio targets. Outputs in ``out_dir``: ``expert.pt`` (slim checkpoint, the one to
ship), ``sb3_model.zip`` (full SB3 model with optimiser state) and ``result.json``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import resolve_device
from vlnav_data.expert.checkpoint import CHECKPOINT_FILENAME, ExpertPolicy, expert_from_sb3
from vlnav_data.expert.config import TrainConfig
from vlnav_data.expert.evaluate import TRAIN_MONITOR_STREAM, compare_to_pursuit, episode_seeds, run_episodes
from vlnav_data.expert.pursuit import PursuitController
from vlnav_data.jsonio import to_jsonable

SB3_MODEL_FILENAME = "sb3_model.zip"
LOSS_KEYS = (
    "train/policy_gradient_loss",
    "train/value_loss",
    "train/entropy_loss",
    "train/loss",
    "train/approx_kl",
    "train/clip_fraction",
    "train/explained_variance",
    "train/std",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What `vlnav-expert train` writes to ``result.json``.

    Attributes:
        config: the training config.
        checkpoint: the slim checkpoint (``out_dir/expert.pt``).
        sb3_model: the full SB3 model (``out_dir/sb3_model.zip``).
        preset: arena preset.
        action_mapping: arena action mapping.
        env_steps: env steps trained (summed over arenas).
        wall_time_s: seconds from the first to the last PPO step, monitor evaluations included.
        monitor_time_s: seconds spent in monitor evaluations.
        env_steps_per_s: ``env_steps / (wall_time_s - monitor_time_s)`` (PPO collection + updates).
        stopped_early: training stopped at the success / step-ratio target.
        target_reached_at: ``{"env_steps", "wall_time_s", "train_time_s"}`` of the first monitor
            evaluation meeting the target (``stop_at_success_rate`` or 0.99, and
            ``stop_at_step_ratio``), or None.
        final_monitor: the monitor evaluation of the saved policy (expert and pursuit summaries,
            paired step ratio); None with ``eval_episodes=0``.
        history: one entry per monitor evaluation.
        losses: the last PPO update's losses (``train/*`` of SB3's logger).
        machine: platform, CPU count, torch threads, library versions.
    """

    config: TrainConfig
    checkpoint: Path
    sb3_model: Path
    preset: str
    action_mapping: str
    env_steps: int
    wall_time_s: float
    monitor_time_s: float
    env_steps_per_s: float
    stopped_early: bool
    target_reached_at: dict | None
    final_monitor: dict | None
    history: list[dict]
    losses: dict
    machine: dict


def machine_info(torch_threads: int) -> dict[str, Any]:
    """Where a run happened (for result.json and the benchmark)."""
    import stable_baselines3
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "platform": platform.platform(),
        "processor": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch_threads,
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


class _Monitor:
    """Periodic deterministic evaluation on fixed seeded starts, beside the pursuit controller."""

    def __init__(self, cfg: TrainConfig, preset: str, action_mapping: str) -> None:
        from vlnav_data.sim import make_arena

        self.cfg = cfg
        self.preset = preset
        self.action_mapping = action_mapping
        self.seeds = episode_seeds(cfg.seed, cfg.eval_episodes, stream=TRAIN_MONITOR_STREAM)
        num_envs = min(64, cfg.eval_episodes)
        self.env = make_arena(preset, num_envs=num_envs, device="cpu", render=False, action_mapping=action_mapping)
        self.pursuit_runs = run_episodes(self.env, PursuitController.for_arena(self.env.config), self.seeds)
        self.history: list[dict] = []
        self.time_s = 0.0
        self.target_reached_at: dict | None = None

    def evaluate(self, expert: ExpertPolicy, env_steps: int, wall_time_s: float, losses: dict) -> dict:
        """Run the monitor episodes; ``wall_time_s`` = training wall time when this evaluation started."""
        spent_before = self.time_s  # monitor time inside wall_time_s
        t0 = time.perf_counter()
        summary = compare_to_pursuit(run_episodes(self.env, expert, self.seeds), self.pursuit_runs)
        self.time_s += time.perf_counter() - t0
        entry = {"env_steps": env_steps, "wall_time_s": wall_time_s, "losses": losses, **to_jsonable(summary)}
        self.history.append(entry)
        if self.target_reached_at is None and self.meets_target(entry):
            self.target_reached_at = {
                "env_steps": env_steps,
                "wall_time_s": wall_time_s,
                "train_time_s": wall_time_s - spent_before,
            }
        return entry

    def meets_target(self, entry: dict) -> bool:
        goal = self.cfg.stop_at_success_rate if self.cfg.stop_at_success_rate is not None else 0.99
        ratio = entry["paired_step_ratio"]["ratio_of_means"]
        return entry["expert"]["success"]["rate"] >= goal and ratio is not None and ratio <= self.cfg.stop_at_step_ratio


def _make_callback(monitor: _Monitor | None, cfg: TrainConfig, preset: str, action_mapping: str, t_start: list[float]):
    from stable_baselines3.common.callbacks import BaseCallback

    class MonitorCallback(BaseCallback):
        """Captures PPO losses after each update; runs the monitor every ``eval_every_steps``.

        Both happen in ``_on_rollout_start``, i.e. right after an update: the losses SB3 just recorded
        (``train/*``, cleared at the next log dump) belong to that update, and the policy evaluated is
        exactly the one saved if the monitor stops training here (``_on_step`` returns False on the first
        step of the new rollout, before any further update).
        """

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = cfg.eval_every_steps
            self.losses: dict[str, float] = {}
            self.stopped_early = False

        def _on_training_start(self) -> None:
            t_start[0] = time.perf_counter()

        def _on_rollout_start(self) -> None:
            values = self.model.logger.name_to_value
            if any(k in values for k in LOSS_KEYS):
                self.losses = {k.split("/", 1)[1]: float(values[k]) for k in LOSS_KEYS if k in values}
            if monitor is None or cfg.eval_every_steps == 0 or self.num_timesteps < self.next_eval:
                return
            while self.next_eval <= self.num_timesteps:
                self.next_eval += cfg.eval_every_steps
            expert = expert_from_sb3(self.model, preset=preset, action_mapping=action_mapping)
            entry = monitor.evaluate(expert, self.num_timesteps, time.perf_counter() - t_start[0], dict(self.losses))
            if cfg.stop_at_success_rate is not None and monitor.meets_target(entry):
                self.stopped_early = True

        def _on_step(self) -> bool:
            return not self.stopped_early

    return MonitorCallback()


def train_expert(cfg: TrainConfig) -> TrainResult:
    """Train a PPO expert and save it (see the module docstring).

    Returns:
        :class:`TrainResult` (also written to ``out_dir/result.json`` by the CLI).

    Raises:
        ConfigError: unknown preset / device, invalid hyper-parameters.
    """
    import torch
    from stable_baselines3 import PPO

    from vlnav_data.expert.sb3_vec_env import ArenaSB3VecEnv
    from vlnav_data.sim import get_preset, make_arena

    device = resolve_device(cfg.device)
    action_mapping = cfg.action_mapping or get_preset(cfg.preset).action_mapping
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        arena = make_arena(cfg.preset, num_envs=cfg.num_envs, device="cpu", render=False, action_mapping=action_mapping)
        venv = ArenaSB3VecEnv(arena, reward=cfg.reward, reward_scale=cfg.reward_scale, seed=cfg.seed)
        activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[cfg.activation]
        model = PPO(
            "MlpPolicy",
            venv,
            learning_rate=cfg.learning_rate,
            n_steps=cfg.rollout_steps,
            batch_size=cfg.minibatch_size,
            n_epochs=cfg.num_epochs,
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            policy_kwargs={
                "net_arch": {"pi": list(cfg.hidden_sizes), "vf": list(cfg.hidden_sizes)},
                "activation_fn": activation,
                "log_std_init": cfg.log_std_init,
            },
            use_sde=cfg.use_sde,
            sde_sample_freq=cfg.sde_sample_freq,
            seed=cfg.seed,
            device=device,
            verbose=0,
        )
        monitor = _Monitor(cfg, cfg.preset, action_mapping) if cfg.eval_episodes > 0 else None
        t_start = [time.perf_counter()]
        callback = _make_callback(monitor, cfg, cfg.preset, action_mapping, t_start)
        model.learn(cfg.total_steps, callback=callback, progress_bar=False)
        wall = time.perf_counter() - t_start[0]
        monitor_time = monitor.time_s if monitor else 0.0  # monitor evaluations inside the timed run
        env_steps = int(model.num_timesteps)
        values = model.logger.name_to_value  # the last update's losses (not dumped after the last update)
        losses = {k.split("/", 1)[1]: float(values[k]) for k in LOSS_KEYS if k in values} or dict(callback.losses)

        train_config = to_jsonable(cfg)
        expert = expert_from_sb3(model, preset=cfg.preset, action_mapping=action_mapping, train_config=train_config)
        last = None
        if monitor is not None and callback.stopped_early:
            last = monitor.history[-1]  # the policy evaluated is the one saved (no update since)
        elif monitor is not None:
            last = monitor.evaluate(expert, env_steps, wall, losses)
        if last is not None:
            expert.metrics = {k: last[k] for k in ("env_steps", "expert", "pursuit", "paired_step_ratio")}
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = expert.save(cfg.out_dir / CHECKPOINT_FILENAME)
        sb3_model = cfg.out_dir / SB3_MODEL_FILENAME
        model.save(sb3_model)
        train_time = max(wall - monitor_time, 1e-9)
        return TrainResult(
            config=cfg,
            checkpoint=checkpoint,
            sb3_model=sb3_model,
            preset=cfg.preset,
            action_mapping=action_mapping,
            env_steps=env_steps,
            wall_time_s=wall,
            monitor_time_s=monitor_time,
            env_steps_per_s=env_steps / train_time,
            stopped_early=callback.stopped_early,
            target_reached_at=monitor.target_reached_at if monitor else None,
            final_monitor=last,
            history=monitor.history if monitor else [],
            losses=losses,
            machine=machine_info(cfg.torch_threads),
        )
    finally:
        torch.set_num_threads(previous_threads)


def check_finite_losses(losses: dict[str, float]) -> bool:
    """True when every recorded loss is a finite number (used by tests and the benchmark)."""
    return bool(losses) and all(np.isfinite(v) for v in losses.values())
