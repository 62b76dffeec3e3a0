"""The rough edges a new user hit (issue 23), each with the message it now gives."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from vlnav_data.cli import data, expert, probe
from vlnav_data.dataset.synthetic import write_synthetic_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    return write_synthetic_dataset(
        tmp_path_factory.mktemp("edges") / "ds.h5", num_episodes=6, encoders={"oracle": 1152}
    )


def test_info_reports_a_file_with_a_deleted_episode_as_damaged(ds, tmp_path):
    damaged = tmp_path / "damaged.h5"
    shutil.copy(ds, damaged)
    with h5py.File(damaged, "r+") as f:
        del f["data"]["demo_2"]
    res = runner.invoke(data.app, ["info", str(damaged)])
    assert res.exit_code == 1, res.output
    assert f"{damaged}(DAMAGED,format1.0.0)" in re.sub(r"\s+", "", res.stdout)
    assert "complete," not in res.stdout
    with h5py.File(ds) as f:
        held = sum(int(f["data"][n].attrs["num_samples"]) for n in f["data"] if n != "demo_2")
        total = int(f["data"].attrs["total"])
        split = "train" if b"demo_2" in f["mask"]["train"][()] else "valid"
    assert res.stderr.splitlines() == [
        f"{damaged} is damaged: /data records 6 demos but holds 5; /data records {total} samples but its demos "
        f"hold {held}; /mask/{split} names demos that do not exist: demo_2; run `vlnav-data validate {damaged}` "
        "for every violation"
    ]
    res = runner.invoke(data.app, ["info", str(ds)])
    assert res.exit_code == 0 and f"{ds}(complete,format1.0.0)" in re.sub(r"\s+", "", res.stdout)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_overwrite_leaves_previous_and_the_next_run_says_what_to_do(ds, tmp_path):
    out = tmp_path / "probe"
    out.mkdir()
    (out / "result.json").write_text('{"old": true}\n')
    previous = tmp_path / "probe.previous"
    cmd = [
        sys.executable,
        "-c",
        "from vlnav_data.cli.probe import main; main()",
        "linear",
        str(ds),
        "--out",
        str(out),
        "--overwrite",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not previous.exists():  # the file the command itself creates is the signal
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (previous / "result.json").read_text() == '{"old": true}\n'
    out.mkdir(exist_ok=True)  # the killed run may or may not have created it yet: make it the empty case
    expected = (
        f"error: '{previous}' holds the old contents of '{out}', moved aside by an --overwrite run that was killed "
        f"before it finished, so '{out}' is missing or incomplete; to keep the old output delete '{out}' (if "
        f"present) and rename '{previous}' to '{out}', otherwise delete '{previous}'; then run again"
    )
    for extra in ([], ["--overwrite"]):
        res = runner.invoke(probe.app, ["linear", str(ds), "--out", str(out), *extra])
        assert res.exit_code == 2 and res.stderr.splitlines() == [expected], res.output
        assert (previous / "result.json").is_file() and not any(out.iterdir())


@pytest.mark.parametrize(
    ("app", "args", "option", "default"),
    [
        (data.app, ["embed", "--help"], "--encoder-batch-size", "[default: the encoder's; built-ins: 8 on CPU, 256"),
        (data.app, ["export", "--help"], "--encoder", "[default: every encoder of FILE]"),
        (data.app, ["publish", "--help"], "--encoder", "[default: every encoder of FILE]"),
        (expert.app, ["train", "--help"], "--stop-at-success-rate", "[default: off, train all steps]"),
    ],
)
def test_help_states_the_default(app, args, option, default):
    res = runner.invoke(app, args)
    assert res.exit_code == 0
    text = re.sub(r"[\s│]+", " ", res.stdout)  # rich wraps the help column
    block = re.search(rf"{re.escape(option)} (?!-).*?(?= --[a-z])", text).group(0)
    assert default in block, block


def test_unknown_target_names_the_target_option(ds, tmp_path):
    res = runner.invoke(probe.app, ["linear", str(ds), "--out", str(tmp_path / "p"), "--target", "bearings"])
    assert res.exit_code == 2
    assert res.stderr == (
        "error: --target must be one of action, bearing, distance, colour, spatial_word, state, task, progress "
        "(repeat it for several), got bearings\n"
    )


HOLDER = """
import sys
from vlnav_data.dataset.lock import WriteLock
lock = WriteLock(sys.argv[2] + ".lock")
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the holder's command line from /proc")
def test_a_second_embed_is_told_which_command_holds_the_lock(ds, tmp_path):
    target = tmp_path / "demos.h5"
    shutil.copy(ds, target)
    script = tmp_path / "vlnav-data"  # argv as the console script gives it: vlnav-data embed FILE ...
    script.write_text(HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), "embed", str(target), "--encoder", "oracle"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        before = sorted(os.listdir(tmp_path))
        res = runner.invoke(data.app, ["embed", str(target), "--encoder", "oracle", "--replace"])
        assert res.exit_code == 2, res.output
        host = re.search(r" on (\S+), running", res.stderr).group(1)
        assert res.stderr == (
            f"error: another process (pid {holder.pid} on {host}, running `vlnav-data embed {target} --encoder "
            f"oracle`) is writing '{target}' (lock file '{target}.lock'); wait for it to finish or choose another "
            "--out\n"
        )
        assert sorted(os.listdir(tmp_path)) == before
    finally:
        holder.communicate("\n", timeout=30)
