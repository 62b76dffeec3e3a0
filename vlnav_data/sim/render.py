"""Batched first-person renderer of the arena (pure PyTorch, CPU or CUDA).

The camera is level, which makes the scene separable:

* **floor**: every pixel row below the horizon looks at the floor at one depth ``t_v = h·fy / (v - H/2)``;
  the floor point of pixel ``(v, u)`` is ``c + t_v·(a_u, b_u)`` with a per-column direction, so floor
  coordinates are an outer product (no ray casting). Grid lines are box-filtered analytically with the
  pixel footprint (no aliasing or moiré at a distance).
* **walls**: every column's ray is intersected with the wall segments once (``N×W`` 2×2 solves); a
  column shows the wall between two rows given by the wall depth, the floor below, black sky above.
* **spheres**: each sphere is bounded by the projection of its bounding cube; only pixels inside that
  box are tested with the exact ray-sphere equation, whose terms are sums of a column part and a row
  part. Hits are shaded (Lambert + a small Blinn-Phong highlight from the point light), depth-tested
  against the walls and against each other (a z-buffer by ``scatter_reduce``).

Near/far clipping follows the published camera (0.076 m, 10 m): floor closer than the near plane is
not drawn, which leaves a black band at the bottom of the frame, as in the published sample frames.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim import transfer
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.task import PALETTE_NAMES, PALETTE_RGB

_SPECULAR_WEIGHT = 0.25
_SPECULAR_EXPONENT = 24.0


@dataclass(frozen=True)
class Scene:
    """Per-env scene tensors (all on the render device).

    Attributes:
        sphere_xy: float32 ``(N, K, 2)`` sphere centres.
        sphere_rgb: float32 ``(N, K, 3)`` sphere colours in [0, 1].
        floor_rgb: float32 ``(N, 3)`` floor colours.
        light_position: float32 ``(N, 3)`` light positions.
    """

    sphere_xy: torch.Tensor
    sphere_rgb: torch.Tensor
    floor_rgb: torch.Tensor
    light_position: torch.Tensor


@dataclass(frozen=True)
class _Camera:
    """Per-(config, device) constants of the pinhole camera."""

    left_per_col: torch.Tensor  # (W,) left component of the column ray per unit depth
    up_per_row: torch.Tensor  # (H,) up component of the row ray per unit depth
    floor_depth_lower: torch.Tensor  # (H - H0,) floor depth of rows H0.. (inf when not on the floor)
    first_floor_row: int  # H0: first row whose centre looks below the horizon
    num_lower_rows: int  # rows H0.. that can show floor or wall (below them the floor is near-clipped)
    walls: torch.Tensor  # (S, 4) wall segments
    wall_rgb: torch.Tensor  # (3,) wall colour in [0, 1]
    sky_255: torch.Tensor  # (3,) sky colour in [0, 255] (constants made once: a host->device copy syncs on CUDA)
    fx: float
    fy: float


@functools.lru_cache(maxsize=16)
def _camera(config: ArenaConfig, device: str) -> _Camera:
    h_px, w_px = config.image_height_px, config.image_width_px
    fx, fy = config.focal_length_px
    u = torch.arange(w_px, dtype=torch.float64) + 0.5
    v = torch.arange(h_px, dtype=torch.float64) + 0.5
    left = -(u - 0.5 * w_px) / fx
    up = -(v - 0.5 * h_px) / fy
    first_floor = int((up >= 0).sum())
    depth = config.camera_height_m / (-up[first_floor:])
    num_lower = int((depth >= config.camera_near_m).sum())  # depth decreases with the row index
    depth = torch.where(
        (depth >= config.camera_near_m) & (depth <= config.camera_far_m), depth, torch.full_like(depth, torch.inf)
    )
    dev = torch.device(device)
    return _Camera(
        left_per_col=left.to(dev, torch.float32),
        up_per_row=up.to(dev, torch.float32),
        floor_depth_lower=depth.to(dev, torch.float32),
        first_floor_row=first_floor,
        num_lower_rows=num_lower,
        # (S, 4); a dummy segment when there are no walls (never hit: wall depth stays inf).
        walls=torch.tensor(config.wall_segments_xy_m or ((0.0, 0.0, 1.0, 0.0),), dtype=torch.float32, device=dev),
        wall_rgb=torch.tensor(config.wall_rgb, dtype=torch.float32, device=dev),
        sky_255=torch.tensor(config.sky_rgb, dtype=torch.float32, device=dev) * 255.0,
        fx=fx,
        fy=fy,
    )


def default_scene(config: ArenaConfig, num_envs: int, device: torch.device | str = "cpu") -> Scene:
    """The config's fixed layout (sphere positions/colours, floor, light) broadcast to ``num_envs``."""
    xy = torch.tensor(config.sphere_positions_xy_m, dtype=torch.float32, device=device)
    rgb = torch.as_tensor(PALETTE_RGB[[PALETTE_NAMES.index(c) for c in config.sphere_colors]], device=device)
    return Scene(
        sphere_xy=xy.expand(num_envs, -1, -1),
        sphere_rgb=rgb.expand(num_envs, -1, -1),
        floor_rgb=torch.tensor(config.floor_rgb, dtype=torch.float32, device=device).expand(num_envs, -1),
        light_position=torch.tensor(config.light_position_m, dtype=torch.float32, device=device).expand(num_envs, -1),
    )


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
    """Colour of the rows below the horizon: floor with grid, wall or sky (fusible by torch.compile).

    Shapes (R rows, W columns, N envs; grid quantities in cells of ``floor_grid_spacing_m``):
        depth, up, fp_row, fp_depth: ``(1, R, 1)`` floor depth (inf: no floor), ray up-slope, lateral and
            depth-wise footprint factors. qx0, qy0, sx, sy: ``(N, 1, 1)``. ax, ay, wall_t, wall_bottom:
            ``(N, 1, W)``. wall_rgb: ``(N, 1, W, 3)``; floor_base: ``(N, 1, 1, 3)``; sky: ``(3,)``.

    Returns:
        uint8 ``(N, R, W, 3)``.
    """
    finite = torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth))
    qx = qx0 + finite * ax
    qy = qy0 + finite * ay
    fpx = (fp_row * sx + fp_depth * ax.abs()).clamp(min=1e-6)
    fpy = (fp_row * sy + fp_depth * ay.abs()).clamp(min=1e-6)
    cov_x = _line_coverage((qx - qx.round()).abs(), fpx, half_width)
    cov_y = _line_coverage((qy - qy.round()).abs(), fpy, half_width)
    alpha = cov_x + cov_y - cov_x * cov_y
    floor = depth < wall_t
    wall = (~floor) & (up >= wall_bottom)
    floor_rgb = floor_base + alpha[..., None] * (255.0 - floor_base)
    rgb = torch.where(floor[..., None], floor_rgb, torch.where(wall[..., None], wall_rgb, sky))
    return rgb.round().to(torch.uint8)


