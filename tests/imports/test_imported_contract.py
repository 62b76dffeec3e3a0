"""The contract of a file without an arena (schema.NO_ARENA): the writer writes it, validate checks it,
the reader, info and card describe it."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from vlnav_data.dataset import DatasetReader, DatasetWriter, schema
from vlnav_data.dataset.card import render_card
from vlnav_data.dataset.episode_record import ImportedEpisode
from vlnav_data.dataset.layout import ImportedFeature, ImportedLayout
from vlnav_data.dataset.summary import summarize_dataset
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import SchemaError


def _layout() -> ImportedLayout:
    return ImportedLayout(
        image_height=8,
        image_width=12,
        fps=10.0,
        action_names=("a0", "a1", "a2"),
        action_source_key="action",
        numeric=(
            ImportedFeature(
                key="state",
                path=schema.STATE,
                shape=(4,),
                names=("q0", "q1", "q2", "q3"),
                source_key="observation.state",
            ),
            ImportedFeature(key="env", path="obs/env", shape=(2,), names=None, source_key="observation.env"),
        ),
        source={"kind": "lerobot", "id": "me/toy", "revision": "v3.0", "info": {"fps": 10}},
        rewards_note="zeros: the source has no reward",
        camera={"source_key": "observation.images.top"},
        build_config={"kind": "lerobot"},
    )


def _episode(rng: np.random.Generator, t: int, index: int, split: str) -> ImportedEpisode:
    return ImportedEpisode(
        actions=rng.normal(0, 3, (t, 3)).astype(np.float32),  # unbounded: an imported action keeps its units
        numeric={
            schema.STATE: rng.normal(size=(t, 4)).astype(np.float32),
            "obs/env": rng.normal(size=(t, 2)).astype(np.float32),
        },
        rgb=rng.integers(0, 256, (t, 8, 12, 3), dtype=np.uint8),
        instructions=["pick the cube"] * (t - 1) + ["place it"],
        timestamps_s=np.arange(t) / 10.0,
        rewards=np.zeros(t, np.float32),
        dones=(np.arange(t) == t - 1).astype(np.uint8),
        episode_index=index,
        split=split,
    )


@pytest.fixture()
def imported_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "imported.h5"
    w = DatasetWriter(path, _layout())
    episodes = [_episode(rng, 5, 0, "train"), _episode(rng, 3, 7, "valid")]
    for ep in episodes:
        w.append_episode(ep)
    w.finalize()
    return path, episodes


def test_writer_writes_the_contract_and_validate_accepts_it(imported_file):
    path, episodes = imported_file
    assert validate_dataset(path) == []
    with DatasetReader(path) as r:
        assert not r.has_arena
        assert r.source["kind"] == "lerobot" and r.source["id"] == "me/toy"
        assert r.action_names == ["a0", "a1", "a2"]
        assert r.encoders == ()
        assert r.split("valid") == ["demo_1"]
        for name, ep in zip(r.demo_names, episodes, strict=True):
            got = r.episode(name)
            np.testing.assert_array_equal(got[schema.ACTIONS], ep.actions)
            np.testing.assert_array_equal(got[schema.STATE], ep.numeric[schema.STATE])
            np.testing.assert_array_equal(got["obs/env"], ep.numeric["obs/env"])
            np.testing.assert_array_equal(got[schema.RGB], ep.rgb)
            np.testing.assert_array_equal(got[schema.TIMESTAMPS], ep.timestamps_s)
            assert got["instructions"] == list(ep.instructions)
            assert set(got["attrs"]) == {"num_samples", "episode_index", "split"}
            assert not set(r.keys(name)) & set(schema.ARENA_ONLY_DATASETS)
        assert r.features["state"]["source_key"] == "observation.state"


def test_validate_names_what_breaks_the_contract(imported_file):
    path, _ = imported_file
    with h5py.File(path, "r+") as f:
        f["data/demo_0"].attrs["seed"] = 3
        f["data/demo_1"].create_dataset(schema.PRIVILEGED_STATE, data=np.zeros((3, 2), np.float32))
        del f["data/demo_1/obs/env"]
        f["data/demo_0/actions"][0, 0] = np.nan
    rules = {(v.rule, v.where) for v in validate_dataset(path)}
    assert ("arena-only", "/data/demo_0") in rules
    assert ("arena-only", f"/data/demo_1/{schema.PRIVILEGED_STATE}") in rules
    assert ("datasets", "/data/demo_1/obs/env") in rules
    assert ("actions", "/data/demo_0/actions") in rules


def test_validate_asks_an_imported_file_for_its_source(imported_file):
    path, _ = imported_file
    with h5py.File(path, "r+") as f:
        del f.attrs[schema.SOURCE_ATTR]
    assert [v.rule for v in validate_dataset(path)] == ["source"]
    with h5py.File(path, "r+") as f:
        f.attrs[schema.SOURCE_ATTR] = json.dumps({"kind": "tfds", "id": "x"})
    assert [v.rule for v in validate_dataset(path)] == ["source"]


def test_writer_refuses_an_arena_record_in_an_imported_file(tmp_path):
    rng = np.random.default_rng(1)
    w = DatasetWriter(tmp_path / "x.h5", _layout())
    bad = _episode(rng, 4, 0, "train")
    with pytest.raises(SchemaError, match="timestamps"):
        w.append_episode(ImportedEpisode(**{**bad.__dict__, "timestamps_s": np.zeros(4)}))
    with pytest.raises(SchemaError, match="features"):
        w.append_episode(ImportedEpisode(**{**bad.__dict__, "numeric": {schema.STATE: np.zeros((4, 4), np.float32)}}))
    w.close()


def test_info_and_card_describe_the_source_and_no_arena(imported_file):
    path, _ = imported_file
    s = summarize_dataset(path)
    assert s.source["id"] == "me/toy" and s.terminations == {} and s.experts == {}
    card = render_card(path)
    assert "imported from the lerobot dataset `me/toy`" in card
    assert "arena: none" in card and "Termination causes" not in card and "privileged_state" not in card
    assert "`obs/state` (from `observation.state`): `q0`, `q1`, `q2`, `q3`" in card
