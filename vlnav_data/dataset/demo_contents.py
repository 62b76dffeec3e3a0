"""What goes inside one demo group: the datasets and attributes of an episode, or of a copied demo.

:class:`~vlnav_data.dataset.writer.DatasetWriter` creates the (unlinked) group, maps the episode's
instructions to rows of the file's table and commits the group; the functions here fill it, everything
but ``num_samples`` (the commit marker the writer sets last).

Siblings: array storage (chunks, filters, frame deflate) is :mod:`~vlnav_data.dataset.storage`, the
episode record and its layout check :mod:`~vlnav_data.dataset.episode_record`.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.episode_record import EpisodeRecord, ImportedEpisode
from vlnav_data.dataset.layout import DatasetLayout, ImportedLayout
from vlnav_data.dataset.storage import (
    LOWDIM_STORAGE,
    FrameWriter,
    stored_as_written,
    write_embeddings,
    write_vector,
)
from vlnav_data.errors import SchemaError
from vlnav_data.jsonio import compact


def write_episode_demo(
    g: h5py.Group, ep: EpisodeRecord, layout: DatasetLayout, index: np.ndarray, frames: FrameWriter
) -> None:
    """Write an episode's datasets and attributes into the demo group ``g`` (all but ``num_samples``).

    Args:
        g: the new demo group.
        ep: the episode, already checked against ``layout`` (:func:`~.episode_record.check_episode`).
        layout: the file's layout.
        index: ``(T,)`` int32 rows of the file's instruction table, one per step.
        frames: the writer's frame deflater.
    """
    t = len(index)
    lowdim = LOWDIM_STORAGE
    write_vector(g, schema.ACTIONS, ep.actions, np.float32, lowdim).attrs["names"] = list(schema.ACTION_NAMES)
    g[schema.ACTIONS].attrs["units"] = "normalised [-1, 1]"
    wv = write_vector(g, schema.WHEEL_VEL, ep.wheel_vel_radps, np.float32, lowdim)
    wv.attrs["units"] = "rad/s"
    wv.attrs["names"] = list(schema.ACTION_NAMES)
    wv.attrs["wheel_speed_limit_radps"] = float(layout.wheel_speed_limit_radps)
    write_vector(g, schema.REWARDS, ep.rewards, np.float32, lowdim)
    write_vector(g, schema.DONES, ep.dones, np.uint8, lowdim)
    ts = write_vector(g, schema.TIMESTAMPS, np.arange(t, dtype=np.float64) / layout.fps, np.float64, lowdim)
    ts.attrs["units"] = "s"
    write_vector(g, schema.INSTRUCTION_INDEX, index, np.int32, lowdim)
    rgb = frames.write(g, ep.rgb)
    rgb.attrs["modality"] = "rgb"
    if layout.camera:
        rgb.attrs["camera_json"] = compact(dict(layout.camera))
    ps = write_vector(g, schema.PRIVILEGED_STATE, ep.privileged_state, np.float32, lowdim)
    ps.attrs["modality"] = "low_dim"
    ps.attrs["names"] = list(layout.state_names)
    ps.attrs["privileged"] = True
    for enc in layout.encoders:
        write_embeddings(g, enc, ep.image_embeddings[enc.name], ep.joint_embeddings[enc.name])
    g.attrs["seed"] = np.int64(ep.seed)
    g.attrs["episode_index"] = np.int64(ep.episode_index)
    g.attrs["target_index"] = np.int64(ep.target_index)
    g.attrs["target_color"] = str(ep.target_color)
    g.attrs["termination"] = str(ep.termination)
    g.attrs["success"] = bool(ep.success)
    g.attrs["expert"] = str(ep.expert)
    g.attrs["split"] = str(ep.split)
    for key, value in ep.extra_attrs.items():
        g.attrs[key] = value


def write_imported_demo(
    g: h5py.Group, ep: ImportedEpisode, layout: ImportedLayout, index: np.ndarray, frames: FrameWriter
) -> None:
    """Write an imported episode's datasets and attributes into the demo group ``g`` (all but ``num_samples``).

    Args:
        g: the new demo group.
        ep: the episode, already checked (:func:`~.episode_record.check_imported_episode`).
        layout: the file's layout.
        index: ``(T,)`` int32 rows of the file's instruction table, one per step.
        frames: the writer's frame deflater.
    """
    lowdim = LOWDIM_STORAGE
    write_vector(g, schema.ACTIONS, ep.actions, np.float32, lowdim).attrs["names"] = list(layout.action_names)
    write_vector(g, schema.REWARDS, ep.rewards, np.float32, lowdim)
    write_vector(g, schema.DONES, ep.dones, np.uint8, lowdim)
    write_vector(g, schema.TIMESTAMPS, ep.timestamps_s, np.float64, lowdim).attrs["units"] = "s"
    write_vector(g, schema.INSTRUCTION_INDEX, index, np.int32, lowdim)
    rgb = frames.write(g, ep.rgb)
    rgb.attrs["modality"] = "rgb"
    if layout.camera:
        rgb.attrs["camera_json"] = compact(dict(layout.camera))
    for ft in layout.numeric:
        ds = write_vector(g, ft.path, ep.numeric[ft.path], np.float32, lowdim)
        ds.attrs["modality"] = "low_dim"
        ds.attrs["source_key"] = ft.source_key
        if ft.names is not None:
            ds.attrs["names"] = list(ft.names)
    g.attrs["episode_index"] = np.int64(ep.episode_index)
    g.attrs["split"] = str(ep.split)
    for key, value in ep.extra_attrs.items():
        g.attrs[key] = value


def source_datasets(src: h5py.Group, layout: DatasetLayout) -> dict[str, h5py.Dataset]:
    """The datasets of a committed demo of another file, checked against ``layout``.

    Args:
        src: the demo group (``/data/demo_<i>`` of a complete ``vlnav-demos`` file).
        layout: the layout of the file it is copied into.

    Returns:
        Path in the demo -> dataset, for every dataset of the demo.

    Raises:
        SchemaError: the demo's datasets are not those of ``layout`` (names, dtypes or shapes).
    """
    t = int(src.attrs["num_samples"])
    expected: dict[str, tuple[Any, tuple[int, ...]]] = layout.datasets()
    present: dict[str, h5py.Dataset] = {}
    src.visititems(lambda key, obj: present.__setitem__(key, obj) if isinstance(obj, h5py.Dataset) else None)
    where = f"{src.file.filename}:{src.name}"
    if set(present) != set(expected):
        raise SchemaError(
            f"{where} does not fit the file layout: missing {sorted(set(expected) - set(present))}, "
            f"unexpected {sorted(set(present) - set(expected))}"
        )
    bad = [
        f"{key}: expected {np.dtype(dtype)} {(t, *row)}, got {ds.dtype} {ds.shape}"
        for key, (dtype, row) in expected.items()
        if (ds := present[key]).dtype != np.dtype(dtype) or ds.shape != (t, *row)
    ]
    if bad:
        raise SchemaError(f"{where} does not fit the file layout: " + "; ".join(bad))
    return present


def copy_demo(
    g: h5py.Group, src: h5py.Group, present: dict[str, h5py.Dataset], index: np.ndarray, frames: FrameWriter
) -> int:
    """Copy a demo's datasets and attributes into the demo group ``g`` (all but ``num_samples``).

    A dataset stored as this file would store it is copied raw (an HDF5 object copy: its compressed
    chunks are not decoded); any other is decoded and written anew, and ``instruction_index`` is written
    from ``index``.

    Args:
        g: the new demo group.
        src: the source demo group.
        present: its datasets (:func:`source_datasets`).
        index: ``(T,)`` int32 rows of this file's instruction table, one per step.
        frames: the writer's frame deflater.

    Returns:
        The number of datasets copied raw.
    """
    lowdim = LOWDIM_STORAGE
    raw = 0
    for key, ds in present.items():
        parent, _, leaf = key.rpartition("/")
        dest = g.require_group(parent) if parent else g
        if key == schema.INSTRUCTION_INDEX:
            out = write_vector(g, key, index, np.int32, lowdim)
        elif stored_as_written(key, ds):
            dest.copy(ds, dest, name=leaf)
            raw += 1
            continue
        elif key == schema.RGB:
            out = frames.write(g, ds[()])
        else:
            out = write_vector(g, key, ds[()], ds.dtype, lowdim)
        for k, v in ds.attrs.items():
            out.attrs[k] = v
    for k, v in src.attrs.items():
        if k != "num_samples":
            g.attrs[k] = v
    return raw
