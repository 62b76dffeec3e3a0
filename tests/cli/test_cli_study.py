"""`vlnav-study`: bad input is one `error:` line and exit code 2, found before any cell runs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vlnav_data.cli.study import app
from vlnav_data.dataset.synthetic import write_synthetic_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_study") / "syn.h5"
    return write_synthetic_dataset(path, num_episodes=6, encoders={"siglip-tiny-random": 8, "oracle": 8})


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_an_encoder_the_file_lacks(synthetic, tmp_path):
    res = runner.invoke(app, ["run", str(synthetic), "--out", str(tmp_path / "s"), "--encoder", "clip"])
    assert error_line(res) == (
        f"error: encoder 'clip' is not in '{synthetic}'; it holds embeddings of: siglip-tiny-random, oracle. "
        f"Pass one of those with --encoder, or add it with `vlnav-data embed {synthetic} --encoder clip`."
    )
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_out_is_required_and_files_too(synthetic, tmp_path):
    assert error_line(runner.invoke(app, ["run", str(synthetic)])).startswith("error: --out is required")
    assert error_line(runner.invoke(app, ["run", "--out", str(tmp_path / "s")])).startswith(
        "error: a study needs at least one dataset FILE"
    )


def test_bad_flag_values(synthetic, tmp_path):
    out = str(tmp_path / "s")
    assert error_line(runner.invoke(app, ["run", str(synthetic), "--out", out, "--seeds", "0"])) == (
        "error: --seeds must be a positive integer, got 0"
    )
    line = error_line(runner.invoke(app, ["run", str(synthetic), "--out", out, "--encoder-model-path", "clip"]))
    assert line.startswith("error: --encoder-model-path must look like NAME=DIR")
    assert error_line(runner.invoke(app, ["run", str(synthetic), "--out", out, "--cpus-per-cell", "2"])) == (
        "error: --cpus-per-cell applies to --ray; add --ray auto|local|HOST:PORT, or drop it"
    )
    assert error_line(runner.invoke(app, ["run", str(synthetic), "--out", out, "--ray", "local", "--jobs", "2"])) == (
        "error: --jobs 2 runs cells in local processes; with --ray every cell is a Ray task: drop --jobs"
    )
    assert not (tmp_path / "s").exists()


def test_config_file_values_and_flag_override(synthetic, tmp_path):
    toml = tmp_path / "study.toml"
    toml.write_text(f'datasets = ["{synthetic}"]\nout = "{tmp_path / "s"}"\nencoder = "clip"\nseeds = 0\n')
    # the file's `seeds = 0` is refused...
    assert error_line(runner.invoke(app, ["run", "--config", str(toml)])).startswith("error: --seeds must be")
    # ...a flag overrides it, and the file's encoder is then checked against the dataset
    res = runner.invoke(app, ["run", "--config", str(toml), "--seeds", "2"])
    assert "encoder 'clip' is not in" in error_line(res)


def test_report_of_a_directory_without_a_study(tmp_path):
    assert error_line(runner.invoke(app, ["report", str(tmp_path)])) == (
        f"error: '{tmp_path}' holds no study (study.json missing); run `vlnav-study run` first"
    )
