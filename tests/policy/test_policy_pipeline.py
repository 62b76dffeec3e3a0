"""A dataset built in the arena -> train -> eval -> dagger: the pieces fit together."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlnav_data.collect import BuildConfig, build_dataset
from vlnav_data.dataset import DatasetReader
from vlnav_data.encoders import make_encoder, recorded_seed
from vlnav_data.policy.dagger import DaggerConfig, run_dagger
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.features import online_features
from vlnav_data.policy.model_dir import read_policy_spec
from vlnav_data.policy.train import TrainConfig, train_policy


@pytest.fixture(scope="module")
def arena_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy_pipeline") / "oracle.h5"
    build_dataset(
        BuildConfig(
            out=str(out),
            num_episodes=6,
            encoders=("oracle",),
            expert="pursuit",
            image_size_px=16,
            max_episode_steps=150,
            valid_fraction=0.3,
            num_envs=3,
            seed=0,
            device="cpu",
        )
    )
    return out


def test_online_features_equal_the_stored_ones(arena_dataset):
    encoder = make_encoder("oracle", seed=0)
    with DatasetReader(arena_dataset) as r:
        assert r.encoder_specs["oracle"]["revision"] == encoder.spec.revision
        ep = r.episode(r.demo_names[0], keys=["obs/privileged_state", "obs/oracle_joint"])
    live = online_features(encoder, "joint", None, ep["obs/privileged_state"], ep["instructions"])
    np.testing.assert_array_equal(live, ep["obs/oracle_joint"].astype(np.float32))


def test_train_then_eval_on_a_built_dataset(arena_dataset, tmp_path):
    model = tmp_path / "m"
    tr = train_policy(TrainConfig(dataset=arena_dataset, out_dir=model, num_steps=30))
    assert tr.encoder == "oracle" and tr.privileged_encoder
    assert tr.num_train_episodes + tr.num_valid_episodes == 6
    res = evaluate_policy(EvalConfig(model_dir=model, out_dir=tmp_path / "e", num_episodes=3, num_envs=3))
    assert res.expert_name == "pursuit"  # the dataset's expert, read from the file
    assert res.sim_config["max_episode_steps"] == 150 and res.sim_config["image_height_px"] == 16
    assert json.loads((tmp_path / "e" / "eval_meta.json").read_text())["num_episodes"] == 3
    spec = read_policy_spec(model)
    assert recorded_seed(spec.encoder_spec) == 0 and spec.dataset_expert == "pursuit"
    assert res.encoder_dtype == res.encoder_dtype_recorded == "float32" and res.encoder_dtype_override is None


@pytest.mark.slow
def test_dagger_runs_iterations_and_aggregates(arena_dataset, tmp_path):
    res = run_dagger(
        DaggerConfig(
            dataset=arena_dataset,
            out_dir=tmp_path / "d",
            iterations=2,
            num_steps=50,
            steps_per_iteration=20,
            episodes_per_iteration=2,
            eval_episodes=3,
            num_envs=3,
        )
    )
    rows = res.iterations
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert rows[0]["new_rows"] == 0 and rows[1]["new_rows"] > 0
    assert rows[2]["aggregated_rows"] == rows[0]["aggregated_rows"] + rows[1]["new_rows"] + rows[2]["new_rows"]
    assert (tmp_path / "d" / "iter_2" / "model.pt").is_file()
    assert (tmp_path / "d" / "success_per_iteration.png").is_file()
