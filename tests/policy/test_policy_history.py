"""``history:K``: the stacked features restart at every episode, at training and at evaluation alike."""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.policy.features import parse_features
from vlnav_data.policy.history import HistoryStacker, episode_starts, history_index, stack_history
from vlnav_data.sim import make_arena


def test_training_rows_stack_the_episodes_own_past_newest_first():
    # rows of three episodes (3, 2 and 1 steps); feature value = 10 * episode + step + 1
    episode = np.array([0, 0, 0, 1, 1, 2])
    feats = np.array([[1.0], [2.0], [3.0], [11.0], [12.0], [21.0]], dtype=np.float32)
    index = history_index(episode, 3)
    np.testing.assert_array_equal(index, [[0, -1, -1], [1, 0, -1], [2, 1, 0], [3, -1, -1], [4, 3, -1], [5, -1, -1]])
    np.testing.assert_array_equal(
        stack_history(feats, index),
        [[1, 0, 0], [2, 1, 0], [3, 2, 1], [11, 0, 0], [12, 11, 0], [21, 0, 0]],
    )


def test_evaluation_history_resets_at_reset_and_at_autoreset():
    """A known sequence in (the call counter k), the expected stack out, across a reset and autoresets.

    Two arenas spin in place (never success, never out of bounds) with a 5-step time limit: slot episodes
    last exactly 5 steps, the autoreset returns the next episode's first observation in the same step, and
    slot 1 is also reset by hand after call 7.
    """
    env = make_arena("text2nav", num_envs=2, render=False, max_episode_steps=5)
    stacker = HistoryStacker(3)
    obs, info = env.reset(seed=0)
    episode_step = np.zeros(2, dtype=int)  # ground truth: step of each slot's episode at this observation
    spin = np.array([[1.0, -1.0], [1.0, -1.0]])
    for k in range(14):
        starts = episode_starts(info)
        np.testing.assert_array_equal(starts, episode_step == 0)
        out = stacker.push(np.full((2, 1), float(k + 1)), starts)
        for slot in range(2):
            expected = [k + 1 - j if j <= episode_step[slot] else 0 for j in range(3)]
            np.testing.assert_array_equal(out[slot], expected, err_msg=f"call {k}, slot {slot}")
        obs, _, terminated, truncated, info = env.step(spin)
        assert not terminated.any()
        episode_step = np.where(truncated, 0, episode_step + 1)
        if k == 7:
            obs, info = env.reset(options={"reset_mask": np.array([False, True])})
            episode_step[1] = 0


def test_stacker_restarts_when_the_batch_changes_shape():
    stacker = HistoryStacker(2)
    stacker.push(np.ones((3, 4)), np.zeros(3, dtype=bool))
    out = stacker.push(np.full((2, 4), 2.0), np.zeros(2, dtype=bool))
    np.testing.assert_array_equal(out, np.concatenate([np.full((2, 4), 2.0), np.zeros((2, 4))], axis=1))


@pytest.mark.parametrize(
    ("name", "kind", "base", "steps"),
    [("joint", "frozen", "joint", 1), ("pixels", "pixels", "text", 1), ("history:4", "history", "joint", 4),
     ("history:2:image", "history", "image", 2)],
)  # fmt: skip
def test_feature_names(name, kind, base, steps):
    spec = parse_features(name)
    assert (spec.kind, spec.base, spec.history_steps) == (kind, base, steps)


@pytest.mark.parametrize("name", ["history", "history:0", "history:x", "history:3:pixels", "pixel", "history:65"])
def test_bad_feature_names(name):
    with pytest.raises(ConfigError) as exc:
        parse_features(name)
    assert str(exc.value) == (
        "--features must be one of joint, image, text, pixels, history:K or history:K:BASE (1 <= K <= 64, BASE one "
        f"of joint, image, text), got '{name}'"
    )
