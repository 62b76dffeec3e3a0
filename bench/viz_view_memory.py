"""Peak memory of `vlnav-data view` against the number of episodes recorded (is writing a recording streamed?).

Writes a synthetic ``vlnav-demos`` file (``dataset.synthetic``: 128 px frames, 150-step episodes), then records
1 (the baseline, in the same run), 8 and 48 of its episodes, each in a fresh process, and prints each run's peak
resident memory (``ru_maxrss``), the recording's size and the raw frame bytes of the episodes recorded. Flat
memory: the peak grows by much less than the frames (or the recording) it wrote.

    python bench/viz_view_memory.py [--episodes 1,8,48] [--image-px 128] [--steps 150]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import cpu_name  # noqa: E402

CHILD = """
import json, resource, sys, time
from pathlib import Path
from vlnav_data.viz import ViewConfig, view_dataset
n = int(sys.argv[3])
t0 = time.perf_counter()
r = view_dataset(ViewConfig(path=Path(sys.argv[1]), out=Path(sys.argv[2]), episode_range=f"0:{n}", cosine=False))
print(json.dumps({"episodes": n, "steps": r.num_steps, "frames": r.frames, "wall_s": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", default="1,8,48")
    ap.add_argument("--image-px", type=int, default=128)
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    counts = [int(c) for c in args.episodes.split(",")]
    from vlnav_data.dataset.synthetic import write_synthetic_dataset

    print(f"machine: {cpu_name()}, {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demos.h5"
        t0 = time.perf_counter()
        size = (args.image_px, args.image_px)
        write_synthetic_dataset(path, num_episodes=max(counts), image_size=size, max_steps=args.steps)
        print(f"synthetic file: {max(counts)} episodes, {args.image_px} px, <= {args.steps} steps "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        rows = []
        for n in counts:
            out = Path(tmp) / f"view{n}.rrd"
            run = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(out), str(n)], capture_output=True, text=True, check=True
            )
            row = json.loads(run.stdout.strip().splitlines()[-1])
            row["rrd_mb"] = out.stat().st_size / 2**20
            row["raw_frames_mb"] = row["steps"] * args.image_px * args.image_px * 3 / 2**20
            rows.append(row)
    base = rows[0]
    heads = ("episodes", "steps", "raw frames MB", "rrd MB", "peak RSS MB", "vs baseline", "s")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (8, 6, 13, 7, 11, 11, 6), strict=True)))
    for r in rows:
        print(
            f"{r['episodes']:>8} {r['steps']:>6} {r['raw_frames_mb']:>13.1f} {r['rrd_mb']:>7.1f} "
            f"{r['peak_rss_mb']:>11.1f} {r['peak_rss_mb'] - base['peak_rss_mb']:>+11.1f} {r['wall_s']:>6.1f}"
        )


if __name__ == "__main__":
    main()
