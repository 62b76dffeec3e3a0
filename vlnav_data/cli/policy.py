"""`vlnav-policy`: Behaviour cloning on frozen embeddings: train, eval, dagger, diagnose."""

from __future__ import annotations

from pathlib import Path

import typer

from vlnav_data.cli._common import emit_result, resolve_device, run_command

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Behaviour cloning on frozen embeddings: train, eval, dagger, diagnose.",
)


def main() -> None:
    """Console-script entry point."""
    app()


def _train(
    dataset: Path,
    out: Path,
    encoder: str | None,
    features: str,
    recipe: str,
    steps: int | None,
    eval_every: int | None,
    seed: int,
    device: str,
    as_json: bool,
) -> None:
    from vlnav_data.policy.train import TrainConfig, train_policy

    config = TrainConfig(
        dataset=dataset,
        out_dir=out,
        encoder=encoder,
        features=features,
        recipe=recipe,
        num_steps=steps,
        eval_every_steps=eval_every,
        seed=seed,
        device=resolve_device(device),
    )

    def progress(point) -> None:  # noqa: ANN001 - CurvePoint
        if not as_json:
            typer.echo(
                f"step {point.step:>8d}  train MSE {point.train_loss:.5f}  valid MSE {point.valid_loss:.5f}  "
                f"{point.elapsed_s:7.1f} s",
                err=True,
            )

    result = train_policy(config, progress=progress)
    emit_result(result, out, as_json)
    if not as_json:
        typer.echo(
            f"trained {result.encoder}/{result.features} BC ({result.input_dim}-D) for {result.num_steps} steps "
            f"in {result.train_time_s:.1f} s; best valid MSE {result.best_valid_loss:.5f} at step "
            f"{result.best_step}; wrote {out}"
        )


@app.command()
def train(
    dataset: Path = typer.Argument(..., help="vlnav-demos HDF5 file."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    encoder: str | None = typer.Option(None, "--encoder", help="Encoder in the file (default: its only one)."),
    features: str = typer.Option("joint", "--features", help="joint | image | text."),
    recipe: str = typer.Option("paper", "--recipe", help="Named hyper-parameters (paper: 256-256 MLP, 1M steps)."),
    steps: int | None = typer.Option(None, "--steps", help="Gradient steps (default: the recipe's, 1M)."),
    eval_every: int | None = typer.Option(None, "--eval-every", help="Validation period in steps."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print result.json to stdout."),
) -> None:
    """Behaviour cloning on a dataset's frozen embeddings (train/valid from the file's masks)."""
    run_command(_train, dataset, out, encoder, features, recipe, steps, eval_every, seed, device, as_json)
