"""Sharded builds on the in-process executor: same arrays as one build, resume skips complete shards.

The Ray executor runs exactly this code with Ray tasks (tests/collect/test_collect_ray*.py); here the
shard bookkeeping is checked cheaply. Oracle encoder, pursuit expert, 32 px.
"""

from __future__ import annotations

import dataclasses

import pytest

from vlnav_data.collect import build_dataset, load_build_toml
from vlnav_data.collect.executors import ExecutorConfig, LocalExecutor, TaskContext
from vlnav_data.collect.sharded import BUILD_ID_NAME, ShardTask, _build_shard, build_sharded, shard_path, shards_dir
from vlnav_data.dataset import DatasetReader, partial_path
from vlnav_data.errors import ConfigError

BASE = dict(num_episodes=6, seed=11)  # over the shared small build (small_build, tests/conftest.py)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_build):
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    return build_dataset(small_build(path, **BASE)).path


def test_sharded_build_equals_the_single_process_build(
    reference, tmp_path, small_build, dataset_arrays, assert_same_arrays
):
    events = []
    cfg = small_build(tmp_path / "d.h5", num_shards=3, **BASE)
    res = build_sharded(cfg, progress=events.append)
    assert_same_arrays(dataset_arrays(reference), dataset_arrays(res.path))
    assert not shards_dir(res.path).exists()  # removed after a valid merge
    assert [o.shard_index for o in res.shards] == [0, 1, 2]
    assert [o.num_episodes for o in res.shards] == [2, 2, 2] and all(o.attempts == 1 for o in res.shards)
    assert res.new_episodes == 6 and res.resumed_episodes == 0 and res.merge_raw_datasets == 6 * 9
    with DatasetReader(res.path) as r:
        assert r.build_config["num_shards"] == 1 and r.build_config["out"] == cfg.out
        assert "--shard" not in r.rebuild_command
    last = events[-1]
    assert (last.episodes_done, last.episodes_total, last.shards_done, last.shards_running) == (6, 6, 3, 0)
    assert sum(last.frames_per_node.values()) == res.num_steps


def test_resume_skips_complete_shards_and_resumes_partial_ones(
    reference, tmp_path, small_build, dataset_arrays, assert_same_arrays
):
    cfg = small_build(tmp_path / "d.h5", num_shards=2, keep_shards=True, **BASE)
    d = shards_dir(cfg.out)
    d.mkdir()
    # Shard 0 complete; shard 1 holds episodes 1 and 3 of its 1, 3, 5 (a 4-episode build's shard 1/2).
    s0 = build_dataset(dataclasses.replace(cfg, out=str(shard_path(d, 0, 2)), shard_index=0, keep_shards=False))
    s1 = shard_path(d, 1, 2)
    build_dataset(dataclasses.replace(cfg, out=str(s1), shard_index=1, num_episodes=4, keep_shards=False))
    s1.rename(partial_path(s1))
    before = s0.path.stat()
    with pytest.raises(ConfigError, match=r"unfinished cluster build .* \(1 of 2 shards complete\); pass --resume"):
        build_sharded(cfg)
    with pytest.raises(ConfigError, match=r"holds shards of a 2-shard build; pass --num-shards 2"):
        build_sharded(dataclasses.replace(cfg, num_shards=3, resume=True))
    with pytest.raises(ConfigError, match=r"different configuration: seed \(file: 11, now: 12\)"):
        build_sharded(dataclasses.replace(cfg, seed=12, resume=True))
    res = build_sharded(dataclasses.replace(cfg, resume=True))
    shard0, shard1 = res.shards
    assert shard0.attempts == 0 and shard0.resumed_episodes == 3 and shard0.new_episodes == 0
    assert shard1.attempts == 1 and shard1.resumed_episodes == 2 and shard1.new_episodes == 1
    after = s0.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # never rebuilt
    assert res.resumed_episodes == 5 and res.new_episodes == 1
    assert_same_arrays(dataset_arrays(reference), dataset_arrays(res.path))
    assert sorted(p.name for p in d.iterdir()) == [BUILD_ID_NAME, s0.path.name, s1.name]  # --keep-shards


