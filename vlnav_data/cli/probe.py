"""`vlnav-probe`: Probe what frozen embeddings contain: linear, spatial, umap, knn."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Optional

import typer

from vlnav_data.cli._app import make_app
from vlnav_data.cli._common import (
    DEVICE,
    JSON_OUT,
    OVERWRITE,
    progress_printer,
    run_command,
    run_config,
    seed_option,
    writing_to,
)

app = make_app("vlnav-probe", "Probe what frozen embeddings contain: linear, spatial, umap, knn.")
main = app
"""Console-script entry point (a Typer app is callable)."""


FILE = typer.Argument(..., metavar="FILE", help="A vlnav-demos dataset file (.h5).")
OUT = typer.Option(..., "--out", help="Directory for result.json, report.md and figures.")
ENCODER = typer.Option(None, "--encoder", help="Encoder whose embeddings to probe.  [default: the file's only encoder]")
FEATURES = typer.Option(
    "joint", "--features", help="Embedding to probe: joint, image or text (the instruction's text embedding)."
)
SEED = seed_option("Seed of every random choice (subsampling, shuffles, models).")
JSON = JSON_OUT


def _finish(result: object, out_dir: Path, as_json: bool, lines: list[str]) -> None:
    if not as_json:
        for line in lines:
            typer.echo(line)
        typer.echo(f"wrote {out_dir / 'result.json'} and {out_dir / 'report.md'}")


@app.command()
def linear(
    path: Path = FILE,
    out_dir: Path = OUT,
    encoder: Optional[str] = ENCODER,  # noqa: UP045 (typer needs Optional on py3.10)
    features: str = FEATURES,
    target: Optional[list[str]] = typer.Option(  # noqa: UP045
        None,
        "--target",
        help="Probe only these (repeatable): action, bearing, distance, colour, spatial_word (arena files), state, "
        "task, progress (any file).  [default: the first five for an arena file, action, state, task and progress "
        "for an imported one]",
    ),
    max_train_rows: int = typer.Option(20_000, "--max-train-rows", help="Cap on train rows (seeded subsample)."),
    mlp: bool = typer.Option(True, "--mlp/--no-mlp", help="Also fit the BC-sized MLP (capacity control)."),
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Ridge/logistic probes from embeddings to action, bearing, distance, colour and spatial word (or, on an
    imported file without an arena: each action and state dimension, the task and the episode's progress).

    Each stage is reported on stderr as it starts; on two CPU cores a 150-episode build with 1152-d
    features takes minutes (most of it the MLP capacity control; --no-mlp skips it).
    """
    from vlnav_data.probes.linear import LinearProbeConfig, run_linear_probe

    run = partial(run_linear_probe, progress=None if as_json else progress_printer("probe linear"))
    r = run_config(run, LinearProbeConfig, locals(), out=out_dir, inputs=[path], targets=tuple(target or ()) or None)
    lines = [f"{r.encoder} {r.features} (dim {r.dim}): {r.num_train} train rows, {r.num_valid} valid rows"]
    lines.append(f"{'target':<13} {'metric':<9} {'linear':>8} {'MLP':>8} {'shuffled':>9} {'baseline':>9}")
    for s in r.scores:
        mlp_v = f"{s.mlp:8.3f}" if s.mlp is not None else f"{'-':>8}"
        lines.append(f"{s.target:<13} {s.metric:<9} {s.probe:8.3f} {mlp_v} {s.shuffled:9.3f} {s.baseline:9.3f}")
    from vlnav_data.probes.linear import per_dimension_rows

    for target, name, r2, mlp_r2, shuffled, base, _ in per_dimension_rows(r.scores):
        label = f"  {target}[{name}]"
        lines.append(f"{label:<13} {'r2':<9} {_r2(r2, 8)} {_r2(mlp_r2, 8)} {_r2(shuffled, 9)} {_r2(base, 9)}")
    lines += [f"skipped {k}: {v}" for k, v in r.skipped.items()]
    _finish(r, out_dir, as_json, lines)


