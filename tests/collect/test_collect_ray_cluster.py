"""Ray builds that lose a node, a worker or the driver still end equal to one single-process build.

One ``ray.cluster_utils.Cluster`` per module on 127.0.0.1 (``local_ray_cluster``: a head with no CPUs,
where the driver and the progress actor live, and two simulated worker nodes of one CPU each), so the
two shards run at once on different nodes. Shards are long enough (12 episodes of up to 40 steps, one
arena at a time) that the fault is injected while the shard still has most of its episodes to go.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.collect.sharded import shard_path, shards_dir
from vlnav_data.dataset import lock_path
from vlnav_data.dataset.lock import read_holder

ray = pytest.importorskip("ray")

# Over the shared small build (small_build, tests/conftest.py).
BASE = dict(num_episodes=24, image_size_px=32, max_episode_steps=40, num_envs=1, seed=21)
CLI = [sys.executable, "-c", "from vlnav_data.cli.data import main; main()"]


@pytest.fixture(scope="module")
def cluster(local_ray_cluster):
    return local_ray_cluster


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dataset_arrays, small_build):
    # Arrays do not depend on the number of arenas: the reference simulates 8 at once to be quick.
    cfg = small_build(tmp_path_factory.mktemp("ref") / "ref.h5", **{**BASE, "num_envs": 8})
    return dataset_arrays(build_dataset(cfg).path)


@pytest.fixture
def two_workers(cluster):
    """Two live one-CPU worker nodes at the start of the test (a test may remove one)."""
    while len(cluster.worker_nodes) < 2:
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return cluster


@pytest.fixture
def ray_config(small_build):
    """``ray_config(cluster, out, **fields)``: :data:`BASE` in two shards on ``cluster``; ``fields`` replace it."""

    def make(cluster, out, **over):
        executor = ExecutorConfig(kind="ray", address=cluster.address)
        return small_build(out, num_shards=2, executor=executor, **{**BASE, **over})

    return make


def _fault_after(episodes: int, fault):
    """A progress callback that calls ``fault(shard_state)`` once, when shard 0 has committed ``episodes``."""
    seen = {}

    def progress(p):
        st = p.shards[0]
        if not seen and st.state == "running" and st.episodes_done >= episodes:
            seen["state"] = st
            fault(st)

    return progress, seen


def _listening_tcp(pids: list[int]) -> set[tuple[str, int]]:
    """``(ip, port)`` of every TCP socket in LISTEN state that one of ``pids`` holds (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        except OSError:  # the process ended, or is another user's
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                ip_hex, port_hex = local.split(":")
                raw = bytes.fromhex(ip_hex)
                words = [raw[i : i + 4][::-1] for i in range(0, width, 4)]  # little-endian 32-bit words
                ip = ipaddress.ip_address(b"".join(words))
                found.add((str(getattr(ip, "ipv4_mapped", None) or ip), int(port_hex, 16)))  # ::ffff:a.b.c.d
    return found


def test_traffic_stays_on_the_loopback(cluster, ray_process_ids):
    """Every TCP port the cluster's processes (GCS, raylets, workers) listen on is bound to the loopback."""
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) >= 3 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
    pids = ray_process_ids()
    listening = _listening_tcp(pids)
    assert pids and listening, (pids, listening)  # the check saw Ray's processes and their sockets
    exposed = {(ip, port) for ip, port in listening if not ipaddress.ip_address(ip).is_loopback}
    assert not exposed, f"Ray listens beyond the loopback: {sorted(exposed)}"


def test_a_node_lost_mid_shard_is_retried_and_resumes(
    two_workers, reference, tmp_path, dataset_arrays, assert_same_arrays, ray_config
):
    cluster = two_workers

    def remove_node(st):
        (node,) = [n for n in cluster.worker_nodes if n.node_id.startswith(st.node.split("/")[1])]
        cluster.remove_node(node)

    progress, seen = _fault_after(2, remove_node)
    res = build_dataset(ray_config(cluster, tmp_path / "d.h5"), progress=progress)
    lost = seen["state"]
    shard0 = res.shards[0]
    assert shard0.attempts == 2 and shard0.node != lost.node
    # The retry resumed the shard's .partial: what was committed before the node died was not rebuilt.
    assert shard0.resumed_episodes >= lost.episodes_done
    assert shard0.new_episodes == shard0.num_episodes - shard0.resumed_episodes >= 1
    assert_same_arrays(reference, dataset_arrays(res.path))


