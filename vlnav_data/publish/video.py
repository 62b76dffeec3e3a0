"""MP4 video for LeRobot's ``observation.images.<camera>`` features, written and read with PyAV.

Several episodes share one file (LeRobot v3.0): episode ``i`` occupies the frames
``[from_timestamp * fps, to_timestamp * fps)``. Frames are stored as ``yuv420p``; presentation
timestamps count frames (time base ``1 / fps``), so the frame of an episode at ``timestamp`` t lies at
``from_timestamp + t``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vlnav_data.errors import ConfigError, did_you_mean
from vlnav_data.publish.extras import require


@dataclass(frozen=True, kw_only=True)
class VideoCodec:
    """One encoder shipped in PyAV's wheels.

    Attributes:
        name: the name users pass (``--video-codec``), also PyAV's encoder name.
        codec: the codec family written to ``info.json`` (``video.codec``).
        library: the encoder library.
        licence: the encoder library's licence (the encoded video itself is not covered by it).
        options: encoder options (strings, as FFmpeg takes them); ``{crf}`` is filled in.
        pix_fmts: pixel formats offered (the first is the default).
    """

    name: str
    codec: str
    library: str
    licence: str
    options: tuple[tuple[str, str], ...]
    pix_fmts: tuple[str, ...] = ("yuv420p",)


VIDEO_CODECS: dict[str, VideoCodec] = {
    "libsvtav1": VideoCodec(
        name="libsvtav1",
        codec="av1",
        library="SVT-AV1",
        licence="BSD-3-Clause-Clear (with the AOMedia patent licence 1.0)",
        options=(("crf", "{crf}"), ("preset", "10")),
    ),
    "libx264": VideoCodec(
        name="libx264",
        codec="h264",
        library="x264",
        licence="GPL-2.0-or-later",
        options=(("crf", "{crf}"), ("preset", "veryfast")),
        pix_fmts=("yuv420p", "yuv444p"),
    ),
}
"""Video encoders we offer. AV1 (``libsvtav1``) is LeRobot's default (``configs/video.py``)."""

DEFAULT_VIDEO_CODEC = "libx264"
DEFAULT_CRF = 18
"""H.264, crf 18 by default. Measured on a real 4-episode `vlnav-data build` (text2nav, 256x256, 452 frames,
yuv420p), RGB PSNR against the HDF5 frames, overall / worst frame / bytes per frame:
x264 ``veryfast`` crf 23: 36.9 / 34.3 dB / 986 B; crf 20: 37.6 / 35.0 / 1202; crf 18: 37.9 / 35.3 / 1362;
SVT-AV1 preset 10 crf 23: 36.1 / 32.2 / 1573; crf 18: 36.3 / 32.6 / 1881. H.264 also plays in every browser
(the Hub viewer). yuv444p (x264) crf 23: 39.7 / 37.5 / 1033."""

PIX_FMTS = ("yuv420p", "yuv444p")
"""``yuv420p`` (LeRobot's default, plays in every browser) halves the colour resolution: on frames of
saturated objects over a flat floor it limits RGB PSNR to about 31 dB whatever the bit rate (measured on
the synthetic arena frames at 256x256). ``yuv444p`` (H.264 High 4:4:4, ``libx264`` only) keeps full
colour resolution; LeRobot's PyAV/torchcodec decoders read it, some browsers do not."""
GOP_SIZE = 2
"""Keyframe every 2 frames, as LeRobot's default ``g=2``: decoding any frame needs at most one other."""


def get_video_codec(name: str) -> VideoCodec:
    """Return the codec entry for ``name`` after checking PyAV can encode with it.

    Raises:
        ConfigError: unknown name, or this PyAV build lacks the encoder.
    """
    if name not in VIDEO_CODECS:
        raise ConfigError(
            f"unknown video codec '{name}'; expected one of: {', '.join(sorted(VIDEO_CODECS))}."
            f"{did_you_mean(name, VIDEO_CODECS)}"
        )
    av = require("av")
    try:
        av.codec.Codec(name, "w")
    except Exception as exc:  # PyAV raises UnknownCodecError (a ValueError) or FFmpegError
        raise ConfigError(
            f"this PyAV build ({av.__version__}) cannot encode with '{name}'; use another --video-codec "
            f"({', '.join(sorted(VIDEO_CODECS))}) or --images png"
        ) from exc
    return VIDEO_CODECS[name]


