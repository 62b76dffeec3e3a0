"""`vlnav-policy`: Behaviour cloning on frozen embeddings: train, eval, dagger, diagnose."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Behaviour cloning on frozen embeddings: train, eval, dagger, diagnose.",
)


def main() -> None:
    """Console-script entry point."""
    app()
