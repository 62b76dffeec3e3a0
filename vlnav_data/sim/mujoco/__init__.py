"""The MuJoCo backend of the arena (preset ``text2nav-mujoco``; the optional ``mujoco`` extra).

The published arena in MJCF (:func:`arena_mjcf`), stepped by MuJoCo contact physics and rendered by
``mujoco.Renderer`` offscreen, behind the same contract as the built-in arena
(:func:`vlnav_data.sim.check_arena`). ``make_arena("text2nav-mujoco", num_envs=N)`` builds it; MuJoCo is
imported only when such an arena (or a frame of it) is made. Headless rendering uses ``MUJOCO_GL=egl``
unless the environment sets another platform.
"""

from __future__ import annotations

from typing import Any

from vlnav_data.sim.backends import Backend, register_backend
from vlnav_data.sim.mujoco.env import MujocoArenaVecEnv
from vlnav_data.sim.mujoco.mjcf import arena_mjcf
from vlnav_data.sim.mujoco.render import render_views_mujoco
from vlnav_data.sim.mujoco.scene import MujocoScene, import_mujoco


def _make_env(*args: Any, compile_renderer: bool = False, **kwargs: Any) -> MujocoArenaVecEnv:
    return MujocoArenaVecEnv(*args, **kwargs)  # OpenGL renders the frames: no torch shaders to compile


def _render_views(*args: Any, device: Any = "cpu", compile_shaders: bool = False, **kwargs: Any) -> Any:
    return render_views_mujoco(*args, **kwargs)  # OpenGL on the CPU: no torch device, no shaders to compile


register_backend(Backend("mujoco", make_env=_make_env, render_views=_render_views))

__all__ = ["MujocoArenaVecEnv", "MujocoScene", "arena_mjcf", "import_mujoco", "render_views_mujoco"]
