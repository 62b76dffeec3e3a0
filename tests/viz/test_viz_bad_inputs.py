"""Refused recordings: one `error:` line, exit 2, nothing written (no .rrd, no .partial, no diagnosis)."""

from __future__ import annotations

import json
import shutil
import sys

import h5py
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data, policy, probe

runner = CliRunner()


def _refused(app, args: list[str], needle: str, where) -> None:
    before = sorted(p.name for p in where.iterdir())
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr
    assert sorted(p.name for p in where.iterdir()) == before


@pytest.fixture
def no_rerun(monkeypatch):
    """Rerun not installed: ``import rerun`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "rerun", None)


def test_missing_extra_says_how_to_install_it(demos, tmp_path, no_rerun):
    hint = "pip install 'vlnav-data[viz]'"
    _refused(data.app, ["view", str(demos), "--out", str(tmp_path / "a.rrd")], hint, tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    _refused(policy.app, ["diagnose", str(ev), "--rerun", str(tmp_path / "f.rrd")], hint, tmp_path)
    out = tmp_path / "umap"
    _refused(probe.app, ["umap", str(demos), "--out", str(out), "--rerun", str(tmp_path / "m.rrd")], hint, tmp_path)


def test_a_file_without_frames_is_refused(demos, tmp_path):
    copy = tmp_path / "state_only.h5"
    shutil.copy(demos, copy)
    with h5py.File(copy, "r+") as f:
        for name in f["data"]:
            del f["data"][name]["obs/rgb"]
        features = json.loads(f.attrs["features_json"])
        features.pop("rgb")
        f.attrs["features_json"] = json.dumps(features)
    _refused(data.app, ["view", str(copy), "--out", str(tmp_path / "a.rrd")], "holds no frames (obs/rgb)", tmp_path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--episode", "5"], "episode 5 is out of range: "),
        (["--episodes", "3:9"], "--episodes 3:9 is out of range"),
        (["--episodes", "two"], "--episodes takes episode indices"),
        (["--stride", "0"], "--stride must be an integer >= 1"),
        (["--serve"], "give exactly one of --out REC.rrd"),
    ],
)
def test_view_refuses_bad_selections(demos, tmp_path, args, needle):
    pytest.importorskip("rerun")
    _refused(data.app, ["view", str(demos), "--out", str(tmp_path / "a.rrd"), *args], needle, tmp_path)


def test_view_refuses_an_out_that_is_not_rrd(demos, tmp_path):
    pytest.importorskip("rerun")
    args = ["view", str(demos), "--out", str(tmp_path / "a.h5")]
    _refused(data.app, args, "a Rerun recording is an .rrd file", tmp_path)


def test_view_without_out_or_serve(demos, tmp_path):
    _refused(data.app, ["view", str(demos)], "give exactly one of --out REC.rrd", tmp_path)
