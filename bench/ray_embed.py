"""`embed --ray` on one machine: embedding-stage frames/s of a local run vs Ray tasks, and Ray's fixed cost.

All in one run, one torch thread per embedding process (the baseline and every Ray task), same input:

1. baseline: ``embed_dataset`` in this process (no Ray), one torch thread;
2. ``--ray local`` (``cpus_per_task=1``): the embedding stage's frames/s (the driver's commits over the
   stage's wall time: the first task that builds the encoders, worker start-up and imports included)
   and the end-to-end wall (Ray start and stop included);
3. Ray's fixed cost: end-to-end wall of ``--ray local`` on a 2-episode file minus the same in this
   (warmed-up) process.

The arrays of 1 and 2 are compared (they must be equal: per-episode batching, one thread each).

    .venv/bin/python bench/ray_embed.py
    .venv/bin/python bench/ray_embed.py --num-episodes 128 --episodes-per-task 32
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from machine_info import cpu_name  # noqa: E402

from vlnav_data.collect.embed import embed_dataset  # noqa: E402
from vlnav_data.collect.embed.config import EmbedConfig  # noqa: E402
from vlnav_data.collect.executors import ExecutorConfig  # noqa: E402
from vlnav_data.dataset.synthetic import write_synthetic_dataset  # noqa: E402


def machine() -> str:
    cpu = cpu_name(platform.processor() or "unknown CPU")
    import ray

    return (
        f"{platform.node()} {platform.machine()}, CPU {cpu}, {os.cpu_count()} logical cores, load avg "
        f"{os.getloadavg()[0]:.1f}; python {platform.python_version()}, torch {torch.__version__}, "
        f"ray {ray.__version__}"
    )


def same_arrays(a: Path, b: Path, encoder: str) -> bool:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        keys = [f"obs/{encoder}_image", f"obs/{encoder}_joint"]
        return all(np.array_equal(fa["data"][n][k][()], fb["data"][n][k][()]) for n in fa["data"] for k in keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-episodes", type=int, default=64)
    ap.add_argument("--max-steps", type=int, default=400)
    ap.add_argument("--image-size-px", type=int, default=64)
    ap.add_argument("--encoder", default="siglip-tiny-random")
    ap.add_argument("--episodes-per-task", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="vlnav-rayembed-"))
    os.environ.setdefault("RAY_TMPDIR", str(tmp))
    try:
        size = (args.image_size_px, args.image_size_px)
        src = write_synthetic_dataset(
            tmp / "in.h5", args.num_episodes, {"enc": 8}, image_size=size, max_steps=args.max_steps
        )
        tiny = write_synthetic_dataset(tmp / "tiny.h5", 2, {"enc": 8}, image_size=size, max_steps=args.max_steps)
        ray_ex = ExecutorConfig(kind="ray", address="local", cpus_per_task=1)

        def run(file: Path, out: str, executor: ExecutorConfig | None = None) -> tuple[float, object]:
            cfg = EmbedConfig(
                file=str(file),
                encoders=(args.encoder,),
                out=str(tmp / out),
                device="cpu",
                executor=executor or ExecutorConfig(),
                episodes_per_task=args.episodes_per_task,
            )
            t0 = time.perf_counter()
            res = embed_dataset(cfg)
            return time.perf_counter() - t0, res

        run(tiny, "warm.h5")  # imports and first model build paid outside the measurements
        local_wall, local = run(src, "local.h5")
        ray_wall, on_ray = run(src, "ray.h5", ray_ex)
        tiny_local, _ = run(tiny, "tiny-local.h5")
        tiny_ray, _ = run(tiny, "tiny-ray.h5", ray_ex)
        print("embed on Ray (vlnav_data.collect.embed.tasks), one torch thread per process")
        print(f"machine: {machine()}")
        print(f"input: {args.num_episodes} episodes, {local.num_steps} frames at {args.image_size_px} px; "
              f"encoder {args.encoder}; {len(on_ray.tasks)} tasks of {args.episodes_per_task} episodes")  # fmt: skip
        print(f"local (1 process)     : stage {local.frames_per_s:7.1f} frames/s, wall {local_wall:6.1f} s")
        print(f"ray local (1 CPU/task): stage {on_ray.frames_per_s:7.1f} frames/s, wall {ray_wall:6.1f} s "
              f"(ratio {on_ray.frames_per_s / local.frames_per_s:.2f}; "
              f"nodes {sorted({t.node for t in on_ray.tasks})})")  # fmt: skip
        print(f"fixed cost of --ray local (2-episode file): {tiny_ray - tiny_local:.1f} s "
              f"({tiny_ray:.1f} s vs {tiny_local:.1f} s in this process)")  # fmt: skip
        print(f"arrays equal: {same_arrays(tmp / 'local.h5', tmp / 'ray.h5', args.encoder)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
