"""`vlnav-data preview`: contact sheet of first-person frames beside a top-down map of one episode."""

from __future__ import annotations

from pathlib import Path

import typer

from vlnav_data.cli._common import DEVICE, JSON_OUT, OVERWRITE, emit_result, resolve_device, run_command, writing_to


def preview(
    out: Path = typer.Option(..., help="Output PNG; OUT.result.json is written beside it."),
    preset: str = typer.Option(
        "text2nav",
        help="Arena preset: text2nav, text2nav-velocity, text2nav-random, text2nav-mujoco, text2nav-newton (extras) "
        "or text2nav-isaaclab (Python 3.12: scripts/isaaclab-venv.sh).",
    ),
    seed: int = typer.Option(0, min=0, help="Episode seed: the start pose, target and layout are a function of it."),
    num_frames: int = typer.Option(6, help="First-person frames on the sheet (1-24)."),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    json_out: bool = JSON_OUT,
) -> None:
    """Render one episode of PRESET as a contact sheet (frames + top-down map) to OUT."""
    from vlnav_data.sim.preview import PreviewConfig, render_preview

    def _run():
        config = PreviewConfig(preset=preset, seed=seed, out=out, num_frames=num_frames, device=resolve_device(device))
        return render_preview(config)

    with writing_to(out, kind="file", overwrite=overwrite, example="preview.png"):
        result = run_command(_run)
        emit_result(result, out, as_json=json_out, kind="file")
    if not json_out:
        typer.echo(
            f"wrote {result.out} ({len(result.frame_steps)} frames; target {result.target_color}, "
            f"{result.termination} after {result.num_steps} steps)"
        )


COMMANDS = {"preview": preview}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
