"""`vlnav-data build|validate|info|card|merge`: exit codes, error lines, crash safety under SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.dataset import DatasetReader, lock_path, partial_path
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset

runner = CliRunner()
CHEAP = [
    "--encoder", "oracle", "--expert", "pursuit", "--image-size-px", "32", "--max-episode-steps", "20",
    "--num-envs", "2", "--device", "cpu", "--seed", "3", "--no-progress",
]  # fmt: skip
CLI = [sys.executable, "-c", "from vlnav_data.cli.data import main; main()"]


def _error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("cli") / "good.h5", 4, {"enc": 8}, image_size=(16, 16))


def test_build_validate_info_card_roundtrip(tmp_path):
    out = tmp_path / "d" / "demo.h5"
    r = runner.invoke(app, ["build", "--out", str(out), "--num-episodes", "2", *CHEAP])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout and out.exists() and not partial_path(out).exists()
    payload = json.loads((out.parent / "demo.h5.result.json").read_text())
    assert payload["num_episodes"] == 2 and payload["command"] == "build"
    r = runner.invoke(app, ["validate", str(out)])
    assert r.exit_code == 0 and "valid vlnav-demos file" in r.stdout
    r = runner.invoke(app, ["info", str(out), "--json"])
    info = json.loads(r.stdout)
    assert info["num_episodes"] == 2 and info["encoders"] == {"oracle": 1152}
    r = runner.invoke(app, ["info", str(out)])
    assert r.exit_code == 0 and "success rate" in r.stdout and "oracle (1152-d)" in r.stdout
    card = tmp_path / "card" / "README.md"
    r = runner.invoke(app, ["card", str(out), "--out", str(card)])
    assert r.exit_code == 0, r.output
    text = card.read_text()
    assert text.startswith("---\nlicense: apache-2.0") and (card.parent / "sample_frames.png").exists()
    assert "vlnav-data build --out demo.h5" in text
    # The stored command rebuilds the file.
    with DatasetReader(out) as rd:
        assert "--encoder oracle" in rd.rebuild_command and "--num-episodes 2" in rd.rebuild_command


def test_bad_build_inputs_are_one_error_line_and_exit_2(tmp_path):
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"precious")
    line = _error_line(runner.invoke(app, ["build", "--out", str(existing), *CHEAP]))
    assert "already exists; pass --overwrite" in line and existing.read_bytes() == b"precious"

    out = tmp_path / "new.h5"
    line = _error_line(runner.invoke(app, ["build", "--out", str(out), *CHEAP, "--encoder", "sigclip"]))
    assert "unknown encoder 'sigclip'" in line
    line = _error_line(runner.invoke(app, ["build", "--out", str(out), "--preset", "txt2nav", *CHEAP]))
    assert "unknown preset 'txt2nav'" in line and "Did you mean 'text2nav'" in line
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    line = _error_line(runner.invoke(app, ["build", "--out", str(blocker / "sub" / "d.h5"), *CHEAP]))
    assert (
        line
        == f"error: --out '{blocker / 'sub' / 'd.h5'}' lies under '{blocker}', which is a file; choose another --out"
    )
    line = _error_line(runner.invoke(app, ["build", *CHEAP]))
    assert "--out is required" in line
    line = _error_line(runner.invoke(app, ["build", "--out", str(out), "--shard", "3/2", *CHEAP]))
    assert "shard" in line
    assert not out.exists() and not partial_path(out).exists() and not lock_path(out).exists()


def test_validate_exit_codes(good, tmp_path):
    r = runner.invoke(app, ["validate", str(good)])
    assert r.exit_code == 0
    broken = tmp_path / "broken.h5"
    broken.write_bytes(good.read_bytes())
    with h5py.File(broken, "r+") as f:
        f["data"].attrs["total"] = 3
        del f["mask/valid"]
    r = runner.invoke(app, ["validate", str(broken)])
    assert r.exit_code == 1 and "2 violation(s)" in r.stdout and "[total]" in r.stdout and "[masks]" in r.stdout
    r = runner.invoke(app, ["validate", str(broken), "--json"])
    assert r.exit_code == 1 and len(json.loads(r.stdout)["violations"]) == 2

    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(good.read_bytes()[:5000])
    assert "cannot be opened as HDF5" in _error_line(runner.invoke(app, ["validate", str(trunc)]))
    junk = tmp_path / "junk.h5"
    junk.write_text("not an hdf5 file")
    assert "cannot be opened as HDF5" in _error_line(runner.invoke(app, ["validate", str(junk)]))
    newer = tmp_path / "newer.h5"
    newer.write_bytes(good.read_bytes())
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = "2.1.0"
    assert "upgrade vlnav-data" in _error_line(runner.invoke(app, ["validate", str(newer)]))
    assert "newer than" in _error_line(runner.invoke(app, ["info", str(newer)]))
    assert "no such" in _error_line(runner.invoke(app, ["validate", str(tmp_path / "none.h5")]))


def test_merge_command(tmp_path):
    shards = [
        write_synthetic_dataset(tmp_path / f"s{i}.h5", 5, {"e": 4}, image_size=(8, 8), shard=(i, 2)) for i in range(2)
    ]
    out = tmp_path / "m.h5"
    r = runner.invoke(app, ["merge", str(out), *map(str, shards)])
    assert r.exit_code == 0, r.output
    assert validate_dataset(out) == []
    with DatasetReader(out) as rd:
        assert [rd.attrs(n)["episode_index"] for n in rd.demo_names] == [0, 1, 2, 3, 4]
    line = _error_line(runner.invoke(app, ["merge", str(out), *map(str, shards)]))
    assert "already exists" in line


def test_merge_refused_by_a_held_lock_names_its_positional_out(tmp_path):
    """merge's output is the positional OUT: the lock refusal says so, not --out, and writes nothing."""
    shards = [
        write_synthetic_dataset(tmp_path / f"s{i}.h5", 4, {"e": 4}, image_size=(8, 8), shard=(i, 2)) for i in range(2)
    ]
    out = tmp_path / "m.h5"
    lock_path(out).write_text("4242\nnode-lost-7\n123456\n")  # a holder on a host this one cannot check
    r = runner.invoke(app, ["merge", str(out), *map(str, shards)])
    assert r.exit_code == 2
    assert _error_line(r) == (
        f"error: '{out}' is locked by pid 4242 on node-lost-7 (lock file '{lock_path(out)}'), which this host "
        "cannot check; if that process is gone (killed or its node lost), pass --break-lock to take the lock "
        "over, otherwise wait for it or choose another OUT"
    )
    assert not out.exists() and not partial_path(out).exists()


