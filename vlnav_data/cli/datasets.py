"""`vlnav-data` dataset commands: build, validate, info, card, merge (registered by `vlnav_data.cli.data`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vlnav_data.cli._common import (
    ALLOW_MIXED_PRECISION,
    CROSS_EPISODE_BATCHING,
    JSON_OUT,
    NO_PROGRESS,
    OVERWRITE,
    TRUST_REMOTE_CODE,
    emit_result,
    fail,
    run_command,
    to_jsonable,
    writing_to,
)


def build(
    out: Path | None = typer.Option(
        None, help="Output .h5 file (written as OUT.partial until complete; OUT.result.json beside it)."
    ),
    preset: str | None = typer.Option(
        None,
        help="Arena preset: text2nav, text2nav-velocity, text2nav-random, text2nav-mujoco, text2nav-newton (extras) "
        "or text2nav-isaaclab (Python 3.12: scripts/isaaclab-venv.sh).  "
        "[default: text2nav]",
    ),
    num_episodes: int | None = typer.Option(None, help="Episodes in the whole build.  [default: 100]"),
    encoder: list[str] | None = typer.Option(
        None,
        "--encoder",
        help="Encoder to embed every frame with; repeat for several. siglip (the paper's so400m), clip and vilt "
        "need their real weights (see docs/encoders.md, 'The real-model path'); siglip-tiny-random, "
        "clip-tiny-random and vilt-tiny-random have random weights and run offline (smoke runs); oracle embeds "
        "the privileged state (diagnostic upper bound); also hf:ORG/NAME[@REV], hf:/path/to/dir, ALIAS=hf:... "
        "or a plugin name (list them: vlnav-data encoders).  [default: siglip]",
    ),
    expert: str | None = typer.Option(
        None, help="Who labels the actions: ppo (the shipped checkpoint) or pursuit (analytic).  [default: ppo]"
    ),
    expert_checkpoint: str | None = typer.Option(
        None,
        "--expert-checkpoint",
        "--checkpoint",
        help="PPO checkpoint (expert.pt or its directory) for --expert ppo.  [default: the shipped one]",
    ),
    instructions: str | None = typer.Option(
        None,
        help="Instruction style: paper (published templates), spatial (left/right/ahead/behind) or color.  "
        "[default: paper]",
    ),
    action_mapping: str | None = typer.Option(
        None, help="How actions drive the wheels: bang_bang or velocity.  [default: the preset's]"
    ),
    image_size_px: int | None = typer.Option(
        None, help="Square camera size in pixels (16-1024).  [default: the preset's, 256]"
    ),
    max_episode_steps: int | None = typer.Option(None, help="Time limit in env steps.  [default: the preset's, 600]"),
    noise_std: float | None = typer.Option(
        None, help="DART: Gaussian noise std on the executed action; the stored label stays clean.  [default: 0.0]"
    ),
    valid_fraction: float | None = typer.Option(
        None, help="Share of episodes in the validation split (/mask/valid).  [default: 0.1]"
    ),
    split_rule: str | None = typer.Option(
        None,
        help="stratified (every prefix holds its share of valid episodes) or coin (files built before).  "
        "[default: stratified]",
    ),
    num_envs: int | None = typer.Option(None, help="Arenas simulated in parallel.  [default: 16]"),
    seed: int | None = typer.Option(
        None, min=0, help="Build seed; episode i's seed derives from it and i alone.  [default: 0]"
    ),
    device: str | None = typer.Option(
        None, help="Torch device: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.  [default: auto]"
    ),
    encoder_batch_size: int | None = typer.Option(
        None, help="Frames per encoder forward pass.  [default: the encoder's]"
    ),
    encoder_dtype: str | None = typer.Option(
        None, help="Encoder precision: auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16.  [default: auto]"
    ),
    model_path: list[str] | None = typer.Option(
        None,
        "--model-path",
        help="NAME=DIR: load built-in encoder NAME's weights from the local directory DIR (hf: encoders: "
        "hf:/path/to/dir).",
    ),
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    shard: str | None = typer.Option(None, help="i/n: build only shard i of n (episodes i, i+n, ...)."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="auto|local|HOST:PORT",
        help="Run --num-shards shards as Ray tasks (auto: the cluster this machine joined with `ray start`; "
        "local: a private Ray on this machine; HOST:PORT: that head node), then merge them into OUT.",
    ),
    num_shards: int | None = typer.Option(None, "--num-shards", help="With --ray: shards (Ray tasks) [default: 2]."),
    cpus_per_shard: float | None = typer.Option(None, help="With --ray: CPUs (and torch threads) per shard [1]."),
    gpus_per_shard: float | None = typer.Option(None, help="With --ray: GPUs per shard [0]."),
    keep_shards: bool = typer.Option(False, "--keep-shards", help="With --ray: keep OUT.shards/ after the merge."),
    break_lock: bool = typer.Option(
        False, "--break-lock", help="Take over OUT's lock when its holder ran on another host and is gone."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT.partial; finished episodes are kept."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT (kept until the new file is complete)."),
    allow_mixed_precision: bool = ALLOW_MIXED_PRECISION,
    cross_episode_batching: bool | None = CROSS_EPISODE_BATCHING,
    writer_queue_size: int | None = typer.Option(
        None, help="Encoded episodes waiting for the HDF5 writer thread (memory bound).  [default: 4]"
    ),
    compile_: bool = typer.Option(
        False,
        "--compile",
        help="torch.compile the renderer and the SigLIP/CLIP/hf: encoders first (compile time reported apart as "
        "compile_s; minutes on a CPU).",
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML file of build settings; flags override it."),
    json_out: bool = JSON_OUT,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Roll out the expert in batched arenas, embed every frame and write a vlnav-demos HDF5 file."""
    from vlnav_data.collect import BuildConfig, build_dataset, load_build_toml, parse_model_paths, parse_shard
    from vlnav_data.collect.executors import ExecutorConfig
    from vlnav_data.errors import ConfigError

    def _config() -> BuildConfig:
        values: dict[str, Any] = load_build_toml(config) if config is not None else {}
        flags = {
            "out": str(out) if out is not None else None,
            "preset": preset,
            "num_episodes": num_episodes,
            "encoders": tuple(encoder) if encoder else None,
            "expert": expert,
            "expert_checkpoint": expert_checkpoint,
            "instructions": instructions,
            "action_mapping": action_mapping,
            "image_size_px": image_size_px,
            "max_episode_steps": max_episode_steps,
            "noise_std": noise_std,
            "valid_fraction": valid_fraction,
            "split_rule": split_rule,
            "num_envs": num_envs,
            "seed": seed,
            "device": device,
            "encoder_batch_size": encoder_batch_size,
            "encoder_dtype": encoder_dtype,
            "model_paths": parse_model_paths(model_path) if model_path else None,
            "trust_remote_code": True if trust_remote_code else None,
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        if shard is not None:
            values["shard_index"], values["num_shards"] = parse_shard(shard)
        values["resume"] = resume or bool(values.get("resume", False))
        values["overwrite"] = overwrite or bool(values.get("overwrite", False))
        values["allow_mixed_precision"] = allow_mixed_precision or bool(values.get("allow_mixed_precision", False))
        if cross_episode_batching is not None:
            values["cross_episode_batching"] = cross_episode_batching
        if writer_queue_size is not None:
            values["writer_queue_size"] = writer_queue_size
        values["break_lock"] = break_lock or bool(values.get("break_lock", False))
        values["keep_shards"] = keep_shards or bool(values.get("keep_shards", False))
        if compile_:
            values["compile"] = True
        if not values.get("out"):
            raise ConfigError('--out is required (or `out = "..."` in the --config file): the .h5 file to write')
        ray_flags = {"--num-shards": num_shards, "--cpus-per-shard": cpus_per_shard, "--gpus-per-shard": gpus_per_shard}
        toml_ex = values.get("executor") or ExecutorConfig()
        if ray is None and toml_ex.kind != "ray":
            given = [k for k, v in ray_flags.items() if v is not None] + (["--keep-shards"] if keep_shards else [])
            if given:
                raise ConfigError(
                    f"{given[0]} applies to --ray builds; add --ray auto|local|HOST:PORT, or use --shard i/n to "
                    "build one shard by hand"
                )
            return BuildConfig(**values)
        if shard is not None:
            raise ConfigError("--shard i/n builds one shard by hand; with --ray give --num-shards instead")
        ex_values = {f: getattr(toml_ex, f) for f in ("address", "cpus_per_task", "gpus_per_task", "max_retries")}
        if ray is not None:
            ex_values["address"] = ray
        if cpus_per_shard is not None:
            ex_values["cpus_per_task"] = cpus_per_shard
        if gpus_per_shard is not None:
            ex_values["gpus_per_task"] = gpus_per_shard
        values["executor"] = ExecutorConfig(kind="ray", **ex_values)
        values["num_shards"] = num_shards if num_shards is not None else values.get("num_shards", 2)
        values["shard_index"] = 0
        return BuildConfig(**values)

    cfg = run_command(_config)
    # --resume continues OUT.partial; whether a complete OUT may be resumed is the writer's call
    with writing_to(Path(cfg.out), kind="file", overwrite=cfg.overwrite or cfg.resume, example="demos.h5"):
        if no_progress or json_out:
            result = run_command(build_dataset, cfg)
        else:
            result = _build_with_progress(cfg, build_dataset)
        emit_result(_result_json(result), Path(cfg.out), as_json=json_out, kind="file")
    if not json_out:
        typer.echo(
            f"wrote {result.path}: {result.num_episodes} episodes, {result.num_steps} steps "
            f"({result.new_episodes} new, {result.resumed_episodes} resumed), expert success "
            f"{100 * result.success_rate:.1f}%, {result.frames_per_s:.1f} frames/s, "
            f"{result.bytes_per_frame / 1e3:.1f} kB/frame"
            + (f"; compiled {', '.join(result.compiled)} in {result.compile_s:.1f} s first" if result.compiled else "")
        )
        for o in getattr(result, "shards", ()):
            how = "complete before this run" if o.attempts == 0 else f"{o.attempts} attempt(s), last on {o.node}"
            typer.echo(
                f"  shard {o.shard_index}: {o.num_episodes} episodes ({o.new_episodes} new, "
                f"{o.resumed_episodes} resumed), {how}"
            )


def _build_with_progress(cfg: Any, build_dataset: Any) -> Any:
    """Run the build with a progress bar on stderr, started at the first finished episode.

    The bar starts only once the build is under way, so an error found while checking the inputs or
    loading the models stays the only line the user sees.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]build[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("episodes"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("{task.fields[shards]}"),
    )
    state: dict[str, Any] = {}

    def on_progress(p: Any) -> None:
        if "bar" not in state:
            bar = Progress(*columns, console=Console(stderr=True), transient=False)
            bar.start()
            state["bar"] = bar
            state["task"] = bar.add_task(Path(cfg.out).name, total=None, rate="- frames/s", eta="-", shards="")
        eta = "-" if p.eta_s is None else f"{int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}"
        shards = ""
        if hasattr(p, "shards_total"):  # a --ray build: shards and frames per node
            nodes = ", ".join(f"{n} {f}" for n, f in sorted(p.frames_per_node.items()))
            shards = f"shards {p.shards_done}/{p.shards_total} done, {p.shards_running} running" + (
                f" | frames per node: {nodes}" if nodes else ""
            )
        state["bar"].update(
            state["task"],
            completed=p.episodes_done,
            total=p.episodes_total,
            rate=f"{p.frames_per_s:.1f} frames/s",
            eta=eta,
            shards=shards,
        )

    try:
        return run_command(build_dataset, cfg, progress=on_progress)
    finally:
        if "bar" in state:
            state["bar"].stop()


def _result_json(result: Any) -> dict[str, Any]:
    payload = to_jsonable(result)
    payload["command"] = "build"
    return payload


def validate(
    file: Path = typer.Argument(..., help="A vlnav-demos .h5 file."),
    json_out: bool = typer.Option(False, "--json", help="Print the violations as JSON to stdout."),
) -> None:
    """Check FILE against every vlnav-demos rule; list ALL violations (exit 1 when any, 0 when valid).

    A file that cannot be read as vlnav-demos at all (missing, not HDF5, truncated, newer format version)
    is an `error:` with exit code 2.
    """
    from vlnav_data.dataset.validate import validate_dataset

    violations = run_command(validate_dataset, file)
    fatal = [v for v in violations if v.fatal]
    if fatal:
        fail(f"{file}: {fatal[0].message}")
    if json_out:
        payload = {"file": str(file), "valid": not violations, "violations": [to_jsonable(v) for v in violations]}
        typer.echo(json.dumps(payload, indent=2))
    elif violations:
        typer.echo(f"{file}: {len(violations)} violation(s)")
        for v in violations:
            typer.echo(f"  {v}")
    else:
        typer.echo(f"{file}: valid vlnav-demos file")
    if violations:
        raise typer.Exit(code=1)


def info(
    file: Path = typer.Argument(..., help="A vlnav-demos .h5 file."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON to stdout."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help="Also read an unfinished .partial."),
) -> None:
    """Summarise FILE: episodes, steps, success rate, termination causes, encoders, sizes.

    A damaged file (episodes deleted or added after its build) is summarised as DAMAGED, exit code 1.
    """
    from vlnav_data.dataset.summary import summarize_dataset

    s = run_command(summarize_dataset, file, allow_incomplete=allow_incomplete, allow_damaged=True)
    if json_out:
        typer.echo(json.dumps(to_jsonable(s.to_json()), indent=2, sort_keys=True))
    else:
        _print_info(file, s)
    if s.problems:
        typer.echo(
            f"{file} is damaged: {'; '.join(s.problems)}; run `vlnav-data validate {file}` for every violation",
            err=True,
        )
        raise typer.Exit(code=1)


def _print_info(file: Path, s: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    state = "DAMAGED" if s.problems else "complete" if s.complete else "INCOMPLETE"
    table = Table(title=f"{file} ({state}, format {s.format_version})")
    table.add_column("field")
    table.add_column("value")
    splits = ", ".join(f"{k}: {v}" for k, v in s.splits.items()) or "none"
    table.add_row("episodes", f"{s.num_episodes} ({splits})")
    table.add_row("steps", f"{s.num_steps} (min {s.steps_min}, mean {s.steps_mean:.1f}, max {s.steps_max})")
    if s.source is not None:  # imported: no arena, so no success, termination, target or expert
        src = s.source
        table.add_row(
            "source", f"{src.get('kind')} {src.get('id')}" + (f" @ {src['revision']}" if src.get("revision") else "")
        )
        table.add_row("arena", "none (imported; closed-loop tools refuse this file)")
    else:
        table.add_row("success rate", f"{100 * s.success_rate:.1f}%")
        table.add_row("terminations", ", ".join(f"{k}: {v}" for k, v in s.terminations.items()))
        table.add_row("targets", ", ".join(f"{k}: {v}" for k, v in s.targets.items()))
        table.add_row("experts", ", ".join(f"{k}: {v}" for k, v in s.experts.items()))
    table.add_row(
        "encoders",
        ", ".join(f"{k} ({v}-d)" for k, v in s.encoders.items()) or f"none yet: vlnav-data embed {file} --encoder NAME",
    )
    table.add_row("instructions", str(s.num_instructions))
    table.add_row("image", " x ".join(map(str, s.image_shape)) + f" uint8 at {s.fps:g} Hz")
    table.add_row("file size", f"{s.file_bytes / 1e6:.2f} MB ({s.bytes_per_frame / 1e3:.2f} kB/frame)")
    for key, nbytes in list(s.stored_bytes.items())[:6]:
        table.add_row(f"  {key}", f"{nbytes / 1e6:.2f} MB")
    table.add_row("created", f"{s.created_utc} by {s.writer}")
    Console().print(table)


def card(
    file: Path = typer.Argument(..., help="A vlnav-demos .h5 file."),
    out: Path | None = typer.Option(
        None,
        help="Card file to write (e.g. hub/README.md), with sample_frames.png and OUT.result.json beside it.  "
        "[default: print the card to stdout]",
    ),
    license: str = typer.Option("apache-2.0", help="Hugging Face license id for the front matter."),
    num_frames: int = typer.Option(6, min=1, max=24, help="Frames in the sample strip."),
    repo_id: str | None = typer.Option(None, help="Hub repository id ORG/NAME for the download snippet."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Render a Markdown dataset card (Hugging Face front matter, frames, schema, stats, rebuild command)."""
    from vlnav_data.dataset.card import STRIP_NAME, render_card

    with writing_to(out, kind="file", overwrite=overwrite, inputs=[file], example="README.md"):
        text = run_command(render_card, file, out, num_frames=num_frames, license=license, repo_id=repo_id)
        if out is None:
            typer.echo(text)
            return
        frames = out.parent / STRIP_NAME
        emit_result({"command": "card", "card": str(out), "frames": str(frames)}, out, kind="file")
    typer.echo(f"wrote {out} and {frames}")


def merge(
    out: Path = typer.Argument(..., help="Merged output .h5 file (OUT.result.json is written beside it)."),
    shards: list[Path] = typer.Argument(..., help="Shard files of one build (built with --shard i/n)."),
    overwrite: bool = OVERWRITE,
    allow_mixed_precision: bool = typer.Option(
        False, "--allow-mixed-precision", help="Merge shards whose encoders ran in other dtypes/devices (recorded)."
    ),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Merge even when episodes of the build are in no shard (listed in the result)."
    ),
    break_lock: bool = typer.Option(
        False, "--break-lock", help="Take over OUT's lock when its holder ran on another host and is gone."
    ),
    json_out: bool = JSON_OUT,
) -> None:
    """Merge the shards of one build into OUT, renumbering demos by their global episode index.

    Every episode of the build (its --num-episodes) must be in some shard: otherwise the missing ones are
    listed on stderr and the exit code is 1, unless --allow-missing. Chunks are copied as stored.
    """
    from vlnav_data.dataset.merge import merge_datasets
    from vlnav_data.errors import MissingEpisodesError

    def _merge() -> Any:
        try:
            return merge_datasets(
                shards,
                out,
                overwrite=overwrite,
                allow_mixed_precision=allow_mixed_precision,
                allow_missing=allow_missing,
                break_lock=break_lock,
                elsewhere_hint="choose another OUT",
            )
        except MissingEpisodesError as exc:  # incomplete data, not bad input: exit 1 like `validate`
            return exc

    with writing_to(out, kind="file", overwrite=overwrite, inputs=shards, option="OUT"):
        result = run_command(_merge)
        if isinstance(result, MissingEpisodesError):
            typer.echo(f"error: {' '.join(str(result).split())}", err=True)
            raise typer.Exit(code=1)
        emit_result({"command": "merge", **to_jsonable(result)}, out, as_json=json_out, kind="file")
    if not json_out:
        typer.echo(
            f"wrote {result.path}: {result.num_episodes} episodes, {result.num_steps} steps ({result.raw_datasets} "
            f"datasets copied raw, {result.recoded_datasets} re-encoded, {result.elapsed_s:.1f} s)"
        )
        if result.missing_episode_indices:
            typer.echo(
                f"note: {len(result.missing_episode_indices)} of {result.expected_episodes} episodes missing "
                f"(--allow-missing): {list(result.missing_episode_indices)[:20]}"
            )


COMMANDS = {"build": build, "validate": validate, "info": info, "card": card, "merge": merge}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
