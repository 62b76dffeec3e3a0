"""validate_dataset lists every violation; summary and card describe the file correctly."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.card import frame_strip, render_card, size_category
from vlnav_data.dataset.summary import summarize_dataset
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import SchemaError


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("v")
    return write_synthetic_dataset(d / "good.h5", 5, {"enc": 8}, image_size=(16, 20), max_steps=40)


def _copy(good, tmp_path, name="x.h5"):
    out = tmp_path / name
    shutil.copy(good, out)
    return out


def _rules(violations):
    return {v.rule for v in violations}


def test_valid_file_has_no_violations(good):
    assert validate_dataset(good) == []


def test_all_violations_are_listed_at_once(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        f.attrs["complete"] = False
        f["data"].attrs["total"] = 1
        f["data/demo_1/actions"][0] = [1.5, 0.0]
        del f["data/demo_2/rewards"]
        f["data/demo_3/instruction_index"][0] = 99
        f["data"].move("demo_4", "demo_7")
        f["data"].create_group("meta_stats")
        f["data/demo_0"].create_dataset("note", data=np.array([b"x"] * f["data/demo_0"].attrs["num_samples"]))
        f["data/demo_0/dones"][0] = 3
        train0 = f["mask/train"][0]
        del f["mask/valid"]
        f["mask/valid"] = np.array([train0, b"demo_9"], dtype="S")
        f.attrs["env_args"] = "x"
        f["data"].attrs["env_args"] = json.dumps({"env_name": "a", "type": 2})
    v = validate_dataset(p)
    rules = _rules(v)
    for rule in (
        "complete",
        "total",
        "actions",
        "datasets",
        "instruction-index",
        "demo-names",
        "strings",
        "dones",
        "masks",
        "env-args",
    ):
        assert rule in rules, (rule, [str(x) for x in v])
    text = "\n".join(map(str, v))
    assert "demo_9" in text and "disjoint" in text and "/data/meta_stats" in text and "missing: demo_4" in text
    assert "/data/demo_2/rewards" in text


def test_lengths_dtypes_and_filters_are_checked(good, tmp_path):
    p = _copy(good, tmp_path)
    with h5py.File(p, "r+") as f:
        del f["data/demo_0/timestamps"]
        f["data/demo_0/timestamps"] = np.arange(3, dtype=np.float64)
        del f["data/demo_1/obs/enc_joint"]
        f["data/demo_1/obs/enc_joint"] = np.zeros((f["data/demo_1"].attrs["num_samples"], 8), np.float32)
        rgb = f["data/demo_2/obs/rgb"][()]
        del f["data/demo_2/obs/rgb"]
        f["data/demo_2/obs"].create_dataset("rgb", data=rgb, chunks=(4, 16, 20, 3))
    rules = _rules(validate_dataset(p))
    assert {"lengths", "dtypes", "chunks"} <= rules


def test_truncated_non_hdf5_missing_and_newer_version(good, tmp_path):
    trunc = tmp_path / "trunc.h5"
    data = good.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    v = validate_dataset(trunc)
    assert v and v[0].rule == "hdf5"
    junk = tmp_path / "junk.h5"
    junk.write_text("hello, not hdf5")
    assert _rules(validate_dataset(junk)) == {"hdf5"}
    assert _rules(validate_dataset(tmp_path / "nope.h5")) == {"file"}
    newer = _copy(good, tmp_path, "newer.h5")
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = "2.0.0"
    v = validate_dataset(newer)
    assert _rules(v) == {"format-version"} and "upgrade vlnav-data" in v[0].message
    with pytest.raises(SchemaError, match="newer than"):
        DatasetReader(newer)
    other = _copy(good, tmp_path, "other.h5")
    with h5py.File(other, "r+") as f:
        f.attrs["format"] = "something-else"
    assert _rules(validate_dataset(other)) == {"format"}


def test_partial_file_is_reported(good, tmp_path):
    p = _copy(good, tmp_path, "d.h5.partial")
    with h5py.File(p, "r+") as f:
        f.attrs["complete"] = False
    assert {"partial", "complete"} <= _rules(validate_dataset(p))


def test_summary_matches_the_demos(good):
    s = summarize_dataset(good)
    with DatasetReader(good) as r:
        lengths = [r.num_samples(n) for n in r.demo_names]
        succ = np.mean([r.attrs(n)["success"] for n in r.demo_names])
        terms = {}
        for n in r.demo_names:
            terms[r.attrs(n)["termination"]] = terms.get(r.attrs(n)["termination"], 0) + 1
    assert s.num_episodes == 5 and s.num_steps == sum(lengths)
    assert s.steps_max == max(lengths) and s.steps_min == min(lengths)
    assert s.success_rate == pytest.approx(succ)
    assert s.terminations == dict(sorted(terms.items()))
    assert s.encoders == {"enc": 8} and s.image_shape == (16, 20, 3)
    assert sum(s.splits.values()) == 5
    assert s.bytes_per_frame == pytest.approx(good.stat().st_size / sum(lengths))
    assert s.stored_bytes["obs/rgb"] > 0
    json.dumps(s.to_json())


def test_card_has_front_matter_strip_schema_and_rebuild_command(good, tmp_path):
    out = tmp_path / "card" / "README.md"
    text = render_card(good, out, num_frames=4, repo_id="me/demo")
    assert out.read_text() == text
    front = text.split("---")[1]
    assert "license: apache-2.0" in front and "- robotics" in front and "- n<1K" in front
    assert "![Sample frames](sample_frames.png)" in text
    assert "obs/rgb  uint8 (T, 16, 20, 3)" in text
    assert "write_synthetic_dataset" in text and 'hf_hub_download("me/demo"' in text
    from PIL import Image

    img = np.asarray(Image.open(out.parent / "sample_frames.png"))
    scale = 12  # 16-px frames enlarged to >= 192 px: ceil(192 / 16)
    assert img.shape == (16 * scale, (4 * 20 + 3 * 2) * scale, 3)
    np.testing.assert_array_equal(img, frame_strip(good, 4))
    with DatasetReader(good) as r:
        first_success = next((n for n in r.demo_names if r.attrs(n)["success"]), "demo_0")
        first = r.episode(first_success, keys=["obs/rgb"])["obs/rgb"][0]
    np.testing.assert_array_equal(img[::scale, : 20 * scale : scale], first)  # every stored pixel, as a block
    np.testing.assert_array_equal(img[scale - 1 :: scale, scale - 1 : 20 * scale : scale], first)
    assert frame_strip(good, 4, min_height_px=1).shape == (16, 4 * 20 + 3 * 2, 3)
    assert size_category(999) == "n<1K" and size_category(1000) == "1K<n<10K"
    assert size_category(250_000) == "100K<n<1M"
