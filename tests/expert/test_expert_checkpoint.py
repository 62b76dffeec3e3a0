"""Slim checkpoints: SB3 -> save -> load gives identical actions; bad files give one clear CheckpointError;
the shipped text2nav checkpoint solves seeded episodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.errors import CheckpointError
from vlnav_data.expert import SHIPPED_CHECKPOINT, episode_seeds, expert_features, load_expert
from vlnav_data.expert.checkpoint import expert_from_sb3
from vlnav_data.expert.evaluate import run_episodes
from vlnav_data.expert.sb3_vec_env import ArenaSB3VecEnv
from vlnav_data.sim import make_arena


def _random_states(n: int, seed: int = 0) -> np.ndarray:
    env = make_arena("text2nav", num_envs=n, render=False)
    obs, _ = env.reset(seed=seed)
    return obs["privileged_state"]


@pytest.fixture(scope="module")
def sb3_model():
    from stable_baselines3 import PPO

    torch.manual_seed(0)
    venv = ArenaSB3VecEnv(make_arena("text2nav", num_envs=8, render=False), seed=0)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={"net_arch": {"pi": [16, 16], "vf": [16, 16]}},
        seed=0,
        device="cpu",
    )
    model.learn(256)  # one update, so the weights are not the initial ones
    return model


def test_save_load_gives_identical_actions(sb3_model, tmp_path):
    states = _random_states(64)
    sb3_actions, _ = sb3_model.predict(expert_features(states), deterministic=True)
    expert = expert_from_sb3(sb3_model, preset="text2nav", action_mapping="bang_bang", train_config={"seed": 0})
    path = expert.save(tmp_path / "expert.pt")
    loaded = load_expert(path)
    actions = loaded({"privileged_state": states}, None)
    np.testing.assert_array_equal(actions, expert.actions(states))  # save -> load: bit-identical
    # the numpy forward pass equals SB3's deterministic predict up to float32 rounding
    np.testing.assert_allclose(actions, np.clip(sb3_actions, -1, 1), rtol=0, atol=1e-6)
    for got, want in zip(loaded.actor.state_dict().values(), expert.actor.state_dict().values(), strict=True):
        assert torch.equal(got, want)
    assert (loaded.preset, loaded.action_mapping, loaded.hidden_sizes) == ("text2nav", "bang_bang", (16, 16))
    assert loaded.train_config == {"seed": 0}
    assert load_expert(tmp_path).path == path  # a train output directory resolves to its expert.pt


def test_missing_checkpoint(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError) as err:
        load_expert(path)
    assert str(err.value) == (
        f"expert checkpoint not found: {path}; expected an expert.pt written by `vlnav-expert train` (or its "
        "output directory); omit --checkpoint to use the shipped text2nav expert"
    )
    with pytest.raises(CheckpointError, match="has no expert.pt"):
        load_expert(tmp_path)


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "expert.pt"
    path.write_bytes(b"\x00not a torch file at all")
    with pytest.raises(CheckpointError) as err:
        load_expert(path)
    assert str(err.value).startswith(f"cannot read expert checkpoint {path}: it is corrupt or not a torch file (")
    assert str(err.value).endswith("); expected an expert.pt written by `vlnav-expert train`")


def test_truncated_and_foreign_checkpoints(sb3_model, tmp_path):
    good = expert_from_sb3(sb3_model, preset="text2nav", action_mapping="bang_bang").save(tmp_path / "good.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or not a torch file"):
        load_expert(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError) as err:
        load_expert(foreign)
    assert str(err.value) == (
        f"{foreign} is not a vlnav expert checkpoint (format None, expected 'vlnav-expert'); pass an expert.pt "
        "written by `vlnav-expert train`"
    )
    payload = torch.load(good, weights_only=True)
    payload["hidden_sizes"] = [8, 8]
    bad_shapes = tmp_path / "shapes.pt"
    torch.save(payload, bad_shapes)
    with pytest.raises(CheckpointError, match=r"is inconsistent: its actor weights do not fit hidden_sizes=\[8, 8\]"):
        load_expert(bad_shapes)


def test_preset_mismatch(sb3_model, tmp_path):
    path = expert_from_sb3(sb3_model, preset="text2nav", action_mapping="bang_bang").save(tmp_path / "expert.pt")
    with pytest.raises(CheckpointError) as err:
        load_expert(path, preset="text2nav-velocity", action_mapping="velocity")
    assert str(err.value) == (
        f"expert checkpoint ({path}) was trained on preset 'text2nav' with action mapping 'bang_bang', but the "
        "arena is preset 'text2nav-velocity' with action mapping 'velocity'; evaluate it on 'text2nav'/'bang_bang', "
        "or train an expert for this arena with `vlnav-expert train --preset text2nav-velocity`"
    )


def test_shipped_checkpoint_is_small_and_loads_by_default():
    assert SHIPPED_CHECKPOINT.is_file()
    assert SHIPPED_CHECKPOINT.stat().st_size < 16_000
    expert = load_expert()
    assert expert.path == SHIPPED_CHECKPOINT
    assert (expert.preset, expert.action_mapping) == ("text2nav", "bang_bang")
    actions = expert({"privileged_state": _random_states(16)}, None)
    assert actions.shape == (16, 2) and actions.dtype == np.float32 and np.abs(actions).max() <= 1.0


def test_shipped_checkpoint_solves_200_seeded_episodes():
    env = make_arena("text2nav", num_envs=200, render=False)  # one episode per arena
    runs = run_episodes(env, load_expert(), episode_seeds(7, 200))
    success_rate = runs["success"].mean()
    assert success_rate >= 0.98, dict(zip(*np.unique(runs["termination"], return_counts=True), strict=True))
    assert runs["num_steps"][runs["success"]].mean() < 125  # pursuit: ~106 env steps on text2nav
