"""What every command shares: error handling, device choice, result.json.

Contract (DESIGN §6): every command accepts ``--seed`` and ``--device auto|cpu|cuda|cuda:N`` and writes a
machine-readable ``result.json`` next to its outputs (or prints JSON with ``--json``). A
:class:`~vlnav_data.errors.VlnavError` becomes one line ``error: <message>`` on stderr and exit code 2;
any other exception propagates with its traceback (never an error message with exit code 0).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from vlnav_data.devices import resolve_device  # noqa: F401  re-exported for the command modules
from vlnav_data.errors import VlnavError
from vlnav_data.jsonio import to_jsonable  # noqa: F401  re-exported for the command modules

T = TypeVar("T")


def fail(message: str) -> None:
    """Print ``error: message`` (one line) on stderr and exit with code 2."""
    first_line = " ".join(str(message).split())
    typer.echo(f"error: {first_line}", err=True)
    raise typer.Exit(code=2)


def run_command(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a library function, turning user errors into ``error: ...`` and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except VlnavError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


def emit_result(result: Any, out_dir: Path | None, as_json: bool = False) -> Path | None:
    """Write ``result.json`` into ``out_dir`` (when given) and print it with ``--json``."""
    payload = to_jsonable(result)
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)
    path = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "result.json"
        path.write_text(text + "\n")
    if as_json:
        sys.stdout.write(text + "\n")
    return path
