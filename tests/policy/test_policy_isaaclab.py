"""The commands on the Isaac Lab arena: `vlnav-data build` and `vlnav-policy eval --preset text2nav-isaaclab`.

Needs Isaac Lab 3 (the environment of `bash scripts/isaaclab-venv.sh DIR`); skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("isaaclab")
os.environ.setdefault("WARP_CACHE_PATH", tempfile.mkdtemp(prefix="vlnav-warp-cache-"))

from vlnav_data.cli.data import app as data_app  # noqa: E402
from vlnav_data.cli.policy import app as policy_app  # noqa: E402
from vlnav_data.dataset import DatasetReader  # noqa: E402
from vlnav_data.dataset.validate import validate_dataset  # noqa: E402
from vlnav_data.policy.records import EpisodeRecords  # noqa: E402

runner = CliRunner()


def test_build_records_a_valid_file_in_the_isaaclab_arena(tmp_path):
    out = tmp_path / "isaac.h5"
    args = ["build", "--out", str(out), "--preset", "text2nav-isaaclab", "--num-episodes", "2"]
    args += ["--encoder", "siglip-tiny-random", "--expert", "pursuit", "--image-size-px", "32"]
    args += ["--max-episode-steps", "20", "--num-envs", "2", "--device", "cpu", "--seed", "3", "--no-progress"]
    result = runner.invoke(data_app, args)
    assert result.exit_code == 0, result.output
    assert validate_dataset(out) == []
    with DatasetReader(out) as reader:
        assert reader.sim_config["name"] == "text2nav-isaaclab" and reader.sim_config["backend"] == "isaaclab"
        assert len(reader) == 2
        rgb = reader.episode(0, ["obs/rgb"])["obs/rgb"]
        assert rgb.shape[1:] == (32, 32, 3) and rgb.std() > 5  # frames of a scene, not a blank image


def test_eval_in_isaaclab_from_the_same_starts_as_the_builtin_arena(oracle_model_dir, tmp_path):
    common = ["--num-episodes", "2", "--num-envs", "2", "--expert", "pursuit", "--device", "cpu", "--seed", "4"]
    results = {}
    for name, extra in (("builtin", []), ("isaac", ["--preset", "text2nav-isaaclab"])):
        result = runner.invoke(
            policy_app, ["eval", str(oracle_model_dir), "--out", str(tmp_path / name), *common, *extra]
        )
        assert result.exit_code == 0, result.output
        results[name] = json.loads((tmp_path / name / "result.json").read_text())
    assert (results["isaac"]["arena"], results["isaac"]["trained_arena"]) == ("text2nav-isaaclab", "text2nav")
    assert results["isaac"]["sim_config"]["backend"] == "isaaclab"
    b = EpisodeRecords.load(tmp_path / "builtin" / "episodes.npz")
    i = EpisodeRecords.load(tmp_path / "isaac" / "episodes.npz")
    assert b.episode_seed.tolist() == i.episode_seed.tolist()
    for k in range(len(b)):
        np.testing.assert_allclose(i.poses_of(k)[0], b.poses_of(k)[0], atol=1e-6)
