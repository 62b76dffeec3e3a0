"""Ray builds on one machine: frames/s of 1 vs 2 shards, Ray's fixed overhead, merge raw copy vs recompress.

All in one run, one torch thread per build process (the baseline and every Ray task), same config:

1. baseline: the single-process build (``build_dataset``, no Ray);
2. ``--ray local`` with 1 shard and with 2 shards (``cpus_per_task=1``): frames/s inside the shards
   (all frames over the wall time of the slowest shard's build) and end to end (Ray start and stop,
   worker start-up, merge and validation included);
3. Ray's fixed overhead: end-to-end wall of a tiny build (2 episodes) on ``--ray local`` minus the same
   tiny build in this (warmed-up) process: Ray start and stop, worker start-up and imports, merge;
4. merging the 2 shards of step 2: chunks copied as stored (``raw_copy=True``, the default) against
   decoding and compressing every dataset again (``raw_copy=False``), best of ``--repeats``.

    .venv/bin/python bench/ray_build.py
    .venv/bin/python bench/ray_build.py --num-episodes 48 --image-size-px 128 --encoder siglip-tiny-random
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import torch  # noqa: E402
from machine_info import cpu_name  # noqa: E402

from vlnav_data.collect import BuildConfig, build_dataset  # noqa: E402
from vlnav_data.collect.executors import ExecutorConfig  # noqa: E402
from vlnav_data.collect.sharded import shard_path, shards_dir  # noqa: E402
from vlnav_data.dataset.merge import merge_datasets  # noqa: E402


def machine() -> str:
    cpu = cpu_name(platform.processor() or "unknown CPU")
    import ray

    load = os.getloadavg()[0]
    return (
        f"{platform.node()} {platform.machine()}, CPU {cpu}, {os.cpu_count()} logical cores, load avg {load:.1f}; "
        f"python {platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-episodes", type=int, default=24)
    ap.add_argument("--encoder", default="siglip-tiny-random")
    ap.add_argument("--image-size-px", type=int, default=64)
    ap.add_argument("--max-episode-steps", type=int, default=100)
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="vlnav-raybench-"))
    os.environ.setdefault("RAY_TMPDIR", str(tmp))  # Ray's session logs go with the rest when the bench ends
    base = dict(
        num_episodes=args.num_episodes,
        encoders=(args.encoder,),
        expert="pursuit",
        image_size_px=args.image_size_px,
        max_episode_steps=args.max_episode_steps,
        num_envs=args.num_envs,
        device="cpu",
        seed=0,
    )
    ray_ex = ExecutorConfig(kind="ray", address="local", cpus_per_task=1)
    rows = []
    print(f"machine: {machine()}")
    print(f"config: {json.dumps(base)}; one torch thread per build process\n")
    try:
        # The tiny builds come first: they also warm this process up (imports, expert, encoder) before
        # the baseline, as a Ray worker's imports happen before its shard's build starts.
        tiny = {**base, "num_episodes": 2}
        build_dataset(BuildConfig(out=str(tmp / "warm-up.h5"), **tiny))
        t = time.perf_counter()
        build_dataset(BuildConfig(out=str(tmp / "tiny.h5"), **tiny))
        tiny_local = time.perf_counter() - t
        t = time.perf_counter()
        build_dataset(BuildConfig(out=str(tmp / "tiny_ray.h5"), num_shards=1, executor=ray_ex, **tiny))
        tiny_ray = time.perf_counter() - t
        t = time.perf_counter()
        single = build_dataset(BuildConfig(out=str(tmp / "single.h5"), **base))
        wall = time.perf_counter() - t
        rows.append(
            (
                "single process (baseline)",
                single.num_steps,
                single.num_steps / wall,
                single.num_steps / single.elapsed_s,
                wall,
            )
        )
        for k in (1, 2):
            out = tmp / f"ray{k}.h5"
            t = time.perf_counter()
            res = build_dataset(BuildConfig(out=str(out), num_shards=k, executor=ray_ex, keep_shards=True, **base))
            wall = time.perf_counter() - t
            inside = res.num_steps / max(o.elapsed_s for o in res.shards)
            rows.append((f"--ray local, {k} shard(s)", res.num_steps, res.num_steps / wall, inside, wall))

        print(f"{'build':<28} {'frames':>7} {'frames/s e2e':>13} {'in shards':>10} {'wall s':>8}")
        for name, frames, e2e, during, wall in rows:
            during_s = "-" if during is None else f"{during:.1f}"
            print(f"{name:<28} {frames:>7} {e2e:>13.1f} {during_s:>10} {wall:>8.1f}")
        speedup = rows[2][3] / rows[1][3]
        print(
            "\nin shards = all frames / wall of the slowest shard's build (models loaded to file renamed; "
            "Ray start, worker start-up and merge excluded)"
        )
        print(f"2 shards / 1 shard, in shards: {speedup:.2f}x; end to end: {rows[2][2] / rows[1][2]:.2f}x")
        print(
            f"Ray fixed overhead on a 2-episode build: {tiny_ray - tiny_local:.1f} s "
            f"(--ray local {tiny_ray:.1f} s vs one process {tiny_local:.1f} s)"
        )

        shards = [str(shard_path(shards_dir(tmp / "ray2.h5"), i, 2)) for i in range(2)]
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for raw in (True, False):
                m = merge_datasets(shards, tmp / "merged.h5", overwrite=True, raw_copy=raw)
                times[raw].append(m.elapsed_s)
        size = (tmp / "merged.h5").stat().st_size
        raw_s, re_s = min(times[True]), min(times[False])
        print(
            f"merge of 2 shards ({size / 1e6:.1f} MB, best of {args.repeats}): raw copy {raw_s:.2f} s, "
            f"recompress {re_s:.2f} s, {re_s / raw_s:.1f}x"
        )
        print(f"load avg at the end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
