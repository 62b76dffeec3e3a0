"""The Hub dataset card: :func:`vlnav_data.dataset.card.render_card` plus what publishing adds.

``render_card`` is the one renderer (ARCHITECTURE.md); this module wraps its output:

- front matter: ``configs`` pointing the Hub viewer at ``data/*/*.parquet`` and the ``LeRobot`` tag
  (LeRobot's own card convention, ``dataset-ecosystem.md`` §3.3-§4);
- sections on the LeRobot v3.0 export (frame features, the privileged ``observation.state``, the video
  encoder and its licence), per-feature statistics, the licences of the embedding models, the published
  files and how to check them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlnav_data.dataset.card import render_card
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.errors import SchemaError
from vlnav_data.publish.checksums import SUMS_NAME
from vlnav_data.publish.extras import require
from vlnav_data.publish.lerobot.config import LeRobotExportResult
from vlnav_data.publish.lerobot.layout import CAMERA_KEY, INFO_PATH, STATE_KEY, STATS_PATH
from vlnav_data.publish.shards import Shard

HUB_TAGS = ("LeRobot", "lerobot-v3.0")
DATA_FILES_GLOB = "data/*/*.parquet"

ENCODER_LICENCES: dict[str, tuple[str, str]] = {
    "google/siglip-so400m-patch14-384": ("apache-2.0", "https://huggingface.co/google/siglip-so400m-patch14-384"),
    "openai/clip-vit-base-patch32": ("mit", "https://huggingface.co/openai/clip-vit-base-patch32"),
    "dandelin/vilt-b32-finetuned-vqa": ("apache-2.0", "https://huggingface.co/dandelin/vilt-b32-finetuned-vqa"),
}
"""Licence of each pretrained embedding model (from its model card) and where it is stated."""


REGISTRY_MODELS = {
    "siglip": "google/siglip-so400m-patch14-384",
    "clip": "openai/clip-vit-base-patch32",
    "vilt": "dandelin/vilt-b32-finetuned-vqa",
}
"""The pretrained model behind each registry name (``vlnav_data.encoders`` registry)."""


def encoder_licence(name: str, spec: dict[str, Any]) -> str:
    """One line: which model made the embeddings and under which licence."""
    model = str(spec.get("model_id", ""))
    if model in ENCODER_LICENCES:
        licence, url = ENCODER_LICENCES[model]
        return f"`{name}`: {model} — licence {licence} ({url})"
    if spec.get("privileged") or model == "vlnav-data/oracle-state-projection":
        return f"`{name}`: no pretrained model (a fixed projection of the privileged state) — no model licence"
    if model.startswith("vlnav-data/") and model.endswith("-tiny-random"):
        return (
            f"`{name}`: {model}, random weights from a fixed seed (tests and smoke runs only) — no pretrained "
            "model, no model licence"
        )
    if name in REGISTRY_MODELS:
        registry_model = REGISTRY_MODELS[name]
        licence, url = ENCODER_LICENCES[registry_model]
        return (
            f"`{name}`: weights loaded from {model or 'an unrecorded path'}; the registry's model for this name is "
            f"{registry_model}, licence {licence} ({url}) — check that the local copy is that model"
        )
    return (
        f"`{name}`: {model or 'no model id recorded'} — licence unknown to vlnav-data: check the model's own card "
        "before redistributing"
    )


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split ``---\\n<yaml>\\n---\\n<body>`` into the parsed YAML and the body."""
    yaml = require("yaml")
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        raise SchemaError("the dataset card's YAML front matter is not closed by a '---' line")
    return yaml.safe_load(text[4:end]) or {}, text[end + 5 :]


def _fmt(values: Any) -> str:
    flat = [float(v) for v in _flatten(values)]
    if len(flat) <= 4:
        return ", ".join(f"{v:.4g}" for v in flat)
    return f"{len(flat)} values, range [{min(flat):.4g}, {max(flat):.4g}]"


def _flatten(values: Any) -> list[Any]:
    if isinstance(values, list):
        return [x for v in values for x in _flatten(v)]
    return [values]


