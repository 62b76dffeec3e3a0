"""The NVIDIA Newton backend of the arena (preset ``text2nav-newton``; the optional ``newton`` extra).

The MuJoCo backend's MJCF arena imported into Newton (``ModelBuilder.add_mjcf``), one Newton world per
environment, stepped by Newton's MuJoCo-Warp solver (``SolverMuJoCo``) on warp's CPU device and framed by
Newton's tiled camera sensor (warp ray tracing), behind the same contract as the other backends
(:func:`vlnav_data.sim.check_arena`; see :mod:`vlnav_data.sim.newton.scene` for the choices).
``make_arena("text2nav-newton", num_envs=N)`` builds it; Newton and warp are imported only when such an
arena (or a frame of it) is made, so this package imports without them. Warp compiles its kernels on
first use (about a minute on 2 cores) into its kernel cache (``WARP_CACHE_PATH``), reused afterwards.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from vlnav_data.sim.backends import Backend, register_backend
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.newton.env import NewtonArenaVecEnv
from vlnav_data.sim.newton.scene import NewtonScene, import_newton
from vlnav_data.sim.scene_env import render_scene_views


@functools.lru_cache(maxsize=2)
def _scene(config: ArenaConfig) -> NewtonScene:
    return NewtonScene(config, 1)


def render_views_newton(config: ArenaConfig, poses: object, **scene_arrays: object) -> np.ndarray:
    """Render Newton frames for given poses (same arguments and result as :func:`vlnav_data.sim.render_views`).

    Raises:
        ConfigError: poses not ``(N, 3)`` / not finite; malformed scene arrays; a floor colour or light
            position other than the config's (both fixed in the Newton scene); ``newton`` missing.
    """
    return render_scene_views(lambda: _scene(config), config, poses, engine="Newton", fixed_light=True, **scene_arrays)


def _make_env(*args: Any, compile_renderer: bool = False, **kwargs: Any) -> NewtonArenaVecEnv:
    return NewtonArenaVecEnv(*args, **kwargs)  # the sensor ray-traces the frames: no torch shaders to compile


def _render_views(*args: Any, device: Any = "cpu", compile_shaders: bool = False, **kwargs: Any) -> Any:
    return render_views_newton(*args, **kwargs)  # warp on the CPU: no torch device, no shaders to compile


register_backend(Backend("newton", make_env=_make_env, render_views=_render_views))

__all__ = ["NewtonArenaVecEnv", "NewtonScene", "import_newton", "render_views_newton"]
