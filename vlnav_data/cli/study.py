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
from vlnav_data.cli._common import DEVICE_HELP, JSON_OUT, OVERWRITE, command_config, run_command, writing_to

app = make_app(
    "vlnav-study", "Compare encoders: multi-seed behaviour cloning on shared starts, paired tests, probes side by side."
)
main = app
"""Console-script entry point (a Typer app is callable)."""


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
        None, "--features", help="Feature set: joint, image, text, pixels or history:K; repeat.  [default: joint]"
    ),
    recipe: list[str] | None = typer.Option(
        None,
        "--recipe",
        help="Named BC recipe, or default: each feature set's own (paper; pixels for --features pixels); repeat.  "
        "[default: default]",
    ),
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


@app.command()
def plan(
    pilot_dir: Path | None = typer.Argument(
        None,
        metavar="STUDY_DIR",
        help="A pilot study directory (its result.json gives success, run spread, runs, starts, pairs).",
    ),
    difference_pts: float = typer.Option(
        ..., "--difference-pts", help="Smallest true difference in success worth detecting, in points."
    ),
    success_pct: float | None = typer.Option(
        None, "--success-pct", help="Mean success of the arms, in %.  [default: the pilot's]"
    ),
    run_spread_pts: float | None = typer.Option(
        None, "--run-spread-pts", help="Sd of a run's success across training runs, in points.  [default: the pilot's]"
    ),
    runs: int | None = typer.Option(
        None, "--runs", help="Runs per arm of the design to assess.  [default: the pilot's]"
    ),
    num_starts: int | None = typer.Option(
        None, "--starts", help="Evaluation starts of that design.  [default: the pilot's, 200]"
    ),
    comparisons: int | None = typer.Option(
        None, "--comparisons", help="Pairs in the Holm family.  [default: the pilot's pairs, else 1]"
    ),
    plan_starts: list[int] | None = typer.Option(
        None, "--plan-starts", help="Starts counts to plan for; repeat.  [default: half, once and twice --starts]"
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Family-wise level."),
    target_power: float = typer.Option(0.8, "--power", help="Target power."),
    max_runs: int = typer.Option(50, "--max-runs", help="Most runs per arm searched."),
    num_studies: int = typer.Option(400, "--studies", help="Simulated studies per design."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the simulation."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Runs x starts a target difference needs for the target power (simulated), and the pilot's own power."""
    from vlnav_data.study.power_plan import PowerPlanConfig, plan_power

    cfg = run_command(command_config, PowerPlanConfig, locals(), starts_options=tuple(plan_starts or ()))
    result = run_command(plan_power, cfg)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
        return
    src = result.sources
    typer.echo(
        f"arms at {result.success_pct - result.difference_pts / 2:.1f}% and "
        f"{result.success_pct + result.difference_pts / 2:.1f}% success (difference {result.difference_pts:g} "
        f"points; mean from {src['success_pct']}), run spread {result.run_spread_pts:.1f} points "
        f"(from {src['run_spread_pts']})"
    )
    typer.echo(
        f"test: compare_arms (training runs as the unit) at alpha {result.alpha:g} / {result.comparisons} "
        f"comparison{'s' if result.comparisons != 1 else ''} = {result.alpha_per_test:.2g} per pair; "
        f"{result.num_studies} simulated studies per design"
    )
    if result.design_runs is not None:
        typer.echo(
            f"power of the {'pilot' if src['runs'] == 'pilot' else 'given'} design ({result.design_runs} runs per arm "
            f"x {result.design_starts} starts): {result.design_power:.2f} ± {result.design_mc_se:.2f}"
        )
    typer.echo(f"runs per arm for {100 * result.target_power:g}% power:")
    for row in result.rows:
        need = (
            f"{row.runs_needed} runs (power {row.power:.2f} ± {row.mc_se:.2f})"
            if row.runs_needed is not None
            else f"more than {result.max_runs} runs (power {row.power:.2f} at {result.max_runs})"
        )
        typer.echo(f"  {row.num_starts} starts: {need}")


if __name__ == "__main__":
    main()
