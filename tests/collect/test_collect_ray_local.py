"""`vlnav-data build --ray local --num-shards 2`: a private Ray on 127.0.0.1, same arrays as one process.

The command runs as a user would run it (its own process starts and stops Ray); afterwards no Ray
process may be left (conftest ``ray_tmpdir``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.dataset.validate import validate_dataset

pytest.importorskip("ray")

CLI = [sys.executable, "-c", "from vlnav_data.cli.data import main; main()"]
FLAGS = dict(num_episodes=6, max_episode_steps=30, seed=5)  # over small_build (tests/conftest.py), as the CLI below


def test_ray_local_build_equals_the_single_process_build(
    ray_tmpdir, tmp_path, dataset_arrays, assert_same_arrays, small_build
):
    ref = build_dataset(small_build(tmp_path / "ref.h5", **FLAGS)).path
    out = tmp_path / "ray" / "demos.h5"
    args = [
        *CLI, "build", "--out", str(out), "--num-episodes", "6", "--encoder", "oracle", "--expert", "pursuit",
        "--image-size-px", "32", "--max-episode-steps", "30", "--seed", "5", "--device", "cpu", "--num-envs", "2",
        "--ray", "local", "--num-shards", "2", "--json",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["num_episodes"] == 6 and result["executor"] == "ray"
    assert [(s["shard_index"], s["num_episodes"], s["attempts"]) for s in result["shards"]] == [(0, 3, 1), (1, 3, 1)]
    assert validate_dataset(out) == []
    assert_same_arrays(dataset_arrays(ref), dataset_arrays(out))
    assert not Path(str(out) + ".shards").exists()
    # The private instance ran on the loopback: the GCS registered its node at 127.0.0.1.
    logs = list(Path(ray_tmpdir).glob("ray/session_2*/logs/gcs_server.out"))
    registered = [ln for p in logs for ln in p.read_text().splitlines() if "Registering new node" in ln]
    assert registered and all(ln.endswith("node_address=127.0.0.1") for ln in registered), registered
