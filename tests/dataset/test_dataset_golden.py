"""Golden file: rebuilding datasets/samples/tiny.h5 from datasets/configs/tiny.toml on CPU gives the same arrays."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from vlnav_data.collect import BuildConfig, build_dataset, load_build_toml
from vlnav_data.collect.config import LEGACY_VALUES
from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.validate import validate_dataset

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "samples" / "tiny.h5"
CONFIG = ROOT / "datasets" / "configs" / "tiny.toml"
EMBEDDING_ATOL = 2e-3  # float16 storage of float32 model outputs: allow a last-bit flip across CPUs
REGENERATE = (
    "the rebuild differs from the golden file; if the simulator, expert or encoder changed on purpose, "
    "regenerate it from the repository root: vlnav-data build --config datasets/configs/tiny.toml --overwrite "
    "&& rm datasets/samples/tiny.h5.result.json"
)


def test_sample_is_small_valid_and_built_from_the_toml():
    assert SAMPLE.stat().st_size <= 1_000_000
    assert validate_dataset(SAMPLE) == []
    values = load_build_toml(CONFIG)
    with DatasetReader(SAMPLE) as r:
        # fields added after the sample was built read as the value they implied then (as --resume does)
        assert {**LEGACY_VALUES, **r.build_config} == BuildConfig(**values).stored()
        assert r.encoders == ("siglip-tiny-random",)
        assert r.image_shape == (256, 256, 3)
        assert r.split("train") and r.split("valid")


def test_rebuild_from_toml_matches_the_golden_file(tmp_path):
    values = load_build_toml(CONFIG)
    values["out"] = str(tmp_path / "tiny.h5")
    rebuilt = build_dataset(BuildConfig(**values)).path
    with h5py.File(SAMPLE) as gold, h5py.File(rebuilt) as new:
        assert sorted(gold["data"].keys()) == sorted(new["data"].keys())
        paths: list[str] = []
        gold.visititems(lambda n, o: paths.append(n) if isinstance(o, h5py.Dataset) else None)
        fresh: list[str] = []
        new.visititems(lambda n, o: fresh.append(n) if isinstance(o, h5py.Dataset) else None)
        assert sorted(paths) == sorted(fresh)
        for p in paths:
            a, b = gold[p][()], new[p][()]
            assert a.dtype == b.dtype and a.shape == b.shape, p
            if a.dtype.kind == "f" and ("_image" in p or "_joint" in p or "text_embeddings" in p):
                np.testing.assert_allclose(
                    a.astype(np.float32), b.astype(np.float32), atol=EMBEDDING_ATOL, err_msg=f"{p}: {REGENERATE}"
                )
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{p}: {REGENERATE}")
        for name in gold["data"]:
            ga, na = dict(gold["data"][name].attrs), dict(new["data"][name].attrs)
            assert ga.keys() == na.keys()
            for k in ga:
                assert ga[k] == na[k], (name, k)
        for attr in ("features_json", "sim_config_json", "fps", "rebuild_command"):
            assert gold.attrs[attr] == new.attrs[attr], attr
        # Library versions are provenance of the machine that built the file, not of the data.
        gold_encoders, new_encoders = (json.loads(f.attrs["encoders_json"]) for f in (gold, new))
        for entry in (*gold_encoders, *new_encoders):
            entry.pop("library_versions")
        assert gold_encoders == new_encoders


@pytest.mark.parametrize("key", ["obs/rgb", "actions", "obs/privileged_state"])
def test_sample_arrays_are_plausible(key):
    with DatasetReader(SAMPLE) as r:
        rows = r.stack([key])[key]
    assert len(rows) == 60
    if key == "obs/rgb":
        assert rows.std() > 10  # real rendered frames, not blank
    if key == "actions":
        assert set(np.unique(rows)) <= {-1.0, 0.0, 1.0}  # bang-bang pursuit actions
