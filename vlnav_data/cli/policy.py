"""`vlnav-policy`: behaviour cloning on frozen embeddings: train, eval, eval-offline, dagger, diagnose."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from vlnav_data.cli._app import make_app
from vlnav_data.cli._common import (
    DEVICE,
    JSON_OUT,
    OVERWRITE,
    RESOLVE_DEVICE,
    emit_result,
    fail,
    resolve_device,
    run_command,
    run_config,
    seed_option,
    writing_to,
)
from vlnav_data.eval_summary import format_paired_ratio

app = make_app("vlnav-policy", "Behaviour cloning on frozen embeddings: train, eval, eval-offline, dagger, diagnose.")


def main() -> None:
    """Console-script entry point."""
    app()


DATASET = typer.Argument(..., help="A vlnav-demos .h5 file (its train/valid masks split the data).")
ENCODER_IN_FILE = typer.Option(
    None, "--encoder", help="Encoder whose embeddings to use.  [default: the file's only encoder]"
)
FEATURES = typer.Option("joint", "--features", help="Embedding fed to the policy: joint, image or text.")
TRAIN_FEATURES = typer.Option(
    "joint",
    "--features",
    help="What the policy reads: joint, image or text (one frozen vector per step), history:K (the last K joint "
    "vectors; history:K:image|text for another), or pixels (the stored frames, a conv net trained end to end, "
    "conditioned on --encoder's text embedding).",
)
RECIPE = typer.Option(
    "paper", "--recipe", help="Named hyper-parameters; paper: MLP 256-256, Adam 1e-3, batch 100, 1,000,000 steps."
)
TRAIN_RECIPE = typer.Option(
    None,
    "--recipe",
    help="Named hyper-parameters: paper (MLP 256-256, Adam 1e-3, batch 100, 1,000,000 steps, raw inputs), "
    "paper-std (the same, inputs standardised), pixels (conv policy, text FiLM-conditioned: Adam 3e-4 "
    "cosine, batch 128, 6,000 steps, BCE on the wheel signs, checkpoint chosen by success on 10 validation starts), "
    "pixels-concat (the same, text concatenated after the trunk, constant rate).  [default: pixels for --features "
    "pixels, else paper]",
)
EXPERT = typer.Option(
    "dataset",
    "--expert",
    help="Expert run on the same starts: dataset (the one that labelled the file), ppo, pursuit or none.",
)
EXPERT_CHECKPOINT = typer.Option(
    None, "--expert-checkpoint", help="PPO checkpoint for --expert ppo/dataset.  [default: the dataset's, else shipped]"
)
ENCODER_MODEL_PATH = typer.Option(
    None,
    "--encoder-model-path",
    help="Local directory of the real encoder's weights (must hash to the recorded content hash).  "
    "[default: the Hugging Face cache]",
)
ENCODER_DTYPE = typer.Option(
    None, "--encoder-dtype", help="fp32, bf16 or auto for the live encoder.  [default: the dtype the file recorded]"
)
TRUST_REMOTE_CODE = typer.Option(
    False, "--trust-remote-code", help="Let an hf: encoder recorded with remote code run it again."
)
NUM_ENVS = typer.Option(10, "--num-envs", help="Arenas stepped together.")


def _print_point(point) -> None:  # noqa: ANN001 - CurvePoint
    rollouts = "" if point.valid_successes is None else f"  valid starts solved {point.valid_successes}"
    typer.echo(
        f"step {point.step:>8d}  train loss {point.train_loss:.5f}  valid loss {point.valid_loss:.5f}"
        f"{rollouts}  {point.elapsed_s:7.1f} s",
        err=True,
    )


@app.command()
def train(
    dataset: Path = DATASET,
    out_dir: Path = typer.Option(..., "--out", help="Model directory to write (model.pt, config.json, curves)."),
    encoder: str | None = ENCODER_IN_FILE,
    features: str = TRAIN_FEATURES,
    recipe: str | None = TRAIN_RECIPE,
    num_steps: int | None = typer.Option(
        None,
        "--steps",
        help="Gradient steps (the best validation checkpoint is kept). The paper recipe's 1,000,000 take hours "
        "on a CPU; 20,000 take about a minute.  [default: the recipe's]",
    ),
    eval_every_steps: int | None = typer.Option(
        None, "--eval-every", help="Validation period in steps.  [default: the recipe's, at most --steps/10]"
    ),
    seed: int = seed_option("Seeds the initial weights and the batch order."),
    num_threads: int = typer.Option(1, "--threads", help="Torch CPU threads for the optimisation."),
    frame_cache_mib: int = typer.Option(
        1024, "--frame-cache-mib", help="--features pixels: MiB of frames per split held in memory at once."
    ),
    standardize_inputs: bool | None = typer.Option(
        None,
        "--standardize/--no-standardize",
        help="Standardise the input per dimension with the training split's mean and std (stored with the "
        "policy, applied at evaluation).  [default: the recipe's: off for paper, on for paper-std and pixels]",
    ),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Behaviour cloning on a dataset's frozen embeddings, their history, or its frames (train/valid masks)."""
    from vlnav_data.policy.train import TrainConfig, train_policy

    run = partial(train_policy, progress=None if as_json else _print_point)
    result = run_config(run, TrainConfig, locals(), out=out_dir, inputs=[dataset], convert=RESOLVE_DEVICE)
    if not as_json:
        chosen = (
            f"{result.best_valid_successes} validation starts solved"
            if result.selected_by == "closed_loop"
            else f"best valid loss {result.best_valid_loss:.5f}"
        )
        typer.echo(
            f"trained {result.encoder}/{result.features} BC ({result.input_dim}-D input"
            f"{', standardised' if result.standardized_inputs else ''}) for {result.num_steps} steps in "
            f"{result.train_time_s:.1f} s ({result.samples_per_s:.0f} samples/s); kept step {result.best_step} "
            f"({chosen}); wrote {out_dir}"
        )


