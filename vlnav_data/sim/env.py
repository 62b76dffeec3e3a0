"""`ArenaEnv`: ONE arena as a plain ``gymnasium.Env`` -- what ``gymnasium.make("vlnav/Arena-v0")`` returns.

It is a one-slot :class:`~vlnav_data.sim.vector_env.ArenaVecEnv` (autoreset disabled) with the batch
axis removed, so the single and the batched environment share every line of physics, task and
rendering code. ``reset(seed=s)`` starts the episodes that sub-environment ``i`` of a vector env runs
after ``reset(seed=[..., s, ...])`` (``s`` at position ``i``); ``reset()`` without a seed continues that
stream. Observations are the vector env's per-env spaces: ``{"rgb": uint8 (H, W, 3),
"privileged_state": float32 (11,)}`` (``privileged_state`` is for experts and diagnostics; a student
policy must not read it). ``info`` holds the per-env fields of the vector env as scalars
(``instruction``, ``target_color``, ``termination``, ``env_steps``, ...). After ``terminated`` or
``truncated`` call ``reset()``; stepping a finished episode raises
:class:`~vlnav_data.errors.ConfigError`.

Both ``gymnasium.utils.env_checker.check_env`` and stable-baselines3's ``check_env`` pass
(``tests/sim/test_sim_gymnasium.py``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.sim.make import make_arena


class ArenaEnv(gymnasium.Env):
    """One arena (see the module docstring).

    Args:
        preset: preset name (``text2nav``, ``text2nav-velocity``, ``text2nav-random``) or an ``ArenaConfig``.
        render_mode: ``None`` or ``rgb_array`` (``render()`` returns the current camera frame).
        device: torch device of the simulator (``cpu``, ``cuda``, ``auto``).
        render: render ``obs["rgb"]``; ``False`` gives the state-only observation ``{"privileged_state"}``.
        **overrides: ``ArenaConfig`` fields to replace (e.g. ``image_height_px=64, image_width_px=64``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        preset: Any = "text2nav",
        render_mode: str | None = None,
        device: str = "cpu",
        render: bool = True,
        **overrides: Any,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if render_mode == "rgb_array" and not render:
            raise ConfigError("render_mode='rgb_array' needs render=True (the camera frame is what it returns)")
        self._vec = make_arena(preset, num_envs=1, device=device, render=render, autoreset_mode="disabled", **overrides)
        self.config = self._vec.config
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.config.dt_s))}
        self._last_obs: dict[str, np.ndarray] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode.

        Args:
            seed: seeds this environment's stream of episode seeds (``None``: continue the stream).
            options: ``{"episode_seed": int}`` starts exactly that episode (``sample_episode_start``).

        Returns:
            ``(obs, info)``.

        Raises:
            ConfigError: a seed outside [0, 2**63) or unknown options.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        episode_seed = options.pop("episode_seed", None)
        if options:
            raise ConfigError(f"unknown reset option(s) {sorted(options)}; ArenaEnv accepts episode_seed")
        vec_options = None if episode_seed is None else {"episode_seeds": [episode_seed]}
        obs, info = self._vec.reset(seed=None if seed is None else [seed], options=vec_options)
        return self._single(obs), _single_info(info)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Advance one control step with ``action`` = (left, right) in [-1, 1].

        Returns:
            ``(obs, reward, terminated, truncated, info)``.

        Raises:
            ConfigError: a malformed action, or a step after the episode ended (call ``reset()``).
        """
        batch = np.asarray(action, dtype=np.float32).reshape(1, -1)
        obs, reward, terminated, truncated, info = self._vec.step(batch)
        return self._single(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _single_info(info)

    def render(self) -> np.ndarray | None:
        """The current camera frame, uint8 ``(H, W, 3)``, with ``render_mode="rgb_array"``; else ``None``."""
        if self.render_mode != "rgb_array" or self._last_obs is None:
            return None
        return self._last_obs["rgb"].copy()

    def _single(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._last_obs = {key: value[0] for key, value in obs.items()}
        return {key: value.copy() for key, value in self._last_obs.items()}


def _single_info(info: dict[str, Any]) -> dict[str, Any]:
    """The vector env's info with the batch axis removed (numpy scalars become Python ones)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        item = value[0]
        out[key] = item.item() if isinstance(item, np.generic) else item
    return out


__all__ = ["ArenaEnv"]
