"""Differential-drive kinematics, checked against closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.sim import make_arena

SPEED = 20.0 * 0.03  # wheel limit x radius = 0.6 m/s
TURN_RATE = 2 * SPEED / 0.1125  # rad/s for opposite wheels


def _env(**kw):
    env = make_arena("text2nav", num_envs=3, render=False, **kw)
    env.reset(seed=0)
    poses = np.array([[0.2, 0.0, 0.0], [0.3, 0.1, 1.0], [0.5, -0.1, -2.0]])
    env.set_state([0, 1, 2], poses, [0, 1, 2])
    return env, poses


def test_zero_action_leaves_the_pose_unchanged():
    env, poses = _env()
    for _ in range(10):
        env.step(np.zeros((3, 2)))
    np.testing.assert_array_equal(env.poses, poses)


@pytest.mark.parametrize(
    "mapping,action,speed",
    [("bang_bang", 1.0, SPEED), ("bang_bang", 0.01, SPEED), ("velocity", 1.0, SPEED), ("velocity", 0.5, SPEED / 2)],
)
def test_equal_wheel_speeds_drive_straight(mapping, action, speed):
    env, poses = _env(action_mapping=mapping)
    for _ in range(30):  # one second
        env.step(np.full((3, 2), action))
    end = env.poses
    np.testing.assert_allclose(end[:, 2], poses[:, 2], atol=1e-12)
    np.testing.assert_allclose(end[:, 0], poses[:, 0] + speed * np.cos(poses[:, 2]), atol=1e-9)
    np.testing.assert_allclose(end[:, 1], poses[:, 1] + speed * np.sin(poses[:, 2]), atol=1e-9)


def test_opposite_wheel_speeds_turn_in_place_at_the_predicted_rate():
    env, poses = _env()
    _, _, _, _, info = env.step(np.tile([[-1.0, 1.0]], (3, 1)))  # left back, right forward: turn left
    np.testing.assert_allclose(info["wheel_speeds_radps"], np.tile([[-20.0, 20.0]], (3, 1)))
    end = env.poses
    np.testing.assert_allclose(end[:, :2], poses[:, :2], atol=1e-12)
    expected = (poses[:, 2] + TURN_RATE / 30 + math.pi) % (2 * math.pi) - math.pi
    np.testing.assert_allclose(end[:, 2], expected, atol=1e-12)
    assert TURN_RATE == pytest.approx(10.6667, abs=1e-3)


def test_one_wheel_drives_an_arc_of_the_predicted_radius():
    env, poses = _env(action_mapping="velocity")
    steps = 45
    for _ in range(steps):
        env.step(np.tile([[0.0, 1.0]], (3, 1)))  # right wheel only: pivot about the left wheel
    omega = SPEED / 0.1125
    radius = 0.1125 / 2
    theta = omega * steps / 30
    x0, y0, yaw0 = poses[0]
    cx, cy = x0 - radius * math.sin(yaw0), y0 + radius * math.cos(yaw0)  # centre of the arc (left)
    x, y, yaw = env.poses[0]
    assert math.hypot(x - cx, y - cy) == pytest.approx(radius, abs=1e-9)
    assert (yaw - yaw0) % (2 * math.pi) == pytest.approx(theta % (2 * math.pi), abs=1e-9)


def test_bang_bang_keeps_zero_at_zero_and_out_of_range_actions_are_clipped():
    env, _ = _env(action_mapping="bang_bang")
    _, _, _, _, info = env.step(np.array([[0.0, 0.0], [1e-6, -1e-6], [5.0, -3.0]]))
    np.testing.assert_allclose(info["wheel_speeds_radps"], [[0, 0], [0.8, -0.8], [20, -20]], atol=1e-4)


def test_bad_actions_raise_with_exact_messages():
    env, _ = _env()
    with pytest.raises(ConfigError) as err:
        env.step(np.zeros((2, 2)))
    assert str(err.value) == "actions must have shape (3, 2) (num_envs, [left, right]), got (2, 2)"
    bad = np.zeros((3, 2))
    bad[1, 0] = np.nan
    with pytest.raises(ConfigError) as err:
        env.step(bad)
    assert str(err.value) == (
        "actions must be finite numbers in [-1, 1], got [nan, 0.0] for env 1; check the policy output for NaN/inf"
    )
    assert env.poses[0, 0] == 0.2  # nothing moved
