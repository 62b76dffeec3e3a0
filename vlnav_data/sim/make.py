"""``make_arena``: the one way to build a batched arena from a preset name or config.

It applies keyword overrides of :class:`~vlnav_data.sim.config.ArenaConfig` fields, resolves the device
(``vlnav_data.devices``, the one device rule) and builds the simulator the config names through the backend
registered under ``config.backend`` (``sim/backends.py``): :class:`~vlnav_data.sim.vector_env.ArenaVecEnv`
(``builtin``), ``vlnav_data.sim.mujoco.MujocoArenaVecEnv`` (``mujoco``) or
``vlnav_data.sim.newton.NewtonArenaVecEnv`` (``newton``). It is also the Gymnasium vector
entry point of ``vlnav/Arena-v0`` (``sim/__init__.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from vlnav_data.devices import DEVICE_HELP, resolve_device
from vlnav_data.errors import ConfigError, unknown_name
from vlnav_data.sim.backends import get_backend
from vlnav_data.sim.config import ArenaConfig, get_preset
from vlnav_data.sim.vector_env import ArenaVecEnv


def make_arena(
    preset: str | ArenaConfig = "text2nav",
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    render: bool = True,
    autoreset_mode: str = "same_step",
    compile_renderer: bool = False,
    obs_backend: str = "numpy",
    **overrides: Any,
) -> ArenaVecEnv:
    """Build a batched arena in the simulator its config names (``ArenaConfig.backend``).

    ``builtin`` gives an :class:`ArenaVecEnv`; ``mujoco`` (``text2nav-mujoco``) a
    ``vlnav_data.sim.mujoco.MujocoArenaVecEnv`` and ``newton`` (``text2nav-newton``) a
    ``vlnav_data.sim.newton.NewtonArenaVecEnv`` (both CPU only; ``compile_renderer`` does not apply; with
    ``obs_backend="torch"`` their host frames are wrapped as CPU tensors without a copy).

    Args:
        preset: Preset name (``PRESET_NAMES``) or an :class:`ArenaConfig`.
        num_envs: Number of arenas N.
        device: ``cpu``, ``cuda``, ``cuda:1``, ... or ``auto``.
        render: Render ``obs["rgb"]``; ``False`` is the fast state-only mode.
        autoreset_mode: ``same_step`` (default), ``next_step`` or ``disabled``.
        compile_renderer: Fuse the per-pixel shaders with ``torch.compile`` (about 1.3x the eager
            frames/s on the 2-core CPU; first use compiles for up to a minute; see ``render.render_batch``).
        obs_backend: ``numpy`` (default) or ``torch``: observations as tensors on ``device`` (module docstring).
        **overrides: :class:`ArenaConfig` fields to replace (e.g. ``action_mapping="velocity"``).

    Raises:
        ConfigError: unknown preset / field / device, invalid values.
    """
    config = get_preset(preset) if isinstance(preset, str) else preset
    if not isinstance(config, ArenaConfig):
        raise ConfigError(f"preset must be a preset name or an ArenaConfig, got {preset!r}")
    if overrides:
        fields = {f.name for f in dataclasses.fields(ArenaConfig)}
        for key in overrides:
            if key not in fields:
                raise unknown_name("ArenaConfig field", key, fields)
        config = dataclasses.replace(config, **overrides)
    if isinstance(device, str):
        device = resolve_device(device)  # auto|cpu|cuda|cuda:N, the one device rule
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be one of {DEVICE_HELP}, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was requested but CUDA is not available here; use device='cpu'")
    return get_backend(config.backend).make_env(
        config,
        num_envs,
        dev,
        render=render,
        autoreset_mode=autoreset_mode,
        compile_renderer=compile_renderer,
        obs_backend=obs_backend,
    )
