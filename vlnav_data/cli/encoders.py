"""`vlnav-data encoders`: every encoder this installation can build (registered by `vlnav_data.cli.data`)."""

from __future__ import annotations

import json

import typer

from vlnav_data.cli._common import run_command, to_jsonable


def encoders(json_out: bool = typer.Option(False, "--json", help="Print the table as a JSON list to stdout.")) -> None:
    """List built-in encoders, installed plugins and the hf: models in the Hugging Face cache (nothing is loaded).

    Any value of the NAME column goes to `--encoder`. Plugins are packages with an entry point in the group
    `vlnav_data.encoders`; hf: rows are the two-tower models (image and text features) found in the cache
    ($HF_HOME/hub); `hf:/path/to/dir` loads a local directory.
    """
    from vlnav_data.encoders import available_encoders

    rows = run_command(available_encoders)
    if json_out:
        typer.echo(json.dumps(to_jsonable(rows), indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape("encoders (--encoder NAME; also hf:ORG/NAME[@REV], hf:/path/to/dir, ALIAS=hf:...)"))
    for column in ("name", "source", "dim", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        dim = "?" if row.dim is None else str(row.dim)
        table.add_row(escape(row.name), row.source, dim, escape(row.note))
    Console(width=160).print(table)


COMMANDS = {"encoders": encoders}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
