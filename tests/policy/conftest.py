"""Fixtures of the policy tests: a small oracle-encoder model directory trained on pursuit rollouts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from vlnav_data.encoders import make_encoder
from vlnav_data.expert.pursuit import PursuitController
from vlnav_data.policy.fit import BCRecipe, fit_bc
from vlnav_data.policy.model_dir import PolicySpec, save_model_dir
from vlnav_data.sim import make_arena, rollout


def make_oracle_model_dir(path: Path, num_steps: int = 300, num_episodes: int = 12) -> Path:
    """Train a small BC policy on oracle embeddings of pursuit-controller episodes; write a model dir."""
    env = make_arena("text2nav", num_envs=6, render=False)
    expert = PursuitController.for_arena(env.config)
    encoder = make_encoder("oracle", seed=0)
    feats, acts = [], []

    def labelled(obs, info):
        actions = expert(obs, info)
        feats.append(encoder.encode_joint(None, obs["privileged_state"], list(info["instruction"])))
        acts.append(actions)
        return actions

    for _ in rollout(env, labelled, list(range(1000, 1000 + num_episodes)), record_rgb=False):
        pass
    x = np.concatenate(feats).astype(np.float16).astype(np.float32)
    y = np.concatenate(acts).astype(np.float32)
    recipe = BCRecipe(name="test", hidden_sizes=(64, 64), num_steps=num_steps, eval_every_steps=num_steps // 3)
    fit = fit_bc(x, y, recipe=recipe, seed=0, valid_features=x[:200], valid_actions=y[:200])
    spec = PolicySpec(
        encoder="oracle",
        encoder_spec=encoder.spec.to_dict(),
        features="joint",
        input_keys=("obs/oracle_joint",),
        input_dim=x.shape[1],
        hidden_sizes=recipe.hidden_sizes,
        # A shorter time limit keeps the test episodes of a weak policy short.
        sim_config=dataclasses.asdict(dataclasses.replace(env.config, max_episode_steps=150)),
        dataset="(in-memory pursuit rollouts)",
        dataset_expert="pursuit",
        expert_checkpoint=None,
        train_episode_seeds=tuple(range(1000, 1000 + num_episodes)),
        train_config={"recipe": dataclasses.asdict(recipe)},
    )
    save_model_dir(path, fit.model, spec, fit.curve)
    return path


@pytest.fixture(scope="session")
def oracle_model_dir(tmp_path_factory) -> Path:
    return make_oracle_model_dir(tmp_path_factory.mktemp("policy") / "oracle_bc")
