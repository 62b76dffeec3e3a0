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
