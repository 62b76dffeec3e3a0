"""Shared fixtures of the publish tests: small synthetic vlnav-demos files, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlnav_data.dataset.synthetic import write_synthetic_dataset


@pytest.fixture(scope="session")
def demos_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 episodes (5 train, 1 valid), 64x64 frames, one 32-d encoder."""
    path = tmp_path_factory.mktemp("demos") / "demos.h5"
    return write_synthetic_dataset(path, num_episodes=6, image_size=(64, 64), seed=0)


@pytest.fixture(scope="session")
def demos_two_encoders_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 episodes, 32x32 frames, two encoders (16-d and 24-d)."""
    path = tmp_path_factory.mktemp("demos2") / "two.h5"
    return write_synthetic_dataset(
        path, num_episodes=8, encoders={"enc-a": 16, "enc-b": 24}, image_size=(32, 32), seed=3, valid_fraction=0.3
    )
