"""LeRobot v3.0 layout of the export: file paths and the feature schema.

What ``meta/info.json`` says and where each file goes (reference ``dataset-ecosystem.md`` §3.2; lerobot
``datasets/utils.py`` paths), the episode order that makes ``splits`` ranges, and the integer frame rate.
"""

from __future__ import annotations

from typing import Any

from vlnav_data.dataset import schema
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.errors import SchemaError, unknown_name
from vlnav_data.publish.extras import require
from vlnav_data.publish.video import (
    VideoCodec,
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


def lerobot_key(source_key: str, obs_key: str) -> str:
    """The LeRobot name of an imported file's feature: its source name when that is a LeRobot name (no ``/``),
    else ``observation.<obs key>`` (a robomimic ``obs/<key>``)."""
    return source_key if source_key and "/" not in source_key else f"observation.{obs_key}"


def frame_columns(reader: DatasetReader) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The camera's LeRobot key and ``(LeRobot key, dataset path)`` of each per-frame vector besides the
    action and the embeddings: the privileged state of an arena file, an imported file's own features (under
    their source names, so exporting and importing again gives the same file)."""
    if reader.has_arena:
        return CAMERA_KEY, ((STATE_KEY, schema.PRIVILEGED_STATE),)
    feats = reader.features
    cam = str(feats.get("rgb", {}).get("source_key") or "")
    camera = cam if cam.startswith("observation.images.") else f"observation.images.{cam.rsplit('/', 1)[-1] or 'front'}"
    encoder_keys = {schema.encoder_key(e, k) for e in reader.encoders for k in schema.EMBEDDING_KINDS}
    columns = tuple(
        (lerobot_key(str(ft.get("source_key", "")), key), ft["path"])
        for key, ft in feats.items()
        if "source_key" in ft
        and str(ft.get("path", "")).startswith("obs/")
        and ft["path"] != schema.RGB
        and key not in encoder_keys
    )
    return camera, columns


def build_features(
    reader: DatasetReader, encoders: tuple[str, ...], images: str, codec: VideoCodec | None, pix_fmt: str = "yuv420p"
) -> dict[str, dict[str, Any]]:
    """``info.json`` features: ``{key: {"dtype", "shape", "names"[, "info"]}}``."""
    h, w, c = reader.image_shape
    camera_key, columns = frame_columns(reader)
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
    feats: dict[str, dict[str, Any]] = {camera_key: camera}
    if reader.has_arena:
        state_names = reader.state_names
        state_dim = len(state_names) or int(
            reader.episode(reader.demo_names[0], keys=[schema.PRIVILEGED_STATE])[schema.PRIVILEGED_STATE].shape[1]
        )
        feats[STATE_KEY] = {
            "dtype": "float32",
            "shape": [state_dim],
            "names": list(state_names) or None,
            "info": {"privileged": True, "source": schema.PRIVILEGED_STATE, "note": PRIVILEGED_NOTE},
        }
    else:
        by_path = {ft["path"]: ft for ft in reader.features.values()}
        for key, path in columns:
            ft = by_path[path]
            feats[key] = {
                "dtype": "float32",
                "shape": list(ft["shape"]),
                "names": ft.get("names"),
                "info": {"source": path},
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
    action_names = reader.action_names or list(schema.ACTION_NAMES)
    feats["action"] = {"dtype": "float32", "shape": [len(action_names)], "names": action_names}
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