@app.command()
def spatial(
    path: Path = FILE,
    out_dir: Path = OUT,
    encoder: Optional[str] = ENCODER,  # noqa: UP045
    features: str = FEATURES,
    num_pairs: int = typer.Option(400_000, "--num-pairs", help="Random frame pairs (published: 400,000)."),
    controlled: bool = typer.Option(
        True, "--controlled/--no-controlled", help="Also render and embed bearing-only / distance-only views."
    ),
    preset: Optional[str] = typer.Option(  # noqa: UP045
        None, "--preset", help="Arena preset to render.  [default: the file's recorded arena]"
    ),
    positions_per_colour: int = typer.Option(6, "--positions-per-colour", help="Robot positions per target."),
    bearing_steps: int = typer.Option(11, "--bearing-steps", help="Bearings in the sweep (odd)."),
    distance_steps: int = typer.Option(7, "--distance-steps", help="Distances in the sweep."),
    model_path: Optional[Path] = typer.Option(  # noqa: UP045
        None,
        "--model-path",
        help="Local directory of the real encoder's weights (must hash to the recorded content hash).  "
        "[default: Hugging Face cache]",
    ),
    encoder_dtype: Optional[str] = typer.Option(  # noqa: UP045
        None, "--encoder-dtype", help="fp32, bf16 or auto.  [default: the dtype the file recorded]"
    ),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Let an hf: encoder recorded with remote code run it again."
    ),
    device: str = DEVICE,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Same- vs different-position cosine distances (published protocol) and controlled renders."""
    from vlnav_data.probes.spatial import SpatialProbeConfig, run_spatial_probe

    r = run_config(run_spatial_probe, SpatialProbeConfig, locals(), out=out_dir, inputs=[path])
    p = r.pairs
    pub = r.published_siglip
    lines = [
        f"{r.encoder} {r.features}: {p.pairs_evaluated} same-colour pairs of valid frames",
        f"  same cell      n={p.same_cell.n:<7} mean cosine distance {p.same_cell.mean:.4f}",
        f"  different cell n={p.different_cell.n:<7} mean cosine distance {p.different_cell.mean:.4f} "
        f"(gap {p.gap:+.4f})",
        f"  published SigLIP: same {pub['same_cell']['mean']:.4f} vs different {pub['different_cell']['mean']:.4f}",
    ]
    if r.controlled is not None:
        c = r.controlled
        lines.append(
            f"  left/right on mirrored renders: accuracy {c.left_right_accuracy:.3f} "
            f"(95% CI {c.left_right_ci95[0]:.3f}-{c.left_right_ci95[1]:.3f}, n={c.left_right_n}, chance 0.5)"
        )
    _finish(r, out_dir, as_json, lines)


@app.command()
def umap(
    path: Path = FILE,
    out_dir: Path = OUT,
    encoder: Optional[str] = ENCODER,  # noqa: UP045
    features: str = FEATURES,
    max_points: int = typer.Option(20_000, "--max-points", help="Cap on train points fit (seeded subsample)."),
    n_neighbors: int = typer.Option(15, "--n-neighbors", help="UMAP neighbourhood size."),
    rerun: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--rerun", help="Also write the map as a Rerun point cloud (.rrd; the viz extra)."
    ),
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """2-D UMAP coloured by target colour, instruction, bearing and action (an imported file: task, progress and
    its first action and state dimensions); coordinates saved."""
    from vlnav_data.probes.embedding_map import UmapConfig, run_umap

    if rerun is not None:
        from vlnav_data.viz import check_recording

        run_command(check_recording, rerun)  # before any work: the viz extra, an .rrd name

    def run(config: UmapConfig) -> Any:
        r = run_umap(config)
        if rerun is not None:
            from vlnav_data.viz import record_embedding_map

            record_embedding_map(r.coords, rerun)
        return r

    with writing_to(rerun, kind="file", overwrite=overwrite, inputs=[path], option="--rerun", example="map.rrd"):
        r = run_config(run, UmapConfig, locals(), out=out_dir, inputs=[path])
    lines = [
        f"{r.encoder} {r.features}: UMAP of {r.num_fit} train points, {r.num_placed} valid placed ({r.umap_s:.1f} s)"
    ]
    if r.colour_knn_accuracy is not None:
        lines.append(
            f"  target colour from 10 map neighbours: {r.colour_knn_accuracy:.3f} (majority {r.colour_chance:.3f})"
        )
    if r.task_knn_accuracy is not None:
        lines.append(f"  task from 10 map neighbours: {r.task_knn_accuracy:.3f} (majority {r.task_chance:.3f})")
    lines.append(f"  coordinates: {r.coords}")
    _finish(r, out_dir, as_json, lines)


@app.command()
def knn(
    path: Path = FILE,
    out_dir: Path = OUT,
    encoder: Optional[str] = ENCODER,  # noqa: UP045
    features: str = FEATURES,
    k: int = typer.Option(8, "--k", help="Neighbours averaged per query."),
    weighting: str = typer.Option(
        "uniform", "--weighting", help="How neighbours' actions are averaged: uniform or similarity."
    ),
    device: str = typer.Option(
        "auto", "--device", help="Where FAISS searches: auto, cpu, cuda or cuda:N (GPU search needs faiss-gpu)."
    ),
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """FAISS index over train embeddings; nearest-neighbour action regression on valid; index saved."""
    from vlnav_data.probes.knn import KnnProbeConfig, run_knn_probe

    r = run_config(run_knn_probe, KnnProbeConfig, locals(), out=out_dir, inputs=[path])
    lines = [
        f"{r.encoder} {r.features}: {r.index_type} index of {r.num_vectors} train vectors "
        f"(dim {r.dim}, {r.search_device})",
        f"  valid ({r.num_valid} rows): R2 {r.r2:.3f}  MSE {r.mse:.4f}   train-mean baseline: R2 {r.baseline_r2:.3f} "
        f"MSE {r.baseline_mse:.4f}",
    ]
    if r.action_names != ["left_wheel", "right_wheel"]:  # an imported file: each named dimension
        for name, r2, mse, base in zip(
            r.action_names, r.r2_per_dimension, r.mse_per_dimension, r.baseline_r2_per_dimension, strict=True
        ):
            lines.append(f"    {name}: R2 {_r2(r2, 0)}  MSE {mse:.4f}   train-mean R2 {_r2(base, 0)}")
    lines.append(f"  index files: {out_dir / 'knn.faiss'}, {out_dir / 'knn_actions.npy'}, {out_dir / 'knn_meta.json'}")
    _finish(r, out_dir, as_json, lines)


def _r2(value: float | None, width: int) -> str:
    """An R² right-aligned in ``width`` with 3 decimals; ``-`` when undefined (a column that does not vary)."""
    return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"
