"""The physics backends, MuJoCo (needs `mujoco`) and Newton (needs `newton`, MuJoCo-Warp on the CPU): contract,
pinhole geometry, drive and spin physics, shared starts, expert. Each test runs for each backend installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; read when mujoco is first imported

from vlnav_data.expert import load_expert  # noqa: E402
from vlnav_data.sim import check_arena, get_preset, make_arena, render_views, rollout, sample_episode_start  # noqa: E402
from vlnav_data.sim.task import PALETTE_NAMES  # noqa: E402


def _needs(module: str, extra: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"needs the {extra} extra ({module})")


#: One parameter per physics backend; a backend whose package is missing is skipped.
PRESETS = [
    pytest.param("text2nav-mujoco", marks=_needs("mujoco", "mujoco"), id="mujoco"),
    pytest.param("text2nav-newton", marks=[_needs("newton", "newton"), pytest.mark.newton], id="newton"),
]
CFG = get_preset("text2nav")
FX, FY = CFG.focal_length_px
RED = PALETTE_NAMES.index("red")


@pytest.mark.parametrize("preset", PRESETS)
def test_the_arena_meets_the_contract_with_frames(preset):
    env = make_arena(preset, num_envs=2, render=True, max_episode_steps=20, image_height_px=48, image_width_px=48)
    report = check_arena(env)
    assert report.ok, report.messages()
    assert report.notes == ()


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("mode", ["next_step", "disabled"])
def test_the_arena_meets_the_contract_in_the_other_autoreset_modes(preset, mode):
    report = check_arena(make_arena(preset, num_envs=2, render=False, max_episode_steps=20, autoreset_mode=mode))
    assert report.ok, report.messages()


def _red_mask(img):
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > 60) & (r > 2 * g + 20) & (r > 2 * b + 20)


def _one_sphere(preset, xy):
    return dataclasses.replace(get_preset(preset), sphere_positions_xy_m=(tuple(xy),), sphere_colors=("red",))


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("bearing_deg", [0.0, 20.0, -35.0, 50.0])
def test_a_sphere_appears_at_its_pinhole_column_and_row_with_its_pinhole_size(preset, bearing_deg):
    yaw = -math.radians(bearing_deg)  # robot at the origin; the sphere at (1.5, 0) is bearing_deg to the left
    img = render_views(_one_sphere(preset, (1.5, 0.0)), [[0.0, 0.0, yaw]])[0]
    mask = _red_mask(img)
    rows, cols = np.nonzero(mask)
    cx, cy = 0.0243 * math.cos(yaw), 0.0243 * math.sin(yaw)
    dx, dy = 1.5 - cx, -cy
    fwd = math.cos(yaw) * dx + math.sin(yaw) * dy
    left = -math.sin(yaw) * dx + math.cos(yaw) * dy
    assert abs(0.5 * (cols.min() + cols.max()) - (128 - FX * left / fwd - 0.5)) <= 2.0
    assert abs(0.5 * (rows.min() + rows.max()) - (128 - FY * (0.1 - 0.09) / fwd - 0.5)) <= 2.0
    if bearing_deg == 0.0:  # on the optical axis the silhouette is a circle of the pinhole diameter
        width = cols.max() - cols.min() + 1
        assert abs(width - 2 * FX * 0.075 / math.sqrt(fwd**2 - 0.075**2)) <= 2.0


@pytest.mark.parametrize("preset", PRESETS)
def test_apparent_size_falls_as_one_over_distance(preset):
    for dist in (0.5, 1.0, 2.0):
        img = render_views(_one_sphere(preset, (0.0243 + dist, 0.0)), [[0.0, 0.0, 0.0]])[0]
        cols = np.nonzero(_red_mask(img).any(axis=0))[0]
        predicted = 2 * FX * 0.075 / math.sqrt(dist**2 - 0.075**2)
        assert abs(cols.max() - cols.min() + 1 - predicted) <= 2.0, (dist, predicted)


@pytest.mark.parametrize("preset", PRESETS)
def test_both_backends_show_the_five_spheres_at_the_same_columns(preset):
    pose = [[0.3, 0.05, 0.1]]
    cols = {}
    for name in ("text2nav", preset):
        img = render_views(get_preset(name), pose)[0]
        cols[name] = np.nonzero(_red_mask(img).any(axis=0))[0].mean()
    assert abs(cols["text2nav"] - cols[preset]) <= 1.0


def _drive(preset, action, steps=30):
    env = make_arena(preset, num_envs=1, render=False)
    env.reset(seed=0)
    obs, _ = env.set_state([0], [[-0.1, 0.0, 0.0]], [3])  # target yellow (2.5, 1.0), far from the path
    poses = [env.poses[0]]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(np.array([action], dtype=np.float64))
        assert not (terminated[0] or truncated[0])
        poses.append(env.poses[0])
    return np.array(poses)


@pytest.mark.parametrize("preset", PRESETS)
def test_one_second_at_full_speed_covers_0_6_m_within_5_percent(preset):
    poses = _drive(preset, [1.0, 1.0])
    dx, dy = poses[-1, :2] - poses[0, :2]
    assert 0.57 <= dx <= 0.63, dx
    assert abs(dy) < 0.005 and abs(poses[-1, 2]) < 0.01


@pytest.mark.parametrize("preset", PRESETS)
def test_a_spin_in_place_drifts_less_than_2_cm_at_the_published_turn_rate(preset):
    poses = _drive(preset, [-1.0, 1.0])
    drift = np.hypot(*(poses[:, :2] - poses[0, :2]).T).max()
    assert drift < 0.02, drift
    turned = np.sum((np.diff(poses[:, 2]) + np.pi) % (2 * np.pi) - np.pi)
    assert turned == pytest.approx(2 * 0.6 / 0.1125, rel=0.05)  # 10.7 rad/s counter-clockwise


@pytest.mark.parametrize("preset", PRESETS)
def test_the_same_episode_seed_gives_the_same_start_target_and_instruction_in_both_backends(preset):
    seeds = [3, 17, 2**40 + 5, 123456789]
    results = {}
    for name in ("text2nav", preset):
        env = make_arena(name, num_envs=4, render=False)
        obs, info = env.reset(options={"reset_mask": np.ones(4, dtype=bool), "episode_seeds": seeds})
        results[name] = (env.poses, info["target_index"], list(info["instruction"]))
    (pb, tb, ib), (pm, tm, im) = results["text2nav"], results[preset]
    np.testing.assert_allclose(pm, pb, rtol=0, atol=2e-7)  # Newton holds poses in float32 (|yaw| <= pi: 1.2e-7)
    assert tm.tolist() == tb.tolist() == [sample_episode_start(CFG, s).target_index for s in seeds]
    assert im == ib


@pytest.mark.parametrize(
    ("preset", "num_episodes", "min_successes"),
    [  # Newton steps ~10x slower than MuJoCo on the CPU: fewer episodes there
        pytest.param("text2nav-mujoco", 100, 99, marks=_needs("mujoco", "mujoco"), id="mujoco"),
        pytest.param("text2nav-newton", 10, 10, marks=[_needs("newton", "newton"), pytest.mark.newton], id="newton"),
    ],
)
def test_the_shipped_expert_reaches_the_spheres(preset, num_episodes, min_successes):
    expert = load_expert(preset=preset, action_mapping="bang_bang")
    env = make_arena(preset, num_envs=10, render=False)
    episodes = list(rollout(env, expert, range(1000, 1000 + num_episodes), record_rgb=False))
    successes = sum(e.success for e in episodes)
    assert successes >= min_successes, sorted({e.termination for e in episodes})


@pytest.mark.parametrize("preset", PRESETS)
def test_vlnav_data_build_records_a_valid_file_in_the_simulator(preset, tmp_path):
    from typer.testing import CliRunner

    from vlnav_data.cli.data import app
    from vlnav_data.dataset import DatasetReader
    from vlnav_data.dataset.validate import validate_dataset

    out = tmp_path / "tiny.h5"
    args = ["--num-episodes", "2", "--encoder", "oracle", "--expert", "pursuit", "--image-size-px", "32"]
    args += ["--max-episode-steps", "20", "--num-envs", "2", "--device", "cpu", "--seed", "3"]
    result = CliRunner().invoke(app, ["build", "--out", str(out), "--preset", preset, *args])
    assert result.exit_code == 0, result.output
    assert validate_dataset(out) == []
    with DatasetReader(out) as r:
        assert r.sim_config["backend"] == get_preset(preset).backend and len(r.demo_names) == 2
        frames = r.episode(r.demo_names[0])["obs/rgb"]
        assert frames.shape[1:] == (32, 32, 3) and frames.std() > 10  # a picture, not a blank frame


def test_newton_refuses_the_light_and_floor_it_does_not_model_before_importing_newton():
    from vlnav_data.errors import ConfigError

    for field, value in (("light_jitter_m", 0.5), ("floor_rgb_jitter", 0.05)):
        with pytest.raises(ConfigError, match=rf"^the Newton backend fixes the floor colour and its light.* {field}"):
            make_arena("text2nav-newton", num_envs=1, render=False, **{field: value})
    with pytest.raises(ConfigError, match=r"^the Newton arena's light_position_m is \(1\.35, 0\.0, 2\.0\) \(fixed"):
        render_views(get_preset("text2nav-newton"), [[0.0, 0.0, 0.0]], light_position_m=[0.0, 0.0, 1.0])


@_needs("newton", "newton")
@pytest.mark.newton
def test_newton_gives_the_worlds_that_must_not_move_their_exact_joint_state_back():
    # One solver call steps every world; a world held still (a finished episode waiting for its reset) must
    # come out bit for bit as it went in (warp's .numpy() is a view of the state the substeps overwrite).
    env = make_arena("text2nav-newton", num_envs=2, render=False)
    env.reset(seed=0)
    scene = env.scene
    wq, wqd = scene._q_per_world, scene._qd_per_world
    held_q = scene.state.joint_q.numpy()[wq : 2 * wq].copy()
    held_qd = scene.state.joint_qd.numpy()[wqd : 2 * wqd].copy()
    moved_q = scene.state.joint_q.numpy()[:wq].copy()
    for _ in range(5):
        scene.advance(np.array([0]), np.array([[20.0, 20.0]]))
    np.testing.assert_array_equal(scene.state.joint_q.numpy()[wq : 2 * wq], held_q)
    np.testing.assert_array_equal(scene.state.joint_qd.numpy()[wqd : 2 * wqd], held_qd)
    assert np.abs(scene.state.joint_q.numpy()[:wq] - moved_q).max() > 0.1  # the driven world did move
