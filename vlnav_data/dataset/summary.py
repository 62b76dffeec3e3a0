"""Numbers that describe a dataset: what ``vlnav-data info`` prints and the dataset card shows."""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset.reader import DatasetReader


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """Statistics of one file.

    Attributes:
        path: the file.
        format_version: the layout version.
        complete: the build finished.
        num_episodes: demos in ``/data``.
        num_steps: sum of ``num_samples``.
        steps_min / steps_mean / steps_max: episode lengths (env steps).
        success_rate: share of episodes with ``success``.
        terminations: termination cause -> episode count.
        targets: target colour -> episode count.
        experts: expert -> episode count.
        splits: filter key -> episode count.
        encoders: encoder name -> dim.
        num_instructions: rows of ``/meta/instructions``.
        image_shape: ``(H, W, 3)``.
        fps: control rate (Hz).
        file_bytes: size on disk.
        stored_bytes: dataset key (``obs/rgb``, ...) -> compressed bytes over all demos.
        bytes_per_frame: ``file_bytes / num_steps``.
        created_utc / writer: provenance.
        source: where an imported file came from (``source_json``: kind, id, revision, ...); None for a file
            the arena recorded (the arena-only fields above are then empty).
        problems: what contradicts the file's own counts (:meth:`DatasetReader.integrity_problems`); a
            file with any is damaged (an episode group deleted or added after the build).
    """

    path: str
    format_version: str
    complete: bool
    num_episodes: int
    num_steps: int
    steps_min: int
    steps_mean: float
    steps_max: int
    success_rate: float
    terminations: dict[str, int]
    targets: dict[str, int]
    experts: dict[str, int]
    splits: dict[str, int]
    encoders: dict[str, int]
    num_instructions: int
    image_shape: tuple[int, ...]
    fps: float
    file_bytes: int
    stored_bytes: dict[str, int]
    bytes_per_frame: float
    created_utc: str
    writer: str
    source: dict[str, Any] | None = None
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def summarize_dataset(
    path: str | os.PathLike, *, allow_incomplete: bool = False, allow_damaged: bool = False
) -> DatasetSummary:
    """Compute a :class:`DatasetSummary` (reads attributes and storage sizes, not the frames).

    Args:
        allow_incomplete: also summarise an unfinished file.
        allow_damaged: also summarise a damaged file (its ``problems`` say what is wrong).

    Raises:
        SchemaError: the file cannot be read as a ``vlnav-demos`` file (or is damaged, without ``allow_damaged``).
    """
    p = Path(path)
    with DatasetReader(p, allow_incomplete=allow_incomplete, allow_damaged=allow_damaged) as r:
        lengths, term, targets, experts = [], collections.Counter(), collections.Counter(), collections.Counter()
        successes = 0
        stored: dict[str, int] = collections.defaultdict(int)
        for name in r.demo_names:
            g = r.file["data"][name]
            a = g.attrs
            lengths.append(int(a["num_samples"]))
            if r.has_arena:
                term[str(_s(a.get("termination", "")))] += 1
                targets[str(_s(a.get("target_color", "")))] += 1
                experts[str(_s(a.get("expert", "")))] += 1
            successes += int(bool(a.get("success", False)))

            def add(key: str, obj: Any, _stored: dict[str, int] = stored) -> None:
                if isinstance(obj, h5py.Dataset):
                    _stored[key] += int(obj.id.get_storage_size())

            g.visititems(add)
        splits = {}
        if "mask" in r.file:
            for k in r.file["mask"].keys():
                splits[k] = int(r.file["mask"][k].shape[0])
        n = len(lengths)
        total = int(sum(lengths))
        file_bytes = p.stat().st_size
        return DatasetSummary(
            path=str(p),
            format_version=str(_s(r.file.attrs.get("format_version", ""))),
            complete=r.complete,
            num_episodes=n,
            num_steps=total,
            steps_min=int(min(lengths)) if n else 0,
            steps_mean=float(np.mean(lengths)) if n else 0.0,
            steps_max=int(max(lengths)) if n else 0,
            success_rate=successes / n if n else 0.0,
            terminations=dict(sorted(term.items())),
            targets=dict(sorted(targets.items())),
            experts=dict(sorted(experts.items())),
            splits=splits,
            encoders={k: int(v["dim"]) for k, v in r.encoder_specs.items()},
            num_instructions=len(r.instructions),
            image_shape=tuple(r.image_shape),
            fps=r.fps,
            file_bytes=file_bytes,
            stored_bytes=dict(sorted(stored.items(), key=lambda kv: -kv[1])),
            bytes_per_frame=file_bytes / total if total else 0.0,
            created_utc=str(_s(r.file.attrs.get("created_utc", ""))),
            writer=str(_s(r.file.attrs.get("writer", ""))),
            source=r.source,
            problems=tuple(r.integrity_problems()) if r.complete else (),
        )


def schema_tree(path: str | os.PathLike, demo: str = "demo_0") -> str:
    """A text tree of the file's layout: root, ``/data`` with one demo expanded, ``/mask``, ``/meta``."""
    lines: list[str] = []
    with h5py.File(path, "r") as f:
        lines.append(f"/  ({len(f.attrs)} attrs: {', '.join(sorted(f.attrs.keys()))})")
        if "data" in f:
            data = f["data"]
            n = len(data)
            lines.append(f"├── data  ({n} demos; attrs: {', '.join(sorted(data.attrs.keys()))})")
            if demo in data:
                g = data[demo]
                lines.append(f"│   ├── {demo}  (attrs: {', '.join(sorted(g.attrs.keys()))})")
                items: list[tuple[str, h5py.Dataset]] = []
                g.visititems(lambda k, o: items.append((k, o)) if isinstance(o, h5py.Dataset) else None)
                for i, (k, ds) in enumerate(items):
                    branch = "└──" if i == len(items) - 1 else "├──"
                    shape = ("T",) + tuple(ds.shape[1:])
                    dims = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
                    lines.append(f"│   │   {branch} {k}  {ds.dtype} ({dims})")
                if n > 1:
                    lines.append(f"│   └── ... demo_{n - 1}")
        for top in ("mask", "meta"):
            if top not in f:
                continue
            lines.append(f"{'├──' if top == 'mask' else '└──'} {top}")
            items = _datasets(f[top])
            pre = "│  " if top == "mask" else "   "
            for i, (k, ds) in enumerate(items):
                branch = "└──" if i == len(items) - 1 else "├──"
                if ds.dtype.kind == "S":
                    dtype = f"bytes {ds.dtype.str}"
                elif h5py.check_string_dtype(ds.dtype) is not None:
                    dtype = "utf-8 str"
                else:
                    dtype = str(ds.dtype)
                lines.append(f"{pre} {branch} {k}  {dtype} {ds.shape}")
    return "\n".join(lines)


def _s(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _datasets(group: h5py.Group) -> list[tuple[str, h5py.Dataset]]:
    items: list[tuple[str, h5py.Dataset]] = []
    group.visititems(lambda k, o: items.append((k, o)) if isinstance(o, h5py.Dataset) else None)
    return items
