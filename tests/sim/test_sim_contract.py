"""check_arena: the built-in arena passes in every autoreset mode; planted violations are each reported."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from vlnav_data.errors import ConfigError
from vlnav_data.sim import check_arena, make_arena


class Broken:
    """Wraps a conforming env and breaks it on purpose (delegates everything it does not change)."""

    def __init__(self, env, *, obs=None, info=None, actions=None, metadata=None, reset=None, set_state=None):
        self.env = env
        self._obs, self._info, self._actions, self._reset, self._set_state = obs, info, actions, reset, set_state
        self.metadata = metadata if metadata is not None else env.metadata

    def __getattr__(self, name):
        return getattr(self.env, name)

    def _out(self, obs, info):
        if self._obs is not None:
            obs = self._obs(dict(obs))
        if self._info is not None:
            info = self._info(dict(info))
        return obs, info

    def reset(self, *, seed=None, options=None):
        if self._reset is not None:
            seed, options = self._reset(seed, options)
        return self._out(*self.env.reset(seed=seed, options=options))

    def step(self, actions):
        if self._actions is not None:
            actions = self._actions(np.asarray(actions, dtype=np.float64))
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs, info = self._out(obs, info)
        return obs, reward, terminated, truncated, info

    def set_state(self, env_ids, poses, target_indices):
        if self._set_state is not None:
            env_ids, poses, target_indices = self._set_state(env_ids, poses, target_indices)
        return self._out(*self.env.set_state(env_ids, poses, target_indices))


def arena(**kw):
    return make_arena("text2nav", num_envs=3, render=False, max_episode_steps=20, **kw)


@pytest.mark.parametrize("mode", ["same_step", "next_step", "disabled"])
def test_the_builtin_arena_meets_the_contract_in_every_autoreset_mode(mode):
    report = check_arena(arena(autoreset_mode=mode))
    assert report.ok, report.messages()
    assert report.notes == ()  # with a 20-step limit every termination cause was exercised


def test_the_builtin_arena_with_frames_meets_the_contract_and_a_long_time_limit_is_a_note():
    env = make_arena("text2nav", num_envs=2, render=True, image_height_px=32, image_width_px=32)
    report = check_arena(env)
    assert report.ok, report.messages()
    assert report.notes == (
        "time limit not exercised: max_episode_steps=600 > 60; build a checking env with a smaller "
        "max_episode_steps to exercise it",
    )


def _messages(env):
    report = check_arena(env)
    assert not report.ok
    return report.messages()


def test_a_wrong_dtype_is_reported():
    def to_float64(obs):
        obs["privileged_state"] = obs["privileged_state"].astype(np.float64)
        return obs

    msgs = _messages(Broken(arena(), obs=to_float64))
    assert msgs[0] == (
        "[observation] reset(seed): privileged_state must be a float32 array (3, 11), got float64 array (3, 11)"
    )


def test_a_missing_info_key_is_reported():
    def drop(info):
        del info["nearest_sphere_index"]
        return info

    assert _messages(Broken(arena(), info=drop))[0] == "[info] reset(seed): info lacks 'nearest_sphere_index'"


def test_a_double_counted_step_is_reported():
    def double(info):
        info["env_steps"] = info["env_steps"] * 2
        return info

    msgs = _messages(Broken(arena(), info=double))
    assert (
        "[env_steps] env_steps must count each step() of an episode once: after 1 steps from set_state got [2, 2, 2]"
        in msgs
    )
    assert all(m.startswith("[env_steps]") for m in msgs)


def test_swapped_wheels_are_reported():
    msgs = _messages(Broken(arena(), actions=lambda a: a[:, ::-1].copy()))
    assert any(
        m.startswith(
            "[actions] action (-1, 1) (left wheel back, right forward) must turn counter-clockwise; "
            "the yaw changed by -"
        )
        for m in msgs
    ), msgs
    assert any(
        m.startswith("[step] actions: turn: env 0 reports wheel_speeds_radps [20.0, -20.0] for action [-1.0, 1.0]")
        for m in msgs
    ), msgs


def test_a_mislabelled_termination_cause_is_reported():
    swap = {"out_of_bounds_left": "out_of_bounds_right", "out_of_bounds_right": "out_of_bounds_left"}

    def relabel(info):
        info["termination"] = np.array([swap.get(str(c), str(c)) for c in info["termination"]])
        if "final_info" in info:
            fi = dict(info["final_info"])
            fi["termination"] = np.array([swap.get(str(c), str(c)) for c in fi["termination"]])
            info["final_info"] = fi
        return info

    msgs = _messages(Broken(arena(), info=relabel))
    assert len(msgs) == 2
    assert msgs[0].startswith("[termination] episode ended with 'out_of_bounds_right' at pose [")
    assert msgs[0].endswith("after 3 steps; the task's rules give 'out_of_bounds_left'")
    assert msgs[1].startswith("[termination] episode ended with 'out_of_bounds_left' at pose [")


def test_a_wrongly_declared_autoreset_mode_is_reported():
    env = arena(autoreset_mode="same_step")
    msgs = _messages(Broken(env, metadata={"autoreset_mode": AutoresetMode.NEXT_STEP}))
    assert msgs[0] == (
        "[autoreset] next_step: the step that ended the episode returned final_obs/final_info, so the env resets "
        "within that step; declare metadata['autoreset_mode'] = AutoresetMode.SAME_STEP"
    )


def test_an_unseeded_reset_is_reported_as_nondeterminism():
    msgs = _messages(Broken(arena(), reset=lambda seed, options: (None, options)))
    assert msgs == ["[determinism] reset(seed=0) and the same actions gave a different privileged_state at step 0"]


def test_starts_from_other_seeds_and_set_state_that_moves_the_robot_are_reported_together():
    def other_seeds(seed, options):
        if options and "episode_seeds" in options:
            options = {**options, "episode_seeds": [int(s) + 1 for s in options["episode_seeds"]]}
        return seed, options

    def shift(env_ids, poses, targets):
        return env_ids, np.asarray(poses) + [0.05, 0.0, 0.0], targets

    msgs = _messages(Broken(arena(), reset=other_seeds, set_state=shift))
    starts = [m for m in msgs if m.startswith("[starts]")]
    assert starts[0].startswith("[starts] info['episode_seed'] is [")
    assert any(m.startswith("[starts] env 0 started episode seed ") for m in starts), starts
    placed = [m for m in msgs if m.startswith("[set_state]")]
    assert placed and placed[0].startswith("[set_state] set_state: env 0 was placed at [")
    assert "] but observes [" in placed[0]


def test_raise_if_violated_names_every_violation_in_one_line():
    def drop(info):
        del info["wheel_speeds_radps"]
        return info

    report = check_arena(Broken(arena(), info=drop))
    with pytest.raises(
        ConfigError,
        match=r"^my env does not meet the simulator contract \(2 violations\): \[info\] reset\(seed\): info lacks ",
    ):
        report.raise_if_violated("my env")


def test_a_randomised_arena_meets_the_contract_with_every_cause_exercised():
    """Placements are computed from the sphere layout the check starts in every slot (random per seed here)."""
    report = check_arena(make_arena("text2nav-random", num_envs=2, render=False, max_episode_steps=20))
    assert report.ok, report.messages()
    assert report.notes == ()
