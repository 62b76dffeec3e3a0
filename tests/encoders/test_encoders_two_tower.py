"""SigLIP and CLIP wrappers on tiny random models: invariances, cache, norms, preprocessing fidelity."""

import numpy as np
import pytest
import torch

from vlnav_data.encoders import make_encoder
from vlnav_data.encoders.preprocess import preprocess_images
from vlnav_data.errors import ConfigError

SHORT = "Go to the red ball"
LONGER = [
    "The target is yellow ball which is straight ahead. Move towards the ball.",
    "The target is green ball which is to your right. Move toward the ball. Then stop next to it please.",
]


@pytest.fixture(params=["siglip", "clip"])
def encoder(request, tiny_siglip, tiny_clip):
    return {"siglip": tiny_siglip, "clip": tiny_clip}[request.param]


def test_spec_and_unit_norm(encoder, make_frames):
    frames = make_frames(5, 40, 56)
    img = encoder.encode_images(frames)
    txt = encoder.encode_texts([SHORT, *LONGER])
    assert img.shape == (5, encoder.spec.dim) and img.dtype == np.float32 and img.flags.c_contiguous
    assert txt.shape == (3, encoder.spec.dim) and txt.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    assert encoder.spec.privileged is False and encoder.spec.fused is False
    assert encoder.spec.dtype == "float32" and encoder.spec.device == "cpu"
    assert "TESTS AND OFFLINE SMOKE RUNS ONLY" in encoder.spec.note
    assert encoder.spec.revision == "seed-0"
    # distinct inputs give distinct embeddings
    assert np.abs(img[0] - img[1]).max() > 1e-3
    assert np.abs(txt[0] - txt[1]).max() > 1e-3


def test_text_batch_invariance(encoder):
    encoder.text_cache.clear()
    alone = encoder._encode_texts_uncached([SHORT])
    in_batch = encoder._encode_texts_uncached([*LONGER, SHORT])
    assert np.abs(alone[0] - in_batch[2]).max() <= 1e-5


def test_siglip_pads_to_max_length(tiny_siglip):
    tokens = tiny_siglip.tokenizer([SHORT], padding="max_length", max_length=tiny_siglip.text_max_length)
    assert tiny_siglip.text_max_length == 64 and len(tokens["input_ids"][0]) == 64


def test_image_batch_invariance(encoder, make_frames):
    frames = make_frames(11, 48, 48, seed=3)  # 11 > batch size 8: crosses a chunk boundary too
    batch = encoder.encode_images(frames)
    for i in (0, 9):
        alone = encoder.encode_images(frames[i : i + 1])
        assert np.abs(alone[0] - batch[i]).max() <= 1e-5


def test_cached_equals_uncached_and_lru(encoder):
    encoder.text_cache.clear()
    first = encoder.encode_texts([SHORT, LONGER[0], SHORT])
    assert encoder.text_cache.misses == 2 and len(encoder.text_cache) == 2
    second = encoder.encode_texts([LONGER[0], SHORT])
    assert encoder.text_cache.hits == 2 and encoder.text_cache.misses == 2
    np.testing.assert_array_equal(second, first[[1, 0]])
    uncached = encoder._encode_texts_uncached([SHORT, LONGER[0]])
    np.testing.assert_array_equal(uncached, first[:2])
    np.testing.assert_array_equal(first[0], first[2])


def test_lru_evicts_least_recent():
    enc = make_encoder("oracle", text_cache_size=2)
    enc.encode_texts(["a", "b"])
    enc.encode_texts(["a"])  # b is now least recent
    enc.encode_texts(["c"])
    assert set(enc.text_cache._store) == {"a", "c"}


@pytest.mark.parametrize("size", [(20, 24), (64, 48), (48, 64), (256, 256)])
def test_tensor_preprocessing_matches_hf_processor(encoder, make_frames, size):
    frames = make_frames(4, *size, seed=7)
    reference = encoder.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
    ours = preprocess_images(torch.from_numpy(frames), encoder.preprocess, torch.float32)
    assert ours.shape == reference.shape
    # PIL resamples in fixed point: allow a few uint8 levels on some pixels, nothing systematic
    assert (ours - reference).abs().mean().item() < 0.01
    with torch.no_grad():
        a = encoder.model.get_image_features(pixel_values=reference)
        b = encoder.model.get_image_features(pixel_values=ours)
    a = a if isinstance(a, torch.Tensor) else a.pooler_output
    b = b if isinstance(b, torch.Tensor) else b.pooler_output
    assert torch.nn.functional.cosine_similarity(a, b).min().item() >= 0.999


def test_bf16_on_cpu_stays_close_to_fp32(make_frames):
    fp32 = make_encoder("siglip-tiny-random", dtype="fp32")
    bf16 = make_encoder("siglip-tiny-random", dtype="bf16")
    assert bf16.spec.dtype == "bfloat16"
    frames = make_frames(4, 32, 32, seed=1)
    img32, img16 = fp32.encode_images(frames), bf16.encode_images(frames)
    assert img16.dtype == np.float32
    cos = np.sum(img32 * img16, axis=1)
    assert cos.min() >= 0.99, cos
    txt = np.sum(fp32.encode_texts(LONGER) * bf16.encode_texts(LONGER), axis=1)
    assert txt.min() >= 0.99, txt


def test_bad_inputs(tiny_siglip):
    with pytest.raises(
        ConfigError, match=r"uint8 numpy array or torch tensor of shape \(B, H, W, 3\); received dtype float32"
    ):
        tiny_siglip.encode_images(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="received dtype uint8 shape \\(8, 8, 3\\)"):
        tiny_siglip.encode_images(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ConfigError, match="Wrap a single string"):
        tiny_siglip.encode_texts("Go to the red ball")
    with pytest.raises(ConfigError, match="one text per image; received 2 images and 1 texts"):
        tiny_siglip.encode_pairs(np.zeros((2, 8, 8, 3), dtype=np.uint8), ["a"])
    assert tiny_siglip.encode_images(np.zeros((0, 8, 8, 3), dtype=np.uint8)).shape == (0, tiny_siglip.spec.dim)
    assert tiny_siglip.encode_texts([]).shape == (0, tiny_siglip.spec.dim)


def test_joint_is_published_fusion(tiny_siglip, make_frames):
    frames = make_frames(3, 32, 32)
    texts = [SHORT, *LONGER]
    img, txt = tiny_siglip.encode_images(frames), tiny_siglip.encode_texts(texts)
    expected = (img + txt) / np.linalg.norm(img + txt, axis=1, keepdims=True)
    np.testing.assert_allclose(tiny_siglip.encode_joint(frames, None, texts), expected, atol=1e-6)
    np.testing.assert_allclose(tiny_siglip.encode_pairs(frames, texts), expected, atol=1e-6)
    np.testing.assert_array_equal(tiny_siglip.encode_observations(frames, np.zeros((3, 6))), img)
