"""An analytic pursuit controller on the privileged state: turn toward the target, then drive.

It is the reference for path length (the PPO expert is judged by its steps relative to this) and a
fallback expert. It reads the goal's robot-frame offset and distance from ``privileged_state``
(columns ``target_forward_m``, ``target_left_m``, ``target_distance_xy_m``).

``bang_bang`` mapping (each wheel at +-20 rad/s by the sign of its action, 0 stops it), so the useful
actions are ``{-1, 0, 1}^2``. With bearing error ``e`` (goal bearing in the robot frame, positive =
left), distance ``d`` and horizontal success radius ``R``:

- the straight line along the heading enters the success disc iff ``d * sin|e| < R`` (and the goal is
  ahead), so within the *aim cone* ``|e| <= asin(aim_margin * R / d)`` drive straight ``(1, 1)``;
- otherwise spin in place toward the goal (``(-1, 1)`` left, ``(1, -1)`` right, ``turn_per_step_rad``
  per step) while a full spin step does not carry the heading past the far edge of the cone;
- when a spin step would overshoot, arc with the inner wheel stopped (``(0, 1)`` / ``(1, 0)``: half the
  turn rate, and it moves forward);
- if even the arc would overshoot the cone and the heading already points into the success disc
  (no margin), drive straight; else arc.

Spinning costs no distance and moving costs no heading, so this is within a step or two of the
time-optimal path for bang-bang wheels.

``velocity`` mapping (wheel speed = 20 rad/s x action): proportional steering. ``turn = clip(gain * e /
turn_per_step_rad, -1, 1)`` (gain < 1 so the heading converges without oscillating),
``forward = 1`` inside the aim cone and ``1 - |turn|`` outside it, wheels ``(forward - turn, forward +
turn)`` clipped to [-1, 1].
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError, unknown_name
from vlnav_data.expert.features import check_privileged_state, host_state, state_column
from vlnav_data.sim import ACTION_MAPPINGS

SPIN_LEFT = (-1.0, 1.0)
SPIN_RIGHT = (1.0, -1.0)


def turn_per_step_rad(config: Any) -> float:
    """Heading change of one env step spinning in place at full wheel speed (0.356 rad on text2nav)."""
    return 2.0 * config.wheel_radius_m * config.max_wheel_speed_radps / config.wheel_base_m * config.dt_s


@dataclasses.dataclass(frozen=True, kw_only=True)
class PursuitController:
    """Turn-then-drive controller, callable as ``policy_fn(obs, info) -> actions``.

    Attributes:
        action_mapping: ``"bang_bang"`` or ``"velocity"``: the arena's action mapping.
        reach_radius_m: horizontal distance to the target centre below which the episode succeeds.
        turn_per_step_rad: heading change of one env step with the wheels at full speed in opposite
            directions (``2 * wheel_radius * max_wheel_speed / wheel_base * dt``).
        aim_margin: fraction of ``reach_radius_m`` the straight line must pass within (in (0, 1]).
        velocity_gain: proportional steering gain for the ``velocity`` mapping (in (0, 1]).
    """

    action_mapping: str
    reach_radius_m: float
    turn_per_step_rad: float
    aim_margin: float = 0.8
    velocity_gain: float = 0.8

    def __post_init__(self) -> None:
        if self.action_mapping not in ACTION_MAPPINGS:
            raise unknown_name("action mapping", self.action_mapping, ACTION_MAPPINGS)
        if not self.reach_radius_m > 0:
            raise ConfigError(f"reach_radius_m must be > 0, got {self.reach_radius_m}")
        if not 0 < self.turn_per_step_rad < math.pi:
            raise ConfigError(f"turn_per_step_rad must be in (0, pi), got {self.turn_per_step_rad}")
        if not 0 < self.aim_margin <= 1:
            raise ConfigError(f"aim_margin must be in (0, 1], got {self.aim_margin}")
        if not 0 < self.velocity_gain <= 1:
            raise ConfigError(f"velocity_gain must be in (0, 1], got {self.velocity_gain}")

    @classmethod
    def for_arena(cls, config: Any, action_mapping: str | None = None, **overrides: Any) -> PursuitController:
        """Build the controller for an ``ArenaConfig`` (geometry and timing taken from it).

        Args:
            config: a ``vlnav_data.sim.ArenaConfig``.
            action_mapping: overrides ``config.action_mapping`` when given.
            **overrides: other fields (``aim_margin``, ``velocity_gain``).
        """
        return cls(
            action_mapping=action_mapping or config.action_mapping,
            reach_radius_m=config.success_radius_xy_m,
            turn_per_step_rad=turn_per_step_rad(config),
            **overrides,
        )

    def actions(self, privileged_state: np.ndarray) -> np.ndarray:
        """Actions for a batch of states.

        Args:
            privileged_state: float ``(N, D)``, the simulator's ``obs["privileged_state"]``.

        Returns:
            float32 ``(N, 2)`` (left, right) in [-1, 1].
        """
        s = check_privileged_state(privileged_state).astype(np.float64)
        forward_m = s[:, state_column("target_forward_m")]
        left_m = s[:, state_column("target_left_m")]
        distance_m = s[:, state_column("target_distance_xy_m")]
        bearing = np.arctan2(left_m, forward_m)  # (-pi, pi], positive = goal on the left
        abs_e = np.abs(bearing)
        side = np.where(bearing >= 0, 1.0, -1.0)  # +1 turn left (counter-clockwise)
        ratio = np.clip(self.reach_radius_m / np.maximum(distance_m, 1e-9), 0.0, 1.0)
        cone = np.arcsin(self.aim_margin * ratio)
        hits_disc = abs_e <= np.arcsin(ratio)  # the heading line enters the success disc

        if self.action_mapping == "velocity":
            turn = np.clip(self.velocity_gain * bearing / self.turn_per_step_rad, -1.0, 1.0)
            forward = np.where(abs_e <= cone, 1.0, 1.0 - np.abs(turn))
            actions = np.stack([forward - turn, forward + turn], axis=1)
            return np.clip(actions, -1.0, 1.0).astype(np.float32)

        step = self.turn_per_step_rad
        straight = abs_e <= cone
        spin = ~straight & (abs_e - step >= -cone)
        arc_fits = ~straight & ~spin & (abs_e - 0.5 * step >= -cone)
        late_straight = ~straight & ~spin & ~arc_fits & hits_disc
        arc = ~straight & ~spin & ~late_straight

        left = np.zeros_like(bearing)
        right = np.zeros_like(bearing)
        go = straight | late_straight
        left[go], right[go] = 1.0, 1.0
        # Spin: left wheel -side, right wheel +side.
        left[spin], right[spin] = -side[spin], side[spin]
        # Arc: inner wheel stopped, outer wheel forward.
        arc_left_turn = arc & (side > 0)
        arc_right_turn = arc & (side < 0)
        left[arc_left_turn], right[arc_left_turn] = 0.0, 1.0
        left[arc_right_turn], right[arc_right_turn] = 1.0, 0.0
        return np.stack([left, right], axis=1).astype(np.float32)

    def __call__(self, obs: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> np.ndarray:
        """``policy_fn(obs, info) -> actions``: reads ``obs["privileged_state"]`` ``(N, D)``.

        Returns:
            float32 ``(N, 2)``.
        """
        return self.actions(host_state(obs["privileged_state"]))
