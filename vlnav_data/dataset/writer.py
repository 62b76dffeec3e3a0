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
:func:`_crash_safe`); it never reuses space it freed (``fs_strategy="none"``), so a rewritten chunk
never overwrites data the committed state still points to; and a demo is linked only after its first
flush, so a kill during that (long) flush leaves nothing pointing at a half-written demo. What a kill
can still interrupt is the second flush (the link and ``/data``'s totals: microseconds per episode).
Costs: a few KB of unreused space per rewritten chunk, two flushes per episode, and the metadata of
:data:`REOPEN_EVERY` episodes held in memory.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

import vlnav_data
from vlnav_data.dataset import schema
from vlnav_data.dataset.layout import DatasetLayout, EncoderEntry
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.dataset.precision import combine_precision
from vlnav_data.errors import ConfigError, SchemaError

WriteMode = Literal["create", "overwrite", "resume"]

REOPEN_EVERY = 64
"""Committed episodes after which the writer closes and reopens its file (frees the metadata cache,
which holds everything written since the last reopen because evictions are off)."""


def _crash_safe(f: h5py.File) -> None:
    """Keep HDF5 from writing metadata between flushes: no evictions, so no adaptive cache resizing."""
    config = f.id.get_mdc_config()
    config.evictions_enabled = False
    config.incr_mode = 0  # H5C_incr__off
    config.flash_incr_mode = 0  # H5C_flash_incr__off
    config.decr_mode = 0  # H5C_decr__off
    f.id.set_mdc_config(config)


@dataclass(frozen=True, kw_only=True, eq=False)
class EpisodeRecord:
    """One finished episode, as plain numpy arrays (T = number of env steps).

    Attributes:
        actions: float32 ``(T, 2)`` in [-1, 1], the label (the expert's clean action).
        wheel_vel_radps: float32 ``(T, 2)``, wheel speeds commanded by the executed action (rad/s).
        rewards: float32 ``(T,)``.
        dones: uint8 ``(T,)``, 1 at the step that ended the episode.
        rgb: uint8 ``(T, H, W, 3)``, the frame the policy saw before acting.
        privileged_state: float32 ``(T, D)``.
        instructions: T strings, the instruction at each step.
        image_embeddings: encoder name -> ``(T, E)`` image embeddings.
        joint_embeddings: encoder name -> ``(T, E)`` fused embeddings.
        text_embeddings: encoder name -> {instruction -> ``(E,)``}; covers every distinct instruction of
            the episode that the file does not hold yet (extra entries are ignored).
        seed: the episode seed.
        episode_index: global index of the episode in its build (stable across shards).
        target_index: index of the target sphere.
        target_color: colour name of the target.
        termination: termination cause (``success``, ``out_of_bounds_*``, ``time_limit``).
        success: True when the episode ended at the target.
        expert: which policy acted (``ppo``, ``pursuit``, ...).
        split: ``train`` or ``valid``.
    """

    actions: np.ndarray
    wheel_vel_radps: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    rgb: np.ndarray
    privileged_state: np.ndarray
    instructions: Sequence[str]
    image_embeddings: Mapping[str, np.ndarray]
    joint_embeddings: Mapping[str, np.ndarray]
    text_embeddings: Mapping[str, Mapping[str, np.ndarray]]
    seed: int
    episode_index: int
    target_index: int
    target_color: str
    termination: str
    success: bool
    expert: str
    split: str = "train"
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(np.shape(self.actions)[0])


def partial_path(path: str | os.PathLike) -> Path:
    """``<path>.partial``: where a file is written until it is complete."""
    p = Path(path)
    return p.with_name(p.name + schema.PARTIAL_SUFFIX)


def lock_path(path: str | os.PathLike) -> Path:
    """``<path>.lock``: held while a writer runs."""
    p = Path(path)
    return p.with_name(p.name + schema.LOCK_SUFFIX)


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def config_differences(
    stored: Mapping[str, Any],
    current: Mapping[str, Any],
    ignore: Iterable[str] = (),
    absent: Mapping[str, Any] | None = None,
) -> list[str]:
    """Human-readable list of the fields two flat-ish config dicts disagree on (``ignore`` skipped).

    ``absent`` gives the value a field had implicitly in files written before it existed (a stored
    config without the key is compared as if it held that value).
    """
    ignored = set(ignore)
    absent = absent or {}
    diffs = []
    for key in sorted(set(stored) | set(current)):
        if key in ignored:
            continue
        a, b = stored.get(key, absent.get(key, "<absent>")), current.get(key, "<absent>")
        if _json(a) != _json(b):
            diffs.append(f"{key} (file: {_json(a)}, now: {_json(b)})")
    return diffs


def preflight_output(path: str | os.PathLike, mode: WriteMode, *, break_lock: bool = False) -> None:
    """Check, without writing anything, that a writer in ``mode`` may write ``path``.

    Creates the parent directory when it is missing. Callers that load models before opening a
    :class:`DatasetWriter` call this first so that bad output arguments fail fast.

    Args:
        path: final output path.
        mode: ``create``, ``overwrite`` or ``resume`` (as :class:`DatasetWriter`).
        break_lock: a lock whose holder cannot be probed from this host will be taken over.

    Raises:
        ConfigError: the output exists in ``create`` mode, is complete in ``resume`` mode, is a directory,
            ends in ``.partial``, its directory cannot be created or written, or another writer holds its
            lock (:class:`~vlnav_data.dataset.lock.LockHeldError`).
    """
    if mode not in ("create", "overwrite", "resume"):
        raise ConfigError(f"mode must be create, overwrite or resume, got '{mode}'")
    p = Path(path)
    partial = partial_path(p)
    if p.name.endswith(schema.PARTIAL_SUFFIX):
        raise ConfigError(f"the output name must not end in '{schema.PARTIAL_SUFFIX}', got '{p}'")
    if p.is_dir():
        raise ConfigError(f"the output '{p}' is a directory; pass a file name such as demos.h5")
    if p.exists() and mode == "create":
        raise ConfigError(f"the output '{p}' already exists; pass --overwrite to replace it or choose another --out")
    if p.exists() and not partial.exists() and mode == "resume":
        raise ConfigError(
            f"'{p}' is already complete, so there is nothing to resume; "
            "pass --overwrite to rebuild it or choose another --out"
        )
    WriteLock(lock_path(p), break_lock=break_lock).check_free()
    if partial.exists() and mode == "create":
        raise ConfigError(
            f"an unfinished build exists at '{partial}'; pass --resume to continue it or --overwrite to start over"
        )
    parent = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the output directory '{parent}': {exc.strerror}; choose a writable --out"
        ) from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"the output directory '{parent}' is not writable; choose a writable --out")


