"""ViLT (fused) wrapper on a tiny random model: pairs are the model's own vector; views; invariance."""

import numpy as np
import pytest
import torch

from vlnav_data.encoders.fused import GREY_LEVEL
from vlnav_data.encoders.preprocess import preprocess_images

TEXTS = ["Go to the red ball", "The target is blue ball which is to your left. Move toward the ball."]


def test_spec_and_pairs_are_model_pooled_output(tiny_vilt, make_frames):
    spec = tiny_vilt.spec
    assert spec.fused is True and spec.dim == 64 and spec.privileged is False
    frames = make_frames(2, 48, 64)
    pairs = tiny_vilt.encode_pairs(frames, TEXTS)
    assert pairs.shape == (2, 64) and pairs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pairs, axis=1), 1.0, atol=1e-5)
    # by hand: HF processor + tokenizer + ViltModel pooled output, l2-normalised
    pixels = tiny_vilt.image_processor(images=list(frames), return_tensors="pt")
    tokens = tiny_vilt.tokenizer(TEXTS, padding="max_length", max_length=40, return_tensors="pt")
    with torch.no_grad():
        pooled = tiny_vilt.model(**tokens, pixel_values=pixels["pixel_values"], pixel_mask=pixels["pixel_mask"])
    ref = torch.nn.functional.normalize(pooled.pooler_output, dim=-1).numpy()
    assert np.sum(ref * pairs, axis=1).min() >= 0.999
    # the joint vector is the pair's own, not a fusion of the two views
    np.testing.assert_array_equal(tiny_vilt.encode_joint(frames, None, TEXTS), pairs)


def test_views_are_defined_pairs(tiny_vilt, make_frames):
    frames = make_frames(2, 32, 32, seed=4)
    np.testing.assert_array_equal(tiny_vilt.encode_images(frames), tiny_vilt.encode_pairs(frames, ["", ""]))
    grey = np.full((2, 32, 32, 3), GREY_LEVEL, dtype=np.uint8)
    tiny_vilt.text_cache.clear()
    np.testing.assert_allclose(tiny_vilt.encode_texts(TEXTS), tiny_vilt.encode_pairs(grey, TEXTS), atol=1e-6)
    cached = tiny_vilt.encode_texts(TEXTS[::-1])
    assert tiny_vilt.text_cache.hits == 2
    np.testing.assert_array_equal(cached, tiny_vilt._encode_texts_uncached(TEXTS[::-1]))


def test_batch_invariance_and_rng_untouched(tiny_vilt, make_frames):
    frames = make_frames(3, 40, 40, seed=5)
    texts = [TEXTS[1], TEXTS[1] + " Quickly now, before the time runs out.", TEXTS[0]]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    batch = tiny_vilt.encode_pairs(frames, texts)
    assert torch.equal(torch.rand(1), expected_next)  # ViLT's patch sampling ran in a forked RNG
    alone = tiny_vilt.encode_pairs(frames[2:], texts[2:])
    assert np.abs(alone[0] - batch[2]).max() <= 1e-5
    np.testing.assert_array_equal(tiny_vilt.encode_pairs(frames, texts), batch)


@pytest.mark.parametrize("size", [(20, 24), (64, 48), (256, 256)])
def test_vilt_preprocessing_matches_hf(tiny_vilt, make_frames, size):
    frames = make_frames(2, *size, seed=8)
    reference = tiny_vilt.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
    ours = preprocess_images(torch.from_numpy(frames), tiny_vilt.preprocess, torch.float32)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().mean().item() < 0.01
