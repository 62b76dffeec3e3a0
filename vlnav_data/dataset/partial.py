"""The ``.partial`` discipline of every file this package writes: names, checks before work, the committed
prefix, HDF5's crash-safe cache settings and the atomic publish (see :mod:`vlnav_data.dataset.writer`).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import h5py

from vlnav_data.dataset import schema
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import compact

WriteMode = Literal["create", "overwrite", "resume"]


def crash_safe(f: h5py.File) -> None:
    """Keep HDF5 from writing metadata between flushes: no evictions, so no adaptive cache resizing."""
    config = f.id.get_mdc_config()
    config.evictions_enabled = False
    config.incr_mode = 0  # H5C_incr__off
    config.flash_incr_mode = 0  # H5C_flash_incr__off
    config.decr_mode = 0  # H5C_decr__off
    f.id.set_mdc_config(config)


def partial_path(path: str | os.PathLike) -> Path:
    """``<path>.partial``: where a file is written until it is complete."""
    p = Path(path)
    return p.with_name(p.name + schema.PARTIAL_SUFFIX)


def lock_path(path: str | os.PathLike) -> Path:
    """``<path>.lock``: held while a writer runs."""
    p = Path(path)
    return p.with_name(p.name + schema.LOCK_SUFFIX)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        if compact(a) != compact(b):
            diffs.append(f"{key} (file: {compact(a)}, now: {compact(b)})")
    return diffs


def preflight_output(
    path: str | os.PathLike, mode: WriteMode, *, break_lock: bool = False, elsewhere_hint: str = "choose another --out"
) -> None:
    """Check, without writing anything, that a writer in ``mode`` may write ``path``.

    Creates the parent directory when it is missing. Callers that load models before opening a
    :class:`DatasetWriter` call this first so that bad output arguments fail fast.

    Args:
        path: final output path.
        mode: ``create``, ``overwrite`` or ``resume`` (as :class:`DatasetWriter`).
        break_lock: a lock whose holder cannot be probed from this host will be taken over.
        elsewhere_hint: how the user avoids a held lock, as the refusal says it (the command's output option).

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
    WriteLock(lock_path(p), break_lock=break_lock, elsewhere_hint=elsewhere_hint).check_free()
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
