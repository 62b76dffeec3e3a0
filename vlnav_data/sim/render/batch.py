"""Batched first-person renderer of the arena (pure PyTorch, CPU or CUDA).

The camera is level, which makes the scene separable:

* **floor**: every pixel row below the horizon looks at the floor at one depth ``t_v = h·fy / (v - H/2)``;
  the floor point of pixel ``(v, u)`` is ``c + t_v·(a_u, b_u)`` with a per-column direction, so floor
  coordinates are an outer product (no ray casting). Grid lines are box-filtered analytically with the
  pixel footprint (no aliasing or moiré at a distance).
* **walls**: every column's ray is intersected with the wall segments once (``N×W`` 2×2 solves); a
  column shows the wall between two rows given by the wall depth, the floor below, black sky above.
* **spheres**: ray-traced inside the projection of their bounding cubes, drawn last
  (``sim/render/spheres.py``).

Near/far clipping follows the published camera (0.076 m, 10 m): floor closer than the near plane is
not drawn, which leaves a black band at the bottom of the frame, as in the published sample frames.

This module holds the floor/wall/sky pixel shaders (each written once; the caller runs it as written or
through ``torch.compile``), ``render_batch`` and ``render_views_builtin``. The scene and camera constants are
in ``sim/render/scene.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.render.scene import Scene, camera, default_scene, scene_from_arrays
from vlnav_data.sim.render.spheres import draw_spheres


def _wall_hits(config: ArenaConfig, cx, cy, dir_x, dir_y) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth ``(N, W)`` of the first wall along each column ray (inf: none) and its segment index.

    Walls closer than the near plane or beyond the far plane are clipped (not drawn), like the camera's.
    """
    n, w = dir_x.shape
    near, far = config.camera_near_m, config.camera_far_m
    best = torch.full((n, w), torch.inf, device=dir_x.device)
    best_idx = torch.zeros((n, w), dtype=torch.long, device=dir_x.device)
    for i, (x0, y0, x1, y1) in enumerate(config.wall_segments_xy_m):
        ex, ey = x1 - x0, y1 - y0
        qx, qy = (x0 - cx)[:, None], (y0 - cy)[:, None]
        det = ex * dir_y - ey * dir_x
        safe = torch.where(det.abs() > 1e-12, det, torch.full_like(det, 1e-12))
        t = (ex * qy - ey * qx) / safe
        s = (dir_x * qy - dir_y * qx) / safe
        ok = (det.abs() > 1e-12) & (t >= near) & (t <= far) & (s >= 0) & (s <= 1) & (t < best)
        best = torch.where(ok, t, best)
        best_idx = torch.where(ok, torch.full_like(best_idx, i), best_idx)
    return best, best_idx


def _line_coverage(e: torch.Tensor, fp: torch.Tensor, half_width: float) -> torch.Tensor:
    """Box-filtered coverage of a grid line.

    ``e`` is the distance to the nearest line and ``fp`` the pixel footprint, both in grid cells; the
    overlap of ``[e - fp/2, e + fp/2]`` with ``[-hw, hw]`` divided by ``fp``.
    """
    return (half_width + 0.5 * fp - e).clamp(min=0.0).minimum(fp.clamp(max=2.0 * half_width)) / fp


