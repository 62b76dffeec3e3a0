"""Fixtures of the study tests: one tiny arena dataset (oracle + siglip-tiny-random, color instructions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlnav_data.collect import build_dataset


@pytest.fixture(scope="session")
def tiny_color_dataset(tmp_path_factory, small_build) -> Path:
    """24 PPO-labelled episodes at 32 px, colour-only instructions (no direction cue in the text)."""
    out = tmp_path_factory.mktemp("study_data") / "tiny_color.h5"
    build_dataset(
        small_build(
            out,
            num_episodes=24,
            encoders=("oracle", "siglip-tiny-random"),
            expert="ppo",
            instructions="color",
            max_episode_steps=150,
            valid_fraction=0.25,
            num_envs=12,
            seed=0,
        )
    )
    return out