def test_a_worker_killed_mid_shard_is_retried_and_resumes(
    two_workers, reference, tmp_path, dataset_arrays, assert_same_arrays, ray_config
):
    progress, seen = _fault_after(2, lambda st: os.kill(st.pid, signal.SIGKILL))
    res = build_dataset(ray_config(two_workers, tmp_path / "d.h5"), progress=progress)
    killed = seen["state"]
    shard0 = res.shards[0]
    assert shard0.attempts == 2
    assert shard0.resumed_episodes >= killed.episodes_done
    assert shard0.new_episodes == shard0.num_episodes - shard0.resumed_episodes >= 1
    assert res.shards[1].attempts == 1
    assert_same_arrays(reference, dataset_arrays(res.path))


def test_driver_killed_then_resume_rebuilds_no_complete_shard(
    two_workers, reference, tmp_path, dataset_arrays, assert_same_arrays
):
    out = tmp_path / "d.h5"
    args = [
        *CLI, "build", "--out", str(out), "--num-episodes", str(BASE["num_episodes"]), "--encoder", "oracle",
        "--expert", "pursuit", "--image-size-px", "32", "--max-episode-steps", "40", "--num-envs", "1",
        "--device", "cpu", "--seed", str(BASE["seed"]), "--ray", two_workers.address, "--num-shards", "3",
        "--keep-shards", "--no-progress",
    ]  # fmt: skip
    d = shards_dir(out)
    paths = [shard_path(d, i, 3) for i in range(3)]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not any(p.exists() for p in paths) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
    driver.kill()  # SIGKILL: no cleanup of any kind
    driver.wait()
    driver.stderr.close()
    # Ray stops the dead driver's tasks within moments; until then they may still finish a shard.
    deadline = time.monotonic() + 60
    while any(_live_writer(p) for p in paths) and time.monotonic() < deadline:
        time.sleep(0.2)
    complete = {i: (p.stat().st_ino, p.stat().st_mtime_ns) for i, p in enumerate(paths) if p.exists()}
    assert 1 <= len(complete) < 3 and not out.exists()
    done = subprocess.run([*args, "--resume", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    for i, stat in complete.items():
        shard = result["shards"][i]
        assert shard["attempts"] == 0 and shard["new_episodes"] == 0, shard  # skipped, not rebuilt
        assert (paths[i].stat().st_ino, paths[i].stat().st_mtime_ns) == stat
    rebuilt = [s for s in result["shards"] if s["shard_index"] not in complete]
    assert rebuilt and all(s["attempts"] >= 1 for s in rebuilt)
    assert_same_arrays(reference, dataset_arrays(out))
    assert Path(result["path"]) == out


def _live_writer(path) -> bool:
    holder = read_holder(lock_path(path))
    return holder is not None and holder.alive_here


def test_a_failing_shard_stops_the_build_with_its_own_error(two_workers, tmp_path, ray_config):
    out = tmp_path / "d.h5"
    cfg = ray_config(two_workers, out, num_episodes=4)
    shards_dir(out).mkdir()
    # Shard 1 holds a partial file of another build: its task raises ConfigError, which reaches the driver.
    other = dict(out=str(shard_path(shards_dir(out), 1, 2)), seed=99, shard_index=1, executor=ExecutorConfig())
    build_dataset(dataclasses.replace(cfg, **other))
    p = shard_path(shards_dir(out), 1, 2)
    p.rename(p.with_name(p.name + ".partial"))
    with pytest.raises(Exception, match=r"cannot resume .*seed \(file: 99, now: 21\)") as info:
        build_dataset(dataclasses.replace(cfg, resume=True))
    assert type(info.value).__name__ == "ConfigError"
    assert not out.exists()