def _lower_shader(
    depth: torch.Tensor,
    up: torch.Tensor,
    fp_row: torch.Tensor,
    fp_depth: torch.Tensor,
    qx0: torch.Tensor,
    qy0: torch.Tensor,
    ax: torch.Tensor,
    ay: torch.Tensor,
    sx: torch.Tensor,
    sy: torch.Tensor,
    wall_t: torch.Tensor,
    wall_bottom: torch.Tensor,
    wall_rgb: torch.Tensor,
    floor_base: torch.Tensor,
    sky: torch.Tensor,
    half_width: float,
) -> torch.Tensor:
    """Colour of the rows below the horizon: floor with grid, wall or sky.

    Written with fused and in-place ops (about 1.7x fewer memory passes than the plain functional form when
    run eagerly); ``torch.compile`` fuses the same function when the caller asks for compiled shaders.

    Shapes (R rows, W columns, N envs; grid quantities in cells of ``floor_grid_spacing_m``):
        depth, up, fp_row, fp_depth: ``(1, R, 1)`` floor depth (inf: no floor), ray up-slope, lateral and
            depth-wise footprint factors. qx0, qy0, sx, sy: ``(N, 1, 1)``. ax, ay, wall_t, wall_bottom:
            ``(N, 1, W)``. wall_rgb: ``(N, 1, W, 3)``; floor_base: ``(N, 1, 1, 3)``; sky: ``(3,)``.

    Returns:
        uint8 ``(N, R, W, 3)``.
    """
    finite = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))

    def coverage(q0: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        q = torch.addcmul(q0, finite, a)
        e = q.sub_(torch.round(q)).abs_()
        fp = torch.addcmul(fp_row * s, fp_depth, a.abs()).clamp_(min=1e-6)
        cap = fp.clamp(max=2.0 * half_width)
        num = torch.add(e, fp, alpha=-0.5).neg_().add_(half_width).clamp_(min=0.0)
        return torch.minimum(num, cap, out=num).div_(fp)

    cov_x = coverage(qx0, ax, sx)
    cov_y = coverage(qy0, ay, sy)
    alpha = torch.addcmul(cov_x + cov_y, cov_x, cov_y, value=-1.0)
    floor = depth < wall_t
    wall = (~floor) & (up >= wall_bottom)
    out = torch.empty((*alpha.shape, 3), dtype=torch.uint8, device=alpha.device)
    for c in range(3):
        base = floor_base[..., c].contiguous()
        floor_c = torch.addcmul(base, alpha, 255.0 - base)
        other = torch.where(wall, wall_rgb[..., c].contiguous(), sky[c])
        out[..., c] = torch.where(floor, floor_c, other).round_()
    return out


def _upper_shader(up: torch.Tensor, wall_top: torch.Tensor, wall_rgb: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Rows at or above the horizon: wall where ``up <= wall_top`` (up-slope of the top edge), else sky.

    Shapes: up ``(1, R, 1)``, wall_top ``(N, 1, W)``, wall_rgb ``(N, 1, W, 3)``; returns uint8 ``(N, R, W, 3)``.
    The per-column colours are rounded once and selected per channel.
    """
    wall = up <= wall_top
    wall_u8 = wall_rgb.round().to(torch.uint8)
    sky_u8 = sky.round().to(torch.uint8)
    out = torch.empty((*wall.shape, 3), dtype=torch.uint8, device=wall.device)
    for c in range(3):
        out[..., c] = torch.where(wall, wall_u8[..., c].contiguous(), sky_u8[c])
    return out


_COMPILED: dict[str, object] = {}

# Pixels shaded per call on the CPU. The shaders are chains of elementwise passes; on the CPU they are
# bound by memory traffic, so the batch is shaded a few envs at a time, keeping every temporary in the
# L2 cache (measured on the 2-core CI machine: 8-16 envs of 256x256 per call shade about 1.4x faster at
# N=64 and 3.4x at N=1024 than the whole batch at once). On CUDA one call shades the whole batch.
_CPU_SHADE_PIXELS = 1 << 18


def _env_chunks(device: torch.device, num_envs: int, pixels_per_env: int) -> list[slice]:
    """Env slices to shade per call: the whole batch on an accelerator, ~``_CPU_SHADE_PIXELS`` on the CPU."""
    if device.type != "cpu":
        return [slice(0, num_envs)]
    step = max(1, _CPU_SHADE_PIXELS // max(1, pixels_per_env))
    return [slice(s, min(s + step, num_envs)) for s in range(0, num_envs, step)]


_SHADERS = {"lower": _lower_shader, "upper": _upper_shader}


def _shader(name: str, compile_shaders: bool):
    """The shader ``name`` as written, or the same function through ``torch.compile`` (compiled once)."""
    if not compile_shaders:
        return _SHADERS[name]
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(_SHADERS[name], dynamic=True)
    return _COMPILED[name]


def warm_up_compiled(config: ArenaConfig, device: torch.device | str, num_envs: int) -> float:
    """Compile the shaders for ``config`` on ``device`` now; return the seconds it took.

    ``torch.compile`` compiles at the first call, and again for the batch sizes its dynamic shapes
    specialise (one env); rendering ``num_envs``, 1 and 2 frames here, before a command starts its clock,
    keeps that time out of the frames/s it reports.
    """
    import time

    start = time.perf_counter()
    for n in sorted({max(1, int(num_envs)), 1, 2}):
        poses = torch.zeros((n, 3), dtype=torch.float64, device=device)
        render_batch(config, poses, default_scene(config, n, device), compile_shaders=True)
    return time.perf_counter() - start


def render_batch(
    config: ArenaConfig, poses: torch.Tensor, scene: Scene, *, compile_shaders: bool = False
) -> torch.Tensor:
    """Render first-person RGB frames on the poses' device.

    Args:
        config: Arena config (camera, walls, floor, grid, light, sky).
        poses: ``(N, 3)`` ``[x_m, y_m, yaw_rad]`` (any float dtype).
        scene: Per-env sphere layout, floor colour and light.
        compile_shaders: Run the per-pixel floor/wall/sky shaders through ``torch.compile`` (one fused
            loop per pixel; whole frames about 1.3x the eager path on the 2-core CPU, see
            bench/RESULTS.md; needs a C++ compiler or Triton; the first call compiles for up to a
            minute, later processes reuse the on-disk cache). Frames may differ from the eager path
            by one intensity level where rounding falls differently.

    Returns:
        uint8 tensor ``(N, H, W, 3)`` on the poses' device.
    """
    device = poses.device
    cam = camera(config, str(device))
    n = poses.shape[0]
    h_px, w_px = config.image_height_px, config.image_width_px
    h0 = cam.first_floor_row
    hc = config.camera_height_m
    p = poses.to(torch.float32)
    cos_t, sin_t = torch.cos(p[:, 2]), torch.sin(p[:, 2])
    cx = p[:, 0] + config.camera_forward_offset_m * cos_t
    cy = p[:, 1] + config.camera_forward_offset_m * sin_t
    lu = cam.left_per_col[None, :]
    dir_x = cos_t[:, None] - lu * sin_t[:, None]  # (N, W) world ray per unit depth
    dir_y = sin_t[:, None] + lu * cos_t[:, None]

    # Walls: one intersection per column, Lambert-shaded per column.
    wall_t, wall_idx = _wall_hits(config, cx, cy, dir_x, dir_y)
    has_wall = torch.isfinite(wall_t)
    seg = cam.walls[wall_idx]  # (N, W, 4)
    nx, ny = -(seg[..., 3] - seg[..., 1]), seg[..., 2] - seg[..., 0]
    norm = torch.sqrt(nx * nx + ny * ny).clamp_min(1e-12)
    nx, ny = nx / norm, ny / norm
    t_safe = torch.where(has_wall, wall_t, torch.zeros_like(wall_t))
    hit_x = cx[:, None] + t_safe * dir_x
    hit_y = cy[:, None] + t_safe * dir_y
    face = torch.sign((cx[:, None] - hit_x) * nx + (cy[:, None] - hit_y) * ny)  # normal towards the camera
    light = scene.light_position.to(device, torch.float32)
    lx = light[:, 0:1] - hit_x
    ly = light[:, 1:2] - hit_y
    lz = light[:, 2:3] - 0.5 * config.wall_height_m
    lam = ((nx * lx + ny * ly) * face / torch.sqrt(lx * lx + ly * ly + lz * lz)).clamp_min(0.0)
    amb = config.ambient_light
    wall_rgb = cam.wall_rgb
    wall_col = ((amb + (1 - amb) * lam)[..., None] * wall_rgb * 255.0)[:, None]  # (N, 1, W, 3)
    sky = cam.sky_255
    inv_t = torch.where(has_wall, 1.0 / t_safe.clamp_min(1e-9), torch.zeros_like(wall_t))
    wall_top = torch.where(has_wall, (config.wall_height_m - hc) * inv_t, torch.full_like(wall_t, -torch.inf))
    wall_bottom = torch.where(has_wall, -hc * inv_t, torch.full_like(wall_t, torch.inf))

    # One spare pixel after the frames: sphere candidates that are not drawn are written there (see draw_spheres).
    storage = torch.empty((n * h_px * w_px + 1, 3), dtype=torch.uint8, device=device)
    image = storage[:-1].view(n, h_px, w_px, 3)
    up = cam.up_per_row
    upper = _shader("upper", compile_shaders)
    for e in _env_chunks(device, n, h0 * w_px):
        image[e, :h0] = upper(up[None, :h0, None], wall_top[e, None, :], wall_col[e], sky)
    spacing = config.floor_grid_spacing_m
    # Rows below h1 look at floor closer than the near plane: nothing is drawn there (sky colour).
    h1 = h0 + cam.num_lower_rows
    depth = cam.floor_depth_lower[: h1 - h0]
    finite = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
    floor_base = scene.floor_rgb.to(device, torch.float32)[:, None, None, :] * 255.0
    image[:, h1:] = sky.round().to(torch.uint8)
    lower = _shader("lower", compile_shaders)
    row_args = (
        depth[None, :, None],
        up[None, h0:h1, None],
        (finite / (cam.fx * spacing))[None, :, None],
        (finite * finite / (hc * cam.fy))[None, :, None],
    )
    env_args = (
        (cx / spacing)[:, None, None],
        (cy / spacing)[:, None, None],
        (dir_x / spacing)[:, None, :],
        (dir_y / spacing)[:, None, :],
        sin_t.abs()[:, None, None],
        cos_t.abs()[:, None, None],
        wall_t[:, None, :],
        wall_bottom[:, None, :],
        wall_col,
        floor_base,
    )
    half_width = 0.5 * config.floor_grid_line_width_m / spacing
    for e in _env_chunks(device, n, (h1 - h0) * w_px):
        image[e, h0:h1] = lower(*row_args, *(a[e] for a in env_args), sky, half_width)
    draw_spheres(config, cam, storage, image.shape, cx, cy, cos_t, sin_t, wall_t, scene, light)
    return image


def render_views_builtin(
    config: ArenaConfig,
    poses: object,
    *,
    device: str | torch.device = "cpu",
    compile_shaders: bool = False,
    **scene_arrays: object,
) -> np.ndarray:
    """Render first-person frames of the built-in arena for given poses (pure function of its arguments).

    This is the ``builtin`` backend's renderer; :func:`vlnav_data.sim.render_views` dispatches on
    ``config.backend`` and documents the arguments. ``scene_arrays`` are :func:`scene_from_arrays`'s
    (``sphere_positions_xy_m``, ``sphere_color_indices``, ``floor_rgb``, ``light_position_m``).

    Returns:
        uint8 numpy ``(N, H, W, 3)``.

    Raises:
        ConfigError: poses not ``(N, 3)`` or not finite; malformed scene arrays.
    """
    pose_t = torch.as_tensor(np.asarray(poses, dtype=np.float64), device=device)
    if pose_t.ndim != 2 or pose_t.shape[1] != 3:
        raise ConfigError(f"poses must have shape (N, 3) = [x_m, y_m, yaw_rad], got {tuple(pose_t.shape)}")
    if not bool(torch.isfinite(pose_t).all()):
        raise ConfigError("poses must be finite numbers, got NaN or inf")
    scene = scene_from_arrays(config, pose_t.shape[0], device, **scene_arrays)
    return render_batch(config, pose_t, scene, compile_shaders=compile_shaders).cpu().numpy()
