"""Resuming an unfinished build: reopen ``<out>.partial``, check it, keep its committed demos (the writer's
``mode="resume"``; the protocol is in :mod:`vlnav_data.dataset.writer`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.layout import DatasetLayout, EncoderEntry
from vlnav_data.dataset.partial import committed_demos, config_differences, crash_safe, drop_demos_from
from vlnav_data.dataset.precision import combine_precision
from vlnav_data.dataset.storage import create_instruction_table
from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import compact


@dataclass(frozen=True, kw_only=True)
class ResumedFile:
    """A reopened partial file and what its committed demos hold.

    Attributes:
        file: the open file (``r+``), HDF5 cache set crash-safe.
        episode_indices: global episode index of each committed demo, in file order.
        splits: split of each committed demo.
        total: committed steps.
        instructions: ``/meta/instructions`` rows the committed demos use (the table was cut to them).
    """

    file: h5py.File
    episode_indices: list[int]
    splits: list[str]
    total: int
    instructions: list[str]


def reopen_partial(
    partial: Path,
    layout: DatasetLayout,
    *,
    ignore: Iterable[str] = (),
    absent: Mapping[str, Any] | None = None,
    allow_mixed_precision: bool = False,
) -> ResumedFile:
    """Reopen an unfinished build to continue it: check it, drop what was not committed, return its state.

    The file must be a ``vlnav-demos`` file of this format version written with the same configuration
    (``ignore``: build-config fields that may differ; ``absent``: the implied value of fields added since),
    layout and arena; one encoder keeps one precision (:func:`~vlnav_data.dataset.precision.combine_precision`).
    Demos after the committed prefix and instruction rows only they used are dropped; the fields allowed to
    differ take this run's values.

    Raises:
        ConfigError: the file cannot be opened, is another format or version, was built differently (the
            fields are named), or resuming would mix precisions within one encoder.
    """
    try:
        f = h5py.File(partial, "r+")
    except OSError as exc:
        raise ConfigError(
            f"the unfinished build '{partial}' cannot be opened ({exc}); it is damaged beyond "
            "resuming: pass --overwrite to start over"
        ) from exc
    try:
        return _resume(f, partial, layout, set(ignore), dict(absent or {}), allow_mixed_precision)
    except BaseException:
        f.close()
        raise


def _resume(
    f: h5py.File, partial: Path, layout: DatasetLayout, ignore: set[str], absent: dict, allow_mixed: bool
) -> ResumedFile:
    crash_safe(f)
    if f.attrs.get("format") != schema.FORMAT_NAME or f.attrs.get("format_version") != schema.FORMAT_VERSION:
        raise ConfigError(
            f"'{partial}' is not a {schema.FORMAT_NAME} {schema.FORMAT_VERSION} file "
            f"(format={f.attrs.get('format')!r}, version={f.attrs.get('format_version')!r}); "
            "pass --overwrite to start over"
        )
    stored_build = json.loads(f.attrs["build_config_json"])
    diffs = config_differences(stored_build, dict(layout.build_config), ignore, absent)
    stored_features = json.loads(f.attrs["features_json"])
    if compact(stored_features) != compact(layout.features()):
        diffs.append("layout (image size, state columns or encoders differ)")
    stored_sim = json.loads(f.attrs["sim_config_json"])
    diffs.extend(f"sim_config.{d}" for d in config_differences(stored_sim, dict(layout.sim_config)))
    if diffs:
        raise ConfigError(
            f"cannot resume '{partial}': it was built with a different configuration: "
            + "; ".join(diffs)
            + ". Use the original settings, or pass --overwrite to start over"
        )
    data = f["data"]
    committed = committed_demos(data)
    _check_precision(f, partial, layout, committed, allow_mixed)  # before anything else in the file changes
    # The fields allowed to differ (e.g. num_episodes of an extended build) now take this run's values.
    f.attrs["build_config_json"] = compact(dict(layout.build_config))
    f.attrs["rebuild_command"] = layout.rebuild_command
    drop_demos_from(data, committed)
    episode_indices: list[int] = []
    splits: list[str] = []
    total = 0
    max_row = -1
    for i in range(committed):
        g = data[schema.demo_name(i)]
        episode_indices.append(int(g.attrs["episode_index"]))
        splits.append(str(g.attrs["split"]))
        total += int(g.attrs["num_samples"])
        ii = g[schema.INSTRUCTION_INDEX][()]
        if ii.size:
            max_row = max(max_row, int(ii.max()))
    # The instruction table is appended before each demo: drop rows of an uncommitted episode. The
    # strings are rewritten into a new dataset rather than the old one shrunk: a shrunk chunk keeps the
    # killed writer's references to its heap strings, and HDF5 fails ("bad heap index") when a later
    # write over those rows frees them.
    k = max_row + 1
    kept = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[schema.META_INSTRUCTIONS][:k]]
    del f[schema.META_INSTRUCTIONS]
    instr = create_instruction_table(f["meta"])
    if kept:
        instr.resize((k,))
        instr[:] = np.array(kept, dtype=object)
    for enc in layout.encoders:
        te = f[schema.META_TEXT_EMBEDDINGS][enc.name]
        te.resize((k, enc.dim))
    data.attrs["total"] = np.int64(total)
    data.attrs["num_demos"] = np.int64(committed)
    f.flush()
    return ResumedFile(file=f, episode_indices=episode_indices, splits=splits, total=total, instructions=kept)


def _check_precision(f: h5py.File, partial: Path, layout: DatasetLayout, committed: int, allow_mixed: bool) -> None:
    """One encoder, one precision: the committed demos' encoder entries against this run's."""
    stored = {e["name"]: e for e in json.loads(f.attrs["encoders_json"])}
    entries = []
    for enc in layout.encoders:
        if committed == 0 or enc.name not in stored:  # nothing of it in the file yet: this run's entry
            entries.append(enc)
            continue
        held = EncoderEntry(**stored[enc.name])
        entries.append(
            combine_precision(
                held,
                enc,
                held_by=f"'{partial}' holds",
                new_by="this run computes",
                allow_mixed=allow_mixed,
            )
        )
    f.attrs["encoders_json"] = compact([e.to_json() for e in entries])
