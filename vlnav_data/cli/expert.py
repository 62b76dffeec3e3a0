"""`vlnav-expert`: Train and evaluate the privileged expert."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Train and evaluate the privileged expert.",
)


def main() -> None:
    """Console-script entry point."""
    app()
