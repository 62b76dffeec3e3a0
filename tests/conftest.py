"""Shared test setup: nothing in the test suite may reach the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders headless (Mesa's software EGL) in every test


import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory):
    """``tiny_checkpoint_dir(family) -> Path``: a tiny random checkpoint (siglip, siglip2, clip, vilt) saved with
    ``save_pretrained`` (tokenizer built locally), written once per session. Copy it before modifying it."""
    from vlnav_data.encoders.random_models import TINY_WRITERS
    from vlnav_data.encoders.registry import quiet_transformers

    root = tmp_path_factory.mktemp("tiny-checkpoints")
    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            with quiet_transformers():
                TINY_WRITERS[family](root / f"tiny-{family}", 0)
            made[family] = root / f"tiny-{family}"
        return made[family]

    return get


@pytest.fixture
def fake_hf_cache(tmp_path, monkeypatch):
    """``fake_hf_cache(repo_id, src_dir, commit, refs=("main",)) -> snapshot dir``: put a checkpoint into a
    Hugging Face hub cache laid out as ``hf download`` leaves it (``HF_HUB_CACHE`` points at it)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    def add(repo_id: str, src_dir: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        snapshot = repo / "snapshots" / commit
        shutil.copytree(src_dir, snapshot)
        (repo / "refs").mkdir(exist_ok=True)
        for ref in refs:
            (repo / "refs" / ref).write_text(commit)
        return snapshot

    add.cache = cache  # type: ignore[attr-defined]
    return add


TOY_PLUGIN_SOURCE = '''
"""A test plugin: 4 x 4 average colour pooling (48-d) and hash-seeded text vectors."""

import hashlib

import numpy as np

from vlnav_data.encoders import Encoder, EncoderSpec


class ToyPool(Encoder):
    def __init__(self, device="cpu", dtype="auto", batch_size=None, seed=0, **kwargs):
        self.spec = EncoderSpec(
            name="toy-pool", model_id="vlnav-test/toy-pool", revision="0.1", dim=48, dtype="float32",
            device=device, privileged=False, note="4x4 colour pooling (test plugin)",
        )

    def encode_images(self, images):
        b, h, w, _ = images.shape
        x = images[:, : h // 4 * 4, : w // 4 * 4].astype(np.float32) / 255.0
        x = x.reshape(b, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4)).reshape(b, 48) - 0.5
        return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode_texts(self, texts):
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(48)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 48)


def make(**kwargs):
    return ToyPool(**kwargs)


make.dim = 48
make.note = "4x4 colour pooling (test plugin)"
'''


def write_toy_plugin(site: Path) -> Path:
    """Install the ``toy-pool`` plugin as a distribution into ``site`` (module + dist-info with an entry point)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "vlnav_toy_plugin.py").write_text(TOY_PLUGIN_SOURCE)
    info = site / "vlnav_toy_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vlnav-toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vlnav_data.encoders]\ntoy-pool = vlnav_toy_plugin:make\n")
    return site


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """The ``toy-pool`` plugin installed on ``sys.path`` (a dist-info with an entry point); yields the directory
    (subprocesses need it on PYTHONPATH)."""
    import sys

    site = write_toy_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("vlnav_toy_plugin", None)
