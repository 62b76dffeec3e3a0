"""`vlnav-study`: compare encoders in one command (multi-seed BC, paired statistics, probes side by side).

A console script of its own rather than `vlnav-policy compare`: a study sits one layer above
`policy`, `probes` and `collect` (it runs all three), and it has its own life cycle (run, resume,
re-report) on a directory of cells, which a subcommand of one of the packages below would hide.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from vlnav_data.cli._app import make_app
from vlnav_data.cli._common import DEVICE_HELP, JSON_OUT, OVERWRITE, run_command, writing_to

app = make_app(
    "vlnav-study", "Compare encoders: multi-seed behaviour cloning on shared starts, paired tests, probes side by side."
)


def main() -> None:
    """Console-script entry point."""
    app()


def _parse_model_paths(items: list[str]) -> tuple[tuple[str, str], ...]:
    from vlnav_data.errors import ConfigError

    out = []
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or not name or not path:
            raise ConfigError(
                f"--encoder-model-path must look like NAME=DIR (e.g. siglip=/models/siglip), got '{item}'"
            )
        out.append((name, path))
    return tuple(out)


def _config(config_file: Path | None, flags: dict[str, Any]) -> Any:
    from vlnav_data.errors import ConfigError
    from vlnav_data.study import StudyConfig, load_study_toml

    values: dict[str, Any] = load_study_toml(config_file) if config_file is not None else {}
    values.update({k: v for k, v in flags.items() if v is not None})
    if not values.get("datasets"):
        raise ConfigError("a study needs at least one dataset FILE (or `datasets = [...]` in the --config file)")
    if not values.get("out_dir"):
        raise ConfigError('--out is required (or `out = "..."` in the --config file): the study directory')
    return StudyConfig(**values)


def _print_event(event: Any) -> None:
    marker = event.marker
    summary = marker.get("summary") or {}
    what = event.cell.describe()
    if event.cell.kind == "bc" and summary:
        e = summary["eval"]
        detail = f"success {e['successes']}/{e['trials']}"
    elif summary:
        knn = summary.get("knn_r2")
        detail = "probes " + ", ".join(f"{k} {v:.2f}" for k, v in summary.get("linear", {}).items() if v is not None)
        detail += f", kNN R² {knn:.2f}" if knn is not None else ""
    else:
        detail = ""
    wall = marker.get("wall_s")
    timing = f" ({wall:.0f} s)" if event.status == "computed" and wall is not None else ""
    verb = "done" if event.status == "computed" else "kept (finished earlier)"
    typer.echo(f"[{event.index}/{event.total}] {verb}: {what}: {detail}{timing}", err=True)


def _summary(result: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(Path(result.result_json).read_text())
        return
    state = "complete" if result.complete else "partial"
    typer.echo(
        f"study {state}: {result.num_cells} cells ({result.cells_computed} computed, {result.cells_reused} kept) "
        f"in {result.wall_s:.0f} s"
    )
    if result.ranking:
        typer.echo("ranking by pooled success: " + " > ".join(result.ranking))
    shown = "; ".join(result.significant[:5]) + (
        f"; ... ({len(result.significant)} in all)" if len(result.significant) > 5 else ""
    )
    typer.echo("significant after Holm: " + (shown if result.significant else "none") + " (see report.md)")
    typer.echo(f"wrote {result.report} and {result.result_json}")


@app.command()
def run(
    datasets: list[Path] | None = typer.Argument(
        None, help="vlnav-demos files (several: e.g. paper and color builds)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Study directory (cells, report.md, result.json, figures)."),
    overwrite: bool = OVERWRITE,
    encoder: list[str] | None = typer.Option(
        None,
        "--encoder",
        help="Encoder to compare, by its name in the file; repeat.  [default: every encoder of the file]",
    ),
    features: list[str] | None = typer.Option(
        None, "--features", help="Feature set: joint, image or text; repeat.  [default: joint]"
    ),
    recipe: list[str] | None = typer.Option(None, "--recipe", help="Named BC recipe; repeat.  [default: paper]"),
    steps: int | None = typer.Option(None, "--steps", help="Gradient steps per cell.  [default: the recipe's, 1M]"),
    eval_every: int | None = typer.Option(
        None, "--eval-every", help="Validation period in gradient steps.  [default: the recipe's]"
    ),
    seeds: int | None = typer.Option(None, "--seeds", help="Training seeds per encoder.  [default: 3]"),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seeds the shared evaluation starts; training seeds are seed+k.  [default: 0]"
    ),
    num_episodes: int | None = typer.Option(
        None, "--num-episodes", help="Evaluation episodes per cell.  [default: 200]"
    ),
    num_envs: int | None = typer.Option(None, "--num-envs", help="Arenas stepped in evaluation.  [default: 10]"),
    expert: str | None = typer.Option(
        None, "--expert", help="Expert on the same starts: dataset, ppo or pursuit.  [default: dataset]"
    ),
    expert_checkpoint: Path | None = typer.Option(
        None, "--expert-checkpoint", help="PPO checkpoint to pair with.  [default: the shipped one]"
    ),
    encoder_model_path: list[str] | None = typer.Option(
        None, "--encoder-model-path", help="NAME=DIR: local weights of a real encoder for evaluation."
    ),
    probes: bool | None = typer.Option(
        None, "--probes/--no-probes", help="Run the linear and kNN probes.  [default: probes]"
    ),
    probe_mlp: bool | None = typer.Option(None, "--probe-mlp", help="Also fit the MLP control of the linear probes."),
    probe_max_train_rows: int | None = typer.Option(
        None, "--probe-max-train-rows", help="Row cap of the linear probes.  [default: 5000]"
    ),
    knn_k: int | None = typer.Option(None, "--knn-k", help="Neighbours of the kNN probe.  [default: 8]"),
    alpha: float | None = typer.Option(None, "--alpha", help="Family-wise level of the paired tests.  [default: 0.05]"),
    device: str | None = typer.Option(None, "--device", help=f"Torch device: {DEVICE_HELP}.  [default: auto]"),
    jobs: int | None = typer.Option(None, "--jobs", help="Cells in N processes, one thread each.  [default: 1]"),
    ray: str | None = typer.Option(
        None,
        "--ray",
        metavar="auto|local|HOST:PORT",
        help="One Ray task per cell (auto: the cluster this machine joined with `ray start`; local: a private "
        "Ray on this machine; HOST:PORT: that head node). --out and the files on a filesystem every node mounts.",
    ),
    cpus_per_cell: float | None = typer.Option(
        None, "--cpus-per-cell", help="With --ray: CPUs (torch and BLAS threads) per cell.  [default: 1]"
    ),
    gpus_per_cell: float | None = typer.Option(
        None, "--gpus-per-cell", help="With --ray: GPUs per cell; 0.25 puts four cells on one GPU.  [default: 0]"
    ),
    resume: bool = typer.Option(False, "--resume", help="Finish the study in --out; finished cells are kept."),
    config: Path | None = typer.Option(None, "--config", help="TOML file of study settings; flags override it."),
    as_json: bool = JSON_OUT,
) -> None:
    """Train BC per encoder and seed, evaluate every cell on the same starts, test the differences, probe."""
    from vlnav_data.study import run_study

    flags = {
        "datasets": tuple(datasets) if datasets else None,
        "out_dir": out,
        "encoders": tuple(encoder) if encoder else None,
        "features": tuple(features) if features else None,
        "recipes": tuple(recipe) if recipe else None,
        "num_steps": steps,
        "eval_every_steps": eval_every,
        "seeds": seeds,
        "seed": seed,
        "num_episodes": num_episodes,
        "num_envs": num_envs,
        "expert": expert,
        "expert_checkpoint": expert_checkpoint,
        "probes": probes,
        "probe_mlp": probe_mlp,
        "probe_max_train_rows": probe_max_train_rows,
        "knn_k": knn_k,
        "alpha": alpha,
        "device": device,
        "jobs": jobs,
        "executor": "ray" if ray is not None else None,
        "ray_address": ray,
        "cpus_per_cell": cpus_per_cell,
        "gpus_per_cell": gpus_per_cell,
        "resume": True if resume else None,
    }
    if encoder_model_path:
        flags["encoder_model_paths"] = run_command(_parse_model_paths, encoder_model_path)
    cfg = run_command(_config, config, flags)
    if cfg.resume and overwrite:
        run_command(_refuse, "--resume finishes the study in --out and --overwrite replaces it; pass one")
    if not overwrite:  # the study checks its directory itself (and says how to --resume)
        result = run_command(run_study, cfg, progress=None if as_json else _print_event)
    else:
        with writing_to(Path(cfg.out_dir), kind="dir", overwrite=overwrite, inputs=list(cfg.datasets)):
            result = run_command(run_study, cfg, progress=None if as_json else _print_event)
    _summary(result, as_json)


def _refuse(message: str) -> None:
    from vlnav_data.errors import ConfigError

    raise ConfigError(message)


@app.command()
def report(
    study_dir: Path = typer.Argument(..., help="A study directory written by `vlnav-study run`."),
    as_json: bool = JSON_OUT,
) -> None:
    """Re-analyse the finished cells of a study and rewrite report.md, result.json and figures (runs no cell)."""
    from vlnav_data.study import report_study

    result = run_command(report_study, study_dir)
    if as_json:
        sys.stdout.write(Path(result.result_json).read_text())
        return
    payload = json.loads(Path(result.result_json).read_text())
    progress = payload["progress"]
    typer.echo(f"{progress['finished']} of {progress['total']} cells finished")
    if result.ranking:
        typer.echo("ranking by pooled success: " + " > ".join(result.ranking))
    typer.echo(f"wrote {result.report} and {result.result_json}")


if __name__ == "__main__":
    main()