def _lower_shader_inplace(
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
    """Eager twin of :func:`_lower_shader` with fused/in-place ops (about 1.7x fewer memory passes).

    Same arguments and result (up to one intensity level of rounding); ``torch.compile`` uses the
    functional version, which it fuses into a single loop.
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
    """
    wall = up <= wall_top
    return torch.where(wall[..., None], wall_rgb, sky).round().to(torch.uint8)


def _upper_shader_inplace(
    up: torch.Tensor, wall_top: torch.Tensor, wall_rgb: torch.Tensor, sky: torch.Tensor
) -> torch.Tensor:
    """Eager twin of :func:`_upper_shader` (rounds the per-column colours once, selects per channel)."""
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


def _shader(name: str, compile_shaders: bool):
    if not compile_shaders:
        return {"lower": _lower_shader_inplace, "upper": _upper_shader_inplace}[name]
    fn = {"lower": _lower_shader, "upper": _upper_shader}[name]
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=True)
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
    cam = _camera(config, str(device))
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

    # One spare pixel after the frames: sphere candidates that are not drawn are written there (see _draw_spheres).
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
    _draw_spheres(config, cam, storage, image.shape, cx, cy, cos_t, sin_t, wall_t, scene, light)
    return image


def _draw_spheres(
    config: ArenaConfig,
    cam: _Camera,
    storage: torch.Tensor,
    shape: torch.Size,
    cx: torch.Tensor,
    cy: torch.Tensor,
    cos_t: torch.Tensor,
    sin_t: torch.Tensor,
    wall_t: torch.Tensor,
    scene: Scene,
    light: torch.Tensor,
) -> None:
    """Ray-trace the spheres inside their projected bounding boxes and write hits into the frames.

    ``storage`` holds the ``shape`` = ``(N, H, W, 3)`` frames followed by one spare pixel. The only host read is
    the number of candidate pixels (the size of the arrays below); hits and depth-test winners are selected
    with masks, not ``nonzero()`` (each of which would be another read): every candidate is shaded, and the
    ones not drawn are written to the spare pixel.
    """
    device = storage.device
    n, h_px, w_px, _ = shape
    r = config.sphere_radius_m
    hc = config.camera_height_m
    sxy = scene.sphere_xy.to(device, torch.float32)
    k = sxy.shape[1]
    dx = sxy[..., 0] - cx[:, None]
    dy = sxy[..., 1] - cy[:, None]
    sf = cos_t[:, None] * dx + sin_t[:, None] * dy  # (N, K) camera-frame forward
    sl = -sin_t[:, None] * dx + cos_t[:, None] * dy  # left
    su = torch.full_like(sf, config.sphere_height_m - hc)  # up
    # Conservative pixel box: project the 8 corners of the camera-frame bounding cube, clipped to the near
    # plane (only hits at depth >= near are drawn, and the projection of a convex solid in front of the
    # camera is bounded by the projections of its corners). A sphere beside the camera therefore gets a
    # box at the image edge, not the whole image.
    near = config.camera_near_m
    visible = (sf + r) > near
    fx, fy = cam.fx, cam.fy
    fs = torch.stack([(sf - r).clamp_min(near), (sf + r).clamp_min(near)], -1)[..., :, None]  # (N, K, 2, 1)
    ls = torch.stack([sl - r, sl + r], -1)[..., None, :]  # (N, K, 1, 2)
    us = torch.stack([su - r, su + r], -1)[..., None, :]
    ucorner = 0.5 * w_px - fx * ls / fs
    vcorner = 0.5 * h_px - fy * us / fs
    u0 = (ucorner.amin((-1, -2)).floor() - 1).clamp(0, w_px)
    u1 = (ucorner.amax((-1, -2)).ceil() + 1).clamp(0, w_px)
    v0 = (vcorner.amin((-1, -2)).floor() - 1).clamp(0, h_px)
    v1 = (vcorner.amax((-1, -2)).ceil() + 1).clamp(0, h_px)
    bw = (u1 - u0).long()
    bh = (v1 - v0).long()
    counts = torch.where(visible, bw * bh, torch.zeros_like(bw)).reshape(-1)  # (N*K,)
    total = int(transfer.to_host(counts.sum()))
    if total == 0:
        return
    owner = torch.repeat_interleave(torch.arange(n * k, device=device), counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(total, device=device) - starts[owner]
    bw_f, u0_f, v0_f = bw.reshape(-1)[owner], u0.long().reshape(-1)[owner], v0.long().reshape(-1)[owner]
    col = u0_f + local % bw_f
    row = v0_f + torch.div(local, bw_f, rounding_mode="floor")
    env = torch.div(owner, k, rounding_mode="floor")
    # Exact ray-sphere test; the ray per unit depth is (1, left_u, up_v).
    lu = cam.left_per_col[col]
    uv = cam.up_per_row[row]
    s_f, s_l, s_u = sf.reshape(-1)[owner], sl.reshape(-1)[owner], su.reshape(-1)[owner]
    ds = s_f + lu * s_l + uv * s_u
    dd = 1.0 + lu * lu + uv * uv
    ss = s_f * s_f + s_l * s_l + s_u * s_u
    disc = ds * ds - dd * (ss - r * r)
    t = (ds - torch.sqrt(disc.clamp_min(0.0))) / dd
    hit = (disc >= 0) & (t >= config.camera_near_m) & (t <= config.camera_far_m)
    # Walls occlude when they are closer and the ray at the wall depth is within the wall height.
    wt = wall_t[env, col]
    z_at_wall = hc + uv * wt.clamp(max=1e6)
    occluded = (wt < t) & (z_at_wall >= 0) & (z_at_wall <= config.wall_height_m)
    hit &= ~occluded
    pix = (env * h_px + row) * w_px + col
    zbuf = torch.full((n * h_px * w_px,), torch.inf, device=device)
    zbuf.scatter_reduce_(0, pix, torch.where(hit, t, torch.full_like(t, torch.inf)), reduce="amin")
    front = hit & (t <= zbuf[pix])
    # Shading in the camera frame (forward, left, up).
    pf, pl, pu = t, t * lu, t * uv
    nf = (pf - sf.reshape(-1)[owner]) / r
    nl = (pl - sl.reshape(-1)[owner]) / r
    nu = (pu - su.reshape(-1)[owner]) / r
    ldx = light[env, 0] - cx[env]
    ldy = light[env, 1] - cy[env]
    lf = cos_t[env] * ldx + sin_t[env] * ldy - pf
    ll = -sin_t[env] * ldx + cos_t[env] * ldy - pl
    lz = light[env, 2] - hc - pu
    lnorm = torch.sqrt(lf * lf + ll * ll + lz * lz)
    lf, ll, lz = lf / lnorm, ll / lnorm, lz / lnorm
    lam = (nf * lf + nl * ll + nu * lz).clamp_min(0.0)
    vnorm = torch.sqrt(pf * pf + pl * pl + pu * pu)
    hf, hl, hz = lf - pf / vnorm, ll - pl / vnorm, lz - pu / vnorm
    hnorm = torch.sqrt(hf * hf + hl * hl + hz * hz).clamp_min(1e-9)
    spec = ((nf * hf + nl * hl + nu * hz) / hnorm).clamp_min(0.0) ** _SPECULAR_EXPONENT
    amb = config.ambient_light
    base = scene.sphere_rgb.to(device, torch.float32).reshape(-1, 3)[owner]
    rgb = base * (amb + (1 - amb) * lam)[:, None] + (_SPECULAR_WEIGHT * spec)[:, None]
    spare = torch.full_like(pix, n * h_px * w_px)
    storage[torch.where(front, pix, spare)] = (rgb.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def scene_from_arrays(
    config: ArenaConfig,
    num_envs: int,
    device: torch.device | str,
    sphere_positions_xy_m: object = None,
    sphere_color_indices: object = None,
    floor_rgb: object = None,
    light_position_m: object = None,
) -> Scene:
    """Build a :class:`Scene`, filling what is not given from the config's fixed layout.

    Args:
        sphere_positions_xy_m: ``(K, 2)`` or ``(N, K, 2)`` centres.
        sphere_color_indices: ``(K,)`` or ``(N, K)`` indices into the palette order.
        floor_rgb: ``(3,)`` or ``(N, 3)``.
        light_position_m: ``(3,)`` or ``(N, 3)``.
    """
    base = default_scene(config, num_envs, device)

    def batch(value: object, tail: tuple[int, ...], name: str, dtype=torch.float32) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(value), device=device, dtype=dtype)
        if t.ndim == len(tail):
            t = t.expand(num_envs, *t.shape)
        bad_tail = any(a != b for a, b in zip(t.shape[1:], tail, strict=False) if b)
        if t.ndim != len(tail) + 1 or t.shape[0] != num_envs or bad_tail:
            raise ConfigError(f"{name} must have shape {tail} or ({num_envs}, *{tail}), got {tuple(t.shape)}")
        return t

    xy = base.sphere_xy if sphere_positions_xy_m is None else batch(sphere_positions_xy_m, (0, 2), "sphere_positions")
    if sphere_color_indices is None:
        if xy.shape[1] != base.sphere_rgb.shape[1]:
            raise ConfigError(f"sphere_color_indices is required for {xy.shape[1]} custom sphere positions")
        rgb = base.sphere_rgb
    else:
        ci = batch(sphere_color_indices, (xy.shape[1],), "sphere_color_indices", torch.long)
        if bool(((ci < 0) | (ci >= len(PALETTE_NAMES))).any()):
            raise ConfigError(f"sphere_color_indices must be in [0, {len(PALETTE_NAMES)}), got {ci.tolist()}")
        rgb = torch.as_tensor(PALETTE_RGB, device=device)[ci]
    floor = base.floor_rgb if floor_rgb is None else batch(floor_rgb, (3,), "floor_rgb")
    light = base.light_position if light_position_m is None else batch(light_position_m, (3,), "light_position_m")
    return Scene(sphere_xy=xy, sphere_rgb=rgb, floor_rgb=floor, light_position=light)


def render_views(
    config: ArenaConfig,
    poses: object,
    *,
    sphere_positions_xy_m: object = None,
    sphere_color_indices: object = None,
    floor_rgb: object = None,
    light_position_m: object = None,
    device: str | torch.device = "cpu",
    compile_shaders: bool = False,
) -> np.ndarray:
    """Render first-person frames for given poses (pure function of its arguments).

    Args:
        config: Arena config.
        poses: ``(N, 3)`` array-like ``[x_m, y_m, yaw_rad]``.
        sphere_positions_xy_m: Optional ``(K, 2)`` / ``(N, K, 2)`` layout (default: the config's).
        sphere_color_indices: Optional ``(K,)`` / ``(N, K)`` palette indices (needed with custom K).
        floor_rgb: Optional ``(3,)`` / ``(N, 3)`` floor colour.
        light_position_m: Optional ``(3,)`` / ``(N, 3)`` light position.
        device: Torch device to render on.
        compile_shaders: Use the ``torch.compile``-d pixel shaders (see :func:`render_batch`).

    Returns:
        uint8 numpy ``(N, H, W, 3)``.

    Raises:
        ConfigError: poses not ``(N, 3)`` or not finite; malformed scene arrays.
    """
    if config.backend == "mujoco":  # the same views from the MuJoCo arena (robot at rest at each pose)
        from vlnav_data.sim.mujoco import render_views_mujoco

        return render_views_mujoco(
            config,
            poses,
            sphere_positions_xy_m=sphere_positions_xy_m,
            sphere_color_indices=sphere_color_indices,
            floor_rgb=floor_rgb,
            light_position_m=light_position_m,
        )
    pose_t = torch.as_tensor(np.asarray(poses, dtype=np.float64), device=device)
    if pose_t.ndim != 2 or pose_t.shape[1] != 3:
        raise ConfigError(f"poses must have shape (N, 3) = [x_m, y_m, yaw_rad], got {tuple(pose_t.shape)}")
    if not bool(torch.isfinite(pose_t).all()):
        raise ConfigError("poses must be finite numbers, got NaN or inf")
    scene = scene_from_arrays(
        config, pose_t.shape[0], device, sphere_positions_xy_m, sphere_color_indices, floor_rgb, light_position_m
    )
    return render_batch(config, pose_t, scene, compile_shaders=compile_shaders).cpu().numpy()
