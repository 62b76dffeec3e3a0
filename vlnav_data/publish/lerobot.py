"""Export a ``vlnav-demos`` file as a LeRobot v3.0 dataset, with pyarrow and PyAV only (no lerobot).

Layout (reference ``dataset-ecosystem.md`` §3.2; lerobot ``datasets/utils.py`` paths)::

    meta/info.json                                   codebase_version "v3.0", features, totals, splits
    meta/stats.json                                  per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                               index "task" (the instruction) -> column task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode
    data/chunk-{c:03d}/file-{f:03d}.parquet          frames of many episodes per file
    videos/observation.images.front/chunk-{c:03d}/file-{f:03d}.mp4   (``images="video"``)

Frame columns: ``observation.state`` (the simulator's **privileged** state — robot pose, target position;
an expert's input that a student policy must never see), ``observation.<enc>_joint`` (float32 copies of
the stored float16 joint embeddings), ``action``, ``next.reward``, ``next.done``, ``timestamp``,
``frame_index``, ``episode_index``, ``index``, ``task_index`` and, with ``images="png"``, the camera
``observation.images.front`` as PNG bytes (HF ``datasets.Image`` struct ``{bytes, path}``).

Episodes are ordered train first, then demos in no split, then valid, so that ``splits`` are ranges
(``"train": "0:n"``, ``"valid": "m:N"``). The export streams one episode at a time.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.errors import ConfigError, SchemaError, unknown_name
from vlnav_data.publish.extras import require
from vlnav_data.publish.folders import prepare_out_dir
from vlnav_data.publish.stats import (
    ImageStats,
    VectorStats,
    exact_vector_stats,
    stats_to_json,
)
from vlnav_data.publish.video import (
    AUTO_PIX_FMT,
    DEFAULT_CRF,
    DEFAULT_VIDEO_CODEC,
    VIDEO_CODECS,
    VideoCodec,
    VideoFileWriter,
    check_pix_fmt,
    get_video_codec,
    resolve_pix_fmt,
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
        if self.images not in IMAGE_MODES:
            raise unknown_name("--images mode", self.images, IMAGE_MODES)
        if self.video_codec not in VIDEO_CODECS:
            raise unknown_name("video codec", self.video_codec, VIDEO_CODECS)
        if self.images == "video":
            check_pix_fmt(VIDEO_CODECS[self.video_codec], self.pix_fmt)
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


def export_lerobot(config: LeRobotExportConfig) -> LeRobotExportResult:
    """Export a dataset file as LeRobot v3.0 into ``config.out_dir`` (see the module docstring).

    Raises:
        SchemaError: the input is missing, not a vlnav-demos file, or incomplete.
        ConfigError: bad options, an unknown encoder, a non-empty ``out_dir`` without ``overwrite``, or a
            missing ``hub`` extra.
    """
    for module in ("pyarrow", "datasets") + (("av",) if config.images == "video" else ()):
        require(module)
    with DatasetReader(config.dataset) as reader:
        out = prepare_out_dir(config.out_dir, overwrite=config.overwrite, keep=[config.dataset])
        return write_lerobot(reader, out, config)


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


def _selected_encoders(reader: DatasetReader, wanted: tuple[str, ...]) -> tuple[str, ...]:
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


def _png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


class _RollingParquet:
    """Parquet files that roll over to ``file-{f+1}`` once one reaches ``max_bytes``."""

    def __init__(self, root: Path, template: str, schema: Any, max_bytes: float, chunks_size: int) -> None:
        self.pa = require("pyarrow")
        self.pq = require("pyarrow.parquet")
        self.root, self.template, self.schema = root, template, schema
        self.max_bytes, self.chunks_size = max_bytes, chunks_size
        self.chunk_index, self.file_index = 0, -1
        self.files: list[str] = []
        self._sink: Any = None
        self._writer: Any = None
        self.rows_in_file = 0

    def ensure_open(self) -> tuple[int, int]:
        """Open the next file when none is open or the current one is full; return its indices."""
        if self._writer is not None and self._sink.tell() >= self.max_bytes:
            self.close()
        if self._writer is None:
            self.file_index += 1
            if self.file_index >= self.chunks_size:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
            rel = self.template.format(chunk_index=self.chunk_index, file_index=self.file_index)
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = self.pa.OSFile(str(path), "wb")
            self._writer = self.pq.ParquetWriter(self._sink, self.schema)
            self.files.append(rel)
            self.rows_in_file = 0
        return self.chunk_index, self.file_index

    def write(self, table: Any) -> None:
        self._writer.write_table(table)
        self.rows_in_file += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer, self._sink = None, None


class _RollingVideo:
    """MP4 files that roll over once one reaches ``max_bytes``."""

    def __init__(
        self,
        root: Path,
        codec: VideoCodec,
        fps: float,
        shape: tuple[int, int, int],
        crf: int,
        pix_fmt: str,
        max_bytes: float,
        chunks_size: int,
    ) -> None:
        self.root, self.codec, self.fps, self.shape, self.crf = root, codec, fps, shape, crf
        self.pix_fmt = pix_fmt
        self.max_bytes, self.chunks_size = max_bytes, chunks_size
        self.chunk_index, self.file_index = 0, -1
        self.files: list[str] = []
        self.writer: VideoFileWriter | None = None

    def ensure_open(self) -> tuple[int, int]:
        if self.writer is not None and self.writer.size_bytes() >= self.max_bytes:
            self.close()
        if self.writer is None:
            self.file_index += 1
            if self.file_index >= self.chunks_size:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
            rel = VIDEO_PATH.format(video_key=CAMERA_KEY, chunk_index=self.chunk_index, file_index=self.file_index)
            h, w, _ = self.shape
            self.writer = VideoFileWriter(
                self.root / rel, codec=self.codec, fps=self.fps, height=h, width=w, crf=self.crf, pix_fmt=self.pix_fmt
            )
            self.files.append(rel)
        return self.chunk_index, self.file_index

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


EPISODE_ROWS_BATCH = 64
"""Episode rows buffered before a write to ``meta/episodes``."""


class _EpisodeRows:
    """``meta/episodes`` rows, written in batches (per-episode stats of wide embeddings add up)."""

    def __init__(self, path: Path) -> None:
        self.pa = require("pyarrow")
        self.pq = require("pyarrow.parquet")
        self.path, self.batch = path, EPISODE_ROWS_BATCH
        self.rows: list[dict[str, Any]] = []
        self._writer: Any = None

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self._writer is None:
            table = self.pa.Table.from_pylist(self.rows)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self.pq.ParquetWriter(str(self.path), table.schema)
        else:
            table = self.pa.Table.from_pylist(self.rows, schema=self._writer.schema)
        self._writer.write_table(table)
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _frame_table(
    pa: Any,
    schema_: Any,
    ep: dict[str, Any],
    encoders: tuple[str, ...],
    episode_index: int,
    start_index: int,
    images: str,
) -> Any:
    t = int(ep[schema.ACTIONS].shape[0])

    def vec(values: np.ndarray) -> Any:
        arr = np.ascontiguousarray(values, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])

    columns: dict[str, Any] = {}
    if images == "png":
        rgb = ep[schema.RGB]
        columns[CAMERA_KEY] = pa.StructArray.from_arrays(
            [pa.array([_png_bytes(f) for f in rgb], pa.binary()), pa.array([None] * t, pa.string())],
            names=["bytes", "path"],
        )
    columns[STATE_KEY] = vec(ep[schema.PRIVILEGED_STATE])
    for enc in encoders:
        columns[f"observation.{enc}_joint"] = vec(ep[schema.encoder_path(enc, "joint")])
    columns["action"] = vec(ep[schema.ACTIONS])
    columns["next.reward"] = pa.array(np.asarray(ep[schema.REWARDS], dtype=np.float32))
    columns["next.done"] = pa.array(np.asarray(ep[schema.DONES]).astype(bool))
    columns["timestamp"] = pa.array(np.asarray(ep[schema.TIMESTAMPS], dtype=np.float32))
    columns["frame_index"] = pa.array(np.arange(t, dtype=np.int64))
    columns["episode_index"] = pa.array(np.full(t, episode_index, dtype=np.int64))
    columns["index"] = pa.array(np.arange(start_index, start_index + t, dtype=np.int64))
    columns["task_index"] = pa.array(np.asarray(ep[schema.INSTRUCTION_INDEX], dtype=np.int64))
    arrays = [columns[f.name].cast(f.type) for f in schema_]
    return pa.Table.from_arrays(arrays, schema=schema_)


def _lowdim_values(
    ep: dict[str, Any], encoders: tuple[str, ...], episode_index: int, start: int
) -> dict[str, np.ndarray]:
    """Every numeric non-image feature of one episode as float64 ``(T, D)`` (or ``(T,)``) arrays."""
    t = int(ep[schema.ACTIONS].shape[0])
    out: dict[str, np.ndarray] = {STATE_KEY: ep[schema.PRIVILEGED_STATE]}
    for enc in encoders:
        out[f"observation.{enc}_joint"] = ep[schema.encoder_path(enc, "joint")]
    out["action"] = ep[schema.ACTIONS]
    out["next.reward"] = ep[schema.REWARDS]
    out["next.done"] = np.asarray(ep[schema.DONES], dtype=np.float64)
    out["timestamp"] = np.asarray(ep[schema.TIMESTAMPS], dtype=np.float32)
    out["frame_index"] = np.arange(t)
    out["episode_index"] = np.full(t, episode_index)
    out["index"] = np.arange(start, start + t)
    out["task_index"] = ep[schema.INSTRUCTION_INDEX]
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def write_lerobot(reader: DatasetReader, out: Path, config: LeRobotExportConfig) -> LeRobotExportResult:
    """Write the LeRobot v3.0 dataset of an open reader into ``out`` (which the caller prepared)."""
    started = time.perf_counter()
    pa = require("pyarrow")
    pd = require("pandas")
    if not reader.demo_names:
        raise SchemaError(f"'{reader.path}' holds no complete demo; there is nothing to export")
    encoders = _selected_encoders(reader, config.encoders)
    codec = get_video_codec(config.video_codec) if config.images == "video" else None
    fps = lerobot_fps(reader)
    h, w, _ = reader.image_shape
    pix_fmt = resolve_pix_fmt(codec, config.pix_fmt, h, w) if codec is not None else None
    features = build_features(reader, encoders, config.images, codec, pix_fmt or "yuv420p")
    schema_ = hf_features(features).arrow_schema
    order, splits = episode_order(reader)
    lowdim_keys = [
        schema.ACTIONS,
        schema.REWARDS,
        schema.DONES,
        schema.TIMESTAMPS,
        schema.INSTRUCTION_INDEX,
        schema.PRIVILEGED_STATE,
        *(schema.encoder_path(e, "joint") for e in encoders),
    ]
    instructions = reader.instructions

    # pass 1: ranges of the vector features (cheap: no frames)
    vstats: dict[str, VectorStats] = {}
    start = 0
    for ep_i, demo in enumerate(order):
        ep = reader.episode(demo, keys=lowdim_keys)
        for key, values in _lowdim_values(ep, encoders, ep_i, start).items():
            if key not in vstats:
                vstats[key] = VectorStats(1 if values.ndim == 1 else values.shape[1], num_bins=config.stats_bins)
            vstats[key].observe_range(values)
        start += int(ep[schema.ACTIONS].shape[0])

    # pass 2: frames, video, stats, episode rows
    mb = 1024 * 1024
    data = _RollingParquet(out, DATA_PATH, schema_, config.data_file_size_mb * mb, config.chunks_size)
    video = (
        _RollingVideo(
            out,
            codec,
            fps,
            reader.image_shape,
            config.crf,
            pix_fmt,
            config.video_file_size_mb * mb,
            config.chunks_size,
        )
        if codec is not None
        else None
    )
    image_stats = ImageStats()
    episodes_path = out / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes = _EpisodeRows(episodes_path)
    index = 0
    try:
        for ep_i, demo in enumerate(order):
            ep = reader.episode(demo, keys=[*lowdim_keys, schema.RGB])
            t = int(ep[schema.ACTIONS].shape[0])
            rgb = ep[schema.RGB]
            if rgb.shape[0] != t:
                raise SchemaError(f"'{reader.path}' {demo}: obs/rgb has {rgb.shape[0]} frames for {t} actions")
            chunk_i, file_i = data.ensure_open()
            row: dict[str, Any] = {
                "episode_index": ep_i,
                "tasks": list(dict.fromkeys(instructions[i] for i in ep[schema.INSTRUCTION_INDEX])),
                "length": t,
                "data/chunk_index": chunk_i,
                "data/file_index": file_i,
                "dataset_from_index": index,
                "dataset_to_index": index + t,
            }
            if video is not None:
                v_chunk, v_file = video.ensure_open()
                assert video.writer is not None
                first = video.writer.frames_written
                video.writer.write(rgb)
                row[f"videos/{CAMERA_KEY}/chunk_index"] = v_chunk
                row[f"videos/{CAMERA_KEY}/file_index"] = v_file
                row[f"videos/{CAMERA_KEY}/from_timestamp"] = first / fps
                row[f"videos/{CAMERA_KEY}/to_timestamp"] = (first + t) / fps
            data.write(_frame_table(pa, schema_, ep, encoders, ep_i, index, config.images))
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            row["source_demo"] = demo
            ep_image = ImageStats()
            ep_image.update(rgb)
            image_stats.merge(ep_image)
            for stat, value in ep_image.result().items():
                row[f"stats/{CAMERA_KEY}/{stat}"] = value.tolist()
            for key, values in _lowdim_values(ep, encoders, ep_i, index).items():
                vstats[key].update(values)
                for stat, value in exact_vector_stats(values).items():
                    row[f"stats/{key}/{stat}"] = value.tolist()
            episodes.append(row)
            index += t
    finally:
        episodes.close()
        data.close()
        if video is not None:
            video.close()

    # metadata
    (out / "meta").mkdir(parents=True, exist_ok=True)
    stats = {CAMERA_KEY: image_stats.result(), **{k: v.result() for k, v in vstats.items()}}
    (out / STATS_PATH).write_text(json.dumps(stats_to_json(stats), indent=2) + "\n")
    tasks = pd.DataFrame(
        {"task_index": np.arange(len(instructions), dtype=np.int64)}, index=pd.Index(instructions, name="task")
    )
    tasks.to_parquet(out / TASKS_PATH)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "fps": fps,
        "features": features,
        "total_episodes": len(order),
        "total_frames": index,
        "total_tasks": len(instructions),
        "chunks_size": config.chunks_size,
        "data_files_size_in_mb": config.data_file_size_mb,
        "video_files_size_in_mb": config.video_file_size_mb,
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video is not None else None,
        "robot_type": config.robot_type,
        "splits": splits,
    }
    (out / INFO_PATH).write_text(json.dumps(info, indent=4) + "\n")
    return LeRobotExportResult(
        out_dir=out,
        total_episodes=len(order),
        total_frames=index,
        total_tasks=len(instructions),
        splits=splits,
        episode_demos=tuple(order),
        data_files=tuple(data.files),
        video_files=tuple(video.files) if video is not None else (),
        images=config.images,
        video_codec=codec.codec if codec is not None else None,
        video_encoder=f"{codec.library} ({codec.name}), licence {codec.licence}" if codec is not None else None,
        pix_fmt=pix_fmt,
        encoders=encoders,
        seconds=time.perf_counter() - started,
    )
