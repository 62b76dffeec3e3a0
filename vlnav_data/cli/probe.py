"""`vlnav-probe`: Probe what frozen embeddings contain: linear, spatial, umap, knn."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Probe what frozen embeddings contain: linear, spatial, umap, knn.",
)


def main() -> None:
    """Console-script entry point."""
    app()
