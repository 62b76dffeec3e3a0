"""EpisodeEmbedder: per-episode vs cross-episode batches (full batches, same results up to the stated tolerance)."""

from __future__ import annotations

import numpy as np
import pytest

from vlnav_data.collect import BuildConfig, build_dataset
from vlnav_data.collect.embed.embedder import (
    CROSS_EPISODE_TOLERANCE,
    DEFAULT_BATCH_FRAMES,
    Batching,
    EpisodeEmbedder,
    EpisodeFrames,
    batch_frames_for,
    batches_across_episodes,
    embed_episode,
)
from vlnav_data.dataset import DatasetReader
from vlnav_data.encoders import EncoderSpec, l2_normalize


class ElementwiseEncoder:
    """A deterministic stand-in whose rows depend on their own input only, bit for bit (no BLAS)."""

    def __init__(self, name: str, fused: bool = False, dim: int = 4) -> None:
        self.spec = EncoderSpec(
            name=name, model_id="test", revision="", dim=dim, dtype="float32", device="cpu", privileged=False,
            note="", fused=fused,
        )  # fmt: skip
        self.batch_size = 5
        self.calls: list[int] = []
        self.text_calls: list[list[str]] = []
        self.pair_calls: list[int] = []

    def _images(self, rgb):
        x = rgb.reshape(len(rgb), -1)[:, : self.spec.dim].astype(np.float32) + 1.0
        return l2_normalize(np.sin(x))

    def _texts(self, texts):
        rows = [np.cos(np.arange(1, self.spec.dim + 1) * (len(t) + sum(map(ord, t)) % 97)) for t in texts]
        return l2_normalize(np.asarray(rows, dtype=np.float32))

    def encode_observations(self, rgb, state):
        self.calls.append(len(rgb))
        return self._images(rgb)

    def encode_texts(self, texts):
        self.text_calls.append(list(texts))
        return self._texts(texts)

    def encode_pairs(self, rgb, texts):
        self.pair_calls.append(len(rgb))
        return l2_normalize(self._images(rgb) + self._texts(texts))


def _episodes(lengths, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, t in enumerate(lengths):
        texts = [f"go to ball {i % 2}" if s < t // 2 else f"turn {i}" for s in range(t)]
        rgb = rng.integers(0, 256, (t, 2, 2, 3), dtype=np.uint8)
        out.append(
            EpisodeFrames(rgb=rgb, privileged_state=rng.standard_normal((t, 6)).astype(np.float32), instructions=texts)
        )
    return out


@pytest.mark.parametrize("fused", [False, True])
def test_cross_episode_batches_are_full_and_give_the_per_episode_arrays(fused):
    lengths = [7, 3, 12, 1, 9]
    eps = _episodes(lengths)
    per = ElementwiseEncoder("e", fused)
    across = ElementwiseEncoder("e", fused)
    want = [embed_episode([per], ep) for ep in eps]
    embedder = EpisodeEmbedder([across], batch_frames=5)
    got = []
    for i, ep in enumerate(eps):
        got += embedder.add(i, ep)
    got += embedder.flush()
    assert [k for k, _ in got] == list(range(len(eps)))  # finished in the order added
    # Every call but the last is exactly one full batch (32 frames = 6 x 5 + 2), spanning episodes.
    assert across.calls == [5] * 6 + [2] and per.calls == lengths
    assert (across.pair_calls, per.pair_calls) == (([5] * 6 + [2], lengths) if fused else ([], []))
    for (_, g), w in zip(got, want, strict=True):
        for key in ("image", "joint"):
            np.testing.assert_array_equal(getattr(g, key)["e"], getattr(w, key)["e"])
        assert g.text["e"].keys() == w.text["e"].keys()
    # Texts go one string per call in both modes: a text's vector never depends on its batch.
    assert all(len(call) == 1 for call in per.text_calls + across.text_calls)


def test_the_batching_rule():
    assert batches_across_episodes(None, "cuda") and batches_across_episodes(None, "cuda:1")
    assert not batches_across_episodes(None, "cpu")
    assert batches_across_episodes(True, "cpu") and not batches_across_episodes(False, "cuda")
    encs = [ElementwiseEncoder("a"), ElementwiseEncoder("b")]
    encs[1].batch_size = 256
    assert batch_frames_for(encs, None) == 256 and batch_frames_for(encs, 64) == 64
    assert batch_frames_for([object()], None) == DEFAULT_BATCH_FRAMES
    # the rule and the size chosen together, as a build, an embed run and each Ray task do
    assert Batching.choose(encs, "cpu", None, None) == Batching(device="cpu", across_episodes=False, batch_frames=None)
    assert Batching.choose(encs, "cpu", True, None) == Batching(device="cpu", across_episodes=True, batch_frames=256)
    assert Batching.choose(encs, "cuda", None, 64).batch_frames == 64


class Spy:
    """Wraps a real encoder and records the frames of each encode_observations call."""

    def __init__(self, enc):
        self._enc = enc
        self.spec = enc.spec
        self.calls: list[int] = []

    def encode_observations(self, rgb, state):
        self.calls.append(len(state))
        return self._enc.encode_observations(rgb, state)

    def __getattr__(self, name):
        return getattr(self._enc, name)


def test_cross_episode_build_matches_per_episode_build_within_the_tolerance(tmp_path):
    from vlnav_data.encoders import make_encoder

    base = dict(
        num_episodes=4, encoders=("siglip-tiny-random",), expert="pursuit", image_size_px=32, max_episode_steps=25,
        num_envs=2, device="cpu", seed=3, encoder_batch_size=8,
    )  # fmt: skip
    per = build_dataset(BuildConfig(out=str(tmp_path / "per.h5"), **base)).path
    spy = Spy(make_encoder("siglip-tiny-random", device="cpu", batch_size=8))
    cfg = BuildConfig(out=str(tmp_path / "across.h5"), cross_episode_batching=True, **base)
    across = build_dataset(cfg, encoders=[spy]).path
    with DatasetReader(per) as a, DatasetReader(across) as b:
        lengths = [a.num_samples(n) for n in a.demo_names]
        assert sum(lengths) % 8 and any(t % 8 for t in lengths)  # batches must straddle episodes
        assert spy.calls == [8] * (sum(lengths) // 8) + [sum(lengths) % 8]
        stored = {k: v for k, v in b.build_config.items() if k != "out"}
        assert stored == {k: v for k, v in a.build_config.items() if k != "out"}  # how a run works, not stored
        for name in a.demo_names:
            ea, eb = a.episode(name), b.episode(name)
            for key in ea:
                if key.endswith(("_image", "_joint")):
                    diff = np.abs(ea[key].astype(np.float32) - eb[key].astype(np.float32)).max()
                    assert diff <= CROSS_EPISODE_TOLERANCE, (name, key, diff)
                elif key != "attrs":
                    np.testing.assert_array_equal(np.asarray(ea[key]), np.asarray(eb[key]), err_msg=key)
        np.testing.assert_array_equal(a.text_embeddings("siglip-tiny-random"), b.text_embeddings("siglip-tiny-random"))