def test_merge_with_a_missing_shard_exits_1_naming_the_episodes(tmp_path):
    shards = [
        write_synthetic_dataset(tmp_path / f"s{i}.h5", 7, {"e": 4}, image_size=(8, 8), shard=(i, 3)) for i in range(3)
    ]
    out = tmp_path / "m.h5"
    r = runner.invoke(app, ["merge", str(out), str(shards[0]), str(shards[2])])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip() == (
        "error: 2 of 7 episodes of the build are in no input: 1, 4 (they belong to shard 1/3); pass every shard "
        "file of the build, or --allow-missing to merge the others"
    )
    assert not out.exists() and not partial_path(out).exists()
    r = runner.invoke(app, ["merge", str(out), str(shards[0]), str(shards[2]), "--allow-missing"])
    assert r.exit_code == 0, r.output
    assert "2 of 7 episodes missing (--allow-missing): [1, 4]" in r.stdout
    payload = json.loads((out.parent / f"{out.name}.result.json").read_text())
    assert payload["missing_episode_indices"] == [1, 4] and payload["num_episodes"] == 5
    assert payload["raw_datasets"] == 5 * 9 and payload["recoded_datasets"] == 5  # instruction_index remapped
    with DatasetReader(out) as rd:
        assert [rd.attrs(n)["episode_index"] for n in rd.demo_names] == [0, 2, 3, 5, 6]


def test_ray_flags_are_checked_before_anything_runs(tmp_path):
    out = str(tmp_path / "d.h5")
    line = _error_line(runner.invoke(app, ["build", "--out", out, "--num-shards", "2", *CHEAP]))
    assert "--num-shards applies to --ray builds; add --ray auto|local|HOST:PORT" in line
    line = _error_line(runner.invoke(app, ["build", "--out", out, "--ray", "local", "--shard", "0/2", *CHEAP]))
    assert "--shard i/n builds one shard by hand; with --ray give --num-shards instead" in line
    line = _error_line(
        runner.invoke(app, ["build", "--out", out, "--ray", "local", "--num-shards", "2", *CHEAP, "--device", "cuda:1"])
    )
    assert "--device cuda:1 names one GPU, but Ray assigns each shard its GPUs" in line
    line = _error_line(runner.invoke(app, ["build", "--out", out, "--ray", "local", "--cpus-per-shard", "0", *CHEAP]))
    assert "cpus_per_task must be > 0" in line
    assert not list(tmp_path.iterdir())


