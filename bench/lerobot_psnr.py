"""RGB PSNR of the LeRobot export's video against the source frames, by frame size and pixel format.

Usage::

    python bench/lerobot_psnr.py                      # text2nav, 4 pursuit episodes, 64/96/128/256 px

Renders real arena episodes (the pursuit controller from seeded starts) at each size, encodes them the
way ``vlnav-data export`` does (``VideoFileWriter``: x264 ``veryfast``, crf 18, GOP 2), decodes them
with PyAV and prints PSNR pooled over all frames, the worst frame's PSNR and how many frames fall
below 35 dB, for ``yuv420p`` (LeRobot's default: the same-run baseline) and ``yuv444p``, plus what
``--pix-fmt auto`` picks. This is where the README's "within 35 dB" and ``SMALL_FRAME_PX`` come from.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96, 128, 256])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--crf", type=int, default=18)
    args = parser.parse_args()

    import av

    from vlnav_data.expert import PursuitController
    from vlnav_data.publish.video import (
        DEFAULT_VIDEO_CODEC,
        VideoFileWriter,
        decode_frames,
        get_video_codec,
        psnr_db,
        resolve_pix_fmt,
    )
    from vlnav_data.sim import make_arena, rollout

    codec = get_video_codec(DEFAULT_VIDEO_CODEC)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, PyAV {av.__version__}")
    print(
        f"{'size':>5} {'pix_fmt':<8} {'frames':>6} {'pooled dB':>9} {'worst dB':>8} {'<35 dB':>6} {'B/frame':>8}  auto"
    )
    for size in args.sizes:
        env = make_arena("text2nav", num_envs=args.episodes, image_height_px=size, image_width_px=size)
        policy = PursuitController.for_arena(env.config)
        episodes = list(rollout(env, policy, list(range(1, args.episodes + 1))))
        frames = np.concatenate([e.rgb for e in episodes])
        auto = resolve_pix_fmt(codec, "auto", size, size)
        for pix_fmt in ("yuv420p", "yuv444p"):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "v.mp4"
                writer = VideoFileWriter(
                    path, codec=codec, fps=30, height=size, width=size, crf=args.crf, pix_fmt=pix_fmt
                )
                writer.write(frames)
                writer.close()
                decoded = np.stack(list(decode_frames(path)))
                per_frame = np.array([psnr_db(a, b) for a, b in zip(frames, decoded, strict=True)])
                pooled = psnr_db(frames, decoded)
                size_b = path.stat().st_size / len(frames)
            mark = "<- auto" if pix_fmt == auto else ""
            print(
                f"{size:>5} {pix_fmt:<8} {len(frames):>6} {pooled:9.1f} {per_frame.min():8.1f} "
                f"{int((per_frame < 35).sum()):>6} {size_b:8.0f}  {mark}"
            )


if __name__ == "__main__":
    main()
