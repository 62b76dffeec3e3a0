"""build_dataset: determinism, labels, shards, resume refusal. Cheap paths: oracle encoder, pursuit, 32 px."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vlnav_data.collect import build_dataset, dart_noise, load_build_toml, parse_shard
from vlnav_data.dataset import DatasetReader, episode_seed, partial_path
from vlnav_data.dataset.merge import merge_datasets
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError


@pytest.fixture
def same_builds(dataset_arrays, assert_same_arrays):
    """``same_builds(a, b)``: two files hold the same arrays, attributes and stored instruction rows."""
    return lambda a, b: assert_same_arrays(*(dataset_arrays(p, instruction_index=True) for p in (a, b)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_build):
    d = tmp_path_factory.mktemp("ref")
    cfg = small_build(d / "ref.h5")
    return build_dataset(cfg), cfg


def test_build_writes_a_valid_file_with_the_expected_content(reference):
    result, cfg = reference
    assert validate_dataset(result.path) == []
    assert result.num_episodes == 4 and result.new_episodes == 4 and result.resumed_episodes == 0
    with DatasetReader(result.path) as r:
        assert r.encoders == ("oracle",)
        assert r.build_config == cfg.stored()
        assert r.sim_config["image_height_px"] == 32 and r.sim_config["max_episode_steps"] == 25
        assert r.fps == pytest.approx(30.0)
        assert r.rebuild_command == cfg.command()
        assert r.total_steps == result.num_steps
        for i, n in enumerate(r.demo_names):
            a = r.attrs(n)
            assert a["episode_index"] == i and a["seed"] == episode_seed(7, i)
            assert a["expert"] == "pursuit"
            e = r.episode(n)
            t = a["num_samples"]
            assert e["obs/rgb"].shape == (t, 32, 32, 3)
            assert t <= 25 and (a["termination"] == "time_limit") == (t == 25 and not a["success"])
            assert e["dones"].tolist() == [0] * (t - 1) + [1]
            # Label = executed action without noise; wheel speeds follow the bang-bang mapping.
            np.testing.assert_array_equal(np.sign(e["action_dict/wheel_vel"]), np.sign(e["actions"]))
            # Joint = l2(l2(image) + l2(text)) of the stored image and instruction embeddings (float16).
            te = r.text_embeddings("oracle")[e["instruction_index"]]
            img = e["obs/oracle_image"].astype(np.float64)
            img /= np.linalg.norm(img, axis=1, keepdims=True)
            joint = img + te
            joint /= np.linalg.norm(joint, axis=1, keepdims=True)
            np.testing.assert_allclose(e["obs/oracle_joint"], joint, atol=2e-3)


def test_same_config_gives_identical_arrays_regardless_of_num_envs(reference, tmp_path, same_builds, small_build):
    result, _ = reference
    again = build_dataset(small_build(tmp_path / "again.h5", num_envs=3))
    same_builds(result.path, again.path)


def test_shards_merge_into_the_unsharded_build(reference, tmp_path, dataset_arrays, assert_same_arrays, small_build):
    result, _ = reference
    shards = [build_dataset(small_build(tmp_path / f"s{i}.h5", shard_index=i, num_shards=2)).path for i in range(2)]
    with DatasetReader(shards[1]) as r:
        assert [r.attrs(n)["episode_index"] for n in r.demo_names] == [1, 3]
    merged = merge_datasets(shards, tmp_path / "merged.h5")
    assert validate_dataset(merged.path) == []
    assert_same_arrays(dataset_arrays(result.path), dataset_arrays(merged.path))  # instruction rows as strings
    with DatasetReader(merged.path) as r:
        assert r.build_config["num_shards"] == 1


def test_dart_noise_perturbs_execution_but_not_the_label(tmp_path, small_build):
    from vlnav_data.expert import PursuitController
    from vlnav_data.sim import get_preset

    res = build_dataset(small_build(tmp_path / "dart.h5", num_episodes=2, noise_std=0.6))
    expert = PursuitController.for_arena(get_preset("text2nav"))
    flipped = 0
    with DatasetReader(res.path) as r:
        for n in r.demo_names:
            e = r.episode(n)
            np.testing.assert_array_equal(e["actions"], expert.actions(e["obs/privileged_state"]))
            nonzero = e["actions"] != 0
            flipped += int((np.sign(e["action_dict/wheel_vel"]) != np.sign(e["actions"]))[nonzero].sum())
            assert r.attrs(n)["executed_actions_noisy"]
    assert flipped > 0
    a, b = dart_noise(np.array([5, 5]), np.array([3, 4]), 1.0), dart_noise(np.array([5]), np.array([3]), 1.0)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], a[1])


def test_resume_with_a_different_config_names_the_fields(tmp_path, small_build):
    cfg = small_build(tmp_path / "r.h5", num_episodes=2)
    build_dataset(cfg)
    path = tmp_path / "r.h5"
    path.rename(partial_path(path))  # pretend the build was interrupted before finalize
    with pytest.raises(ConfigError, match=r"seed \(file: 7, now: 8\)") as info:
        build_dataset(dataclasses.replace(cfg, seed=8, expert="pursuit", max_episode_steps=20, resume=True))
    assert "max_episode_steps" in str(info.value) and "sim_config.max_episode_steps" in str(info.value)
    assert not path.exists()
    # Extending a build is allowed: episodes are a function of their index.
    res = build_dataset(dataclasses.replace(cfg, num_episodes=3, resume=True))
    assert res.resumed_episodes == 2 and res.new_episodes == 1 and res.num_episodes == 3


def test_bad_configs_are_config_errors(tmp_path, small_build):
    with pytest.raises(ConfigError, match="unknown encoder 'siglp'.*Did you mean 'siglip'"):
        small_build(tmp_path / "x.h5", encoders=("siglp",))
    with pytest.raises(ConfigError, match="unknown preset"):
        small_build(tmp_path / "x.h5", preset="nope")
    with pytest.raises(ConfigError, match="unknown expert"):
        small_build(tmp_path / "x.h5", expert="human")
    with pytest.raises(ConfigError, match="exclude each other"):
        small_build(tmp_path / "x.h5", resume=True, overwrite=True)
    with pytest.raises(ConfigError, match="shard"):
        small_build(tmp_path / "x.h5", shard_index=2, num_shards=2)
    with pytest.raises(ConfigError):
        parse_shard("1-2")
    assert parse_shard("1/4") == (1, 4)
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"keep")
    with pytest.raises(ConfigError, match="already exists"):
        build_dataset(small_build(tmp_path / "exists.h5"))
    assert existing.read_bytes() == b"keep"


def test_toml_config_is_read_and_checked(tmp_path):
    p = tmp_path / "b.toml"
    p.write_text('[build]\nout = "x.h5"\nencoder = ["oracle"]\nshard = "1/3"\nnum-episodes = 5\n')
    values = load_build_toml(p)
    assert values == {"out": "x.h5", "encoders": ("oracle",), "shard_index": 1, "num_shards": 3, "num_episodes": 5}
    p.write_text('[build]\nout = "x.h5"\nnum_episode = 5\n')
    with pytest.raises(ConfigError, match="unknown key 'num_episode'.*num_episodes"):
        load_build_toml(p)


def test_default_ppo_expert_labels_its_own_actions(tmp_path, small_build):
    from vlnav_data.expert import load_expert

    res = build_dataset(small_build(tmp_path / "ppo.h5", num_episodes=2, expert="ppo"))
    expert = load_expert()
    with DatasetReader(res.path) as r:
        for n in r.demo_names:
            e = r.episode(n, keys=["actions", "obs/privileged_state"])
            assert r.attrs(n)["expert"] == "ppo"
            np.testing.assert_allclose(e["actions"], expert.actions(e["obs/privileged_state"]), atol=1e-5)


def test_a_partial_file_started_with_the_coin_rule_resumes_only_with_it(tmp_path, small_build):
    import h5py

    cfg = small_build(tmp_path / "legacy.h5", num_episodes=2, split_rule="coin")
    build_dataset(cfg)
    path = tmp_path / "legacy.h5"
    path.rename(partial_path(path))
    with h5py.File(partial_path(path), "r+") as f:  # as written before split_rule existed
        stored = json.loads(f.attrs["build_config_json"])
        del stored["split_rule"]
        f.attrs["build_config_json"] = json.dumps(stored)
    with pytest.raises(ConfigError, match=r'split_rule \(file: "coin", now: "stratified"\)'):
        build_dataset(dataclasses.replace(cfg, split_rule="stratified", num_episodes=3, resume=True))
    res = build_dataset(dataclasses.replace(cfg, num_episodes=3, resume=True))
    assert res.resumed_episodes == 2 and res.new_episodes == 1


def test_a_build_through_an_env_factory_equals_the_preset_build(reference, tmp_path, same_builds):
    """The builtin arena handed over as a factory records exactly the preset build's episodes."""
    from vlnav_data.sim import get_preset, make_arena

    result, cfg = reference
    arena = dataclasses.replace(get_preset("text2nav"), image_height_px=32, image_width_px=32, max_episode_steps=25)
    made = []

    def factory(num_envs):
        made.append(num_envs)
        return make_arena(arena, num_envs=num_envs, render=True)

    # The config's own preset would be a different arena: the factory's env.config is what is recorded.
    other = dataclasses.replace(cfg, out=str(tmp_path / "factory.h5"), preset="text2nav-random")
    via_factory = build_dataset(other, env_factory=factory)
    assert made == [1, 2]  # the contract check on one env, then the build's arenas
    same_builds(result.path, via_factory.path)
    with DatasetReader(via_factory.path) as r:
        assert r.sim_config["image_height_px"] == 32 and r.sim_config["name"] == "text2nav"
    assert validate_dataset(via_factory.path) == []


def test_an_env_factory_that_breaks_the_contract_is_refused_before_any_model_loads(tmp_path, small_build):
    from vlnav_data.sim import make_arena

    def no_frames(num_envs):
        return make_arena("text2nav", num_envs=num_envs, render=False)

    with pytest.raises(ConfigError, match=r"^env_factory must return an env that renders frames"):
        build_dataset(small_build(tmp_path / "x.h5"), env_factory=no_frames)
    assert not (tmp_path / "x.h5").exists() and not partial_path(tmp_path / "x.h5").exists()
