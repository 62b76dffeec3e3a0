"""Everything a study checks before its first cell runs, and what it records about its inputs.

:func:`plan_study` opens every dataset once and refuses, with one message each, what would otherwise
fail after minutes of training: a missing or incomplete file, an encoder or feature set the file does
not hold, an empty split, a dataset not built in the arena, an expert the evaluation cannot rebuild,
files that start their episodes differently (the comparison would not be paired), an output directory
holding another study without ``--resume``, or finished cells computed with other settings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset import DatasetReader, schema
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.policy.features import student_input_keys
from vlnav_data.study.config import Cell, StudyConfig, study_cells

STUDY_FILE = "study.json"
CELLS_DIR = "cells"
MARKER = "cell.json"


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What a study records about one dataset file.

    Attributes:
        label: the file stem, the dataset's name in the study.
        path: absolute path.
        fingerprint: ``created_utc``, demos and steps: a rebuilt file has another fingerprint.
        encoders: the encoders compared on it.
        instructions: instruction style of its arena (``paper``, ``spatial``, ``color``).
        preset: the arena preset it was built from (as recorded by the build).
        expert: the expert that labelled its demos (``ppo``, ``pursuit``).
        num_train_episodes / num_valid_episodes: its split.
        sim_config: the arena config (evaluation and SPL use it).
    """

    label: str
    path: str
    fingerprint: dict[str, Any]
    encoders: tuple[str, ...]
    instructions: str
    preset: str
    expert: str
    num_train_episodes: int
    num_valid_episodes: int
    sim_config: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StudyPlan:
    """The checked inputs of a study and its cells in run order.

    Attributes:
        datasets: label -> :class:`DatasetInfo`.
        evaluation_seeds: int64 (num_episodes,) episode seeds shared by every cell.
        cells: every cell of the grid.
    """

    datasets: dict[str, DatasetInfo]
    evaluation_seeds: np.ndarray
    cells: list[Cell]


def dataset_fingerprint(reader: DatasetReader) -> dict[str, Any]:
    """``created_utc``, number of demos and of steps of an open dataset."""
    created = reader.file.attrs.get("created_utc", "")
    created = created.decode() if isinstance(created, bytes) else str(created)
    return {"created_utc": created, "num_demos": len(reader), "total_steps": reader.total_steps}


def _check_dataset(config: StudyConfig, label: str, path: Path) -> DatasetInfo:
    from vlnav_data.policy.train import dataset_expert
    from vlnav_data.sim import arena_config_from_json

    if not path.is_file():
        raise ConfigError(f"dataset file '{path}' does not exist; pass a file built by `vlnav-data build`")
    with DatasetReader(path) as reader:
        reader.require_arena(
            "vlnav-study",
            "every study trains BC arms and evaluates them in closed loop in the arena; on an imported file use "
            "`vlnav-probe linear`/`knn`, `vlnav-policy train` and `vlnav-policy eval-offline`",
        )
        encoders = config.encoders or reader.encoders  # a study compares every encoder of the file by default
        if not encoders:
            reader.choose_encoder(None)  # raises: the file holds no embeddings
        for name in encoders:
            reader.choose_encoder(name)  # raises for an encoder the file lacks (the one message of every command)
        for name, _ in config.encoder_model_paths:
            if name not in encoders:
                raise ConfigError(
                    f"--encoder-model-path names encoder '{name}', which '{path}' does not hold; "
                    f"it holds: {', '.join(reader.encoders)}"
                )
        train, valid = reader.split("train"), reader.split("valid")
        if not train or not valid:
            raise ConfigError(
                f"'{path}' has {len(train)} train and {len(valid)} valid episodes; a study trains on train, "
                "validates and probes on valid: build more episodes (or a larger --valid-fraction)"
            )
        keys = set(reader.keys(train[0]))
        for encoder in encoders:
            for features in config.features:
                needed = student_input_keys(encoder, features)  # pixels: obs/rgb and the text table
                if schema.INSTRUCTION_INDEX in needed:
                    try:
                        reader.text_embeddings(encoder)
                    except (SchemaError, KeyError) as exc:
                        raise ConfigError(f"'{path}' has no text embeddings of '{encoder}': {exc}") from exc
                for key in needed:
                    if key != schema.INSTRUCTION_INDEX and key not in keys:
                        raise ConfigError(
                            f"'{path}' has no '{key}' in its demos; "
                            f"choose --features among those the file holds for '{encoder}'"
                        )
        sim_config = reader.sim_config
        arena = arena_config_from_json(sim_config)  # raises ConfigError for a non-arena file
        expert, _ = dataset_expert(reader)
        if config.expert == "dataset" and expert not in ("ppo", "pursuit"):
            raise ConfigError(
                f"the demos of '{path}' were labelled by expert '{expert or 'unknown'}', which the evaluation "
                "cannot rebuild; pass --expert ppo or --expert pursuit"
            )
        preset = str(reader.build_config.get("preset", ""))
        return DatasetInfo(
            label=label,
            path=str(path.resolve()),
            fingerprint=dataset_fingerprint(reader),
            encoders=tuple(encoders),
            instructions=str(arena.instructions),
            preset=preset,
            expert=expert if config.expert == "dataset" else config.expert,
            num_train_episodes=len(train),
            num_valid_episodes=len(valid),
            sim_config=json.loads(json.dumps(sim_config)),
        )


