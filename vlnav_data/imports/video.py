"""Frames of one camera out of LeRobot's MP4 files, with PyAV (AV1, H.264, HEVC: whatever FFmpeg decodes).

LeRobot v3.0 packs many episodes into one file and gives each its ``from_timestamp``/``to_timestamp``.
:func:`scan_video` checks a file before any work (it opens, its codec decodes, and every frame an episode
needs is there at ``from + i / fps``: the packets are demuxed, not decoded); :class:`VideoCursor` then
decodes an episode's frames, continuing where the previous episode stopped (episodes are read in file
order, so a file is decoded once, front to back) and checking each frame's timestamp against the fps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import SchemaError

TIMESTAMP_TOLERANCE_S = 1e-4
"""How far a frame's timestamp may be from ``from_timestamp + i / fps`` (LeRobot's ``tolerance_s``)."""


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # the hub extra
        from vlnav_data.errors import ConfigError

        raise ConfigError("importing LeRobot videos needs PyAV: pip install 'vlnav-data[hub]'") from exc
    return av


def open_video(path: Path) -> tuple[Any, Any]:
    """Open ``path`` and return ``(container, video stream)``.

    Raises:
        SchemaError: it is missing, cannot be opened (truncated or damaged), has no video stream, or its
            codec has no decoder here.
    """
    av = _av()
    if not path.is_file():
        raise SchemaError(f"the video '{path}' is missing; the dataset is incomplete: download it again")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise SchemaError(
            f"the video '{path}' cannot be opened ({exc}); it is truncated or damaged: download it again"
        ) from exc
    if not container.streams.video:
        container.close()
        raise SchemaError(f"'{path}' holds no video stream; expected the camera's frames")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.name is None:
        container.close()
        raise SchemaError(f"'{path}': its video codec has no decoder in this FFmpeg (PyAV {av.__version__})")
    return container, stream


def scan_video(path: Path, needs: list[tuple[int, float, int]], fps: float, shape: tuple[int, int]) -> None:
    """Check, without decoding, that ``path`` holds every frame the episodes ``needs``.

    Args:
        path: the MP4 file.
        needs: ``(episode index, from_timestamp, length)`` of every selected episode stored in it.
        fps: the dataset's frame rate.
        shape: ``(height, width)`` the features say the frames have.

    Raises:
        SchemaError: the file cannot be read (:func:`open_video`), its frames have another size, a packet
            cannot be read (truncated), or an episode's frame at ``from + i / fps`` is not there.
    """
    av = _av()
    container, stream = open_video(path)
    try:
        if (stream.codec_context.height, stream.codec_context.width) != tuple(shape):
            raise SchemaError(
                f"'{path}' has {stream.codec_context.height}x{stream.codec_context.width} frames, but meta/info.json "
                f"says {shape[0]}x{shape[1]}"
            )
        times = []
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    times.append(float(packet.pts * stream.time_base))
        except (av.error.FFmpegError, OSError) as exc:
            raise SchemaError(
                f"'{path}' cannot be read to its end ({exc}); it is truncated: download it again"
            ) from exc
    finally:
        container.close()
    have = np.sort(np.asarray(times, dtype=np.float64))
    last = float(have[-1]) if len(have) else float("nan")
    for episode, start, length in needs:
        want = start + np.arange(length) / fps
        pos = np.clip(np.searchsorted(have, want), 0, max(len(have) - 1, 0))
        near = np.minimum(np.abs(have[pos] - want), np.abs(have[np.maximum(pos - 1, 0)] - want)) if len(have) else want
        missing = np.flatnonzero(near > TIMESTAMP_TOLERANCE_S) if len(have) else np.arange(length)
        if len(missing):
            i = int(missing[0])
            raise SchemaError(
                f"'{path}' has no frame at {want[i]:.4f} s (episode {episode}, frame {i} of {length} at {fps:g} fps; "
                f"the file's frames end at {last:.4f} s): the video is truncated or its timestamps do not follow "
                "the fps; download it again"
            )


class VideoCursor:
    """Decode consecutive episodes' frames from one file, front to back (seeking back only when asked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container, self._stream = open_video(path)
        self._stream.thread_type = "AUTO"
        self._frames = self._container.decode(self._stream)
        self._pending: Any = None
        self._position_s = -1.0

    def frames(self, start_s: float, length: int, fps: float, where: str) -> np.ndarray:
        """``(length, H, W, 3)`` uint8 RGB frames at ``start_s + i / fps``.

        Raises:
            SchemaError: a frame is missing or off its timestamp (by more than :data:`TIMESTAMP_TOLERANCE_S`).
        """
        if start_s < self._position_s - TIMESTAMP_TOLERANCE_S:
            self._seek(start_s)
        out: list[np.ndarray] = []
        while len(out) < length:
            frame = self._pending if self._pending is not None else next(self._frames, None)
            self._pending = None
            if frame is None:
                raise SchemaError(f"{where}: '{self.path}' ends after {len(out)} of its {length} frames")
            if frame.pts is None:
                raise SchemaError(
                    f"{where}: '{self.path}' has a frame without a timestamp; cannot check it against the fps"
                )
            t = float(frame.pts * frame.time_base)
            expected = start_s + len(out) / fps
            if t < expected - TIMESTAMP_TOLERANCE_S and not out:
                continue  # a frame of an earlier episode (or before a seek target)
            if abs(t - expected) > TIMESTAMP_TOLERANCE_S:
                raise SchemaError(
                    f"{where}: frame {len(out)} of '{self.path}' is at {t:.4f} s, not at {expected:.4f} s "
                    f"({fps:g} fps from {start_s:.4f} s)"
                )
            out.append(frame.to_ndarray(format="rgb24"))
            self._position_s = t
        return np.stack(out)

    def _seek(self, start_s: float) -> None:
        self._container.seek(int(start_s / self._stream.time_base), stream=self._stream, backward=True)
        self._frames = self._container.decode(self._stream)
        self._pending = None
        self._position_s = -1.0

    def close(self) -> None:
        self._container.close()
