"""The embed sidecar (commit marker, resume checks) and the raw-copy assembly of the output."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from vlnav_data.dataset import EncoderEntry, schema
from vlnav_data.dataset.augment import combined_entries, write_with_encoders
from vlnav_data.dataset.sidecar import EmbeddingSidecar, input_fingerprint, sidecar_path
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError

NEW = EncoderEntry(name="new", dim=3, model_id="m", revision="r1", dtype="float32", device_type="cpu")


@pytest.fixture
def source(tmp_path):
    return write_synthetic_dataset(tmp_path / "src.h5", 3, {"old": 4}, image_size=(8, 8), max_steps=10)


def _open(source, side, resume, entries=(NEW,), plan=None):
    with h5py.File(source, "r") as f:
        fp = input_fingerprint(source, f)
        k = f[schema.META_INSTRUCTIONS].shape[0]
    return EmbeddingSidecar(
        side, input_path=source, fingerprint=fp, plan=plan or {"encoders": ["new"]}, entries=entries,
        num_instructions=k, resume=resume,
    )  # fmt: skip


def _fill(sidecar, source, first=0, last=None):
    with h5py.File(source, "r") as f:
        names = sorted(f["data"], key=schema.demo_index)
        for i, name in enumerate(names[first:last], start=first):
            t = int(f["data"][name].attrs["num_samples"])
            rows = np.full((t, 3), 0.5 + i, dtype=np.float32)
            sidecar.append(i, {"new": rows}, {"new": -rows}, {"new": {0: np.ones(3)}} if i == 0 else {})


def test_resume_keeps_committed_demos_drops_an_uncommitted_one_and_checks_the_job(source, tmp_path):
    side = sidecar_path(tmp_path / "out.h5")
    sc = _open(source, side, resume=False)
    _fill(sc, source, 0, 2)
    sc.close()
    with h5py.File(side, "r+") as f:  # a demo killed before its commit marker
        del f["data/demo_1"].attrs["num_samples"]
    sc = _open(source, side, resume=True)
    assert sc.committed == 1
    _fill(sc, source, 1)
    sc.finish()
    with h5py.File(side, "r") as f:
        assert sorted(f["data"]) == ["demo_0", "demo_1", "demo_2"] and bool(f.attrs["complete"])
    with pytest.raises(ConfigError, match="was started with"):
        _open(source, side, resume=True, plan={"encoders": ["other"]})
    other = EncoderEntry(name="new", dim=3, model_id="m", revision="r2", dtype="float32", device_type="cpu")
    with pytest.raises(ConfigError, match="one name must mean one model"):
        _open(source, side, resume=True, entries=(other,))
    with h5py.File(source, "r+") as f:  # the input changed since the job started
        f["data"].attrs["env_args"] = f["data"].attrs["env_args"]
    with pytest.raises(ConfigError, match="is not the file the unfinished embed"):
        _open(source, side, resume=True)


def test_the_output_is_a_raw_copy_plus_the_new_arrays(source, tmp_path):
    side = sidecar_path(tmp_path / "out.h5")
    sc = _open(source, side, resume=False)
    _fill(sc, source)
    sc.finish()
    dest = tmp_path / "out.h5.partial"
    write_with_encoders(source, side, dest, added=[NEW], rebuild_command="build && embed")
    assert [v.rule for v in validate_dataset(dest)] == ["partial"]  # only its name says it is unfinished
    with h5py.File(source, "r") as a, h5py.File(dest, "r") as b:
        for name in a["data"]:
            src_rgb, dst_rgb = a["data"][name]["obs/rgb"], b["data"][name]["obs/rgb"]
            for i in range(src_rgb.shape[0]):  # chunks copied as stored: same compressed bytes
                assert src_rgb.id.read_direct_chunk((i, 0, 0, 0)) == dst_rgb.id.read_direct_chunk((i, 0, 0, 0))
            np.testing.assert_array_equal(a["data"][name]["obs/old_joint"][()], b["data"][name]["obs/old_joint"][()])
            assert b["data"][name]["obs/new_image"].dtype == np.float16
            assert dict(a["data"][name].attrs).keys() == dict(b["data"][name].attrs).keys()
        assert b.attrs["rebuild_command"] == "build && embed" and bool(b.attrs["complete"])
        np.testing.assert_array_equal(b["meta/text_embeddings/new"][0], np.ones(3, dtype=np.float32))


def test_replaced_encoders_keep_their_place():
    a, b, c = (EncoderEntry(name=n, dim=2) for n in "abc")
    b2 = EncoderEntry(name="b", dim=2, dtype="bfloat16")
    assert combined_entries([a, b], [c, b2]) == [a, b2, c]
