"""`IsaacLabArenaVecEnv`: the arena's vector environment simulated and rendered by Isaac Lab 3 (kit-less).

Everything the contract describes (observations, ``info``, termination causes and their order, the
env-step counter, autoreset modes, seeding, ``set_state``) is the built-in :class:`ArenaVecEnv`'s code, as
for MuJoCo; this class replaces its three backend hooks with an :class:`~vlnav_data.sim.isaaclab.scene.IsaacLabScene`:

* ``_advance_physics``: the wheel speeds of the action mapping (rad/s) become the velocity targets of the
  wheel joints for one ``sim.step`` of the whole batch; the new poses are the root links' (position and
  the heading of the chassis x axis). Robots that must not move this step (a ``next_step`` reset step) are
  put back at their pose afterwards, so the batch always steps together.
* ``_placed``: a new episode or ``set_state`` writes the root pose, zero velocities and zero wheel joints.
* ``_render_frames``: the Newton Warp renderer's tiled camera renders every robot's frame at once.

Isaac Lab runs one simulation per process: making another Isaac Lab arena ends this one (using it then
raises :class:`ConfigError`); ``close()`` ends it explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.isaaclab.scene import IsaacLabScene
from vlnav_data.sim.vector_env import ArenaVecEnv


class IsaacLabArenaVecEnv(ArenaVecEnv):
    """N arenas in Isaac Lab (build with ``make_arena("text2nav-isaaclab", ...)``, inside the environment
    ``bash scripts/isaaclab-venv.sh DIR`` makes).

    Same observation/action spaces, ``info`` and methods as :class:`ArenaVecEnv`.

    Raises:
        ConfigError: Python < 3.12 or Isaac Lab missing, ``compile_renderer``, or a config the backend does not
            model (per-episode scene randomisation).
    """

    def __init__(self, config: ArenaConfig, num_envs: int, device: str | torch.device = "cpu", **options: Any) -> None:
        """``options``: :class:`ArenaVecEnv`'s ``render``, ``autoreset_mode`` and ``obs_backend``; the Warp ray
        tracer renders the frames, so there are no torch shaders to compile (``compile_renderer`` is refused)."""
        if options.pop("compile_renderer", False):
            raise ConfigError(
                "the Isaac Lab backend renders with Newton's Warp ray tracer: compile_renderer does not apply"
            )
        super().__init__(config, num_envs, device, **options)
        self.scene = IsaacLabScene(config, self.num_envs, self.device, self.render_enabled)

    def _advance_physics(self, wheel: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        self.scene.step(wheel)
        still = np.flatnonzero(~moving.cpu().numpy())
        if len(still):
            self.scene.place(still, self._poses[still].cpu().numpy())
        poses = self.scene.poses().to(self._poses.device)
        return torch.where(moving[:, None], poses, self._poses)

    def _placed(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self.scene.place(ids, self._poses[torch.as_tensor(ids, device=self.device)].cpu().numpy())
        # The pose Isaac Lab holds (float32 positions, a quaternion): what every later observation reports.
        self._poses[ids] = self.scene.poses()[ids].to(self._poses.device)

    def _render_frames(self, rows: torch.Tensor | None) -> torch.Tensor:
        frames = self.scene.render().to(self.device)
        return frames if rows is None else frames[rows]

    def close(self, **kwargs: Any) -> None:
        """End the Isaac Lab simulation of this env."""
        self.scene.close()
        super().close(**kwargs)
