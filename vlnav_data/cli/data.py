"""`vlnav-data`: build, validate, inspect and publish demonstration datasets.

The commands live in modules named for what they do (``datasets``, ``embed``, ``preview``, ``publish``,
``encoders``, ``simulators``, ``view``) as plain functions, each module's ``COMMANDS`` naming them; this module
makes the app and registers them (and the ``import`` group), so imports point one way (no cycle).
"""

from __future__ import annotations

from vlnav_data.cli import datasets, embed, encoders, imports, preview, publish, simulators, view
from vlnav_data.cli._app import make_app

app = make_app("vlnav-data", "Build, validate, inspect and publish demonstration datasets.")

for module in (datasets, embed, preview, publish, encoders, simulators, view):
    for name, command in module.COMMANDS.items():
        app.command(name)(command)
app.add_typer(imports.app, name="import")


def main() -> None:
    """Console-script entry point."""
    app()
