"""Write a copy of a ``vlnav-demos`` file with encoders added from an ``embed`` sidecar.

The copy is made with HDF5's object copy (``H5Ocopy``, h5py ``Group.copy``), which moves each chunk's
stored bytes as they are: frames and every other dataset are neither decompressed nor recompressed, so
the copy runs at disk speed and the copied arrays, filters and chunking are exactly the input's. The
sidecar's datasets are copied the same way into each demo. Only the root attributes that describe the
encoders change (``encoders_json``, ``features_json``, ``rebuild_command``); ``complete`` is written
True last, then the file is fsynced. The caller renames it into place (:func:`~vlnav_data.dataset.partial.publish`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py

from vlnav_data.dataset import schema
from vlnav_data.dataset.layout import EncoderEntry, encoder_features
from vlnav_data.dataset.partial import fsync_path
from vlnav_data.jsonio import compact

CopyProgress = Callable[[int, int], None]
"""Called with (demos copied, demos in the file) after every demo."""


def combined_entries(existing: Sequence[EncoderEntry], added: Sequence[EncoderEntry]) -> list[EncoderEntry]:
    """The file's encoder list after ``embed``: a replaced encoder keeps its place, new ones go last."""
    by_name = {e.name: e for e in added}
    out = [by_name.pop(e.name, e) for e in existing]
    return out + [e for e in added if e.name in by_name]


def write_with_encoders(
    source: str | os.PathLike,
    sidecar: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    added: Sequence[EncoderEntry],
    rebuild_command: str,
    progress: CopyProgress | None = None,
) -> None:
    """Write ``dest`` = ``source`` with the sidecar's encoders added (replacing same-named ones), fsynced.

    Args:
        source: the complete input file (never modified).
        sidecar: a complete ``embed`` sidecar (:mod:`vlnav_data.dataset.sidecar`) for ``source``.
        dest: the file to write (``<out>.partial``; replaced if it exists).
        added: entries of the encoders the sidecar holds.
        rebuild_command: the new ``rebuild_command`` attribute.
        progress: called after every demo.
    """
    dest = Path(dest)
    dest.unlink(missing_ok=True)
    names = {e.name for e in added}
    demo_skip = {schema.encoder_path(n, kind) for n in names for kind in schema.EMBEDDING_KINDS}
    with h5py.File(source, "r") as src, h5py.File(sidecar, "r") as side, h5py.File(dest, "w") as dst:
        _copy_attrs(src, dst)
        dst.attrs["complete"] = False
        existing = [EncoderEntry(**e) for e in json.loads(src.attrs["encoders_json"])]
        features = {
            k: v
            for k, v in json.loads(src.attrs["features_json"]).items()
            if k not in {schema.encoder_key(n, kind) for n in names for kind in schema.EMBEDDING_KINDS}
        }
        for entry in added:
            features.update(encoder_features(entry))
        for key in src:
            if key == "data":
                _copy_data(src["data"], side["data"], dst, added, demo_skip, progress)
            elif key == "meta":
                _copy_tree(src["meta"], dst, "meta", {f"text_embeddings/{n}" for n in names})
                for entry in added:
                    side.copy(side[f"{schema.META_TEXT_EMBEDDINGS}/{entry.name}"], dst[schema.META_TEXT_EMBEDDINGS])
            else:
                src.copy(src[key], dst, key)
        entries = combined_entries(existing, added)
        dst.attrs["encoders_json"] = compact([e.to_json() for e in entries])
        dst.attrs["features_json"] = compact(features)
        dst.attrs["rebuild_command"] = rebuild_command
        dst.attrs["complete"] = True  # LAST
        dst.flush()
    fsync_path(dest)


def _copy_data(
    src: h5py.Group,
    side: h5py.Group,
    dst: h5py.File,
    added: Sequence[EncoderEntry],
    skip: set[str],
    progress: CopyProgress | None,
) -> None:
    data = dst.create_group("data")
    _copy_attrs(src, data)
    names = sorted(src.keys(), key=lambda n: (schema.demo_index(n) is None, schema.demo_index(n) or 0, n))
    for i, name in enumerate(names):
        _copy_tree(src[name], data, name, skip)
        obs = data[name].require_group("obs")
        for entry in added:
            for kind in schema.EMBEDDING_KINDS:
                key = schema.encoder_key(entry.name, kind)
                side.copy(side[f"{name}/obs/{key}"], obs, key)
        if progress is not None:
            progress(i + 1, len(names))


def _copy_tree(src: h5py.Group, dst_parent: h5py.Group, name: str, skip: set[str]) -> None:
    """Copy group ``src`` to ``dst_parent/name`` without the datasets at the relative paths in ``skip``.

    Without anything to skip below it, the group is copied whole by one ``H5Ocopy``.
    """
    if not any(path in src for path in skip):
        src.parent.copy(src, dst_parent, name)
        return
    g = dst_parent.create_group(name)
    _copy_attrs(src, g)
    for key, obj in src.items():
        below = {p.split("/", 1)[1] for p in skip if p.startswith(key + "/")}
        if isinstance(obj, h5py.Group):
            _copy_tree(obj, g, key, below)
        elif key not in skip:
            src.copy(obj, g, key)


def _copy_attrs(src: h5py.HLObject, dst: h5py.HLObject) -> None:
    """Copy every attribute with its stored HDF5 type (strings stay UTF-8, integers keep their width)."""
    for key in src.attrs:
        dst.attrs.create(key, src.attrs[key], dtype=src.attrs.get_id(key).dtype)
