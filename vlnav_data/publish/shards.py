"""Copy a dataset file into a Hub folder, split into shards below a size limit.

The Hub recommends files under 20 GB (``dataset-ecosystem.md`` §4). A file below ``max_bytes`` is copied
byte for byte. A bigger one is split by contiguous demo ranges; each shard is a complete, valid
``vlnav-demos`` file written through :class:`~vlnav_data.dataset.DatasetWriter` (demos renumbered
``demo_0..``, each demo's ``episode_index``, seed, split and attributes kept, the instructions it uses and
their text embeddings carried along). Shards are named ``<stem>-00000-of-00003<suffix>``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlnav_data.dataset import DatasetLayout, DatasetReader, DatasetWriter
from vlnav_data.dataset.episode_record import stored_episode_record
from vlnav_data.dataset.merge import layout_from_reader
from vlnav_data.errors import ConfigError

HUB_FILE_LIMIT_BYTES = 20 * 10**9
"""Hugging Face's recommended largest file (20 GB)."""


@dataclass(frozen=True, kw_only=True)
class Shard:
    """One published HDF5 file.

    Attributes:
        name: file name inside the Hub folder.
        demos: source demo names it holds, in order.
        num_steps: steps it holds.
        size_bytes: its size on disk.
    """

    name: str
    demos: tuple[str, ...]
    num_steps: int
    size_bytes: int


def demo_storage_bytes(reader: DatasetReader, demo: str) -> int:
    """Bytes the demo's datasets occupy in the file (compressed chunks)."""
    total = 0

    def visit(_: str, obj: object) -> None:
        nonlocal total
        if hasattr(obj, "id") and hasattr(obj, "shape") and hasattr(obj.id, "get_storage_size"):
            total += int(obj.id.get_storage_size())

    reader.file["data"][demo].visititems(visit)
    return total


def plan_shards(sizes: list[int], budget_bytes: int) -> list[range]:
    """Group consecutive items greedily so that each group's total stays within ``budget_bytes``.

    Raises:
        ConfigError: one item alone is bigger than the budget.
    """
    groups: list[range] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if size > budget_bytes:
            raise ConfigError(
                f"demo_{i} alone takes {size} bytes, more than the {budget_bytes}-byte shard budget; raise the "
                "shard size limit (--shard-max-gb)"
            )
        if used + size > budget_bytes and i > start:
            groups.append(range(start, i))
            start, used = i, 0
        used += size
    if sizes:
        groups.append(range(start, len(sizes)))
    return groups


def shard_name(path: Path, index: int, count: int) -> str:
    """``<stem>-00000-of-00003<suffix>``."""
    return f"{path.stem}-{index:05d}-of-{count:05d}{path.suffix}"


def write_shards(source: Path, out_dir: Path, max_bytes: int = HUB_FILE_LIMIT_BYTES) -> list[Shard]:
    """Copy ``source`` into ``out_dir`` as one file, or as shards each below ``max_bytes``.

    Args:
        source: a complete ``vlnav-demos`` file.
        out_dir: the folder to write into (exists).
        max_bytes: every written file must be smaller than this.

    Returns:
        The files written, in order.

    Raises:
        ConfigError: ``max_bytes`` is not positive, a demo alone exceeds it, or no plan kept every shard
            below it.
    """
    if max_bytes <= 0:
        raise ConfigError(f"the shard size limit must be positive, got {max_bytes} bytes")
    source = Path(source)
    size = source.stat().st_size
    with DatasetReader(source) as reader:
        if size < max_bytes:
            shutil.copy2(source, out_dir / source.name)
            return [Shard(name=source.name, demos=reader.demo_names, num_steps=reader.total_steps, size_bytes=size)]
        storage = [demo_storage_bytes(reader, d) for d in reader.demo_names]
        # HDF5 object headers, attributes and /meta are not in the chunk storage: spread them evenly.
        per_demo_overhead = max(0, size - sum(storage)) / max(1, len(storage))
        sizes = [int(b + per_demo_overhead) for b in storage]
        layout = layout_from_reader(reader)
        text_tables = {e: reader.text_embeddings(e) for e in reader.encoders}
        budget = int(max_bytes * 0.98)
        for _ in range(_PLAN_ATTEMPTS):
            groups = plan_shards(sizes, budget)
            shards = [
                _write_shard(reader, layout, text_tables, out_dir / shard_name(source, k, len(groups)), group)
                for k, group in enumerate(groups)
            ]
            largest = max(sh.size_bytes for sh in shards)
            if largest < max_bytes:
                return shards
            for sh in shards:  # the estimate was too low: shrink the budget by what we saw and re-plan
                (out_dir / sh.name).unlink()
            budget = int(budget * max_bytes / largest * 0.95)
        raise ConfigError(
            f"could not split '{source}' into files below {max_bytes} bytes (largest shard {largest} bytes); "
            "raise the shard size limit (--shard-max-gb)"
        )


_PLAN_ATTEMPTS = 4


def _write_shard(
    reader: DatasetReader,
    layout: DatasetLayout,
    text_tables: dict[str, np.ndarray],
    path: Path,
    group: range,
) -> Shard:
    demos = tuple(reader.demo_names[i] for i in group)
    with DatasetWriter(path, layout, mode="create") as writer:
        for demo in demos:
            writer.append_episode(stored_episode_record(reader, demo, text_tables))
        steps = writer.total_steps
        writer.finalize()
    return Shard(name=path.name, demos=demos, num_steps=steps, size_bytes=path.stat().st_size)
