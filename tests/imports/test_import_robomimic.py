"""`vlnav-data import robomimic`: the committed robomimic-layout fixture imports with every row and frame equal."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.dataset import DatasetReader, schema
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.imports import RobomimicImportConfig, import_robomimic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_robomimic_fixture as fixture  # noqa: E402

SOURCE = fixture.PATH
runner = CliRunner()


def test_fixture_is_what_its_script_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(fixture, "PATH", tmp_path / "again.hdf5")
    fixture.main()
    with h5py.File(SOURCE, "r") as a, h5py.File(tmp_path / "again.hdf5", "r") as b:
        for name in a["data"]:
            for key in fixture.demo_arrays(0):
                np.testing.assert_array_equal(a["data"][name][key][()], b["data"][name][key][()])


def test_fixture_loads_in_robomimic_sequence_dataset():
    pytest.importorskip("torch")
    if "termcolor" not in sys.modules:
        try:
            import termcolor  # noqa: F401
        except ImportError:
            shim = types.ModuleType("termcolor")
            shim.colored = lambda text, *a, **k: text
            sys.modules["termcolor"] = shim
    dataset = pytest.importorskip("robomimic.utils.dataset")
    obs_utils = pytest.importorskip("robomimic.utils.obs_utils")
    obs_utils.initialize_obs_utils_with_obs_specs(
        {"obs": {"rgb": ["agentview_image"], "low_dim": ["robot0_eef_pos", "object"]}}
    )
    ds = dataset.SequenceDataset(
        hdf5_path=str(SOURCE),
        obs_keys=("agentview_image", "robot0_eef_pos", "object"),
        dataset_keys=("actions", "rewards", "dones"),
        frame_stack=1,
        seq_length=3,
        pad_frame_stack=True,
        pad_seq_length=True,
        get_pad_mask=False,
        goal_mode=None,
        hdf5_cache_mode="all",
        hdf5_use_swmr=True,
        hdf5_normalize_obs=False,
        filter_by_attribute="valid",
        load_next_obs=False,
    )
    assert list(ds.demos) == list(fixture.VALID)
    item = ds[0]
    np.testing.assert_allclose(item["actions"], fixture.demo_arrays(2)["actions"][:3], rtol=1e-6)
    np.testing.assert_array_equal(item["obs"]["agentview_image"], fixture.demo_arrays(2)["obs/agentview_image"][:3])
    ds.close_and_delete_hdf5_handle()


def test_every_row_and_frame_is_the_source(tmp_path, import_robomimic_fixture):
    out = import_robomimic_fixture(tmp_path / "lift.h5")
    assert validate_dataset(out) == []
    with DatasetReader(out) as r:
        assert not r.has_arena
        assert r.source["kind"] == "robomimic" and r.source["id"] == "lift_tiny.hdf5"
        assert r.source["info"]["env_args"] == fixture.ENV_ARGS
        assert set(r.source["skipped_features"]) == {"obs/robot0_eye_in_hand_image", "states"}
        assert r.fps == 20.0  # env_kwargs.control_freq
        assert r.split("valid") == ["demo_2"] and len(r) == len(fixture.LENGTHS)
        for i, name in enumerate(r.demo_names):
            src = fixture.demo_arrays(i)
            ep = r.episode(name)
            np.testing.assert_array_equal(ep[schema.ACTIONS], src["actions"].astype(np.float32))
            np.testing.assert_array_equal(ep[schema.RGB], src["obs/agentview_image"])
            for key in fixture.LOW_DIM:
                np.testing.assert_array_equal(ep[f"obs/{key}"], src[f"obs/{key}"].astype(np.float32))
            np.testing.assert_array_equal(ep[schema.REWARDS], src["rewards"].astype(np.float32))
            np.testing.assert_array_equal(ep[schema.DONES], src["dones"].astype(np.uint8))
            np.testing.assert_allclose(ep[schema.TIMESTAMPS], np.arange(fixture.LENGTHS[i]) / 20.0)
            assert ep["instructions"] == ["lift the cube"] * fixture.LENGTHS[i]
            assert ep["attrs"]["source_demo"] == f"demo_{i}" and ep["attrs"]["episode_index"] == i
            assert not set(r.keys(name)) & {schema.PRIVILEGED_STATE, schema.WHEEL_VEL, "states"}


@pytest.mark.parametrize(
    ("where", "attr", "value", "expected"),
    [
        ("demo", "lang", "stack the blocks", "stack the blocks"),
        ("demo", "ep_meta", json.dumps({"lang": "open the drawer"}), "open the drawer"),
        ("data", "problem_info", json.dumps({"language_instruction": "turn on the stove"}), "turn on the stove"),
    ],
)
def test_instruction_read_from_the_file(tmp_path, where, attr, value, expected):
    src = tmp_path / "with_lang.hdf5"
    shutil.copy(SOURCE, src)
    with h5py.File(src, "r+") as f:
        groups = [f["data"][n] for n in f["data"]] if where == "demo" else [f["data"]]
        for g in groups:
            g.attrs[attr] = value
    import_robomimic(
        RobomimicImportConfig(file=str(src), out=str(tmp_path / "o.h5"), camera="robot0_eye_in_hand_image")
    )
    with DatasetReader(tmp_path / "o.h5") as r:
        assert r.instructions == [expected]
        np.testing.assert_array_equal(r.episode(1)[schema.RGB], fixture.demo_arrays(1)["obs/robot0_eye_in_hand_image"])


def test_the_imported_file_is_still_a_robomimic_dataset(tmp_path):
    """The import keeps robomimic's layout: SequenceDataset reads the written file with its masks."""
    test_fixture_loads_in_robomimic_sequence_dataset()  # the same shims and skips
    dataset = pytest.importorskip("robomimic.utils.dataset")
    obs_utils = pytest.importorskip("robomimic.utils.obs_utils")
    out = tmp_path / "lift.h5"
    import_robomimic(
        RobomimicImportConfig(file=str(SOURCE), out=str(out), camera="agentview_image", instruction="lift")
    )
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"rgb": ["rgb"], "low_dim": ["robot0_eef_pos"]}})
    ds = dataset.SequenceDataset(
        hdf5_path=str(out),
        obs_keys=("rgb", "robot0_eef_pos"),
        dataset_keys=("actions", "rewards", "dones"),
        frame_stack=1,
        seq_length=2,
        pad_frame_stack=True,
        pad_seq_length=True,
        get_pad_mask=False,
        goal_mode=None,
        hdf5_cache_mode=None,
        hdf5_use_swmr=True,
        hdf5_normalize_obs=False,
        filter_by_attribute="train",
        load_next_obs=False,
    )
    assert list(ds.demos) == ["demo_0", "demo_1", "demo_3"]
    item = ds[0]
    np.testing.assert_array_equal(item["obs"]["rgb"], fixture.demo_arrays(0)["obs/agentview_image"][:2])
    np.testing.assert_allclose(item["actions"], fixture.demo_arrays(0)["actions"][:2], rtol=1e-6)
    ds.close_and_delete_hdf5_handle()
