"""What the physics backends share: an :class:`ArenaVecEnv` whose robots live in a backend *scene*, and
``render_views`` of such a scene.

The MuJoCo backend (``sim/mujoco``) and the Newton backend (``sim/newton``) simulate the same MJCF arena
(``sim/mujoco/mjcf.py``) in different engines. Everything the contract describes (observations, ``info``,
termination causes, counters, autoreset, seeding, ``set_state``) is :class:`ArenaVecEnv`'s code; a physics
backend supplies a scene object with four batched methods and this class turns them into the env's three
backend hooks:

* ``scene.advance(ids, wheel_speeds_radps) -> poses``: hold the wheel speeds ``(M, 2)`` (rad/s) for one
  control step of the envs ``ids`` and return their new root poses ``(M, 3)`` ``[x_m, y_m, yaw_rad]``
  (float64); the other envs do not move;
* ``scene.place_many(ids, poses, sphere_xy, sphere_rgb, light) -> poses``: put the robots ``ids`` at rest at
  ``poses`` in scenes with those sphere centres ``(M, K, 2)``, sphere colours ``(M, K, 3)`` and light
  positions ``(M, 3)``; return the poses the engine holds (they go through a quaternion);
* ``scene.render(ids) -> frames``: uint8 ``(M, H, W, 3)`` first-person frames.

Both engines run on the CPU here: ``device`` must be ``cpu`` and ``compile_renderer`` (torch shaders) does
not apply. With ``obs_backend="torch"`` the host frames are wrapped as CPU tensors without a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.vector_env import ArenaVecEnv


class SceneArenaVecEnv(ArenaVecEnv):
    """N arenas simulated and rendered by a backend scene (module docstring).

    Subclasses set ``engine`` (its name in messages) and ``scene_type`` (``scene_type(config, num_envs)``).

    Raises:
        ConfigError: a non-CPU device, ``compile_renderer`` given, or what the scene refuses.
    """

    engine = "physics"
    scene_type: Any = None

    def __init__(self, config: ArenaConfig, num_envs: int, device: str | torch.device = "cpu", **options: Any) -> None:
        """``options``: :class:`ArenaVecEnv`'s ``render``, ``autoreset_mode`` and ``obs_backend``."""
        if torch.device(device).type != "cpu":
            raise ConfigError(f"the {self.engine} backend simulates on the CPU; use device='cpu', got {str(device)!r}")
        if "compile_renderer" in options:
            raise ConfigError(f"the {self.engine} backend renders its own frames: compile_renderer does not apply")
        super().__init__(config, num_envs, "cpu", **options)
        self.scene = self.scene_type(config, self.num_envs)

    def _advance_physics(self, wheel: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        poses = self._poses.clone()
        ids = np.flatnonzero(moving.cpu().numpy())
        if len(ids):
            wheel_np = wheel.cpu().numpy().astype(np.float64)[ids]
            poses[torch.as_tensor(ids)] = torch.as_tensor(self.scene.advance(ids, wheel_np), dtype=poses.dtype)
        return poses

    def _placed(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(ids):
            return
        rows = torch.as_tensor(ids)
        held = self.scene.place_many(
            ids,
            self._poses[rows].cpu().numpy(),
            self._sphere_xy[rows].cpu().numpy(),
            self._palette_rgb[self._sphere_color[rows]].cpu().numpy(),
            self._light[rows].cpu().numpy(),
        )
        # The pose the engine holds (float64 through a quaternion): what every later observation reports.
        self._poses[rows] = torch.as_tensor(held, dtype=self._poses.dtype)

    def _render_frames(self, rows: torch.Tensor | None) -> np.ndarray:
        ids = np.arange(self.num_envs) if rows is None else rows.cpu().numpy()
        return self.scene.render(ids)


def render_scene_views(
    scene: Callable[[], Any],
    config: ArenaConfig,
    poses: object,
    *,
    engine: str,
    fixed_light: bool = False,
    **scene_arrays: object,
) -> np.ndarray:
    """Frames of given poses in a one-environment ``scene`` (what ``render_views`` returns for its backend).

    ``scene_arrays`` are :func:`~vlnav_data.sim.render.scene.scene_from_arrays`'s (``sphere_positions_xy_m``,
    ``sphere_color_indices``, ``floor_rgb``, ``light_position_m``), as for the built-in renderer.

    Args:
        scene: Returns the backend scene (module docstring) built for ``config`` with one environment;
            called once the arguments are checked.
        config: Arena config.
        poses: ``(N, 3)`` array-like ``[x_m, y_m, yaw_rad]``.
        engine: The backend's name in messages.
        fixed_light: The backend's light is fixed by the config (a light position other than the
            config's is refused).

    Raises:
        ConfigError: poses not ``(N, 3)`` / not finite; malformed scene arrays; a floor colour other than
            the config's (both engines fix it when the scene is built); another light position where
            ``fixed_light``; another number of spheres than the config's.
    """
    from vlnav_data.sim.render.scene import scene_from_arrays

    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ConfigError(f"poses must have shape (N, 3) = [x_m, y_m, yaw_rad], got {tuple(p.shape)}")
    if not np.isfinite(p).all():
        raise ConfigError("poses must be finite numbers, got NaN or inf")
    arrays = scene_from_arrays(config, len(p), "cpu", **scene_arrays)
    fixed = {"floor_rgb": (arrays.floor_rgb, config.floor_rgb)}
    if fixed_light:
        fixed["light_position_m"] = (arrays.light_position, config.light_position_m)
    for name, (given, own) in fixed.items():
        values = given.numpy()
        if not np.allclose(values, np.asarray(own, dtype=np.float32), atol=1e-6):
            raise ConfigError(
                f"the {engine} arena's {name} is {tuple(own)} (fixed when its scene is built); got {values[0].tolist()}"
            )
    if arrays.sphere_xy.shape[1] != config.num_spheres:
        raise ConfigError(
            f"the {engine} arena of '{config.name}' has {config.num_spheres} spheres, got "
            f"{arrays.sphere_xy.shape[1]} sphere positions"
        )
    xy = arrays.sphere_xy.numpy().astype(np.float64)
    rgb = arrays.sphere_rgb.numpy().astype(np.float64)
    light = arrays.light_position.numpy().astype(np.float64)
    out = np.empty((len(p), config.image_height_px, config.image_width_px, 3), dtype=np.uint8)
    one, scene = np.array([0]), scene()
    for i in range(len(p)):
        scene.place_many(one, p[i : i + 1], xy[i : i + 1], rgb[i : i + 1], light[i : i + 1])
        out[i] = scene.render(one)[0]
    return out
