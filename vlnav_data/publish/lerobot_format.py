"""LeRobot v3.0 format of the export: file paths, the feature schema, the export's config and result.

What ``meta/info.json`` says and where each file goes (reference ``dataset-ecosystem.md`` §3.2; lerobot
``datasets/utils.py`` paths), the episode order that makes ``splits`` ranges, and the integer frame rate.
The writers are in :mod:`vlnav_data.publish.lerobot_writers`, the export in :mod:`vlnav_data.publish.lerobot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlnav_data.dataset import schema
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.errors import ConfigError, SchemaError, unknown_name
from vlnav_data.publish.extras import require
from vlnav_data.publish.video import (
    AUTO_PIX_FMT,
    DEFAULT_CRF,
    DEFAULT_VIDEO_CODEC,
    VIDEO_CODECS,
    VideoCodec,
    check_pix_fmt,
)

CODEBASE_VERSION = "v3.0"
CAMERA_KEY = "observation.images.front"
STATE_KEY = "observation.state"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
IMAGE_MODES = ("video", "png")
INFO_KEYS = (
    "codebase_version",
    "fps",
    "features",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "data_path",
    "video_path",
    "robot_type",
    "splits",
)
"""LeRobot v3.0 ``DatasetInfo`` fields, in its order."""

INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
"""LeRobot's ``DEFAULT_FEATURES``: every frame table has them."""

PRIVILEGED_NOTE = (
    "privileged simulator state (robot pose, target position, ...): the expert's input; a student policy "
    "must never see it"
)


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
class LeRobotExportConfig:
    """``vlnav-data export FILE --format lerobot --out DIR``.

    Attributes:
        dataset: the complete ``vlnav-demos`` HDF5 file to export.
        out_dir: the folder to write the LeRobot dataset into (new or empty, unless ``overwrite``).
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
    images: str = "video"
    encoders: tuple[str, ...] = ()
    video_codec: str = DEFAULT_VIDEO_CODEC
    pix_fmt: str = AUTO_PIX_FMT
    crf: int = DEFAULT_CRF
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
        if self.chunks_size < 1:
            raise ConfigError(f"chunks_size must be >= 1, got {self.chunks_size}")
        if self.stats_bins < 2:
            raise ConfigError(f"stats_bins must be >= 2, got {self.stats_bins}")


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


def episode_order(reader: DatasetReader) -> tuple[list[str], dict[str, str]]:
    """Demo names in export order (train, unassigned, valid) and the ``splits`` ranges."""
    names = list(reader.demo_names)
    masks: dict[str, list[str]] = {}
    for split in schema.SPLITS:
        try:
            masks[split] = [n for n in reader.split(split) if n in names]
        except SchemaError:
            masks[split] = []
    if not masks["train"] and not masks["valid"]:
        return names, {"train": f"0:{len(names)}"}
    in_split = set(masks["train"]) | set(masks["valid"])
    rest = [n for n in names if n not in in_split]
    order = masks["train"] + rest + masks["valid"]
    splits: dict[str, str] = {}
    if masks["train"]:
        splits["train"] = f"0:{len(masks['train'])}"
    if masks["valid"]:
        splits["valid"] = f"{len(order) - len(masks['valid'])}:{len(order)}"
    return order, splits


def selected_encoders(reader: DatasetReader, wanted: tuple[str, ...]) -> tuple[str, ...]:
    available = reader.encoders
    for name in wanted:
        if name not in available:
            raise unknown_name("encoder in this file", name, available)
    return wanted or tuple(available)


def lerobot_fps(reader: DatasetReader) -> int:
    """The frame rate as LeRobot stores it: an integer (``meta/info.json`` ``fps``, ``video.fps``).

    Raises:
        SchemaError: the file records no positive rate, or one that is not a whole number of Hz.
    """
    fps = float(reader.fps)
    if not fps > 0:
        raise SchemaError(f"'{reader.path}' has no positive fps attribute (got {fps}); run `vlnav-data validate`")
    if abs(fps - round(fps)) > 1e-6:
        raise SchemaError(
            f"'{reader.path}' records {fps} frames/s, but LeRobot stores fps as an integer; export a dataset built "
            "at a whole number of Hz"
        )
    return int(round(fps))


def build_features(
    reader: DatasetReader, encoders: tuple[str, ...], images: str, codec: VideoCodec | None, pix_fmt: str = "yuv420p"
) -> dict[str, dict[str, Any]]:
    """``info.json`` features: ``{key: {"dtype", "shape", "names"[, "info"]}}``."""
    h, w, c = reader.image_shape
    state_names = reader.state_names
    state_dim = len(state_names) or int(
        reader.episode(reader.demo_names[0], keys=[schema.PRIVILEGED_STATE])[schema.PRIVILEGED_STATE].shape[1]
    )
    camera: dict[str, Any] = {"dtype": "image" if images == "png" else "video", "shape": [h, w, c]}
    camera["names"] = ["height", "width", "channels"]
    if images == "video":
        assert codec is not None
        camera["info"] = {
            "video.height": h,
            "video.width": w,
            "video.codec": codec.codec,
            "video.pix_fmt": pix_fmt,
            "video.is_depth_map": False,
            "video.fps": lerobot_fps(reader),
            "video.channels": c,
            "has_audio": False,
        }
    feats: dict[str, dict[str, Any]] = {
        CAMERA_KEY: camera,
        STATE_KEY: {
            "dtype": "float32",
            "shape": [state_dim],
            "names": list(state_names) or None,
            "info": {"privileged": True, "source": schema.PRIVILEGED_STATE, "note": PRIVILEGED_NOTE},
        },
    }
    specs = reader.encoder_specs
    for enc in encoders:
        spec = specs[enc]
        feats[f"observation.{enc}_joint"] = {
            "dtype": "float32",
            "shape": [int(spec["dim"])],
            "names": None,
            "info": {
                "source": schema.encoder_path(enc, "joint"),
                "model_id": spec.get("model_id", ""),
                "fusion": spec.get("fusion", ""),
                "privileged": bool(spec.get("privileged", False)),
                "stored_dtype": schema.EMBEDDING_DTYPE,
            },
        }
    feats["action"] = {"dtype": "float32", "shape": [2], "names": list(schema.ACTION_NAMES)}
    feats["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    feats["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    feats["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for key in ("frame_index", "episode_index", "index", "task_index"):
        feats[key] = {"dtype": "int64", "shape": [1], "names": None}
    return feats


def hf_features(features: dict[str, dict[str, Any]]) -> Any:
    """``datasets.Features`` of the frame parquet (video features live in MP4 files and are left out)."""
    ds = require("datasets")
    list_type = getattr(ds, "List", None) or ds.Sequence
    out = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        if ft["dtype"] == "image":
            out[key] = ds.Image()
        elif ft["shape"] == [1]:
            out[key] = ds.Value(ft["dtype"])
        else:
            out[key] = list_type(ds.Value(ft["dtype"]), length=int(ft["shape"][0]))
    return ds.Features(out)
