"""Renderer: pinhole geometry, apparent size, colours, occlusion, clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vlnav_data.sim import get_preset, render_views
from vlnav_data.sim.task import PALETTE_NAMES

CFG = get_preset("text2nav")
FX, FY = CFG.focal_length_px
RED = PALETTE_NAMES.index("red")


def _red_mask(img):
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r > 60) & (r > 2 * g + 20) & (r > 2 * b + 20)


def _single_sphere(pose, sphere_xy, color=RED):
    return render_views(CFG, [pose], sphere_positions_xy_m=[sphere_xy], sphere_color_indices=[color])[0]


@pytest.mark.parametrize("bearing_deg", [0.0, 20.0, -35.0, 50.0])
def test_sphere_appears_at_the_pinhole_column_in_its_own_colour(bearing_deg):
    yaw = -math.radians(bearing_deg)  # robot at the origin; the sphere at (1.5, 0) is bearing_deg to the left
    img = _single_sphere([0.0, 0.0, yaw], [1.5, 0.0])
    mask = _red_mask(img)
    assert mask.sum() > 10
    cols = np.nonzero(mask)[1]
    # Camera 0.0243 m ahead of the root; sphere in camera frame (forward, left).
    cx, cy = 0.0243 * math.cos(yaw), 0.0243 * math.sin(yaw)
    dx, dy = 1.5 - cx, 0.0 - cy
    fwd = math.cos(yaw) * dx + math.sin(yaw) * dy
    left = -math.sin(yaw) * dx + math.cos(yaw) * dy
    predicted_col = 128 - FX * left / fwd - 0.5  # pixel index whose centre is at the projection
    assert abs(0.5 * (cols.min() + cols.max()) - predicted_col) <= 2.0
    rows = np.nonzero(mask)[0]
    predicted_row = 128 - FY * (0.1 - 0.09) / fwd - 0.5
    assert abs(0.5 * (rows.min() + rows.max()) - predicted_row) <= 2.0
    centre = img[int(round(predicted_row)), int(round(predicted_col))]
    assert centre[0] > 100 and centre[1] < 60 and centre[2] < 60  # red, shaded


def test_apparent_size_falls_as_one_over_distance():
    widths = {}
    for dist in (0.5, 1.0, 2.0):
        img = _single_sphere([0.0, 0.0, 0.0], [0.0243 + dist, 0.0])
        cols = np.nonzero(_red_mask(img).any(axis=0))[0]
        widths[dist] = cols.max() - cols.min() + 1
        predicted = 2 * FX * 0.075 / math.sqrt(dist**2 - 0.075**2)
        assert abs(widths[dist] - predicted) <= 2.0, (dist, widths[dist], predicted)
    assert widths[0.5] / widths[1.0] == pytest.approx(2.0, rel=0.1)
    assert widths[1.0] / widths[2.0] == pytest.approx(2.0, rel=0.2)


def test_floor_walls_sky_and_near_clip_band_have_the_published_colours():
    img = render_views(CFG, [[0.5, 0.0, 0.0]])[0]
    floor = (np.array(CFG.floor_rgb) * 255).round()
    floor_rows = img[140:220].reshape(-1, 3)
    assert (np.abs(np.median(floor_rows, axis=0) - floor) <= 1).all()  # light blue
    assert (floor_rows.astype(int).sum(1) > floor.sum() + 30).any()  # white grid lines exist
    assert (img[:60] == 0).all()  # black sky above the 0.5 m walls
    near_band = 128 + math.ceil(0.09 * FY / 0.076)
    assert (img[near_band + 1 :] == 0).all() and not (img[near_band - 3] == 0).all()
    wall_px = img[120, 5]  # left edge, just above the horizon: the side wall
    assert wall_px[0] == wall_px[1] == wall_px[2] and 50 < wall_px[0] <= 153


def test_sphere_behind_a_wall_is_hidden_and_five_spheres_show_in_published_order():
    assert not _red_mask(_single_sphere([0.5, 0.0, 0.0], [3.0, 0.0])).any()  # beyond the x = 2.7 wall
    img = render_views(CFG, [[0.3, 0.0, 0.0]])[0]
    row = img[int(128 - FY * 0.01 / 2.2)]
    order = []
    for col in range(256):
        r, g, b = (int(v) for v in row[col])
        name = {(1, 1, 0): "yellow", (0, 1, 0): "green", (1, 0, 0): "red", (0, 0, 1): "blue", (1, 0, 1): "pink"}.get(
            (int(r > 90), int(g > 90 and g > b + 40), int(b > 90 and b > g + 40))
        )
        if name and (not order or order[-1] != name) and max(r, g, b) - min(r, g, b) > 60:
            order.append(name)
    assert order == ["yellow", "green", "red", "blue", "pink"]  # left to right, as in the published frames


@pytest.mark.slow
@pytest.mark.parametrize("sphere_xy", [(0.0643, 0.15), (0.0843, -0.15), (0.0843, 0.12)])
def test_sphere_straddling_the_camera_plane_covers_exactly_the_ray_cast_pixels(sphere_xy):
    """A sphere beside the camera (part of it behind the image plane) is drawn on exactly the pixels whose
    ray meets it in front of the near plane: a brute-force ray cast over the whole image, in float64."""
    img = _single_sphere([0.0, 0.0, 0.0], list(sphere_xy))
    background = _single_sphere([0.0, 0.0, 0.0], [-1.5, 0.0])  # same frame, sphere behind the robot
    drawn = (img != background).any(-1)
    sf, sl, su = sphere_xy[0] - 0.0243, sphere_xy[1], 0.1 - 0.09  # camera frame: forward, left, up
    assert sf - 0.075 < 0 < sf + 0.075
    left = (-(np.arange(256) + 0.5 - 128) / FX)[None, :]
    up = (-(np.arange(256) + 0.5 - 128) / FY)[:, None]
    ds, dd, ss = sf + left * sl + up * su, 1 + left**2 + up**2, sf**2 + sl**2 + su**2
    disc = ds * ds - dd * (ss - 0.075**2)
    t = (ds - np.sqrt(np.maximum(disc, 0))) / dd
    expected = (disc >= 0) & (t >= CFG.camera_near_m) & (t <= CFG.camera_far_m)
    assert expected.sum() > 50
    # Pixels whose ray grazes the sphere within float32 rounding may go either way.
    grazing = np.abs(disc) < 1e-5 * dd * ss
    assert not np.any((drawn != expected) & ~grazing), int(((drawn != expected) & ~grazing).sum())


def test_shading_in_env_chunks_equals_shading_the_whole_batch(monkeypatch):
    """The CPU shades a few envs per call (cache locality); the frames do not depend on the chunk size."""
    from vlnav_data.sim.render import batch as render

    rng = np.random.default_rng(3)
    poses = np.stack([rng.uniform(-0.2, 2.4, 11), rng.uniform(-1.4, 1.4, 11), rng.uniform(-3, 3, 11)], 1)
    monkeypatch.setattr(render, "_CPU_SHADE_PIXELS", 1 << 40)
    whole = render_views(CFG, poses)
    monkeypatch.setattr(render, "_CPU_SHADE_PIXELS", 3 * 256 * 128)  # 3 envs per call, 11 = 3 + 3 + 3 + 2
    assert len(render._env_chunks(torch.device("cpu"), 11, 256 * 128)) == 4
    np.testing.assert_array_equal(render_views(CFG, poses), whole)


def test_compiled_shaders_match_the_eager_path():
    rng = np.random.default_rng(0)
    poses = np.stack([rng.uniform(-0.2, 2.4, 8), rng.uniform(-1.4, 1.4, 8), rng.uniform(-3, 3, 8)], 1)
    eager = render_views(CFG, poses)
    compiled = render_views(CFG, poses, compile_shaders=True)
    assert np.abs(eager.astype(int) - compiled.astype(int)).max() <= 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_frames_and_states_match_cpu():
    from vlnav_data.sim import make_arena

    rng = np.random.default_rng(2)
    poses = np.stack([rng.uniform(-0.2, 2.4, 16), rng.uniform(-1.4, 1.4, 16), rng.uniform(-3, 3, 16)], 1)
    cpu = render_views(CFG, poses)
    gpu = render_views(CFG, poses, device="cuda")
    diff = np.abs(cpu.astype(int) - gpu.astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01
    envs = [make_arena("text2nav", num_envs=4, device=d) for d in ("cpu", "cuda")]
    outs = [e.reset(seed=5)[0] for e in envs]
    for _ in range(5):
        actions = rng.uniform(-1, 1, (4, 2))
        outs = [e.step(actions)[0] for e in envs]
    np.testing.assert_allclose(outs[0]["privileged_state"], outs[1]["privileged_state"], atol=1e-5)
