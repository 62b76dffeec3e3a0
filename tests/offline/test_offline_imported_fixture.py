"""The downstream half on a file the real importer wrote (issue 26 acceptance: embed, probe linear/knn and BC
with offline evaluation run on an imported file): robomimic's layout, 7-d actions, one held-out demo.

Runs where the importer and its fixture are present (``vlnav_data.imports``, ``tests/fixtures/robomimic``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data, policy, probe
from vlnav_data.dataset import DatasetReader

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "robomimic" / "lift_tiny.hdf5"
runner = CliRunner()


@pytest.fixture(scope="module")
def lift(tmp_path_factory) -> Path:
    pytest.importorskip("vlnav_data.imports")
    if not FIXTURE.is_file():
        pytest.skip("the robomimic fixture of the importer is not in this checkout")
    root = tmp_path_factory.mktemp("lift")
    for app, args in (
        (data.app, ["import", "robomimic", str(FIXTURE), "--out", str(root / "lift.h5"), "--camera",
                    "agentview_image", "--instruction", "lift the cube", "--no-progress"]),
        (data.app, ["embed", str(root / "lift.h5"), "--encoder", "siglip-tiny-random"]),
    ):  # fmt: skip
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    return root


def test_probe_train_and_evaluate_offline_an_imported_file(lift):
    path = lift / "lift.h5"
    with DatasetReader(path) as r:
        assert not r.has_arena
        width = r.stack(["actions"], split="valid")["actions"].shape[1]
        names = r.features["actions"]["names"]
        num_valid = len(r.split("valid"))
    steps = [
        (probe.app, ["linear", str(path), "--out", str(lift / "lin"), "--features", "image", "--no-mlp"]),
        (probe.app, ["knn", str(path), "--out", str(lift / "knn"), "--features", "image", "--k", "2"]),
        (policy.app, ["train", str(path), "--out", str(lift / "bc"), "--features", "image", "--recipe", "paper-std",
                      "--steps", "50"]),
        (policy.app, ["eval-offline", str(lift / "bc"), "--out", str(lift / "ev"), "--k", "2"]),
    ]  # fmt: skip
    for app, args in steps:
        res = runner.invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
    linear = json.loads((lift / "lin" / "result.json").read_text())
    action = next(s for s in linear["scores"] if s["target"] == "action")
    assert action["details"]["output_names"] == names and len(names) == width == 7
    assert "progress" in [s["target"] for s in linear["scores"]]
    assert "task" in linear["skipped"]  # one instruction: one class, nothing to classify
    knn = json.loads((lift / "knn" / "result.json").read_text())
    assert knn["action_names"] == names and len(knn["r2_per_dimension"]) == 7
    config = json.loads((lift / "bc" / "config.json").read_text())
    assert config["output"] == "affine" and config["source"]["kind"] == "robomimic"
    result = json.loads((lift / "ev" / "result.json").read_text())
    assert result["arena"] == "none" and result["num_episodes"] == num_valid
    assert [d["name"] for d in result["student"]["per_dimension"]] == names
    assert "too few for an interval" in result["interval_note"] and "nan" not in json.dumps(result).lower()
