"""Two attempts of one study cell at once (a Ray retry while the first still runs), one killed: the
survivor's result stands and no attempt deletes another's files (issue 23)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from vlnav_data.study.cells import ATTEMPTS_DIR, run_cell
from vlnav_data.study.config import Cell, StudyConfig

# Runs one probe cell; after the real work, and before the attempt is renamed into place, it marks its
# attempt with its pid, says where it is on stdout and waits for a line on stdin (no sleeps).
ATTEMPT = """
import json, os, sys
from pathlib import Path
from vlnav_data.study import cells
from vlnav_data.study.config import Cell, StudyConfig

dataset, out = sys.argv[1], sys.argv[2]
real = cells._run_probe

def gated(config, cell, directory, device):
    summary = real(config, cell, directory, device)
    (Path(directory) / "attempt_pid.txt").write_text(str(os.getpid()))
    print(json.dumps({"attempt": str(directory)}), flush=True)
    sys.stdin.readline()
    return summary

cells._run_probe = gated
config = StudyConfig(datasets=(dataset,), out_dir=out, encoders=("oracle",), knn_k=4, device="cpu")
cell = Cell(kind="probe", dataset=Path(dataset).stem, encoder="oracle", features="joint")
print(json.dumps({"done": str(cells.run_cell(config, cell))}), flush=True)
"""


def _start(dataset, out):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", ATTEMPT, str(dataset), str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _line(proc) -> dict:
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return json.loads(line)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("killed", ["first", "second"])
def test_concurrent_attempts_one_killed_the_survivor_stands(tiny_color_dataset, tmp_path, killed):
    out = tmp_path / "study"
    first = _start(tiny_color_dataset, out)
    second = None
    try:
        first_dir = _line(first)["attempt"]  # the first attempt's work is done, not yet renamed
        second = _start(tiny_color_dataset, out)  # a retry starts while the first still runs
        second_dir = _line(second)["attempt"]
        assert first_dir != second_dir
        # The retry started while the first attempt ran: it did not touch the first attempt's files.
        assert sorted(os.listdir(first_dir)) == sorted(os.listdir(second_dir))
        assert "probe_scores.json" in os.listdir(first_dir)
        victim, survivor = (first, second) if killed == "first" else (second, first)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
        survivor_out, survivor_err = survivor.communicate("\n", timeout=300)
        assert survivor.returncode == 0, survivor_err
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    cell_dir = out / "cells" / "probe__tiny_color__oracle__joint"
    assert json.loads(survivor_out.splitlines()[-1]) == {"done": str(cell_dir)}
    assert (cell_dir / "attempt_pid.txt").read_text() == str(survivor.pid)
    marker = json.loads((cell_dir / "cell.json").read_text())
    assert marker["cell"]["id"] == cell_dir.name
    scores = json.loads((cell_dir / "probe_scores.json").read_text())
    assert marker["summary"]["knn_r2"] == scores["knn"]["r2"]
    # The killed attempt's files are still there (nobody could prove it gone while it ran) ...
    killed_dir = first_dir if killed == "first" else second_dir
    assert os.path.isdir(killed_dir)
    # ... until the next run of the cell, which keeps the finished cell and clears the dead attempt.
    mtime = (cell_dir / "cell.json").stat().st_mtime_ns
    config = StudyConfig(datasets=(str(tiny_color_dataset),), out_dir=out, encoders=("oracle",), knn_k=4, device="cpu")
    assert run_cell(config, Cell(kind="probe", dataset="tiny_color", encoder="oracle", features="joint")) == cell_dir
    assert (cell_dir / "cell.json").stat().st_mtime_ns == mtime
    assert os.listdir(out / "cells" / ATTEMPTS_DIR) == []


def test_a_failed_attempt_removes_only_its_own_directory(tiny_color_dataset, tmp_path, monkeypatch):
    from vlnav_data.study import cells

    out = tmp_path / "study"
    other = out / "cells" / ATTEMPTS_DIR / "probe__tiny_color__oracle__joint.node-b.77.abcd"
    other.mkdir(parents=True)
    (other / "probe_scores.json").write_text("{}")
    # An attempt on another host that this one cannot judge: its lock names that host.
    other.with_name(other.name + ".lock").write_text("77\nnode-b\n123\n")

    def boom(*_a, **_k):
        raise RuntimeError("probe failed")

    monkeypatch.setattr(cells, "_run_probe", boom)
    config = StudyConfig(datasets=(str(tiny_color_dataset),), out_dir=out, encoders=("oracle",), knn_k=4, device="cpu")
    with pytest.raises(RuntimeError, match="probe failed"):
        run_cell(config, Cell(kind="probe", dataset="tiny_color", encoder="oracle", features="joint"))
    assert sorted(p.name for p in (out / "cells" / ATTEMPTS_DIR).iterdir()) == [other.name, other.name + ".lock"]
    assert (other / "probe_scores.json").read_text() == "{}"
    assert not (out / "cells" / "probe__tiny_color__oracle__joint").exists()


STUDY_HOLDER = """
import sys
from vlnav_data.study.run import _study_lock
lock = _study_lock(sys.argv[2])
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the holder's command line from /proc")
def test_a_second_study_driver_is_refused_by_the_lock_module(tmp_path):
    """The study lock is the dataset lock (a lock file, not flock): a second driver is told who holds it."""
    from vlnav_data.dataset.lock import LockHeldError
    from vlnav_data.study.run import _study_lock

    out = tmp_path / "study"
    out.mkdir()
    script = tmp_path / "vlnav-study"
    script.write_text(STUDY_HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), "run", str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert (out / "study.lock").read_text().splitlines()[0] == str(holder.pid)
        with pytest.raises(LockHeldError) as info:
            _study_lock(out).acquire()
        assert str(info.value) == (
            f"another process (pid {holder.pid} on {info.value.holder.host}, running `vlnav-study run {out}`) is "
            f"writing the study in '{out}' (lock file '{out / 'study.lock'}'); wait for it to finish or stop it "
            "before resuming"
        )
    finally:
        holder.communicate("\n", timeout=30)
    with _study_lock(out):  # released by its holder: free again
        pass
    assert not (out / "study.lock").exists()
