"""Failure classes and behaviour flags of one trajectory (pure numpy; used by ``diagnose``).

Definitions (the thresholds are the fields of :class:`BehaviourThresholds`):

- **failure class**: ``success``; ``wrong_target`` when the robot came within the success radius of a
  sphere other than its target (the simulator does not stop there, so the episode then ends by another
  cause, usually ``out_of_bounds_front``); otherwise the simulator's cause
  (``out_of_bounds_front|back|left|right``, ``time_limit``).
- **circling**: some stretch of the episode turns the heading through a full turn (net accumulated
  yaw ``>= circling_turn_rad``, 2π) while the distance to the target shrinks by less than
  ``circling_min_progress_m``. A robot spinning on the spot qualifies; a robot that turns 2π along a
  spiral that brings it closer does not.
- **back-and-forth**: frequent reversals of the turning direction: ignoring steps whose yaw change is
  below ``turn_deadband_rad`` (driving straight), at least ``reversal_min_count`` sign changes of the
  yaw rate within some window of ``reversal_window_steps`` env steps (30 = one second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vlnav_data.errors import ConfigError

FAILURE_CLASSES = (
    "success",
    "wrong_target",
    "out_of_bounds_front",
    "out_of_bounds_back",
    "out_of_bounds_left",
    "out_of_bounds_right",
    "time_limit",
)
BEHAVIOURS = ("circling", "back_and_forth")


@dataclass(frozen=True, kw_only=True)
class BehaviourThresholds:
    """Thresholds of the behaviour flags.

    Attributes:
        circling_turn_rad: net accumulated heading change that counts as a full turn.
        circling_min_progress_m: distance to the target that must be gained over that turn for it not to
            count as circling.
        turn_deadband_rad: per-step yaw change below which the robot counts as not turning.
        reversal_window_steps: window (env steps) in which reversals are counted.
        reversal_min_count: reversals within one window that flag back-and-forth.
    """

    circling_turn_rad: float = 2.0 * math.pi
    circling_min_progress_m: float = 0.05
    turn_deadband_rad: float = 0.01
    reversal_window_steps: int = 30
    reversal_min_count: int = 6

    def __post_init__(self) -> None:
        if self.circling_turn_rad <= 0 or self.turn_deadband_rad < 0 or self.circling_min_progress_m < 0:
            raise ConfigError(
                "circling_turn_rad must be > 0 and turn_deadband_rad, circling_min_progress_m >= 0; got "
                f"{self.circling_turn_rad}, {self.turn_deadband_rad}, {self.circling_min_progress_m}"
            )
        if self.reversal_window_steps < 2 or self.reversal_min_count < 1:
            raise ConfigError(
                f"reversal_window_steps must be >= 2 and reversal_min_count >= 1; got "
                f"{self.reversal_window_steps}, {self.reversal_min_count}"
            )


def is_circling(yaw_rad: np.ndarray, distance_m: np.ndarray, thresholds: BehaviourThresholds) -> bool:
    """Whether some stretch turns a full circle without getting closer to the target.

    Args:
        yaw_rad: float (T,) heading per step (wrapped or not).
        distance_m: float (T,) horizontal distance to the target per step.
        thresholds: the circling thresholds.
    """
    yaw = np.unwrap(np.asarray(yaw_rad, dtype=np.float64))
    dist = np.asarray(distance_m, dtype=np.float64)
    for i in range(len(yaw)):
        turned = np.abs(yaw[i:] - yaw[i]) >= thresholds.circling_turn_rad - 1e-9
        if not turned.any():
            continue
        j = i + int(np.argmax(turned))
        if dist[i] - dist[j] < thresholds.circling_min_progress_m:
            return True
    return False


def turn_reversal_steps(yaw_rad: np.ndarray, thresholds: BehaviourThresholds) -> np.ndarray:
    """Step indices at which the turning direction reverses.

    Args:
        yaw_rad: float (T,) heading per step.
        thresholds: uses ``turn_deadband_rad``.

    Returns:
        int64 (R,) indices ``t`` (of the yaw change ``yaw[t+1] - yaw[t]``) that turn the other way from
        the previous turning step.
    """
    yaw = np.unwrap(np.asarray(yaw_rad, dtype=np.float64))
    rate = np.diff(yaw)
    turning = np.flatnonzero(np.abs(rate) >= thresholds.turn_deadband_rad)
    if len(turning) < 2:
        return np.zeros(0, dtype=np.int64)
    signs = np.sign(rate[turning])
    flips = np.flatnonzero(signs[1:] != signs[:-1]) + 1
    return turning[flips].astype(np.int64)


def is_back_and_forth(yaw_rad: np.ndarray, thresholds: BehaviourThresholds) -> bool:
    """Whether the turning direction reverses often: ``reversal_min_count`` times within one window."""
    reversals = turn_reversal_steps(yaw_rad, thresholds)
    if len(reversals) < thresholds.reversal_min_count:
        return False
    k = thresholds.reversal_min_count
    spans = reversals[k - 1 :] - reversals[: len(reversals) - k + 1]
    return bool((spans < thresholds.reversal_window_steps).any())


def reached_wrong_sphere(
    xy_m: np.ndarray, sphere_xy_m: np.ndarray, target_index: int, success_radius_xy_m: float
) -> bool:
    """Whether the trajectory entered the success disc of a sphere that was not the target.

    Args:
        xy_m: float (T, 2) positions.
        sphere_xy_m: float (K, 2) sphere centres.
        target_index: index of the target sphere in ``sphere_xy_m``.
        success_radius_xy_m: horizontal success radius.
    """
    xy = np.asarray(xy_m, dtype=np.float64)
    spheres = np.asarray(sphere_xy_m, dtype=np.float64)
    others = np.delete(spheres, int(target_index), axis=0)
    if len(others) == 0 or len(xy) == 0:
        return False
    dist = np.linalg.norm(xy[:, None, :] - others[None, :, :], axis=-1)
    return bool((dist < success_radius_xy_m).any())


def classify_failure(termination: str, success: bool, wrong_sphere: bool) -> str:
    """The episode's class in :data:`FAILURE_CLASSES`.

    Args:
        termination: the simulator's cause (``success``, ``out_of_bounds_*``, ``time_limit``).
        success: whether the episode succeeded.
        wrong_sphere: whether it entered a wrong sphere's success disc (:func:`reached_wrong_sphere`).

    Raises:
        ValueError: an unknown termination cause (the records are corrupt).
    """
    if success:
        return "success"
    if wrong_sphere:
        return "wrong_target"
    if termination not in FAILURE_CLASSES or termination == "success":
        raise ValueError(f"failed episode with unexpected termination cause {termination!r}")
    return termination
