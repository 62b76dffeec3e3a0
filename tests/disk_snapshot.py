"""What "refused means untouched" compares: a snapshot of every entry under a directory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under root: type, size, mtime and content hash (files); ``.`` is root itself."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            out[str(p.relative_to(root))] = (p.is_dir(), st.st_size if not p.is_dir() else 0, st.st_mtime_ns, digest)
    out["."] = (True, 0, root.stat().st_mtime_ns, None)
    return out
