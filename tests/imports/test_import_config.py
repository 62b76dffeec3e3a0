"""The import configs: --episodes ranges, the split rule, option checks."""

from __future__ import annotations

import pytest

from vlnav_data.errors import ConfigError
from vlnav_data.imports import LeRobotImportConfig, RobomimicImportConfig, parse_episodes
from vlnav_data.imports.run import assign_splits


def test_episodes_ranges_and_indices():
    assert parse_episodes(None, 4) == [0, 1, 2, 3]
    assert parse_episodes("1:3,0", 5) == [1, 2, 0]
    assert parse_episodes(":2, 4", 5) == [0, 1, 4]
    assert parse_episodes("3:", 5) == [3, 4]


@pytest.mark.parametrize("text", ["5", "0:6", "2:2", "a", "1,1", "-1", "3:1"])
def test_bad_episodes_are_refused(text):
    with pytest.raises(ConfigError, match="--episodes"):
        parse_episodes(text, 5)


def test_split_rule_by_episode():
    assert assign_splits([0, 1, 2], {2}, 0.1, 0) == ["train", "train", "valid"]
    stratified = assign_splits(list(range(40)), None, 0.25, 0)
    assert stratified.count("valid") == 10  # the stratified rule: floor or ceil of n * f for every prefix
    assert assign_splits([0, 1], None, 0.1, 0).count("valid") == 1  # at least one of two or more
    assert assign_splits([0, 1], {7}, 0.1, 0).count("valid") == 1  # the named valid episode is not selected
    assert assign_splits([0, 1, 2], None, 0.0, 0) == ["train"] * 3


def test_options_are_checked():
    with pytest.raises(ConfigError, match="--valid-fraction"):
        LeRobotImportConfig(root="r", out="o.h5", valid_fraction=1.0)
    with pytest.raises(ConfigError, match="exclude each other"):
        RobomimicImportConfig(file="f", out="o.h5", resume=True, overwrite=True)
    assert "out" not in LeRobotImportConfig(root="r", out="o.h5").build_config()
