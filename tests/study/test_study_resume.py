"""A study killed mid-way (SIGKILL) resumes with --resume and never recomputes a finished cell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from vlnav_data.cli.study import app

runner = CliRunner()
ARGS = ["--encoder", "oracle", "--encoder", "siglip-tiny-random", "--seeds", "2", "--num-episodes", "8",
        "--steps", "200", "--num-envs", "8", "--device", "cpu", "--no-probes"]  # fmt: skip


def finished_cells(out) -> dict:
    cells = out / "cells"
    if not cells.is_dir():
        return {}
    return {c.name: (c / "cell.json").stat().st_mtime_ns for c in cells.iterdir() if (c / "cell.json").is_file()}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_then_resume_recomputes_no_finished_cell(tiny_color_dataset, tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "vlnav_data.cli.study", "run", str(tiny_color_dataset), "--out", str(out), *ARGS]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 240
        while not finished_cells(out):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no cell finished in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = finished_cells(out)
    assert 1 <= len(done_at_kill) < 4, done_at_kill
    models = {name: (out / "cells" / name / "model" / "model.pt").stat().st_mtime_ns for name in done_at_kill}
    assert not (out / "result.json").exists()  # the report is written only at the end

    res = runner.invoke(app, ["run", str(tiny_color_dataset), "--out", str(out), *ARGS, "--resume"])
    assert res.exit_code == 0, res.output
    after = finished_cells(out)
    assert len(after) == 4
    for name, mtime in done_at_kill.items():
        assert after[name] == mtime, f"finished cell {name} was recomputed"
        assert (out / "cells" / name / "model" / "model.pt").stat().st_mtime_ns == models[name]
    assert res.output.count("kept (finished earlier)") == len(done_at_kill)
    assert f"({4 - len(done_at_kill)} computed, {len(done_at_kill)} kept)" in res.output
    result = json.loads((out / "result.json").read_text())
    assert result["progress"]["complete"] is True
    assert result["analysis"]["ranking"][0] == "oracle"
