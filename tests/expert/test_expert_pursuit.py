"""The pursuit controller: decisions on hand-built states, and every target reached from a grid of poses
within the time-optimal step bound for bang-bang wheels."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.expert import PursuitController
from vlnav_data.expert.pursuit import turn_per_step_rad
from vlnav_data.sim import PRIVILEGED_STATE_NAMES, get_preset, make_arena
from vlnav_data.sim.task import privileged_state as sim_privileged_state


def _states(poses, targets) -> np.ndarray:
    import torch

    return sim_privileged_state(
        torch.as_tensor(np.asarray(poses, dtype=np.float64)), torch.as_tensor(np.asarray(targets, dtype=np.float64))
    ).numpy()


def test_geometry_of_the_text2nav_arena():
    cfg = get_preset("text2nav")
    assert cfg.success_radius_xy_m == pytest.approx(math.sqrt(0.3**2 - 0.1**2))
    # 2 * 0.03 m * 20 rad/s / 0.1125 m = 10.67 rad/s, over 1/30 s.
    assert turn_per_step_rad(cfg) == pytest.approx(2 * 0.03 * 20 / 0.1125 / 30)


def test_bang_bang_decisions_on_hand_built_states():
    pursuit = PursuitController.for_arena(get_preset("text2nav"))
    target = [2.5, 0.0]
    poses = [
        [0.5, 0.0, 0.0],  # dead ahead -> straight
        [0.5, 0.0, math.pi - 0.3],  # behind, a little to the right -> spin right
        [0.5, 0.0, -math.radians(90)],  # target on the left (robot faces -y) -> spin left
        [0.5, 0.0, math.radians(90)],  # target on the right -> spin right
        [0.5, 0.0, -math.radians(12)],  # 12 deg left: outside the cone, a spin (20 deg) overshoots -> arc left
        [0.5, 0.0, math.radians(12)],  # 12 deg right -> arc right
    ]
    actions = pursuit(_obs(_states(poses, [target] * len(poses))), None)
    np.testing.assert_array_equal(actions, [[1, 1], [1, -1], [-1, 1], [1, -1], [0, 1], [1, 0]])
    assert actions.dtype == np.float32


def test_velocity_decisions_are_proportional_and_bounded():
    pursuit = PursuitController.for_arena(get_preset("text2nav-velocity"))
    poses = [[0.5, 0.0, 0.0], [0.5, 0.0, -0.1], [0.5, 0.0, 0.1], [0.5, 0.0, -math.pi / 2]]
    a = pursuit(_obs(_states(poses, [[2.5, 0.0]] * 4)), None)
    np.testing.assert_allclose(a[0], [1.0, 1.0])
    assert a[1, 1] > a[1, 0] and a[2, 0] > a[2, 1]  # turn toward the goal
    np.testing.assert_allclose(a[1], a[2][::-1])  # mirror symmetry
    np.testing.assert_allclose(a[3], [-1.0, 1.0])  # large error: spin in place
    assert np.abs(a).max() <= 1.0


def _obs(state: np.ndarray) -> dict:
    return {"privileged_state": state}


@pytest.mark.parametrize("preset", ["text2nav", "text2nav-velocity"])
def test_pursuit_reaches_every_target_from_a_grid_of_starts(preset):
    cfg = get_preset(preset)
    xs, ys = (-0.05, 0.35, 0.75), (-0.2, 0.0, 0.25)
    yaws = np.linspace(-math.pi, math.pi, 8, endpoint=False)
    grid = list(itertools.product(xs, ys, yaws, range(len(cfg.sphere_positions_xy_m))))
    n = len(grid)  # 3 * 3 * 8 * 5 = 360
    env = make_arena(preset, num_envs=n, render=False)
    env.reset(seed=0)
    poses = np.array([[x, y, yaw] for x, y, yaw, _ in grid])
    targets = np.array([t for *_, t in grid])
    obs, info = env.set_state(np.arange(n), poses, targets)
    pursuit = PursuitController.for_arena(env.config)
    state0 = obs["privileged_state"].copy()

    termination = np.full(n, "", dtype=object)
    steps = np.zeros(n, dtype=np.int64)
    for _ in range(cfg.max_episode_steps):
        obs, _, terminated, truncated, info = env.step(pursuit(obs, info))
        new = (terminated | truncated) & (termination == "")
        termination[new] = info["termination"][new]
        steps[new] = info["env_steps"][new]
        if (termination != "").all():
            break
    assert (termination == "success").all(), dict(
        zip(*np.unique(termination.astype(str), return_counts=True), strict=True)
    )

    # Time-optimal bound (bang-bang): spin until the heading line passes within aim_margin * R of the
    # centre, then drive at full speed: it enters the disc after at most d - sqrt(R^2 - (0.8 R)^2) = d - 0.6 R.
    col = PRIVILEGED_STATE_NAMES.index
    dist = state0[:, col("target_distance_xy_m")]
    bearing = np.abs(np.arctan2(state0[:, col("target_bearing_sin")], state0[:, col("target_bearing_cos")]))
    r = cfg.success_radius_xy_m
    step_m = cfg.max_linear_speed_mps * cfg.dt_s
    lower = np.ceil((dist - r) / step_m)
    upper = np.ceil(bearing / turn_per_step_rad(cfg)) + 3 + np.ceil((dist - 0.6 * r) / step_m)
    assert (steps >= lower).all()
    assert (steps <= upper).all(), np.max(steps - upper)


def test_bad_parameters_raise_config_error():
    with pytest.raises(ConfigError, match="unknown action mapping 'bangbang'"):
        PursuitController(action_mapping="bangbang", reach_radius_m=0.28, turn_per_step_rad=0.36)
    with pytest.raises(ConfigError, match="reach_radius_m must be > 0, got 0"):
        PursuitController(action_mapping="bang_bang", reach_radius_m=0, turn_per_step_rad=0.36)
    with pytest.raises(ConfigError, match="aim_margin must be in"):
        PursuitController(action_mapping="bang_bang", reach_radius_m=0.28, turn_per_step_rad=0.36, aim_margin=1.5)