def _committed(path) -> dict[int, bytes]:
    """Episode index -> bytes of its actions + frames, for every committed demo of a (partial) file."""
    with DatasetReader(path, allow_incomplete=True) as r:
        out = {}
        for n in r.demo_names:
            g = r.file["data"][n]
            out[int(g.attrs["episode_index"])] = g["actions"][()].tobytes() + g["obs/rgb"][()].tobytes()
        return out


def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path):
    out = tmp_path / "crash.h5"
    part = partial_path(out)
    # Aim at far more episodes than the kills leave time for, so no run can finish before its kill;
    # the last run shrinks the target (allowed on resume: episodes are a function of their index).
    args = [*CLI, "build", "--out", str(out), "--num-episodes", "400", "--resume", *CHEAP]
    rng = random.Random(1234)
    seen: dict[int, bytes] = {}
    kills = 0
    lock_checked = False
    while kills < 5:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not part.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the build ended before it could be killed: {proc.stderr.read().decode()}"
        if not lock_checked:  # a second build into the same path while this one runs
            lock_checked = True
            r = runner.invoke(app, ["build", "--out", str(out), "--num-episodes", "400", "--resume", *CHEAP])
            assert f"another process (pid {proc.pid}" in _error_line(r)
        time.sleep(rng.uniform(0.0, 2.5))
        assert proc.poll() is None, "the build finished before the kill; give it more episodes"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        kills += 1
        assert not out.exists(), "a killed build left a file at the final path"
        now = _committed(part)
        assert sorted(now) == list(range(len(now))), "committed demos must be the first episodes, in order"
        for idx, blob in seen.items():
            assert now.get(idx) == blob, f"episode {idx}, finished before a kill, was lost or changed"
        seen = now
    n = len(seen) + 3
    finish = [a if a != "400" else str(n) for a in args]
    done = subprocess.run(finish, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.exists() and not part.exists() and not lock_path(out).exists()
    assert validate_dataset(out) == []
    final = _committed(out)
    assert sorted(final) == list(range(n))
    with DatasetReader(out) as r:
        assert [r.attrs(name)["episode_index"] for name in r.demo_names] == list(range(n))
    for idx, blob in seen.items():
        assert final[idx] == blob
    # Identical to an uninterrupted build of the same config.
    ref = tmp_path / "ref.h5"
    r = runner.invoke(app, ["build", "--out", str(ref), "--num-episodes", str(n), *CHEAP])
    assert r.exit_code == 0, r.output
    ref_eps = _committed(ref)
    assert ref_eps == final
    with DatasetReader(ref) as a, DatasetReader(out) as b:
        assert a.split("valid") == b.split("valid")
        np.testing.assert_array_equal(
            a.stack(["obs/oracle_joint"])["obs/oracle_joint"], b.stack(["obs/oracle_joint"])["obs/oracle_joint"]
        )


def test_progress_bar_shows_shards_and_nodes(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # rich fits the bar to the terminal; the captured one is narrow
    from vlnav_data.cli.datasets import _build_with_progress
    from vlnav_data.collect import BuildConfig
    from vlnav_data.collect.sharded_progress import ShardedProgress, ShardState

    def fake_build(cfg, progress):
        state = ShardState(
            shard_index=0, state="running", attempt=2, node="n/ab", pid=7, episodes_done=3, episodes_total=5
        )
        progress(
            ShardedProgress(
                episodes_done=8,
                episodes_total=10,
                frames_done=400,
                elapsed_s=2.0,
                frames_per_s=200.0,
                eta_s=0.5,
                shards_total=2,
                shards_done=1,
                shards_running=1,
                frames_per_node={"n/ab": 150, "n/cd": 250},
                shards=(state,),
            )
        )
        return "done"

    cfg = BuildConfig(out="x.h5", encoders=("oracle",), expert="pursuit", device="cpu")
    assert _build_with_progress(cfg, fake_build) == "done"
    err = " ".join(capsys.readouterr().err.split())
    assert "8/10" in err and "200.0 frames/s" in err
    assert "shards 1/2 done, 1 running | frames per node: n/ab 150, n/cd 250" in err
