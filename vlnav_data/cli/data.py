"""`vlnav-data`: Build, validate, inspect and publish demonstration datasets."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Build, validate, inspect and publish demonstration datasets.",
)


def main() -> None:
    """Console-script entry point."""
    app()


# Commands live in modules named for what they do; importing them registers them on `app`.
from vlnav_data.cli import datasets as _datasets  # noqa: E402,F401  build, validate, info, card
from vlnav_data.cli import embed as _embed  # noqa: E402,F401  embed
from vlnav_data.cli import encoders as _encoders  # noqa: E402,F401  encoders
from vlnav_data.cli import preview as _preview  # noqa: E402,F401  preview
from vlnav_data.cli import publish as _publish  # noqa: E402,F401  export, publish, verify
from vlnav_data.cli import simulators as _simulators  # noqa: E402,F401  check-arena
