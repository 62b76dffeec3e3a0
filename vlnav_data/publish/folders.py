"""Output folders: refuse to clobber, clear on ``--overwrite``, never delete the input."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from vlnav_data.errors import ConfigError


def not_empty_message(out_dir: Path) -> str:
    """The error for an existing, non-empty output folder without ``--overwrite``."""
    return (
        f"output directory '{out_dir}' already exists and is not empty; pass --overwrite to replace its "
        "contents, or choose another --out"
    )


def prepare_out_dir(out_dir: Path, *, overwrite: bool, keep: Iterable[Path] = ()) -> Path:
    """Create ``out_dir`` empty.

    Args:
        out_dir: the folder to write into.
        overwrite: delete what an existing, non-empty folder holds; otherwise refuse.
        keep: input files that must survive; refusing when any lies inside ``out_dir``.

    Returns:
        The folder, resolved.

    Raises:
        ConfigError: ``out_dir`` is a file, is non-empty without ``overwrite``, or holds an input file.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; expected a directory (new or empty)")
    resolved = out.resolve()
    for item in keep:
        src = Path(item).resolve()
        if resolved == src or resolved in src.parents:
            raise ConfigError(
                f"--out '{out}' contains the input '{item}', which writing there could delete; choose an --out "
                "folder outside the input's folder"
            )
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(not_empty_message(out))
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return resolved
