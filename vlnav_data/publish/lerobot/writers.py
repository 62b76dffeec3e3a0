"""The LeRobot export's writers: parquet and MP4 files that roll over at a size, batched episode rows.

``RollingParquet`` and ``RollingVideo`` start ``chunk-XXX/file-YYY`` files as LeRobot v3.0 lays them out
(:mod:`vlnav_data.publish.lerobot.layout`); ``frame_table`` and ``lowdim_values`` turn one stored episode into
the frame rows and the values the statistics are computed from.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.publish.extras import require
from vlnav_data.publish.lerobot.layout import CAMERA_KEY, VIDEO_PATH
from vlnav_data.publish.video import (
    VideoCodec,
    VideoFileWriter,
)


def png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


class RollingFiles(ABC):
    """``chunk-XXX/file-YYY`` files that roll over to the next once one reaches ``max_bytes``, ``chunks_size``
    files per chunk; a subclass opens, measures and closes one file."""

    def __init__(self, root: Path, max_bytes: float, chunks_size: int) -> None:
        self.root = root
        self.max_bytes, self.chunks_size = max_bytes, chunks_size
        self.chunk_index, self.file_index = 0, -1
        self.files: list[str] = []

    def ensure_open(self) -> tuple[int, int]:
        """Open the next file when none is open or the current one is full; return its indices."""
        if self.is_open() and self.size_bytes() >= self.max_bytes:
            self.close()
        if not self.is_open():
            self.file_index += 1
            if self.file_index >= self.chunks_size:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
            rel = self.relative_path(self.chunk_index, self.file_index)
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            self.open(self.root / rel)
            self.files.append(rel)
        return self.chunk_index, self.file_index

    @abstractmethod
    def relative_path(self, chunk_index: int, file_index: int) -> str:
        """The file's path under ``root``, as LeRobot lays it out."""

    @abstractmethod
    def open(self, path: Path) -> None:
        """Start writing the file ``path``."""

    @abstractmethod
    def is_open(self) -> bool:
        """Whether a file is being written."""

    @abstractmethod
    def size_bytes(self) -> int:
        """Bytes written to the open file so far."""

    @abstractmethod
    def close(self) -> None:
        """Finish the open file, if any."""


class RollingParquet(RollingFiles):
    """Parquet files that roll over to ``file-{f+1}`` once one reaches ``max_bytes``."""

    def __init__(self, root: Path, template: str, schema: Any, max_bytes: float, chunks_size: int) -> None:
        super().__init__(root, max_bytes, chunks_size)
        self.pa = require("pyarrow")
        self.pq = require("pyarrow.parquet")
        self.template, self.schema = template, schema
        self._sink: Any = None
        self._writer: Any = None
        self.rows_in_file = 0

    def relative_path(self, chunk_index: int, file_index: int) -> str:
        return self.template.format(chunk_index=chunk_index, file_index=file_index)

    def open(self, path: Path) -> None:
        self._sink = self.pa.OSFile(str(path), "wb")
        self._writer = self.pq.ParquetWriter(self._sink, self.schema)
        self.rows_in_file = 0

    def is_open(self) -> bool:
        return self._writer is not None

    def size_bytes(self) -> int:
        return self._sink.tell()

    def write(self, table: Any) -> None:
        self._writer.write_table(table)
        self.rows_in_file += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer, self._sink = None, None


class RollingVideo(RollingFiles):
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
        camera_key: str = CAMERA_KEY,
    ) -> None:
        super().__init__(root, max_bytes, chunks_size)
        self.codec, self.fps, self.shape, self.crf, self.pix_fmt = codec, fps, shape, crf, pix_fmt
        self.camera_key = camera_key
        self.writer: VideoFileWriter | None = None

    def relative_path(self, chunk_index: int, file_index: int) -> str:
        return VIDEO_PATH.format(video_key=self.camera_key, chunk_index=chunk_index, file_index=file_index)

    def open(self, path: Path) -> None:
        h, w, _ = self.shape
        self.writer = VideoFileWriter(
            path, codec=self.codec, fps=self.fps, height=h, width=w, crf=self.crf, pix_fmt=self.pix_fmt
        )

    def is_open(self) -> bool:
        return self.writer is not None

    def size_bytes(self) -> int:
        assert self.writer is not None
        return self.writer.size_bytes()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


EPISODE_ROWS_BATCH = 64
"""Episode rows buffered before a write to ``meta/episodes``."""


class EpisodeRows:
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


def frame_table(
    pa: Any,
    schema_: Any,
    ep: dict[str, Any],
    encoders: tuple[str, ...],
    episode_index: int,
    start_index: int,
    images: str,
    camera_key: str,
    columns: tuple[tuple[str, str], ...],
) -> Any:
    t = int(ep[schema.ACTIONS].shape[0])

    def vec(values: np.ndarray) -> Any:
        arr = np.ascontiguousarray(values, dtype=np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1])

    out: dict[str, Any] = {}
    if images == "png":
        rgb = ep[schema.RGB]
        out[camera_key] = pa.StructArray.from_arrays(
            [pa.array([png_bytes(f) for f in rgb], pa.binary()), pa.array([None] * t, pa.string())],
            names=["bytes", "path"],
        )
    for key, path in columns:
        out[key] = vec(ep[path])
    for enc in encoders:
        out[f"observation.{enc}_joint"] = vec(ep[schema.encoder_path(enc, "joint")])
    out["action"] = vec(ep[schema.ACTIONS])
    out["next.reward"] = pa.array(np.asarray(ep[schema.REWARDS], dtype=np.float32))
    out["next.done"] = pa.array(np.asarray(ep[schema.DONES]).astype(bool))
    out["timestamp"] = pa.array(np.asarray(ep[schema.TIMESTAMPS], dtype=np.float32))
    out["frame_index"] = pa.array(np.arange(t, dtype=np.int64))
    out["episode_index"] = pa.array(np.full(t, episode_index, dtype=np.int64))
    out["index"] = pa.array(np.arange(start_index, start_index + t, dtype=np.int64))
    out["task_index"] = pa.array(np.asarray(ep[schema.INSTRUCTION_INDEX], dtype=np.int64))
    arrays = [out[f.name].cast(f.type) for f in schema_]
    return pa.Table.from_arrays(arrays, schema=schema_)


def lowdim_values(
    ep: dict[str, Any],
    encoders: tuple[str, ...],
    episode_index: int,
    start: int,
    columns: tuple[tuple[str, str], ...],
) -> dict[str, np.ndarray]:
    """Every numeric non-image feature of one episode as float64 ``(T, D)`` (or ``(T,)``) arrays."""
    t = int(ep[schema.ACTIONS].shape[0])
    out: dict[str, np.ndarray] = {key: ep[path] for key, path in columns}
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
