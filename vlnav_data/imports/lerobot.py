"""Read a LeRobot v3.0 dataset without the ``lerobot`` package (pyarrow and PyAV), episode by episode.

The layout (``dataset-ecosystem.md`` §3.2, as ``LeRobotDataset`` writes it)::

    meta/info.json                                codebase_version "v3.0", fps, features, data_path, video_path, splits
    meta/tasks.parquet                            task string (the index) -> task_index
    meta/episodes/chunk-*/file-*.parquet          one row per episode: length, data/{chunk,file}_index,
                                                  dataset_{from,to}_index, videos/<key>/{chunk_index,
                                                  file_index, from_timestamp, to_timestamp}
    data/chunk-*/file-*.parquet                   frames of many episodes (images mode: PNG bytes of each camera)
    videos/<key>/chunk-*/file-*.mp4               frames of many episodes (video mode)

:class:`LeRobotSource` checks everything when it is made, before any work (the directory, the version, the
camera, every data file's index and timestamps against the fps, every video file's packets); it then reads
one episode at a time (a sequential parquet cursor per data file, a :class:`~.video.VideoCursor` per video).

Mapping into a ``vlnav-demos`` file: ``action`` -> ``actions``; ``observation.state`` -> ``obs/state``; every
other numeric 1-D feature ``observation.<k>`` -> ``obs/<k>`` (and ``<k>`` -> ``obs/<k>``), each recording its
``source_key``; ``next.reward`` / ``next.done`` -> ``rewards`` / ``dones`` (zeros / the last step when absent);
the task of each frame -> its instruction; ``timestamp`` -> ``timestamps``; the chosen camera -> ``obs/rgb``.
A feature whose ``info`` says ``"privileged": true`` (how this toolkit's export marks the arena's simulator
state) is left out: a student must not see it; so is an encoder's embedding that export wrote (``embed`` adds
encoders to the imported file).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset.episode_record import ImportedEpisode
from vlnav_data.dataset.layout import ImportedFeature, ImportedLayout
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.imports.config import LeRobotImportConfig, parse_episodes
from vlnav_data.imports.run import assign_splits, choose_camera
from vlnav_data.imports.video import TIMESTAMP_TOLERANCE_S, VideoCursor, scan_video

CODEBASE_VERSION = "v3.0"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
ACTION_KEY = "action"
STATE_KEY = "observation.state"
REWARD_KEY = "next.reward"
DONE_KEY = "next.done"
CAMERA_DTYPES = ("video", "image")
NUMERIC_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
VALID_SPLIT_NAMES = ("valid", "validation", "val")
"""``info.json`` split names taken as the validation split (episodes in them go to ``/mask/valid``)."""

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_root(root: str) -> tuple[Path, str, str]:
    """``(directory, dataset id, revision)`` of ``root``: a local directory, or a repo id in an offline cache.

    A repo id is looked up in LeRobot's cache (``$HF_LEROBOT_HOME/<id>``, default
    ``~/.cache/huggingface/lerobot/<id>``, where ``LeRobotDataset`` keeps what it downloads) and then in the
    Hugging Face Hub cache (``huggingface_hub.snapshot_download(..., local_files_only=True)``; the revision is
    the snapshot's commit). Nothing is downloaded.

    Raises:
        ConfigError: neither a directory nor a repo id found in either cache.
    """
    path = Path(root).expanduser()
    if path.is_dir():
        return path, path.resolve().name, ""
    if not _REPO_ID.match(root):
        raise ConfigError(
            f"'{root}' is not a directory; pass a LeRobot v3.0 dataset directory or a Hub repo id (owner/name) "
            "that is in the local cache"
        )
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    lerobot_home = Path(os.environ.get("HF_LEROBOT_HOME", hf_home / "lerobot")).expanduser()
    if (lerobot_home / root).is_dir():
        return lerobot_home / root, root, ""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:
        raise ConfigError(f"'{root}' is not a directory, and huggingface_hub is not installed to find it") from exc
    try:
        snapshot = Path(snapshot_download(root, repo_type="dataset", local_files_only=True))
    except LocalEntryNotFoundError as exc:
        raise ConfigError(
            f"'{root}' is neither a directory nor in the local caches ({lerobot_home / root}, the Hub cache); "
            f"download it first (`hf download --repo-type dataset {root}`) or pass its directory"
        ) from exc
    return snapshot, root, snapshot.name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchemaError(f"'{path}' cannot be read as JSON ({exc}); the dataset is damaged") from exc
    if not isinstance(value, dict):
        raise SchemaError(f"'{path}' must hold a JSON object")
    return value


def _obs_key(source_key: str) -> str:
    """``observation.state`` -> ``state``, ``observation.x`` -> ``x``, other keys unchanged."""
    return source_key[len("observation.") :] if source_key.startswith("observation.") else source_key


class LeRobotSource:
    """A checked LeRobot v3.0 dataset, read one selected episode at a time (see the module docstring)."""

    kind = "lerobot"

    def __init__(self, config: LeRobotImportConfig) -> None:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ConfigError("importing LeRobot datasets needs pyarrow: pip install 'vlnav-data[hub]'") from exc
        self._pq = pq
        root, self.source_id, revision = resolve_root(config.root)
        self.root = root
        info_path = root / "meta" / "info.json"
        if not info_path.is_file():
            raise SchemaError(
                f"'{root}' is not a LeRobot dataset directory: it has no meta/info.json (expected the LeRobot v3.0 "
                "layout: meta/info.json, meta/tasks.parquet, meta/episodes/, data/)"
            )
        info = _read_json(info_path)
        version = info.get("codebase_version")
        if version != CODEBASE_VERSION:
            raise SchemaError(
                f"'{root}' is a LeRobot {version or '(unversioned)'} dataset; this importer reads {CODEBASE_VERSION}: "
                "convert it with lerobot's `python -m lerobot.datasets.v30.convert_dataset_v21_to_v30` first"
            )
        self.info = info
        self.fps = float(info.get("fps") or 0)
        if not self.fps > 0:
            raise SchemaError(f"'{info_path}' has no positive fps (got {info.get('fps')!r})")
        features: dict[str, dict[str, Any]] = info.get("features") or {}
        cameras = [k for k, ft in features.items() if ft.get("dtype") in CAMERA_DTYPES]
        if not cameras:
            raise SchemaError(f"'{self.root}' has no camera feature (dtype video or image); the toolkit embeds frames")
        self.camera = choose_camera(f"'{self.root}'", "cameras", config.camera, cameras)
        cam = features[self.camera]
        self.camera_mode = cam["dtype"]
        h, w = int(cam["shape"][0]), int(cam["shape"][1])
        if ACTION_KEY not in features:
            raise SchemaError(f"'{root}' has no '{ACTION_KEY}' feature; a demonstration needs actions")
        numeric, self.skipped = self._numeric_features(features)
        self.tasks = self._tasks(root)
        self.episode_rows = self._episodes(root)
        by_index = {int(r["episode_index"]): r for r in self.episode_rows}
        total = int(info.get("total_episodes", len(by_index)))
        self.selection = parse_episodes(config.episodes, total)
        missing = [i for i in self.selection if i not in by_index]
        if missing:
            raise SchemaError(f"'{root}' meta/episodes has no row for episode(s) {missing[:5]}; the dataset is damaged")
        self._rows = [by_index[i] for i in self.selection]
        self.lengths = [int(r["length"]) for r in self._rows]
        self._check_data(root, numeric)
        if self.camera_mode == "video":
            self._check_videos(root, (h, w))
        self.splits = assign_splits(self.selection, self._named_valid(total), config.valid_fraction, config.split_seed)
        action = features[ACTION_KEY]
        self.layout = ImportedLayout(
            image_height=h,
            image_width=w,
            fps=self.fps,
            action_names=tuple(action.get("names") or [f"action_{i}" for i in range(int(action["shape"][0]))]),
            action_source_key=ACTION_KEY,
            numeric=tuple(numeric),
            source={
                "kind": self.kind,
                "id": self.source_id,
                "revision": revision,
                "codebase_version": version,
                "camera": self.camera,
                "episodes": config.episodes,
                "skipped_features": self.skipped,
                "info": info,
            },
            rewards_note="" if REWARD_KEY in features else "zeros: the source has no next.reward",
            dones_note="" if DONE_KEY in features else "1 at the last step: the source has no next.done",
            camera={"source_key": self.camera, "mode": self.camera_mode},
            build_config=config.build_config(),
            rebuild_command=_command(config),
        )
        self._has_reward, self._has_done = REWARD_KEY in features, DONE_KEY in features
        self._columns = [ACTION_KEY, *(f.source_key for f in numeric), *INDEX_FEATURES]
        self._columns += [k for k in (REWARD_KEY, DONE_KEY) if k in features]
        if self.camera_mode == "image":
            self._columns.append(self.camera)
        self._data: dict[Path, _ParquetCursor] = {}
        self._videos: dict[Path, VideoCursor] = {}

    # ------------------------------------------------------------------ checks (before any work)
    def _numeric_features(self, features: dict[str, dict[str, Any]]) -> tuple[list[ImportedFeature], dict[str, str]]:
        numeric: list[ImportedFeature] = []
        skipped: dict[str, str] = {}
        reserved = {"actions", "rewards", "dones", "timestamps", "instruction_index", "rgb"}
        for key, ft in features.items():
            if key in (ACTION_KEY, REWARD_KEY, DONE_KEY, *INDEX_FEATURES) or ft.get("dtype") in CAMERA_DTYPES:
                continue
            shape = [int(x) for x in ft.get("shape", [])]
            info = ft.get("info") if isinstance(ft.get("info"), dict) else {}
            if info.get("privileged"):
                skipped[key] = "marked privileged in the source (simulator state): not a student's input"
                continue
            if "model_id" in info and "fusion" in info:
                skipped[key] = "an encoder's embedding exported by vlnav-data: add encoders with `vlnav-data embed`"
                continue
            if ft.get("dtype") not in NUMERIC_DTYPES:
                skipped[key] = f"dtype {ft.get('dtype')} is not numeric"
                continue
            if len(shape) != 1:
                skipped[key] = f"shape {shape} is not one vector per frame"
                continue
            obs = _obs_key(key)
            if obs in reserved or "/" in obs or any(f.key == obs for f in numeric):
                skipped[key] = f"its name '{obs}' is taken in the vlnav-demos layout"
                continue
            names = ft.get("names")
            if isinstance(names, dict):  # LeRobot 2.x style {"motors": [...]}
                names = next(iter(names.values()), None)
            ok = isinstance(names, list) and len(names) == shape[0]
            numeric.append(
                ImportedFeature(
                    key=obs,
                    path=f"obs/{obs}",
                    shape=(shape[0],),
                    names=tuple(str(n) for n in names) if ok else None,
                    source_key=key,
                )
            )
        numeric.sort(key=lambda f: (f.key != "state", f.key))  # obs/state first
        return numeric, skipped

    def _tasks(self, root: Path) -> dict[int, str]:
        path = root / "meta" / "tasks.parquet"
        if not path.is_file():
            raise SchemaError(f"'{root}' has no meta/tasks.parquet; the task strings are the instructions")
        table = self._pq.read_table(path)  # pandas wrote it: the task strings are its (named) index column
        names = table.column_names
        text_column = next((c for c in ("task", "__index_level_0__") if c in names), None)
        if "task_index" not in names or text_column is None:
            raise SchemaError(f"'{path}' needs a task column (or index) and a task_index column, got {names}")
        texts = table.column(text_column).to_pylist()
        return {int(i): str(t) for t, i in zip(texts, table.column("task_index").to_pylist(), strict=True)}

    def _episodes(self, root: Path) -> list[dict[str, Any]]:
        files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise SchemaError(f"'{root}' has no meta/episodes/chunk-*/file-*.parquet; the dataset is incomplete")
        rows: list[dict[str, Any]] = []
        for path in files:
            names = self._pq.read_schema(path).names
            keep = [n for n in names if not n.startswith("stats/")]
            rows.extend(self._pq.read_table(path, columns=keep).to_pylist())
        return sorted(rows, key=lambda r: int(r["episode_index"]))

    def _data_path(self, row: dict[str, Any]) -> Path:
        template = self.info.get("data_path") or "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
        return self.root / template.format(
            chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"])
        )

    def _check_data(self, root: Path, numeric: list[ImportedFeature]) -> None:
        """Every data file: present, with the columns needed, and each selected episode's frames in order
        with ``timestamp = frame_index / fps`` (one pass over the small index columns)."""
        wanted = {ACTION_KEY, *(f.source_key for f in numeric), *INDEX_FEATURES}
        if self.camera_mode == "image":
            wanted.add(self.camera)
        by_file: dict[Path, list[dict[str, Any]]] = {}
        for row in self._rows:
            by_file.setdefault(self._data_path(row), []).append(row)
        for path, rows in by_file.items():
            if not path.is_file():
                raise SchemaError(f"the data file '{path}' is missing; the dataset is incomplete: download it again")
            try:
                names = set(self._pq.read_schema(path).names)
                table = self._pq.read_table(path, columns=["episode_index", "frame_index", "timestamp", "task_index"])
            except OSError as exc:
                raise SchemaError(f"'{path}' cannot be read as parquet ({exc}); it is truncated or damaged") from exc
            lack = sorted(wanted - names)
            if lack:
                raise SchemaError(f"'{path}' lacks the column(s) {', '.join(lack)} that meta/info.json lists")
            ep = table["episode_index"].to_numpy()
            frame = table["frame_index"].to_numpy()
            ts = table["timestamp"].to_numpy().astype(np.float64)
            task = table["task_index"].to_numpy()
            for row in rows:
                i = int(row["episode_index"])
                at = np.flatnonzero(ep == i)
                t = int(row["length"])
                if len(at) != t or not np.array_equal(frame[at], np.arange(t)):
                    raise SchemaError(
                        f"'{path}' holds {len(at)} frames of episode {i} in some order; meta/episodes says {t}"
                    )
                off = np.abs(ts[at] - frame[at] / self.fps)
                if off.max(initial=0.0) > TIMESTAMP_TOLERANCE_S:
                    k = int(np.argmax(off))
                    raise SchemaError(
                        f"'{path}' episode {i} frame {k}: timestamp {ts[at][k]:.5f} s is not frame_index / fps = "
                        f"{k / self.fps:.5f} s ({self.fps:g} fps)"
                    )
                unknown = sorted(set(task[at].tolist()) - set(self.tasks))
                if unknown:
                    raise SchemaError(f"'{path}' episode {i} uses task_index {unknown[:3]}, not in meta/tasks.parquet")

    def _video_path(self, row: dict[str, Any]) -> Path:
        template = self.info.get("video_path") or "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        prefix = f"videos/{self.camera}/"
        return self.root / template.format(
            video_key=self.camera,
            chunk_index=int(row[prefix + "chunk_index"]),
            file_index=int(row[prefix + "file_index"]),
        )

    def _check_videos(self, root: Path, shape: tuple[int, int]) -> None:
        prefix = f"videos/{self.camera}/"
        if self._rows and prefix + "from_timestamp" not in self._rows[0]:
            raise SchemaError(f"'{root}' meta/episodes has no {prefix}from_timestamp column for the video camera")
        by_file: dict[Path, list[tuple[int, float, int]]] = {}
        for row in self._rows:
            need = (int(row["episode_index"]), float(row[prefix + "from_timestamp"]), int(row["length"]))
            by_file.setdefault(self._video_path(row), []).append(need)
        for path, needs in by_file.items():
            scan_video(path, needs, self.fps, shape)

    def _named_valid(self, total: int) -> set[int] | None:
        """Episodes of a validation split ``info.json`` names (``"a:b"`` ranges), or None when it names none."""
        splits = self.info.get("splits") or {}
        named = [v for k, v in splits.items() if k in VALID_SPLIT_NAMES]
        if not named:
            return None
        out: set[int] = set()
        for spec in named:
            out.update(parse_episodes(str(spec), total))
        return out

    # ------------------------------------------------------------------ reading
    def read(self, k: int) -> ImportedEpisode:
        row = self._rows[k]
        i, t = int(row["episode_index"]), int(row["length"])
        path = self._data_path(row)
        cursor = self._data.get(path)
        if cursor is None:
            for old in list(self._data):  # one data file open at a time: episodes come in file order
                del self._data[old]
            cursor = self._data[path] = _ParquetCursor(self._pq, path, self._columns)
        frames = cursor.episode(i, t)
        where = f"'{self.root}' episode {i}"
        if self.camera_mode == "image":
            rgb = np.stack([_decode_image(cell, where) for cell in frames[self.camera]])
        else:
            video_path = self._video_path(row)
            video = self._videos.get(video_path)
            if video is None:
                for old in list(self._videos):
                    self._videos.pop(old).close()
                video = self._videos[video_path] = VideoCursor(video_path)
            rgb = video.frames(float(row[f"videos/{self.camera}/from_timestamp"]), t, self.fps, where)
        if rgb.shape[1:] != (self.layout.image_height, self.layout.image_width, 3):
            raise SchemaError(f"{where}: frames of {self.camera} are {rgb.shape[1:]}, info.json says otherwise")
        numeric = {f.path: _vectors(frames[f.source_key], f.shape[0]) for f in self.layout.numeric}
        task_index = np.asarray(frames["task_index"], dtype=np.int64)
        return ImportedEpisode(
            actions=_vectors(frames[ACTION_KEY], self.layout.action_dim),
            numeric=numeric,
            rgb=rgb,
            instructions=[self.tasks[int(j)] for j in task_index],
            timestamps_s=np.asarray(frames["timestamp"], dtype=np.float32).astype(np.float64),
            rewards=_scalars(frames[REWARD_KEY]) if self._has_reward else np.zeros(t, np.float32),
            dones=(_scalars(frames[DONE_KEY]) != 0).astype(np.uint8)
            if self._has_done
            else (np.arange(t) == t - 1).astype(np.uint8),
            episode_index=i,
            split=self.splits[k],
        )

    def close(self) -> None:
        self._data.clear()
        for video in self._videos.values():
            video.close()
        self._videos.clear()


class _ParquetCursor:
    """Rows of one data file, read front to back in record batches; :meth:`episode` takes one episode's rows."""

    def __init__(self, pq: Any, path: Path, columns: list[str]) -> None:
        self._pq, self.path, self.columns = pq, path, columns
        self._restart()

    def _restart(self) -> None:
        self._batches = self._pq.ParquetFile(self.path).iter_batches(batch_size=1024, columns=self.columns)
        self._buffer: dict[str, list[Any]] = {c: [] for c in self.columns}
        self._last_episode = -1

    def episode(self, episode: int, length: int) -> dict[str, list[Any]]:
        if episode <= self._last_episode:
            self._restart()
        out: dict[str, list[Any]] = {c: [] for c in self.columns}
        while len(out["frame_index"]) < length:
            if not self._buffer["episode_index"]:
                batch = next(self._batches, None)
                if batch is None:
                    raise SchemaError(f"'{self.path}' ends before episode {episode}'s {length} frames")
                self._buffer = {c: batch.column(c).to_pylist() for c in self.columns}
            eps = self._buffer["episode_index"]
            take = [j for j, e in enumerate(eps) if e == episode]
            for c in self.columns:
                out[c].extend(self._buffer[c][j] for j in take)
            keep_from = (take[-1] + 1) if take else (len(eps) if all(e < episode for e in eps) else 0)
            if not take and keep_from == 0:
                raise SchemaError(f"'{self.path}': episode {episode}'s rows are not where meta/episodes says")
            for c in self.columns:
                self._buffer[c] = self._buffer[c][keep_from:]
        self._last_episode = episode
        return out


def _vectors(cells: list[Any], width: int) -> np.ndarray:
    arr = np.asarray(cells, dtype=np.float32)
    return arr.reshape(len(cells), width)


def _scalars(cells: list[Any]) -> np.ndarray:
    arr = np.asarray([c[0] if isinstance(c, (list, tuple)) else c for c in cells], dtype=np.float32)
    return arr.reshape(len(cells))


def _decode_image(cell: Any, where: str) -> np.ndarray:
    from PIL import Image

    data = cell.get("bytes") if isinstance(cell, dict) else None
    if not data:
        raise SchemaError(f"{where}: an image cell holds no bytes (path-only images are not supported)")
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _command(config: LeRobotImportConfig) -> str:
    parts = ["vlnav-data import lerobot", config.root, "--out", config.out]
    if config.camera:
        parts += ["--camera", config.camera]
    if config.episodes:
        parts += ["--episodes", config.episodes]
    return " ".join(parts)