def hub_card(
    dataset: Path,
    folder: Path,
    *,
    repo_id: str,
    license: str,
    export: LeRobotExportResult,
    shards: Sequence[Shard],
    video: dict[str, Any] | None,
) -> str:
    """Write ``folder/README.md`` (and render_card's frame strip beside it); return the card text.

    Args:
        dataset: the source HDF5 file.
        folder: the Hub folder, already holding the LeRobot export and the HDF5 file(s).
        repo_id: ``ORG/NAME``.
        license: Hugging Face licence id of the data.
        export: what the LeRobot export wrote.
        shards: the HDF5 files in ``folder``.
        video: ``{"codec", "encoder", "library", "licence", "pix_fmt", "crf"}`` for video exports, else None.
    """
    yaml = require("yaml")
    readme = folder / "README.md"
    text = render_card(
        dataset,
        readme,
        license=license,
        repo_id=repo_id,
        extra_tags=HUB_TAGS,
        file_name=shards[0].name,
    )
    meta, body = split_front_matter(text)
    meta["configs"] = [
        {"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES_GLOB}]},
    ]
    info = json.loads((folder / INFO_PATH).read_text())
    stats = json.loads((folder / STATS_PATH).read_text())
    with DatasetReader(dataset) as reader:
        specs = reader.encoder_specs
    lines = ["", "## LeRobot v3.0 export", ""]
    lines += [
        f"The folder is also a LeRobot dataset (codebase version `{info['codebase_version']}`, tag `v3.0`): "
        f"[meta/info.json]({INFO_PATH}), [meta/stats.json]({STATS_PATH}), "
        "[meta/tasks.parquet](meta/tasks.parquet) (task = instruction), "
        "[meta/episodes/chunk-000/file-000.parquet](meta/episodes/chunk-000/file-000.parquet) and "
        f"`{DATA_FILES_GLOB}` ({info['total_episodes']} episodes, {info['total_frames']} frames, "
        f"{info['total_tasks']} tasks, splits {', '.join(f'{k} `{v}`' for k, v in info['splits'].items())}; "
        "episodes are ordered train first, valid last).",
        "",
        "| feature | dtype | shape | note |",
        "|---|---|---|---|",
    ]
    camera_key = next((k for k, f in info["features"].items() if f["dtype"] in ("video", "image")), CAMERA_KEY)
    privileged_state = bool(info["features"].get(STATE_KEY, {}).get("info", {}).get("privileged"))
    for key, ft in info["features"].items():
        note = ""
        if key == STATE_KEY and privileged_state:
            note = "**privileged** simulator state (" + ", ".join(ft.get("names") or []) + "): never a student input"
        elif ft["dtype"] in ("video", "image"):
            note = "MP4 video" if ft["dtype"] == "video" else "PNG bytes in the parquet"
        elif key.endswith("_joint"):
            note = f"`{ft['info']['source']}` as float32; fusion {ft['info'].get('fusion', '')}"
        lines.append(f"| `{key}` | {ft['dtype']} | {ft['shape']} | {note} |")
    lines += [
        "",
        f"`{STATE_KEY}` is LeRobot's default policy input. Here it is the **privileged** state (robot pose and "
        "target position): train a student on the embeddings (`observation.<encoder>_joint`) or the camera, "
        f"and leave `{STATE_KEY}` out of its inputs."
        if privileged_state
        else "The features are those of the imported source dataset (no simulator: none is privileged).",
        "",
    ]
    if video is not None:
        files = ", ".join(f"[{f}]({f})" for f in export.video_files)
        lines += [
            f"Video: `{camera_key}` is encoded as {video['codec']} ({video['pix_fmt']}, crf {video['crf']}, keyframe "
            f"every 2 frames) by {video['library']} (`{video['encoder']}`, through PyAV), whose licence is "
            f"{video['licence']}; the licence covers the encoder, not the encoded video. Files: {files}.",
            "",
        ]
    lines += ["### Statistics", "", "From `meta/stats.json` (images: per channel, in [0, 1]).", ""]
    lines += ["| feature | mean | std | min | max | q01 | q99 |", "|---|---|---|---|---|---|---|"]
    for key, st in stats.items():
        if key in ("frame_index", "episode_index", "index", "task_index"):
            continue
        cells = " | ".join(_fmt(st[s]) for s in ("mean", "std", "min", "max", "q01", "q99"))
        lines.append(f"| `{key}` | {cells} |")
    lines += ["", "### Loading", "", "```python"]
    lines += [
        "from datasets import load_dataset",
        "",
        f'frames = load_dataset("{repo_id}", split="train")  # the parquet frames (configs above)',
        "",
        "from lerobot.datasets.lerobot_dataset import LeRobotDataset",
        "",
        f'ds = LeRobotDataset("{repo_id}")  # lerobot >= 0.4 reads codebase v3.0',
        "```",
        "",
        "## Licences of the embedding models",
        "",
        *[f"- {encoder_licence(n, sp)}" for n, sp in specs.items()],
        "",
        "## Files and checksums",
        "",
        "| file | episodes | steps | bytes |",
        "|---|---|---|---|",
        *[f"| [{s.name}]({s.name}) | {len(s.demos)} | {s.num_steps} | {s.size_bytes} |" for s in shards],
        "",
    ]
    if len(shards) > 1:
        lines += [
            f"The HDF5 data are split into {len(shards)} shards below the Hub's 20 GB file limit; each is a "
            "complete `vlnav-demos` file (demos renumbered from `demo_0`, each keeps its `episode_index`).",
            "",
        ]
    lines += [
        f"[{SUMS_NAME}]({SUMS_NAME}) lists the sha256 of every file. Check a download with",
        "",
        "```bash",
        f"sha256sum -c {SUMS_NAME}        # or: vlnav-data verify .",
        "```",
        "",
    ]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    card = f"---\n{front}---\n{body.rstrip()}\n" + "\n".join(lines)
    readme.write_text(card, encoding="utf-8")
    return card
