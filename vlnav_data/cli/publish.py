"""`vlnav-data export | publish | verify` (registered by `vlnav_data.cli.data`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from vlnav_data.cli._common import (
    JSON_OUT,
    OVERWRITE,
    emit_result,
    fail,
    run_command,
    run_config,
    to_jsonable,
)
from vlnav_data.errors import ConfigError

EXPORT_FORMATS = ("lerobot",)


def _check_format(value: str) -> None:
    if value not in EXPORT_FORMATS:
        raise ConfigError(f"--format must be one of: {', '.join(EXPORT_FORMATS)}; got '{value}'")


# The LeRobot options `export` and `publish` share (publish runs the export).
IMAGES = typer.Option("video", "--images", help="Camera as MP4 'video' or 'png' bytes in the parquet.")
ENCODERS = typer.Option(
    [], "--encoder", help="Encoder(s) to export as observation.<enc>_joint; repeat.  [default: every encoder of FILE]"
)
VIDEO_CODEC = typer.Option("libx264", "--video-codec", help="libx264 (H.264) or libsvtav1 (AV1).")
PIX_FMT = typer.Option(
    "auto",
    "--pix-fmt",
    help="Video pixel format: yuv420p (half-resolution colour), yuv444p (full colour; libx264 only) or auto "
    "(yuv444p below 128 px, where 4:2:0 falls under 35 dB PSNR, else yuv420p).",
)
CRF = typer.Option(18, "--crf", help="Video constant rate factor (lower: better, bigger).")


def export(
    dataset: Path = typer.Argument(..., metavar="FILE", help="A complete vlnav-demos .h5 file."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the LeRobot dataset (new or empty), with result.json."),
    format: str = typer.Option("lerobot", "--format", help="Export format: lerobot (LeRobot v3.0)."),
    images: str = IMAGES,
    encoder: list[str] = ENCODERS,
    video_codec: str = VIDEO_CODEC,
    pix_fmt: str = PIX_FMT,
    crf: int = CRF,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON_OUT,
) -> None:
    """Export a dataset as LeRobot v3.0 (parquet + MP4 or PNG, meta/info.json, stats, tasks, episodes)."""
    from vlnav_data.publish import LeRobotExportConfig, export_lerobot

    def run(config: LeRobotExportConfig) -> Any:
        _check_format(format)
        return export_lerobot(config)

    result = run_config(run, LeRobotExportConfig, locals(), out=out_dir, inputs=[dataset], encoders=tuple(encoder))
    if not as_json:
        video = f"video {result.video_codec}, {len(result.video_files)} file(s)" if result.video_codec else "png"
        typer.echo(
            f"wrote LeRobot v3.0 dataset to {result.out_dir}: {result.total_episodes} episodes, "
            f"{result.total_frames} frames, {result.total_tasks} tasks, splits {result.splits} ({video}) "
            f"in {result.seconds:.1f} s"
        )


def publish(
    dataset: Path = typer.Argument(..., metavar="FILE", help="A complete, valid vlnav-demos .h5 file."),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset repository ORG/NAME."),
    out_dir: Path = typer.Option(..., "--out", help="Folder to assemble (new or empty), with result.json."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Assemble and checksum the folder; upload nothing."),
    private: bool = typer.Option(False, "--private", help="Create the Hub repository private."),
    overwrite: bool = OVERWRITE,
    license: str = typer.Option("apache-2.0", "--license", help="Hugging Face licence id of the data."),
    images: str = IMAGES,
    encoder: list[str] = ENCODERS,
    video_codec: str = VIDEO_CODEC,
    pix_fmt: str = PIX_FMT,
    crf: int = CRF,
    shard_max_gb: float = typer.Option(20.0, "--shard-max-gb", help="Every HDF5 file stays below this (GB)."),
    as_json: bool = JSON_OUT,
) -> None:
    """Assemble a Hugging Face Hub dataset folder (HDF5, LeRobot export, card, SHA256SUMS) and upload it."""
    from vlnav_data.publish import PublishConfig, publish_dataset

    if not shard_max_gb > 0:
        fail(f"--shard-max-gb must be positive, got {shard_max_gb}")
    result = run_config(
        publish_dataset,
        PublishConfig,
        locals(),
        out=out_dir,
        inputs=[dataset],
        encoders=tuple(encoder),
        shard_max_bytes=int(shard_max_gb * 1e9),
    )
    if not as_json:
        typer.echo(
            f"assembled {result.out_dir}: {result.files} files, {result.total_bytes / 1e6:.1f} MB, "
            f"{len(result.shards)} HDF5 file(s), LeRobot v3.0 export of {result.export.total_episodes} episodes "
            f"in {result.seconds:.1f} s"
        )
        if result.uploaded:
            typer.echo(f"uploaded to {result.url} (tag {result.tag})")
        else:
            typer.echo(f"dry run: nothing uploaded; check with `vlnav-data verify {result.out_dir}`")


def verify(
    folder: Path = typer.Argument(..., help="A folder written by `vlnav-data publish` (or downloaded)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON to stdout."),
) -> None:
    """Check every checksum of SHA256SUMS and every file the dataset card references; exit 1 on any problem."""
    from vlnav_data.publish import VerifyConfig, verify_folder

    report = run_command(lambda: verify_folder(VerifyConfig(folder=folder)))
    if as_json:
        payload = to_jsonable(report)
        payload["ok"] = report.ok
        emit_result(payload, None, True)
    else:
        for problem in report.problems:
            typer.echo(f"problem: {problem}")
        status = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        typer.echo(
            f"{status}: {report.files_checked} file(s) checked against SHA256SUMS, "
            f"{report.references_checked} card reference(s) checked in {report.folder}"
        )
    if not report.ok:
        raise typer.Exit(code=1)


COMMANDS = {"export": export, "publish": publish, "verify": verify}
"""The commands of this module, by the name `vlnav-data` registers them under (``cli/data.py``)."""
