"""What the renderer draws and from where: the per-env :class:`Scene` and the pinhole :class:`Camera`.

A :class:`Scene` holds the per-env sphere layout, floor colour and light (from the config's fixed layout,
:func:`default_scene`, or from arrays a caller gives, :func:`scene_from_arrays`); :func:`camera` the
per-(config, device) constants of the level camera: column and row ray slopes, the floor depth of each row
below the horizon, the wall segments and colours. Siblings: ``sim/render/batch.py`` (floor, walls and sky:
the pixel shaders and ``render_batch``) and ``sim/render/spheres.py`` (ray-traced spheres).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.task import PALETTE_NAMES, PALETTE_RGB


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
class Camera:
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
def camera(config: ArenaConfig, device: str) -> Camera:
    """The camera constants of ``config`` on ``device`` (cached: made once per config and device)."""
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
    return Camera(
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
