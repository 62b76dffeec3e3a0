"""BC on a file without an arena, and its offline evaluation (vlnav-policy train / eval-offline)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.offline.conftest import ACTION_NAMES, ACTION_NOISE, best_r2, rows_of, write_imported_file
from vlnav_data.cli import policy
from vlnav_data.dataset import DatasetReader
from vlnav_data.policy.model_dir import load_model_dir
from vlnav_data.policy.offline import MIN_INTERVAL_EPISODES, bootstrap_summaries, episode_sums

runner = CliRunner()


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """Actions 50x the arena's range (joint angles in degrees, say): a tanh head could not reach them."""
    root = tmp_path_factory.mktemp("scaled")
    truth = write_imported_file(root / "scaled.h5", action_scale=50.0, kind="robomimic", seed=1)
    res = runner.invoke(
        policy.app,
        ["train", str(root / "scaled.h5"), "--out", str(root / "model"), "--features", "image",
         "--recipe", "paper-std", "--steps", "1500"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(policy.app, ["eval-offline", str(root / "model"), "--out", str(root / "ev"), "--k", "8"])
    assert res.exit_code == 0, res.output
    return root, truth, json.loads((root / "ev" / "result.json").read_text()), res.stdout


def valid_actions(path):
    with DatasetReader(path) as r:
        rows = r.stack(["actions", "obs/toy_image"], split="valid")
    return rows["actions"].astype(np.float64), rows["obs/toy_image"].astype(np.float32)


def test_model_of_any_action_width_and_range(scaled):
    root, _, _, _ = scaled
    model, spec = load_model_dir(root / "model")
    config = json.loads((root / "model" / "config.json").read_text())
    assert config["output"] == "affine" and config["action_dim"] == 3
    assert config["action_names"] == list(ACTION_NAMES) and config["source"]["kind"] == "robomimic"
    assert config["train_episode_seeds"] == []
    with DatasetReader(root / "scaled.h5") as r:
        train = r.stack(["actions"], split="train")["actions"].astype(np.float64)
    assert np.allclose(model.action_stats.mean.numpy(), train.mean(0), rtol=1e-5, atol=1e-3)
    assert np.allclose(model.action_stats.std.numpy(), train.std(0), rtol=1e-5)
    y, x = valid_actions(root / "scaled.h5")
    pred = model(torch.as_tensor(x)).detach().numpy()
    assert pred.shape == y.shape and np.abs(pred).max() > 5  # far outside a tanh head's [-1, 1]


def test_offline_figures_are_the_model_and_baselines_on_held_out_steps(scaled):
    root, truth, result, stdout = scaled
    from sklearn.metrics import r2_score

    model, _ = load_model_dir(root / "model")
    y, x = valid_actions(root / "scaled.h5")
    pred = model(torch.as_tensor(x)).detach().numpy().astype(np.float64)
    assert result["evaluation"] == "offline" and result["unit"] == "episode" and result["arena"] == "none"
    assert result["num_episodes"] == 10 and result["num_steps"] == len(y)
    per_dim = result["student"]["per_dimension"]
    assert [d["name"] for d in per_dim] == list(ACTION_NAMES)
    for j, d in enumerate(per_dim):
        assert math.isclose(d["r2"]["value"], r2_score(y[:, j], pred[:, j]), rel_tol=1e-4, abs_tol=1e-5)
        assert math.isclose(d["mse"]["value"], np.mean((pred[:, j] - y[:, j]) ** 2), rel_tol=1e-4)
        assert d["r2"]["low"] <= d["r2"]["value"] <= d["r2"]["high"] and d["r2"]["confidence"] == 0.95
    best = best_r2(y, rows_of(truth.action_noise, "valid", truth))
    student = np.array([d["r2"]["value"] for d in per_dim])
    assert np.all(student <= best + 0.03) and student[0] > 0.9  # near, never above, the generating function
    # kNN baseline: MSE sigma²(1 + 1/k), as in the kNN probe; train mean: R² just below 0
    noise = rows_of(truth.action_noise, "valid", truth)
    knn = np.array([d["r2"]["value"] for d in result["knn"]["per_dimension"]])
    assert np.all(np.abs(knn - (1 - noise.var(0) * (1 + 1 / 8) / y.var(0))) < 0.06), knn
    for d in result["train_mean"]["per_dimension"]:
        assert -0.1 < d["r2"]["value"] <= 0.0
    diff = result["student_minus_knn"]["r2"]
    assert math.isclose(diff["value"], result["student"]["r2"]["value"] - result["knn"]["r2"]["value"], abs_tol=1e-9)
    assert result["interval_note"] == "" and "nan" not in json.dumps(result).lower()
    assert "gripper" in stdout and "student - kNN" in stdout
    assert (root / "ev" / "offline_r2.png").stat().st_size > 0 and result["files"]["figure"] == "offline_r2.png"
    sums = np.load(root / "ev" / "offline_episodes.npz")
    assert sums["num_steps"].sum() == len(y) and sums["sse_student"].shape == (10, 3)
    assert np.allclose(sums["sum_y"].sum(0), y.sum(0))
    assert np.allclose(np.array(ACTION_NOISE) * 50, noise.std(0), rtol=0.15)


def test_intervals_are_over_episodes():
    """All the variance between episodes: the interval's width is that of a mean over episodes, not over steps."""
    rng = np.random.default_rng(0)
    episodes, steps = 40, 50
    shift = rng.normal(0, 1, episodes)
    ep = np.repeat(np.arange(episodes), steps)
    y = np.repeat(shift, steps)[:, None] + 1e-3 * rng.normal(0, 1, (len(ep), 1))
    zero = np.zeros_like(y)
    sums = episode_sums(y, {"student": zero, "knn": zero, "train_mean": zero}, ep)
    summary, note = bootstrap_summaries(sums, 4000, 0)
    mse = summary["student"]["mse"][0]
    assert math.isclose(mse["value"], np.mean(y**2), rel_tol=1e-9) and note == ""
    # MSE is the mean of the episodes' shift²: its 95% interval is about 2 x 1.96 x sd(shift²) / sqrt(episodes)
    # (a bootstrap over steps would be sqrt(50) = 7 times narrower)
    expected = 2 * 1.96 * np.std(shift**2) / np.sqrt(episodes)
    assert abs((mse["high"] - mse["low"]) / expected - 1) < 0.25, (mse, expected)
    too_few, note = bootstrap_summaries(
        episode_sums(y[:200], {"student": zero[:200], "knn": zero[:200], "train_mean": zero[:200]}, ep[:200]), 500, 0
    )
    assert MIN_INTERVAL_EPISODES > 4 and too_few["student"]["r2"][0]["low"] is None and "too few" in note
    assert too_few["student"]["mse"][0]["value"] is not None


def test_recipes_that_need_the_arena_refused(imported, tmp_path):
    path, _ = imported
    cases = [
        (["--recipe", "pixels"], "recipe 'pixels' needs the simulator"),
        (["--features", "pixels", "--recipe", "paper-std"], "--features pixels needs the simulator"),
    ]
    for extra, needs in cases:
        res = runner.invoke(policy.app, ["train", str(path), "--out", str(tmp_path / "m"), "--steps", "5", *extra])
        assert res.exit_code == 2, res.output
        line = f"error: '{path}' was imported from lerobot and has no arena; {needs} ("
        assert res.stderr.startswith(line) and len(res.stderr.splitlines()) == 1, res.stderr
        assert not (tmp_path / "m").exists()


def test_history_features_offline(imported, tmp_path):
    """history:2 stacks each step with the one before (zeros at an episode's start) in the evaluation too."""
    from sklearn.metrics import r2_score

    from vlnav_data.policy.history import history_index, stack_history

    path, _ = imported
    args = ["train", str(path), "--out", str(tmp_path / "m"), "--features", "history:2:image", "--steps", "300"]
    assert runner.invoke(policy.app, args).exit_code == 0
    res = runner.invoke(policy.app, ["eval-offline", str(tmp_path / "m"), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "ev" / "result.json").read_text())
    model, _ = load_model_dir(tmp_path / "m")
    with DatasetReader(path) as r:
        rows = r.stack(["actions", "obs/toy_image"], split="valid")
    x = stack_history(rows["obs/toy_image"].astype(np.float32), history_index(rows["episode_index"], 2))
    pred = model(torch.as_tensor(x)).detach().numpy()
    expected = r2_score(rows["actions"], pred, multioutput="variance_weighted")
    assert math.isclose(result["student"]["r2"]["value"], expected, rel_tol=1e-4)


def test_dataset_with_another_encoder_refused(imported, tmp_path):
    import shutil

    import h5py

    path, _ = imported
    assert runner.invoke(policy.app, ["train", str(path), "--out", str(tmp_path / "m"), "--steps", "20"]).exit_code == 0
    other = tmp_path / "other.h5"
    shutil.copy(path, other)
    with h5py.File(other, "r+") as f:
        specs = json.loads(f.attrs["encoders_json"])
        specs[0]["revision"] = "seed-7"
        f.attrs["encoders_json"] = json.dumps(specs)
    args = ["eval-offline", str(tmp_path / "m"), "--out", str(tmp_path / "ev"), "--dataset", str(other)]
    res = runner.invoke(policy.app, args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: '{other}' stores 'toy' embeddings of revision 'seed-7'"), res.stderr
    assert not (tmp_path / "ev").exists()
