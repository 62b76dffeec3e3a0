"""CUDA path (bf16, on-device preprocessing, pinned memory, torch.compile); skipped without a GPU."""

import numpy as np
import pytest
import torch

from vlnav_data.encoders import make_encoder

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("compile_", [False, True])
def test_cuda_bf16_matches_cpu_fp32(make_frames, compile_):
    cpu = make_encoder("siglip-tiny-random", device="cpu")
    gpu = make_encoder("siglip-tiny-random", device="cuda", batch_size=4, compile=compile_)
    assert gpu.spec.dtype == "bfloat16" and gpu.spec.device == "cuda"
    frames = make_frames(6, 64, 64)  # 6 = one full chunk + a padded one when compiled
    cos = np.sum(cpu.encode_images(frames) * gpu.encode_images(frames), axis=1)
    assert cos.min() >= 0.99, cos
    texts = ["Go to the red ball", "The target is pink ball which is to your right. Move toward the ball."]
    cos_t = np.sum(cpu.encode_texts(texts) * gpu.encode_texts(texts), axis=1)
    assert cos_t.min() >= 0.99, cos_t


@pytest.mark.parametrize("family", ["siglip2", "clip"])
def test_hf_encoder_on_cuda_n_matches_cpu(tiny_checkpoint_dir, make_frames, family):
    ref = f"hf:{tiny_checkpoint_dir(family)}"
    cpu = make_encoder(ref, device="cpu")
    gpu = make_encoder(ref, device="cuda:0", dtype="fp32")
    assert gpu.spec.device == "cuda:0" and gpu.spec.device_type == "cuda" and gpu.spec.dtype == "float32"
    frames = make_frames(5, 48, 64)
    assert np.sum(cpu.encode_images(frames) * gpu.encode_images(frames), axis=1).min() >= 0.999
    texts = ["Go to the red ball", "No balls in frame, move around"]
    assert np.sum(cpu.encode_texts(texts) * gpu.encode_texts(texts), axis=1).min() >= 0.999


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)  # rows are unit vectors


@pytest.mark.parametrize("name", ["siglip-tiny-random", "clip-tiny-random", "vilt-tiny-random"])
def test_tiny_encoders_on_cuda_match_cpu_and_take_device_frames(make_frames, name):
    """Tolerances: bf16 on CUDA against fp32 on the CPU, cosine >= 0.99 per row; fp32 on CUDA against fp32
    on the CPU, >= 0.999; frames already on the GPU against the same frames from the host: equal within 1e-6."""
    cpu = make_encoder(name, device="cpu")
    bf16 = make_encoder(name, device="cuda")
    fp32 = make_encoder(name, device="cuda", dtype="fp32")
    assert bf16.spec.dtype == "bfloat16" and fp32.spec.dtype == "float32"
    frames = make_frames(6, 48, 64)
    texts = ["Go to the red ball", "The target is pink ball which is to your right. Move toward the ball."] * 3
    ref = cpu.encode_pairs(frames, texts)
    assert _cos(ref, bf16.encode_pairs(frames, texts)).min() >= 0.99
    assert _cos(ref, fp32.encode_pairs(frames, texts)).min() >= 0.999
    on_gpu = torch.from_numpy(frames).to("cuda")
    np.testing.assert_allclose(fp32.encode_images(on_gpu), fp32.encode_images(frames), atol=1e-6)
    np.testing.assert_allclose(
        bf16.encode_joint(on_gpu, None, texts), bf16.encode_joint(frames, None, texts), atol=1e-6
    )
