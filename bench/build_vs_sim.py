"""End-to-end build frames/s against simulator-only env-step frames/s, same arena, same process, same run.

    ratio = build_dataset frames/s (oracle encoder, frames deflated and written) / env.step frames/s

The simulator-only figure steps the arena exactly as the build runs it (``obs_backend="torch"``, rendering
on, the expert acting, ``num_envs`` arenas) and records nothing: it is the ceiling the build's pipeline
(row copies, encoder, deflate, HDF5) can approach. It is measured before and after the build and averaged,
so a change of machine load during the run shows as a gap between the two. Target on 2 CPU cores: >= 0.5.

On a shared machine the wall-clock ratio follows the neighbours' load; the CPU ratio (process CPU
milliseconds per frame, simulator-only over the whole build) counts work instead of waiting: it is the
wall ratio a quiet machine would give if the pipeline's stages overlapped perfectly on all cores.

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
import threading
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


def sim_only_fps(cfg: BuildConfig, steps: int) -> tuple[float, float]:
    """:func:`sim_only_in_main` run on a thread of its own, as the build's simulation thread runs (on a loaded
    machine torch's parallel regions behave very differently on the main thread: it is printed beside)."""
    out: list[tuple[float, float]] = []
    worker = threading.Thread(target=lambda: out.append(sim_only_in_main(cfg, steps)), name="sim-only")
    worker.start()
    worker.join()
    return out[0]


def sim_only_in_main(cfg: BuildConfig, steps: int) -> tuple[float, float]:
    """env.step frames/s with the expert acting, as the build's simulation thread runs the arena, and the
    process CPU milliseconds per frame."""
    arena = dataclasses.replace(get_preset(cfg.preset), **arena_overrides(cfg))
    expert = make_expert(cfg, arena)
    env = make_arena(arena, num_envs=cfg.num_envs, render=True, obs_backend="torch")
    obs, info = env.reset(seed=cfg.seed)
    for _ in range(3):  # warm-up: allocator, first-call constants
        obs, _, _, _, info = env.step(expert(obs, info))
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        obs, _, _, _, info = env.step(expert(obs, info))
    frames = steps * cfg.num_envs
    return frames / (time.perf_counter() - t0), (time.process_time() - cpu0) / frames * 1e3


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
        before, sim_cpu_before = sim_only_fps(cfg, args.sim_steps)
        cpu0 = time.process_time()
        result = build_dataset(cfg)
        cpu_s = time.process_time() - cpu0
        after, sim_cpu_after = sim_only_fps(cfg, args.sim_steps)
        main_thread, _ = sim_only_in_main(cfg, args.sim_steps)
        sim = float(np.mean([before, after]))
        sim_cpu = float(np.mean([sim_cpu_before, sim_cpu_after]))
        build_cpu = cpu_s / result.num_steps * 1e3
        row = {
            "image_px": px,
            "num_envs": args.num_envs,
            "episodes": result.num_episodes,
            "frames": result.num_steps,
            "sim_only_frames_per_s": [before, after],
            "end_to_end_frames_per_s": result.frames_per_s,
            "ratio": result.frames_per_s / sim,
            "sim_only_main_thread_frames_per_s": main_thread,
            "sim_only_cpu_ms_per_frame": sim_cpu,
            "build_cpu_ms_per_frame": build_cpu,
            "cpu_ratio": sim_cpu / build_cpu,
            "load_avg_1min": os.getloadavg()[0],
        }
        rows.append(row)
        print(
            f"  {px:3d} px, N={args.num_envs}, {result.num_episodes} episodes, {result.num_steps} frames: "
            f"sim-only {before:7.1f} / {after:7.1f} frames/s, end-to-end {result.frames_per_s:7.1f} frames/s, "
            f"ratio {row['ratio']:.2f} (target >= 0.5); CPU ms/frame sim-only {sim_cpu:.2f}, build {build_cpu:.2f}: "
            f"CPU ratio {row['cpu_ratio']:.2f}; sim-only on the main thread {main_thread:.1f} frames/s; "
            f"load {row['load_avg_1min']:.1f}"
        )
        shutil.rmtree(tmp)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
