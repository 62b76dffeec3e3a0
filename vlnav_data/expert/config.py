"""Configs of `vlnav-expert train` and `vlnav-expert eval`: one frozen dataclass per command."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, unknown_name
from vlnav_data.expert.reward import REWARD_VARIANTS
from vlnav_data.sim import ACTION_MAPPINGS, PRESET_NAMES

ACTIVATIONS = ("tanh", "relu", "elu")


def _check_preset(preset: str) -> None:
    if preset not in PRESET_NAMES:
        raise unknown_name("preset", preset, PRESET_NAMES)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """`vlnav-expert train`: PPO (stable-baselines3) on the privileged state of a state-only arena.

    Defaults are the settings that trained the shipped ``text2nav`` checkpoint.

    Attributes:
        out_dir: where ``expert.pt`` (the slim checkpoint), ``sb3_model.zip`` (full SB3 model, optimiser
            included, for resuming) and ``result.json`` go.
        preset: arena preset name (``vlnav_data.sim.PRESET_NAMES``).
        action_mapping: ``bang_bang`` | ``velocity``; None = the preset's own.
        seed: seeds the arena, PPO and torch.
        total_steps: env steps to train, summed over all arenas.
        num_envs: arenas stepped in one batch.
        rollout_steps: env steps per arena per PPO update (SB3 ``n_steps``).
        num_minibatches: gradient steps per pass over a rollout (published: 8); SB3's ``batch_size`` is
            ``num_envs * rollout_steps / num_minibatches``.
        num_epochs: passes over each rollout (SB3 ``n_epochs``).
        learning_rate: Adam learning rate (constant).
        gamma: discount factor.
        gae_lambda: GAE lambda.
        clip_range: PPO ratio clip.
        ent_coef: entropy bonus coefficient.
        vf_coef: value-loss coefficient.
        max_grad_norm: gradient-norm clip.
        hidden_sizes: widths of the actor's (and, separately, the critic's) hidden layers.
        activation: hidden-layer activation: ``tanh`` | ``relu`` | ``elu``.
        log_std_init: initial log standard deviation of the Gaussian policy.
        use_sde: generalised state-dependent exploration (SB3 ``use_sde``). With bang-bang wheels,
            independent per-step Gaussian noise lets PPO steer by *dithering* the sign of the inner wheel
            (a mean of +0.2 with noise gives a reversed wheel 30% of the time), so the stochastic policy
            improves while the deterministic (mean) policy, which never reverses that wheel, drives past
            the target (measured: deterministic success fell from 100% to 50-60% while the stochastic
            one stayed at 100%). gSDE noise is a fixed function of the state between resamplings, so
            the policy must steer by state feedback, which is what the deterministic expert does.
        sde_sample_freq: resample the gSDE noise matrix every this many env steps (-1: once per rollout).
        reward: ``fixed`` (2-D heading term) or ``published`` (the original no-op heading term);
            see :mod:`vlnav_data.expert.reward`.
        reward_scale: multiplies every reward (the published run used 2.0).
        eval_every_steps: evaluate the deterministic policy every this many env steps (0 = never).
        eval_episodes: seeded episodes per monitor evaluation (a fixed set, disjoint from eval's); 0 turns
            the monitor off (no periodic or final evaluation).
        stop_at_success_rate: stop early once a periodic evaluation reaches this success rate and
            ``stop_at_step_ratio``; None = always train ``total_steps``.
        stop_at_step_ratio: mean-steps ratio to the pursuit controller (same starts) needed to stop.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` for PPO's networks (the arena runs on CPU: its state is
            tiny). Default ``cpu``: a 64x64 MLP is faster on CPU than through CUDA launches, and the
            shipped checkpoint was trained there.
        torch_threads: torch intra-op threads (the default suits a 2-core machine).
    """

    out_dir: Path
    preset: str = "text2nav"
    action_mapping: str | None = None
    seed: int = 0
    total_steps: int = 800_000
    num_envs: int = 256
    rollout_steps: int = 64
    num_minibatches: int = 8
    num_epochs: int = 5
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden_sizes: tuple[int, ...] = (32, 32)
    activation: str = "tanh"
    log_std_init: float = -1.0
    use_sde: bool = True
    sde_sample_freq: int = 64
    reward: str = "fixed"
    reward_scale: float = 1.0
    eval_every_steps: int = 65_536
    eval_episodes: int = 200
    stop_at_success_rate: float | None = None
    stop_at_step_ratio: float = 1.10
    device: str = "cpu"
    torch_threads: int = 1

    @property
    def minibatch_size(self) -> int:
        """Samples per gradient step (SB3 ``batch_size``)."""
        return self.num_envs * self.rollout_steps // self.num_minibatches

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        _check_preset(self.preset)
        if self.action_mapping is not None and self.action_mapping not in ACTION_MAPPINGS:
            raise unknown_name("action mapping", self.action_mapping, ACTION_MAPPINGS)
        if self.reward not in REWARD_VARIANTS:
            raise unknown_name("reward variant", self.reward, REWARD_VARIANTS)
        if self.activation not in ACTIVATIONS:
            raise unknown_name("activation", self.activation, ACTIVATIONS)
        check_device_name(self.device)
        for name in ("total_steps", "num_envs", "rollout_steps", "num_minibatches", "num_epochs", "torch_threads"):
            _positive(name, getattr(self, name))
        for name in ("learning_rate", "clip_range", "max_grad_norm", "reward_scale"):
            _positive(name, getattr(self, name))
        if not self.hidden_sizes or min(self.hidden_sizes) <= 0:
            raise ConfigError(f"hidden_sizes must be non-empty positive widths, got {self.hidden_sizes}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ConfigError(f"need 0 < gamma <= 1 and 0 <= gae_lambda <= 1, got {self.gamma}, {self.gae_lambda}")
        for name in ("ent_coef", "vf_coef", "eval_every_steps", "eval_episodes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.sde_sample_freq == 0 or self.sde_sample_freq < -1:
            raise ConfigError(f"sde_sample_freq must be -1 or > 0, got {self.sde_sample_freq}")
        if (self.num_envs * self.rollout_steps) % self.num_minibatches:
            raise ConfigError(
                f"num_minibatches ({self.num_minibatches}) must divide num_envs * rollout_steps "
                f"({self.num_envs} * {self.rollout_steps} = {self.num_envs * self.rollout_steps})"
            )
        if self.stop_at_success_rate is not None and not 0 < self.stop_at_success_rate <= 1:
            raise ConfigError(f"stop_at_success_rate must be in (0, 1], got {self.stop_at_success_rate}")
        if self.stop_at_success_rate is not None and (self.eval_every_steps == 0 or self.eval_episodes == 0):
            raise ConfigError("stop_at_success_rate needs the monitor: set eval_every_steps > 0 and eval_episodes > 0")
        _positive("stop_at_step_ratio", self.stop_at_step_ratio)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """`vlnav-expert eval`: the PPO expert and the pursuit controller on the same seeded starts.

    Attributes:
        checkpoint: slim checkpoint file (``expert.pt``) or a ``train`` output directory holding one;
            None = the shipped ``text2nav`` checkpoint.
        preset: arena preset; None = the checkpoint's. A different preset than the checkpoint's is an
            error (the expert was not trained there).
        num_episodes: episodes per policy; episode ``i`` starts from ``sample_episode_start(config,
            episode_seed_i)`` with seeds from :func:`vlnav_data.expert.evaluate.episode_seeds`.
        seed: evaluation seed (selects the set of episode seeds).
        num_envs: arenas stepped in one batch.
        out_dir: where ``result.json`` goes (None: nothing written).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` for the arena.
    """

    checkpoint: Path | None = None
    preset: str | None = None
    num_episodes: int = 1000
    seed: int = 0
    num_envs: int = 64
    out_dir: Path | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.checkpoint is not None:
            object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.preset is not None:
            _check_preset(self.preset)
        check_device_name(self.device)
        _positive("num_episodes", self.num_episodes)
        _positive("num_envs", self.num_envs)
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
