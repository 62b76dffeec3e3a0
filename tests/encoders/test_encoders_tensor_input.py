"""Encoders take uint8 torch tensors (B, H, W, 3) as well as numpy: the same numbers, no host round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.encoders import compile_supported, make_encoder, warm_up_compiled
from vlnav_data.errors import ConfigError

TEXTS = ["The target is red ball which is to your left. Move toward the ball.", "Go to the blue ball"]


@pytest.mark.parametrize("fixture", ["tiny_siglip", "tiny_clip", "tiny_vilt"])
def test_tensor_frames_embed_exactly_as_numpy(request, make_frames, fixture):
    enc = request.getfixturevalue(fixture)
    assert enc.accepts_tensors
    frames = make_frames(5, 40, 48, seed=3)
    tensor = torch.from_numpy(frames.copy())
    np.testing.assert_array_equal(enc.encode_images(tensor), enc.encode_images(frames))
    pair_texts = [TEXTS[i % 2] for i in range(5)]
    np.testing.assert_array_equal(enc.encode_pairs(tensor, pair_texts), enc.encode_pairs(frames, pair_texts))
    np.testing.assert_array_equal(
        enc.encode_joint(tensor, None, pair_texts), enc.encode_joint(frames, None, pair_texts)
    )
    out = enc.encode_images(tensor[:0])
    assert out.shape == (0, enc.spec.dim) and out.dtype == np.float32


def test_a_tensor_of_the_wrong_dtype_is_refused(tiny_siglip):
    with pytest.raises(ConfigError, match=r"received a tensor of dtype float32 shape \(2, 8, 8, 3\)"):
        tiny_siglip.encode_images(torch.zeros((2, 8, 8, 3)))
    with pytest.raises(ConfigError, match=r"received a tensor of dtype uint8 shape \(8, 8, 3\)"):
        tiny_siglip.encode_images(torch.zeros((8, 8, 3), dtype=torch.uint8))


def test_oracle_reads_a_state_tensor_on_the_host():
    oracle = make_encoder("oracle")
    state = np.random.default_rng(0).normal(size=(4, 11)).astype(np.float32)
    np.testing.assert_array_equal(
        oracle.encode_observations(None, torch.from_numpy(state)), oracle.encode_observations(None, state)
    )


def test_plugins_are_not_handed_tensors(toy_plugin):
    """An encoder that does not declare ``accepts_tensors`` keeps the numpy-only contract (the caller converts)."""
    from vlnav_data.policy.features import online_features

    enc = make_encoder("toy-pool")
    assert not enc.accepts_tensors
    frames = np.random.default_rng(1).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    got = online_features(enc, "image", torch.from_numpy(frames), None, ["a", "b", "c"])
    want = online_features(enc, "image", frames, None, ["a", "b", "c"])
    np.testing.assert_array_equal(got, want)


def test_which_encoders_compile():
    assert compile_supported("siglip-tiny-random") and compile_supported("clip") and compile_supported("hf:/m")
    assert not compile_supported("vilt-tiny-random") and not compile_supported("oracle")
    assert not compile_supported("toy-pool")


@pytest.mark.slow  # torch.compile of a tiny SigLIP on 2 CPU cores: about 20-40 s
def test_compiled_encoder_compiles_once_up_front_and_matches_eager(make_frames):
    eager = make_encoder("siglip-tiny-random", batch_size=4)
    compiled = make_encoder("siglip-tiny-random", batch_size=4, compile=True)
    seconds, names = warm_up_compiled([eager, compiled], 32, 32)
    assert names == ("siglip-tiny-random",) and seconds > 0
    frames = make_frames(7, 32, 32, seed=5)  # 7 = a full chunk of 4 + a chunk padded to 4: one graph
    cos = np.sum(eager.encode_images(frames) * compiled.encode_images(frames), axis=1)
    assert cos.min() >= 0.9999, cos
    # already compiled: another batch size is padded to the same graph, so it costs no compilation
    import time

    start = time.perf_counter()
    compiled.encode_images(torch.from_numpy(frames[:3].copy()))
    assert time.perf_counter() - start < 5.0
