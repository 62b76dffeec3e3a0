"""`vlnav-data embed` (registered in `vlnav_data.cli.data`): add encoders to an existing dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vlnav_data.cli._common import (
    ALLOW_MIXED_PRECISION,
    CROSS_EPISODE_BATCHING,
    DEVICE,
    JSON_OUT,
    NO_PROGRESS,
    TRUST_REMOTE_CODE,
    emit_result,
    run_command,
    to_jsonable,
    writing_to,
)


def embed(
    file: Path = typer.Argument(..., help="A complete vlnav-demos .h5 file (never modified until done)."),
    encoder: list[str] | None = typer.Option(None, "--encoder", help="Encoder to add; repeat for several."),
    out: Path | None = typer.Option(None, help="Write a new file here; default: replace FILE atomically when done."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT.embed.partial; finished episodes are kept."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing --out and discard an unfinished run."
    ),
    replace: bool = typer.Option(False, "--replace", help="Recompute an encoder FILE already holds."),
    allow_mixed_precision: bool = ALLOW_MIXED_PRECISION,
    device: str = DEVICE,
    encoder_dtype: str = typer.Option("auto", help="auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16."),
    encoder_batch_size: int | None = typer.Option(
        None, help="Frames per encoder forward pass.  [default: the encoder's; built-ins: 8 on CPU, 256 on CUDA]"
    ),
    cross_episode_batching: bool | None = CROSS_EPISODE_BATCHING,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="auto|local|HOST:PORT",
        help="Compute on Ray: tasks read ranges of episodes from FILE (on a filesystem every node mounts) and "
        "return embeddings; this process alone writes (auto: the cluster this machine joined with `ray start`; "
        "local: a private Ray on this machine; HOST:PORT: that head node).",
    ),
    cpus_per_task: float | None = typer.Option(
        None, help="With --ray: CPUs (and torch threads) per task.  [default: 1]"
    ),
    gpus_per_task: float | None = typer.Option(None, help="With --ray: GPUs per task, e.g. 0.5.  [default: 0]"),
    episodes_per_task: int | None = typer.Option(
        None, help="With --ray: consecutive episodes per task (each loads the encoders once).  [default: 64]"
    ),
    compile_: bool = typer.Option(
        False,
        "--compile",
        help="torch.compile the SigLIP/CLIP/hf: encoders first (compile time reported apart as compile_s).",
    ),
    json_out: bool = JSON_OUT,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Compute obs/<X>_image, obs/<X>_joint and the text embeddings of encoder X from the stored frames and
    instructions, and add them to FILE (or write --out). Crash-safe and resumable; see docs/encoders.md."""
    from vlnav_data.collect.embed import embed_dataset
    from vlnav_data.collect.embed.config import EmbedConfig

    ray_values = run_command(
        _ray_values,
        ray,
        {"--cpus-per-task": cpus_per_task, "--gpus-per-task": gpus_per_task, "--episodes-per-task": episodes_per_task},
    )
    cfg = run_command(
        EmbedConfig,
        file=str(file),
        encoders=tuple(encoder or ()),
        out=str(out) if out is not None else None,
        resume=resume,
        overwrite=overwrite,
        replace=replace,
        allow_mixed_precision=allow_mixed_precision,
        device=device,
        encoder_dtype=encoder_dtype,
        encoder_batch_size=encoder_batch_size,
        cross_episode_batching=cross_episode_batching,
        trust_remote_code=trust_remote_code,
        compile=compile_,
        **ray_values,
    )
    # In place (no --out) the library replaces FILE atomically; a new --out follows the common output policy.
    with writing_to(out, kind="file", overwrite=overwrite or resume, inputs=[file], example="demos-embedded.h5"):
        if no_progress or json_out:
            result = run_command(embed_dataset, cfg)
        else:
            result = _embed_with_progress(cfg, embed_dataset)
        payload = {"command": "embed", **to_jsonable(result)}
        emit_result(payload, result.path, as_json=json_out, kind="file")
    if not json_out:
        typer.echo(
            f"wrote {result.path}: added {', '.join(result.encoders)} to {result.num_episodes} episodes "
            f"({result.num_steps} steps; {result.new_episodes} embedded now, {result.resumed_episodes} resumed), "
            f"{result.frames_per_s:.1f} frames/s, +{(result.file_bytes - result.input_bytes) / 1e6:.2f} MB"
            + (f"; compiled {', '.join(result.compiled)} in {result.compile_s:.1f} s first" if result.compiled else "")
        )


def _ray_values(ray: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    """The EmbedConfig fields of ``--ray`` and its flags (which are refused without it)."""
    from vlnav_data.collect.executors import ExecutorConfig
    from vlnav_data.errors import ConfigError

    given = {k: v for k, v in flags.items() if v is not None}
    if ray is None:
        if given:
            raise ConfigError(f"{next(iter(given))} applies to --ray; add --ray auto|local|HOST:PORT, or drop it")
        return {}
    executor = ExecutorConfig.for_ray(
        ray, cpus_per_task=given.get("--cpus-per-task"), gpus_per_task=given.get("--gpus-per-task"), unit="task"
    )
    values: dict[str, Any] = {"executor": executor}
    if "--episodes-per-task" in given:
        values["episodes_per_task"] = given["--episodes-per-task"]
    return values


def _embed_with_progress(cfg: Any, embed_dataset: Any) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("{task.fields[tasks]}"),
    )
    # The bar starts with the first progress report, so a refusal (checked before any work) prints one line.
    bar = Progress(*columns, console=Console(stderr=True), transient=False)
    tasks: dict[str, Any] = {}
    try:

        def on_progress(p: Any) -> None:
            if not tasks:
                bar.start()
            if p.stage not in tasks:
                label = "embed" if p.stage == "embed" else "copy "
                tasks[p.stage] = bar.add_task(
                    f"{label} {Path(cfg.file).name}", total=p.frames_total, rate="", eta="-", tasks=""
                )
            eta = "-" if p.eta_s is None else f"{int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}"
            on_ray = ""
            if p.tasks:  # --ray: where the work is
                running = [t for t in p.tasks if t.state == "running"]
                nodes = len({t.node for t in running})
                on_ray = f"tasks {sum(t.state == 'done' for t in p.tasks)}/{len(p.tasks)} done, {len(running)} running"
                on_ray += f" on {nodes} node(s)" if running else ""
            bar.update(
                tasks[p.stage],
                completed=p.frames_done,
                total=p.frames_total,
                rate=f"{p.frames_per_s:.1f}/s",
                eta=eta,
                tasks=on_ray,
            )

        return run_command(embed_dataset, cfg, progress=on_progress)
    finally:
        if tasks:
            bar.stop()


COMMANDS = {"embed": embed}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
