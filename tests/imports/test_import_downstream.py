"""An imported file through the dataset commands: embed adds an encoder, validate, info and card describe it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data
from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.validate import validate_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def imported(tmp_path_factory, import_robomimic_fixture) -> Path:
    return import_robomimic_fixture(tmp_path_factory.mktemp("downstream") / "lift.h5")


def test_embed_adds_an_encoder_to_an_imported_file(imported, tmp_path):
    out = tmp_path / "embedded.h5"
    res = runner.invoke(data.app, ["embed", str(imported), "--encoder", "siglip-tiny-random", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert validate_dataset(out) == []
    with DatasetReader(out) as r:
        assert r.encoders == ("siglip-tiny-random",) and not r.has_arena
        rows = r.feature_rows("siglip-tiny-random", "joint", ["actions"], split="train")
        assert rows["features"].shape[0] == rows["actions"].shape[0] == r.total_steps - r.num_samples("demo_2")
        assert rows["actions"].shape[1] == 7
        assert r.source["kind"] == "robomimic"


def test_embed_refuses_the_privileged_oracle_on_an_imported_file(imported, tmp_path):
    res = runner.invoke(data.app, ["embed", str(imported), "--encoder", "oracle", "--out", str(tmp_path / "o.h5")])
    assert res.exit_code == 2 and res.stderr.startswith("error: encoder(s) oracle read the arena's privileged state")
    assert list(tmp_path.iterdir()) == []


def test_info_and_card_commands_name_the_source(imported, tmp_path):
    res = runner.invoke(data.app, ["info", str(imported)])
    assert res.exit_code == 0, res.output
    assert "robomimic lift_tiny.hdf5" in res.stdout and "none (imported" in res.stdout
    assert "success rate" not in res.stdout
    res = runner.invoke(data.app, ["validate", str(imported)])
    assert res.exit_code == 0 and "valid" in res.stdout
    res = runner.invoke(data.app, ["card", str(imported), "--out", str(tmp_path / "README.md")])
    assert res.exit_code == 0, res.output
    card = (tmp_path / "README.md").read_text()
    assert "imported from the robomimic dataset `lift_tiny.hdf5`" in card
    assert "`obs/robot0_eef_pos` (from `obs/robot0_eef_pos`)" in card


def test_publish_dry_run_of_an_imported_file_calls_nothing_privileged(imported, tmp_path):
    out = tmp_path / "hub"
    res = runner.invoke(data.app, ["publish", str(imported), "--repo-id", "me/lift", "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    card = (out / "README.md").read_text()
    assert "**privileged**" not in card and "imported source dataset" in card
    assert "`observation.images.agentview_image`" in card
    res = runner.invoke(data.app, ["verify", str(out)])
    assert res.exit_code == 0, res.output
