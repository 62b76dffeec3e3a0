"""A dataset built in the arena -> train -> eval -> dagger: the pieces fit together."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.dataset import DatasetReader
from vlnav_data.encoders import make_encoder, recorded_seed
from vlnav_data.policy.dagger import DaggerConfig, run_dagger
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
from vlnav_data.policy.features import online_features
from vlnav_data.policy.model_dir import read_policy_spec
from vlnav_data.policy.records import EpisodeRecords
from vlnav_data.policy.train import TrainConfig, train_policy
from vlnav_data.sim import arena_config_from_json


@pytest.fixture(scope="module")
def arena_dataset(tmp_path_factory, small_build):
    out = tmp_path_factory.mktemp("policy_pipeline") / "oracle.h5"
    build_dataset(
        small_build(
            out, num_episodes=6, image_size_px=16, max_episode_steps=150, valid_fraction=0.3, num_envs=3, seed=0
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


@pytest.fixture(scope="module")
def arena_model(arena_dataset, tmp_path_factory):
    model = tmp_path_factory.mktemp("policy_pipeline_model") / "m"
    trained = train_policy(TrainConfig(dataset=arena_dataset, out_dir=model, num_steps=30))
    assert trained.encoder == "oracle" and trained.privileged_encoder
    assert trained.num_train_episodes + trained.num_valid_episodes == 6
    return model


def test_train_then_eval_on_a_built_dataset(arena_model, tmp_path):
    spec = read_policy_spec(arena_model)
    res = evaluate_policy(EvalConfig(model_dir=arena_model, out_dir=tmp_path / "e", num_episodes=4, num_envs=2))
    assert res.expert_name == "pursuit"  # the dataset's expert, read from the file
    assert res.sim_config["max_episode_steps"] == 150 and res.sim_config["image_height_px"] == 16
    assert recorded_seed(spec.encoder_spec) == 0 and spec.dataset_expert == "pursuit"
    assert res.encoder_dtype == res.encoder_dtype_recorded == "float32" and res.encoder_dtype_override is None

    # Every summary in result.json is what the per-episode records say, computed here by hand.
    meta = json.loads((tmp_path / "e" / "eval_meta.json").read_text())
    assert meta["num_episodes"] == 4
    student = EpisodeRecords.load(tmp_path / "e" / "episodes.npz")
    expert = EpisodeRecords.load(tmp_path / "e" / "expert_episodes.npz")
    for summary, rec in ((meta["student"], student), (meta["expert"], expert)):
        ok = rec.success.astype(bool)
        assert summary["success"]["successes"] == int(ok.sum()) and summary["success"]["trials"] == 4
        assert sum(summary["termination_causes"].values()) == 4
        assert summary["termination_causes"].get("success", 0) == int(ok.sum())
        if ok.any():
            assert summary["mean_env_steps_successes"] == pytest.approx(rec.num_steps[ok].mean())
            assert summary["max_env_steps_successes"] == rec.num_steps[ok].max()
        else:
            assert summary["mean_env_steps_successes"] is None
    both = student.success.astype(bool) & expert.success.astype(bool)
    ratio = meta["paired_step_ratio"]
    assert ratio["num_pairs"] == int(both.sum())
    if both.any():
        assert ratio["ratio_of_means"] == pytest.approx(student.num_steps[both].mean() / expert.num_steps[both].mean())
        assert ratio["median_of_ratios"] == pytest.approx(np.median(student.num_steps[both] / expert.num_steps[both]))
    else:
        assert ratio["ratio_of_means"] is None and ratio["median_of_ratios"] is None


def test_expert_eval_and_policy_eval_write_one_schema(arena_model, tmp_path):
    """`vlnav-expert eval` and `vlnav-policy eval` name the same quantities the same way (eval_summary)."""
    from vlnav_data.cli._common import emit_result
    from vlnav_data.eval_summary import SUCCESS_KEYS, OutcomeSummary, PairedStepRatio
    from vlnav_data.expert import EvalConfig as ExpertEvalConfig
    from vlnav_data.expert import evaluate_expert

    policy = evaluate_policy(EvalConfig(model_dir=arena_model, out_dir=tmp_path / "p", num_episodes=2, num_envs=2))
    expert = evaluate_expert(ExpertEvalConfig(num_episodes=2, num_envs=2, seed=0, device="cpu"))
    p = json.loads(emit_result(policy, tmp_path / "p").read_text())
    e = json.loads(emit_result(expert, tmp_path / "x").read_text())
    shared = [f.name for f in dataclasses.fields(OutcomeSummary)]
    for summary in (p["student"], p["expert"], e["expert"], e["pursuit"]):
        assert set(shared) <= set(summary)
        assert set(summary["success"]) == set(SUCCESS_KEYS)
    ratio_keys = {f.name for f in dataclasses.fields(PairedStepRatio)}
    assert set(p["paired_step_ratio"]) == set(e["paired_step_ratio"]) == ratio_keys
    assert (p["paired_step_ratio"]["policy"], p["paired_step_ratio"]["reference"]) == ("student", "expert")
    assert (e["paired_step_ratio"]["policy"], e["paired_step_ratio"]["reference"]) == ("expert", "pursuit")
    assert "unpaired_step_ratio" in p and "unpaired_step_ratio" in e
    for old_name in ("paired_ratio", "step_ratio_to_pursuit", "unpaired_ratio"):
        assert old_name not in p and old_name not in e


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
    # Each iteration's evaluation is in the shared schema and agrees with its own eval directory.
    for row in rows[1:]:
        meta = json.loads((tmp_path / "d" / f"iter_{row['iteration']}" / "eval" / "eval_meta.json").read_text())
        assert row["success"] == meta["student"]["success"] and row["paired_step_ratio"] == meta["paired_step_ratio"]


def test_dagger_labels_are_the_experts_actions_at_the_visited_states(arena_dataset, arena_model, tmp_path):
    """The aggregated rows carry the pursuit controller's action at each state the student visited."""
    from vlnav_data.expert.pursuit import PursuitController
    from vlnav_data.policy.dagger import collect_student_states

    config = DaggerConfig(dataset=arena_dataset, out_dir=tmp_path / "d", episodes_per_iteration=2, num_envs=2)
    got = collect_student_states(arena_model, config, iteration=1)
    arena = arena_config_from_json(read_policy_spec(arena_model).sim_config)
    rows = got.stats["new_rows"]
    assert got.features.shape == (rows, 1152) and got.actions.shape == (rows, 2)
    assert got.privileged_states.shape == (rows, 11)
    # The pursuit controller is a pure function of the state: recompute every label from its row's state.
    expected = np.clip(PursuitController.for_arena(arena)({"privileged_state": got.privileged_states}), -1, 1)
    np.testing.assert_array_equal(got.actions, expected)
    assert got.stats["collection_episodes"] == 2 and np.isfinite(got.features).all()
