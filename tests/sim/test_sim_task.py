"""Episode starts, termination thresholds, reward, instructions and privileged state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.sim import (
    PRIVILEGED_STATE_NAMES,
    TERMINATION_CAUSES,
    get_preset,
    make_arena,
    sample_episode_start,
)

ZERO = np.zeros((1, 2))
# Robot root at z = 0, sphere centres at z = 0.1: success when the horizontal distance < sqrt(0.3^2 - 0.1^2).
SUCCESS_XY = math.sqrt(0.3**2 - 0.1**2)


def _one_step(pose, target, preset="text2nav", **kw):
    env = make_arena(preset, num_envs=1, render=False, **kw)
    env.reset(seed=0)
    env.set_state([0], [pose], [target])
    return env.step(ZERO)


def test_episode_start_is_a_pure_function_of_its_seed_and_within_the_published_ranges():
    cfg = get_preset("text2nav")
    starts = [sample_episode_start(cfg, s) for s in range(400)]
    again = sample_episode_start(cfg, 123)
    np.testing.assert_array_equal(again.pose, starts[123].pose)
    assert again.target_index == starts[123].target_index
    poses = np.stack([s.pose for s in starts])
    assert poses[:, 0].min() >= -0.05 and poses[:, 0].max() <= 0.75
    assert poses[:, 1].min() >= -0.2 and poses[:, 1].max() <= 0.25
    assert poses[:, 2].min() >= -math.pi and poses[:, 2].max() <= math.pi
    counts = np.bincount([s.target_index for s in starts], minlength=5)
    assert counts.min() > 50  # uniform over the five spheres (expected 80 each)
    assert {starts[i].target_color for i in range(400)} == {"red", "green", "blue", "yellow", "pink"}
    with pytest.raises(ConfigError, match=r"episode_seed must be an integer in \[0, 2\*\*63\), got -1"):
        sample_episode_start(cfg, -1)


def test_random_preset_places_distinct_colours_apart_and_starts_away_from_spheres():
    cfg = get_preset("text2nav-random")
    for seed in range(50):
        s = sample_episode_start(cfg, seed)
        xy = s.sphere_positions_xy_m
        assert len(set(s.sphere_color_indices.tolist())) == cfg.num_random_spheres
        d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
        assert d[~np.eye(len(xy), dtype=bool)].min() >= cfg.sphere_min_separation_m
        assert np.hypot(*(xy - s.pose[:2]).T).min() >= cfg.start_min_target_distance_m


@pytest.mark.parametrize("eps,expected", [(-1e-9, "success"), (1e-9, "")])
def test_success_fires_exactly_at_the_3d_radius(eps, expected):
    # Target red at (2.5, 0); approach from -x.
    _, reward, terminated, truncated, info = _one_step([2.5 - SUCCESS_XY - eps, 0.0, 0.0], 0)
    assert info["termination"][0] == expected
    assert terminated[0] == (expected == "success") and not truncated[0]
    assert reward[0] == pytest.approx(10.0 if expected else -0.1 * 0.3, abs=1e-6)


@pytest.mark.parametrize(
    "pose,cause",
    [
        ((2.5, 1.25, 0.0), ""),
        ((2.5 + 1e-9, 1.25, 0.0), "out_of_bounds_front"),
        ((-0.2, 0.0, 0.0), ""),
        ((-0.2 - 1e-9, 0.0, 0.0), "out_of_bounds_back"),
        ((1.0, 1.45, 0.0), ""),
        ((1.0, 1.45 + 1e-9, 0.0), "out_of_bounds_left"),
        ((1.0, -1.45, 0.0), ""),
        ((1.0, -1.45 - 1e-9, 0.0), "out_of_bounds_right"),
        ((2.6, 1.5, 0.0), "out_of_bounds_front"),  # corner: front is checked before left
    ],
)
def test_out_of_bounds_fires_exactly_at_each_bound(pose, cause):
    _, reward, terminated, truncated, info = _one_step(list(pose), 4)  # target pink at (2.5, -1.0)
    assert info["termination"][0] == cause
    assert terminated[0] == bool(cause) and not truncated[0]
    if cause:
        assert reward[0] == -5.0


def test_success_has_priority_over_out_of_bounds_and_wrong_sphere_is_recorded():
    _, _, terminated, _, info = _one_step([2.55, 0.0, 0.0], 0)  # past the front bound, on the target
    assert info["termination"][0] == "success" and terminated[0]
    _, _, terminated, _, info = _one_step([2.4, 0.5, 0.0], 0)  # on green, target red: not terminal
    assert info["termination"][0] == "" and not terminated[0]
    assert info["reached_wrong_sphere"][0] and info["nearest_sphere_index"][0] == 1


def test_time_limit_truncates_exactly_at_600_steps():
    env = make_arena("text2nav", num_envs=2, render=False)
    env.reset(seed=0)
    env.set_state([0, 1], [[0.2, 0.0, 0.0], [0.3, 0.1, 1.0]], [0, 1])
    for step in range(1, 600):
        _, _, terminated, truncated, info = env.step(np.zeros((2, 2)))
        assert not terminated.any() and not truncated.any(), step
        assert (info["env_steps"] == step).all()
    _, _, terminated, truncated, info = env.step(np.zeros((2, 2)))
    assert truncated.all() and not terminated.any()
    assert info["termination"].tolist() == ["time_limit", "time_limit"]
    assert info["env_steps"].tolist() == [600, 600]
    assert info["_final_info"].all()
    assert (info["final_info"]["env_steps"] == 600).all()
    assert TERMINATION_CAUSES[-1] == "time_limit"


def test_paper_instructions_use_the_lateral_offset_and_are_heading_blind():
    def text(pose, target=0):
        env = make_arena("text2nav", num_envs=1, render=False)
        env.reset(seed=0)
        return env.set_state([0], [pose], [target])[1]["instruction"][0]

    red = "The target is red ball which is {}. Move toward the ball."
    assert text([0.5, 0.0, 0.0]) == red.format("straight ahead")
    assert text([0.5, -0.21, 0.0]) == red.format("to your left")  # target 0.21 m to the left
    assert text([0.5, -0.19, 0.0]) == red.format("straight ahead")  # 0.2 m threshold
    assert text([0.5, 0.21, 0.0]) == red.format("to your right")
    assert text([0.5, 0.0, math.pi]) == red.format("straight ahead")  # behind, reads "ahead" (published quirk)
    assert text([0.5, 0.0, math.pi / 2]) == red.format("to your right")  # facing +y: target on the right


def test_spatial_and_color_instructions():
    def text(pose, style):
        env = make_arena("text2nav", num_envs=1, render=False, instructions=style)
        env.reset(seed=0)
        return env.set_state([0], [pose], [3])[1]["instruction"][0]  # yellow at (2.5, 1.0)

    bearing = math.atan2(1.0, 2.0)  # from (0.5, 0): 26.6 deg to the left
    assert text([0.5, 0.0, 0.0], "spatial") == "The yellow ball is to your left. Move toward the ball."
    assert text([0.5, 0.0, bearing + math.radians(14)], "spatial") == (
        "The yellow ball is straight ahead. Move toward the ball."
    )
    assert text([0.5, 0.0, bearing + math.radians(16)], "spatial") == (
        "The yellow ball is to your right. Move toward the ball."
    )
    assert text([0.5, 0.0, bearing + math.pi], "spatial") == "The yellow ball is behind you. Move toward the ball."
    assert text([0.5, 0.0, 0.0], "color") == "Move toward the yellow ball."


def test_privileged_state_columns_match_the_geometry():
    env = make_arena("text2nav", num_envs=1, render=False)
    env.reset(seed=0)
    obs, _ = env.set_state([0], [[0.5, 0.0, math.pi / 2]], [3])  # facing +y, yellow at (2.5, 1.0)
    row = dict(zip(PRIVILEGED_STATE_NAMES, obs["privileged_state"][0].tolist(), strict=True))
    expected = {
        "x_m": 0.5,
        "y_m": 0.0,
        "cos_yaw": 0.0,
        "sin_yaw": 1.0,
        "target_x_m": 2.5,
        "target_y_m": 1.0,
        "target_forward_m": 1.0,
        "target_left_m": -2.0,
        "target_distance_xy_m": math.sqrt(5),
        "target_bearing_cos": 1 / math.sqrt(5),
        "target_bearing_sin": -2 / math.sqrt(5),
    }
    assert row == pytest.approx(expected, abs=1e-6)
    assert obs["privileged_state"].dtype == np.float32
