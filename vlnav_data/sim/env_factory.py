"""Env factories: ``MODULE:CALLABLE`` loaded by name, and the contract check a build or an evaluation runs on
a factory's env before any model loads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.contract import check_arena


def check_env_factory(
    env_factory: Callable[[int], Any], *, need_frames: bool, what: str = "env_factory"
) -> ArenaConfig:
    """Build a one-environment instance with ``env_factory(1)``, check it, and return its arena config.

    This is what ``build_dataset`` and ``evaluate_policy`` run before any model loads when they are given a
    factory instead of a preset name.

    Args:
        env_factory: ``env_factory(num_envs) -> env``.
        need_frames: the caller reads ``obs["rgb"]``; the env must render.
        what: how the factory is named in error messages.

    Returns:
        ``env.config`` of the checked instance (the arena, task and camera it simulates).

    Raises:
        ConfigError: the factory fails, the env breaks the contract (every violation named), or it has no
            frames where they are needed.
    """
    if not callable(env_factory):
        raise ConfigError(f"{what} must be a callable num_envs -> env, got {type(env_factory).__name__}")
    try:
        env = env_factory(1)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{what}(1) raised {type(exc).__name__}: {exc}") from exc
    try:
        if need_frames and getattr(env, "render_enabled", False) is not True:
            raise ConfigError(f"{what} must return an env that renders frames (render_enabled=True): they are recorded")
        check_arena(env).raise_if_violated(f"the env of {what}")
        return env.config
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()


def load_env_factory(path: str) -> Callable[[int], Any]:
    """Import an env factory named ``"package.module:callable"`` (``callable(num_envs) -> env``).

    Raises:
        ConfigError: not ``module:name``, the module cannot be imported, or the name is missing / not callable.
    """
    import importlib

    module_name, sep, attr = str(path).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"an env factory is given as MODULE:CALLABLE (e.g. my_sim.envs:make_env), got '{path}'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module '{module_name}' of env factory '{path}': {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"module '{module_name}' has no callable '{attr}' (env factory '{path}')")
    return factory
