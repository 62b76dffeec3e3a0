"""The loop every import shares: a checked source, episode by episode, into the project's one writer.

A source (:class:`ImportSource`) has done every check before :func:`write_import` runs (nothing is
written for a refused input); it then reads one episode at a time, so memory holds one episode whatever
the dataset's size (one more is decoded ahead by a reader thread while the writer deflates the current one:
PyAV, pyarrow and zlib release the GIL). The writer's ``.partial`` discipline makes the import resumable exactly like
``build --resume``: committed episodes stay, the selection continues after them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from vlnav_data.dataset.episode_record import ImportedEpisode
from vlnav_data.dataset.layout import ImportedLayout
from vlnav_data.dataset.partial import WriteMode, partial_path, preflight_output
from vlnav_data.dataset.splits import episode_split
from vlnav_data.dataset.writer import DatasetWriter
from vlnav_data.errors import ConfigError
from vlnav_data.imports.config import ImportProgress, ImportResult, ProgressFn


class ImportSource(Protocol):
    """A checked source: its layout and selection are known, :meth:`read` yields one episode."""

    kind: str
    source_id: str
    camera: str
    layout: ImportedLayout
    selection: list[int]
    lengths: list[int]
    splits: list[str]
    skipped: dict[str, str]

    def read(self, k: int) -> ImportedEpisode:
        """The ``k``-th episode of the selection, ready for the writer."""
        ...

    def close(self) -> None: ...


def write_mode(resume: bool, overwrite: bool) -> WriteMode:
    return "resume" if resume else "overwrite" if overwrite else "create"


def check_output(out: str | Path, mode: WriteMode) -> Path:
    """Refuse an output the import may not write, touching nothing (the directory is made later, by
    :func:`prepare_output`, once the source has passed its checks too). Raises ConfigError."""
    path = Path(out)
    if path.suffix not in (".h5", ".hdf5"):
        raise ConfigError(f"--out must name an .h5 file (the vlnav-demos file to write), got '{path}'")
    if path.is_dir():
        raise ConfigError(f"the output '{path}' is a directory; pass a file name such as demos.h5")
    if mode == "create" and path.exists():
        raise ConfigError(f"the output '{path}' already exists; pass --overwrite to replace it or choose another --out")
    if mode == "create" and partial_path(path).exists():
        raise ConfigError(
            f"an unfinished import exists at '{partial_path(path)}'; pass --resume to continue it or --overwrite "
            "to start over"
        )
    return path


def prepare_output(path: Path, mode: WriteMode) -> None:
    """The writer's own checks of the output (lock, writable directory, which it creates)."""
    preflight_output(path, mode)


def choose_camera(source: str, noun: str, wanted: str | None, cameras: list[str]) -> str:
    """The camera an import keeps as ``obs/rgb``: ``wanted`` (``--camera``), or the only one there is.

    Args:
        source: the source as messages name it (``'path'``).
        noun: what the source calls its cameras (``cameras``, ``image observations``).
        wanted: the camera asked for, or ``None``.
        cameras: the source's cameras (at least one).

    Raises:
        ConfigError: ``wanted`` is not one of them, or none was asked for and there are several (both list them).
    """
    if wanted is None:
        if len(cameras) > 1:
            raise ConfigError(f"{source} has {len(cameras)} {noun}; choose one with --camera: {', '.join(cameras)}")
        return cameras[0]
    if wanted not in cameras:
        raise ConfigError(f"camera '{wanted}' is not in {source}; its {noun} are: {', '.join(cameras)}")
    return wanted


def assign_splits(
    selection: list[int], named_valid: set[int] | None, valid_fraction: float, split_seed: int
) -> list[str]:
    """``train``/``valid`` per selected episode, by episode.

    The source's own validation episodes when it names them (``named_valid``) and the selection holds one;
    otherwise the project's
    stratified rule on the source episode index (:func:`~vlnav_data.dataset.splits.episode_split`), and, when
    that leaves no validation episode among two or more, the last one selected.
    """
    if named_valid is not None and named_valid & set(selection):
        return ["valid" if i in named_valid else "train" for i in selection]
    splits = [episode_split(split_seed, i, valid_fraction) for i in selection]
    if valid_fraction > 0 and len(selection) >= 2 and "valid" not in splits:
        splits[-1] = "valid"
    return splits


def write_import(source: ImportSource, out: Path, mode: WriteMode, progress: ProgressFn | None) -> ImportResult:
    """Write the source's selected episodes to ``out`` (resuming ``out.partial`` in ``resume`` mode)."""
    started = time.perf_counter()
    layout = source.layout
    writer = DatasetWriter(out, layout, mode=mode)
    try:
        start = writer.num_episodes
        if list(writer.episode_indices) != source.selection[:start]:
            raise ConfigError(
                f"'{writer.partial}' holds episodes {list(writer.episode_indices)[:5]}..., not the start of this "
                "selection; pass the original --episodes, or --overwrite to start over"
            )
        frames_total = int(sum(source.lengths))
        frames_done = int(sum(source.lengths[:start]))
        frames_new = 0
        for k, ep in read_ahead(source, range(start, len(source.selection))):
            writer.append_episode(ep)
            frames_done += ep.num_steps
            frames_new += ep.num_steps
            if progress is not None:
                progress(
                    ImportProgress(
                        episodes_done=k + 1,
                        episodes_total=len(source.selection),
                        frames_done=frames_done,
                        frames_total=frames_total,
                        frames_per_s=frames_new / max(time.perf_counter() - started, 1e-9),
                    )
                )
        num_steps = writer.total_steps
        writer.finalize()
    except BaseException:
        writer.close()  # committed episodes stay in OUT.partial for --resume
        raise
    finally:
        source.close()
    seconds = time.perf_counter() - started
    splits = {s: source.splits.count(s) for s in ("train", "valid")}
    return ImportResult(
        path=out,
        kind=source.kind,
        source_id=source.source_id,
        camera=source.camera,
        num_episodes=len(source.selection),
        num_steps=num_steps,
        resumed_episodes=start,
        splits=splits,
        action_dim=layout.action_dim,
        features=tuple(ft.key for ft in layout.numeric),
        skipped=dict(source.skipped),
        seconds=seconds,
        frames_per_s=frames_new / seconds if seconds > 0 else 0.0,
    )


READ_AHEAD = 1
"""Episodes a reader thread may hold decoded beyond the one being written."""

_DONE = object()


def read_ahead(source: ImportSource, ks: Sequence[int]) -> Iterator[tuple[int, ImportedEpisode]]:
    """``(k, source.read(k))`` for each ``k``, read by a thread that stays :data:`READ_AHEAD` episodes ahead.

    An error of the reader is raised here, in the caller's thread; when the caller stops (an error, a kill
    signal as KeyboardInterrupt), the reader stops within 0.1 s and is joined before this returns.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for k in ks:
                if not put((k, source.read(k))):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            put(exc)

    thread = threading.Thread(target=work, name="vlnav-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
