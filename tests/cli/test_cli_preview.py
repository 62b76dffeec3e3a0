"""`vlnav-data preview`: writes a PNG and result.json; bad input is one `error:` line and exit code 2."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.sim import get_preset, make_arena, rollout, sample_episode_start
from vlnav_data.sim.preview import steer_to_target

runner = CliRunner()


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def _frame_boxes(img: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(x0, x1, y0, y1)`` of the first-person frames on a sheet: the tall drawn column blocks, left to right."""
    drawn = img.min(axis=2) < 235  # not the white figure background
    cols = np.flatnonzero(drawn.sum(axis=0) > 0.3 * img.shape[0])
    boxes = []
    for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1):
        if len(run) > 100:  # a frame, not an axis line of the map
            rows = np.flatnonzero(drawn[:, run[0] : run[-1] + 1].mean(axis=1) > 0.9)
            boxes.append((int(run[0]), int(run[-1]), int(rows[0]), int(rows[-1])))
    return boxes


def _target_in_view(config, state, start) -> tuple[float, float] | None:
    """Pinhole projection ``(u, v)`` in frame pixels of the target's centre, None when it is behind the camera."""
    x, y, cos_yaw, sin_yaw = (float(v) for v in state[:4])
    cx, cy = x + config.camera_forward_offset_m * cos_yaw, y + config.camera_forward_offset_m * sin_yaw
    dx, dy = start.sphere_positions_xy_m[start.target_index] - np.array([cx, cy])
    forward, left = dx * cos_yaw + dy * sin_yaw, -dx * sin_yaw + dy * cos_yaw
    if forward <= 0:
        return None
    fx, fy = config.focal_length_px
    up = config.sphere_height_m - config.camera_height_m
    return config.image_width_px / 2 - fx * left / forward, config.image_height_px / 2 - fy * up / forward


def test_preview_shows_the_target_where_the_camera_geometry_puts_it(tmp_path):
    out = tmp_path / "sheet" / "preview.png"
    res = runner.invoke(app, ["preview", "--preset", "text2nav", "--seed", "3", "--out", str(out), "--num-frames", "2"])
    assert res.exit_code == 0, res.output
    result = json.loads((out.parent / "preview.png.result.json").read_text())
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.png", "preview.png.result.json"]
    config = get_preset("text2nav")
    start = sample_episode_start(config, 3)
    assert result["target_color"] == start.target_color == "pink"
    assert result["frame_steps"][0] == 0 and len(result["frame_steps"]) == 2
    assert result["frame_steps"][-1] == result["num_steps"] - 1
    assert f"wrote {out}" in res.stdout
    # The episode again (the preview's steering rule, state only): the robot's state at each drawn step.
    episode = next(rollout(make_arena(config, num_envs=1, render=False), steer_to_target, [3]))
    assert (episode.num_steps, str(episode.termination)) == (result["num_steps"], result["termination"])
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    boxes = _frame_boxes(img)
    assert len(boxes) == 2
    pink = (img[..., 0] > 120) & (img[..., 2] > 120) & (img[..., 1] < 60)  # the pink sphere, shaded
    for (x0, x1, y0, y1), step in zip(boxes, result["frame_steps"], strict=True):
        where = _target_in_view(config, episode.privileged_state[step], start)
        inside = where is not None and 0 <= where[0] < config.image_width_px and 0 <= where[1] < config.image_height_px
        if inside:  # the target's colour at the projected centre, scaled from frame pixels to the sheet's
            px = x0 + where[0] / config.image_width_px * (x1 - x0 + 1)
            py = y0 + where[1] / config.image_height_px * (y1 - y0 + 1)
            assert pink[int(py), int(px)], (step, img[int(py), int(px)])
        else:  # the target is outside the field of view: no pink pixel in the frame
            assert not pink[y0 : y1 + 1, x0 : x1 + 1].any(), step
    # Seed 3 starts with the target to the right, out of view, and ends facing it.
    assert result["instructions"][0].endswith("to your right. Move toward the ball.")


def test_preview_unknown_preset_is_one_error_line(tmp_path):
    res = runner.invoke(app, ["preview", "--preset", "text2nva", "--out", str(tmp_path / "p.png")])
    assert _error(res) == (
        "error: unknown preset 'text2nva'; expected one of: text2nav, text2nav-isaaclab, text2nav-mujoco, "
        "text2nav-newton, "
        "text2nav-random, text2nav-velocity. Did you mean 'text2nav'?"
    )


def test_preview_rejects_bad_frames_and_suffix(tmp_path):
    res = runner.invoke(app, ["preview", "--num-frames", "0", "--out", str(tmp_path / "p.png")])
    assert _error(res) == "error: num_frames must be an integer in [1, 24], got 0"
    res = runner.invoke(app, ["preview", "--out", str(tmp_path / "p.jpg")])
    assert _error(res) == f"error: out must be a .png path, got '{tmp_path / 'p.jpg'}'"
