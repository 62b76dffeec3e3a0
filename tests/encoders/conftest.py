"""Fixtures of the encoder tests: tiny random models (built offline, once per session) and frames."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from vlnav_data.encoders import make_encoder
from vlnav_data.encoders.spec import Encoder

LONG_TEXTS = [
    "The target is yellow ball which is straight ahead. Move towards the ball.",
    "The target is green ball which is to your right. Move toward the ball. Then stop next to it please.",
]


@pytest.fixture(scope="session")
def tiny_siglip() -> Encoder:
    return make_encoder("siglip-tiny-random", device="cpu")


@pytest.fixture(scope="session")
def tiny_clip() -> Encoder:
    return make_encoder("clip-tiny-random", device="cpu")


@pytest.fixture(scope="session")
def tiny_vilt() -> Encoder:
    return make_encoder("vilt-tiny-random", device="cpu")


@pytest.fixture(scope="session")
def make_frames() -> Callable[..., np.ndarray]:
    """``make_frames(b, h, w, seed)`` -> uint8 ``(b, h, w, 3)``: smooth colour gradients plus noise."""

    def frames(b: int, h: int, w: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w]
        out = np.empty((b, h, w, 3), dtype=np.uint8)
        for i in range(b):
            phase = rng.uniform(0, 2 * np.pi, size=3)
            base = np.stack([128 + 90 * np.sin(xx / (4 + c) + phase[c]) + 30 * np.cos(yy / 3) for c in range(3)], -1)
            out[i] = np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8)
        return out

    return frames