def _check_shared_starts(datasets: dict[str, DatasetInfo], seeds: np.ndarray) -> None:
    """Every file must draw the same start from each evaluation seed, or nothing would be paired."""
    from vlnav_data.sim import arena_config_from_json, sample_episode_start

    labels = list(datasets)
    if len(labels) < 2:
        return
    configs = {k: arena_config_from_json(v.sim_config) for k, v in datasets.items()}
    first = labels[0]
    for other in labels[1:]:
        for s in seeds.tolist():
            a, b = sample_episode_start(configs[first], s), sample_episode_start(configs[other], s)
            same = (
                a.target_index == b.target_index
                and np.array_equal(a.pose, b.pose)
                and np.array_equal(a.sphere_positions_xy_m, b.sphere_positions_xy_m)
                and np.array_equal(a.sphere_color_indices, b.sphere_color_indices)
            )
            if not same:
                ca, cb = dataclasses.asdict(configs[first]), dataclasses.asdict(configs[other])
                differ = sorted(k for k in ca if ca[k] != cb.get(k))
                raise ConfigError(
                    f"datasets '{first}' and '{other}' start evaluation episode seed {s} differently (their arenas "
                    f"differ in: {', '.join(differ[:6]) or 'nothing recorded'}); a paired comparison needs the same "
                    "starts: compare them in separate studies"
                )


def cell_key(config: StudyConfig, cell: Cell, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Everything that decides a cell's numbers; a finished cell is reused only under the same key.

    Args:
        config: the study.
        cell: the cell.
        fingerprint: :func:`dataset_fingerprint` of the cell's dataset.
    """
    key: dict[str, Any] = {
        "kind": cell.kind,
        "dataset": cell.dataset,
        "dataset_fingerprint": fingerprint,
        "encoder": cell.encoder,
        "features": cell.features,
    }
    if cell.kind == "bc":
        key.update(
            recipe=cell.recipe,
            train_seed=cell.train_seed,
            num_steps=config.num_steps,
            eval_every_steps=config.eval_every_steps,
            evaluation_seed=config.seed,
            num_episodes=config.num_episodes,
            expert=config.expert,
            expert_checkpoint=str(config.expert_checkpoint) if config.expert_checkpoint else None,
        )
    else:
        key.update(
            probe_seed=config.seed,
            probe_max_train_rows=config.probe_max_train_rows,
            probe_mlp=config.probe_mlp,
            knn_k=config.knn_k,
        )
    return key


def read_marker(cell_dir: Path) -> dict[str, Any] | None:
    """The completion marker of a cell directory, or None when the cell has not finished.

    Raises:
        ConfigError: the marker exists but is not JSON (it is written atomically, so this means tampering).
    """
    path = Path(cell_dir) / MARKER
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"'{path}' is not valid JSON ({exc}); delete the cell directory to recompute it") from exc


def key_mismatch(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``field: stored -> wanted`` for every differing field of two cell keys."""
    return [
        f"{k}: {stored.get(k)!r} -> {wanted.get(k)!r}"
        for k in sorted(set(stored) | set(wanted))
        if stored.get(k) != wanted.get(k)
    ]


def plan_study(config: StudyConfig) -> StudyPlan:
    """Check every input of a study before any work; return its datasets, evaluation seeds and cells.

    Raises:
        ConfigError: a bad dataset, encoder, feature set, expert, unpaired starts, an output directory
            that already holds a study (without ``resume``) or finished cells with other settings.
        SchemaError: a file that is not a complete ``vlnav-demos`` dataset.
    """
    from vlnav_data.policy import evaluation_seeds

    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out must be a directory, but '{out}' is an existing file")
    if out.is_dir() and any(out.iterdir()) and not config.resume:
        held = (out / STUDY_FILE).is_file()
        raise ConfigError(
            f"'{out}' is not empty{' and holds a study' if held else ''}; pass --resume to finish "
            "it (finished cells are kept), --overwrite to start over, or choose a new --out"
        )
    datasets = {label: _check_dataset(config, label, path) for label, path in config.labels.items()}
    seeds = evaluation_seeds(config.seed, config.num_episodes)
    _check_shared_starts(datasets, seeds)
    cells = study_cells(config, {k: v.encoders for k, v in datasets.items()})
    if config.resume:
        _check_resume(config, out, datasets, cells)
    return StudyPlan(datasets=datasets, evaluation_seeds=seeds, cells=cells)


def _check_resume(config: StudyConfig, out: Path, datasets: dict[str, DatasetInfo], cells: list[Cell]) -> None:
    stored_path = out / STUDY_FILE
    if stored_path.is_file():
        stored = json.loads(stored_path.read_text())
        for label, info in stored.get("datasets", {}).items():
            if label in datasets and info.get("fingerprint") != datasets[label].fingerprint:
                raise ConfigError(
                    f"dataset '{label}' is not the file this study started with (was {info.get('fingerprint')}, "
                    f"now {datasets[label].fingerprint}); finish the study with the original file or use a new --out"
                )
    for cell in cells:
        marker = read_marker(out / CELLS_DIR / cell.cell_id)
        if marker is None:
            continue
        wanted = cell_key(config, cell, datasets[cell.dataset].fingerprint)
        diff = key_mismatch(marker.get("key", {}), wanted)
        if diff:
            raise ConfigError(
                f"finished cell '{cell.cell_id}' was computed with other settings ({'; '.join(diff[:4])}); "
                "resume with the settings it was run with, or choose a new --out"
            )
