"""A build on CUDA against the same build on the CPU (tiny SigLIP, CLIP, ViLT and the oracle); skipped without a GPU.

Tolerances (stated, not tuned):

* episodes (seeds, actions, terminations, step counts): identical: the pursuit expert acts on states that
  agree within 1e-5, far from its decision thresholds but for measure-zero ties;
* privileged state within 1e-5; frames at least 99 % identical values (silhouette pixels may flip);
* embeddings: CUDA runs bf16 (``auto``) and the CPU fp32, so rows are compared by cosine: >= 0.99 for the
  tiny random models (their activations are not normalised like a trained model's, the worst case);
  the oracle runs on the host in float64 on both: identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.collect import build_dataset
from vlnav_data.dataset import DatasetReader

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
ENCODERS = ("siglip-tiny-random", "clip-tiny-random", "vilt-tiny-random", "oracle")
# The build both tests start from, over the shared small build (small_build, tests/conftest.py).
BASE = dict(
    num_episodes=6, encoders=ENCODERS, image_size_px=64, max_episode_steps=60, num_envs=3, seed=5
)  # over small_build


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float32), b.astype(np.float32)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def builds(tmp_path_factory, small_build):
    d = tmp_path_factory.mktemp("gpu-build")
    cpu = build_dataset(small_build(d / "cpu.h5", device="cpu", **BASE))
    cuda = build_dataset(small_build(d / "cuda.h5", device="cuda", **BASE))
    return cpu, cuda


def test_cuda_build_records_the_cpu_episodes(builds):
    cpu, cuda = builds
    assert cuda.device.startswith("cuda")
    with DatasetReader(cpu.path) as a, DatasetReader(cuda.path) as b:
        assert a.demo_names == b.demo_names
        assert [b.encoder_specs[e]["dtype"] for e in ENCODERS] == ["bfloat16", "bfloat16", "bfloat16", "float32"]
        for name in a.demo_names:
            x, y = a.episode(name), b.episode(name)
            assert x["attrs"]["seed"] == y["attrs"]["seed"] and x["attrs"]["termination"] == y["attrs"]["termination"]
            np.testing.assert_array_equal(x["actions"], y["actions"])
            np.testing.assert_allclose(x["obs/privileged_state"], y["obs/privileged_state"], atol=1e-5)
            assert float((x["obs/rgb"] == y["obs/rgb"]).mean()) >= 0.99
            assert x["instructions"] == y["instructions"]
            for enc in ENCODERS:
                for kind in ("image", "joint"):
                    key = f"obs/{enc}_{kind}"
                    if enc == "oracle":
                        np.testing.assert_array_equal(x[key], y[key])
                    else:
                        assert _cosines(x[key], y[key]).min() >= 0.99, key


def test_cuda_build_with_compile_reports_compile_time_apart(tmp_path, small_build):
    res = build_dataset(
        small_build(
            tmp_path / "compiled.h5",
            device="cuda",
            compile=True,
            **{**BASE, "encoders": ("siglip-tiny-random", "vilt-tiny-random"), "num_episodes": 3},
        )
    )
    assert res.compiled == ("renderer", "siglip-tiny-random")  # ViLT runs eager
    assert res.compile_s > 0 and res.frames_per_s > 0
