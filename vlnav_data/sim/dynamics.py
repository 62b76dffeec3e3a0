"""Differential-drive kinematics of the JetBot (pure functions on torch tensors).

The published robot is driven through joint position targets that saturate the wheel velocity
limit (spec §1.5); we model the result directly as wheel speeds. Within one env step the wheel speeds
are constant, and each physics substep integrates the unicycle model exactly (constant-curvature
arc), so straight lines and turns in place have no discretisation error.
"""

from __future__ import annotations

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig


def validate_actions(actions: object, num_envs: int) -> torch.Tensor:
    """Check a batch of wheel actions and return it as a float64 CPU/any-device tensor.

    Args:
        actions: ``(num_envs, 2)`` array-like of floats (left, right), nominally in [-1, 1].
        num_envs: Expected batch size.

    Returns:
        float64 tensor ``(num_envs, 2)`` (not yet clipped).

    Raises:
        ConfigError: wrong shape, or a NaN / infinite entry (names the first bad env).
    """
    if isinstance(actions, torch.Tensor):
        tensor = actions.detach().to(torch.float64)
        _check_action_shape(tuple(tensor.shape), num_envs)
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):  # a device tensor is read once here (a host array costs nothing)
            bad = int((~finite.all(dim=1)).nonzero()[0, 0])
            raise _non_finite(tensor[bad].tolist(), bad)
        return tensor
    try:
        array = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"actions must be a numeric array of shape ({num_envs}, 2), got {actions!r}") from exc
    _check_action_shape(array.shape, num_envs)
    rows_ok = np.isfinite(array).all(axis=1)
    if not rows_ok.all():
        bad = int(np.flatnonzero(~rows_ok)[0])
        raise _non_finite(array[bad].tolist(), bad)
    return torch.from_numpy(array)


def _check_action_shape(shape: tuple[int, ...], num_envs: int) -> None:
    if tuple(shape) != (num_envs, 2):
        raise ConfigError(f"actions must have shape ({num_envs}, 2) (num_envs, [left, right]), got {tuple(shape)}")


def _non_finite(row: list[float], env: int) -> ConfigError:
    return ConfigError(
        f"actions must be finite numbers in [-1, 1], got {row} for env {env}; check the policy output for NaN/inf"
    )


def wheel_speeds_radps(config: ArenaConfig, actions: torch.Tensor) -> torch.Tensor:
    """Map actions in [-1, 1] to wheel angular speeds.

    ``bang_bang`` (published): ``ω = max·clip(gain·a, -1, 1)`` with gain 40000, i.e. ±max by the sign of
    ``a`` for ``|a| > 1/gain`` and exactly 0 for ``a = 0``. ``velocity``: ``ω = max·clip(a, -1, 1)``.

    Args:
        config: Arena config (mapping, limit, gain).
        actions: float tensor ``(N, 2)`` (left, right).

    Returns:
        Tensor ``(N, 2)`` of wheel speeds in rad/s, same dtype and device.
    """
    clipped = actions.clamp(-1.0, 1.0)
    if config.action_mapping == "bang_bang":
        return config.max_wheel_speed_radps * (config.bang_bang_gain * clipped).clamp(-1.0, 1.0)
    return config.max_wheel_speed_radps * clipped


def body_velocity(config: ArenaConfig, wheel_speeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward speed (m/s) and yaw rate (rad/s, counter-clockwise positive) from wheel speeds ``(N, 2)``."""
    r = config.wheel_radius_m
    left, right = wheel_speeds[:, 0], wheel_speeds[:, 1]
    linear = 0.5 * r * (left + right)
    angular = r * (right - left) / config.wheel_base_m
    return linear, angular


def integrate_pose(config: ArenaConfig, poses: torch.Tensor, wheel_speeds: torch.Tensor) -> torch.Tensor:
    """Advance poses by one env step (``physics_substeps`` exact arc integrations).

    Args:
        config: Arena config (``dt_s``, substeps, geometry).
        poses: ``(N, 3)`` float tensor ``[x_m, y_m, yaw_rad]``.
        wheel_speeds: ``(N, 2)`` wheel speeds in rad/s, held for the whole step.

    Returns:
        New ``(N, 3)`` poses; yaw wrapped to ``[-pi, pi)``.
    """
    linear, angular = body_velocity(config, wheel_speeds)
    h = config.dt_s / config.physics_substeps
    x, y, yaw = poses[:, 0], poses[:, 1], poses[:, 2]
    half = 0.5 * angular * h
    # Exact arc: displacement = v·h·sinc(ω h / 2) along the mid-step heading.
    chord = linear * h * torch.special.sinc(half / torch.pi)
    for _ in range(config.physics_substeps):
        mid = yaw + half
        x = x + chord * torch.cos(mid)
        y = y + chord * torch.sin(mid)
        yaw = yaw + 2.0 * half
    yaw = torch.remainder(yaw + torch.pi, 2.0 * torch.pi) - torch.pi
    return torch.stack([x, y, yaw], dim=1)
