"""Dataset build throughput: end-to-end frames/s against encoder-only frames/s, same device, same run.

A build (``vlnav_data.collect.build_dataset``) overlaps simulation, encoding and HDF5 writing; the
encoder is the bottleneck by design (DESIGN §8), so the figure that matters is

    ratio = end-to-end frames/s / encoder-only frames/s     (target >= 0.9 on GPU and CPU)

where encoder-only re-encodes the very frames the build wrote, with the same encoder object and the
same per-episode batches, after the same warm-up. It also prints simulator-only frames/s (rollouts with
rendering, no encoder) and bytes per frame on disk.

Encoders:
- ``--encoder siglip-tiny-random`` (default): tiny random SigLIP, offline; fast, so on a CPU the
  simulator/renderer rather than the encoder sets the pace (the ratio then measures the pipeline's
  overhead against a cheap encoder, not the production case);
- ``--so400m-random``: the real SigLIP so400m/14-384 vision architecture with random weights (no
  download), stored under the name ``siglip``: the production compute cost;
- ``--encoder siglip --model-path DIR``: the real model from local weights.

    .venv/bin/python bench/build_throughput.py --device cpu
    .venv/bin/python bench/build_throughput.py --device cpu --so400m-random --num-episodes 2 --max-episode-steps 8
    .venv/bin/python bench/build_throughput.py --device cuda --so400m-random --num-episodes 64 --num-envs 64
    .venv/bin/python bench/build_throughput.py --device cuda --so400m-random --num-episodes 64 --num-envs 64 --compile

The simulator-only pass runs the arena as the build does (torch observations); the encoder-only pass
encodes the frames read back from the file (host arrays), batched as the build batched them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine_info import cpu_name

from vlnav_data.collect import BuildConfig, build_dataset
from vlnav_data.collect.build import arena_overrides, make_expert
from vlnav_data.dataset import DatasetReader
from vlnav_data.devices import resolve_device


def machine() -> str:
    cpu = cpu_name(platform.processor() or "unknown CPU")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts = [
        f"{platform.node()} {platform.system()} {platform.machine()}",
        f"CPU {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, load avg {load:.1f}",
        f"python {platform.python_version()}, torch {torch.__version__}",
    ]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        parts.append(f"GPU {props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")
    else:
        parts.append("no CUDA GPU")
    return "\n".join("  " + p for p in parts)


def so400m_random_encoder(device: str, batch_size: int | None, compile: bool = False):
    """The so400m vision architecture with random weights, named ``siglip`` (bench/encoder_throughput.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import encoder_throughput as eb

    from vlnav_data.encoders.runtime import resolve_dtype
    from vlnav_data.encoders.spec import EncoderSpec

    dtype = resolve_dtype("auto", device)
    enc = eb.make_encoder(eb.build_model(), device, dtype, batch_size or (256 if device == "cuda" else 8), compile)
    enc.spec = EncoderSpec(
        name="siglip",
        model_id="random so400m architecture (benchmark)",
        revision="seed-0",
        dim=1152,
        dtype=enc.spec.dtype,
        device=device,
        privileged=False,
        note="benchmark only: random weights",
    )
    enc.encode_texts = lambda texts: _hashed_texts(texts, 1152)  # the 1-layer text tower has no tokenizer
    return enc


def _hashed_texts(texts, dim: int) -> np.ndarray:
    rows = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(dim) for t in texts]
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--encoder", default="siglip-tiny-random")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--so400m-random", action="store_true", help="random-weight so400m vision tower as 'siglip'")
    ap.add_argument("--num-episodes", type=int, default=8)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--max-episode-steps", type=int, default=40)
    ap.add_argument("--image-size-px", type=int, default=None)
    ap.add_argument("--encoder-batch-size", type=int, default=None)
    ap.add_argument("--expert", default="pursuit", choices=["pursuit", "ppo"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="torch.compile renderer and encoder (time reported apart)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    from vlnav_data.encoders import make_encoder
    from vlnav_data.sim import get_preset, make_arena, rollout

    device = resolve_device(args.device)
    print("dataset build throughput (vlnav_data.collect.build_dataset)")
    print(machine())
    name = "siglip" if args.so400m_random else args.encoder
    if args.so400m_random:
        enc = so400m_random_encoder(device, args.encoder_batch_size, args.compile)
    else:
        enc = make_encoder(
            name, device=device, model_path=args.model_path, batch_size=args.encoder_batch_size, compile=args.compile
        )
    print(f"  encoder {enc.spec.name} ({enc.spec.model_id}, {enc.spec.dtype}, dim {enc.spec.dim}), device {device}")

    tmp = Path(tempfile.mkdtemp(prefix="vlnav-build-bench-"))
    cfg = BuildConfig(
        out=str(tmp / "bench.h5"),
        num_episodes=args.num_episodes,
        encoders=(name,),
        expert=args.expert,
        max_episode_steps=args.max_episode_steps,
        image_size_px=args.image_size_px,
        num_envs=args.num_envs,
        seed=args.seed,
        device=device,
        encoder_batch_size=args.encoder_batch_size,
        compile=args.compile,
    )
    # Warm-up (kernels, allocator, lazy init) on one rendered frame batch.
    arena = get_preset(cfg.preset)
    import dataclasses

    arena = dataclasses.replace(arena, **arena_overrides(cfg))
    warm_env = make_arena(arena, num_envs=1, device=device, render=True)
    obs, _ = warm_env.reset(seed=0)
    if not args.compile:  # compiled: build_dataset compiles (and reports compile_s) before its clock starts
        enc.encode_images(np.repeat(obs["rgb"], min(8, args.max_episode_steps), axis=0))
    sync(device)

    # 1. simulator only: the same episodes, rendering on, no encoder.
    expert = make_expert(cfg, arena)
    from vlnav_data.dataset.splits import episode_seed

    seeds = [episode_seed(cfg.seed, i) for i in range(cfg.num_episodes)]
    env = make_arena(
        arena,
        num_envs=min(cfg.num_envs, cfg.num_episodes),
        device=device,
        render=True,
        obs_backend="torch",  # as the build runs it
        compile_renderer=args.compile,
    )
    env.compile_warm_up()
    t0 = time.perf_counter()
    sim_frames = sum(ep.num_steps for ep in rollout(env, expert, seeds))
    sim_fps = sim_frames / (time.perf_counter() - t0)

    # 2. end to end.
    result = build_dataset(cfg, encoders=[enc])
    e2e_fps = result.frames_per_s

    # 3. encoder only: the same frames and encoder object, batched as the build batched them (per episode on
    # the CPU; across episodes on CUDA, i.e. one call that the encoder cuts into full batches).
    from vlnav_data.collect.embed.embedder import batches_across_episodes

    with DatasetReader(result.path) as r:
        episodes = [r.episode(n, keys=["obs/rgb", "obs/privileged_state"]) for n in r.demo_names]
    if batches_across_episodes(cfg.cross_episode_batching, device):
        episodes = [{k: np.concatenate([e[k] for e in episodes]) for k in ("obs/rgb", "obs/privileged_state")}]
    sync(device)
    t0 = time.perf_counter()
    frames = 0
    for e in episodes:
        enc.encode_observations(e["obs/rgb"], e["obs/privileged_state"])
        frames += len(e["obs/rgb"])
    sync(device)
    enc_fps = frames / (time.perf_counter() - t0)

    ratio = e2e_fps / enc_fps
    figures = {
        "device": device,
        "encoder": enc.spec.name,
        "encoder_model": enc.spec.model_id,
        "encoder_dtype": enc.spec.dtype,
        "image_px": [arena.image_height_px, arena.image_width_px],
        "episodes": result.num_episodes,
        "frames": result.num_steps,
        "num_envs": cfg.num_envs,
        "sim_only_frames_per_s": sim_fps,
        "end_to_end_frames_per_s": e2e_fps,
        "encoder_only_frames_per_s": enc_fps,
        "ratio_end_to_end_over_encoder": ratio,
        "bytes_per_frame": result.bytes_per_frame,
        "file_bytes": result.file_bytes,
        "compile_s": result.compile_s,
        "compiled": list(result.compiled),
    }
    print(
        f"  frames {result.num_steps} in {result.num_episodes} episodes ({arena.image_height_px} px), "
        f"num_envs {cfg.num_envs}"
    )
    print(f"  simulator only (render + expert) : {sim_fps:9.2f} frames/s")
    print(f"  encoder only                     : {enc_fps:9.2f} frames/s")
    print(f"  end to end (build_dataset)       : {e2e_fps:9.2f} frames/s")
    print(f"  ratio end-to-end / encoder-only  : {ratio:9.3f}   (target >= 0.9)")
    print(f"  bytes per frame on disk          : {result.bytes_per_frame:9.0f}   ({result.file_bytes} bytes)")
    if result.compiled:
        print(f"  compiled {', '.join(result.compiled)} in {result.compile_s:.1f} s before the clock (excluded above)")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