LOWDIM_STORAGE = {"compression": "gzip", "compression_opts": schema.GZIP_LEVEL_LOWDIM, "shuffle": True}
"""How per-step vectors are stored: gzip + shuffle (chunk rows from :func:`schema.lowdim_chunk_rows`)."""


def _vector(g: h5py.Group, path: str, values: Any, dtype: Any, opts: dict) -> h5py.Dataset:
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
        ds = _vector(demo, schema.encoder_path(entry.name, kind), values, np.float16, LOWDIM_STORAGE)
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


def committed_demos(data: h5py.Group) -> int:
    """How many demos are committed: ``demo_0..demo_{k-1}``, each with its ``num_samples`` commit marker.

    Anything after the first gap or the first demo without the marker does not count.
    """
    indexed = sorted((schema.demo_index(n), n) for n in data.keys() if schema.demo_index(n) is not None)
    committed = 0
    for idx, name in indexed:
        if idx != committed or "num_samples" not in data[name].attrs:
            break
        committed += 1
    return committed


def drop_demos_from(data: h5py.Group, first: int) -> None:
    """Delete every child of ``data`` that is not ``demo_0..demo_{first-1}`` (what a killed writer left)."""
    for name in list(data.keys()):
        idx = schema.demo_index(name)
        if idx is None or idx >= first:
            del data[name]


