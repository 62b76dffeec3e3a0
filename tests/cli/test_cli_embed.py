"""`vlnav-data embed`: refusals as one exact error line (exit 2); SIGKILL at any moment, then --resume."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.dataset import DatasetReader, lock_path, partial_path
from vlnav_data.dataset.sidecar import sidecar_path
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset

runner = CliRunner()
CLI = [sys.executable, "-c", "from vlnav_data.cli.data import main; main()"]


def _error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    # The synthetic state starts x_m, y_m, cos_yaw, sin_yaw, target_x_m, target_y_m: the oracle can embed it.
    return write_synthetic_dataset(tmp_path_factory.mktemp("embed-cli") / "good.h5", 6, {"enc": 8}, image_size=(8, 8))


def _copy(good, tmp_path, name="demos.h5"):
    path = tmp_path / name
    shutil.copy(good, path)
    return path


def test_embed_command_adds_the_oracle_and_prints_json(good, tmp_path):
    out = tmp_path / "with-oracle.h5"
    r = runner.invoke(app, ["embed", str(good), "--encoder", "oracle", "--out", str(out), "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["command"] == "embed" and payload["encoders"] == ["oracle"] and payload["new_episodes"] == 6
    assert json.loads((tmp_path / "with-oracle.h5.result.json").read_text()) == payload
    assert validate_dataset(out) == []
    with DatasetReader(out) as rd, DatasetReader(good) as src:
        assert rd.encoders == ("enc", "oracle")
        state = src.stack(["obs/privileged_state"])["obs/privileged_state"]
        from vlnav_data.encoders import make_encoder

        expected = make_encoder("oracle").encode_observations(None, state).astype(np.float16)
        np.testing.assert_array_equal(rd.stack(["obs/oracle_image"])["obs/oracle_image"], expected)


def test_refusals_are_one_exact_error_line(good, tmp_path):
    def embed(*args):
        return runner.invoke(app, ["embed", *map(str, args), "--device", "cpu", "--no-progress"])

    # An encoder the file already holds.
    holds = write_synthetic_dataset(tmp_path / "holds.h5", 3, {"oracle": 8}, image_size=(8, 8))
    assert _error_line(embed(holds, "--encoder", "oracle")) == (
        f"error: '{holds}' already holds encoder 'oracle'; pass --replace to compute it again, or choose another "
        "encoder"
    )
    # A state-only file (no frames): refused for every encoder, the oracle included.
    state_only = _copy(good, tmp_path, "state_only.h5")
    with h5py.File(state_only, "r+") as f:
        for name in f["data"]:
            del f["data"][name]["obs/rgb"]
    before = _sha(state_only)
    assert _error_line(embed(state_only, "--encoder", "oracle")) == (
        f"error: '{state_only}' is a state-only file (6 of 6 demos have no obs/rgb, e.g. demo_0); embed computes "
        "embeddings from the stored frames and writes only valid vlnav-demos files, which hold frames, so not "
        "even the oracle can be added: build the dataset with frames (`vlnav-data build`)"
    )
    assert _sha(state_only) == before
    # A file that fails validation.
    invalid = _copy(good, tmp_path, "invalid.h5")
    with h5py.File(invalid, "r+") as f:
        true_total = int(f["data"].attrs["total"])
        f["data"].attrs["total"] = np.int64(true_total + 1)
    assert _error_line(embed(invalid, "--encoder", "oracle")) == (
        f"error: '{invalid}' fails validation (1 violation(s), the first: [total] /data: attribute total = "
        f"{true_total + 1}, but the demos hold {true_total} samples); embed adds encoders only to valid files: run "
        f"`vlnav-data validate {invalid}` for the full list"
    )
    # An unfinished build.
    unfinished = _copy(good, tmp_path, "unfinished.h5.partial")
    assert _error_line(embed(unfinished, "--encoder", "oracle")) == (
        f"error: '{unfinished}' is an unfinished build (a .partial file); finish it with `vlnav-data build "
        "--resume`, then embed the complete file"
    )
    incomplete = _copy(good, tmp_path, "incomplete.h5")
    with h5py.File(incomplete, "r+") as f:
        f.attrs["complete"] = False
    assert _error_line(embed(incomplete, "--encoder", "oracle")) == (
        f"error: '{incomplete}' is incomplete (complete != True): its build did not finish; resume it with "
        "`vlnav-data build --resume`, then embed the complete file"
    )
    missing = tmp_path / "nowhere" / "missing.h5"
    assert _error_line(embed(missing, "--encoder", "oracle")) == (
        f"error: no such dataset file: '{missing}'; check the path (build one with `vlnav-data build`)"
    )
    assert not missing.parent.exists()
    # Outputs and flags.
    taken = tmp_path / "taken.h5"
    taken.write_bytes(b"keep")
    assert _error_line(embed(good, "--encoder", "oracle", "--out", taken)) == (
        f"error: --out '{taken}' already exists; pass --overwrite to replace it, or choose another --out"
    )
    assert taken.read_bytes() == b"keep"
    assert _error_line(embed(good)) == "error: at least one --encoder is required (e.g. --encoder siglip)"
    assert _error_line(embed(good, "--encoder", "oracle", "--resume", "--overwrite")) == (
        "error: --resume and --overwrite exclude each other; pass one"
    )
    assert "unknown encoder 'siglp'" in _error_line(embed(good, "--encoder", "siglp", "--out", tmp_path / "x.h5"))
    assert not (tmp_path / "x.h5").exists() and not lock_path(tmp_path / "x.h5").exists()


def test_ray_flags_are_checked_before_any_work(good, tmp_path):
    out = tmp_path / "o.h5"

    def embed(*args):
        return runner.invoke(app, ["embed", str(good), "--encoder", "oracle", "--out", str(out), *map(str, args)])

    assert _error_line(embed("--gpus-per-task", "1")) == (
        "error: --gpus-per-task applies to --ray; add --ray auto|local|HOST:PORT, or drop it"
    )
    assert _error_line(embed("--ray", "local", "--device", "cuda")) == (
        "error: --device cuda with --ray needs --gpus-per-task > 0 (Ray gives a task no GPU otherwise)"
    )
    assert _error_line(embed("--ray", "local", "--episodes-per-task", "0")) == (
        "error: --episodes-per-task must be a positive integer, got 0"
    )
    assert _error_line(embed("--ray", "local", "--cpus-per-task", "0")) == "error: --cpus-per-task must be > 0, got 0.0"
    assert not out.exists() and not lock_path(out).exists()


SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from vlnav_data.collect.embed import embed_dataset
    from vlnav_data.collect.embed.config import EmbedConfig

    path, stage, after = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def hook(p):
        if p.stage == stage and p.done >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    embed_dataset(EmbedConfig(file=path, encoders=("oracle",), device="cpu", resume=True), progress=hook)
    """
)


