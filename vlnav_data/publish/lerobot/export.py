"""The LeRobot v3.0 export itself: one stored episode at a time into parquet, MP4 and metadata files
(the format: :mod:`vlnav_data.publish.lerobot`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.errors import SchemaError
from vlnav_data.publish.extras import require
from vlnav_data.publish.folders import prepare_out_dir
from vlnav_data.publish.lerobot.config import LeRobotExportConfig, LeRobotExportResult
from vlnav_data.publish.lerobot.layout import (
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    build_features,
    episode_order,
    frame_columns,
    hf_features,
    lerobot_fps,
    selected_encoders,
)
from vlnav_data.publish.lerobot.writers import (
    EpisodeRows,
    RollingParquet,
    RollingVideo,
    frame_table,
    lowdim_values,
)
from vlnav_data.publish.stats import (
    ImageStats,
    VectorStats,
    exact_vector_stats,
    stats_to_json,
)
from vlnav_data.publish.video import (
    get_video_codec,
    resolve_pix_fmt,
)


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
        check_lerobot(reader, config)  # before the output directory is created: a refusal leaves no trace
        out = prepare_out_dir(config.out_dir, overwrite=config.overwrite, keep=[config.dataset])
        return write_lerobot(reader, out, config)


def check_lerobot(reader: DatasetReader, config: LeRobotExportConfig) -> tuple[tuple[str, ...], Any, str | None]:
    """The export's checks of the file and options (no output touched): encoders, codec, pixel format."""
    if not reader.demo_names:
        raise SchemaError(f"'{reader.path}' holds no complete demo; there is nothing to export")
    encoders = selected_encoders(reader, config.encoders)
    codec = get_video_codec(config.video_codec) if config.images == "video" else None
    h, w, _ = reader.image_shape
    pix_fmt = resolve_pix_fmt(codec, config.pix_fmt, h, w) if codec is not None else None
    return encoders, codec, pix_fmt


def write_lerobot(reader: DatasetReader, out: Path, config: LeRobotExportConfig) -> LeRobotExportResult:
    """Write the LeRobot v3.0 dataset of an open reader into ``out`` (which the caller prepared)."""
    started = time.perf_counter()
    pa = require("pyarrow")
    pd = require("pandas")
    encoders, codec, pix_fmt = check_lerobot(reader, config)
    fps = lerobot_fps(reader)
    features = build_features(reader, encoders, config.images, codec, pix_fmt or "yuv420p")
    schema_ = hf_features(features).arrow_schema
    order, splits = episode_order(reader)
    camera_key, columns = frame_columns(reader)
    lowdim_keys = [
        schema.ACTIONS,
        schema.REWARDS,
        schema.DONES,
        schema.TIMESTAMPS,
        schema.INSTRUCTION_INDEX,
        *(path for _, path in columns),
        *(schema.encoder_path(e, "joint") for e in encoders),
    ]
    instructions = reader.instructions

    # pass 1: ranges of the vector features (cheap: no frames)
    vstats: dict[str, VectorStats] = {}
    start = 0
    for ep_i, demo in enumerate(order):
        ep = reader.episode(demo, keys=lowdim_keys)
        for key, values in lowdim_values(ep, encoders, ep_i, start, columns).items():
            if key not in vstats:
                vstats[key] = VectorStats(1 if values.ndim == 1 else values.shape[1], num_bins=config.stats_bins)
            vstats[key].observe_range(values)
        start += int(ep[schema.ACTIONS].shape[0])

    # pass 2: frames, video, stats, episode rows
    mb = 1024 * 1024
    data = RollingParquet(out, DATA_PATH, schema_, config.data_file_size_mb * mb, config.chunks_size)
    video = (
        RollingVideo(
            out,
            codec,
            fps,
            reader.image_shape,
            config.crf,
            pix_fmt,
            config.video_file_size_mb * mb,
            config.chunks_size,
            camera_key,
        )
        if codec is not None
        else None
    )
    image_stats = ImageStats()
    episodes_path = out / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes = EpisodeRows(episodes_path)
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
                row[f"videos/{camera_key}/chunk_index"] = v_chunk
                row[f"videos/{camera_key}/file_index"] = v_file
                row[f"videos/{camera_key}/from_timestamp"] = first / fps
                row[f"videos/{camera_key}/to_timestamp"] = (first + t) / fps
            data.write(frame_table(pa, schema_, ep, encoders, ep_i, index, config.images, camera_key, columns))
            row["meta/episodes/chunk_index"] = 0
            row["meta/episodes/file_index"] = 0
            row["source_demo"] = demo
            ep_image = ImageStats()
            ep_image.update(rgb)
            image_stats.merge(ep_image)
            for stat, value in ep_image.result().items():
                row[f"stats/{camera_key}/{stat}"] = value.tolist()
            for key, values in lowdim_values(ep, encoders, ep_i, index, columns).items():
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
    stats = {camera_key: image_stats.result(), **{k: v.result() for k, v in vstats.items()}}
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
