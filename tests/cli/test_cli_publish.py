"""`vlnav-data export | publish | verify`: exit codes, one-line errors, result.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.dataset.synthetic import write_synthetic_dataset

pytest.importorskip("pyarrow")
pytest.importorskip("huggingface_hub")

runner = CliRunner()


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("cli_publish") / "demos.h5", num_episodes=4, seed=1)


def test_export_png_writes_lerobot_and_result_json(demos: Path, tmp_path: Path) -> None:
    out = tmp_path / "lr"
    res = runner.invoke(app, ["export", str(demos), "--format", "lerobot", "--out", str(out), "--images", "png"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"wrote LeRobot v3.0 dataset to {out.resolve()}: 4 episodes, ")
    result = json.loads((out / "result.json").read_text())
    assert result["total_episodes"] == 4 and result["images"] == "png"
    assert json.loads((out / "meta/info.json").read_text())["total_frames"] == result["total_frames"]


def test_export_errors_are_one_line_with_exit_2(demos: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "x").write_text("x")
    res = runner.invoke(app, ["export", str(demos), "--out", str(out)])
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: output directory '{out}' already exists and is not empty; pass --overwrite to replace its "
        "contents, or choose another --out\n"
    )
    res = runner.invoke(app, ["export", str(demos), "--out", str(tmp_path / "n"), "--format", "rlds"])
    assert res.exit_code == 2
    assert res.stderr == "error: --format must be one of: lerobot; got 'rlds'\n"


def test_publish_dry_run_then_verify_then_corrupt(demos: Path, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    res = runner.invoke(app, ["publish", str(demos), "--repo-id", "me/demo", "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "dry run: nothing uploaded" in res.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["uploaded"] is False and result["repo_id"] == "me/demo"
    ok = runner.invoke(app, ["verify", str(out)])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("OK: ")
    target = out / "meta/stats.json"
    raw = bytearray(target.read_bytes())
    raw[5] ^= 0x20
    target.write_bytes(bytes(raw))
    bad = runner.invoke(app, ["verify", str(out), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == 1 and report["problems"][0].startswith("'meta/stats.json' is corrupt")
    plain = runner.invoke(app, ["verify", str(out)])
    assert plain.exit_code == 1
    assert plain.stdout.splitlines()[0].startswith("problem: 'meta/stats.json' is corrupt or modified")
    assert plain.stdout.splitlines()[-1].startswith("1 problem(s): ")


def test_publish_refuses_partial_and_busy_out(demos: Path, tmp_path: Path) -> None:
    partial = tmp_path / "demos.h5.partial"
    partial.write_bytes(demos.read_bytes())
    res = runner.invoke(
        app, ["publish", str(partial), "--repo-id", "me/demo", "--out", str(tmp_path / "o"), "--dry-run"]
    )
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: '{partial}' is an unfinished build (.partial)")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    res = runner.invoke(app, ["publish", str(demos), "--repo-id", "me/demo", "--out", str(busy), "--dry-run"])
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: output directory '{busy}' already exists and is not empty; pass --overwrite to replace its "
        "contents, or choose another --out\n"
    )


def test_verify_missing_folder_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["verify", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "is not a directory" in res.stderr
