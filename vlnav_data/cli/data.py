"""`vlnav-data`: build, validate, inspect and publish demonstration datasets.

The commands live in modules named for what they do (``datasets``, ``preview``, ``publish``, ``encoders``,
``simulators``) as plain
functions; this module makes the app and registers them, so imports point one way (no cycle).
"""

from __future__ import annotations

from vlnav_data.cli import datasets, embed, encoders, imports, preview, publish, simulators, view
from vlnav_data.cli._app import make_app

app = make_app("vlnav-data", "Build, validate, inspect and publish demonstration datasets.")

app.command("build")(datasets.build)
app.command("validate")(datasets.validate)
app.command("info")(datasets.info)
app.command("card")(datasets.card)
app.command("merge")(datasets.merge)
app.command("embed")(embed.embed)
app.add_typer(imports.app, name="import")
app.command("preview")(preview.preview)
app.command("export")(publish.export)
app.command("publish")(publish.publish)
app.command("verify")(publish.verify)
app.command("encoders")(encoders.encoders)
app.command("check-arena")(simulators.check_arena_command)
app.command("view")(view.view)


def main() -> None:
    """Console-script entry point."""
    app()