def check_pix_fmt(codec: VideoCodec, pix_fmt: str) -> None:
    """Raise ConfigError unless ``codec`` offers ``pix_fmt`` (or it is ``auto``)."""
    if pix_fmt != "auto" and pix_fmt not in codec.pix_fmts:
        offers = [name for name, c in VIDEO_CODECS.items() if pix_fmt in c.pix_fmts]
        raise ConfigError(
            f"--pix-fmt {pix_fmt} is not offered by --video-codec {codec.name} "
            f"(it offers {', '.join(codec.pix_fmts)}); "
            + (f"use --video-codec {' or '.join(offers)}" if offers else f"use one of {', '.join(PIX_FMTS)} or auto")
        )


AUTO_PIX_FMT = "auto"
SMALL_FRAME_PX = 128
"""``--pix-fmt auto`` picks ``yuv444p`` for frames whose shorter side is below this, else ``yuv420p``.

RGB PSNR of real arena frames (``text2nav``, 4 pursuit episodes, 457 frames, x264 ``veryfast`` crf 18),
pooled over all frames / worst frame: 64 px yuv420p 32.6 / 29.6 dB, yuv444p 36.7 / 33.7; 96 px 34.6 /
31.4 vs 38.4 / 35.7; 128 px 35.9 / 33.0 vs 40.5 / 37.4; 256 px 38.0 / 35.5 vs 42.9 / 40.4. Below 128 px
4:2:0 chroma falls under 35 dB pooled, so small frames keep full colour; from 128 px on, the
browser-friendly yuv420p stays above 35 dB pooled (``tests/publish/test_publish_video.py`` checks 64 and
256 px)."""


def resolve_pix_fmt(codec: VideoCodec, pix_fmt: str, height: int, width: int) -> str:
    """The pixel format to encode with: ``pix_fmt`` itself, or the choice of ``auto`` (:data:`SMALL_FRAME_PX`).

    Args:
        codec: the encoder.
        pix_fmt: ``auto``, ``yuv420p`` or ``yuv444p``.
        height: frame height in pixels.
        width: frame width in pixels.

    Returns:
        A pixel format ``codec`` offers.

    Raises:
        ConfigError: ``pix_fmt`` is not offered by ``codec``.
    """
    if pix_fmt == AUTO_PIX_FMT:
        small = min(height, width) < SMALL_FRAME_PX
        return "yuv444p" if small and "yuv444p" in codec.pix_fmts else codec.pix_fmts[0]
    check_pix_fmt(codec, pix_fmt)
    return pix_fmt


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


class VideoFileWriter:
    """Append RGB frames of consecutive episodes to one MP4 file.

    Args:
        path: output ``.mp4`` path (parent folders are created).
        codec: the encoder to use.
        fps: frames per second.
        height: frame height in pixels (even, for yuv420p).
        width: frame width in pixels (even).
        crf: constant rate factor (lower = better quality, bigger file).
    """

    def __init__(
        self, path: Path, *, codec: VideoCodec, fps: float, height: int, width: int, crf: int, pix_fmt: str = "yuv420p"
    ) -> None:
        av = require("av")
        check_pix_fmt(codec, pix_fmt)
        if pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise ConfigError(
                f"yuv420p video needs even frame sizes, got {height}x{width}; use --pix-fmt yuv444p or --images png"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stderr unless told: errors only
        self.path = path
        self.height, self.width = height, width
        self.frames_written = 0
        self.bytes_muxed = 0
        self._av = av
        self._container = av.open(str(path), mode="w")
        options = {k: v.format(crf=crf) for k, v in codec.options}
        stream = self._container.add_stream(codec.name, rate=_rate(fps), options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        self.pix_fmt = pix_fmt
        stream.time_base = 1 / _rate(fps)
        stream.codec_context.gop_size = GOP_SIZE
        self._stream = stream

    def write(self, frames: np.ndarray) -> None:
        """Encode frames.

        Args:
            frames: uint8 ``(T, H, W, 3)``.
        """
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(f"expected uint8 (T, {self.height}, {self.width}, 3), got {frames.dtype} {frames.shape}")
        for frame in frames:
            rgb = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            # box-filtered (AREA) chroma: the least-error way to halve colour resolution for yuv420p
            vf = rgb.reformat(format=self.pix_fmt, interpolation="AREA")
            vf.pts = self.frames_written
            self.frames_written += 1
            for packet in self._stream.encode(vf):
                self.bytes_muxed += packet.size
                self._container.mux(packet)

    def size_bytes(self) -> int:
        """Bytes of encoded video so far (trails the final size by the frames the encoder still holds)."""
        return self.bytes_muxed

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()


def decode_frames(path: Path) -> Iterator[np.ndarray]:
    """Yield every frame of a video file in presentation order as uint8 ``(H, W, 3)`` RGB."""
    av = require("av")
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def psnr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (``inf`` when identical)."""
    err = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else float(10.0 * np.log10(255.0**2 / err))