def _print_eval(result, out: Path) -> None:  # noqa: ANN001 - EvalResult
    s = result.student.success
    line = (
        f"{result.policy} ({result.encoder}/{result.features}): success {s['successes']}/{s['trials']} "
        f"= {100 * s['rate']:.1f}% [95% CI {100 * s['low']:.1f}-{100 * s['high']:.1f}], "
        f"{_num(result.student.mean_env_steps_successes, '.1f')} env steps over successes, "
        f"SPL {result.student.spl:.3f}"
    )
    typer.echo(line)
    if result.expert is not None and result.paired_step_ratio is not None:
        e = result.expert.success
        typer.echo(
            f"expert ({result.expert_name}) on the same starts: {e['successes']}/{e['trials']}, "
            f"{_num(result.expert.mean_env_steps_successes, '.1f')} env steps; "
            f"{format_paired_ratio(result.paired_step_ratio)}"
        )
    if result.encoder_dtype_override is not None:
        typer.echo(
            f"encoder computed in {result.encoder_dtype} (--encoder-dtype {result.encoder_dtype_override}; the "
            f"training file recorded {result.encoder_dtype_recorded or 'no dtype'})"
        )
    if result.compiled:
        typer.echo(
            f"compiled {', '.join(result.compiled)} in {result.compile_s:.1f} s before the student ran "
            f"({result.student_env_steps_per_s:.0f} env steps/s after)"
        )
    typer.echo(
        f"termination causes: {result.student.termination_causes} (arena {result.arena}, trained in "
        f"{result.trained_arena}); wrote {out}"
    )


