"""`render_views` for the MuJoCo backend: first-person frames of given poses, the robot at rest on the floor."""

from __future__ import annotations

import functools

import numpy as np

from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.mujoco.scene import MujocoScene
from vlnav_data.sim.scene_env import render_scene_views


@functools.lru_cache(maxsize=4)
def _scene(config: ArenaConfig) -> MujocoScene:
    return MujocoScene(config, 1)


def render_views_mujoco(config: ArenaConfig, poses: object, **scene_arrays: object) -> np.ndarray:
    """Render MuJoCo frames for given poses (same arguments and result as :func:`vlnav_data.sim.render_views`).

    ``scene_arrays`` are :func:`~vlnav_data.sim.render.scene.scene_from_arrays`'s, as for the built-in renderer.

    Raises:
        ConfigError: poses not ``(N, 3)`` / not finite; malformed scene arrays; a floor colour other than
            the config's (the MuJoCo floor texture is fixed).
    """
    return render_scene_views(lambda: _scene(config), config, poses, engine="MuJoCo", **scene_arrays)
