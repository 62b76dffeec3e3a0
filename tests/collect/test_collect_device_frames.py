"""Frames from the renderer to the encoders without a host round trip: the same dataset, array for array.

``build_dataset`` runs the arena with torch observations (``obs_backend="torch"``) and hands image encoders
the device frames; an arena with numpy observations (a factory's env, the Gymnasium default) gives them
host frames. On the CPU both must write identical files, per-episode and cross-episode batched alike.
"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from vlnav_data.collect import BuildConfig, build_dataset
from vlnav_data.collect.embed.embedder import EpisodeEmbedder, EpisodeFrames
from vlnav_data.encoders import make_encoder
from vlnav_data.sim import get_preset, make_arena

BASE = dict(
    num_episodes=3,
    encoders=("siglip-tiny-random", "vilt-tiny-random", "oracle"),
    expert="pursuit",
    image_size_px=32,
    max_episode_steps=20,
    num_envs=2,
    device="cpu",
    seed=3,
)
ARENA = dataclasses.replace(get_preset("text2nav"), image_height_px=32, image_width_px=32, max_episode_steps=20)


def _datasets(path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _assert_identical(a, b) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("across", [False, True])
def test_numpy_and_torch_arenas_write_identical_datasets(tmp_path, across):
    files = {}
    for backend in ("numpy", "torch"):

        def factory(n, backend=backend):
            return make_arena(ARENA, num_envs=n, render=True, obs_backend=backend)

        cfg = BuildConfig(out=str(tmp_path / f"{backend}.h5"), cross_episode_batching=across, **BASE)
        files[backend] = build_dataset(cfg, env_factory=factory).path
    preset = build_dataset(BuildConfig(out=str(tmp_path / "preset.h5"), cross_episode_batching=across, **BASE))
    numpy_file = _datasets(files["numpy"])
    assert any(k.endswith("obs/rgb") for k in numpy_file)
    _assert_identical(numpy_file, _datasets(files["torch"]))
    _assert_identical(numpy_file, _datasets(preset.path))  # the build's own arena: torch observations


class _Spy:
    """Wraps an encoder and records the type of the frames it is handed."""

    def __init__(self, encoder, accepts_tensors):
        self._encoder = encoder
        self.accepts_tensors = accepts_tensors
        self.spec = encoder.spec
        self.seen: list[str] = []

    def encode_observations(self, rgb, state):
        self.seen.append(type(rgb).__name__)
        return self._encoder.encode_observations(np.asarray(rgb), state)

    def encode_texts(self, texts):
        return self._encoder.encode_texts(texts)


@pytest.mark.parametrize("batch_frames", [None, 5])
def test_device_frames_go_only_to_encoders_that_take_tensors(batch_frames):
    base = make_encoder("siglip-tiny-random")
    takes, refuses = _Spy(base, True), _Spy(base, False)
    rng = np.random.default_rng(0)
    embedder = EpisodeEmbedder([takes, refuses], batch_frames=batch_frames)
    for key, t in enumerate((4, 3)):
        rgb = rng.integers(0, 255, (t, 16, 16, 3), dtype=np.uint8)
        frames = EpisodeFrames(
            rgb=rgb,
            privileged_state=np.zeros((t, 11), np.float32),
            instructions=["go"] * t,
            rgb_device=torch.from_numpy(rgb),
        )
        embedder.add(key, frames)
    embedder.flush()
    assert set(takes.seen) == {"Tensor"} and set(refuses.seen) == {"ndarray"}
