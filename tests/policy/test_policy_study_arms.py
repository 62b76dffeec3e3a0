"""The study takes ``joint``, ``pixels`` and ``history:K`` as arms: every cell trains and evaluates."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vlnav_data.cli.study import app
from vlnav_data.collect import build_dataset
from vlnav_data.study.config import StudyConfig, study_cells

runner = CliRunner()


def test_probe_cells_only_for_frozen_features():
    cfg = StudyConfig(datasets=("a.h5",), out_dir="out", features=("joint", "pixels", "history:4"), seeds=1)
    cells = study_cells(cfg, {"a": ("oracle",)})
    assert [(c.kind, c.features) for c in cells] == [
        ("bc", "joint"),
        ("bc", "pixels"),
        ("bc", "history:4"),
        ("probe", "joint"),
    ]
    assert cells[2].cell_id.startswith("bc__a__oracle__history-4-")  # ':' kept out of directory names
    # `--recipe default`: each feature set trains with its own recipe, and its cells are named by it
    assert [c.recipe for c in cells if c.kind == "bc"] == ["paper", "pixels", "paper"]
    both = StudyConfig(datasets=("a.h5",), out_dir="out", features=("joint", "pixels"), recipes=("default", "paper"))
    bc = [(c.features, c.recipe) for c in study_cells(both, {"a": ("oracle",)}) if c.kind == "bc" and c.train_seed == 0]
    assert bc == [("joint", "paper"), ("pixels", "pixels"), ("pixels", "paper")]  # joint's default is paper: once


def test_study_runs_the_three_feature_sets(tmp_path, small_build):
    data = tmp_path / "px.h5"
    build_dataset(
        small_build(data, num_episodes=5, encoders=("siglip-tiny-random",), instructions="color", image_size_px=36,
                    max_episode_steps=30, valid_fraction=0.4, num_envs=5, seed=0)
    )  # fmt: skip
    out = tmp_path / "study"
    args = ["run", str(data), "--out", str(out), "--features", "joint", "--features", "pixels", "--features",
            "history:2", "--seeds", "1", "--num-episodes", "3", "--steps", "4", "--num-envs", "3", "--no-probes",
            "--device", "cpu"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    assert result["progress"]["finished"] == result["progress"]["total"] == 3
    cells = sorted(p for p in (out / "cells").iterdir() if p.name.startswith("bc__"))
    features = sorted(json.loads((c / "eval" / "eval_meta.json").read_text())["features"] for c in cells)
    assert features == ["history:2", "joint", "pixels"]