@app.command("eval")
def eval_(
    model_dir: Path = typer.Argument(..., help="Model directory written by `vlnav-policy train`."),
    out_dir: Path = typer.Option(..., "--out", help="Output directory (result.json, episodes.npz, eval_meta.json)."),
    num_episodes: int = typer.Option(100, "--num-episodes", help="Evaluation episodes from seeded starts."),
    num_envs: int = NUM_ENVS,
    seed: int = seed_option("Seeds the evaluation starts (the expert runs from the same starts)."),
    policy: str = typer.Option("bc", "--policy", help="bc (the trained MLP) or knn (nearest neighbours, --index)."),
    index_dir: Path | None = typer.Option(None, "--index", help="`vlnav-probe knn` output directory (--policy knn)."),
    knn_k: int | None = typer.Option(None, "--k", help="Neighbours for --policy knn.  [default: the index's]"),
    encoder: str | None = typer.Option(None, "--encoder", help="A check: must name the model's encoder."),
    encoder_model_path: str | None = ENCODER_MODEL_PATH,
    encoder_dtype: str | None = ENCODER_DTYPE,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    expert: str = EXPERT,
    expert_checkpoint: Path | None = EXPERT_CHECKPOINT,
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="Evaluate in this arena (e.g. text2nav-mujoco) from the same starts.  [default: the model's arena]",
    ),
    compile: bool = typer.Option(
        False,
        "--compile",
        help="torch.compile the renderer and a SigLIP/CLIP/hf: encoder first (compile time reported apart as "
        "compile_s).",
    ),
    resize_frames: bool = typer.Option(
        False,
        "--resize-frames",
        help="A pixels policy in an arena whose camera size differs from its training frames: resize the live "
        "frames (refused without this flag).",
    ),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Closed-loop evaluation with the encoder applied online, paired with the expert on the same starts."""
    from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy

    inputs = [model_dir, index_dir, expert_checkpoint]
    result = run_config(evaluate_policy, EvalConfig, locals(), out=out_dir, inputs=inputs, convert=RESOLVE_DEVICE)
    if not as_json:
        _print_eval(result, out_dir)


def _print_offline(result, out: Path) -> None:  # noqa: ANN001 - OfflineEvalResult
    typer.echo(
        f"bc ({result.encoder}/{result.features}) on {result.num_steps} steps of {result.num_episodes} held-out "
        f"episodes of {result.dataset} (95% intervals over episodes"
        f"{'; ' + result.interval_note if result.interval_note else ''})"
    )
    typer.echo(f"{'':<16} {'student R2':>24} {'kNN R2':>24} {'train-mean R2':>24} {'student MSE':>26}")
    rows = [("all", result.student, result.knn, result.train_mean)]
    rows += [
        (d["name"], d, k, m)
        for d, k, m in zip(
            result.student["per_dimension"], result.knn["per_dimension"], result.train_mean["per_dimension"],
            strict=True,
        )
    ]  # fmt: skip
    for name, s_, k_, m_ in rows:
        typer.echo(f"{name:<16} {_ci(s_['r2']):>24} {_ci(k_['r2']):>24} {_ci(m_['r2']):>24} {_ci(s_['mse']):>26}")
    d = result.student_minus_knn
    typer.echo(f"student - kNN: R2 {_ci(d['r2'])}, MSE {_ci(d['mse'])}; wrote {out}")


def _ci(summary: dict) -> str:
    """``value [low, high]``, or the value alone, or ``n/a`` (an undefined statistic is never printed as nan)."""
    if summary["value"] is None:
        return "n/a"
    if summary["low"] is None:
        return f"{summary['value']:.3f}"
    return f"{summary['value']:.3f} [{summary['low']:.3f}, {summary['high']:.3f}]"


@app.command("eval-offline")
def eval_offline(
    model_dir: Path = typer.Argument(..., help="Model directory written by `vlnav-policy train`."),
    out_dir: Path = typer.Option(
        ..., "--out", help="Output directory (result.json, offline_episodes.npz, eval_meta.json)."
    ),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="File whose held-out episodes are scored.  [default: the one the model was trained on]"
    ),
    split: str = typer.Option("valid", "--split", help="Held-out split scored (the baselines fit on train)."),
    knn_k: int = typer.Option(8, "--k", help="Neighbours of the kNN baseline."),
    resamples: int = typer.Option(2000, "--resamples", help="Bootstrap resamples of the held-out episodes."),
    seed: int = seed_option("Seeds the bootstrap."),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Offline evaluation (no simulator): R² and MSE of the policy's actions on held-out episodes per dimension,
    beside the train-mean and kNN baselines, with 95% bootstrap intervals over episodes."""
    from vlnav_data.policy.offline import OfflineEvalConfig, evaluate_offline

    inputs = [model_dir, dataset]
    result = run_config(
        evaluate_offline, OfflineEvalConfig, locals(), out=out_dir, inputs=inputs, convert=RESOLVE_DEVICE
    )
    if not as_json:
        _print_offline(result, out_dir)


