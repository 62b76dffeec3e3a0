"""Merge shard files of one build into a single ``vlnav-demos`` file, renumbering demos.

Demos are ordered by their global ``episode_index`` attribute, so merging the shards of a build made
with ``--shard i/n`` gives the same demos, in the same order, as the unsharded build. The instruction
table is rebuilt in first-appearance order and ``instruction_index`` remapped.

Choices: every episode of the build (its ``num_episodes``) must be present unless ``allow_missing``
(checked before anything is written), so a forgotten shard cannot give a valid but silently incomplete
file. Datasets are copied with their compressed chunks as stored (HDF5 object copy) whenever their
chunk shape and filters are what the writer itself would write, which is always the case for shards
of one build; only ``instruction_index`` (remapped) and any dataset stored otherwise are re-encoded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.dataset import schema
from vlnav_data.dataset.episode_record import stored_episode_record
from vlnav_data.dataset.layout import DatasetLayout, EncoderEntry
from vlnav_data.dataset.partial import config_differences
from vlnav_data.dataset.precision import combine_precision
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.dataset.writer import DatasetWriter
from vlnav_data.errors import ConfigError, MissingEpisodesError
from vlnav_data.jsonio import compact

SHARD_FIELDS = ("shard_index", "num_shards")
"""Build-config fields that differ between the shards of one build; the merged file gets 0 and 1."""

DEFAULT_MERGE_IGNORE = (*SHARD_FIELDS, "out", "resume", "overwrite", "device", "num_envs", "encoder_dtype")
"""Build-config fields shards may differ in. ``device`` and ``encoder_dtype`` are judged by what they
resolved to, each encoder entry's dtype and device type (:mod:`vlnav_data.dataset.precision`), not by
their spelling (``auto`` on a GPU host and on a CPU host read the same)."""


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    """Outcome of :func:`merge_datasets`.

    Attributes:
        path: the merged file.
        num_episodes: demos written.
        num_steps: steps written.
        expected_episodes: episodes of the build (``num_episodes`` of its config; the highest index + 1
            when the config does not say).
        missing_episode_indices: episodes of the build that no input held (empty unless ``allow_missing``).
        raw_datasets: datasets copied with their compressed chunks as stored.
        recoded_datasets: datasets decoded and compressed again.
        elapsed_s: wall time of the merge.
    """

    path: Path
    num_episodes: int
    num_steps: int
    expected_episodes: int
    missing_episode_indices: tuple[int, ...]
    raw_datasets: int = 0
    recoded_datasets: int = 0
    elapsed_s: float = 0.0


def layout_from_reader(r: DatasetReader, **overrides: Any) -> DatasetLayout:
    """Rebuild the :class:`DatasetLayout` a file was written with (fields can be overridden)."""
    feats = r.features
    h, w, _ = feats["rgb"]["shape"]
    env_args = r.env_args
    camera_raw = r.file["data"][r.demo_names[0]][schema.RGB].attrs.get("camera_json") if r.demo_names else None
    limit = 20.0
    if r.demo_names:
        limit = float(r.file["data"][r.demo_names[0]][schema.WHEEL_VEL].attrs.get("wheel_speed_limit_radps", 20.0))
    kw: dict[str, Any] = dict(
        image_height=int(h),
        image_width=int(w),
        state_names=tuple(feats["privileged_state"]["names"]),
        encoders=tuple(EncoderEntry(**spec) for spec in r.encoder_specs.values()),
        fps=r.fps,
        wheel_speed_limit_radps=limit,
        build_config=r.build_config,
        sim_config=r.sim_config,
        env_name=env_args.get("env_name", "vlnav/Arena-v0"),
        env_kwargs=env_args.get("env_kwargs"),
        rebuild_command=r.rebuild_command,
        camera=json.loads(camera_raw) if camera_raw else {},
    )
    kw.update(overrides)
    return DatasetLayout(**kw)


def merge_datasets(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    ignore_fields: Iterable[str] = DEFAULT_MERGE_IGNORE,
    allow_mixed_precision: bool = False,
    allow_missing: bool = False,
    raw_copy: bool = True,
    break_lock: bool = False,
    build_overrides: Mapping[str, Any] | None = None,
    rebuild_command: str | None = None,
    elsewhere_hint: str = "choose another --out",
) -> MergeResult:
    """Merge complete shard files of one build into ``out``.

    Args:
        inputs: shard files (complete ``vlnav-demos`` files).
        out: merged output file (written crash-safely through :class:`DatasetWriter`).
        overwrite: replace an existing ``out``.
        ignore_fields: build-config fields allowed to differ between inputs.
        allow_mixed_precision: accept inputs whose embeddings of one encoder were computed with different
            dtypes or device types (the merged entry records every contributor in ``mixed_precision``).
        allow_missing: merge even when episodes of the build are missing (they are listed in the result).
        raw_copy: copy compressed chunks as stored where the storage matches (False decodes and compresses
            every dataset again, as earlier versions did; kept for comparison).
        break_lock: take over a lock on ``out`` whose holder cannot be probed from this host.
        build_overrides: build-config fields to record in the merged file (e.g. the merged ``out``).
        rebuild_command: command recorded in the merged file (default: the first input's).
        elsewhere_hint: how the user avoids a held lock on ``out``, as the refusal says it (``vlnav-data
            merge`` names its positional ``OUT``).

    Raises:
        MissingEpisodesError: episodes of the build are in no input and ``allow_missing`` is False
            (nothing is written).
        ConfigError: no inputs, inputs from different builds (differing fields named), different layouts,
            an encoder computed in different precisions without ``allow_mixed_precision``, an episode
            index present in two inputs or beyond the build's ``num_episodes``.
        SchemaError: an input is not a complete ``vlnav-demos`` file.
    """
    t0 = time.perf_counter()
    if not inputs:
        raise ConfigError("merge needs at least one input file")
    readers: list[DatasetReader] = []
    try:
        for p in inputs:
            readers.append(DatasetReader(p))
        ref = readers[0]
        ignore = set(ignore_fields)
        for r in readers[1:]:
            diffs = config_differences(ref.build_config, r.build_config, ignore)
            if compact(r.features) != compact(ref.features):
                diffs.append("layout (image size, state columns or encoders)")
            diffs += [f"sim_config.{d}" for d in config_differences(ref.sim_config, r.sim_config)]
            if diffs:
                raise ConfigError(
                    f"'{r.path}' and '{ref.path}' are not shards of one build; they differ in: " + "; ".join(diffs)
                )
        entries = {name: EncoderEntry(**spec) for name, spec in ref.encoder_specs.items()}
        for r in readers[1:]:
            for name, spec in r.encoder_specs.items():
                entries[name] = combine_precision(
                    entries[name],
                    EncoderEntry(**spec),
                    held_by=f"'{ref.path}' holds",  # when this raises, every input before agreed with it
                    new_by=f"'{r.path}' holds",
                    allow_mixed=allow_mixed_precision,
                )
        owners: dict[int, tuple[DatasetReader, str]] = {}
        for r in readers:
            for name in r.demo_names:
                idx = int(r.attrs(name)["episode_index"])
                if idx in owners:
                    raise ConfigError(
                        f"episode {idx} is in both '{owners[idx][0].path}' and '{r.path}'; shards must be disjoint"
                    )
                owners[idx] = (r, name)
        expected = _expected_episodes(ref.build_config, owners)
        beyond = sorted(i for i in owners if i >= expected)
        if beyond:
            raise ConfigError(
                f"episodes {beyond[:10]} are beyond the build's num_episodes ({expected}); the inputs are not "
                "shards of one build"
            )
        missing = tuple(sorted(set(range(expected)) - set(owners)))
        if missing and not allow_missing:
            raise MissingEpisodesError(
                _missing_message(missing, expected, ref.build_config), missing=missing, expected=expected
            )
        build = dict(ref.build_config)
        if "shard_index" in build:
            build["shard_index"] = 0
        if "num_shards" in build:
            build["num_shards"] = 1
        build.update(build_overrides or {})
        # Camera and wheel-limit attributes live on demos: take them from an input that has some.
        source = next((r for r in readers if r.demo_names), ref)
        layout = layout_from_reader(source, build_config=build, encoders=tuple(entries[n] for n in ref.encoders))
        if rebuild_command is not None:
            layout = dataclasses.replace(layout, rebuild_command=rebuild_command)
        tables = {id(r): (r.instructions, {e: r.text_embeddings(e) for e in r.encoders}) for r in readers}
        total = raw = 0
        mode = "overwrite" if overwrite else "create"
        with DatasetWriter(out, layout, mode=mode, break_lock=break_lock, elsewhere_hint=elsewhere_hint) as w:
            for idx in sorted(owners):
                r, name = owners[idx]
                texts, embs = tables[id(r)]
                if raw_copy:
                    raw += w.append_episode_copy(r.file["data"][name], texts, embs)[1]
                else:
                    w.append_episode(stored_episode_record(r, name, embs))
                total += r.num_samples(name)
            w.finalize()
            n_datasets = len(w.demo_datasets()) * len(owners)
        return MergeResult(
            path=Path(out),
            num_episodes=len(owners),
            num_steps=total,
            expected_episodes=expected,
            missing_episode_indices=missing,
            raw_datasets=raw,
            recoded_datasets=n_datasets - raw,
            elapsed_s=time.perf_counter() - t0,
        )
    finally:
        for r in readers:
            r.close()


def _expected_episodes(build: Mapping[str, Any], owners: Mapping[int, Any]) -> int:
    """Episodes of the build: its ``num_episodes``, else (a config without it) the highest index + 1."""
    n = build.get("num_episodes")
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return n
    return max(owners, default=-1) + 1


def _missing_message(missing: tuple[int, ...], expected: int, build: Mapping[str, Any]) -> str:
    shown = ", ".join(map(str, missing[:20])) + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "")
    where = ""
    n = build.get("num_shards")
    if isinstance(n, int) and n > 1:
        shards = sorted({i % n for i in missing})
        where = " (they belong to shard " + ", ".join(f"{i}/{n}" for i in shards) + ")"
    return (
        f"{len(missing)} of {expected} episodes of the build are in no input: {shown}{where}; pass every shard "
        "file of the build, or --allow-missing to merge the others"
    )
