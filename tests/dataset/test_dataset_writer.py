"""Writer + reader: layout, commit marker, resume, lock, atomic finalize."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from vlnav_data.dataset import (
    DatasetReader,
    DatasetWriter,
    EpisodeRecord,
    episode_seed,
    episode_split,
    lock_path,
    partial_path,
    shard_indices,
)
from vlnav_data.dataset.episode_record import stored_episode_record
from vlnav_data.dataset.merge import layout_from_reader
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError, MissingEpisodesError, SchemaError


def test_written_file_roundtrips_through_reader(tmp_path, toy_layout, toy_episode):
    out = tmp_path / "d.h5"
    eps = [toy_episode(0, 5), toy_episode(1, ["a", "b", "a"], split="valid"), toy_episode(2, ["b", "c", "c", "a"])]
    w = DatasetWriter(out, toy_layout())
    for ep in eps:
        w.append_episode(ep)
    assert not out.exists() and partial_path(out).exists() and lock_path(out).exists()
    w.finalize()
    assert out.exists() and not partial_path(out).exists() and not lock_path(out).exists()

    with DatasetReader(out) as r:
        assert r.demo_names == ("demo_0", "demo_1", "demo_2")
        assert r.split("train") == ["demo_0", "demo_2"] and r.split("valid") == ["demo_1"]
        assert r.encoders == ("tiny", "other")
        assert r.instructions == ["go to the red ball", "a", "b", "c"]
        assert r.build_config == {"seed": 1, "num_episodes": 3, "expert": "pursuit"}
        assert r.total_steps == 12
        e = r.episode("demo_2")
        np.testing.assert_array_equal(e["obs/rgb"], eps[2].rgb)
        np.testing.assert_array_equal(e["actions"], eps[2].actions)
        assert e["obs/tiny_joint"].dtype == np.float16
        np.testing.assert_allclose(e["obs/tiny_joint"], eps[2].joint_embeddings["tiny"], rtol=1e-3, atol=1e-3)
        assert e["instructions"] == ["b", "c", "c", "a"]
        np.testing.assert_array_equal(e["instruction_index"], [2, 3, 3, 1])
        np.testing.assert_allclose(e["timestamps"], np.arange(4) / 30.0)
        assert e["attrs"]["num_samples"] == 4 and e["attrs"]["seed"] == 102
        te = r.text_embeddings("tiny")
        assert te.shape == (4, 8) and te[3, 0] == hash("c") % 7
        s = r.stack(["actions", "obs/other_image"], split="train")
        assert s["actions"].shape == (9, 2) and s["obs/other_image"].shape == (9, 4)
        np.testing.assert_array_equal(s["episode_index"], [0] * 5 + [2] * 4)
        np.testing.assert_array_equal(s["step_index"], list(range(5)) + list(range(4)))
        with pytest.raises(SchemaError, match="no embeddings of encoder 'siglip'"):
            r.text_embeddings("siglip")
    with h5py.File(out) as f:
        assert list(f["data"].keys()) == ["demo_0", "demo_1", "demo_2"]
        assert f["data"].attrs["total"] == 12 and f["data"].attrs["num_demos"] == 3
        assert json.loads(f["data"].attrs["env_args"])["type"] == 2
        assert f["mask/train"].dtype.kind == "S"
        assert f["data/demo_0/obs/rgb"].chunks == (1, 6, 5, 3)
        assert f["data/demo_0/obs/rgb"].compression == "gzip"
        assert f.attrs["complete"]


def test_bad_episodes_are_refused_with_the_reason(tmp_path, toy_layout, toy_episode):
    w = DatasetWriter(tmp_path / "d.h5", toy_layout())
    ep = toy_episode(0, 4)
    with pytest.raises(SchemaError, match=r"rgb: expected \(4, 6, 5, 3\)"):
        w.append_episode(EpisodeRecord(**{**ep.__dict__, "rgb": np.zeros((4, 7, 5, 3), np.uint8)}))
    with pytest.raises(SchemaError, match=r"within \[-1, 1\]"):
        w.append_episode(EpisodeRecord(**{**ep.__dict__, "actions": np.full((4, 2), 1.5, np.float32)}))
    with pytest.raises(SchemaError, match="lacks the new instruction"):
        w.append_episode(EpisodeRecord(**{**ep.__dict__, "text_embeddings": {"tiny": {}, "other": {}}}))
    assert w.num_episodes == 0
    w.close()


def test_create_refuses_existing_outputs_and_overwrite_keeps_old_file_until_done(tmp_path, toy_layout, toy_episode):
    out = tmp_path / "d.h5"
    out.write_bytes(b"old")
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        DatasetWriter(out, toy_layout())
    assert not lock_path(out).exists()
    w = DatasetWriter(out, toy_layout(), mode="overwrite")
    w.append_episode(toy_episode(0, 3))
    assert out.read_bytes() == b"old"  # untouched until finalize
    w.finalize()
    with DatasetReader(out) as r:
        assert len(r) == 1
    with pytest.raises(ConfigError, match="already complete, so there is nothing to resume"):
        DatasetWriter(out, toy_layout(), mode="resume")


def test_resume_drops_uncommitted_demo_and_trims_instruction_table(tmp_path, toy_layout, toy_episode):
    out = tmp_path / "d.h5"
    w = DatasetWriter(out, toy_layout())
    w.append_episode(toy_episode(0, ["a"] * 3))
    w.append_episode(toy_episode(1, ["b"] * 3))
    w.close()
    # Simulate a crash inside append_episode: a new instruction row and a demo without num_samples.
    with h5py.File(partial_path(out), "r+") as f:
        f["meta/instructions"].resize((3,))
        f["meta/instructions"][2] = "zzz"
        g = f["data"].create_group("demo_2")
        g.create_dataset("actions", data=np.zeros((2, 2), np.float32))
    with pytest.raises(ConfigError, match="unfinished build exists"):
        DatasetWriter(out, toy_layout())
    w = DatasetWriter(out, toy_layout(), mode="resume")
    assert w.num_episodes == 2 and w.episode_indices == (0, 1) and w.instructions == ("a", "b")
    w.append_episode(toy_episode(2, ["c", "a"]))
    w.finalize()
    with DatasetReader(out) as r:
        assert r.demo_names == ("demo_0", "demo_1", "demo_2")
        assert r.instructions == ["a", "b", "c"]
        assert r.total_steps == 8


def test_resume_with_different_config_names_the_fields(tmp_path, toy_layout):
    out = tmp_path / "d.h5"
    DatasetWriter(out, toy_layout()).close()
    changed = toy_layout(build_config={"seed": 2, "num_episodes": 9, "expert": "pursuit"})
    with pytest.raises(ConfigError, match=r"seed \(file: 1, now: 2\)") as info:
        DatasetWriter(out, changed, mode="resume")
    assert "num_episodes" in str(info.value)
    w = DatasetWriter(out, changed, mode="resume", resume_ignore=["num_episodes", "seed"])
    w.close()
    with pytest.raises(ConfigError, match="layout"):
        DatasetWriter(out, toy_layout(image_width=9), mode="resume")


def test_lock_refuses_second_writer_and_stale_lock_is_taken_over(tmp_path, toy_layout):
    out = tmp_path / "d.h5"
    # A live process of this host holds the lock.
    code = (
        "import sys; from vlnav_data.dataset.lock import WriteLock; "
        f"lock = WriteLock({str(lock_path(out))!r}); lock.acquire(); print('held', flush=True); sys.stdin.read()"
    )  # holds the lock until killed
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(ConfigError, match=f"another process \\(pid {holder.pid} on"):
            DatasetWriter(out, toy_layout())
        assert not partial_path(out).exists() and not out.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        holder.stdin.close()
    # The holder was SIGKILLed: its lock file is left behind, and the next writer takes it over.
    assert lock_path(out).exists()
    w = DatasetWriter(out, toy_layout())
    assert lock_path(out).read_text().splitlines()[0] == str(os.getpid())
    w.close()
    assert not lock_path(out).exists()


def test_unwritable_directory_is_a_config_error(tmp_path, toy_layout):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot create the output directory"):
        DatasetWriter(blocker / "sub" / "d.h5", toy_layout())


def test_killed_writer_leaves_only_partial_with_committed_episodes(tmp_path):
    out = tmp_path / "d.h5"
    code = textwrap.dedent(
        f"""
        import os, signal
        from vlnav_data.dataset.synthetic import write_synthetic_dataset
        import vlnav_data.dataset.writer as W
        orig = W.DatasetWriter.append_episode
        def killer(self, ep):
            name = orig(self, ep)
            if self.num_episodes == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return name
        W.DatasetWriter.append_episode = killer
        write_synthetic_dataset({str(out)!r}, 5)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert not out.exists()
    with DatasetReader(partial_path(out), allow_incomplete=True) as r:
        assert len(r) == 3 and not r.complete
    with pytest.raises(SchemaError, match="incomplete"):
        DatasetReader(partial_path(out))


