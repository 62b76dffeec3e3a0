"""The ``embed`` sidecar: per-episode embeddings of encoders being added to a file, crash-safely.

``vlnav-data embed`` never writes into its input (HDF5 is not journaled: a process killed while
modifying a file in place can leave it unreadable). It writes what it computes into
``<OUT>.embed.partial``, a small HDF5 file laid out like the part of a ``vlnav-demos`` file it adds::

    / attrs: format="vlnav-embed-sidecar", input, input_fingerprint_json, plan_json, encoders_json,
             complete (every episode done), assembled (OUT.partial is complete and fsynced)
    /data/demo_<i>/obs/<enc>_image, <enc>_joint   float16, stored exactly as the writer stores them;
                   attr num_samples written LAST (the commit marker), then the file is flushed
    /meta/text_embeddings/<enc>                    float32 (K, E), row k of /meta/instructions

Demos are committed in input order, so the finished work is always a prefix ``demo_0..demo_{k-1}``; a
demo without ``num_samples`` is dropped on resume. A text row is written (and flushed) before the first
demo that uses it is committed. The plan (encoders, replace), the input's fingerprint and the encoder
entries are checked on resume, so a resumed run continues exactly the job that was started.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.layout import EncoderEntry
from vlnav_data.dataset.partial import committed_demos, drop_demos_from, fsync_path
from vlnav_data.dataset.precision import combine_precision
from vlnav_data.dataset.storage import create_text_table, write_embeddings
from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import compact

SIDECAR_FORMAT = "vlnav-embed-sidecar"
SIDECAR_VERSION = 1
SIDECAR_SUFFIX = ".embed.partial"


def sidecar_path(out: str | os.PathLike) -> Path:
    """``<out>.embed.partial``: where ``embed`` keeps its finished episodes until ``out`` is written."""
    p = Path(out)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def input_fingerprint(path: str | os.PathLike, f: h5py.File) -> dict[str, Any]:
    """What identifies the input file a sidecar was computed from (size, mtime, creation stamp, demos)."""
    st = Path(path).stat()
    created = f.attrs.get("created_utc", "")
    data = f["data"]
    return {
        "size_bytes": int(st.st_size),
        "mtime_ns": int(st.st_mtime_ns),
        "created_utc": created.decode() if isinstance(created, bytes) else str(created),
        "num_demos": int(data.attrs.get("num_demos", len(data))),
        "total": int(data.attrs.get("total", -1)),
    }


class EmbeddingSidecar:
    """Open (create or resume) the sidecar of one ``embed`` job.

    Args:
        path: the sidecar file (:func:`sidecar_path`).
        input_path: the input dataset.
        fingerprint: :func:`input_fingerprint` of the input now.
        plan: what the job does (JSON object: encoder names, replace); a resume must match it.
        entries: encoder entries of this run, in plan order.
        num_instructions: rows of the input's ``/meta/instructions``.
        resume: continue an existing sidecar (a fresh one is created when there is none).
        allow_mixed_precision: on resume, accept committed embeddings computed with another dtype or device
            type (recorded in the entries); refused otherwise.

    Raises:
        ConfigError: the sidecar cannot be created or opened, belongs to another input or plan, was
            computed by another model under the same name, or would mix precisions.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        input_path: str | os.PathLike,
        fingerprint: Mapping[str, Any],
        plan: Mapping[str, Any],
        entries: Sequence[EncoderEntry],
        num_instructions: int,
        resume: bool,
        allow_mixed_precision: bool = False,
    ) -> None:
        self.path = Path(path)
        self.entries = list(entries)
        self._file: h5py.File | None = None
        self.committed = 0
        try:
            if resume and self.path.exists():
                self._resume(input_path, fingerprint, plan, allow_mixed_precision)
            else:
                self._create(input_path, fingerprint, plan, num_instructions)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ setup
    def _create(
        self, input_path: Any, fingerprint: Mapping[str, Any], plan: Mapping[str, Any], num_instructions: int
    ) -> None:
        self.path.unlink(missing_ok=True)
        try:
            f = h5py.File(self.path, "w")
        except OSError as exc:
            raise ConfigError(f"cannot create '{self.path}': {exc}; choose a writable --out") from exc
        self._file = f
        f.attrs["format"] = SIDECAR_FORMAT
        f.attrs["format_version"] = SIDECAR_VERSION
        f.attrs["input"] = str(Path(input_path).resolve())
        f.attrs["input_fingerprint_json"] = compact(dict(fingerprint))
        f.attrs["plan_json"] = compact(dict(plan))
        f.attrs["encoders_json"] = compact([e.to_json() for e in self.entries])
        f.attrs["complete"] = False
        f.attrs["assembled"] = False
        f.create_group("data")
        te = f.create_group("meta").create_group("text_embeddings")
        for entry in self.entries:
            create_text_table(te, entry, num_instructions)
        f.flush()

    def _resume(
        self, input_path: Any, fingerprint: Mapping[str, Any], plan: Mapping[str, Any], allow_mixed: bool
    ) -> None:
        f = open_sidecar(self.path, "r+")
        self._file = f
        start_over = "or pass --overwrite to start over"
        stored_plan = json.loads(f.attrs["plan_json"])
        if compact(stored_plan) != compact(dict(plan)):
            raise ConfigError(
                f"the unfinished embed '{self.path}' was started with {stored_plan}, this run asks for "
                f"{dict(plan)}; rerun the original command with --resume, {start_over}"
            )
        stored_fp = json.loads(f.attrs["input_fingerprint_json"])
        if compact(stored_fp) != compact(dict(fingerprint)) or f.attrs["input"] != str(Path(input_path).resolve()):
            raise ConfigError(
                f"the input '{input_path}' is not the file the unfinished embed '{self.path}' started from "
                f"(then: {f.attrs['input']} {stored_fp}; now: {dict(fingerprint)}); {start_over}"
            )
        held = {e["name"]: EncoderEntry(**e) for e in json.loads(f.attrs["encoders_json"])}
        combined = []
        for entry in self.entries:
            old = held[entry.name]
            if _identity(old) != _identity(entry):
                raise ConfigError(
                    f"encoder '{entry.name}' of the unfinished embed '{self.path}' was computed by "
                    f"{old.model_id}@{old.revision or '?'} (dim {old.dim}), this run loads "
                    f"{entry.model_id}@{entry.revision or '?'} (dim {entry.dim}); one name must mean one model: "
                    f"use the same model, {start_over}"
                )
            combined.append(
                combine_precision(
                    old, entry, held_by=f"'{self.path}' holds", new_by="this run computes", allow_mixed=allow_mixed
                )
            )
        self.entries = combined
        self.committed = committed_demos(f["data"])
        drop_demos_from(f["data"], self.committed)
        f.attrs["encoders_json"] = compact([e.to_json() for e in self.entries])
        f.attrs["complete"] = False
        f.flush()

    # ------------------------------------------------------------------ writing
    def append(
        self,
        demo_index: int,
        image: Mapping[str, np.ndarray],
        joint: Mapping[str, np.ndarray],
        text_rows: Mapping[str, Mapping[int, np.ndarray]],
    ) -> None:
        """Commit the next demo: its embeddings, then the text rows it uses first, then ``num_samples``.

        Args:
            demo_index: must be :attr:`committed` (demos are committed in order).
            image / joint: encoder name -> ``(T, E)`` embeddings.
            text_rows: encoder name -> {instruction row -> ``(E,)`` embedding} for rows first used here.
        """
        f = self._require_open()
        if demo_index != self.committed:
            raise RuntimeError(f"demo_{demo_index} appended after {self.committed} committed demos")
        data = f["data"]
        name = schema.demo_name(demo_index)
        if name in data:
            del data[name]
        g = data.create_group(name)
        t = -1
        for entry in self.entries:
            write_embeddings(g, entry, image[entry.name], joint[entry.name])
            t = int(np.shape(image[entry.name])[0])
            table = f[schema.META_TEXT_EMBEDDINGS][entry.name]
            for row, vec in sorted(text_rows.get(entry.name, {}).items()):
                table[row] = np.asarray(vec, dtype=np.float32)
        g.attrs["num_samples"] = np.int64(t)  # LAST: the commit marker
        f.flush()
        self.committed += 1

    def write_text_rows(self, text_rows: Mapping[str, Mapping[int, np.ndarray]]) -> None:
        """Write text rows no demo uses (computed at the end) and flush."""
        f = self._require_open()
        for name, rows in text_rows.items():
            table = f[schema.META_TEXT_EMBEDDINGS][name]
            for row, vec in sorted(rows.items()):
                table[row] = np.asarray(vec, dtype=np.float32)
        f.flush()

    def finish(self) -> None:
        """Mark every episode done and close the file (fsynced)."""
        f = self._require_open()
        f.attrs["complete"] = True
        f.flush()
        self.close()
        fsync_path(self.path)

    def close(self) -> None:
        """Close without marking anything; the committed demos stay for ``--resume``."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("the sidecar is closed")
        return self._file


def _identity(entry: EncoderEntry) -> tuple:
    """What must not change between the runs of one job: the model behind the name."""
    return (entry.name, int(entry.dim), entry.model_id, entry.revision, entry.fusion, entry.source)


def open_sidecar(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open a sidecar, refusing a damaged file or another format with a message that says what to do."""
    p = Path(path)
    try:
        f = h5py.File(p, mode)
    except OSError as exc:
        raise ConfigError(
            f"the unfinished embed '{p}' cannot be opened ({exc}); it is damaged beyond resuming: "
            "pass --overwrite to start over"
        ) from exc
    if f.attrs.get("format") != SIDECAR_FORMAT or int(f.attrs.get("format_version", -1)) != SIDECAR_VERSION:
        f.close()
        raise ConfigError(
            f"'{p}' is not a {SIDECAR_FORMAT} v{SIDECAR_VERSION} file; move it away or pass --overwrite to start over"
        )
    return f


def mark_assembled(path: str | os.PathLike) -> None:
    """Record that the output's ``.partial`` file is complete and fsynced (only the rename is left)."""
    with h5py.File(path, "r+") as f:
        f.attrs["assembled"] = True
        f.flush()
    fsync_path(path)


def sidecar_state(path: str | os.PathLike) -> dict[str, bool]:
    """``{"complete", "assembled"}`` of a sidecar on disk."""
    with open_sidecar(path) as f:
        return {"complete": bool(f.attrs["complete"]), "assembled": bool(f.attrs["assembled"])}
