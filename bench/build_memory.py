"""Peak resident memory of ``vlnav-data build`` against the frames its live episodes hold, same run.

Runs ``vlnav-data build --num-envs N --image-size-px PX --encoder oracle`` (with and without
``--noise-std``, which makes episodes longer and more uneven) as a child process; its peak RSS is the
kernel's figure for the child (``wait4`` ``ru_maxrss``). The frames the build *must* hold are computed from
the file it wrote: the rollout's schedule is replayed with the recorded episode lengths (N slots, a free
slot starts the next episode the window allows: ``REORDER_WINDOW_PER_ENV x N`` ahead of the lowest
unfinished one), and at every step the live frames are the rows recorded so far by the open episodes plus
the finished episodes still waiting for a lower index (the reorder buffer). The queues between the threads
(``4`` finished episodes waiting for the encoder, ``writer_queue_size`` waiting for the writer and the one
being written) add at most the frames of that many of the longest episodes. Baseline: the RSS of a process
that imported what the build imports. Target:

    peak RSS <= 1.5 x (max live-episode frames + queues) + baseline

    .venv/bin/python bench/build_memory.py --num-episodes 96 --noise-std 0 1.5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
from machine_info import cpu_name

ENCODER_QUEUE = 4  # run_pipeline's `episodes` queue
GIB = 2**30


def baseline_rss_bytes() -> int:
    """RSS of a fresh process after the build's imports (torch, h5py, the CLI, collect, sim, encoders)."""
    code = (
        "import torch, h5py, numpy\n"
        "import vlnav_data.cli.data, vlnav_data.collect.build, vlnav_data.sim, vlnav_data.encoders\n"
        "from vlnav_data.encoders import make_encoder\n"
        "make_encoder('oracle')\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) * 1024


def replay_live_frames(lengths: list[int], num_envs: int, window: int) -> int:
    """Max over steps of frames held by open episodes + finished ones waiting for a lower index."""
    n_eps = len(lengths)
    slots: list[int | None] = [None] * num_envs
    rows = [0] * n_eps
    finished = [False] * n_eps
    next_ep = 0
    released = 0  # episodes 0..released-1 have left the reorder buffer (written in index order)
    peak = 0

    def start_free() -> None:
        nonlocal next_ep
        lowest = min((e for e in slots if e is not None), default=next_ep)
        limit = min(n_eps, lowest + window)
        for i in range(num_envs):
            if next_ep >= limit:
                break
            if slots[i] is None:
                slots[i] = next_ep
                next_ep += 1

    start_free()
    while any(e is not None for e in slots):
        for e in slots:
            if e is not None:
                rows[e] += 1
        live = sum(rows[e] for e in slots if e is not None)
        live += sum(lengths[e] for e in range(released, next_ep) if finished[e])
        peak = max(peak, live)
        for i, e in enumerate(slots):
            if e is not None and rows[e] == lengths[e]:
                finished[e] = True
                slots[i] = None
        while released < n_eps and finished[released]:
            released += 1
        start_free()
    return peak


def run_build(args: argparse.Namespace, noise: float, out: Path) -> dict:
    cmd = [
        shutil.which("vlnav-data") or "vlnav-data",
        "build",
        "--out",
        str(out),
        "--num-envs",
        str(args.num_envs),
        "--image-size-px",
        str(args.image_size_px),
        "--num-episodes",
        str(args.num_episodes),
        "--encoder",
        "oracle",
        "--seed",
        str(args.seed),
    ]
    if noise > 0:
        cmd += ["--noise-std", str(noise)]
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:  # the RSS curve, for the record (the peak comes from the kernel)
        status = Path(f"/proc/{proc.pid}/status")
        while not done.is_set():
            try:
                kb = next(int(s.split()[1]) for s in status.read_text().splitlines() if s.startswith("VmRSS"))
                samples.append((time.perf_counter() - t0, kb * 1024))
            except (OSError, StopIteration, ValueError):
                pass
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"build failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    wall = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        data = f["data"]
        lengths = [int(data[f"demo_{i}"].attrs["num_samples"]) for i in range(int(data.attrs["num_demos"]))]
        h, w = (int(x) for x in data["demo_0/obs/rgb"].shape[1:3])
    from vlnav_data.collect.config import BuildConfig
    from vlnav_data.collect.pipeline import REORDER_WINDOW_PER_ENV

    frame_bytes = h * w * 3
    live = replay_live_frames(lengths, args.num_envs, REORDER_WINDOW_PER_ENV * args.num_envs) * frame_bytes
    queued = ENCODER_QUEUE + BuildConfig.writer_queue_size + 1
    queues = sum(sorted(lengths, reverse=True)[:queued]) * frame_bytes
    return {
        "noise_std": noise,
        "episodes": len(lengths),
        "frames": sum(lengths),
        "mean_steps": sum(lengths) / len(lengths),
        "max_steps": max(lengths),
        "wall_s": wall,
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "live_episode_frame_bytes": live,
        "queue_frame_bytes": queues,
        "rss_curve_bytes": samples[:: max(1, len(samples) // 40)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-envs", type=int, default=64)
    ap.add_argument("--image-size-px", type=int, default=256)
    ap.add_argument("--num-episodes", type=int, default=96)
    ap.add_argument("--noise-std", type=float, nargs="+", default=[0.0, 1.5])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    load = os.getloadavg()
    print("vlnav-data build: peak RSS against the frames of its live episodes")
    print(f"  CPU {cpu_name()}, {os.cpu_count()} logical cores, load avg {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    base = baseline_rss_bytes()
    print(f"  baseline RSS after the build's imports: {base / GIB:.2f} GiB")
    rows = []
    for noise in args.noise_std:
        tmp = Path(tempfile.mkdtemp(prefix="vlnav-build-memory-"))
        try:
            r = run_build(args, noise, tmp / "d.h5")
        finally:
            shutil.rmtree(tmp)
        bound = 1.5 * (r["live_episode_frame_bytes"] + r["queue_frame_bytes"]) + base
        r.update(baseline_rss_bytes=base, bound_bytes=bound, within=r["peak_rss_bytes"] <= bound)
        rows.append(r)
        print(
            f"  N={args.num_envs} {args.image_size_px} px oracle noise {noise}: {r['episodes']} episodes, "
            f"{r['frames']} frames (mean {r['mean_steps']:.0f}, max {r['max_steps']} steps), {r['wall_s']:.0f} s; "
            f"peak RSS {r['peak_rss_bytes'] / GIB:.2f} GiB; "
            f"live-episode frames {r['live_episode_frame_bytes'] / GIB:.2f} GiB "
            f"+ queues {r['queue_frame_bytes'] / GIB:.2f} GiB -> bound {bound / GIB:.2f} GiB: "
            f"{'within' if r['within'] else 'OVER'} (load {os.getloadavg()[0]:.1f})"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if not all(r["within"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
