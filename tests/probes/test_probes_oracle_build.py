"""Acceptance on a real (small) build: the oracle embedding carries the bearing, a linear probe reads it."""

from __future__ import annotations

import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.probes import LinearProbeConfig, run_linear_probe


@pytest.mark.slow  # a real pursuit-expert build (simulator + renderer) takes 30-100 s on the shared 2-core machine
def test_oracle_build_linear_probe_reads_bearing(tmp_path, small_build):
    path = tmp_path / "oracle.h5"
    build_dataset(
        small_build(
            path, num_episodes=16, valid_fraction=0.3, num_envs=8, instructions="paper", seed=1, max_episode_steps=None
        )
    )
    cfg = LinearProbeConfig(path=path, out_dir=tmp_path / "lin", targets=("bearing", "spatial_word"), mlp=False)
    r = run_linear_probe(cfg)
    by = {s.target: s for s in r.scores}
    assert r.encoder == "oracle"
    assert by["bearing"].probe >= 0.9
    assert by["bearing"].shuffled < 0.1
    # the paper's instructions state left / right / straight ahead
    assert set(by["spatial_word"].details["classes"]) <= {"left", "right", "straight ahead"}
