"""A file we write loads, unchanged, in robomimic 0.3.0's SequenceDataset (dataset-ecosystem.md §1.3)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.synthetic import write_synthetic_dataset

pytest.importorskip("torch")
try:  # robomimic.utils.log_utils imports termcolor only to colour log lines; CI installs robomimic --no-deps
    import termcolor  # noqa: F401
except ImportError:
    _shim = types.ModuleType("termcolor")
    _shim.colored = lambda text, *args, **kwargs: text
    sys.modules["termcolor"] = _shim
robomimic_dataset = pytest.importorskip("robomimic.utils.dataset")
ObsUtils = pytest.importorskip("robomimic.utils.obs_utils")

ENC = "siglip-tiny-random"


@pytest.mark.parametrize("cache_mode", [None, "low_dim", "all"])
def test_sequence_dataset_reads_our_file_with_masks_as_filter_keys(tmp_path, cache_mode):
    path = write_synthetic_dataset(tmp_path / "d.h5", 5, {ENC: 16}, image_size=(24, 24), max_steps=12)
    obs_keys = ("rgb", f"{ENC}_joint", "privileged_state")
    ObsUtils.initialize_obs_utils_with_obs_specs(
        {"obs": {"rgb": ["rgb"], "low_dim": [f"{ENC}_joint", "privileged_state"]}}
    )
    with DatasetReader(path) as r:
        train, valid = r.split("train"), r.split("valid")
        expect = {n: r.episode(n, keys=["actions", "obs/rgb", f"obs/{ENC}_joint"]) for n in r.demo_names}
    assert train and valid
    for fk, names in (("train", train), ("valid", valid)):
        ds = robomimic_dataset.SequenceDataset(
            hdf5_path=str(path),
            obs_keys=obs_keys,
            dataset_keys=("actions", "rewards", "dones"),
            frame_stack=1,
            seq_length=4,
            pad_frame_stack=True,
            pad_seq_length=True,
            get_pad_mask=False,
            goal_mode=None,
            hdf5_cache_mode=cache_mode,
            hdf5_use_swmr=True,
            hdf5_normalize_obs=False,
            filter_by_attribute=fk,
            load_next_obs=False,
        )
        assert list(ds.demos) == names
        assert len(ds) == sum(len(expect[n]["actions"]) for n in names)
        item = ds[0]
        first = expect[names[0]]
        assert item["actions"].shape == (4, 2)
        np.testing.assert_allclose(item["actions"], first["actions"][:4])
        assert item["obs"]["rgb"].shape == (4, 24, 24, 3)
        np.testing.assert_array_equal(item["obs"]["rgb"], first["obs/rgb"][:4])
        assert item["obs"][f"{ENC}_joint"].shape == (4, 16)
        np.testing.assert_allclose(item["obs"][f"{ENC}_joint"], first[f"obs/{ENC}_joint"][:4], atol=1e-3)
        assert item["obs"]["privileged_state"].shape[0] == 4
        ds.close_and_delete_hdf5_handle()
