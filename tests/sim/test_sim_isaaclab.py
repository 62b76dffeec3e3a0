"""Isaac Lab backend: contract, drive and spin physics, shared starts, pinhole geometry, one arena per process.

Needs Isaac Lab 3 (the Python 3.12 environment `bash scripts/isaaclab-venv.sh DIR` makes; `.ci/isaaclab.sh`
runs these tests there); skipped elsewhere. Warp compiles its kernels on first use (about 25 s here) into
WARP_CACHE_PATH: a temporary directory of this run unless the caller chose one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile

import numpy as np
import pytest

pytest.importorskip("isaaclab")
os.environ.setdefault("WARP_CACHE_PATH", tempfile.mkdtemp(prefix="vlnav-warp-cache-"))

from vlnav_data.errors import ConfigError  # noqa: E402
from vlnav_data.sim import check_arena, get_preset, make_arena, render_views, sample_episode_start  # noqa: E402

CFG = get_preset("text2nav-isaaclab")
FX, FY = CFG.focal_length_px


def test_the_isaaclab_arena_meets_the_contract_with_frames():
    env = make_arena(
        "text2nav-isaaclab", num_envs=2, render=True, max_episode_steps=20, image_height_px=48, image_width_px=48
    )
    report = check_arena(env)
    assert report.ok, report.messages()
    assert report.notes == ()


@pytest.mark.parametrize("mode", ["next_step", "disabled"])
def test_the_isaaclab_arena_meets_the_contract_in_the_other_autoreset_modes(mode):
    report = check_arena(
        make_arena("text2nav-isaaclab", num_envs=2, render=False, max_episode_steps=20, autoreset_mode=mode)
    )
    assert report.ok, report.messages()


def test_one_second_forward_covers_0_6_m_and_a_spin_in_place_stays_within_2_cm():
    env = make_arena("text2nav-isaaclab", num_envs=2, render=False)
    env.reset(seed=0)
    env.set_state([0, 1], [[-0.1, 0.0, 0.0], [0.3, 0.05, 0.1]], [3, 3])  # target yellow, far from both paths
    poses = [env.poses.copy()]
    for _ in range(30):  # 1 s at 30 Hz: robot 0 full forward, robot 1 spins counter-clockwise
        _, _, terminated, truncated, _ = env.step(np.array([[1.0, 1.0], [-1.0, 1.0]]))
        assert not (terminated.any() or truncated.any())
        poses.append(env.poses.copy())
    p = np.array(poses)
    dx, dy = p[-1, 0, :2] - p[0, 0, :2]
    assert 0.57 <= dx <= 0.63, dx
    assert abs(dy) < 0.005 and abs(p[-1, 0, 2]) < 0.01
    drift = np.hypot(*(p[:, 1, :2] - p[0, 1, :2]).T).max()
    assert drift < 0.02, drift
    turned = np.sum((np.diff(p[:, 1, 2]) + np.pi) % (2 * np.pi) - np.pi)
    assert turned == pytest.approx(2 * 0.6 / 0.1125, rel=0.05)  # 10.7 rad/s counter-clockwise


def test_the_same_episode_seed_gives_the_same_start_target_and_instruction_as_text2nav():
    seeds = [3, 17, 2**40 + 5, 123456789]
    results = {}
    for preset in ("text2nav", "text2nav-isaaclab"):
        env = make_arena(preset, num_envs=4, render=False)
        _, info = env.reset(options={"reset_mask": np.ones(4, dtype=bool), "episode_seeds": seeds})
        results[preset] = (env.poses, info["target_index"], list(info["instruction"]))
    (pb, tb, ib), (pi, ti, ii) = results["text2nav"], results["text2nav-isaaclab"]
    np.testing.assert_allclose(pi, pb, atol=1e-6)  # Isaac Lab holds poses in float32
    assert ti.tolist() == tb.tolist() == [sample_episode_start(CFG, s).target_index for s in seeds]
    assert ii == ib


def _red_mask(img):
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > 60) & (r > 2 * g + 20) & (r > 2 * b + 20)


def test_a_sphere_appears_at_its_pinhole_column_with_its_pinhole_size():
    one = dataclasses.replace(CFG, sphere_positions_xy_m=((1.5, 0.0),), sphere_colors=("red",))
    bearings = (0.0, 20.0, -35.0)
    frames = render_views(one, [[0.0, 0.0, -math.radians(b)] for b in bearings])
    for img, bearing in zip(frames, bearings, strict=True):
        yaw = -math.radians(bearing)
        rows, cols = np.nonzero(_red_mask(img))
        cx, cy = 0.0243 * math.cos(yaw), 0.0243 * math.sin(yaw)
        dx, dy = 1.5 - cx, -cy
        fwd = math.cos(yaw) * dx + math.sin(yaw) * dy
        left = -math.sin(yaw) * dx + math.cos(yaw) * dy
        assert abs(0.5 * (cols.min() + cols.max()) - (128 - FX * left / fwd - 0.5)) <= 2.0, bearing
        assert abs(0.5 * (rows.min() + rows.max()) - (128 - FY * (0.1 - 0.09) / fwd - 0.5)) <= 2.0, bearing
        if bearing == 0.0:
            width = cols.max() - cols.min() + 1
            assert abs(width - 2 * FX * 0.075 / math.sqrt(fwd**2 - 0.075**2)) <= 2.0


def test_making_a_second_arena_ends_the_first_and_randomised_scenes_are_refused():
    first = make_arena("text2nav-isaaclab", num_envs=1, render=False)
    first.reset(seed=0)
    second = make_arena("text2nav-isaaclab", num_envs=1, render=False)
    second.reset(seed=0)
    with pytest.raises(ConfigError, match=r"^this Isaac Lab arena was closed or replaced by a newer one"):
        first.step(np.zeros((1, 2)))
    second.step(np.zeros((1, 2)))
    with pytest.raises(ConfigError, match=r"shares one static arena between its robots"):
        make_arena(dataclasses.replace(get_preset("text2nav-random"), backend="isaaclab"), num_envs=1, render=False)


def test_the_shipped_expert_reaches_the_targets_in_isaaclab():
    from vlnav_data.expert import load_expert
    from vlnav_data.sim import rollout

    expert = load_expert(preset="text2nav-isaaclab", action_mapping="bang_bang")
    env = make_arena("text2nav-isaaclab", num_envs=20, render=False)
    episodes = list(rollout(env, expert, range(1000, 1020), record_rgb=False))
    assert sum(e.success for e in episodes) >= 19, sorted({e.termination for e in episodes})


def test_robots_never_see_or_touch_each_other():
    env = make_arena("text2nav-isaaclab", num_envs=2, render=True, image_height_px=48, image_width_px=48)
    env.reset(seed=0)
    ahead, _ = env.set_state([0, 1], [[0.0, 0.0, 0.0], [0.25, 0.0, 0.0]], [0, 0])
    away, _ = env.set_state([0, 1], [[0.0, 0.0, 0.0], [0.0, 1.2, 0.0]], [0, 0])
    np.testing.assert_array_equal(ahead["rgb"][0], away["rgb"][0])  # robot 1 right in front: not in robot 0's view
    env.set_state([0, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [0, 0])  # the same spot: each in its own world
    for _ in range(10):
        env.step(np.ones((2, 2)))
    np.testing.assert_allclose(env.poses[0], env.poses[1], atol=1e-6)
    assert env.poses[0, 0] > 0.15
