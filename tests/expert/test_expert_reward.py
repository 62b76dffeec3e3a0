"""The expert's reward against hand-computed values (fixed and published heading terms), and the SB3
adapter's autoreset / terminal-observation / truncation semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.expert import expert_features, expert_reward
from vlnav_data.expert.sb3_vec_env import ArenaSB3VecEnv
from vlnav_data.sim import make_arena

# Robot root at z = 0, target centre at z = 0.1 (text2nav).
DZ = 0.1

# (pose [x, y, yaw], target index, termination, fixed reward, published reward), all by hand:
#   dist3 = sqrt(dxy^2 + 0.1^2); r = -0.1 * dist3 (10 on success, -5 out of bounds, overwriting);
#   fixed:     r += 0.1 * cos(heading, goal direction)    (not out of bounds)
#   published: r += 0.1 * 0.1 / dist3                      (the up-axis bug; not out of bounds)
CASES = [
    # 2 m straight ahead of the red ball: dist3 = sqrt(4.01)
    ([0.5, 0.0, 0.0], 0, "", -0.1 * math.sqrt(4.01) + 0.1, -0.1 * math.sqrt(4.01) + 0.01 / math.sqrt(4.01)),
    # same place facing away: cos = -1
    ([0.5, 0.0, math.pi], 0, "", -0.1 * math.sqrt(4.01) - 0.1, -0.1 * math.sqrt(4.01) + 0.01 / math.sqrt(4.01)),
    # facing +y with the green ball (2.5, 0.5) at dxy = (2, 0.5): cos = 0.5 / sqrt(4.25)
    (
        [0.5, 0.0, math.pi / 2],
        1,
        "",
        -0.1 * math.sqrt(4.26) + 0.1 * 0.5 / math.sqrt(4.25),
        -0.1 * math.sqrt(4.26) + 0.01 / math.sqrt(4.26),
    ),
    # 0.2 m short of the red ball, facing it: success (dist3 = sqrt(0.05) < 0.3), 10 + heading term
    ([2.3, 0.0, 0.0], 0, "success", 10.0 + 0.1, 10.0 + 0.01 / math.sqrt(0.05)),
    # beyond the front bound, far from every ball: -5 whatever the heading
    ([2.6, 0.75, 0.0], 0, "out_of_bounds_front", -5.0, -5.0),
]


@pytest.mark.parametrize("variant", ["fixed", "published"])
def test_reward_matches_hand_computed_values_through_the_arena(variant):
    env = make_arena("text2nav", num_envs=len(CASES), render=False)
    env.reset(seed=0)
    poses = np.array([c[0] for c in CASES])
    env.set_state(np.arange(len(CASES)), poses, np.array([c[1] for c in CASES]))
    # Zero action leaves every pose unchanged; termination is evaluated on those poses.
    obs, arena_reward, _, _, info = env.step(np.zeros((len(CASES), 2)))
    final_state = np.where(info["_final_obs"][:, None], info["final_obs"]["privileged_state"], obs["privileged_state"])
    assert list(info["termination"]) == [c[2] for c in CASES]
    got = expert_reward(arena_reward, final_state, info["termination"], target_dz_m=DZ, variant=variant)
    want = [c[3] if variant == "fixed" else c[4] for c in CASES]
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)
    assert got.dtype == np.float32


def test_published_heading_term_does_not_depend_on_heading():
    env = make_arena("text2nav", num_envs=8, render=False)
    env.reset(seed=0)
    yaws = np.linspace(-math.pi, math.pi, 8, endpoint=False)
    poses = np.stack([np.full(8, 0.3), np.full(8, 0.1), yaws], axis=1)
    state = env.set_state(np.arange(8), poses, np.full(8, 2))[0]["privileged_state"]
    published = expert_reward(np.zeros(8), state, np.full(8, ""), target_dz_m=DZ, variant="published")
    fixed = expert_reward(np.zeros(8), state, np.full(8, ""), target_dz_m=DZ, variant="fixed")
    assert np.ptp(published) < 1e-6
    assert np.ptp(fixed) == pytest.approx(0.2, abs=0.01)  # +0.1 facing the goal ... -0.1 facing away


def test_unknown_reward_variant_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown reward variant 'fixd'.*Did you mean 'fixed'"):
        expert_reward(np.zeros(1), np.zeros((1, 11)), np.array([""]), target_dz_m=DZ, variant="fixd")


def test_adapter_reports_terminal_observation_and_rewards_the_final_state():
    arena = make_arena("text2nav", num_envs=3, render=False)
    venv = ArenaSB3VecEnv(arena, reward="fixed", seed=5)
    venv.reset()
    # env 0 at a success pose, env 1 out of bounds, env 2 running.
    poses = np.array([[2.3, 0.0, 0.0], [2.6, 0.75, 0.0], [0.5, 0.0, 0.0]])
    obs, _ = arena.set_state(np.arange(3), poses, np.array([0, 0, 0]))
    final_features = expert_features(obs["privileged_state"])  # zero action: the final state is this one
    features, reward, done, infos = venv.step(np.zeros((3, 2), dtype=np.float32))
    np.testing.assert_array_equal(done, [True, True, False])
    np.testing.assert_allclose(reward, [10.1, -5.0, CASES[0][3]], atol=2e-6)
    for i in (0, 1):
        np.testing.assert_array_equal(infos[i]["terminal_observation"], final_features[i])
        assert infos[i]["TimeLimit.truncated"] is False
        assert infos[i]["episode"]["l"] == 1
        # the returned row is the next episode's first observation, not the final one
        assert not np.array_equal(features[i], final_features[i])
    assert infos[0]["termination"] == "success" and infos[1]["termination"] == "out_of_bounds_front"
    assert infos[2] == {}
    np.testing.assert_array_equal(features[2], final_features[2])


def test_adapter_marks_time_limit_as_truncation_for_bootstrapping():
    arena = make_arena("text2nav", num_envs=2, render=False, max_episode_steps=3)
    venv = ArenaSB3VecEnv(arena, reward="fixed", reward_scale=2.0, seed=1)
    venv.reset()
    arena.set_state(np.arange(2), np.array([[0.3, 0.0, 0.0], [0.3, 0.0, 0.0]]), np.array([0, 0]))
    rewards = []
    for _ in range(3):
        _, reward, done, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
        rewards.append(reward)
    assert done.all()
    assert all(info["TimeLimit.truncated"] is True for info in infos)
    assert all(info["termination"] == "time_limit" for info in infos)
    per_step = -0.1 * math.sqrt(2.2**2 + 0.01) + 0.1
    np.testing.assert_allclose(np.array(rewards), 2.0 * per_step, atol=5e-6)  # scaled for the learner
    assert infos[0]["episode"]["r"] == pytest.approx(3 * per_step, abs=1e-5)  # unscaled episode return
    assert infos[0]["episode"]["l"] == 3