def fsync_path(path: str | os.PathLike) -> None:
    """``fsync`` a file or a directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(partial: str | os.PathLike, final: str | os.PathLike) -> None:
    """Make a closed, complete ``partial`` file appear at ``final`` atomically: fsync, rename, fsync the directory.

    A crash before the rename leaves ``final`` as it was (absent, or the previous file); after it,
    ``final`` is the new file. Readers never see a half-written file at ``final``.
    """
    fsync_path(partial)
    os.replace(partial, final)
    fsync_path(Path(final).parent)


class DatasetWriter:
    """Append episodes to a ``vlnav-demos`` file, crash-safely.

    Args:
        path: final output path (e.g. ``demos.h5``); the file is written at ``<path>.partial``.
        layout: shapes and provenance of the file.
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
        layout: DatasetLayout,
        *,
        mode: WriteMode = "create",
        resume_ignore: Iterable[str] = (),
        resume_absent: Mapping[str, Any] | None = None,
        compress_threads: int | None = None,
        allow_mixed_precision: bool = False,
        break_lock: bool = False,
    ) -> None:
        self._compress_threads = int(compress_threads or min(8, os.cpu_count() or 1))
        self._pool: ThreadPoolExecutor | None = None
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.layout = layout
        self.mode = mode
        self.allow_mixed_precision = bool(allow_mixed_precision)
        self._file: h5py.File | None = None
        self._finalized = False
        self._instructions: list[str] = []
        self._instruction_rows: dict[str, int] = {}
        self._episode_indices: list[int] = []
        self._splits: list[str] = []
        self._total = 0
        self._resume_absent = dict(resume_absent or {})

        preflight_output(self.path, mode, break_lock=break_lock)
        self._lock = WriteLock(lock_path(self.path), break_lock=break_lock)
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
        _crash_safe(f)
        lay = self.layout
        f.attrs["format"] = schema.FORMAT_NAME
        f.attrs["format_version"] = schema.FORMAT_VERSION
        f.attrs["complete"] = False
        f.attrs["created_utc"] = _utc_now()
        f.attrs["writer"] = f"vlnav-data {vlnav_data.__version__}"
        f.attrs["fps"] = float(lay.fps)
        f.attrs["features_json"] = _json(lay.features())
        f.attrs["build_config_json"] = _json(dict(lay.build_config))
        f.attrs["sim_config_json"] = _json(dict(lay.sim_config))
        f.attrs["encoders_json"] = _json([e.to_json() for e in lay.encoders])
        f.attrs["rebuild_command"] = lay.rebuild_command
        data = f.create_group("data")
        data.attrs["total"] = np.int64(0)
        data.attrs["num_demos"] = np.int64(0)
        data.attrs["env_args"] = _json(lay.env_args())
        meta = f.create_group("meta")
        self._create_instruction_table(meta)
        te = meta.create_group("text_embeddings")
        for enc in lay.encoders:
            create_text_table(te, enc, 0)
        f.flush()
        os.replace(fresh, self.partial)  # the open file keeps writing to the same inode

    @staticmethod
    def _create_instruction_table(meta: h5py.Group) -> h5py.Dataset:
        return meta.create_dataset(
            "instructions", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"), chunks=(256,)
        )

    def _open_for_resume(self, ignore: set[str]) -> None:
        try:
            f = h5py.File(self.partial, "r+")
        except OSError as exc:
            raise ConfigError(
                f"the unfinished build '{self.partial}' cannot be opened ({exc}); it is damaged beyond "
                "resuming: pass --overwrite to start over"
            ) from exc
        self._file = f
        _crash_safe(f)
        if f.attrs.get("format") != schema.FORMAT_NAME or f.attrs.get("format_version") != schema.FORMAT_VERSION:
            raise ConfigError(
                f"'{self.partial}' is not a {schema.FORMAT_NAME} {schema.FORMAT_VERSION} file "
                f"(format={f.attrs.get('format')!r}, version={f.attrs.get('format_version')!r}); "
                "pass --overwrite to start over"
            )
        stored_build = json.loads(f.attrs["build_config_json"])
        diffs = config_differences(stored_build, dict(self.layout.build_config), ignore, self._resume_absent)
        stored_features = json.loads(f.attrs["features_json"])
        if _json(stored_features) != _json(self.layout.features()):
            diffs.append("layout (image size, state columns or encoders differ)")
        stored_sim = json.loads(f.attrs["sim_config_json"])
        diffs.extend(f"sim_config.{d}" for d in config_differences(stored_sim, dict(self.layout.sim_config)))
        if diffs:
            raise ConfigError(
                f"cannot resume '{self.partial}': it was built with a different configuration: "
                + "; ".join(diffs)
                + ". Use the original settings, or pass --overwrite to start over"
            )
        data = f["data"]
        committed = committed_demos(data)
        self._check_precision(f, committed)  # before anything else in the file changes
        # The fields allowed to differ (e.g. num_episodes of an extended build) now take this run's values.
        f.attrs["build_config_json"] = _json(dict(self.layout.build_config))
        f.attrs["rebuild_command"] = self.layout.rebuild_command
        drop_demos_from(data, committed)
        max_row = -1
        for i in range(committed):
            g = data[schema.demo_name(i)]
            self._episode_indices.append(int(g.attrs["episode_index"]))
            self._splits.append(str(g.attrs["split"]))
            self._total += int(g.attrs["num_samples"])
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
        instr = self._create_instruction_table(f["meta"])
        if kept:
            instr.resize((k,))
            instr[:] = np.array(kept, dtype=object)
        for enc in self.layout.encoders:
            te = f[schema.META_TEXT_EMBEDDINGS][enc.name]
            te.resize((k, enc.dim))
        self._instructions = kept
        self._instruction_rows = {s: i for i, s in enumerate(self._instructions)}
        data.attrs["total"] = np.int64(self._total)
        data.attrs["num_demos"] = np.int64(committed)
        f.flush()

    def _check_precision(self, f: h5py.File, committed: int) -> None:
        """One encoder, one precision: the committed demos' encoder entries against this run's."""
        stored = {e["name"]: e for e in json.loads(f.attrs["encoders_json"])}
        entries = []
        for enc in self.layout.encoders:
            if committed == 0 or enc.name not in stored:  # nothing of it in the file yet: this run's entry
                entries.append(enc)
                continue
            held = EncoderEntry(**stored[enc.name])
            entries.append(
                combine_precision(
                    held,
                    enc,
                    held_by=f"'{self.partial}' holds",
                    new_by="this run computes",
                    allow_mixed=self.allow_mixed_precision,
                )
            )
        f.attrs["encoders_json"] = _json([e.to_json() for e in entries])

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
    def append_episode(self, ep: EpisodeRecord) -> str:
        """Write one finished episode as the next ``demo_<i>`` and flush.

        Returns:
            The demo name.

        Raises:
            SchemaError: an array has the wrong shape or dtype, actions leave [-1, 1], or a text
                embedding for a new instruction is missing.
        """
        f = self._require_open()
        t = self._check_episode(ep)
        new_texts = [s for s in dict.fromkeys(ep.instructions) if s not in self._instruction_rows]
        for enc in self.layout.encoders:
            table = ep.text_embeddings.get(enc.name, {})
            missing = [s for s in new_texts if s not in table]
            if missing:
                raise SchemaError(
                    f"episode {ep.episode_index}: text_embeddings['{enc.name}'] lacks the new instruction(s) "
                    f"{missing[:3]}; pass an embedding for every distinct instruction not yet in the file"
                )
        self._append_instructions(f, new_texts, ep.text_embeddings)
        index = np.fromiter((self._instruction_rows[s] for s in ep.instructions), dtype=np.int32, count=t)

        name = schema.demo_name(self.num_episodes)
        g = self._new_demo(f, name)
        lowdim = LOWDIM_STORAGE
        _vector(g, schema.ACTIONS, ep.actions, np.float32, lowdim).attrs["names"] = list(schema.ACTION_NAMES)
        g[schema.ACTIONS].attrs["units"] = "normalised [-1, 1]"
        wv = _vector(g, schema.WHEEL_VEL, ep.wheel_vel_radps, np.float32, lowdim)
        wv.attrs["units"] = "rad/s"
        wv.attrs["names"] = list(schema.ACTION_NAMES)
        wv.attrs["wheel_speed_limit_radps"] = float(self.layout.wheel_speed_limit_radps)
        _vector(g, schema.REWARDS, ep.rewards, np.float32, lowdim)
        _vector(g, schema.DONES, ep.dones, np.uint8, lowdim)
        ts = _vector(g, schema.TIMESTAMPS, np.arange(t, dtype=np.float64) / self.layout.fps, np.float64, lowdim)
        ts.attrs["units"] = "s"
        _vector(g, schema.INSTRUCTION_INDEX, index, np.int32, lowdim)
        rgb = self._write_rgb(g, ep.rgb)
        rgb.attrs["modality"] = "rgb"
        if self.layout.camera:
            rgb.attrs["camera_json"] = _json(dict(self.layout.camera))
        ps = _vector(g, schema.PRIVILEGED_STATE, ep.privileged_state, np.float32, lowdim)
        ps.attrs["modality"] = "low_dim"
        ps.attrs["names"] = list(self.layout.state_names)
        ps.attrs["privileged"] = True
        for enc in self.layout.encoders:
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
        expected = self.demo_datasets()
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
        src_rows = present[schema.INSTRUCTION_INDEX][()]
        texts = [str(instructions[int(i)]) for i in src_rows]
        new_texts = [s for s in dict.fromkeys(texts) if s not in self._instruction_rows]
        row_of = {str(s): i for i, s in enumerate(instructions)}
        table = {e.name: {s: text_embeddings[e.name][row_of[s]] for s in new_texts} for e in self.layout.encoders}
        self._append_instructions(f, new_texts, table)
        index = np.fromiter((self._instruction_rows[s] for s in texts), dtype=np.int32, count=t)

        name = schema.demo_name(self.num_episodes)
        g = self._new_demo(f, name)
        lowdim = LOWDIM_STORAGE
        raw = 0
        for key, ds in present.items():
            parent, _, leaf = key.rpartition("/")
            dest = g.require_group(parent) if parent else g
            if key == schema.INSTRUCTION_INDEX:
                out = _vector(g, key, index, np.int32, lowdim)
            elif self._stored_as_written(key, ds):
                dest.copy(ds, dest, name=leaf)
                raw += 1
                continue
            elif key == schema.RGB:
                out = self._write_rgb(g, ds[()])
            else:
                out = _vector(g, key, ds[()], ds.dtype, lowdim)
            for k, v in ds.attrs.items():
                out.attrs[k] = v
        for k, v in src.attrs.items():
            if k != "num_samples":
                g.attrs[k] = v
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
            _crash_safe(self._file)

    def _append_instructions(
        self, f: h5py.File, new_texts: Sequence[str], table: Mapping[str, Mapping[str, np.ndarray]]
    ) -> None:
        """Append instructions not yet in ``/meta/instructions`` with every encoder's embedding of them."""
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
            rows = np.stack([np.asarray(table[enc.name][s], dtype=np.float32) for s in new_texts])
            if rows.shape != (len(new_texts), enc.dim):
                raise SchemaError(
                    f"text embeddings of '{enc.name}' must have shape (E,) = ({enc.dim},), got {rows.shape[1:]}"
                )
            te[k0:k1] = rows
        for i, s in enumerate(new_texts):
            self._instructions.append(s)
            self._instruction_rows[s] = k0 + i

    def demo_datasets(self) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """Every dataset of a demo in this file's layout: path in the demo -> (dtype, shape of one step)."""
        lay = self.layout
        shapes = {
            schema.ACTIONS: (schema.ACTION_DIM,),
            schema.WHEEL_VEL: (schema.ACTION_DIM,),
            schema.REWARDS: (),
            schema.DONES: (),
            schema.TIMESTAMPS: (),
            schema.INSTRUCTION_INDEX: (),
            schema.RGB: (lay.image_height, lay.image_width, 3),
            schema.PRIVILEGED_STATE: (lay.state_dim,),
        }
        out: dict[str, tuple[Any, tuple[int, ...]]] = {k: (schema.BASE_DATASETS[k], v) for k, v in shapes.items()}
        for enc in lay.encoders:
            for kind in schema.EMBEDDING_KINDS:
                out[schema.encoder_path(enc.name, kind)] = (schema.EMBEDDING_DTYPE, (enc.dim,))
        return out

    @staticmethod
    def _stored_as_written(key: str, ds: h5py.Dataset) -> bool:
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

    def _write_rgb(self, g: h5py.Group, values: np.ndarray) -> h5py.Dataset:
        """``obs/rgb``: one frame per chunk, deflated in parallel (zlib releases the GIL) and stored as-is:
        the same bytes HDF5's gzip filter would write, readable by any HDF5."""
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
        if self._compress_threads <= 1 or len(frames) < 4:
            return [zlib.compress(f.tobytes(), level) for f in frames]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._compress_threads, thread_name_prefix="vlnav-deflate")
        return list(self._pool.map(lambda f: zlib.compress(f.tobytes(), level), frames))

    def _check_episode(self, ep: EpisodeRecord) -> int:
        lay = self.layout
        t = ep.num_steps
        if t < 1:
            raise SchemaError(f"episode {ep.episode_index} has no steps; an episode needs at least one step")
        expect = {
            "actions": (np.shape(ep.actions), (t, 2)),
            "wheel_vel_radps": (np.shape(ep.wheel_vel_radps), (t, 2)),
            "rewards": (np.shape(ep.rewards), (t,)),
            "dones": (np.shape(ep.dones), (t,)),
            "rgb": (np.shape(ep.rgb), (t, lay.image_height, lay.image_width, 3)),
            "privileged_state": (np.shape(ep.privileged_state), (t, lay.state_dim)),
            "instructions": ((len(ep.instructions),), (t,)),
        }
        for enc in lay.encoders:
            for kind, table in (("image", ep.image_embeddings), ("joint", ep.joint_embeddings)):
                if enc.name not in table:
                    raise SchemaError(
                        f"episode {ep.episode_index} lacks {kind} embeddings of encoder '{enc.name}'; "
                        f"the file stores {list(lay.encoder_names)}"
                    )
                expect[f"{kind}_embeddings['{enc.name}']"] = (np.shape(table[enc.name]), (t, enc.dim))
        bad = [f"{k}: expected {want}, got {got}" for k, (got, want) in expect.items() if tuple(got) != want]
        if bad:
            raise SchemaError(f"episode {ep.episode_index} does not fit the file layout: " + "; ".join(bad))
        if np.asarray(ep.rgb).dtype != np.uint8:
            raise SchemaError(f"rgb must be uint8, got {np.asarray(ep.rgb).dtype}")
        actions = np.asarray(ep.actions, dtype=np.float32)
        if not np.all(np.isfinite(actions)) or np.abs(actions).max() > 1.0:
            raise SchemaError(
                f"episode {ep.episode_index}: actions must be finite and within [-1, 1], "
                f"got range [{actions.min():.3f}, {actions.max():.3f}]; clip the label before writing"
            )
        if ep.split not in schema.SPLITS:
            raise SchemaError(f"split must be one of {schema.SPLITS}, got '{ep.split}'")
        return t

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("the writer is closed")
        return self._file

    # ------------------------------------------------------------------ finishing
    def finalize(self) -> Path:
        """Write the masks and ``complete=True``, then fsync and rename ``.partial`` to the final path.

        Returns:
            The final path.
        """
        f = self._require_open()
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
        self._shutdown_pool()
        publish(self.partial, self.path)
        self._finalized = True
        self._lock.release()
        return self.path

    def close(self) -> None:
        """Close without finalizing: the ``.partial`` file stays, to be resumed. Releases the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._shutdown_pool()
        self._lock.release()

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
