"""Closed-loop evaluation: determinism, env-step counting, no privileged input, shared starts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlnav_data.expert.pursuit import PursuitController
from vlnav_data.policy.actors import make_student_policy, torch_predictor
from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy, evaluation_seeds, summarize
from vlnav_data.policy.model_dir import load_model_dir
from vlnav_data.policy.records import EpisodeRecords, run_policy_episodes
from vlnav_data.sim import make_arena


class CountingEnv:
    """Delegates to an arena and counts ``step()`` calls."""

    def __init__(self, env):
        self._env = env
        self.step_calls = 0

    def step(self, actions):
        self.step_calls += 1
        return self._env.step(actions)

    def __getattr__(self, name):
        return getattr(self._env, name)


def student_fn(model_dir):
    from vlnav_data.encoders import make_encoder

    model, spec = load_model_dir(model_dir)
    return make_student_policy(torch_predictor(model, "cpu"), make_encoder("oracle", seed=0), spec.features)


@pytest.mark.parametrize("who", ["expert", "student"])
def test_reported_episode_length_is_the_number_of_step_calls(oracle_model_dir, who):
    env = make_arena("text2nav", num_envs=1, render=False)
    policy = PursuitController.for_arena(env.config) if who == "expert" else student_fn(oracle_model_dir)
    seeds = evaluation_seeds(7, 3)
    per_episode = []
    for seed in seeds:  # one episode per rollout: every step() call belongs to it
        counting = CountingEnv(env)
        rec = run_policy_episodes(counting, policy, [seed])
        assert rec.num_steps[0] == counting.step_calls
        assert len(rec.actions_of(0)) == counting.step_calls
        assert len(rec.poses_of(0)) == counting.step_calls + 1
        per_episode.append(counting.step_calls)
    # Several episodes in one rollout: the sum is the number of calls (no reset steps, no 3x counter).
    counting = CountingEnv(env)
    rec = run_policy_episodes(counting, policy, seeds)
    assert rec.num_steps.tolist() == per_episode
    assert int(rec.num_steps.sum()) == counting.step_calls
    s = summarize(rec, env.config)
    ok = rec.success
    if ok.any():
        assert s.mean_env_steps_successes == pytest.approx(np.mean(np.array(per_episode)[ok]))


def test_eval_is_deterministic_for_a_seed_and_pairs_with_the_expert(oracle_model_dir, tmp_path):
    def run(out, seed):
        cfg = EvalConfig(model_dir=oracle_model_dir, out_dir=out, num_episodes=6, num_envs=3, seed=seed)
        return evaluate_policy(cfg)

    a, b = run(tmp_path / "a", 0), run(tmp_path / "b", 0)
    ra = EpisodeRecords.load(tmp_path / "a" / "episodes.npz")
    rb = EpisodeRecords.load(tmp_path / "b" / "episodes.npz")
    np.testing.assert_array_equal(ra.poses, rb.poses)
    np.testing.assert_array_equal(ra.actions, rb.actions)
    assert a.student == b.student and a.expert == b.expert
    # Student and expert ran from the same starts.
    ea = EpisodeRecords.load(tmp_path / "a" / "expert_episodes.npz")
    np.testing.assert_array_equal(ea.episode_seed, ra.episode_seed)
    np.testing.assert_allclose(ea.poses_of(0)[0], ra.poses_of(0)[0])
    assert a.expert_name == "pursuit" and a.step_unit == "env_steps"
    assert a.expert.success["rate"] == 1.0
    np.testing.assert_array_equal(ra.episode_seed, evaluation_seeds(0, 6))
    assert not set(evaluation_seeds(1, 6).tolist()) & set(ra.episode_seed.tolist())
    assert a.episode_seeds_overlapping_train == 0
    assert a.expert_checkpoint is None and a.knn_index is None  # pursuit has no checkpoint; bc no index
    from vlnav_data.expert.checkpoint import SHIPPED_CHECKPOINT

    ppo = evaluate_policy(
        EvalConfig(model_dir=oracle_model_dir, out_dir=tmp_path / "p", num_episodes=1, num_envs=1, expert="ppo")
    )
    assert ppo.expert_name == "ppo" and ppo.expert_checkpoint == str(SHIPPED_CHECKPOINT)


def test_the_policy_never_sees_privileged_state(oracle_model_dir):
    """With a non-privileged encoder, poisoning the privileged state changes nothing."""
    from vlnav_data.encoders import make_encoder

    enc = make_encoder("siglip-tiny-random", seed=0)
    seen = []

    def predict(features):
        seen.append(features)
        return np.zeros((len(features), 2), np.float32)

    fn = make_student_policy(predict, enc, "joint")
    env = make_arena("text2nav", num_envs=2, render=True, image_height_px=32, image_width_px=32)
    obs, info = env.reset(seed=0)
    fn(obs, info)
    poisoned = dict(obs, privileged_state=np.full_like(obs["privileged_state"], np.nan))
    fn(poisoned, info)
    np.testing.assert_array_equal(seen[0], seen[1])
    assert np.isfinite(seen[0]).all()
    spec_keys = json.loads((oracle_model_dir / "config.json").read_text())["input_keys"]
    assert not any("privileged" in k for k in spec_keys)
