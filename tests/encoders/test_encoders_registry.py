"""make_encoder: names, loading from a local directory, the missing-weights message, determinism."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from vlnav_data.encoders import ENCODER_NAMES, make_encoder
from vlnav_data.encoders.registry import tiny_checkpoint
from vlnav_data.encoders.weights import content_hash
from vlnav_data.errors import ConfigError, EncoderError, VlnavError


def test_names():
    assert set(ENCODER_NAMES) >= {"siglip", "clip", "vilt", "siglip-tiny-random", "oracle"}


def test_unknown_name_did_you_mean():
    with pytest.raises(ConfigError) as info:
        make_encoder("siglipp")
    assert str(info.value) == (
        "unknown encoder 'siglipp'; expected one of: clip, clip-tiny-random, oracle, siglip, siglip-tiny-random, "
        "vilt, vilt-tiny-random, or hf:ORG/NAME[@REVISION] / hf:/path/to/dir for any Hugging Face two-tower "
        "model. Did you mean 'siglip'?"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"device": "gpu"},
            r"device must be one of auto \(CUDA when available, else CPU\), cpu, cuda or cuda:N; received 'gpu'",
        ),
        ({"dtype": "fp16"}, "dtype must be one of auto, fp32, bf16; received 'fp16'"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"num_threads": 0}, "num_threads must be >= 1 or None; received 0"),
        ({"model_path": "/tmp"}, "builds its own random weights; model_path must be None"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(VlnavError, match=match):
        make_encoder("siglip-tiny-random", **kwargs)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu():
    with pytest.raises(ConfigError, match="device .cuda. was requested but torch .* sees no CUDA GPU"):
        make_encoder("siglip-tiny-random", device="cuda")


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("siglip", "google/siglip-so400m-patch14-384"),
        ("clip", "openai/clip-vit-base-patch32"),
        ("vilt", "dandelin/vilt-b32-finetuned-vqa"),
    ],
)
def test_missing_weights_message(tmp_path, monkeypatch, name, model_id):
    """Offline by default: the cache is checked without a network request, even with HF_HUB_OFFLINE unset."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(EncoderError) as info:
        make_encoder(name)
    assert time.perf_counter() - start < 5.0  # no download attempt, no retries
    assert str(info.value) == (
        f"encoder '{name}' could not load {model_id}: it is not in the Hugging Face cache at {tmp_path / 'hf' / 'hub'} "
        f"(nothing is downloaded at run time). Fetch it once, where the hub is reachable, with `hf download "
        f"{model_id}`, or pass a local copy with --model-path {name}=DIR (vlnav-policy eval/dagger: "
        "--encoder-model-path DIR)."
    )


def test_missing_local_directory_message(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(EncoderError) as info:
        make_encoder("siglip", model_path=str(missing))
    assert str(info.value) == (
        f"encoder 'siglip' could not load google/siglip-so400m-patch14-384: the local directory {missing} does not "
        f"exist. Fetch it with `hf download google/siglip-so400m-patch14-384 --local-dir {missing}`, or point "
        "--model-path siglip=DIR (vlnav-policy eval/dagger: --encoder-model-path DIR) at a directory that holds the "
        "model's files (config.json, weights, tokenizer, preprocessor_config.json)."
    )
    with pytest.raises(EncoderError, match=f"the local directory {tmp_path} does not hold a loadable copy"):
        make_encoder("clip", model_path=str(tmp_path))


def test_real_names_load_from_a_local_directory(make_frames):
    """The `siglip` entry loads a checkpoint directory the way it would load the downloaded model."""
    directory = tiny_checkpoint("siglip", 0)
    enc = make_encoder("siglip", model_path=str(directory))
    tiny = make_encoder("siglip-tiny-random")
    assert enc.spec.model_id == str(directory) and enc.spec.dim == 64
    # another checkpoint is not labelled as so400m: its identity is the directory's content hash
    assert enc.spec.revision == content_hash(directory) and enc.spec.revision.startswith("sha256:")
    assert enc.spec.note.startswith(
        f"SigLIP architecture of the 'siglip' entry with the weights of the local directory {directory}"
    )
    frames = make_frames(2, 32, 32)
    np.testing.assert_array_equal(enc.encode_images(frames), tiny.encode_images(frames))
    vilt = make_encoder("vilt", model_path=str(tiny_checkpoint("vilt", 0)))
    assert vilt.spec.fused and vilt.encode_pairs(frames, ["a", "b"]).shape == (2, 64)


def test_tiny_model_deterministic_across_processes(tiny_siglip, make_frames):
    frames = make_frames(2, 32, 32, seed=9)
    code = (
        "import json, sys, numpy as np\n"
        "from vlnav_data.encoders import make_encoder\n"
        "f = np.array(json.loads(sys.stdin.read()), dtype=np.uint8)\n"
        "e = make_encoder('siglip-tiny-random')\n"
        "print(json.dumps([e.encode_images(f).tolist(), e.encode_texts(['Go to the red ball']).tolist()]))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(frames.tolist()),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    images, texts = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(images, dtype=np.float32), tiny_siglip.encode_images(frames))
    # A text's embedding comes from the encoder's text cache (a session fixture), filled by whichever batch
    # first held the text; BLAS rounds a row of a larger batch differently in the last bit (1.8e-6 relative,
    # seen after the two-tower tests), so texts agree to float32 rounding, images (no cache) bit for bit.
    np.testing.assert_allclose(
        np.array(texts, dtype=np.float32), tiny_siglip.encode_texts(["Go to the red ball"]), rtol=1e-5, atol=1e-7
    )