def test_a_node_that_does_not_share_the_shard_directory_is_refused(tmp_path, small_build):
    cfg = small_build(tmp_path / "d.h5.shards" / "shard-00000-of-00002.h5", num_shards=2, **BASE)
    (tmp_path / "d.h5.shards").mkdir()
    (tmp_path / "d.h5.shards" / BUILD_ID_NAME).write_text("another-build")
    ctx = TaskContext(0, 1, "node-b", 1.0, lambda _e: None, lambda _h: False)
    task = ShardTask(config=cfg, directory=str(tmp_path / "d.h5.shards"), build_id="this-build")
    with pytest.raises(ConfigError, match=r"node node-b does not see .* differs\); --out must be on a filesystem"):
        _build_shard(task, ctx)
    assert not partial_path(cfg.out).exists()


def test_ray_config_rules_are_checked_before_anything_runs(tmp_path, small_build):
    ray = ExecutorConfig(kind="ray", address="local")
    with pytest.raises(ConfigError, match=r"--device cuda:1 names one GPU, but Ray assigns"):
        small_build(tmp_path / "x.h5", **BASE, device="cuda:1", num_shards=2, executor=ray)
    with pytest.raises(ConfigError, match=r"--device cuda with --ray needs --gpus-per-shard"):
        small_build(tmp_path / "x.h5", **BASE, device="cuda", num_shards=2, executor=ray)
    with pytest.raises(ConfigError, match=r"--shard i/n builds one shard by hand"):
        small_build(tmp_path / "x.h5", **BASE, shard_index=1, num_shards=2, executor=ray)
    with pytest.raises(ConfigError, match=r"--num-shards 7 exceeds --num-episodes 6: every shard needs"):
        small_build(tmp_path / "x.h5", **BASE, num_shards=7, executor=ray)
    with pytest.raises(ConfigError, match="executor must be one of local, ray"):
        ExecutorConfig(kind="dask")
    with pytest.raises(ConfigError, match="cpus_per_task must be > 0"):
        ExecutorConfig(kind="ray", cpus_per_task=0)
    toml = tmp_path / "b.toml"
    toml.write_text('[build]\nout = "x.h5"\n[build.executor]\nkind = "ray"\naddress = "local"\ngpus-per-task = 1\n')
    assert load_build_toml(toml)["executor"] == ExecutorConfig(kind="ray", address="local", gpus_per_task=1)
    toml.write_text('[build]\nout = "x.h5"\n[build.executor]\nadress = "local"\n')
    with pytest.raises(ConfigError, match="unknown executor key 'adress'.*'address'"):
        load_build_toml(toml)


def test_local_executor_reports_events_in_order():
    seen = []

    def double(item, ctx):
        ctx.report(value=item)
        return 2 * item

    assert LocalExecutor().run(double, [3, 4], on_event=seen.append) == [6, 8]
    assert [(e.item, e.kind, e.attempt) for e in seen] == [
        (0, "started", 1),
        (0, "report", 1),
        (0, "finished", 1),
        (1, "started", 1),
        (1, "report", 1),
        (1, "finished", 1),
    ]
    assert seen[1].fields == {"value": 3}


def test_a_shard_takes_over_the_lock_of_a_lost_node_only(tmp_path, monkeypatch):
    import vlnav_data.collect.sharded as S
    from vlnav_data.dataset import lock_path
    from vlnav_data.dataset.lock import LockHeldError

    path = tmp_path / "shard-00000-of-00002.h5"
    lock_path(path).write_text("4242\nnode-b\n99\n")  # an attempt that ran on host node-b
    lost = TaskContext(0, 2, "node-a", 1.0, lambda _e: None, lambda host: host == "node-b")
    assert S._wait_for_lock(path, lost) is True
    alive = TaskContext(0, 2, "node-a", 1.0, lambda _e: None, lambda _host: False)
    monkeypatch.setattr(S, "LOCK_WAIT_S", 0.3)
    with pytest.raises(LockHeldError, match="pid 4242 on node-b"):
        S._wait_for_lock(path, alive)
    lock_path(path).unlink()
    assert S._wait_for_lock(path, alive) is False
