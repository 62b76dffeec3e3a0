"""`vlnav-data view`: a Rerun recording of a dataset's episodes (the viz extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vlnav_data.cli._common import (
    DEVICE,
    JSON_OUT,
    OVERWRITE,
    command_config,
    emit_result,
    resolve_device,
    run_command,
    writing_to,
)


def view(
    path: Path = typer.Argument(..., metavar="FILE", help="A vlnav-demos dataset file (.h5) with frames."),
    out: Optional[Path] = typer.Option(  # noqa: UP045 (typer needs Optional on py3.10)
        None, "--out", help="Recording to write (.rrd; open it with `rerun REC.rrd`). Give this or --serve."
    ),
    serve: bool = typer.Option(False, "--serve", help="Serve it to Rerun's web viewer instead (Ctrl-C stops)."),
    episode: Optional[list[int]] = typer.Option(  # noqa: UP045
        None, "--episode", help="Demo index to record (repeatable).  [default: every episode]"
    ),
    episode_range: Optional[str] = typer.Option(  # noqa: UP045
        None, "--episodes", help="Demo indices START:STOP (START..STOP-1), with any --episode."
    ),
    stride: int = typer.Option(1, "--stride", help="Log the frame and the map every K-th step (plots: every step)."),
    cosine: bool = typer.Option(
        True, "--cosine/--no-cosine", help="Plot each encoder's image/colour-prompt cosines (may rebuild encoders)."
    ),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    json_out: bool = JSON_OUT,
) -> None:
    """Record episodes for Rerun: frame, top-down map, instruction, actions, target, embedding cosines."""
    from vlnav_data.viz import ViewConfig, view_dataset

    parameters = locals()

    def _run():
        device_ = resolve_device(device)
        config = command_config(ViewConfig, parameters, episodes=tuple(episode or ()), device=device_)
        return view_dataset(config, on_serving=lambda url: typer.echo(f"serving {url} (Ctrl-C stops)", err=True))

    with writing_to(out, kind="file", overwrite=overwrite, inputs=[path], example="episodes.rrd"):
        result = run_command(_run)
        emit_result(result, out, as_json=json_out, kind="file")
    if not json_out and out is not None:
        typer.echo(
            f"wrote {out} ({len(result.episodes)} episodes, {result.num_steps} steps, {result.frames} frames; "
            f"open it with `rerun {out}`)"
        )


COMMANDS = {"view": view}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
