"""build --resume refuses to mix dtypes within one encoder, names it exactly, and records an allowed mix."""

from __future__ import annotations

import dataclasses

import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.dataset import DatasetReader, partial_path
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError


def test_build_resume_refuses_another_precision_and_records_an_allowed_mix(tmp_path, small_build):
    cfg = small_build(
        tmp_path / "d.h5", num_episodes=2, encoders=("oracle", "siglip-tiny-random"), max_episode_steps=10,
        encoder_dtype="bf16", seed=0,
    )  # fmt: skip
    path = build_dataset(cfg).path
    path.rename(partial_path(path))  # as if the build had been killed before it finished
    more = dataclasses.replace(cfg, num_episodes=3, resume=True, encoder_dtype="fp32")
    with pytest.raises(ConfigError) as info:
        build_dataset(more)
    assert str(info.value) == (
        f"encoder 'siglip-tiny-random' would mix precisions: '{partial_path(path)}' holds bfloat16 on cpu, this "
        "run computes float32 on cpu; use the same --device and --encoder-dtype throughout, or pass "
        "--allow-mixed-precision to accept the mix (it is then recorded in the encoder's entry as mixed_precision)"
    )
    with DatasetReader(partial_path(path), allow_incomplete=True) as r:
        assert len(r) == 2  # refused before anything in the file changed
    result = build_dataset(dataclasses.replace(more, allow_mixed_precision=True))
    assert (result.resumed_episodes, result.new_episodes) == (2, 1)
    assert validate_dataset(path) == []
    with DatasetReader(path) as r:
        mixed = r.encoder_specs["siglip-tiny-random"]
        oracle = r.encoder_specs["oracle"]
    assert (mixed["dtype"], mixed["device_type"]) == ("bfloat16", "cpu")
    assert mixed["mixed_precision"] == [
        {"dtype": "bfloat16", "device_type": "cpu"},
        {"dtype": "float32", "device_type": "cpu"},
    ]
    assert "mixed_precision" not in oracle  # the oracle computes in float32 whatever --encoder-dtype says
