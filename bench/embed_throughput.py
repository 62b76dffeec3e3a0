"""`vlnav-data embed` throughput: frames/s of embed against the same encoder on the same frames, same run.

The input is a file built with the ``oracle`` encoder only. Then, alternating ``--repeats`` times:

- baseline: the SAME encoder object re-encodes the same frames, read from the file episode by episode
  (``DatasetReader.episode``), with the computation embed runs (``collect.embed.embedder.embed_episode``:
  image, text and joint embeddings), and no HDF5 writes;
- embed: ``embed_dataset`` with that encoder injected, writing ``--out`` (reader thread, per-episode
  commits to the sidecar, raw copy of the input, atomic rename).

    ratio (embedding stage) = embed frames/s while embedding / baseline frames/s
    ratio (whole command)   = file frames / (embed's wall time, checks and copy included) / baseline frames/s

Target: >= 0.9 on the 2-core CPU with ``siglip-tiny-random``. Baseline and embed alternate, and each
ratio is taken within one (baseline, embed) pair, so a machine whose speed drifts (shared cores) moves
both sides of a ratio together; the median over pairs is reported, with every pair, the machine and its
load. CPU seconds per frame (this process, all threads) are printed beside the wall-clock figures.

    .venv/bin/python bench/embed_throughput.py
    .venv/bin/python bench/embed_throughput.py --num-episodes 8 --repeats 3 --json embed.json
    .venv/bin/python bench/embed_throughput.py --device cuda --so400m-random --num-episodes 16 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_throughput import machine, so400m_random_encoder  # noqa: E402

from vlnav_data.collect import BuildConfig, build_dataset  # noqa: E402
from vlnav_data.collect.embed import embed_dataset  # noqa: E402
from vlnav_data.collect.embed.config import EmbedConfig  # noqa: E402
from vlnav_data.collect.embed.embedder import EpisodeFrames, embed_episode, encode_texts_one_by_one  # noqa: E402
from vlnav_data.dataset import DatasetReader  # noqa: E402
from vlnav_data.devices import resolve_device  # noqa: E402


def cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(path: Path, encoders: list) -> tuple[int, float, float]:
    """Read each episode from the file (frames, states, instructions, as embed's reader does) and embed it;
    no writes. Returns (frames, wall s, CPU s)."""
    t0, c0 = time.perf_counter(), cpu_s()
    frames = 0
    with DatasetReader(path) as r:
        table = r.instructions
        for name in r.demo_names:
            g = r.file["data"][name]
            texts = [table[k] for k in g["instruction_index"][()]]
            rgb, state = g["obs/rgb"][()], g["obs/privileged_state"][()]
            embed_episode(encoders, EpisodeFrames(rgb, state, texts))
            frames += len(rgb)
    return frames, time.perf_counter() - t0, cpu_s() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--encoder", default="siglip-tiny-random")
    ap.add_argument("--so400m-random", action="store_true", help="random-weight so400m vision tower as 'siglip'")
    ap.add_argument("--num-episodes", type=int, default=6)
    ap.add_argument("--max-episode-steps", type=int, default=60)
    ap.add_argument("--image-size-px", type=int, default=None, help="default: the preset's 256")
    ap.add_argument("--num-envs", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own); 1 keeps CPU-time figures free of the spin-waits "
        "a thread pool accrues on an oversubscribed machine",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    from vlnav_data.encoders import make_encoder

    device = resolve_device(args.device)
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    print("embed throughput (vlnav_data.collect.embed.embed_dataset)")
    print(machine())
    tmp = Path(tempfile.mkdtemp(prefix="vlnav-embed-bench-"))
    src = build_dataset(
        BuildConfig(
            out=str(tmp / "input.h5"),
            num_episodes=args.num_episodes,
            encoders=("oracle",),
            expert="pursuit",
            max_episode_steps=args.max_episode_steps,
            image_size_px=args.image_size_px,
            num_envs=args.num_envs,
            device=device,
        )
    ).path
    enc = so400m_random_encoder(device, None) if args.so400m_random else make_encoder(args.encoder, device=device)
    with DatasetReader(src) as r:
        num_frames = r.total_steps
        first = r.episode(r.demo_names[0], keys=["obs/rgb"])["obs/rgb"]
        encode_texts_one_by_one(enc, r.instructions)  # both runs then find every text in the cache
        height, width, _ = r.image_shape
    enc.encode_images(first[:8])  # warm-up: kernels, allocator, lazy init
    print(
        f"  encoder {enc.spec.name} ({enc.spec.dtype}, dim {enc.spec.dim}) on {device}; input {num_frames} frames "
        f"in {args.num_episodes} episodes at {height}x{width}, {src.stat().st_size / 1e6:.1f} MB"
    )
    runs = []
    for i in range(args.repeats):
        frames, base_s, base_cpu = baseline(src, [enc])
        out = tmp / "out.h5"
        out.unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), cpu_s()
        result = embed_dataset(
            EmbedConfig(file=str(src), out=str(out), encoders=(enc.spec.name,), device=device), encoders=[enc]
        )
        wall_s, embed_cpu = time.perf_counter() - t0, cpu_s() - c0
        assert frames == result.num_steps == num_frames
        run = {
            "baseline_frames_per_s": frames / base_s,
            "embed_stage_frames_per_s": result.frames_per_s,
            "embed_command_frames_per_s": num_frames / wall_s,
            "embed_wall_s": wall_s,
            "copy_s": result.copy_s,
            "encode_s": result.encode_s,
            "baseline_cpu_ms_per_frame": 1e3 * base_cpu / frames,
            "embed_command_cpu_ms_per_frame": 1e3 * embed_cpu / frames,
        }
        run["ratio_stage"] = run["embed_stage_frames_per_s"] / run["baseline_frames_per_s"]
        run["ratio_command"] = run["embed_command_frames_per_s"] / run["baseline_frames_per_s"]
        run["ratio_command_cpu"] = run["baseline_cpu_ms_per_frame"] / run["embed_command_cpu_ms_per_frame"]
        runs.append(run)
        print(
            f"  run {i}: baseline {run['baseline_frames_per_s']:7.1f} f/s | embed stage "
            f"{run['embed_stage_frames_per_s']:7.1f} f/s (ratio {run['ratio_stage']:.3f}) | whole command "
            f"{run['embed_command_frames_per_s']:7.1f} f/s (ratio {run['ratio_command']:.3f}; "
            f"copy {run['copy_s']:.2f} s)"
        )
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    added = out.stat().st_size - src.stat().st_size
    print(f"  median baseline (read + embed, no writes) : {median['baseline_frames_per_s']:8.1f} frames/s")
    print(f"  median embed, embedding stage            : {median['embed_stage_frames_per_s']:8.1f} frames/s")
    print(f"  median embed, whole command              : {median['embed_command_frames_per_s']:8.1f} frames/s")
    print(f"  ratio embedding stage / baseline         : {median['ratio_stage']:8.3f}   (target >= 0.9)")
    print(f"  ratio whole command / baseline           : {median['ratio_command']:8.3f}")
    print(
        f"  CPU ms per frame, baseline / whole embed : {median['baseline_cpu_ms_per_frame']:8.2f} / "
        f"{median['embed_command_cpu_ms_per_frame']:.2f}  (ratio {median['ratio_command_cpu']:.3f})"
    )
    print(
        f"  raw copy of the input + new arrays       : {median['copy_s']:8.2f} s for {out.stat().st_size / 1e6:.1f} MB "
        f"(+{added / 1e6:.2f} MB for the encoder)"
    )
    if args.json is not None:
        figures = {"device": device, "encoder": enc.spec.name, "frames": num_frames, "runs": runs, "median": median}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
