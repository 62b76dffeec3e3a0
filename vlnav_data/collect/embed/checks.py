"""What `vlnav-data embed` reads from its input up front (:class:`EmbedInput`) and the checks it runs on
the input, the output and the encoders asked for, before any model loads.

Used by :func:`vlnav_data.collect.embed.embed_dataset` (which lists what is refused) and, for
:func:`demo_listing`, by the Ray tasks of :mod:`~vlnav_data.collect.embed.tasks`; the config is in
:mod:`~vlnav_data.collect.embed.config`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.collect.embed.config import EmbedConfig
from vlnav_data.dataset import EncoderEntry, schema
from vlnav_data.dataset.reader import check_format, open_h5
from vlnav_data.dataset.sidecar import input_fingerprint
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError, SchemaError


@dataclass(frozen=True, eq=False)
class EmbedInput:
    """What embed needs to know about its input, read once up front."""

    demo_names: tuple[str, ...]
    num_samples: tuple[int, ...]
    instruction_index: tuple[np.ndarray, ...]
    instructions: tuple[str, ...]
    entries: tuple[EncoderEntry, ...]
    rebuild_command: str
    fingerprint: dict[str, Any]
    size_bytes: int
    frame_hw: tuple[int, int] = (0, 0)  # height, width of the frames (what --compile compiles for)
    has_arena: bool = True  # False for an imported file: no privileged state for a privileged encoder


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (the same inode when both exist, else the same resolved path)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_output_path(out: Path) -> None:
    """Refuse an output named ``*.partial`` or that is a directory; create its directory, which must be writable.

    Raises:
        ConfigError: what is wrong with ``out`` and what to pass instead.
    """
    if out.name.endswith(schema.PARTIAL_SUFFIX):
        raise ConfigError(f"the output name must not end in '{schema.PARTIAL_SUFFIX}', got '{out}'")
    if out.is_dir():
        raise ConfigError(f"the output '{out}' is a directory; pass a file name such as demos.h5")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output directory '{out.parent}': {exc.strerror}") from exc
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"the output directory '{out.parent}' is not writable; choose a writable --out")


def check_input_path(src: Path) -> None:
    """Refuse a ``.partial`` input, and a missing or non-HDF5 one (before anything is created)."""
    if src.name.endswith(schema.PARTIAL_SUFFIX):
        raise SchemaError(
            f"'{src}' is an unfinished build (a .partial file); finish it with `vlnav-data build --resume`, "
            "then embed the complete file"
        )
    open_h5(src).close()


def inspect_input(src: Path) -> EmbedInput:
    """Refuse a ``.partial``, incomplete, state-only or invalid input; read what embed needs.

    Raises:
        SchemaError: not a vlnav-demos file, incomplete, state-only, or failing ``validate``.
    """
    f = open_h5(src)
    try:
        check_format(f, src)
        if not bool(f.attrs.get("complete", False)):
            raise SchemaError(
                f"'{src}' is incomplete (complete != True): its build did not finish; resume it with "
                "`vlnav-data build --resume`, then embed the complete file"
            )
        data = f["data"] if "data" in f else {}
        names = sorted((n for n in data if schema.demo_index(n) is not None), key=schema.demo_index)
        frameless = [n for n in names if schema.RGB not in data[n]]
        if frameless:
            raise SchemaError(
                f"'{src}' is a state-only file ({len(frameless)} of {len(names)} demos have no {schema.RGB}, "
                f"e.g. {frameless[0]}); embed computes embeddings from the stored frames and writes only valid "
                "vlnav-demos files, which hold frames, so not even the oracle can be added: build the dataset "
                "with frames (`vlnav-data build`)"
            )
    finally:
        f.close()
    violations = validate_dataset(src)
    if violations:
        raise SchemaError(
            f"'{src}' fails validation ({len(violations)} violation(s), the first: {violations[0]}); embed adds "
            f"encoders only to valid files: run `vlnav-data validate {src}` for the full list"
        )
    with open_h5(src) as f:
        rebuild = f.attrs.get("rebuild_command", "")
        return EmbedInput(
            **demo_listing(f, names),
            entries=tuple(EncoderEntry(**e) for e in json.loads(f.attrs["encoders_json"])),
            rebuild_command=rebuild.decode() if isinstance(rebuild, bytes) else str(rebuild),
            fingerprint=input_fingerprint(src, f),
            size_bytes=src.stat().st_size,
            frame_hw=tuple(int(x) for x in f["data"][names[0]][schema.RGB].shape[1:3]) if names else (0, 0),
            has_arena=not schema.is_imported(json.loads(f.attrs.get("sim_config_json", "{}"))),
        )


def demo_listing(f: Any, names: Sequence[str]) -> dict[str, Any]:
    """The :class:`EmbedInput` fields that say how to read demos ``names`` of an open file."""
    data = f["data"]
    return {
        "demo_names": tuple(names),
        "num_samples": tuple(int(data[n].attrs["num_samples"]) for n in names),
        "instruction_index": tuple(data[n][schema.INSTRUCTION_INDEX][()] for n in names),
        "instructions": tuple(
            s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[schema.META_INSTRUCTIONS][()]
        ),
    }


def check_output(config: EmbedConfig, out: Path, in_place: bool, side: Path, partial: Path) -> None:
    """Refuse to start over an unfinished run, an existing output or another build's ``.partial``.

    Args:
        config: the run (``resume`` / ``overwrite`` decide what is allowed).
        out: the output; in_place: whether it is the input itself.
        side: the output's sidecar (``<OUT>.embed.partial``); partial: ``<OUT>.partial``.

    Raises:
        ConfigError: which leftover is in the way and which flag to pass.
    """
    if side.exists() and not config.resume and not config.overwrite:
        raise ConfigError(
            f"an unfinished embed exists at '{side}'; pass --resume to continue it or --overwrite to start over"
        )
    if not in_place and out.exists() and not config.overwrite and not (config.resume and side.exists()):
        raise ConfigError(f"the output '{out}' already exists; pass --overwrite to replace it or choose another --out")
    if partial.exists() and not side.exists() and not config.overwrite:
        raise ConfigError(
            f"'{partial}' exists but no unfinished embed does ('{side}'): it is another build's unfinished "
            f"output; resume or remove it, or pass --overwrite to discard it"
        )


def refuse_present(name: str, present: set[str], src: Path, replace: bool) -> None:
    """Refuse encoder ``name`` when the input already holds it (``present``), unless ``replace``.

    Raises:
        ConfigError: the encoder is already in ``src``.
    """
    if name in present and not replace:
        raise ConfigError(
            f"'{src}' already holds encoder '{name}'; pass --replace to compute it again, or choose another encoder"
        )
