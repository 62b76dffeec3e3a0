"""PyAV video writer: options reach the encoder, frame order and count survive, bad settings are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.publish.video import VIDEO_CODECS, VideoFileWriter, decode_frames, get_video_codec, psnr_db

pytest.importorskip("av")


def _frames(n: int = 12, size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        out[i, ..., 0] = (xx * 5 + i * 9) % 256
        out[i, ..., 1] = (yy * 5) % 256
        out[i, ..., 2] = 40 + 10 * i
    return out


def _encode(path: Path, frames: np.ndarray, codec: str, crf: int, pix_fmt: str = "yuv420p") -> int:
    writer = VideoFileWriter(
        path,
        codec=get_video_codec(codec),
        fps=30.0,
        height=frames.shape[1],
        width=frames.shape[2],
        crf=crf,
        pix_fmt=pix_fmt,
    )
    writer.write(frames[:5])
    writer.write(frames[5:])
    writer.close()
    assert writer.frames_written == len(frames)
    return path.stat().st_size


@pytest.mark.parametrize("codec", sorted(VIDEO_CODECS))
def test_crf_reaches_the_encoder_and_frames_come_back_in_order(codec: str, tmp_path: Path) -> None:
    frames = _frames()
    fine = _encode(tmp_path / "fine.mp4", frames, codec, crf=10)
    coarse = _encode(tmp_path / "coarse.mp4", frames, codec, crf=45)
    assert fine > coarse
    decoded = list(decode_frames(tmp_path / "fine.mp4"))
    assert len(decoded) == len(frames)
    for i, frame in enumerate(decoded):  # each decoded frame is closest to its own source frame
        scores = [psnr_db(src, frame) for src in frames]
        assert int(np.argmax(scores)) == i


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown video codec 'h265'"):
        get_video_codec("h265")
    with pytest.raises(ConfigError, match="yuv420p video needs even frame sizes, got 33x48"):
        VideoFileWriter(tmp_path / "a.mp4", codec=get_video_codec("libx264"), fps=30, height=33, width=48, crf=18)
    with pytest.raises(ConfigError, match="--pix-fmt yuv444p is not offered by --video-codec libsvtav1"):
        VideoFileWriter(
            tmp_path / "b.mp4",
            codec=get_video_codec("libsvtav1"),
            fps=30,
            height=32,
            width=32,
            crf=18,
            pix_fmt="yuv444p",
        )
