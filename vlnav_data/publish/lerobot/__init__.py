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

Pieces, each importing only those above it: ``config.py`` (config and result), ``layout.py`` (paths,
features), ``writers.py`` (rolling parquet and MP4 writers), ``export.py`` (the export itself).
"""

from vlnav_data.publish.lerobot.config import (
    IMAGE_MODES,
    LeRobotExportConfig,
    LeRobotExportResult,
    LeRobotOptions,
    check_image_options,
)
from vlnav_data.publish.lerobot.export import export_lerobot, write_lerobot
from vlnav_data.publish.lerobot.layout import CAMERA_KEY, CODEBASE_VERSION, INFO_KEYS

__all__ = [
    "CAMERA_KEY",
    "CODEBASE_VERSION",
    "IMAGE_MODES",
    "INFO_KEYS",
    "LeRobotExportConfig",
    "LeRobotExportResult",
    "LeRobotOptions",
    "check_image_options",
    "export_lerobot",
    "write_lerobot",
]
