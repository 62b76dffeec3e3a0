"""Shared test setup: nothing in the test suite may reach the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


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
