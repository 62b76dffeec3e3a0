"""Shared by the import tests: the CLI import of the committed robomimic fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data

ROBOMIMIC_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "robomimic" / "lift_tiny.hdf5"


def import_lift(out: Path) -> Path:
    """`vlnav-data import robomimic` of the fixture into ``out`` (camera agentview_image, "lift the cube")."""
    args = ["import", "robomimic", str(ROBOMIMIC_FIXTURE), "--out", str(out), "--camera", "agentview_image",
            "--instruction", "lift the cube", "--no-progress"]  # fmt: skip
    res = CliRunner().invoke(data.app, args)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="session")
def import_robomimic_fixture() -> Callable[[Path], Path]:
    return import_lift
