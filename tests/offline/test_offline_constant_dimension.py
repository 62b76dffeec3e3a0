"""A dimension that never varies (a gripper held open) has no R²: None everywhere, never NaN, MSE still there."""

from __future__ import annotations

import json

import h5py
from typer.testing import CliRunner

from tests.offline.conftest import write_imported_file
from vlnav_data.cli import policy, probe

runner = CliRunner()


def test_constant_action_dimension(tmp_path):
    path = tmp_path / "held.h5"
    write_imported_file(path, num_episodes=24)
    with h5py.File(path, "r+") as f:
        for name in f["data"]:
            actions = f["data"][name]["actions"]
            values = actions[()]
            values[:, 2] = 0.5
            actions[...] = values
    runs = [
        (probe.app, ["linear", str(path), "--out", str(tmp_path / "lin"), "--features", "image", "--no-mlp",
                     "--target", "action"]),
        (probe.app, ["knn", str(path), "--out", str(tmp_path / "knn"), "--features", "image"]),
        (policy.app, ["train", str(path), "--out", str(tmp_path / "bc"), "--features", "image", "--steps", "50"]),
        (policy.app, ["eval-offline", str(tmp_path / "bc"), "--out", str(tmp_path / "ev"), "--resamples", "200"]),
    ]  # fmt: skip
    outputs = []
    for app, args in runs:
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        outputs.append(res.stdout)
    assert "nan" not in "".join(outputs).lower()
    (action,) = json.loads((tmp_path / "lin" / "result.json").read_text())["scores"]
    for key in ("r2_per_output", "shuffled_r2_per_output", "baseline_r2_per_output"):
        assert action["details"][key][2] is None and action["details"][key][0] is not None
    knn = json.loads((tmp_path / "knn" / "result.json").read_text())
    assert knn["r2_per_dimension"][2] is None and knn["baseline_r2_per_dimension"][2] is None
    ev = json.loads((tmp_path / "ev" / "result.json").read_text())
    gripper = ev["student"]["per_dimension"][2]
    assert gripper["r2"] == {"value": None, "low": None, "high": None, "confidence": 0.95}
    assert gripper["mse"]["value"] is not None and "R² undefined for gripper" in ev["interval_note"]
    assert ev["student"]["r2"]["value"] is not None  # pooled over the dimensions that vary
    for result in ("lin", "knn", "ev"):
        assert "nan" not in (tmp_path / result / "result.json").read_text().lower()
