"""Renderer and simulator throughput: frames/s at 256x256 for N = 1, 64, 1024 envs.

Prints, for each device (CPU, and CUDA when present):
  * ``ours-eager``: ``vlnav_data.sim.render.render_batch`` as the env uses it by default;
  * ``ours-compiled``: the same with ``compile_shaders=True`` (torch.compile; compile time excluded);
  * ``naive``: a same-run baseline, a full-image ray caster written here that intersects every
    pixel's ray with the floor, every wall rectangle and every sphere (the approach the arena's
    separable renderer replaces);
  * ``state-only steps/s``: ``ArenaVecEnv.step`` with ``render=False`` (what PPO trains on);
  * ``env-step torch-obs`` / ``numpy-obs``: ``ArenaVecEnv.step`` with rendering, observations as device
    tensors (``obs_backend="torch"``, what builds and evaluations use) against numpy (frames copied to the
    host every step, the Gymnasium default; the same-run baseline of the device-resident path), in
    frames/s;
  * MuJoCo (``text2nav-mujoco``, when ``mujoco`` is installed, for N in ``--mujoco-sizes``): ``mujoco``
    frames/s of ``mujoco.Renderer`` in this process, one env after the other (shadows on, as the preset
    renders), ``mujoco-noshadow`` the same without shadows, ``mujoco-pool`` the same frames rendered by
    ``--pool`` worker processes (spawned, one renderer each; frames sent back to this process included),
    and ``mujoco env`` env-steps/s of ``step()`` with physics and frames;
  * Newton (``text2nav-newton``, when ``newton`` is installed, for N in ``--newton-sizes``): ``newton`` frames/s
    of the tiled camera sensor (all N worlds ray-traced in one call, warp on the CPU) and ``newton env``
    env-steps/s of ``step()`` with MuJoCo-Warp physics and frames (kernel compilation excluded: one warm-up);
  * Isaac Lab 3 (``text2nav-isaaclab``, when ``isaaclab`` is installed: the Python 3.12 environment of
    ``scripts/isaaclab-venv.sh``, which also holds MuJoCo and Newton, so one run gives every row; for N in
    ``--isaaclab-sizes``): ``isaaclab env`` env-steps/s of ``step()`` with Newton physics and Newton Warp
    frames (one simulation per process: each N makes its own, which ends the one before);
plus the machine (CPU model, cores, torch version, threads, load average).

Usage: ``python bench/sim_throughput.py [--sizes 1 64 1024] [--mujoco-sizes 1 16 64] [--newton-sizes 1 16]
[--isaaclab-sizes 1 16] [--pool 2] [--no-compile] [--seconds 2] [--threads K] [--json]``
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import time

import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")  # headless MuJoCo rendering (read when mujoco is first imported)

from machine_info import cpu_name

from vlnav_data.sim import get_preset, make_arena
from vlnav_data.sim.config import COLOR_PALETTE, ArenaConfig
from vlnav_data.sim.render import render_batch
from vlnav_data.sim.render.scene import Scene, default_scene


def naive_render(config: ArenaConfig, poses: torch.Tensor, scene: Scene) -> torch.Tensor:
    """Baseline: ray-trace every pixel against the floor, every wall and every sphere. uint8 (N, H, W, 3)."""
    dev = poses.device
    n, h, w = poses.shape[0], config.image_height_px, config.image_width_px
    fx, fy = config.focal_length_px
    u = torch.arange(w, device=dev) + 0.5
    v = torch.arange(h, device=dev) + 0.5
    left = (-(u - w / 2) / fx)[None, None, :].expand(1, h, w)
    up = (-(v - h / 2) / fy)[None, :, None].expand(1, h, w)
    p = poses.float()
    c, s = torch.cos(p[:, 2])[:, None, None], torch.sin(p[:, 2])[:, None, None]
    dx, dy, dz = c - left * s, s + left * c, up.expand(n, h, w)  # per unit forward depth
    ox = (p[:, 0] + config.camera_forward_offset_m * torch.cos(p[:, 2]))[:, None, None]
    oy = (p[:, 1] + config.camera_forward_offset_m * torch.sin(p[:, 2]))[:, None, None]
    oz = config.camera_height_m
    best = torch.full((n, h, w), math.inf, device=dev)
    rgb = torch.zeros((n, h, w, 3), device=dev)
    near, far = config.camera_near_m, config.camera_far_m
    # floor
    t = torch.where(dz < 0, -oz / dz.clamp(max=-1e-9), torch.full_like(dz, math.inf))
    hit = (t > near) & (t < far)
    gx, gy = ox + t * dx, oy + t * dy
    sp, lw = config.floor_grid_spacing_m, config.floor_grid_line_width_m
    line = ((gx / sp - torch.round(gx / sp)).abs() * sp < lw / 2) | (
        (gy / sp - torch.round(gy / sp)).abs() * sp < lw / 2
    )
    floor = scene.floor_rgb[:, None, None, :].to(dev)
    col = torch.where(line[..., None], torch.ones_like(rgb), floor.expand(n, h, w, 3))
    rgb = torch.where(hit[..., None], col, rgb)
    best = torch.where(hit, t, best)
    # walls (vertical rectangles)
    wall = torch.tensor(config.wall_rgb, device=dev)
    for x0, y0, x1, y1 in config.wall_segments_xy_m:
        ex, ey = x1 - x0, y1 - y0
        det = ex * dy - ey * dx
        safe = torch.where(det.abs() > 1e-12, det, torch.full_like(det, 1e-12))
        tw = (ex * (y0 - oy) - ey * (x0 - ox)) / safe
        sw = (dx * (y0 - oy) - dy * (x0 - ox)) / safe
        zw = oz + tw * dz
        hit = (tw > near) & (tw < far) & (sw >= 0) & (sw <= 1) & (zw >= 0) & (zw <= config.wall_height_m) & (tw < best)
        rgb = torch.where(hit[..., None], wall * 0.8, rgb)
        best = torch.where(hit, tw, best)
    # spheres
    r = config.sphere_radius_m
    lpos = scene.light_position.to(dev)
    for k in range(scene.sphere_xy.shape[1]):
        sx = scene.sphere_xy[:, k, 0].to(dev)[:, None, None]
        sy = scene.sphere_xy[:, k, 1].to(dev)[:, None, None]
        qx, qy, qz = sx - ox, sy - oy, config.sphere_height_m - oz
        dd = dx * dx + dy * dy + dz * dz
        ds = dx * qx + dy * qy + dz * qz
        disc = ds * ds - dd * (qx * qx + qy * qy + qz * qz - r * r)
        ts = (ds - torch.sqrt(disc.clamp(min=0))) / dd
        hit = (disc >= 0) & (ts > near) & (ts < best)
        nx, ny, nz = (ox + ts * dx - sx) / r, (oy + ts * dy - sy) / r, (oz + ts * dz - config.sphere_height_m) / r
        lx, ly, lz = lpos[:, 0, None, None] - sx, lpos[:, 1, None, None] - sy, lpos[:, 2, None, None] - 0.1
        ln = torch.sqrt(lx * lx + ly * ly + lz * lz)
        lam = ((nx * lx + ny * ly + nz * lz) / ln).clamp(min=0)
        shade = (0.5 + 0.5 * lam)[..., None] * scene.sphere_rgb[:, k].to(dev)[:, None, None, :]
        rgb = torch.where(hit[..., None], shade, rgb)
        best = torch.where(hit, ts, best)
    return (rgb * 255).round().to(torch.uint8)


def _poses(n: int, device: str, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    xy = np.stack([rng.uniform(-0.2, 2.3, n), rng.uniform(-1.3, 1.3, n), rng.uniform(-math.pi, math.pi, n)], 1)
    return torch.tensor(xy, dtype=torch.float64, device=device)


def _rate(fn, n: int, seconds: float, device: str) -> float:
    fn()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    reps, start = 0, time.perf_counter()
    while True:
        fn()
        reps += 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or reps >= 200:
            return reps * n / elapsed


_WORKER: dict = {}


def _pool_init(num_envs: int) -> None:
    """Worker process: its own MuJoCo scene and renderer for ``num_envs`` envs."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vlnav_data.sim.mujoco import MujocoScene

    _WORKER["scene"] = MujocoScene(get_preset("text2nav-mujoco"), num_envs)


