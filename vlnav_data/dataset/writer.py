"""Crash-safe, resumable writer of ``vlnav-demos`` files.

Protocol (dataset-ecosystem.md §6.4): everything is written to ``<out>.partial``; each episode is
written whole into an unlinked group with its ``num_samples`` attribute (robomimic's required attribute
and our commit marker) last, flushed, then linked as ``/data/demo_<i>`` and flushed again.
``finalize()`` writes the masks and ``complete=True``, closes, fsyncs and renames to ``<out>``
atomically, then fsyncs the directory. A killed writer leaves only the ``.partial`` file (and a lock
file that the next writer on this host takes over); ``mode="resume"`` reopens it, drops every demo
without ``num_samples`` and continues. ``<out>.lock`` keeps a second writer away while one runs.

HDF5 has no journal, so what a kill leaves depends on what reached the disk. Three rules keep that the
last committed state: HDF5 never writes metadata between our flushes (no cache evictions, see
:func:`~vlnav_data.dataset.partial.crash_safe`); it never reuses space it freed
(``fs_strategy="none"``), so a rewritten chunk never overwrites data the committed state still points to;
and a demo is linked only after its first flush, so a kill during that (long) flush leaves nothing
pointing at a half-written demo. What a kill can still interrupt is the second flush (the link and
``/data``'s totals: microseconds per episode). Costs: a few KB of unreused space per rewritten chunk, two
flushes per episode, and the metadata of :data:`REOPEN_EVERY` episodes held in memory.

Modules: the ``.partial`` discipline (names, preflight, publish, committed prefix) is
:mod:`~vlnav_data.dataset.partial`, array storage :mod:`~vlnav_data.dataset.storage`, the episode record
:mod:`~vlnav_data.dataset.episode_record`, a demo's datasets and attributes
:mod:`~vlnav_data.dataset.demo_contents`, resuming :mod:`~vlnav_data.dataset.resume`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import vlnav_data
from vlnav_data.dataset import schema
from vlnav_data.dataset.demo_contents import copy_demo, source_datasets, write_episode_demo, write_imported_demo
from vlnav_data.dataset.episode_record import EpisodeRecord, ImportedEpisode, check_episode, check_imported_episode
from vlnav_data.dataset.layout import DatasetLayout, ImportedLayout
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.dataset.partial import (
    WriteMode,
    crash_safe,
    lock_path,
    partial_path,
    preflight_output,
    publish,
    utc_now,
)
from vlnav_data.dataset.resume import reopen_partial
from vlnav_data.dataset.storage import FrameWriter, create_instruction_table, create_text_table
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.jsonio import compact

REOPEN_EVERY = 64
"""Committed episodes after which the writer closes and reopens its file (frees the metadata cache,
which holds everything written since the last reopen because evictions are off)."""

__all__ = ["REOPEN_EVERY", "DatasetWriter", "EpisodeRecord", "WriteMode", "lock_path", "partial_path"]


class DatasetWriter:
    """Append episodes to a ``vlnav-demos`` file, crash-safely.

    Args:
        path: final output path (e.g. ``demos.h5``); the file is written at ``<path>.partial``.
        layout: shapes and provenance of the file (an :class:`ImportedLayout` for a file imported from
            another format: its episodes are :class:`ImportedEpisode`, its root gets ``source_json``).
        mode: ``create`` (refuses an existing output or partial file), ``overwrite`` (starts over; the old
            file stays in place until the new one is complete) or ``resume`` (continues ``<path>.partial``;
            starts a new file when there is none).
        resume_ignore: build-config fields that may differ on resume (e.g. ``num_episodes``, ``device``).
        resume_absent: build-config fields added after a file may have been started, with the value they
            implied then (e.g. ``{"split_rule": "coin"}``); see :func:`config_differences`.
        compress_threads: threads deflating frames (default: min(8, CPU count)); 1 compresses inline.
        allow_mixed_precision: on resume, accept committed embeddings of an encoder computed with another
            dtype or device type than ``layout`` says (the mix is recorded in the file's encoder entry,
            see :mod:`vlnav_data.dataset.precision`); refused otherwise.
        break_lock: take over a lock whose holder cannot be probed from this host (another host); a live
            holder on this host is never taken over.

    Raises:
        ConfigError: the output exists without overwrite/resume, a partial build exists in ``create``
            mode, the directory is not writable, another build holds the lock, the partial file was
            written with a different configuration (the differing fields are named), or resuming would
            mix precisions within one encoder.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        layout: DatasetLayout | ImportedLayout,
        *,
        mode: WriteMode = "create",
        resume_ignore: Iterable[str] = (),
        resume_absent: Mapping[str, Any] | None = None,
        compress_threads: int | None = None,
        allow_mixed_precision: bool = False,
        break_lock: bool = False,
        elsewhere_hint: str = "choose another --out",
    ) -> None:
        self._frames = FrameWriter(int(compress_threads or min(8, os.cpu_count() or 1)))
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.layout = layout
        self.mode = mode
        self.allow_mixed_precision = bool(allow_mixed_precision)
        self._file: h5py.File | None = None
        self._instructions: list[str] = []
        self._instruction_rows: dict[str, int] = {}
        self._episode_indices: list[int] = []
        self._splits: list[str] = []
        self._total = 0
        self._resume_absent = dict(resume_absent or {})

        preflight_output(self.path, mode, break_lock=break_lock, elsewhere_hint=elsewhere_hint)
        self._lock = WriteLock(lock_path(self.path), break_lock=break_lock, elsewhere_hint=elsewhere_hint)
        self._lock.acquire()
        try:
            if self.partial.exists() and mode == "create":
                raise ConfigError(
                    f"an unfinished build exists at '{self.partial}'; pass --resume to continue it "
                    "or --overwrite to start over"
                )
            if mode == "resume" and self.partial.exists():
                self._open_for_resume(set(resume_ignore))
            else:
                self._create()
        except BaseException:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._lock.release()
            raise

    # ------------------------------------------------------------------ setup
    def _create(self) -> None:
        # The skeleton is written under another name and renamed once flushed: a kill while HDF5 creates the
        # file (before its first flush the file is a truncated superblock) leaves no .partial to resume.
        fresh = self.partial.with_name(self.partial.name + ".new")
        self.partial.unlink(missing_ok=True)
        fresh.unlink(missing_ok=True)
        try:
            f = h5py.File(fresh, "w", fs_strategy="none")  # never reuse freed space (see module doc)
        except OSError as exc:
            raise ConfigError(f"cannot create '{self.partial}': {exc}; choose a writable --out") from exc
        self._file = f
        crash_safe(f)
        lay = self.layout
        f.attrs["format"] = schema.FORMAT_NAME
        f.attrs["format_version"] = schema.FORMAT_VERSION
        f.attrs["complete"] = False
        f.attrs["created_utc"] = utc_now()
        f.attrs["writer"] = f"vlnav-data {vlnav_data.__version__}"
        f.attrs["fps"] = float(lay.fps)
        f.attrs["features_json"] = compact(lay.features())
        f.attrs["build_config_json"] = compact(dict(lay.build_config))
        f.attrs["sim_config_json"] = compact(dict(lay.sim_config))
        f.attrs["encoders_json"] = compact([e.to_json() for e in lay.encoders])
        f.attrs["rebuild_command"] = lay.rebuild_command
        if isinstance(lay, ImportedLayout):
            f.attrs[schema.SOURCE_ATTR] = compact(dict(lay.source))
        data = f.create_group("data")
        data.attrs["total"] = np.int64(0)
        data.attrs["num_demos"] = np.int64(0)
        data.attrs["env_args"] = compact(lay.env_args())
        meta = f.create_group("meta")
        create_instruction_table(meta)
        te = meta.create_group("text_embeddings")
        for enc in lay.encoders:
            create_text_table(te, enc, 0)
        f.flush()
        os.replace(fresh, self.partial)  # the open file keeps writing to the same inode

    def _open_for_resume(self, ignore: set[str]) -> None:
        resumed = reopen_partial(
            self.partial,
            self.layout,
            ignore=ignore,
            absent=self._resume_absent,
            allow_mixed_precision=self.allow_mixed_precision,
        )
        self._file = resumed.file
        self._episode_indices = list(resumed.episode_indices)
        self._splits = list(resumed.splits)
        self._total = resumed.total
        self._instructions = list(resumed.instructions)
        self._instruction_rows = {text: row for row, text in enumerate(self._instructions)}

    # ------------------------------------------------------------------ state
    @property
    def num_episodes(self) -> int:
        """Committed episodes in the file."""
        return len(self._episode_indices)

    @property
    def episode_indices(self) -> tuple[int, ...]:
        """Global episode indices of the committed demos, in file order."""
        return tuple(self._episode_indices)

    @property
    def total_steps(self) -> int:
        return self._total

    @property
    def instructions(self) -> tuple[str, ...]:
        return tuple(self._instructions)

    def has_instruction(self, text: str) -> bool:
        """True when ``text`` is already in ``/meta/instructions`` (its embeddings need not be passed)."""
        return text in self._instruction_rows

    # ------------------------------------------------------------------ writing
    def append_episode(self, ep: EpisodeRecord | ImportedEpisode) -> str:
        """Write one finished episode as the next ``demo_<i>`` and flush.

        Returns:
            The demo name.

        Raises:
            SchemaError: an array has the wrong shape or dtype, actions leave [-1, 1], or a text
                embedding for a new instruction is missing.
        """
        f = self._require_open()
        imported = isinstance(ep, ImportedEpisode)
        if imported != isinstance(self.layout, ImportedLayout):
            raise SchemaError("an ImportedEpisode goes into a file of an ImportedLayout, an EpisodeRecord elsewhere")
        t = check_imported_episode(ep, self.layout) if imported else check_episode(ep, self.layout)
        new_texts = [s for s in dict.fromkeys(ep.instructions) if s not in self._instruction_rows]
        try:
            self._text_rows(new_texts, ep.text_embeddings)  # every width checked before the file changes
        except SchemaError as exc:
            raise SchemaError(f"episode {ep.episode_index}: {exc}") from None
        self._append_instructions(f, new_texts, ep.text_embeddings)
        index = np.fromiter((self._instruction_rows[s] for s in ep.instructions), dtype=np.int32, count=t)

        name = schema.demo_name(self.num_episodes)
        g = self._new_demo(f, name)
        if imported:
            write_imported_demo(g, ep, self.layout, index, self._frames)
        else:
            write_episode_demo(g, ep, self.layout, index, self._frames)
        self._commit(g, name, t, int(ep.episode_index), str(ep.split))
        return name

    def append_episode_copy(
        self, src: h5py.Group, instructions: Sequence[str], text_embeddings: Mapping[str, np.ndarray]
    ) -> tuple[str, int]:
        """Append a committed demo of another file with this layout, copying its chunks as stored.

        A dataset whose dtype, chunk shape and compression are what this writer would write is copied
        raw (an HDF5 object copy: the compressed chunks are not decoded); any other is decoded and
        written anew. The demo's instructions join this file's table and ``instruction_index`` is
        remapped; every demo attribute is copied, ``num_samples`` last.

        Args:
            src: the demo group (``/data/demo_<i>`` of a complete ``vlnav-demos`` file).
            instructions: the source file's instruction table (``/meta/instructions``).
            text_embeddings: encoder name -> the source file's ``(K, E)`` instruction embeddings.

        Returns:
            ``(demo name written, number of datasets copied raw)``.

        Raises:
            SchemaError: the demo's datasets are not those of this layout (names, dtypes or shapes).
        """
        f = self._require_open()
        t = int(src.attrs["num_samples"])
        present = source_datasets(src, self.layout)
        src_rows = present[schema.INSTRUCTION_INDEX][()]
        texts = [str(instructions[int(i)]) for i in src_rows]
        new_texts = [s for s in dict.fromkeys(texts) if s not in self._instruction_rows]
        row_of = {str(s): i for i, s in enumerate(instructions)}
        table = {e.name: {s: text_embeddings[e.name][row_of[s]] for s in new_texts} for e in self.layout.encoders}
        self._append_instructions(f, new_texts, table)
        index = np.fromiter((self._instruction_rows[s] for s in texts), dtype=np.int32, count=t)

        name = schema.demo_name(self.num_episodes)
        g = self._new_demo(f, name)
        raw = copy_demo(g, src, present, index, self._frames)
        self._commit(g, name, t, int(src.attrs["episode_index"]), str(src.attrs["split"]))
        return name, raw

    @staticmethod
    def _new_demo(f: h5py.File, name: str) -> h5py.Group:
        """An unlinked (anonymous) group for the next demo; :meth:`_commit` links it as ``/data/<name>``."""
        data = f["data"]
        if name in data:  # leftover of an interrupted append in this process
            del data[name]
        return h5py.Group(h5py.h5g.create(f.id, None))

    def _commit(self, g: h5py.Group, name: str, t: int, episode_index: int, split: str) -> None:
        """Commit a demo written into an unlinked group, in two flushes.

        The first flush writes the whole demo, ``num_samples`` included, while nothing links to it yet
        (besides rows appended to the instruction table, which resuming drops); a kill during it leaves
        the last committed state. Linking it as ``/data/<name>`` is the commit: the second flush writes
        only that link and ``/data``'s totals, the few in-place writes a kill can interrupt.
        """
        f = self._require_open()
        g.attrs["num_samples"] = np.int64(t)  # last attribute: robomimic's count, and our commit marker
        f.flush()
        data = f["data"]
        data[name] = g
        self._total += t
        data.attrs["total"] = np.int64(self._total)
        data.attrs["num_demos"] = np.int64(self.num_episodes + 1)
        self._episode_indices.append(episode_index)
        self._splits.append(split)
        f.flush()
        if self.num_episodes % REOPEN_EVERY == 0:
            f.close()
            self._file = h5py.File(self.partial, "r+")
            crash_safe(self._file)

    def _append_instructions(
        self, f: h5py.File, new_texts: Sequence[str], table: Mapping[str, Mapping[str, np.ndarray]]
    ) -> None:
        """Append instructions not yet in ``/meta/instructions`` with every encoder's embedding of them.

        Every row is built and checked before the file changes (:meth:`_text_rows`)."""
        rows = self._text_rows(new_texts, table)
        if not new_texts:
            return
        k0 = len(self._instructions)
        k1 = k0 + len(new_texts)
        instr = f[schema.META_INSTRUCTIONS]
        instr.resize((k1,))
        instr[k0:k1] = np.array(list(new_texts), dtype=object)
        for enc in self.layout.encoders:
            te = f[schema.META_TEXT_EMBEDDINGS][enc.name]
            te.resize((k1, enc.dim))
            te[k0:k1] = rows[enc.name]
        for i, s in enumerate(new_texts):
            self._instructions.append(s)
            self._instruction_rows[s] = k0 + i

    def _text_rows(
        self, new_texts: Sequence[str], table: Mapping[str, Mapping[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Every encoder's ``(len(new_texts), E)`` float32 rows for the new instructions, checked.

        Raises:
            SchemaError: an embedding is missing or is not a finite vector of the encoder's width.
        """
        rows: dict[str, np.ndarray] = {}
        for enc in self.layout.encoders:
            given = table.get(enc.name, {})
            missing = [s for s in new_texts if s not in given]
            if missing:
                raise SchemaError(
                    f"text_embeddings['{enc.name}'] lacks the new instruction(s) {missing[:3]}; "
                    "pass an embedding for every distinct instruction not yet in the file"
                )
            bad = [(s, np.shape(given[s])) for s in new_texts if np.shape(given[s]) != (enc.dim,)]
            if bad:
                raise SchemaError(
                    f"text embeddings of '{enc.name}' must have shape (E,) = ({enc.dim},), got {bad[0][1]} "
                    f"for {bad[0][0]!r}; embed the instructions with the encoder the file was built with"
                )
            stacked = np.asarray([np.asarray(given[s], dtype=np.float32) for s in new_texts], dtype=np.float32)
            rows[enc.name] = stacked.reshape(len(new_texts), enc.dim)
        return rows

    def demo_datasets(self) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """Every dataset of a demo in this file's layout: path in the demo -> (dtype, shape of one step)."""
        return self.layout.datasets()

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("the writer is closed")
        return self._file

    # ------------------------------------------------------------------ finishing
    def finalize(self) -> Path:
        """Write the masks and ``complete=True``, then fsync and rename ``.partial`` to the final path.

        The lock is released on every path, also when writing or publishing raises.

        Returns:
            The final path.
        """
        f = self._require_open()
        try:
            if "mask" in f:
                del f["mask"]
            mask = f.create_group("mask")
            for split in schema.SPLITS:
                names = [schema.demo_name(i) for i, s in enumerate(self._splits) if s == split]
                mask.create_dataset(split, data=np.array(names, dtype="S") if names else np.zeros((0,), dtype="S1"))
            f.attrs["complete"] = True
            f.flush()
            f.close()
            self._file = None
            self._frames.shutdown()
            publish(self.partial, self.path)
        finally:
            self.close()  # on every path: the file closed, the deflate threads stopped, the lock released
        return self.path

    def close(self) -> None:
        """Close without finalizing: the ``.partial`` file stays, to be resumed. Releases the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._frames.shutdown()
        self._lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
