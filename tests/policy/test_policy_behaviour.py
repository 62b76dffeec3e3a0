"""The diagnosis labels hand-made trajectories correctly."""

import math

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.policy.behaviour import (
    BehaviourThresholds,
    classify_failure,
    is_back_and_forth,
    is_circling,
    reached_wrong_sphere,
    turn_reversal_steps,
)

THR = BehaviourThresholds()
TARGET = np.array([2.5, 0.0])


def integrate(yaw_rates, speeds, start=(0.3, 0.0, 0.0), dt=1 / 30):
    """Unicycle poses (T+1, 3) from per-step yaw rates (rad/s) and speeds (m/s)."""
    x, y, yaw = start
    poses = [(x, y, yaw)]
    for w, v in zip(yaw_rates, speeds, strict=True):
        yaw += w * dt
        x += v * math.cos(yaw) * dt
        y += v * math.sin(yaw) * dt
        poses.append((x, y, math.atan2(math.sin(yaw), math.cos(yaw))))
    return np.array(poses)


def dist(poses):
    return np.linalg.norm(poses[:, :2] - TARGET, axis=1)


def test_a_circle_is_circling_not_back_and_forth():
    poses = integrate([3.0] * 90, [0.3] * 90)  # 3 rad/s for 3 s = 9 rad > 2π, radius 0.1 m
    assert is_circling(poses[:, 2], dist(poses), THR)
    assert not is_back_and_forth(poses[:, 2], THR)


def test_spinning_on_the_spot_is_circling():
    poses = integrate([10.0] * 30, [0.0] * 30)  # 10 rad in one second
    assert is_circling(poses[:, 2], dist(poses), THR)


def test_a_spiral_that_closes_in_is_not_circling():
    # A full turn while driving 1.5 m closer: the heading turns but the target gets closer.
    poses = integrate([1.0] * 200, [0.6] * 200, start=(0.0, 0.0, 0.0))
    d = np.linspace(2.5, 0.5, len(poses))  # distance shrinks steadily
    assert not is_circling(poses[:, 2], d, THR)


def test_less_than_a_full_turn_is_not_circling():
    poses = integrate([3.0] * 60, [0.0] * 60)  # 6 rad < 2π
    assert not is_circling(poses[:, 2], dist(poses), THR)


def test_an_oscillation_is_back_and_forth_not_circling():
    rates = [5.0 if (i // 3) % 2 == 0 else -5.0 for i in range(60)]  # flips every 3 steps
    poses = integrate(rates, [0.1] * 60)
    assert len(turn_reversal_steps(poses[:, 2], THR)) == 19
    assert is_back_and_forth(poses[:, 2], THR)
    assert not is_circling(poses[:, 2], dist(poses), THR)


def test_a_straight_drive_to_the_target_has_no_flags():
    poses = integrate([0.0] * 100, [0.6] * 100)
    assert not is_circling(poses[:, 2], dist(poses), THR)
    assert not is_back_and_forth(poses[:, 2], THR)
    assert len(turn_reversal_steps(poses[:, 2], THR)) == 0


def test_a_turn_then_drive_with_a_few_corrections_is_not_back_and_forth():
    # Turn left, drive, 3 small corrections spread over 3 s: fewer than 6 reversals per second.
    rates = [5.0] * 10 + [0.0] * 20 + [-1.0] * 2 + [0.0] * 20 + [1.0] * 2 + [0.0] * 20 + [-1.0] * 2
    poses = integrate(rates, [0.6] * len(rates))
    assert len(turn_reversal_steps(poses[:, 2], THR)) == 3
    assert not is_back_and_forth(poses[:, 2], THR)


def test_reversals_spread_out_are_not_back_and_forth():
    # 8 reversals, one every 10 steps: 6 of them span 50 steps > the 30-step window.
    rates = [(2.0 if (i // 10) % 2 == 0 else -2.0) for i in range(90)]
    poses = integrate(rates, [0.2] * 90)
    assert len(turn_reversal_steps(poses[:, 2], THR)) == 8
    assert not is_back_and_forth(poses[:, 2], THR)


@pytest.mark.parametrize(
    ("rate", "speed", "start", "cause"),
    [
        (0.0, 0.6, (2.0, 1.35, 0.0), "out_of_bounds_front"),  # beside the yellow sphere, out of its disc
        (0.0, 0.6, (0.0, 0.0, math.pi), "out_of_bounds_back"),
        (0.0, 0.6, (1.0, 1.2, math.pi / 2), "out_of_bounds_left"),
        (0.0, 0.6, (1.0, -1.2, -math.pi / 2), "out_of_bounds_right"),
    ],
)
def test_an_exit_on_each_side_is_classified_by_its_side(rate, speed, start, cause):
    poses = integrate([rate] * 30, [speed] * 30, start=start)
    spheres = np.array([[2.5, 0.0], [2.5, 0.5], [2.5, -0.5], [2.5, 1.0], [2.5, -1.0]])
    # Target: a sphere the trajectory never approaches.
    far = int(np.argmax(np.linalg.norm(spheres - poses[-1, :2], axis=1)))
    wrong = reached_wrong_sphere(poses[:, :2], spheres, far, 0.283)
    assert classify_failure(cause, False, wrong) == cause
    assert not is_circling(poses[:, 2], dist(poses), THR)


def test_driving_through_a_wrong_sphere_is_wrong_target():
    spheres = np.array([[2.5, 0.0], [2.5, 0.5]])
    poses = integrate([0.0] * 30, [0.6] * 30, start=(2.0, 0.5, 0.0))  # straight at sphere 1 (green)
    assert reached_wrong_sphere(poses[:, :2], spheres, 0, 0.283)
    assert not reached_wrong_sphere(poses[:, :2], spheres, 1, 0.283)
    assert classify_failure("out_of_bounds_front", False, True) == "wrong_target"
    assert classify_failure("success", True, False) == "success"
    assert classify_failure("time_limit", False, False) == "time_limit"
    with pytest.raises(ValueError, match="unexpected termination"):
        classify_failure("", False, False)


def test_thresholds_are_validated():
    with pytest.raises(ConfigError, match="reversal_window_steps must be >= 2"):
        BehaviourThresholds(reversal_window_steps=1)
