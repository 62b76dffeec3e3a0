"""`vlnav-probe` end to end on a small synthetic file: outputs, and exact error lines with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.probe import app
from vlnav_data.dataset.synthetic import write_synthetic_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli_probe") / "demos.h5"
    return write_synthetic_dataset(path, num_episodes=10, encoders={"siglip-tiny-random": 16, "oracle": 24}, seed=5)


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_unknown_encoder_lists_those_in_the_file(demo_file, tmp_path):
    res = runner.invoke(app, ["linear", str(demo_file), "--out", str(tmp_path / "o"), "--encoder", "clip"])
    assert _error(res) == (
        f"error: encoder 'clip' is not in '{demo_file}'; it holds embeddings of: siglip-tiny-random, oracle. "
        f"Pass one of those with --encoder, or add it with `vlnav-data embed {demo_file} --encoder clip`."
    )


def test_a_file_with_several_encoders_needs_one_named(demo_file, tmp_path):
    res = runner.invoke(app, ["knn", str(demo_file), "--out", str(tmp_path / "o")])
    assert _error(res) == (
        f"error: '{demo_file}' holds embeddings of 2 encoders (siglip-tiny-random, oracle); choose one with "
        "--encoder NAME"
    )
    assert not (tmp_path / "o").exists()


def test_bad_features_value(demo_file, tmp_path):
    res = runner.invoke(app, ["knn", str(demo_file), "--out", str(tmp_path / "o"), "--features", "pixels"])
    assert _error(res) == "error: --features must be one of joint, image, text, got 'pixels'"


def test_missing_file(tmp_path):
    res = runner.invoke(app, ["umap", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "o")])
    assert _error(res) == (
        f"error: dataset file '{tmp_path / 'nope.h5'}' does not exist; pass a file built by `vlnav-data build`"
    )


def test_empty_split(demo_file, tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(demo_file.read_bytes())
    with h5py.File(path, "r+") as f:
        del f["mask/valid"]
        f.create_dataset("mask/valid", data=np.array([], dtype="S8"))
    res = runner.invoke(app, ["knn", str(path), "--out", str(tmp_path / "o"), "--encoder", "oracle"])
    assert _error(res) == (
        f"error: the 'valid' split of '{path}' is empty (/mask/valid lists no demos); probes fit on train and "
        "score on valid, so both need episodes: rebuild with more episodes or a valid fraction in (0, 1)."
    )


def test_missing_labels(demo_file, tmp_path):
    args = ["linear", str(demo_file), "--out", str(tmp_path / "o"), "--encoder", "oracle"]
    res = runner.invoke(app, [*args, "--target", "spatial_word"])
    assert _error(res) == (
        f"error: cannot probe 'spatial_word' on '{demo_file}': no instruction states a spatial word "
        "(left/right/ahead/behind)"
    )


def test_spatial_without_privileged_state(demo_file, tmp_path):
    path = tmp_path / "nostate.h5"
    path.write_bytes(demo_file.read_bytes())
    with h5py.File(path, "r+") as f:
        for name in f["data"]:
            del f["data"][name]["obs/privileged_state"]
    args = ["spatial", str(path), "--out", str(tmp_path / "o"), "--encoder", "oracle", "--no-controlled"]
    res = runner.invoke(app, args)
    assert _error(res) == (
        f"error: '{path}' has no obs/privileged_state, so the bearing/distance labels cannot be derived; probe a "
        "file built by `vlnav-data build` (which records it), or choose targets without bearing/distance."
    )


def _split_rows(path, encoder):
    """Train and valid rows of a file read with h5py alone: unit features, actions, target colour per row."""
    out = {}
    with h5py.File(path, "r") as f:
        for split in ("train", "valid"):
            names = [n.decode() for n in f[f"mask/{split}"][()]]
            feats = np.concatenate([f[f"data/{n}/obs/{encoder}_joint"][()].astype(np.float64) for n in names])
            acts = np.concatenate([f[f"data/{n}/actions"][()].astype(np.float64) for n in names])
            colour = np.concatenate(
                [[f[f"data/{n}"].attrs["target_color"]] * len(f[f"data/{n}/actions"]) for n in names]
            )
            out[split] = (feats / np.linalg.norm(feats, axis=1, keepdims=True), acts, colour)
    return out


def test_knn_command_scores_what_a_brute_force_search_predicts(demo_file, tmp_path):
    out = tmp_path / "knn"
    res = runner.invoke(app, ["knn", str(demo_file), "--out", str(out), "--k", "3", "--encoder", "oracle"])
    assert res.exit_code == 0, res.output
    assert "flat_ip index of" in res.stdout and "train-mean baseline" in res.stdout
    result = json.loads((out / "result.json").read_text())
    # The same prediction by brute force: cosine similarity to every train row, mean action of the 3 nearest.
    (xt, yt, _), (xv, yv, _) = _split_rows(demo_file, "oracle").values()
    nearest = np.argsort(-(xv @ xt.T), axis=1)[:, :3]
    predicted = yt[nearest].mean(axis=1)
    assert result["mse"] == pytest.approx(np.mean((predicted - yv) ** 2), rel=1e-4)
    assert result["baseline_mse"] == pytest.approx(np.mean((yt.mean(axis=0) - yv) ** 2), rel=1e-6)
    sse, sst = ((predicted - yv) ** 2).sum(), ((yv - yv.mean(axis=0)) ** 2).sum()
    assert result["r2"] == pytest.approx(1 - sse / sst, abs=1e-4)
    assert result["num_vectors"] == len(xt) and result["k"] == 3
    meta = json.loads((out / "knn_meta.json").read_text())
    assert meta["encoder"] == "oracle" and meta["k"] == 3 and meta["num_vectors"] == len(xt)


def test_linear_command_scores_against_hand_computed_baselines(demo_file, tmp_path):
    out = tmp_path / "lin"
    args = ["linear", str(demo_file), "--out", str(out), "--encoder", "oracle", "--no-mlp", "--seed", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "skipped spatial_word: no instruction states a spatial word" in res.stdout
    result = json.loads((out / "result.json").read_text())
    scores = {s["target"]: s for s in result["scores"]}
    assert list(scores) == ["action", "bearing", "distance", "colour"]
    (_, yt, ct), (_, yv, cv) = _split_rows(demo_file, "oracle").values()
    # Baselines: the train mean for a regression target (pooled R² on valid), the train majority for a class.
    sst = ((yv - yv.mean(axis=0)) ** 2).sum()
    assert scores["action"]["baseline"] == pytest.approx(1 - ((yv - yt.mean(axis=0)) ** 2).sum() / sst, abs=1e-9)
    colours, counts = np.unique(ct, return_counts=True)
    assert scores["colour"]["baseline"] == pytest.approx(np.mean(cv == colours[np.argmax(counts)]))
    # The synthetic oracle embeds the target's distance linearly (dataset/synthetic.py), and nothing of a
    # shuffled label: the probe must find the one and not the other.
    assert scores["distance"]["probe"] > 0.9 and abs(scores["distance"]["shuffled"]) < 0.1
    assert scores["action"]["num_train"] == len(yt) and scores["action"]["num_valid"] == len(yv)
    assert result["config"]["seed"] == 1
    assert (out / "report.md").is_file() and (out / "linear_bearing.png").is_file()


def test_spatial_command_small(demo_file, tmp_path):
    # the synthetic file's "oracle" is a 24-d stand-in: the real 1152-d oracle cannot reproduce it (refused)
    args = ["spatial", str(demo_file), "--out", str(tmp_path / "no"), "--encoder", "oracle", "--features", "image"]
    refused = runner.invoke(app, [*args, "--device", "cpu", "--num-pairs", "100", "--preset", "text2nav"])
    assert _error(refused) == (
        f"error: '{demo_file}' holds 24-D embeddings of encoder 'oracle', but the rebuilt encoder produces 1152-D "
        "ones; it is a different model. Pass the original weights, or rebuild the dataset and retrain."
    )
    wide = write_synthetic_dataset(
        tmp_path / "wide.h5", num_episodes=10, encoders={"siglip-tiny-random": 16, "oracle": 1152}, seed=5
    )
    # the oracle embeds the robot-frame bearing, so mirrored views must separate left from right
    out = tmp_path / "sp"
    args = ["spatial", str(wide), "--out", str(out), "--num-pairs", "3000", "--preset", "text2nav"]
    args += ["--encoder", "oracle", "--features", "image", "--positions-per-colour", "3", "--bearing-steps", "3"]
    args += ["--distance-steps", "2", "--device", "cpu"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    c = result["controlled"]
    assert c["num_renders"] == 5 * 3 * (3 + 2)
    assert c["bearing_cosine_distance"][1] == pytest.approx(0.0, abs=1e-6)  # the reference view itself
    assert c["bearing_cosine_distance"][0] > 0.01 and c["bearing_cosine_distance"][2] > 0.01
    assert c["left_right_accuracy"] == 1.0 and c["left_right_ci95"][0] > 0.5
    # the stand-in's stored embeddings are random, not the oracle's: the re-embedding check flags it
    assert c["encoder_check_max_cosine_distance"] > 0.01
    assert "the rebuilt encoder is not the one that built the file" in (out / "report.md").read_text()
    assert result["pairs"]["pairs_drawn"] == 3000
    assert "left/right on mirrored renders" in res.stdout
    assert (out / "spatial_controlled.png").is_file() and (out / "spatial_pairs.png").is_file()


@pytest.mark.slow  # UMAP's numba compilation takes 15-60 s in a fresh process on a shared 2-core machine
def test_umap_command_saves_coordinates(demo_file, tmp_path):
    out = tmp_path / "um"
    res = runner.invoke(
        app,
        [
            "umap",
            str(demo_file),
            "--out",
            str(out),
            "--encoder",
            "siglip-tiny-random",
            "--max-points",
            "120",
            "--n-neighbors",
            "8",
        ],
    )
    assert res.exit_code == 0, res.output
    coords = np.load(out / "umap_coords.npz")
    result = json.loads((out / "result.json").read_text())
    assert result["num_fit"] == 120
    assert coords["train_xy"].shape == (120, 2)
    assert coords["valid_xy"].shape == (min(30, result["num_valid_total"]), 2)
    assert len(coords["train_target_colour"]) == 120 and len(coords["valid_privileged_bearing_rad"]) == len(
        coords["valid_xy"]
    )
    assert np.isfinite(coords["train_xy"]).all() and np.isfinite(coords["valid_xy"]).all()
    assert (out / "umap.png").stat().st_size > 1000
