"""`vlnav-probe knn` and `vlnav-probe umap` on a file without an arena."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from tests.offline.conftest import ACTION_NAMES, ACTION_NOISE, rows_of
from vlnav_data.cli import probe
from vlnav_data.dataset import DatasetReader

runner = CliRunner()


def test_knn_action_lookup_per_dimension(imported, tmp_path):
    path, truth = imported
    k = 8
    res = runner.invoke(
        probe.app, ["knn", str(path), "--out", str(tmp_path / "knn"), "--features", "image", "--k", str(k)]
    )
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "knn" / "result.json").read_text())
    assert result["action_names"] == list(ACTION_NAMES)
    with DatasetReader(path) as r:
        y = r.stack(["actions"], split="valid")["actions"].astype(np.float64)
    noise = rows_of(truth.action_noise, "valid", truth)
    assert np.allclose(noise.std(0), ACTION_NOISE, rtol=0.15)
    # The neighbours share the query's cluster (same signal up to a 0.05 jitter): the prediction is the signal
    # plus the mean of k independent noises, so MSE = sigma² (1 + 1/k) and R² = 1 - that / var(y).
    expected_mse = noise.var(0) * (1 + 1 / k)
    expected_r2 = 1 - expected_mse / y.var(0)
    got_r2, got_mse = np.array(result["r2_per_dimension"]), np.array(result["mse_per_dimension"])
    assert np.all(np.abs(got_r2 - expected_r2) < 0.06), (got_r2, expected_r2)
    assert np.all(np.abs(got_mse / expected_mse - 1) < 0.2), (got_mse, expected_mse)
    assert max(result["baseline_r2_per_dimension"]) <= 0.0
    assert np.load(tmp_path / "knn" / "knn_actions.npy").shape[1] == 3
    for name in ACTION_NAMES:
        assert f"{name}: R2" in res.stdout
    assert "gripper" in (tmp_path / "knn" / "report.md").read_text()


def test_umap_map_of_an_imported_file(imported, tmp_path):
    path, _ = imported
    res = runner.invoke(probe.app, ["umap", str(path), "--out", str(tmp_path / "map"), "--features", "joint"])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "map" / "result.json").read_text())
    assert result["colour_knn_accuracy"] is None
    # the joint vector carries the task's text embedding: tasks separate in the map
    assert result["task_knn_accuracy"] > 0.9 and result["task_chance"] < 0.7
    coords = np.load(tmp_path / "map" / "umap_coords.npz")
    with DatasetReader(path) as r:
        valid_steps = r.stack(["actions"], split="valid")
    assert len(coords["valid_xy"]) == len(valid_steps["actions"])
    last = np.r_[np.diff(coords["valid_episode_index"]) != 0, True]
    assert np.allclose(coords["valid_progress"][last], 1.0)
    assert f"task from 10 map neighbours: {result['task_knn_accuracy']:.3f}" in res.stdout
    assert (tmp_path / "map" / "umap.png").stat().st_size > 0
