"""Markdown reports and PNG figures of the probes (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlnav_data.figures import save_png

REPORT_FILE = "report.md"


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a Markdown table: ``—`` for None/NaN, fixed digits otherwise."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out_dir: Path, title: str, sections: Sequence[str]) -> Path:
    """Write ``out_dir/report.md`` from a title and Markdown sections; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(f"# {title}\n\n" + "\n\n".join(s.strip() for s in sections) + "\n")
    return path


def save_figure(fig: Any, path: Path) -> Path:
    """Save a figure (``vlnav_data.figures``) as PNG at dpi 110; return ``path``."""
    return save_png(fig, path, dpi=110)
