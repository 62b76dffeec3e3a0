"""The writer refuses a misfit episode before it changes the file, and releases its lock on every path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlnav_data.dataset import DatasetWriter, EpisodeRecord, lock_path, partial_path
from vlnav_data.dataset import writer as writer_module
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.errors import SchemaError


def _bad_episodes(toy_episode) -> dict[str, EpisodeRecord]:
    new = ["a new instruction", "another new one", "a new instruction"]
    ok = toy_episode(1, new)
    return {
        # the second encoder's text width is wrong: the first encoder's table and /meta/instructions were
        # resized and written before this was noticed
        "text width of a later encoder": toy_episode(1, new, text_dims={"other": 5}),
        "text width of the first encoder": toy_episode(1, new, text_dims={"tiny": 3}),
        "text embedding missing": dataclasses.replace(ok, text_embeddings={"tiny": ok.text_embeddings["tiny"]}),
        "image embedding width": dataclasses.replace(
            ok, image_embeddings={**ok.image_embeddings, "other": np.zeros((3, 7))}
        ),
        "frame shape": dataclasses.replace(ok, rgb=np.zeros((3, 6, 6, 3), dtype=np.uint8)),
    }


MISFITS = (
    "text width of a later encoder",
    "text width of the first encoder",
    "text embedding missing",
    "image embedding width",
    "frame shape",
)


def test_every_misfit_is_exercised(toy_episode):
    assert sorted(_bad_episodes(toy_episode)) == sorted(MISFITS)


@pytest.mark.parametrize("case", MISFITS)
def test_a_misfit_episode_leaves_the_file_byte_for_byte_unchanged(tmp_path, case, toy_layout, toy_episode):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, toy_layout())
    w.append_episode(toy_episode(0, ["go to the red ball"] * 4))  # committed and flushed
    before = partial_path(out).read_bytes()
    with pytest.raises(SchemaError):
        w.append_episode(_bad_episodes(toy_episode)[case])
    assert partial_path(out).read_bytes() == before
    assert w.instructions == ("go to the red ball",) and w.num_episodes == 1
    w.append_episode(toy_episode(1, ["a new instruction", "another new one", "a new instruction"]))  # still usable
    w.finalize()


def test_finalize_releases_the_lock_when_publish_raises(tmp_path, monkeypatch, toy_layout, toy_episode):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, toy_layout())
    w.append_episode(toy_episode(0, ["go"] * 3))

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


def test_finalize_releases_the_lock_when_writing_the_masks_raises(tmp_path, monkeypatch, toy_layout, toy_episode):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, toy_layout())
    w.append_episode(toy_episode(0, ["go"] * 3))
    monkeypatch.setattr(writer_module.schema, "SPLITS", ("train", 7))  # a dataset name h5py refuses
    with pytest.raises((TypeError, ValueError)):
        w.finalize()
    assert not lock_path(out).exists()