def _committed(side) -> dict[str, bytes]:
    if not side.exists():  # killed before the sidecar was created
        return {}
    with h5py.File(side, "r") as f:
        return {n: g["obs/oracle_joint"][()].tobytes() for n, g in f["data"].items() if "num_samples" in g.attrs}


def test_sigkill_at_each_stage_then_resume_equals_an_uninterrupted_run(good, tmp_path):
    ref = tmp_path / "ref.h5"
    r = runner.invoke(app, ["embed", str(good), "--encoder", "oracle", "--out", str(ref), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    path = _copy(good, tmp_path)  # in place: the input is also the output
    original = _sha(path)
    side = sidecar_path(path)
    script = tmp_path / "kill.py"
    script.write_text(SCRIPT)
    seen: dict[str, bytes] = {}
    for stage, after, committed in (("embed", 2, 2), ("embed", 5, 5), ("copy", 3, 6)):
        proc = subprocess.run([sys.executable, str(script), str(path), stage, str(after)], capture_output=True)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
        assert _sha(path) == original, "a killed embed changed its input"
        assert validate_dataset(path) == []
        now = _committed(side)
        assert sorted(now) == [f"demo_{i}" for i in range(committed)]
        assert all(now[k] == v for k, v in seen.items()), "a finished episode was recomputed or lost"
        seen = now
    assert partial_path(path).exists()  # killed while copying
    r = runner.invoke(app, ["embed", str(path), "--encoder", "oracle", "--resume", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert (payload["resumed_episodes"], payload["new_episodes"]) == (6, 0)
    assert not side.exists() and not partial_path(path).exists() and not lock_path(path).exists()
    assert validate_dataset(path) == []
    with DatasetReader(path) as a, DatasetReader(ref) as b:
        assert a.encoders == b.encoders == ("enc", "oracle")
        for key in ("obs/oracle_image", "obs/oracle_joint", "obs/rgb", "actions"):
            np.testing.assert_array_equal(a.stack([key])[key], b.stack([key])[key])
        np.testing.assert_array_equal(a.text_embeddings("oracle"), b.text_embeddings("oracle"))


def _writing(side, since_ns: int) -> bool:
    """The run started after ``since_ns`` has opened (created or resumed) the sidecar: it is embedding."""
    try:
        return side.stat().st_mtime_ns > since_ns
    except FileNotFoundError:
        return False


@pytest.mark.slow  # ~15 s on a quiet 2-core machine; the fixed-stage test above runs in the fast suite
def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path):
    big = write_synthetic_dataset(tmp_path / "big.h5", 100, {"enc": 8}, image_size=(8, 8), max_steps=60)
    ref = tmp_path / "ref.h5"
    r = runner.invoke(app, ["embed", str(big), "--encoder", "oracle", "--out", str(ref), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    original = _sha(big)
    side = sidecar_path(big)
    args = [*CLI, "embed", str(big), "--encoder", "oracle", "--resume", "--device", "cpu", "--no-progress"]
    rng = random.Random(7)
    seen: dict[str, bytes] = {}
    for _ in range(3):
        started_ns = time.time_ns()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not _writing(side, started_ns) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.8))  # the 100 episodes take a few seconds on a loaded 2-core machine
        if proc.poll() is not None:  # finished before the kill on a fast machine: nothing left to test
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        if _sha(big) != original:  # the kill came after the atomic rename: FILE is the finished result
            with DatasetReader(big) as finished:
                assert "oracle" in finished.encoders
            break
        now = _committed(side)
        assert sorted(now, key=lambda n: int(n[5:])) == [f"demo_{i}" for i in range(len(now))]
        assert all(now[k] == v for k, v in seen.items()), "a finished episode was recomputed or lost"
        seen = now
    if _sha(big) == original:
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert validate_dataset(big) == []
    with DatasetReader(big) as a, DatasetReader(ref) as b:
        key = "obs/oracle_joint"
        np.testing.assert_array_equal(a.stack([key])[key], b.stack([key])[key])
