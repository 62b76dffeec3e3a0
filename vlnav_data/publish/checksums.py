"""``SHA256SUMS``: the sha256 of every file of a Hub folder, in ``sha256sum -c`` format.

Each line is ``<64 hex digits>  <path relative to the folder, with />`` (two spaces: text mode), sorted
by path. Listed: every regular file, except ``SHA256SUMS`` itself, the local-only files in :data:`LOCAL_ONLY` (the
command's ``result.json`` and huggingface_hub's cache ``.cache/``) and the ``.gitattributes`` the Hub adds.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SUMS_NAME = "SHA256SUMS"
LOCAL_ONLY = ("result.json", ".cache")
"""Top-level names that stay on this machine: never listed, never uploaded."""

HUB_GENERATED = (".gitattributes",)
"""Top-level files the Hub adds to every repository (and a download brings along): never listed."""

_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def sha256_file(path: Path, block_bytes: int = 4 * 1024 * 1024) -> str:
    """Hex sha256 of one file, read in blocks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """Relative paths (``/``-separated, sorted) of the files a checksum list covers."""
    out = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        rel = path.relative_to(folder)
        if rel.parts[0] in LOCAL_ONLY or rel.as_posix() in (SUMS_NAME, *HUB_GENERATED):
            continue
        out.append(rel.as_posix())
    return sorted(out)


def write_sha256sums(folder: Path) -> Path:
    """Hash every file of ``folder`` and write ``folder/SHA256SUMS``; return its path."""
    lines = [f"{sha256_file(folder / rel)}  {rel}\n" for rel in folder_files(folder)]
    path = folder / SUMS_NAME
    path.write_text("".join(lines), encoding="utf-8")
    return path


def read_sha256sums(path: Path) -> tuple[dict[str, str], list[str]]:
    """Parse a ``SHA256SUMS`` file.

    Returns:
        ``({relative path: hex digest}, [problems])``; a malformed or duplicate line is a problem.
    """
    sums: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            problems.append(f"{SUMS_NAME} line {number} is malformed (expected '<64 hex digits>  <path>'): {line!r}")
            continue
        digest, rel = match.groups()
        if rel in sums:
            problems.append(f"{SUMS_NAME} lists '{rel}' twice (line {number})")
        sums[rel] = digest
    return sums, problems
