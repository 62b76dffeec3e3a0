"""`vlnav-policy`: train runs end to end; bad input is one `error:` line and exit code 2."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from vlnav_data.cli.policy import app
from vlnav_data.dataset.synthetic import write_synthetic_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_policy") / "syn.h5"
    return write_synthetic_dataset(path, num_episodes=8, encoders={"siglip-tiny-random": 32, "oracle": 16})


@pytest.fixture(scope="module")
def oracle16_model(synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_policy_model") / "m"
    res = runner.invoke(app, ["train", str(synthetic), "--out", str(out), "--encoder", "oracle", "--steps", "20"])
    assert res.exit_code == 0, res.output
    return out


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_train_writes_a_model_directory(oracle16_model, synthetic):
    result = json.loads((oracle16_model / "result.json").read_text())
    assert result["num_steps"] == 20 and result["encoder"] == "oracle" and result["features"] == "joint"
    assert result["privileged_encoder"] is False  # the synthetic file does not mark it; the real oracle does
    config = json.loads((oracle16_model / "config.json").read_text())
    assert config["input_keys"] == ["obs/oracle_joint"] and config["input_dim"] == 16
    assert config["encoder_spec"]["name"] == "oracle"
    assert config["train_config"]["recipe"]["num_steps"] == 20
    assert len((oracle16_model / "curve.csv").read_text().splitlines()) == 1 + 10
    assert (oracle16_model / "curve.png").stat().st_size > 0


def test_train_unknown_encoder(synthetic, tmp_path):
    res = runner.invoke(app, ["train", str(synthetic), "--out", str(tmp_path / "m"), "--encoder", "clip"])
    assert error_line(res) == (
        f"error: encoder 'clip' is not in '{synthetic}'; it holds embeddings of: siglip-tiny-random, oracle. "
        f"Pass one of those with --encoder, or add it with `vlnav-data embed {synthetic} --encoder clip`."
    )


def test_train_needs_an_encoder_when_the_file_has_several(synthetic, tmp_path):
    res = runner.invoke(app, ["train", str(synthetic), "--out", str(tmp_path / "m"), "--steps", "1"])
    assert error_line(res) == (
        f"error: '{synthetic}' holds embeddings of 2 encoders (siglip-tiny-random, oracle); "
        "choose one with --encoder NAME"
    )


def test_train_bad_features_and_recipe(synthetic, tmp_path):
    res = runner.invoke(app, ["train", str(synthetic), "--out", str(tmp_path / "m"), "--features", "state"])
    assert error_line(res) == (
        "error: --features must be one of joint, image, text, pixels, history:K or history:K:BASE (1 <= K <= 64, "
        "BASE one of joint, image, text), got 'state'"
    )
    res = runner.invoke(app, ["train", str(synthetic), "--out", str(tmp_path / "m"), "--recipe", "papr"])
    assert error_line(res) == (
        "error: unknown recipe 'papr'; expected one of: paper, paper-std, pixels, pixels-concat. Did you mean 'paper'?"
    )


def test_eval_missing_model_directory(tmp_path):
    res = runner.invoke(app, ["eval", str(tmp_path / "nope"), "--out", str(tmp_path / "e")])
    assert error_line(res) == (
        f"error: model directory '{tmp_path / 'nope'}' does not exist; "
        "expected a directory written by `vlnav-policy train`"
    )


def test_eval_model_directory_missing_weights(oracle16_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(oracle16_model, broken)
    (broken / "model.pt").unlink()
    res = runner.invoke(app, ["eval", str(broken), "--out", str(tmp_path / "e")])
    assert error_line(res) == (
        f"error: model directory '{broken}' has no model.pt; expected a directory written by "
        "`vlnav-policy train` (model.pt and config.json). Re-run training into it."
    )


def test_eval_with_another_encoder_than_the_model(oracle16_model, tmp_path):
    res = runner.invoke(app, ["eval", str(oracle16_model), "--out", str(tmp_path / "e"), "--encoder", "siglip"])
    assert error_line(res) == (
        f"error: model '{oracle16_model}' was trained on encoder 'oracle' (joint features); --encoder siglip "
        "does not match. Train a model on 'siglip' embeddings first."
    )


def test_eval_when_the_live_encoder_has_another_width(oracle16_model, tmp_path):
    res = runner.invoke(app, ["eval", str(oracle16_model), "--out", str(tmp_path / "e"), "--device", "cpu"])
    assert error_line(res) == (
        f"error: the training data of model '{oracle16_model}' holds 16-D embeddings of encoder 'oracle', but the "
        "rebuilt encoder produces 1152-D ones; it is a different model. Pass the original weights, or rebuild the "
        "dataset and retrain."
    )


def test_eval_knn_needs_an_index(oracle16_model, tmp_path):
    res = runner.invoke(app, ["eval", str(oracle16_model), "--out", str(tmp_path / "e"), "--policy", "knn"])
    assert error_line(res) == "error: --policy knn needs --index DIR (the output directory of `vlnav-probe knn`)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--encoder", "siglip-tiny-random"],
            "was trained on 'oracle' joint features, but dataset '{ds}' is used with 'siglip-tiny-random' joint "
            "features; pass --encoder oracle --features joint or train a new model",
        ),
        (
            ["--encoder", "oracle", "--features", "image"],
            "was trained on 'oracle' joint features, but dataset '{ds}' is used with 'oracle' image "
            "features; pass --encoder oracle --features joint or train a new model",
        ),
    ],
)
def test_dagger_init_model_from_another_encoder_or_feature_set(oracle16_model, synthetic, tmp_path, args, message):
    res = runner.invoke(
        app,
        [
            "dagger",
            str(synthetic),
            "--out",
            str(tmp_path / "d"),
            "--init",
            str(oracle16_model),
            *args,
            "--device",
            "cpu",
        ],
    )
    assert error_line(res) == f"error: model '{oracle16_model}' " + message.format(ds=synthetic)


def test_diagnose_needs_an_eval_directory(tmp_path):
    res = runner.invoke(app, ["diagnose", str(tmp_path)])
    assert error_line(res) == (
        f"error: '{tmp_path}' has no episodes.npz; expected a directory written by "
        "`vlnav-policy eval MODEL_DIR --out DIR`"
    )
