"""Spheres in the rendered frames: ray-traced inside their projected bounding boxes, shaded, depth-tested.

Each sphere is bounded by the projection of its bounding cube; only pixels inside that box are tested with
the exact ray-sphere equation, whose terms are sums of a column part and a row part. Hits are shaded
(Lambert + a small Blinn-Phong highlight from the point light), depth-tested against the walls and against
each other (a z-buffer by ``scatter_reduce``). ``sim/render/batch.py`` draws the floor, walls and sky first
and calls :func:`draw_spheres` last; ``sim/render/scene.py`` holds the scene and camera it reads.
"""

from __future__ import annotations

import torch

from vlnav_data.sim import transfer
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.render.scene import Camera, Scene

_SPECULAR_WEIGHT = 0.25
_SPECULAR_EXPONENT = 24.0


def draw_spheres(
    config: ArenaConfig,
    cam: Camera,
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

    Args:
        config: Arena config (sphere radius and height, camera height and clipping, wall height, ambient light).
        cam: The camera constants ``render_batch`` drew the floor and walls with.
        storage: uint8 ``(N*H*W + 1, 3)``: the frames, then the spare pixel; written in place.
        shape: ``(N, H, W, 3)`` of the frames in ``storage``.
        cx, cy: ``(N,)`` camera position; cos_t, sin_t: ``(N,)`` heading.
        wall_t: ``(N, W)`` depth of the first wall per column (inf: none), for occlusion.
        scene: Per-env sphere centres and colours.
        light: float32 ``(N, 3)`` light positions on the render device.
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
