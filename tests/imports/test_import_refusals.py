"""Bad inputs of `vlnav-data import`: one `error:` line, exit 2, before any work, nothing on disk changed
(the house pattern of tests/cli/test_cli_refusals_untouched.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from tests.disk_snapshot import tree
from vlnav_data.cli import data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
runner = CliRunner()

CASES = [
    ("lerobot-not-a-dataset", "lerobot empty --out x.h5", "error: 'empty' is not a LeRobot dataset directory"),
    (
        "lerobot-codebase-v21",
        "lerobot v21 --out x.h5 --camera observation.images.top",
        "error: 'v21' is a LeRobot v2.1",
    ),
    (
        "lerobot-missing-camera",
        "lerobot video --out x.h5 --camera observation.images.side",
        "error: camera 'observation.images.side' is not in",
    ),
    ("lerobot-two-cameras", "lerobot images --out x.h5", "error: 'images' has 2 cameras; choose one with --camera"),
    (
        "lerobot-truncated-video",
        "lerobot truncated --out x.h5 --camera observation.images.top",
        "error: 'truncated/videos/observation.images.top/chunk-000/file-000.mp4' has no frame at",
    ),
    (
        "lerobot-bad-episodes",
        "lerobot images --out x.h5 --camera observation.images.top --episodes 2:9",
        "error: --episodes",
    ),
    (
        "lerobot-out-exists",
        "lerobot images --out done.h5 --camera observation.images.top",
        "error: the output 'done.h5' already exists",
    ),
    (
        "lerobot-out-not-h5",
        "lerobot images --out x.txt --camera observation.images.top",
        "error: --out must name an .h5",
    ),
    ("lerobot-repo-not-cached", "lerobot someone/absent --out x.h5", "error: 'someone/absent' is neither a directory"),
    ("robomimic-no-data", "robomimic nodata.hdf5 --out x.h5", "error: 'nodata.hdf5' has no /data group"),
    (
        "robomimic-no-instruction",
        "robomimic lift.hdf5 --out x.h5 --camera agentview_image",
        "error: 'lift.hdf5' /data/demo_0 has no instruction",
    ),
    (
        "robomimic-missing-camera",
        "robomimic lift.hdf5 --out x.h5 --camera frontview_image --instruction go",
        "error: camera 'frontview_image' is not in",
    ),
    (
        "robomimic-text-file",
        "robomimic notes.txt --out x.h5 --instruction go",
        "error: 'notes.txt' cannot be opened as HDF5",
    ),
    (
        "robomimic-empty-instruction",
        "robomimic lift.hdf5 --out x.h5 --instruction ' '",
        "error: --instruction must not be empty",
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("import-refusals")
    (root / "empty").mkdir()
    for name in ("video", "images"):
        shutil.copytree(FIXTURES / "lerobot" / name, root / name)
    shutil.copytree(FIXTURES / "lerobot" / "images", root / "v21")
    info = json.loads((root / "v21/meta/info.json").read_text())
    (root / "v21/meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    shutil.copytree(FIXTURES / "lerobot" / "video", root / "truncated")
    mp4 = root / "truncated/videos/observation.images.top/chunk-000/file-000.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    shutil.copy(FIXTURES / "robomimic" / "lift_tiny.hdf5", root / "lift.hdf5")
    with h5py.File(root / "nodata.hdf5", "w") as f:
        f.create_group("mask")
    (root / "notes.txt").write_text("not a dataset\n")
    (root / "done.h5").write_bytes(b"an earlier import")
    (root / "hub-cache").mkdir()
    return root


@pytest.mark.parametrize(("args", "start"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_import_changes_nothing(world, monkeypatch, args, start):
    monkeypatch.chdir(world)
    monkeypatch.setenv("HF_HUB_CACHE", str(world / "hub-cache"))
    monkeypatch.setenv("HF_LEROBOT_HOME", str(world / "hub-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = tree(world)
    import shlex

    res = runner.invoke(data.app, ["import", *shlex.split(args)])
    assert res.exit_code == 2, (res.exit_code, res.stdout, res.stderr, res.exception)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), res.stderr
    assert tree(world) == before


def test_the_missing_camera_error_lists_the_cameras(world, monkeypatch):
    monkeypatch.chdir(world)
    res = runner.invoke(data.app, ["import", "lerobot", "video", "--out", "x.h5", "--camera", "nope"])
    assert "observation.images.top, observation.images.wrist" in res.stderr
