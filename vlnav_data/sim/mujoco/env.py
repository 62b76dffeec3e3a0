"""`MujocoArenaVecEnv`: the arena's vector environment with MuJoCo physics and rendering.

Everything the contract describes (observations, ``info``, termination causes and their order, the
env-step counter, autoreset modes, seeding, ``set_state``) is the built-in :class:`ArenaVecEnv`'s code;
this class replaces its three backend hooks:

* ``_advance_physics``: the wheel speeds of the action mapping (rad/s) become the velocity-servo
  commands of the two wheel joints, held for ``physics_substeps`` MuJoCo steps; the new pose is read from
  the free joint (root position and the heading of the body x axis). Wheels slip, the chassis pitches
  when it starts, nothing is integrated kinematically.
* ``_placed``: a new episode or ``set_state`` puts the robot at rest at its pose, wheels on the floor.
* ``_render_frames``: ``mujoco.Renderer`` offscreen, one environment after the other in this process (a
  pool of worker processes was measured and was not faster on 2 cores: Mesa's llvmpipe already
  rasterises on every core; ``bench/RESULTS.md``).

The simulator runs on the CPU: ``device`` must be ``cpu`` (the task tensors stay there too). Both
observation backends work: with ``obs_backend="torch"`` the frames MuJoCo rendered into host memory are
wrapped as CPU tensors (no copy), so a torch consumer on the CPU reads the same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.mujoco.scene import MujocoScene
from vlnav_data.sim.vector_env import ArenaVecEnv


class MujocoArenaVecEnv(ArenaVecEnv):
    """N arenas simulated and rendered by MuJoCo (build with ``make_arena("text2nav-mujoco", ...)``).

    Same observation/action spaces, ``info`` and methods as :class:`ArenaVecEnv`.

    Raises:
        ConfigError: a non-CPU device, the ``mujoco`` package missing, or a config the backend does not model.
    """

    def __init__(self, config: ArenaConfig, num_envs: int, device: str | torch.device = "cpu", **options: Any) -> None:
        """``options``: :class:`ArenaVecEnv`'s ``render``, ``autoreset_mode`` and ``obs_backend``; OpenGL renders
        the frames, so there are no torch shaders to compile (``compile_renderer`` is refused)."""
        if torch.device(device).type != "cpu":
            raise ConfigError(f"the MuJoCo backend simulates on the CPU; use device='cpu', got {str(device)!r}")
        if "compile_renderer" in options:
            raise ConfigError("the MuJoCo backend renders with OpenGL: compile_renderer does not apply")
        super().__init__(config, num_envs, "cpu", **options)
        self.scene = MujocoScene(config, self.num_envs)

    def _advance_physics(self, wheel: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        poses = self._poses.clone()
        wheel_np = wheel.cpu().numpy().astype(np.float64)
        for i in np.flatnonzero(moving.cpu().numpy()).tolist():
            self.scene.step(i, wheel_np[i])
            poses[i] = torch.as_tensor(self.scene.pose(i), dtype=poses.dtype)
        return poses

    def _placed(self, ids: np.ndarray) -> None:
        poses = self._poses.cpu().numpy()
        spheres = self._sphere_xy.cpu().numpy()
        rgb = self._palette_rgb[self._sphere_color].cpu().numpy()
        light = self._light.cpu().numpy()
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            self.scene.place(i, poses[i], spheres[i], rgb[i], light[i])
            # The pose MuJoCo holds (float64 through a quaternion): what every later observation reports.
            self._poses[i] = torch.as_tensor(self.scene.pose(i), dtype=self._poses.dtype)

    def _render_frames(self, rows: torch.Tensor | None) -> np.ndarray:
        ids = np.arange(self.num_envs) if rows is None else rows.cpu().numpy()
        return self.scene.render(ids)
