"""Vector-env contract: counters, autoreset modes, rollout, determinism, registration."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from vlnav_data.errors import ConfigError
from vlnav_data.sim import ENV_ID, get_preset, make_arena, rollout, sample_episode_start


def drive_forward(obs, info):
    """Straight ahead: every episode ends by leaving the arena (or reaching a sphere) well before 600 steps."""
    return np.ones((len(obs["privileged_state"]), 2))


class CountingEnv:
    """Wraps an env and counts step() calls (delegates everything else)."""

    def __init__(self, env):
        self.env = env
        self.steps = 0

    def step(self, actions):
        self.steps += 1
        return self.env.step(actions)

    def __getattr__(self, name):
        return getattr(self.env, name)


def test_env_steps_advance_exactly_once_per_step_and_reset_with_set_state():
    env = make_arena("text2nav", num_envs=4, render=False)
    obs, info = env.reset(seed=3)
    assert info["env_steps"].tolist() == [0, 0, 0, 0]
    env.set_state([0, 1, 2, 3], [[0.0, 0.0, 1.5]] * 4, [0, 1, 2, 3])  # face the side wall, far from bounds
    for k in range(1, 8):
        *_, info = env.step(np.zeros((4, 2)))
        assert info["env_steps"].tolist() == [k] * 4
    _, info = env.set_state([2], [[0.1, 0.0, 0.0]], [0])
    assert info["env_steps"].tolist() == [7, 7, 0, 7]


@pytest.mark.parametrize("mode", ["same_step", "next_step", "disabled"])
def test_rollout_yields_whole_episodes_in_every_autoreset_mode(mode):
    seeds = [11, 12, 13, 14, 15, 16, 17]
    env = CountingEnv(make_arena("text2nav", num_envs=3, render=False, autoreset_mode=mode))
    episodes = sorted(rollout(env, drive_forward, seeds), key=lambda e: e.episode_index)
    assert [e.episode_index for e in episodes] == list(range(7))
    assert [e.episode_seed for e in episodes] == seeds
    cfg = get_preset("text2nav")
    for ep in episodes:
        start = sample_episode_start(cfg, ep.episode_seed)
        np.testing.assert_allclose(ep.privileged_state[0, :2], start.pose[:2], atol=1e-6)
        assert ep.target_index == start.target_index
        assert ep.num_steps == len(ep.actions) == len(ep.rewards) == len(ep.instructions) == len(ep.privileged_state)
        # Driving straight from the start box at 0.6 m/s (0.02 m per step) leaves the arena; a reset-step
        # transition would show up as a zero reward or a jump back to a start pose.
        assert (ep.rewards != 0).all()
        steps_xy = np.diff(np.vstack([ep.privileged_state[:, :2], ep.final_privileged_state[:2]]), axis=0)
        np.testing.assert_allclose(np.hypot(*steps_xy.T), 0.02, atol=1e-5)
        assert ep.termination.startswith("out_of_bounds") or ep.termination == "success"
        assert ep.success == (ep.termination == "success")
    # Every slot steps together: the calls are at least the longest chain of episodes on one slot.
    assert env.steps >= max(e.num_steps for e in episodes)
    assert env.steps <= sum(e.num_steps for e in episodes)


def test_rollout_results_do_not_depend_on_the_autoreset_mode():
    seeds = [5, 6, 7, 8, 9]
    runs = {}
    for mode in ("same_step", "next_step", "disabled"):
        env = make_arena("text2nav", num_envs=2, render=False, autoreset_mode=mode)
        runs[mode] = sorted(rollout(env, drive_forward, seeds), key=lambda e: e.episode_index)
    for mode in ("next_step", "disabled"):
        for a, b in zip(runs["same_step"], runs[mode], strict=True):
            assert (a.num_steps, a.termination, a.target_index) == (b.num_steps, b.termination, b.target_index)
            np.testing.assert_array_equal(a.privileged_state, b.privileged_state)
            np.testing.assert_array_equal(a.rewards, b.rewards)


@pytest.mark.parametrize("mode", ["same_step", "next_step", "disabled"])
def test_rollout_window_bounds_how_far_episodes_run_ahead_of_a_slow_one(mode):
    """Episode 0 stands still until a 400-step time limit while the others drive out of the arena (or into
    a sphere) in 30-130 steps. Without a window the other slots run far ahead; with ``max_ahead=4`` an
    episode only starts while it is within 4 of the lowest episode not yet finished, and the episodes
    themselves are unchanged."""
    seeds = list(range(100, 112))

    def still_first(obs, info):
        actions = np.ones((len(obs["privileged_state"]), 2))
        actions[np.asarray(info["episode_seed"]) == seeds[0]] = 0.0
        return actions

    runs = {}
    for window in (None, 4):
        env = make_arena("text2nav", num_envs=3, render=False, autoreset_mode=mode, max_episode_steps=400)
        eps = list(rollout(env, still_first, seeds, max_ahead=window))
        order = [e.episode_index for e in eps]
        runs[window] = (order, sorted(eps, key=lambda e: e.episode_index))
        assert sorted(order) == list(range(12))
    unbounded, bounded = runs[None][0], runs[4][0]
    assert unbounded.index(0) >= 8  # many later episodes finished before the slow one
    for k, idx in enumerate(bounded):
        lowest_unfinished = min(set(range(12)) - set(bounded[:k]))
        assert idx < lowest_unfinished + 4, (k, idx, bounded)
    assert bounded.index(0) <= 3
    assert runs[None][1][0].termination == "time_limit" and runs[None][1][0].num_steps == 400
    for a, b in zip(runs[None][1], runs[4][1], strict=True):
        assert (a.episode_seed, a.num_steps, a.termination) == (b.episode_seed, b.num_steps, b.termination)
        np.testing.assert_array_equal(a.privileged_state, b.privileged_state)


def test_rollout_rejects_a_window_that_is_not_a_positive_integer():
    env = make_arena("text2nav", num_envs=2, render=False)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match=f"max_ahead must be a positive integer or None, got {bad!r}"):
            list(rollout(env, drive_forward, [1, 2], max_ahead=bad))


def test_same_step_autoreset_counts_episodes_and_hands_back_final_observations():
    env = make_arena("text2nav", num_envs=2, render=False)
    env.reset(seed=0)
    env.set_state([0, 1], [[2.4, 1.3, 0.0], [1.0, 0.0, 1.5708]], [0, 0])  # env 0 leaves at step 6
    lengths = []
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(np.ones((2, 2)))
        done = terminated | truncated
        if done[0]:
            lengths.append(info["env_steps"][0])
            assert info["termination"][0] == "out_of_bounds_front"
            assert info["final_obs"]["privileged_state"][0, 0] > 2.5  # the final pose, past the bound
            assert obs["privileged_state"][0, 0] < 0.8  # the new episode's start
            assert info["episode_seed"][0] != 0
    assert lengths == [6]  # (2.5 - 2.4) / 0.02 = 5 steps to reach the bound, the 6th crosses it


def test_next_step_autoreset_makes_one_reset_step():
    env = make_arena("text2nav", num_envs=1, render=False, autoreset_mode="next_step")
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    env.reset(seed=0)
    env.set_state([0], [[2.49, 1.3, 0.0]], [0])
    _, _, terminated, _, info = env.step(np.ones((1, 2)))
    assert terminated[0] and info["env_steps"][0] == 1
    obs, reward, terminated, truncated, info = env.step(np.ones((1, 2)))  # reset step: action ignored
    assert reward[0] == 0 and not terminated[0] and not truncated[0] and info["env_steps"][0] == 0
    start = sample_episode_start(get_preset("text2nav"), int(info["episode_seed"][0]))
    np.testing.assert_allclose(obs["privileged_state"][0, :2], start.pose[:2], atol=1e-6)


def test_disabled_autoreset_refuses_to_step_a_finished_env():
    env = make_arena("text2nav", num_envs=1, render=False, autoreset_mode="disabled")
    env.reset(seed=0)
    env.set_state([0], [[2.49, 1.3, 0.0]], [0])
    env.step(np.ones((1, 2)))
    with pytest.raises(ConfigError, match=r"envs \[0\] finished their episodes and autoreset is disabled"):
        env.step(np.ones((1, 2)))
    env.reset(options={"reset_mask": np.array([True])})
    env.step(np.ones((1, 2)))


def test_same_seed_same_actions_same_states_and_frames():
    def run():
        env = make_arena("text2nav-random", num_envs=3, render=True)
        obs, _ = env.reset(seed=42)
        frames, states = [obs["rgb"]], [obs["privileged_state"]]
        rng = np.random.default_rng(0)
        for _ in range(3):
            obs, *_ = env.step(rng.uniform(-1, 1, (3, 2)))
            frames.append(obs["rgb"])
            states.append(obs["privileged_state"])
        return np.stack(frames), np.stack(states)

    f1, s1 = run()
    f2, s2 = run()
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(s1, s2)
    assert f1.shape == (4, 3, 256, 256, 3) and f1.dtype == np.uint8
    assert len({f.tobytes() for f in f1[0]}) == 3  # different episodes look different


def test_set_state_validates_its_inputs():
    env = make_arena("text2nav", num_envs=2, render=False)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"env_ids must be distinct integers in \[0, 2\), got \[0, 2\]"):
        env.set_state([0, 2], [[0, 0, 0], [0, 0, 0]], [0, 0])
    with pytest.raises(ConfigError, match=r"target_indices must be 1 integers in \[0, 5\), got \[5\]"):
        env.set_state([0], [[0, 0, 0]], [5])
    with pytest.raises(ConfigError, match=r"poses must be finite with shape \(1, 3\)"):
        env.set_state([0], [[0, np.nan, 0]], [0])


def test_gymnasium_registration_and_spaces():
    env = gymnasium.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", render=False)
    obs, info = env.reset(seed=0)
    assert env.unwrapped.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert obs["privileged_state"].shape == (2, 11)
    assert env.single_action_space.shape == (2,)
    assert "rgb" not in env.single_observation_space.spaces
    rendered = make_arena("text2nav", num_envs=2, render=True)
    assert rendered.single_observation_space["rgb"].shape == (256, 256, 3)
    assert rendered.observation_space["rgb"].shape == (2, 256, 256, 3)


@pytest.mark.parametrize("preset", ["text2nav", "text2nav-random"])
def test_privileged_steering_reaches_every_target_in_near_minimal_time(preset):
    """Closed loop: state, dynamics and success agree. At 0.6 m/s a run can not beat (d0 - r_xy) / 0.02 steps."""
    from vlnav_data.sim.preview import steer_to_target

    cfg = get_preset(preset)
    env = make_arena(preset, num_envs=8, render=False)
    episodes = list(rollout(env, steer_to_target, range(16)))
    r_xy = np.sqrt(cfg.success_radius_m**2 - (cfg.sphere_height_m - cfg.robot_root_height_m) ** 2)
    step_m = cfg.max_linear_speed_mps * cfg.dt_s
    max_turn_steps = np.ceil(np.pi / (2 * cfg.max_linear_speed_mps / cfg.wheel_base_m) / cfg.dt_s)
    for ep in episodes:
        assert ep.termination == "success", (ep.episode_seed, ep.termination)
        d0 = np.hypot(*(ep.start.target_xy_m - ep.start.pose[:2]))
        lower = np.ceil((d0 - r_xy) / step_m)
        assert lower <= ep.num_steps <= lower + max_turn_steps + 12, (ep.episode_seed, ep.num_steps, lower)
