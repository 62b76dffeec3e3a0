"""Privileged experts on the arena's ``privileged_state`` (never pixels).

- :func:`load_expert` (default: the shipped ``text2nav`` bang-bang PPO checkpoint) returns an
  :class:`ExpertPolicy`, callable as ``policy_fn(obs, info) -> actions (N, 2) float32``.
- :class:`PursuitController`: analytic turn-then-drive controller for both action mappings; the
  reference for path length and a fallback expert (``PursuitController.for_arena(config)``).
- :func:`train_expert` / :class:`TrainConfig` (`vlnav-expert train`): PPO from stable-baselines3 on
  the state-only arena; :func:`evaluate_expert` / :class:`EvalConfig` (`vlnav-expert eval`).
- :func:`expert_reward`: the published reward with its heading term fixed (``variant="published"``
  reproduces the original no-op term); :func:`expert_features`: the network's input.

stable-baselines3 is imported only inside :func:`train_expert` (and by ``sb3_vec_env``, which only
``train_expert`` imports).
"""

from vlnav_data.expert.checkpoint import SHIPPED_CHECKPOINT, ExpertPolicy, load_expert
from vlnav_data.expert.config import EvalConfig, TrainConfig
from vlnav_data.expert.evaluate import EvalResult, episode_seeds, evaluate_expert
from vlnav_data.expert.features import FEATURE_NAMES, expert_features
from vlnav_data.expert.pursuit import PursuitController
from vlnav_data.expert.reward import REWARD_VARIANTS, expert_reward
from vlnav_data.expert.train import TrainResult, train_expert

__all__ = [
    "FEATURE_NAMES",
    "REWARD_VARIANTS",
    "SHIPPED_CHECKPOINT",
    "EvalConfig",
    "EvalResult",
    "ExpertPolicy",
    "PursuitController",
    "TrainConfig",
    "TrainResult",
    "episode_seeds",
    "evaluate_expert",
    "expert_features",
    "expert_reward",
    "load_expert",
    "train_expert",
]
