"""`vlnav-data` commands (registered on `vlnav_data.cli.data.app`)."""

from __future__ import annotations

from vlnav_data.cli.data import app  # noqa: F401
