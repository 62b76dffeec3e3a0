"""Simulator backends register here; ``make_arena`` and ``render_views`` dispatch on ``ArenaConfig.backend``.

A backend is a name (one of ``sim.config.BACKENDS``) with two callables: the batched environment it builds
and the frames it renders for given poses. Each backend registers itself when its module is imported
(``sim/vector_env.py`` the built-in arena, ``sim/mujoco/__init__.py`` MuJoCo, ``sim/newton/__init__.py``
Newton); this module imports none of
them, so the core never depends on a backend. ``vlnav_data.sim`` imports every backend it ships.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import BACKENDS, ArenaConfig


@dataclass(frozen=True)
class Backend:
    """One simulator backend.

    Attributes:
        name: the ``ArenaConfig.backend`` value it serves.
        make_env: ``make_env(config, num_envs, device, *, render, autoreset_mode, compile_renderer, obs_backend)``
            -> the batched env (a backend without torch shaders ignores ``compile_renderer``).
        render_views: ``render_views(config, poses, *, sphere_positions_xy_m, sphere_color_indices, floor_rgb,
            light_position_m, device, compile_shaders)`` -> uint8 ``(N, H, W, 3)`` frames.
    """

    name: str
    make_env: Callable[..., Any]
    render_views: Callable[..., np.ndarray]


_REGISTERED: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Register ``backend`` under its name (a name of ``BACKENDS``; registering again replaces it)."""
    if backend.name not in BACKENDS:
        raise ValueError(f"backend name must be one of {BACKENDS}, got {backend.name!r}")
    _REGISTERED[backend.name] = backend


def get_backend(name: str) -> Backend:
    """The registered backend ``name``.

    Raises:
        ConfigError: no backend of that name was registered.
    """
    if name not in _REGISTERED:
        raise ConfigError(f"simulator backend {name!r} is not registered (registered: {sorted(_REGISTERED)})")
    return _REGISTERED[name]


def render_views(
    config: ArenaConfig,
    poses: object,
    *,
    device: str | Any = "cpu",
    compile_shaders: bool = False,
    sphere_positions_xy_m: object = None,
    sphere_color_indices: object = None,
    floor_rgb: object = None,
    light_position_m: object = None,
) -> np.ndarray:
    """Render first-person frames for given poses in the simulator ``config.backend`` names.

    Args:
        config: Arena config.
        poses: ``(N, 3)`` array-like ``[x_m, y_m, yaw_rad]``.
        device: Torch device to render on (the built-in renderer; MuJoCo renders with OpenGL).
        compile_shaders: Use the ``torch.compile``-d pixel shaders (the built-in renderer).
        sphere_positions_xy_m: Optional ``(K, 2)`` / ``(N, K, 2)`` layout (default: the config's).
        sphere_color_indices: Optional ``(K,)`` / ``(N, K)`` palette indices (needed with custom K).
        floor_rgb: Optional ``(3,)`` / ``(N, 3)`` floor colour.
        light_position_m: Optional ``(3,)`` / ``(N, 3)`` light position.

    Returns:
        uint8 numpy ``(N, H, W, 3)``.

    Raises:
        ConfigError: poses not ``(N, 3)`` or not finite; malformed scene arrays.
    """
    return get_backend(config.backend).render_views(
        config,
        poses,
        device=device,
        compile_shaders=compile_shaders,
        sphere_positions_xy_m=sphere_positions_xy_m,
        sphere_color_indices=sphere_color_indices,
        floor_rgb=floor_rgb,
        light_position_m=light_position_m,
    )
