"""Frames per second of ``vlnav-data import lerobot`` against PyAV's raw decode of the same videos, same run.

Usage::

    python bench/import_throughput.py                      # 24 episodes x 100 frames, 128 px, AV1
    python bench/import_throughput.py --episodes 8 --size 64

Setup (not timed): a synthetic arena file is exported as a LeRobot v3.0 dataset with video in LeRobot's
default codec (AV1, SVT-AV1, GOP 2, yuv420p), so the import reads what LeRobot writes. Then, timed:

* **baseline**: PyAV decodes every frame of the camera's MP4 files to RGB arrays (``container.decode`` +
  ``to_ndarray("rgb24")``, decoder threads ``AUTO`` like the importer), nothing else;
* **bound**: the same decode plus the deflate every frame costs in a ``vlnav-demos`` file (zlib at the
  format's ``GZIP_LEVEL_RGB``), timed apart, one thread: the rate no importer writing this format can pass
  on one core (``1 / (1/decode + 1/deflate)``);
* **import**: ``import_lerobot`` end to end (its checks before any work, parquet rows, decode, timestamp
  checks, gzip of every frame into the ``vlnav-demos`` file, commit per episode).

Memory: the import of the first third of the episodes and of all of them, each in a fresh process, prints
its peak RSS: streaming episode by episode, the two peaks should be about equal.

It prints the rates, ``import / raw decode`` (the issue's target >= 0.8) and ``import / bound``, the machine and
its load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def raw_decode(files: list[Path], deflate_level: int | None = None) -> tuple[int, float, float]:
    """Decode every frame of ``files`` to RGB; return (frames, seconds decoding, seconds deflating).

    With ``deflate_level``, each decoded frame is also deflated as the file format stores it (zlib, one
    frame per chunk) and that time is counted apart.
    """
    import zlib

    import av

    frames, deflate_s = 0, 0.0
    t0 = time.perf_counter()
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                frames += 1
                if deflate_level is not None:
                    t1 = time.perf_counter()
                    zlib.compress(rgb, deflate_level)
                    deflate_s += time.perf_counter() - t1
    return frames, time.perf_counter() - t0 - deflate_s, deflate_s


PEAK_RSS = """
import resource, sys
from vlnav_data.imports import LeRobotImportConfig, import_lerobot
import_lerobot(LeRobotImportConfig(root=sys.argv[1], out=sys.argv[2], episodes=sys.argv[3]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(root: Path, out: Path, episodes: str) -> float:
    """Peak RSS (MiB) of a fresh process importing ``episodes`` of ``root``."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(root), str(out), episodes], check=True, capture_output=True, text=True
    )
    return int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--steps", type=int, default=100, help="Frames per episode.")
    parser.add_argument("--size", type=int, default=128, help="Frame height and width (pixels).")
    parser.add_argument("--repeats", type=int, default=2, help="Timed runs of each; the best is reported.")
    args = parser.parse_args()

    import av
    from machine_info import cpu_name

    from vlnav_data.dataset.synthetic import write_synthetic_dataset
    from vlnav_data.imports import LeRobotImportConfig, import_lerobot
    from vlnav_data.publish import LeRobotExportConfig, export_lerobot

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, PyAV {av.__version__}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        arena = write_synthetic_dataset(
            tmpdir / "arena.h5",
            args.episodes,
            {"siglip-tiny-random": 8},
            image_size=(args.size, args.size),
            max_steps=args.steps,
        )
        export_lerobot(
            LeRobotExportConfig(
                dataset=str(arena), out_dir=str(tmpdir / "lerobot"), images="video", video_codec="libsvtav1"
            )
        )
        files = sorted((tmpdir / "lerobot" / "videos").rglob("*.mp4"))
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        from vlnav_data.dataset import schema

        raw_best, imp_best, bound_best, frames = 0.0, 0.0, 0.0, 0
        for rep in range(args.repeats):
            frames, raw_s, _ = raw_decode(files)
            _, dec_s, deflate_s = raw_decode(files, schema.GZIP_LEVEL_RGB)
            bound_best = max(bound_best, frames / (dec_s + deflate_s))
            out = tmpdir / f"imported{rep}.h5"
            t0 = time.perf_counter()
            result = import_lerobot(LeRobotImportConfig(root=str(tmpdir / "lerobot"), out=str(out)))
            imp_s = time.perf_counter() - t0
            assert result.num_steps == frames, (result.num_steps, frames)
            raw_best, imp_best = max(raw_best, frames / raw_s), max(imp_best, frames / imp_s)
            print(
                f"run {rep}: raw decode {frames / raw_s:8.1f} frames/s   deflate alone {frames / deflate_s:8.1f} "
                f"frames/s   import {frames / imp_s:8.1f} frames/s"
            )
        print(
            f"{args.episodes} episodes x {args.steps} frames at {args.size}x{args.size} px, AV1 "
            f"({len(files)} file(s), {size_mb:.2f} MB)"
        )
        print(f"raw decode (PyAV, baseline): {raw_best:.1f} frames/s")
        print(f"import lerobot:              {imp_best:.1f} frames/s")
        print(f"bound (decode + deflate):    {bound_best:.1f} frames/s")
        print(f"ratio import / raw decode:   {imp_best / raw_best:.2f}  (target >= 0.8)")
        print(f"ratio import / bound:        {imp_best / bound_best:.2f}")
        third = max(1, args.episodes // 3)
        small = peak_rss_mib(tmpdir / "lerobot", tmpdir / "small.h5", f"0:{third}")
        full = peak_rss_mib(tmpdir / "lerobot", tmpdir / "full.h5", f"0:{args.episodes}")
        episode_mib = args.steps * args.size * args.size * 3 / 2**20
        print(
            f"peak RSS: {third} episodes {small:.0f} MiB, {args.episodes} episodes {full:.0f} MiB "
            f"(ratio {full / small:.2f}; one episode's frames: {episode_mib:.1f} MiB)"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
