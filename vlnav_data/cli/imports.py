"""`vlnav-data import lerobot|robomimic` (registered in `vlnav_data.cli.data`): demonstrations from elsewhere.

Thin shells over :func:`vlnav_data.imports.import_lerobot` and :func:`~vlnav_data.imports.import_robomimic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vlnav_data.cli._app import make_group
from vlnav_data.cli._common import JSON_OUT, NO_PROGRESS, command_config, emit_result, run_command, to_jsonable

app = make_group(
    "import",
    "Import demonstrations recorded elsewhere (LeRobot v3.0, robomimic) as a vlnav-demos file without an arena.",
)

OUT = typer.Option(..., "--out", help="The vlnav-demos .h5 file to write (written at OUT.partial until complete).")
RESUME = typer.Option(False, "--resume", help="Continue OUT.partial; its committed episodes are kept.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace OUT and discard an unfinished OUT.partial.")
VALID_FRACTION = typer.Option(
    0.1, help="Share of episodes in /mask/valid when the source names no validation split (at least one of 2+)."
)
SPLIT_SEED = typer.Option(0, help="Seed of that split (a pure function of the seed and the episode index).")


@app.command("lerobot")
def lerobot(
    root: str = typer.Argument(
        ..., help="A LeRobot v3.0 dataset directory, or a Hub repo id (owner/name) already in the local cache."
    ),
    out: Path = OUT,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    camera: str | None = typer.Option(
        None, help="The camera feature kept as obs/rgb, e.g. observation.images.top.  [default: the only one]"
    ),
    episodes: str | None = typer.Option(
        None, help="Source episodes to import: ranges and indices such as 0:100,120 (end exclusive).  [default: all]"
    ),
    valid_fraction: float = VALID_FRACTION,
    split_seed: int = SPLIT_SEED,
    json_out: bool = JSON_OUT,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Import a LeRobot v3.0 dataset (parquet + MP4 or images; AV1, H.264, HEVC) without the lerobot package."""
    from vlnav_data.imports import LeRobotImportConfig, import_lerobot

    cfg = run_command(command_config, LeRobotImportConfig, locals(), out=str(out))
    _run(import_lerobot, cfg, out, json_out, no_progress)


@app.command("robomimic")
def robomimic(
    file: Path = typer.Argument(..., help="A robomimic .hdf5 file (data/demo_N/{actions, obs/<key>}, mask/)."),
    out: Path = OUT,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    camera: str | None = typer.Option(
        None, help="The image observation kept as obs/rgb, e.g. agentview_image.  [default: the only one]"
    ),
    instruction: str | None = typer.Option(
        None,
        help="The task of every step. [default: read from the file: a demo attribute lang, language_instruction "
        "or instruction, ep_meta's lang, or /data's language_instruction or problem_info]",
    ),
    valid_fraction: float = VALID_FRACTION,
    split_seed: int = SPLIT_SEED,
    json_out: bool = JSON_OUT,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Import a robomimic HDF5 file (image observations included) as a vlnav-demos file."""
    from vlnav_data.imports import RobomimicImportConfig, import_robomimic

    cfg = run_command(command_config, RobomimicImportConfig, locals(), file=str(file), out=str(out))
    _run(import_robomimic, cfg, out, json_out, no_progress)


def _run(fn: Any, cfg: Any, out: Path, json_out: bool, no_progress: bool) -> None:
    if no_progress or json_out:
        result = run_command(fn, cfg)
    else:
        result = _with_progress(fn, cfg)
    emit_result({"command": f"import {result.kind}", **to_jsonable(result)}, result.path, as_json=json_out, kind="file")
    if not json_out:
        typer.echo(
            f"wrote {result.path}: {result.num_episodes} episodes ({result.splits.get('train', 0)} train, "
            f"{result.splits.get('valid', 0)} valid; {result.resumed_episodes} resumed), {result.num_steps} steps "
            f"from {result.kind} '{result.source_id}', camera {result.camera}, {result.action_dim}-d actions, "
            f"features {', '.join(result.features) or 'none'}; {result.frames_per_s:.0f} frames/s. "
            f"Next: vlnav-data embed {result.path} --encoder NAME"
        )


def _with_progress(fn: Any, cfg: Any) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]import[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames {task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    task: list[Any] = []  # the bar starts with the first episode: a refusal prints only its error line
    try:

        def on_progress(p: Any) -> None:
            if not task:
                bar.start()
                task.append(bar.add_task("import", total=p.frames_total, rate=""))
            bar.update(task[0], completed=p.frames_done, rate=f"{p.frames_per_s:.0f}/s")

        return run_command(fn, cfg, progress=on_progress)
    finally:
        if task:
            bar.stop()