def _pool_render(poses: np.ndarray) -> np.ndarray:
    scene = _WORKER["scene"]
    cfg = scene.config
    xy = np.asarray(cfg.sphere_positions_xy_m, dtype=np.float64)
    rgb = scene.sphere_rgb[0].copy()
    light = np.asarray(cfg.light_position_m, dtype=np.float64)
    for i, pose in enumerate(poses):
        scene.place(i, pose, xy, rgb, light)
    return scene.render(np.arange(len(poses)))


def mujoco_rows(n: int, seconds: float, pool: int) -> dict:
    """MuJoCo frames/s (in process, without shadows, in a process pool) and env steps/s with frames, at N = n."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vlnav_data.sim.mujoco import MujocoScene

    cfg = get_preset("text2nav-mujoco")
    poses = _poses(n, "cpu").numpy()
    scene = MujocoScene(cfg, n)
    xy = np.asarray(cfg.sphere_positions_xy_m, dtype=np.float64)
    rgb, light = scene.sphere_rgb[0].copy(), np.asarray(cfg.light_position_m, dtype=np.float64)
    for i in range(n):
        scene.place(i, poses[i], xy, rgb, light)
    ids = np.arange(n)
    row = {"mujoco_fps": _rate(lambda: scene.render(ids), n, seconds, "cpu")}
    scene.model.light_castshadow[:] = 0
    row["mujoco_noshadow_fps"] = _rate(lambda: scene.render(ids), n, seconds, "cpu")
    workers = max(1, min(pool, n))
    chunks = np.array_split(poses, workers)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        # One scene per worker process: each initialiser call builds one; chunks go to distinct workers.
        list(ex.map(_pool_init_and_render, [(len(c), c) for c in chunks]))

        def pooled() -> None:
            list(ex.map(_pool_init_and_render, [(len(c), c) for c in chunks]))

        row["mujoco_pool_fps"] = _rate(pooled, n, seconds, "cpu")
    row["mujoco_pool_workers"] = workers
    row["mujoco_env_steps_per_s"] = env_steps_per_s("text2nav-mujoco", n, seconds)
    return row


def newton_rows(n: int, seconds: float) -> dict:
    """Newton frames/s (the tiled camera over all N worlds) and env steps/s with physics and frames, at N = n."""
    from vlnav_data.sim.newton import NewtonScene

    cfg = get_preset("text2nav-newton")
    scene = NewtonScene(cfg, n)
    xy = np.tile(np.asarray(cfg.sphere_positions_xy_m, dtype=np.float64), (n, 1, 1))
    rgb = np.tile([COLOR_PALETTE[c] for c in cfg.sphere_colors], (n, 1, 1))
    light = np.tile(np.asarray(cfg.light_position_m, dtype=np.float64), (n, 1))
    ids = np.arange(n)
    scene.place_many(ids, _poses(n, "cpu").numpy(), xy, rgb, light)
    row = {"newton_fps": _rate(lambda: scene.render(ids), n, seconds, "cpu")}
    row["newton_env_steps_per_s"] = env_steps_per_s("text2nav-newton", n, seconds)
    return row


def env_steps_per_s(preset: str, n: int, seconds: float) -> float:
    """Env steps/s of ``step()`` with physics and frames in ``preset``'s simulator at N = n, random actions on
    the CPU (the first step, which compiles kernels where a backend has them, is excluded)."""
    env = make_arena(preset, num_envs=n, render=True)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (n, 2))
    return _rate(lambda: env.step(actions), n, seconds, "cpu")


def _pool_init_and_render(job: tuple[int, np.ndarray]) -> np.ndarray:
    num_envs, poses = job
    if _WORKER.get("n") != num_envs:
        _pool_init(num_envs)
        _WORKER["n"] = num_envs
    return _pool_render(poses)


def _machine() -> dict:
    model = cpu_name(platform.processor() or "unknown")
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timing window per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--naive-max-batch", type=int, default=64, help="chunk the naive baseline (memory)")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when present")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--mujoco-sizes", type=int, nargs="*", default=[1, 16, 64], help="N for the MuJoCo rows")
    parser.add_argument("--newton-sizes", type=int, nargs="*", default=[1, 16], help="N for the Newton rows")
    parser.add_argument("--isaaclab-sizes", type=int, nargs="*", default=[1, 16], help="N for the Isaac Lab rows")
    parser.add_argument("--pool", type=int, default=2, help="worker processes of the MuJoCo pool variant")
    parser.add_argument("--no-env-step", action="store_true", help="skip the env-step rows (render + step)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import mujoco  # noqa: F401  (MUJOCO_GL is chosen below, before the backend imports it)

        has_mujoco = True
    except ImportError:
        has_mujoco = False
    has_newton = importlib.util.find_spec("newton") is not None
    has_isaaclab = importlib.util.find_spec("isaaclab") is not None
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = get_preset("text2nav")
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    machine = _machine()
    print("machine:", json.dumps(machine))
    rows = []
    for device in devices:
        for n in args.sizes:
            poses = _poses(n, device)
            scene = default_scene(cfg, n, device)
            row = {"device": device, "num_envs": n}
            row["ours_eager_fps"] = _rate(lambda p=poses, s=scene: render_batch(cfg, p, s), n, args.seconds, device)
            if not args.no_compile:
                t0 = time.perf_counter()
                render_batch(cfg, poses, scene, compile_shaders=True)
                row["compile_s"] = time.perf_counter() - t0
                row["ours_compiled_fps"] = _rate(
                    lambda p=poses, s=scene: render_batch(cfg, p, s, compile_shaders=True), n, args.seconds, device
                )
            chunk = min(n, args.naive_max_batch)
            naive_poses, naive_scene = _poses(chunk, device), default_scene(cfg, chunk, device)
            row["naive_fps"] = _rate(
                lambda p=naive_poses, s=naive_scene: naive_render(cfg, p, s), chunk, args.seconds, device
            )
            row["naive_batch"] = chunk
            env = make_arena(cfg, num_envs=n, device=device, render=False)
            env.reset(seed=0)
            actions = np.random.default_rng(0).uniform(-1, 1, (n, 2))
            row["state_only_env_steps_per_s"] = _rate(lambda e=env, a=actions: e.step(a), n, args.seconds, device)
            if not args.no_env_step:
                for backend in ("torch", "numpy"):
                    env = make_arena(cfg, num_envs=n, device=device, render=True, obs_backend=backend)
                    env.reset(seed=0)
                    row[f"env_step_{backend}_obs_fps"] = _rate(
                        lambda e=env, a=actions: e.step(a), n, args.seconds, device
                    )
            if has_mujoco and device == "cpu" and n in args.mujoco_sizes:
                row.update(mujoco_rows(n, args.seconds, args.pool))
            if has_newton and device == "cpu" and n in args.newton_sizes:
                row.update(newton_rows(n, args.seconds))
            if has_isaaclab and device == "cpu" and n in args.isaaclab_sizes:
                row["isaaclab_env_steps_per_s"] = env_steps_per_s("text2nav-isaaclab", n, args.seconds)
            rows.append(row)
            print(
                f"{device:5s} N={n:5d}  ours-eager {row['ours_eager_fps']:10.0f} fps"
                + (f"  ours-compiled {row['ours_compiled_fps']:10.0f} fps" if "ours_compiled_fps" in row else "")
                + f"  naive {row['naive_fps']:8.0f} fps (batch {chunk})"
                + f"  state-only {row['state_only_env_steps_per_s']:10.0f} env-steps/s",
                flush=True,
            )
            if "env_step_torch_obs_fps" in row:
                print(
                    f"{'':5s} N={n:5d}  env-step torch-obs {row['env_step_torch_obs_fps']:10.0f} fps  "
                    f"numpy-obs {row['env_step_numpy_obs_fps']:10.0f} fps (rendering, whole step)",
                    flush=True,
                )
            if "mujoco_fps" in row:
                print(
                    f"{'':5s} N={n:5d}  mujoco {row['mujoco_fps']:8.1f} fps  mujoco-noshadow "
                    f"{row['mujoco_noshadow_fps']:8.1f} fps  mujoco-pool({row['mujoco_pool_workers']}) "
                    f"{row['mujoco_pool_fps']:8.1f} fps  mujoco env {row['mujoco_env_steps_per_s']:8.1f} env-steps/s "
                    "(physics + frames)",
                    flush=True,
                )
            if "newton_fps" in row:
                print(
                    f"{'':5s} N={n:5d}  newton {row['newton_fps']:8.1f} fps (tiled camera)  newton env "
                    f"{row['newton_env_steps_per_s']:8.1f} env-steps/s (MuJoCo-Warp physics + frames)",
                    flush=True,
                )
            if "isaaclab_env_steps_per_s" in row:
                print(
                    f"{'':5s} N={n:5d}  isaaclab env {row['isaaclab_env_steps_per_s']:8.1f} env-steps/s "
                    "(Newton physics + Newton Warp frames, kit-less)",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"machine": machine, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
