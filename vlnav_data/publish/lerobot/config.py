"""Config and result of the LeRobot v3.0 export (``vlnav-data export FILE --format lerobot``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlnav_data.errors import ConfigError, check_at_least, unknown_name
from vlnav_data.jsonio import fields_of
from vlnav_data.publish.video import AUTO_PIX_FMT, DEFAULT_CRF, DEFAULT_VIDEO_CODEC, VIDEO_CODECS, check_pix_fmt

IMAGE_MODES = ("video", "png")


def check_image_options(images: str, video_codec: str, pix_fmt: str) -> None:
    """How the camera is exported: ``images`` one of :data:`IMAGE_MODES`; for video, a known codec offering ``pix_fmt``.

    Raises:
        ConfigError: an unknown mode or codec, or a pixel format the codec does not offer.
    """
    if images not in IMAGE_MODES:
        raise unknown_name("--images mode", images, IMAGE_MODES)
    if video_codec not in VIDEO_CODECS:
        raise unknown_name("video codec", video_codec, VIDEO_CODECS)
    if images == "video":
        check_pix_fmt(VIDEO_CODECS[video_codec], pix_fmt)


@dataclass(frozen=True, kw_only=True)
class LeRobotOptions:
    """How the camera and the embeddings are exported: the options ``export`` and ``publish`` share.

    Attributes:
        images: ``video`` (MP4 files, LeRobot's default) or ``png`` (PNG bytes inside the parquet; for
            small sets: no decoder needed, exact pixels).
        encoders: encoders whose ``<enc>_joint`` embeddings become ``observation.<enc>_joint``; empty = all
            encoders in the file.
        video_codec: PyAV encoder for ``images="video"``: ``libx264`` (H.264, default) or ``libsvtav1`` (AV1,
            LeRobot's default; see :data:`vlnav_data.publish.video.DEFAULT_VIDEO_CODEC` for why not ours) or
            ``libx264`` (H.264).
        pix_fmt: ``auto`` (``yuv444p`` below 128 px, where 4:2:0 falls under 35 dB PSNR, else ``yuv420p``;
            :data:`vlnav_data.publish.video.SMALL_FRAME_PX`), ``yuv420p`` (LeRobot's default; halves colour
            resolution) or ``yuv444p`` (full colour, ``libx264`` only).
        crf: the encoder's constant rate factor (lower = better quality, bigger files).
    """

    images: str = "video"
    encoders: tuple[str, ...] = ()
    video_codec: str = DEFAULT_VIDEO_CODEC
    pix_fmt: str = AUTO_PIX_FMT
    crf: int = DEFAULT_CRF

    def lerobot_options(self) -> dict[str, Any]:
        """These options alone, as keyword arguments (e.g. for the export a ``publish`` runs)."""
        return fields_of(self, LeRobotOptions)


@dataclass(frozen=True, kw_only=True)
class LeRobotExportConfig(LeRobotOptions):
    """``vlnav-data export FILE --format lerobot --out DIR``: the :class:`LeRobotOptions`, plus

    Attributes:
        dataset: the complete ``vlnav-demos`` HDF5 file to export.
        out_dir: the folder to write the LeRobot dataset into (new or empty, unless ``overwrite``).
        overwrite: replace the contents of a non-empty ``out_dir``.
        data_file_size_mb: start a new data parquet file once the current one reaches this size (MB).
        video_file_size_mb: start a new MP4 file once the current one reaches this size (MB).
        chunks_size: files per ``chunk-XXX`` folder (LeRobot: 1000).
        robot_type: ``info.json`` ``robot_type``.
        stats_bins: histogram bins per dimension for the quantiles of vector features (error of a
            quantile <= (max - min) / stats_bins).
    """

    dataset: Path
    out_dir: Path
    overwrite: bool = False
    data_file_size_mb: float = 100.0
    video_file_size_mb: float = 200.0
    chunks_size: int = 1000
    robot_type: str = "jetbot"
    stats_bins: int = 2048

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", Path(self.dataset))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "encoders", tuple(self.encoders))
        check_image_options(self.images, self.video_codec, self.pix_fmt)
        if not 0 <= self.crf <= 63:
            raise ConfigError(f"--crf must be in 0..63, got {self.crf}")
        if not (self.data_file_size_mb > 0 and self.video_file_size_mb > 0):
            raise ConfigError(
                f"file size limits must be positive, got data {self.data_file_size_mb} MB, "
                f"video {self.video_file_size_mb} MB"
            )
        check_at_least("chunks_size", self.chunks_size, 1)
        check_at_least("stats_bins", self.stats_bins, 2)


@dataclass(frozen=True, kw_only=True)
class LeRobotExportResult:
    """What an export wrote.

    Attributes:
        out_dir: the dataset root.
        total_episodes: episodes written.
        total_frames: frames (rows) written.
        total_tasks: rows of ``meta/tasks.parquet``.
        splits: ``info.json`` splits, e.g. ``{"train": "0:8", "valid": "8:10"}``.
        episode_demos: source demo name of each episode, in episode order.
        data_files: data parquet paths relative to ``out_dir``.
        video_files: MP4 paths relative to ``out_dir`` (empty for PNG).
        images: ``video`` or ``png``.
        video_codec: the codec family (``av1``/``h264``), or None for PNG.
        video_encoder: the encoder library and its licence, or None for PNG.
        pix_fmt: the pixel format encoded (``auto`` resolved), or None for PNG.
        encoders: the embedding encoders exported.
        seconds: wall time.
    """

    out_dir: Path
    total_episodes: int
    total_frames: int
    total_tasks: int
    splits: dict[str, str]
    episode_demos: tuple[str, ...]
    data_files: tuple[str, ...]
    video_files: tuple[str, ...]
    images: str
    video_codec: str | None
    video_encoder: str | None
    pix_fmt: str | None
    encoders: tuple[str, ...]
    seconds: float = field(default=0.0)
