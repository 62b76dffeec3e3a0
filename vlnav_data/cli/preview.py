"""`vlnav-data preview`: contact sheet of first-person frames beside a top-down map of one episode."""

from __future__ import annotations

from pathlib import Path

import typer

from vlnav_data.cli._common import emit_result, resolve_device, run_command
from vlnav_data.cli.data import app


@app.command("preview")
def preview(
    preset: str = typer.Option("text2nav", help="Arena preset (text2nav, text2nav-velocity, text2nav-random)."),
    seed: int = typer.Option(0, help="Episode seed: the start pose, target and layout are a function of it."),
    out: Path = typer.Option(Path("preview.png"), help="Output PNG; result.json is written beside it."),
    num_frames: int = typer.Option(6, help="First-person frames on the sheet (1-24)."),
    device: str = typer.Option("cpu", help="auto, cpu, cuda or cuda:N."),
    json_out: bool = typer.Option(False, "--json", help="Also print result.json to stdout."),
) -> None:
    """Render one episode of PRESET as a contact sheet (frames + top-down map) to OUT."""
    from vlnav_data.sim.preview import PreviewConfig, render_preview

    def _run():
        config = PreviewConfig(preset=preset, seed=seed, out=out, num_frames=num_frames, device=resolve_device(device))
        return render_preview(config)

    result = run_command(_run)
    emit_result(result, out.parent, as_json=json_out)
    if not json_out:
        typer.echo(
            f"wrote {result.out} ({len(result.frame_steps)} frames; target {result.target_color}, "
            f"{result.termination} after {result.num_steps} steps)"
        )