@app.command()
def dagger(
    dataset: Path = DATASET,
    out_dir: Path = typer.Option(..., "--out", help="Output directory (iter_<k>/ model directories, result.json)."),
    iterations: int = typer.Option(3, "--iterations", help="DAgger iterations after the initial BC."),
    init_model_dir: Path | None = typer.Option(
        None, "--init", help="Start from this model directory instead of training.  [default: train one]"
    ),
    encoder: str | None = ENCODER_IN_FILE,
    features: str = FEATURES,
    recipe: str = RECIPE,
    num_steps: int | None = typer.Option(
        None, "--steps", help="Gradient steps of the initial BC.  [default: the recipe's, 1,000,000]"
    ),
    steps_per_iteration: int | None = typer.Option(
        None, "--steps-per-iteration", help="Gradient steps after each aggregation.  [default: --steps]"
    ),
    episodes_per_iteration: int = typer.Option(
        50, "--episodes-per-iteration", help="Student episodes collected and labelled per iteration."
    ),
    eval_episodes: int = typer.Option(100, "--eval-episodes", help="Evaluation episodes per iteration."),
    num_envs: int = NUM_ENVS,
    expert: str = typer.Option(
        "dataset", "--expert", help="Expert that labels the visited states: dataset, ppo or pursuit."
    ),
    expert_checkpoint: Path | None = EXPERT_CHECKPOINT,
    encoder_model_path: str | None = ENCODER_MODEL_PATH,
    encoder_dtype: str | None = ENCODER_DTYPE,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    seed: int = seed_option("Seeds training, collection and evaluation starts."),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """DAgger: student rollouts labelled by the expert, aggregated with the data, retrained; success per iteration."""
    from vlnav_data.policy.dagger import DaggerConfig, run_dagger

    inputs = [dataset, init_model_dir, expert_checkpoint]
    result = run_config(run_dagger, DaggerConfig, locals(), out=out_dir, inputs=inputs, convert=RESOLVE_DEVICE)
    if not as_json:
        for row in result.iterations:
            s = row["success"]
            typer.echo(
                f"iteration {row['iteration']}: {row['aggregated_rows']} rows, success {s['successes']}/{s['trials']} "
                f"= {100 * s['rate']:.1f}% [{100 * s['low']:.1f}-{100 * s['high']:.1f}], "
                f"{_num(row['mean_env_steps_successes'], '.1f')} env steps over successes"
            )
        typer.echo(f"wrote {out_dir}")


def _diagnose(eval_dir: Path, out: Path, num_gifs: int, as_json: bool, compare: Path | None = None) -> None:
    from vlnav_data.policy.diagnose import DiagnoseConfig, diagnose_eval

    config = DiagnoseConfig(eval_dir=eval_dir, out_dir=out, num_gifs=num_gifs, compare_dir=compare)
    result = diagnose_eval(config)
    emit_result(result, out, as_json)
    if not as_json:
        classes = {k: v for k, v in result.student["classes"].items() if v}
        typer.echo(f"classes: {classes}; behaviours: {result.student['behaviours']}")
        if result.comparison is not None:
            c = result.comparison["student"]
            typer.echo(
                f"vs {result.comparison['other']}: success {c['success_other']} -> {c['success_this']} of "
                f"{c['num_paired']} (kept {c['kept']}, gained {c['gained']}, lost {c['lost']}); changed causes "
                f"{c['cause_changes']}"
            )
        typer.echo(f"wrote {out / 'report.md'}")


@app.command()
def diagnose(
    eval_dir: Path = typer.Argument(..., help="Directory written by `vlnav-policy eval`."),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory (report.md, plots, GIFs).  [default: EVAL_DIR/diagnosis]"
    ),
    num_gifs: int = typer.Option(4, "--num-gifs", help="First-person GIFs to render (failures first)."),
    compare: Path | None = typer.Option(
        None, "--compare", help="Another eval directory of the same starts (e.g. the other simulator): what changed."
    ),
    rerun: Path | None = typer.Option(
        None, "--rerun", help="Also write a Rerun recording (.rrd) of the failed episodes (the viz extra)."
    ),
    episodes: str | None = typer.Option(
        None, "--episodes", help="With --rerun: episodes to record, e.g. 0:10 or 2,5.  [default: the failures]"
    ),
    index: Path | None = typer.Option(
        None, "--index", help="With --rerun on a kNN evaluation: the `vlnav-probe knn` directory it ran with."
    ),
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Classify failures and behaviours; top-down plots, first-person GIFs and a Markdown report."""
    out = out if out is not None else eval_dir / "diagnosis"
    if rerun is None and (episodes is not None or index is not None):
        fail("--episodes and --index choose what --rerun records; add --rerun REC.rrd")
    with (
        writing_to(out, kind="dir", overwrite=overwrite, inputs=[eval_dir, compare]),
        writing_to(rerun, kind="file", overwrite=overwrite, inputs=[eval_dir], option="--rerun", example="f.rrd"),
    ):
        if rerun is not None:  # first: a refused recording leaves the diagnosis unwritten too
            run_command(_record_eval, eval_dir, rerun, episodes, index, resolve_device(device))
        run_command(_diagnose, eval_dir, out, num_gifs, as_json, compare)


def _record_eval(eval_dir: Path, rerun: Path, episodes: str | None, index: Path | None, device: str) -> None:
    from vlnav_data.viz import EvalRecordingConfig, record_eval

    config = EvalRecordingConfig(eval_dir=eval_dir, out=rerun, episodes=episodes, index_dir=index, device=device)
    result = record_eval(config)
    emit_result(result, rerun, kind="file")
    typer.echo(f"wrote {rerun} (episodes {result.episodes}: {', '.join(result.labels)})", err=True)


def _num(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``; ``n/a`` for an undefined statistic (None)."""
    return "n/a" if value is None else format(value, spec)
