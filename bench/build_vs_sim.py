"""End-to-end build frames/s against simulator-only env-step frames/s, same arena, same process, same run.

    ratio = build_dataset frames/s (oracle encoder, frames deflated and written) / env.step frames/s

The simulator-only figure steps the arena exactly as the build runs it (``obs_backend="torch"``, rendering
on, the expert acting, ``num_envs`` arenas) and records nothing: it is the ceiling the build's pipeline
(row copies, encoder, deflate, HDF5) can approach. It is measured before and after the build and averaged,
so a change of machine load during the run shows as a gap between the two. Target on 2 CPU cores: >= 0.5.

    .venv/bin/python bench/build_vs_sim.py --image-size-px 64 256 --num-envs 64 --num-episodes 64
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine_info import cpu_name

from vlnav_data.collect import BuildConfig, build_dataset
from vlnav_data.collect.build import arena_overrides, make_expert
from vlnav_data.sim import get_preset, make_arena


def machine() -> str:
    load = os.getloadavg()
    return (
        f"  {platform.node()}: CPU {cpu_name()}, {os.cpu_count()} logical cores, torch threads "
        f"{torch.get_num_threads()}, load avg {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
        f"  python {platform.python_version()}, torch {torch.__version__}"
    )


def sim_only_fps(cfg: BuildConfig, steps: int) -> float:
    """env.step frames/s with the expert acting, as the build's simulation thread runs the arena."""
    arena = dataclasses.replace(get_preset(cfg.preset), **arena_overrides(cfg))
    expert = make_expert(cfg, arena)
    env = make_arena(arena, num_envs=cfg.num_envs, render=True, obs_backend="torch")
    obs, info = env.reset(seed=cfg.seed)
    for _ in range(3):  # warm-up: allocator, first-call constants
        obs, _, _, _, info = env.step(expert(obs, info))
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, _, _, _, info = env.step(expert(obs, info))
    return steps * cfg.num_envs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size-px", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--num-envs", type=int, default=64)
    ap.add_argument("--num-episodes", type=int, default=64)
    ap.add_argument("--sim-steps", type=int, default=40, help="env steps of each simulator-only pass")
    ap.add_argument("--encoder", default="oracle")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print("build end-to-end vs simulator-only (vlnav_data.collect.build_dataset, device cpu)")
    print(machine())
    rows = []
    for px in args.image_size_px:
        tmp = Path(tempfile.mkdtemp(prefix="vlnav-build-vs-sim-"))
        cfg = BuildConfig(
            out=str(tmp / "d.h5"),
            num_episodes=args.num_episodes,
            encoders=(args.encoder,),
            image_size_px=px,
            num_envs=args.num_envs,
            device="cpu",
        )
        before = sim_only_fps(cfg, args.sim_steps)
        cpu0 = time.process_time()
        result = build_dataset(cfg)
        cpu_s = time.process_time() - cpu0
        after = sim_only_fps(cfg, args.sim_steps)
        sim = float(np.mean([before, after]))
        row = {
            "image_px": px,
            "num_envs": args.num_envs,
            "episodes": result.num_episodes,
            "frames": result.num_steps,
            "sim_only_frames_per_s": [before, after],
            "end_to_end_frames_per_s": result.frames_per_s,
            "ratio": result.frames_per_s / sim,
            "build_cpu_s_per_frame_ms": cpu_s / result.num_steps * 1e3,
            "load_avg_1min": os.getloadavg()[0],
        }
        rows.append(row)
        print(
            f"  {px:3d} px, N={args.num_envs}, {result.num_episodes} episodes, {result.num_steps} frames: "
            f"sim-only {before:7.1f} / {after:7.1f} frames/s, end-to-end {result.frames_per_s:7.1f} frames/s, "
            f"ratio {row['ratio']:.2f} (target >= 0.5); build CPU {row['build_cpu_s_per_frame_ms']:.2f} ms/frame; "
            f"load {row['load_avg_1min']:.1f}"
        )
        shutil.rmtree(tmp)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
