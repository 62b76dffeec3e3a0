"""The MuJoCo backend of the arena (preset ``text2nav-mujoco``; the optional ``mujoco`` extra).

The published arena in MJCF (:func:`arena_mjcf`), stepped by MuJoCo contact physics and rendered by
``mujoco.Renderer`` offscreen, behind the same contract as the built-in arena
(:func:`vlnav_data.sim.check_arena`). ``make_arena("text2nav-mujoco", num_envs=N)`` builds it; MuJoCo is
imported only when such an arena (or a frame of it) is made. Headless rendering uses ``MUJOCO_GL=egl``
unless the environment sets another platform.
"""

from __future__ import annotations

from vlnav_data.sim.mujoco.env import MujocoArenaVecEnv
from vlnav_data.sim.mujoco.mjcf import arena_mjcf
from vlnav_data.sim.mujoco.render import render_views_mujoco
from vlnav_data.sim.mujoco.scene import MujocoScene, import_mujoco

__all__ = ["MujocoArenaVecEnv", "MujocoScene", "arena_mjcf", "import_mujoco", "render_views_mujoco"]
