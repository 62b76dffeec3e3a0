"""`vlnav-data preview`: writes a PNG and result.json; bad input is one `error:` line and exit code 2."""

from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.sim import get_preset, sample_episode_start

runner = CliRunner()


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_preview_writes_a_contact_sheet_and_result(tmp_path):
    out = tmp_path / "sheet" / "preview.png"
    res = runner.invoke(app, ["preview", "--preset", "text2nav", "--seed", "3", "--out", str(out), "--num-frames", "2"])
    assert res.exit_code == 0, res.output
    result = json.loads((out.parent / "preview.png.result.json").read_text())
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.png", "preview.png.result.json"]
    start = sample_episode_start(get_preset("text2nav"), 3)
    assert result["target_color"] == start.target_color
    assert result["frame_steps"][0] == 0 and len(result["frame_steps"]) == 2
    assert result["frame_steps"][-1] == result["num_steps"] - 1
    assert f"wrote {out}" in res.stdout
    with Image.open(out) as img:
        assert img.width > 500 and img.height > 300


def test_preview_unknown_preset_is_one_error_line(tmp_path):
    res = runner.invoke(app, ["preview", "--preset", "text2nva", "--out", str(tmp_path / "p.png")])
    assert _error(res) == (
        "error: unknown preset 'text2nva'; expected one of: text2nav, text2nav-mujoco, text2nav-random, "
        "text2nav-velocity. Did you mean 'text2nav'?"
    )


def test_preview_rejects_bad_frames_and_suffix(tmp_path):
    res = runner.invoke(app, ["preview", "--num-frames", "0", "--out", str(tmp_path / "p.png")])
    assert _error(res) == "error: num_frames must be an integer in [1, 24], got 0"
    res = runner.invoke(app, ["preview", "--out", str(tmp_path / "p.jpg")])
    assert _error(res) == f"error: out must be a .png path, got '{tmp_path / 'p.jpg'}'"
