"""The batched arena simulator (pure PyTorch; same code on CPU and CUDA).

Public API (ARCHITECTURE.md, "vlnav_data.sim")::

    from vlnav_data.sim import ArenaConfig, get_preset, PRESET_NAMES, make_arena, render_views, rollout, Episode
    from vlnav_data.sim import PRIVILEGED_STATE_NAMES, TERMINATION_CAUSES, sample_episode_start
    from vlnav_data.sim import check_arena  # the simulator contract (vlnav_data.sim.contract)

Importing this package registers the Gymnasium id ``vlnav/Arena-v0``: ``gymnasium.make("vlnav/Arena-v0")``
gives ONE arena (:class:`~vlnav_data.sim.env.ArenaEnv`), and
``gymnasium.make_vec("vlnav/Arena-v0", num_envs=8, vectorization_mode="vector_entry_point", preset="text2nav")``
the batched one (:class:`ArenaVecEnv`). Keyword arguments are :func:`make_arena`'s (``preset``,
``device``, ``render``, ArenaConfig fields such as ``image_height_px``).
"""

from __future__ import annotations

import gymnasium

# Registering the backends imports none of MuJoCo, Newton or Isaac Lab: each is imported when its arena is made.
from vlnav_data.sim import isaaclab, mujoco, newton  # noqa: F401
from vlnav_data.sim.backends import render_views
from vlnav_data.sim.config import (
    ACTION_MAPPINGS,
    BACKENDS,
    COLOR_PALETTE,
    INSTRUCTION_STYLES,
    PRESET_NAMES,
    ArenaConfig,
    arena_config_from_json,
    arena_in_preset,
    get_preset,
    task_preset,
)
from vlnav_data.sim.contract import ArenaReport, ContractViolation, check_arena
from vlnav_data.sim.dynamics import integrate_pose, wheel_speeds_radps
from vlnav_data.sim.env import ArenaEnv
from vlnav_data.sim.env_factory import check_env_factory, load_env_factory
from vlnav_data.sim.make import make_arena
from vlnav_data.sim.rollout import Episode, rollout
from vlnav_data.sim.task import (
    PRIVILEGED_STATE_NAMES,
    TERMINATION_CAUSES,
    EpisodeStart,
    instruction_texts,
    sample_episode_start,
)
from vlnav_data.sim.vector_env import AUTORESET_MODES, ArenaVecEnv

ENV_ID = "vlnav/Arena-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="vlnav_data.sim.env:ArenaEnv",
        vector_entry_point="vlnav_data.sim.make:make_arena",
    )

__all__ = [
    "ACTION_MAPPINGS",
    "AUTORESET_MODES",
    "BACKENDS",
    "COLOR_PALETTE",
    "ENV_ID",
    "INSTRUCTION_STYLES",
    "PRESET_NAMES",
    "PRIVILEGED_STATE_NAMES",
    "TERMINATION_CAUSES",
    "ArenaConfig",
    "ArenaReport",
    "arena_config_from_json",
    "arena_in_preset",
    "ArenaEnv",
    "ArenaVecEnv",
    "ContractViolation",
    "Episode",
    "EpisodeStart",
    "check_arena",
    "check_env_factory",
    "get_preset",
    "instruction_texts",
    "integrate_pose",
    "load_env_factory",
    "make_arena",
    "render_views",
    "rollout",
    "sample_episode_start",
    "task_preset",
    "wheel_speeds_radps",
]
