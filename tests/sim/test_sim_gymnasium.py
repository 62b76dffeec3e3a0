"""Gymnasium conventions: `gymnasium.make` gives one env passing both env checkers; one seed per sub-env."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from vlnav_data.errors import ConfigError
from vlnav_data.sim import ENV_ID, ArenaEnv, make_arena, sample_episode_start

SMALL = {"image_height_px": 40, "image_width_px": 40}  # SB3 CnnPolicy needs >= 36 px
# Gymnasium's only remarks: privileged_state is declared unbounded (distances and positions have no
# fixed range across presets); nothing else may be reported.
UNBOUNDED_BOX = ("minimum value is -infinity", "maximum value is infinity")


def _first_episode_seed(seed: int) -> int:
    """The first episode seed of a stream seeded with ``seed`` (vector_env: default_rng(seed).integers)."""
    return int(np.random.default_rng(seed).integers(0, 2**63 - 1))


def test_make_gives_one_env_that_passes_gymnasiums_checker() -> None:
    env = gymnasium.make(ENV_ID, **SMALL)
    assert isinstance(env.unwrapped, ArenaEnv)
    assert env.observation_space["rgb"].shape == (40, 40, 3)
    assert env.observation_space["privileged_state"].shape == (11,)
    assert env.action_space.shape == (2,)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gymnasium_check_env(env.unwrapped)
    remarks = [str(w.message) for w in caught]
    assert all(any(u in r for u in UNBOUNDED_BOX) for r in remarks), remarks


def test_stable_baselines3_checker_passes_without_warnings() -> None:
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(gymnasium.make(ENV_ID, **SMALL), warn=True)
    assert [str(w.message) for w in caught] == []


def test_render_mode_rgb_array_returns_the_camera_frame() -> None:
    env = gymnasium.make(ENV_ID, render_mode="rgb_array", **SMALL)
    obs, _ = env.reset(seed=4)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (40, 40, 3)
    np.testing.assert_array_equal(frame, obs["rgb"])
    assert env.metadata["render_fps"] == 30


def test_single_env_episode_is_the_seeded_start_and_steps_like_the_vector_env() -> None:
    env = ArenaEnv(**SMALL)
    obs, info = env.reset(seed=11)
    episode_seed = _first_episode_seed(11)
    assert info["episode_seed"] == episode_seed
    start = sample_episode_start(env.config, episode_seed)
    assert info["target_index"] == start.target_index and isinstance(info["instruction"], str)
    vec = make_arena("text2nav", num_envs=1, autoreset_mode="disabled", **SMALL)
    vec_obs, _ = vec.reset(options={"episode_seeds": [episode_seed]})
    np.testing.assert_array_equal(obs["rgb"], vec_obs["rgb"][0])
    action = np.array([0.5, -0.25], dtype=np.float32)
    obs, reward, terminated, truncated, info = env.step(action)
    vec_obs, vec_reward, *_ = vec.step(action[None])
    np.testing.assert_array_equal(obs["privileged_state"], vec_obs["privileged_state"][0])
    assert isinstance(reward, float) and reward == pytest.approx(float(vec_reward[0]))
    assert terminated is False and truncated is False and info["env_steps"] == 1


def test_vector_reset_takes_one_seed_per_sub_environment() -> None:
    vec = make_arena("text2nav", num_envs=3, render=False)
    _, info = vec.reset(seed=[5, 6, 7])
    assert info["episode_seed"].tolist() == [_first_episode_seed(s) for s in (5, 6, 7)]
    _, again = vec.reset(seed=[5, 6, 7])
    assert again["episode_seed"].tolist() == info["episode_seed"].tolist()
    # sub-environment 1 continues the stream of ArenaEnv reset with seed 6, episode after episode
    single = ArenaEnv(render=False)
    single.reset(seed=6)
    rng = np.random.default_rng(6)
    rng.integers(0, 2**63 - 1)
    vec.reset(seed=[5, 6, 7])
    _, info = vec.reset(options={"reset_mask": np.array([False, True, False])})
    _, single_info = single.reset()
    assert info["episode_seed"][1] == single_info["episode_seed"] == int(rng.integers(0, 2**63 - 1))
    assert info["episode_seed"][0] == _first_episode_seed(5)  # untouched slots keep their episodes


def test_an_int_seed_still_seeds_one_shared_stream() -> None:
    vec = make_arena("text2nav", num_envs=3, render=False)
    _, info = vec.reset(seed=0)
    assert info["episode_seed"].tolist() == np.random.default_rng(0).integers(0, 2**63 - 1, size=3).tolist()


def test_bad_seed_lists_are_refused() -> None:
    vec = make_arena("text2nav", num_envs=2, render=False)
    with pytest.raises(ConfigError) as err:
        vec.reset(seed=[1, 2, 3])
    assert str(err.value) == "reset(seed=[...]) takes one seed per sub-environment (2), got 3"
    with pytest.raises(ConfigError, match=r"seed\[1\] must be an integer in \[0, 2\*\*63\), got -4"):
        vec.reset(seed=[1, -4])


def test_stepping_a_finished_episode_raises_until_reset() -> None:
    env = ArenaEnv(render=False, max_episode_steps=2)
    env.reset(seed=0)
    env.step(np.zeros(2, dtype=np.float32))
    *_, truncated, info = env.step(np.zeros(2, dtype=np.float32))
    assert truncated and info["termination"] == "time_limit"
    with pytest.raises(ConfigError, match="autoreset is disabled"):
        env.step(np.zeros(2, dtype=np.float32))
    _, info = env.reset()
    assert info["env_steps"] == 0
