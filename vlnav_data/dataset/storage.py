"""How a ``vlnav-demos`` file stores its arrays: chunks, filters, dtypes and attributes, decided once.

The writer, ``merge`` (raw chunk copies) and ``embed`` (added encoders) all store through these functions,
so a file's datasets look the same whichever of them wrote it.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.layout import EncoderEntry

LOWDIM_STORAGE = {"compression": "gzip", "compression_opts": schema.GZIP_LEVEL_LOWDIM, "shuffle": True}
"""How per-step vectors are stored: gzip + shuffle (chunk rows from :func:`schema.lowdim_chunk_rows`)."""


def write_vector(g: h5py.Group, path: str, values: Any, dtype: Any, opts: dict) -> h5py.Dataset:
    """A per-step array: chunk rows from :func:`schema.lowdim_chunk_rows`, ``opts`` filters (no shuffle for bytes)."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    row_bytes = int(arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64)))
    rows = max(1, min(arr.shape[0], schema.lowdim_chunk_rows(row_bytes)))
    chunks = (rows, *arr.shape[1:])
    o = dict(opts)
    if arr.dtype.itemsize == 1:
        o.pop("shuffle")  # shuffle helps multi-byte types only
    return g.create_dataset(path, data=arr, chunks=chunks, **o)


def write_embeddings(demo: h5py.Group, entry: EncoderEntry, image: Any, joint: Any) -> None:
    """Write one encoder's ``obs/<name>_image`` and ``obs/<name>_joint`` (float16) into a demo group.

    The one place their storage (dtype, chunks, filters, attributes) is decided: the writer and
    ``vlnav-data embed`` both call it, so an added encoder is stored exactly like a built one.
    """
    for kind, values in (("image", image), ("joint", joint)):
        ds = write_vector(demo, schema.encoder_path(entry.name, kind), values, np.float16, LOWDIM_STORAGE)
        ds.attrs["modality"] = "low_dim"
        ds.attrs["encoder"] = entry.name
        ds.attrs["l2_normalized"] = True
        if kind == "joint":
            ds.attrs["fusion"] = entry.fusion


def create_text_table(text_embeddings: h5py.Group, entry: EncoderEntry, rows: int) -> h5py.Dataset:
    """Create ``/meta/text_embeddings/<name>``: float32 ``(rows, E)``, resizable, one row per instruction."""
    ds = text_embeddings.create_dataset(
        entry.name,
        shape=(rows, entry.dim),
        maxshape=(None, entry.dim),
        dtype=schema.TEXT_EMBEDDING_DTYPE,
        chunks=(8, entry.dim),
        compression="gzip",
        compression_opts=schema.GZIP_LEVEL_LOWDIM,
        shuffle=True,
    )
    ds.attrs["l2_normalized"] = True
    return ds


def create_instruction_table(meta: h5py.Group) -> h5py.Dataset:
    """Create ``/meta/instructions``: resizable UTF-8 strings, one per distinct instruction."""
    return meta.create_dataset(
        "instructions", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"), chunks=(256,)
    )


def stored_as_written(key: str, ds: h5py.Dataset) -> bool:
    """True when ``ds`` has the chunk shape and filters this writer gives ``key`` (its chunks copy raw)."""
    t = int(ds.shape[0])
    if key == schema.RGB:
        chunks, level, shuffle = (1, *ds.shape[1:]), schema.GZIP_LEVEL_RGB, False
    else:
        row_bytes = int(ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)))
        chunks = (max(1, min(t, schema.lowdim_chunk_rows(row_bytes))), *ds.shape[1:])
        level, shuffle = schema.GZIP_LEVEL_LOWDIM, ds.dtype.itemsize > 1
    return (
        ds.chunks == chunks
        and ds.compression == "gzip"
        and ds.compression_opts == level
        and bool(ds.shuffle) == shuffle
        and not ds.fletcher32
        and ds.scaleoffset is None
    )


class FrameWriter:
    """``obs/rgb`` of a demo: one frame per chunk, deflated in parallel (zlib releases the GIL) and stored as-is:
    the same bytes HDF5's gzip filter would write, readable by any HDF5.

    Args:
        threads: threads deflating frames; 1 compresses inline.
    """

    def __init__(self, threads: int) -> None:
        self._threads = int(threads)
        self._pool: ThreadPoolExecutor | None = None

    def write(self, g: h5py.Group, values: np.ndarray) -> h5py.Dataset:
        """Write ``values`` (``(T, H, W, 3)`` uint8) as the demo's ``obs/rgb``."""
        frames = np.ascontiguousarray(values, dtype=np.uint8)
        t, h, w, _ = frames.shape
        rgb = g.create_dataset(
            schema.RGB,
            shape=(t, h, w, 3),
            dtype=np.uint8,
            chunks=(1, h, w, 3),
            compression="gzip",
            compression_opts=schema.GZIP_LEVEL_RGB,
        )
        for i, blob in enumerate(self._compress_frames(frames)):
            rgb.id.write_direct_chunk((i, 0, 0, 0), blob)
        return rgb

    def _compress_frames(self, frames: np.ndarray) -> list[bytes]:
        level = schema.GZIP_LEVEL_RGB
        if self._threads <= 1 or len(frames) < 4:
            return [zlib.compress(f, level) for f in frames]  # each frame deflated where it lies (no copy)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="vlnav-deflate")
        return list(self._pool.map(lambda f: zlib.compress(f, level), frames))

    def shutdown(self) -> None:
        """Stop the deflate threads (a later write starts them again)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
