"""`ArenaSB3VecEnv`: the batched arena as a stable-baselines3 ``VecEnv`` (one batched step, no per-env loop).

SB3 expects "same-step" autoreset: when env ``i`` finishes, ``step_wait`` returns the *next* episode's
first observation in row ``i`` and the finished episode's last observation in
``infos[i]["terminal_observation"]``; ``infos[i]["TimeLimit.truncated"]`` tells PPO to bootstrap the
value of that terminal observation (a time-limit cut is not a real end). The arena is built with
``autoreset_mode="same_step"``, whose ``info["final_obs"]`` holds exactly that last observation, so the
adapter only converts: arena ``privileged_state`` -> :func:`expert_features`, arena reward ->
:func:`expert_reward` (heading term added on the *final* state of finished rows), and builds SB3's list
of per-env info dicts (empty except for finished rows, which also get Monitor-style
``{"episode": {"r", "l", "t"}}`` so SB3 logs episode returns and lengths).
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from vlnav_data.expert.features import FEATURE_NAMES, expert_features
from vlnav_data.expert.reward import RewardVariant, expert_reward


class ArenaSB3VecEnv(VecEnv):
    """SB3 view of a state-only ``ArenaVecEnv``.

    Args:
        arena: ``make_arena(..., render=False, autoreset_mode="same_step")``.
        reward: reward variant (``fixed`` | ``published``).
        reward_scale: multiplies every reward given to the learner (episode returns in ``infos`` are
            unscaled).
        seed: seeds the arena's episode stream at the first ``reset()`` (SB3's ``seed()`` overrides it).
    """

    def __init__(self, arena: Any, *, reward: RewardVariant = "fixed", reward_scale: float = 1.0, seed: int = 0):
        if arena.metadata["autoreset_mode"] != gymnasium.vector.AutoresetMode.SAME_STEP:
            raise ValueError(f"ArenaSB3VecEnv needs a same_step arena, got {arena.metadata['autoreset_mode']}")
        self.arena = arena
        self.reward_variant = reward
        self.reward_scale = float(reward_scale)
        cfg = arena.config
        self.target_dz_m = cfg.sphere_height_m - cfg.robot_root_height_m
        n = arena.num_envs
        obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (len(FEATURE_NAMES),), np.float32)
        act_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        super().__init__(n, obs_space, act_space)
        self._first_seed: int | None = int(seed)
        self._actions: np.ndarray | None = None
        self._episode_return = np.zeros(n, dtype=np.float64)
        self._t0 = time.perf_counter()
        self.env_steps_total = 0  # arena step() calls x num_envs since construction

    def reset(self) -> np.ndarray:
        """Start fresh episodes in every arena; returns features ``(N, F)`` float32."""
        seed = self._seeds[0] if self._seeds[0] is not None else self._first_seed
        self._first_seed = None
        obs, _ = self.arena.reset(seed=seed)
        self._reset_seeds()
        self._episode_return[:] = 0.0
        return expert_features(obs["privileged_state"])

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """One arena step for all N envs.

        Returns:
            ``(features (N, F) float32, reward (N,) float32, done (N,) bool, infos: N dicts)``.
        """
        obs, arena_reward, terminated, truncated, info = self.arena.step(self._actions)
        self.env_steps_total += self.num_envs
        state = obs["privileged_state"]
        done = terminated | truncated
        final_state = state
        if done.any():
            final_state = state.copy()
            final_state[done] = info["final_obs"]["privileged_state"][done]
        reward = expert_reward(
            arena_reward,
            final_state,
            info["termination"],
            target_dz_m=self.target_dz_m,
            variant=self.reward_variant,
        )
        self._episode_return += reward
        features = expert_features(state)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if done.any():
            final_features = expert_features(final_state)
            elapsed = round(time.perf_counter() - self._t0, 6)
            for i in np.flatnonzero(done):
                infos[i] = {
                    "terminal_observation": final_features[i],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "termination": str(info["termination"][i]),
                    "episode": {"r": float(self._episode_return[i]), "l": int(info["env_steps"][i]), "t": elapsed},
                }
            self._episode_return[done] = 0.0
        return features, (reward * self.reward_scale).astype(np.float32), done, infos

    def close(self) -> None:
        self.arena.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """Per-env attributes: the arena is one object, so every env reports the arena's value."""
        value = None if attr_name == "render_mode" else getattr(self.arena, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise NotImplementedError("ArenaSB3VecEnv does not set per-env attributes; rebuild the arena instead")

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        raise NotImplementedError("ArenaSB3VecEnv has no per-env sub-environments to call methods on")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)