def test_kill_between_the_demo_flush_and_its_link_resumes_without_that_demo(tmp_path):
    # The demo is written and flushed in full, but killed before it is linked into /data: on resume it
    # does not exist, and appending again gives the same file as a build that was never killed.
    out = tmp_path / "d.h5"
    code = textwrap.dedent(
        f"""
        import os, signal
        import h5py
        from vlnav_data.dataset.synthetic import write_synthetic_dataset
        import vlnav_data.dataset.writer as W
        orig_flush = h5py.File.flush
        def flush(self):
            orig_flush(self)
            data = self["data"]
            if len(data) == 3 and data.attrs["num_demos"] == 3:
                flush.count = getattr(flush, "count", 0) + 1
                if flush.count == 2:  # the first flush of the 4th demo (the 1st was demo 3's second flush)
                    os.kill(os.getpid(), signal.SIGKILL)
        h5py.File.flush = flush
        write_synthetic_dataset({str(out)!r}, 6, {{"e": 4}}, image_size=(8, 8))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    with DatasetReader(partial_path(out), allow_incomplete=True) as r:
        assert len(r) == 3
    ref = write_synthetic_dataset(tmp_path / "ref.h5", 6, {"e": 4}, image_size=(8, 8))
    with DatasetReader(ref) as r:
        layout = layout_from_reader(r)
        tables = {enc: r.text_embeddings(enc) for enc in r.encoders}
        records = [stored_episode_record(r, n, tables) for n in r.demo_names]
    with DatasetWriter(out, layout, mode="resume") as w:
        assert w.num_episodes == 3
        assert w.instructions == tuple(dict.fromkeys(s for e in records[:3] for s in e.instructions))
        for rec in records[3:]:
            w.append_episode(rec)
        w.finalize()
    with DatasetReader(ref) as a, DatasetReader(out) as b:
        assert a.demo_names == b.demo_names
        for n in a.demo_names:
            for k in a.keys(n):
                np.testing.assert_array_equal(a.episode(n)[k], b.episode(n)[k], err_msg=k)


def test_writer_reopens_its_file_every_so_often_and_loses_nothing(tmp_path, monkeypatch):
    import vlnav_data.dataset.writer as W

    monkeypatch.setattr(W, "REOPEN_EVERY", 2)
    path = write_synthetic_dataset(tmp_path / "d.h5", 5, {"e": 4}, image_size=(8, 8))
    assert validate_dataset(path) == []
    with DatasetReader(path) as r:
        assert len(r) == 5 and [r.attrs(n)["episode_index"] for n in r.demo_names] == list(range(5))


def test_seeds_splits_and_shards_are_pure_functions():
    assert episode_seed(3, 7) == episode_seed(3, 7) != episode_seed(3, 8) != episode_seed(4, 7)
    assert 0 <= episode_seed(2**40, 10**9) < 2**63
    seeds = {episode_seed(0, i) for i in range(5000)}
    assert len(seeds) == 5000
    coin = [episode_split(0, i, 0.1, "coin") for i in range(5000)]
    assert 0.08 < coin.count("valid") / 5000 < 0.12
    assert coin[:50] == [episode_split(0, i, 0.1, "coin") for i in range(50)]
    parts = [shard_indices(10, i, 3) for i in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError):
        shard_indices(10, 3, 3)


def test_synthetic_dataset_is_deterministic_and_plausible(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a.h5", 4, {"e": 16}, seed=5)
    b = write_synthetic_dataset(tmp_path / "b.h5", 4, {"e": 16}, seed=5)
    with DatasetReader(a) as ra, DatasetReader(b) as rb:
        assert ra.split("valid") and ra.split("train")
        for n in ra.demo_names:
            ea, eb = ra.episode(n), rb.episode(n)
            for k in ra.keys(n):
                np.testing.assert_array_equal(ea[k], eb[k])
        s = ra.stack(["obs/e_joint", "actions"])
        norms = np.linalg.norm(s["obs/e_joint"].astype(np.float32), axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=2e-3)
        assert np.abs(s["actions"]).max() <= 1.0


def test_merged_shards_equal_the_unsharded_file(tmp_path):
    from vlnav_data.dataset.merge import merge_datasets
    from vlnav_data.dataset.validate import validate_dataset

    full = write_synthetic_dataset(tmp_path / "full.h5", 7, {"e": 8}, seed=3)
    shards = [write_synthetic_dataset(tmp_path / f"s{i}.h5", 7, {"e": 8}, seed=3, shard=(i, 3)) for i in range(3)]
    with DatasetReader(shards[1]) as r:
        assert [r.attrs(n)["episode_index"] for n in r.demo_names] == [1, 4]
    res = merge_datasets(list(reversed(shards)), tmp_path / "merged.h5")
    assert res.num_episodes == 7 and res.missing_episode_indices == ()
    assert validate_dataset(res.path) == []
    with DatasetReader(full) as a, DatasetReader(res.path) as b:
        assert a.demo_names == b.demo_names
        assert a.split("train") == b.split("train") and a.split("valid") == b.split("valid")
        assert a.build_config == b.build_config
        for n in a.demo_names:
            ea, eb = a.episode(n), b.episode(n)
            assert ea["instructions"] == eb["instructions"]
            for k in a.keys(n):
                if k != "instruction_index":
                    np.testing.assert_array_equal(ea[k], eb[k], err_msg=k)
            assert ea["attrs"] == eb["attrs"]
    with pytest.raises(ConfigError, match="shards must be disjoint"):
        merge_datasets([shards[0], full], tmp_path / "bad.h5")
    other = write_synthetic_dataset(tmp_path / "other.h5", 7, {"e": 8}, seed=4, shard=(0, 3))
    with pytest.raises(ConfigError, match=r"seed \(file: 3, now: 4\)"):
        merge_datasets([shards[1], other], tmp_path / "bad2.h5")
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "bad2.h5").exists()
    with pytest.raises(MissingEpisodesError, match=r"2 of 7 episodes .*: 2, 5 \(they belong to shard 2/3\)") as info:
        merge_datasets(shards[:2], tmp_path / "part.h5")
    assert info.value.missing == (2, 5) and not (tmp_path / "part.h5").exists()
    part = merge_datasets(shards[:2], tmp_path / "part.h5", allow_missing=True)
    assert part.missing_episode_indices == (2, 5) and part.num_episodes == 5


@pytest.mark.parametrize("fraction", [0.1, 0.25, 1 / 3, 0.05])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_stratified_split_holds_its_share_in_every_prefix(seed, fraction):
    splits = [episode_split(seed, i, fraction) for i in range(400)]
    valid_so_far = np.cumsum([s == "valid" for s in splits])
    n = np.arange(1, 401)
    assert np.all(valid_so_far >= np.floor(n * fraction)) and np.all(valid_so_far <= np.ceil(n * fraction))
    # A 12-episode build at the default fraction has a validation episode (the coin flip gave none, measured).
    assert "valid" in [episode_split(seed, i, 0.1) for i in range(12)]


def test_stratified_split_depends_on_the_seed_and_not_on_sharding():
    a = [episode_split(0, i, 0.1) for i in range(100)]
    b = [episode_split(1, i, 0.1) for i in range(100)]
    assert a != b
    sharded = {i: episode_split(0, i, 0.1) for k in range(3) for i in shard_indices(100, k, 3)}
    assert [sharded[i] for i in range(100)] == a
    with pytest.raises(ValueError, match="split rule"):
        episode_split(0, 0, 0.1, "random")
