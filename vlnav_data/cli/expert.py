"""`vlnav-expert`: Train and evaluate the privileged expert."""

from __future__ import annotations

from pathlib import Path

import typer

from vlnav_data.cli._app import make_app
from vlnav_data.cli._common import (
    DEVICE,
    DEVICE_HELP,
    JSON_OUT,
    OVERWRITE,
    run_config,
    seed_option,
)

app = make_app("vlnav-expert", "Train and evaluate the privileged expert.")
main = app
"""Console-script entry point (a Typer app is callable)."""


@app.command()
def train(
    out_dir: Path = typer.Option(..., "--out", help="Output directory: expert.pt, sb3_model.zip, result.json."),
    preset: str = typer.Option(
        "text2nav",
        "--preset",
        help="Arena preset: text2nav, text2nav-velocity, text2nav-random, text2nav-mujoco, text2nav-newton (extras) "
        "or text2nav-isaaclab (Python 3.12: scripts/isaaclab-venv.sh).",
    ),
    seed: int = seed_option("Seeds the arena, PPO and torch."),
    total_steps: int = typer.Option(800_000, "--total-steps", help="Env steps to train (summed over arenas)."),
    num_envs: int = typer.Option(256, "--num-envs", help="Arenas stepped in one batch."),
    action_mapping: str | None = typer.Option(
        None, "--action-mapping", help="bang_bang or velocity.  [default: the preset's]"
    ),
    reward: str = typer.Option(
        "fixed", "--reward", help="fixed (2-D heading term) or published (the original, no-op heading term)."
    ),
    eval_episodes: int = typer.Option(200, "--eval-episodes", help="Monitor episodes per evaluation (0 = off)."),
    stop_at_success_rate: float | None = typer.Option(
        None,
        "--stop-at-success-rate",
        help="Stop once the monitor reaches this success rate (and step ratio).  [default: off, train all steps]",
    ),
    device: str = typer.Option(
        "cpu",
        "--device",
        help=f"Torch device of PPO's networks: {DEVICE_HELP}. The default is cpu, not auto as elsewhere: "
        "stable-baselines3 runs a small MLP policy fastest on the CPU, and bit-reproducibly.",
    ),
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Train a PPO expert (stable-baselines3) on the privileged state of a state-only arena."""
    from vlnav_data.expert import TrainConfig, train_expert
    from vlnav_data.expert.train import check_finite_losses

    result = run_config(train_expert, TrainConfig, locals(), out=out_dir)
    if not as_json:
        typer.echo(
            f"trained {result.env_steps} env steps in {result.wall_time_s:.1f} s "
            f"({result.env_steps_per_s:.0f} env steps/s); final losses finite: {check_finite_losses(result.losses)}"
        )
        m = result.final_monitor
        if m is not None:
            typer.echo(
                f"monitor: success {m['expert']['success']['rate']:.1%} of {m['expert']['success']['trials']} "
                f"episodes, mean env steps {_fmt(m['expert']['mean_env_steps_successes'])} "
                f"(pursuit {_fmt(m['pursuit']['mean_env_steps_successes'])}), "
                f"paired ratio {_fmt(m['paired_step_ratio']['ratio_of_means'])}"
            )
        typer.echo(f"checkpoint: {result.checkpoint}")
        typer.echo(f"result: {out_dir / 'result.json'}")


@app.command("eval")
def eval_(
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="expert.pt or a train output directory.  [default: the shipped text2nav expert]",
    ),
    num_episodes: int = typer.Option(1000, "--num-episodes", help="Seeded episodes per policy."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Directory for result.json.  [default: print only, write nothing]"
    ),
    seed: int = seed_option("Selects the set of episode seeds."),
    preset: str | None = typer.Option(None, "--preset", help="Arena preset.  [default: the checkpoint's]"),
    num_envs: int = typer.Option(64, "--num-envs", help="Arenas stepped in one batch."),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Evaluate an expert and the pursuit controller on the same seeded start states."""
    from vlnav_data.expert import EvalConfig, evaluate_expert

    result = run_config(evaluate_expert, EvalConfig, locals(), out=out_dir, inputs=[checkpoint])
    if not as_json:
        for name in ("expert", "pursuit"):
            summary = getattr(result, name)
            s = summary.success
            typer.echo(
                f"{name:8s} success {s['rate']:.1%} [{s['low']:.1%}, {s['high']:.1%}] of {s['trials']}, "
                f"mean env steps over successes {_fmt(summary.mean_env_steps_successes)}, "
                f"causes {summary.termination_causes}"
            )
        ratio = result.paired_step_ratio
        typer.echo(
            f"steps ratio expert/pursuit (paired, {ratio.num_pairs} episodes): {_fmt(ratio.ratio_of_means)}; "
            f"published expert: 100% success, 113.97 mean env steps"
        )
        if out_dir is not None:
            typer.echo(f"result: {out_dir / 'result.json'}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
