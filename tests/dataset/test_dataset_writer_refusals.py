"""The writer refuses a misfit episode before it changes the file, and releases its lock on every path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlnav_data.dataset import DatasetLayout, DatasetWriter, EncoderEntry, EpisodeRecord, lock_path, partial_path
from vlnav_data.dataset import writer as writer_module
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.errors import SchemaError

ENC = {"tiny": 8, "other": 4}


def _layout() -> DatasetLayout:
    return DatasetLayout(
        image_height=6,
        image_width=5,
        state_names=("x_m", "y_m", "cos_yaw"),
        encoders=tuple(EncoderEntry(name=n, dim=d) for n, d in ENC.items()),
        fps=30.0,
        build_config={"seed": 1, "num_episodes": 3, "expert": "pursuit"},
        sim_config={"preset": "text2nav"},
    )


def _episode(i: int, instr: list[str], text_dim: dict[str, int] | None = None) -> EpisodeRecord:
    rng = np.random.default_rng(i)
    t = len(instr)
    dims = {**ENC, **(text_dim or {})}
    return EpisodeRecord(
        actions=rng.uniform(-1, 1, (t, 2)).astype(np.float32),
        wheel_vel_radps=rng.uniform(-20, 20, (t, 2)).astype(np.float32),
        rewards=rng.standard_normal(t).astype(np.float32),
        dones=np.r_[np.zeros(t - 1), 1].astype(np.uint8),
        rgb=rng.integers(0, 256, (t, 6, 5, 3), dtype=np.uint8),
        privileged_state=rng.standard_normal((t, 3)).astype(np.float32),
        instructions=instr,
        image_embeddings={n: rng.standard_normal((t, d)) for n, d in ENC.items()},
        joint_embeddings={n: rng.standard_normal((t, d)) for n, d in ENC.items()},
        text_embeddings={n: {s: np.ones(dims[n], dtype=np.float32) for s in set(instr)} for n in ENC},
        seed=100 + i,
        episode_index=i,
        target_index=0,
        target_color="red",
        termination="success",
        success=True,
        expert="pursuit",
    )


def _bad_episodes() -> dict[str, EpisodeRecord]:
    new = ["a new instruction", "another new one", "a new instruction"]
    ok = _episode(1, new)
    return {
        # the second encoder's text width is wrong: the first encoder's table and /meta/instructions were
        # resized and written before this was noticed
        "text width of a later encoder": _episode(1, new, {"other": 5}),
        "text width of the first encoder": _episode(1, new, {"tiny": 3}),
        "text embedding missing": dataclasses.replace(ok, text_embeddings={"tiny": ok.text_embeddings["tiny"]}),
        "image embedding width": dataclasses.replace(
            ok, image_embeddings={**ok.image_embeddings, "other": np.zeros((3, 7))}
        ),
        "frame shape": dataclasses.replace(ok, rgb=np.zeros((3, 6, 6, 3), dtype=np.uint8)),
    }


@pytest.mark.parametrize("case", list(_bad_episodes()))
def test_a_misfit_episode_leaves_the_file_byte_for_byte_unchanged(tmp_path, case):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, _layout())
    w.append_episode(_episode(0, ["go to the red ball"] * 4))  # committed and flushed
    before = partial_path(out).read_bytes()
    with pytest.raises(SchemaError):
        w.append_episode(_bad_episodes()[case])
    assert partial_path(out).read_bytes() == before
    assert w.instructions == ("go to the red ball",) and w.num_episodes == 1
    w.append_episode(_episode(1, ["a new instruction", "another new one", "a new instruction"]))  # still usable
    w.finalize()


def test_finalize_releases_the_lock_when_publish_raises(tmp_path, monkeypatch):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, _layout())
    w.append_episode(_episode(0, ["go"] * 3))

    def failing_publish(partial, final):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(writer_module, "publish", failing_publish)
    with pytest.raises(OSError, match="injected"):
        w.finalize()
    assert not lock_path(out).exists()
    lock = WriteLock(lock_path(out))
    lock.acquire()  # free for the next writer
    lock.release()
    assert not out.exists() and partial_path(out).exists()  # the finished partial file stays


def test_finalize_releases_the_lock_when_writing_the_masks_raises(tmp_path, monkeypatch):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, _layout())
    w.append_episode(_episode(0, ["go"] * 3))
    monkeypatch.setattr(writer_module.schema, "SPLITS", ("train", 7))  # a dataset name h5py refuses
    with pytest.raises((TypeError, ValueError)):
        w.finalize()
    assert not lock_path(out).exists()
