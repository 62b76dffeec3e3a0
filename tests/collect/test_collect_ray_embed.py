"""`embed --ray`: ranges of episodes embedded by Ray tasks equal a local embed, array for array, also after
a worker is killed mid-task and after the driver is killed and the command resumed.

One local cluster per module (``local_ray_cluster``: a head without CPUs and two one-CPU worker nodes on
127.0.0.1). The input is a synthetic file of 16 short episodes at 32 px with one instruction no episode
uses (its text row is embedded by the first task), embedded with ``siglip-tiny-random``. The worker-loss
test needs a task that is still running when the driver hears of its first episode: it embeds 8 long
episodes (dt 0.01 s, about 360 frames each) with ``vilt-tiny-random`` (a fused encoder, about 600
frames/s on one core), so each episode takes about 0.6 s and a task of 4 about 2.5 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vlnav_data.cli.data import app
from vlnav_data.collect.embed import embed_dataset
from vlnav_data.collect.embed.config import EmbedConfig
from vlnav_data.collect.embed.tasks import RangeTask, _embed_range
from vlnav_data.collect.executors import ExecutorConfig, TaskContext
from vlnav_data.dataset import lock_path, partial_path
from vlnav_data.dataset.sidecar import sidecar_path
from vlnav_data.dataset.synthetic import write_synthetic_dataset
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError

ray = pytest.importorskip("ray")

ENCODER = "siglip-tiny-random"
NUM_EPISODES = 16


def _add_unused_instruction(path, text: str) -> None:
    """Append an instruction row that no episode uses (with a unit text vector for the file's encoder)."""
    with h5py.File(path, "r+") as f:
        table = f["meta/instructions"]
        table.resize((len(table) + 1,))
        table[-1] = text
        for t in f["meta/text_embeddings"].values():
            t.resize((t.shape[0] + 1, t.shape[1]))
            t[-1] = np.full(t.shape[1], 1.0 / np.sqrt(t.shape[1]), dtype=np.float32)


def file_arrays(path) -> dict:
    """Every dataset of the file, by path, and the attributes of the root and of every demo."""
    out: dict = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        for key in ("encoders_json", "features_json", "rebuild_command", "build_config_json"):
            out[f"/{key}"] = f.attrs[key]
        for name, g in f["data"].items():
            out[f"{name}/attrs"] = {k: g.attrs[k] for k in g.attrs}
    return out


def assert_same_file_arrays(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert repr(a[key]) == repr(b[key]), key


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = write_synthetic_dataset(
        tmp_path_factory.mktemp("ray-embed") / "demos.h5", NUM_EPISODES, {"enc": 8}, image_size=(32, 32), max_steps=40
    )
    _add_unused_instruction(path, "a row no episode uses")
    assert validate_dataset(path) == []
    return path


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    return _local_one_thread(source, tmp_path_factory.mktemp("ray-embed-ref") / "demos.h5", ENCODER)


def _config(cluster, source, out, encoder=ENCODER, **over) -> EmbedConfig:
    executor = ExecutorConfig(kind="ray", address=cluster.address)
    return EmbedConfig(file=str(source), encoders=(encoder,), out=str(out), device="cpu", executor=executor, **over)


def _local_one_thread(source, out, encoder):
    """A local embed with one torch thread, as each one-CPU task runs: torch's CPU kernels round differently
    with another thread count (about 1 in 2,000 float16 components moves by one step here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        embed_dataset(EmbedConfig(file=str(source), encoders=(encoder,), out=str(out), device="cpu"))
    finally:
        torch.set_num_threads(threads)
    return file_arrays(out)


def test_ray_embed_equals_a_local_embed(local_ray_cluster, source, reference, tmp_path):
    out = tmp_path / "demos.h5"
    seen = []
    res = embed_dataset(_config(local_ray_cluster, source, out, episodes_per_task=4), progress=seen.append)
    assert res.executor == "ray" and res.device == "cpu" and not res.cross_episode_batching
    ranges = [(t.first_episode, t.num_episodes, t.attempts) for t in res.tasks]
    assert ranges == [(0, 4, 1), (4, 4, 1), (8, 4, 1), (12, 4, 1)]
    assert len({t.node for t in res.tasks}) == 2  # two one-CPU nodes: the first two tasks ran side by side
    assert (res.new_episodes, res.resumed_episodes, res.new_steps) == (NUM_EPISODES, 0, res.num_steps)
    assert validate_dataset(out) == []
    assert not sidecar_path(out).exists() and not partial_path(out).exists() and not lock_path(out).exists()
    assert_same_file_arrays(reference, file_arrays(out))  # embeddings, text table (unused row too), rebuild command
    embed = [p for p in seen if p.stage == "embed"]
    assert [p.done for p in embed] == sorted(p.done for p in embed)  # written in order, never taken back
    assert embed[-1].done == NUM_EPISODES and {t.state for t in embed[-1].tasks} == {"done"}
    assert max(sum(t.state == "running" for t in p.tasks) for p in embed) <= 2


def test_a_worker_killed_mid_task_is_retried_and_gives_the_same_arrays(local_ray_cluster, tmp_path):
    long = write_synthetic_dataset(tmp_path / "long.h5", 8, {"enc": 8}, image_size=(32, 32), max_steps=600, dt_s=0.01)
    (tmp_path / "ref").mkdir()
    reference = _local_one_thread(long, tmp_path / "ref" / "demos.h5", "vilt-tiny-random")  # same name as `out`
    killed = {}

    def kill_task_0(p):
        t = p.tasks[0] if p.tasks else None
        if not killed and t is not None and t.state == "running" and t.episodes_done >= 1:
            killed["state"] = t
            os.kill(t.pid, signal.SIGKILL)

    out = tmp_path / "demos.h5"
    cfg = _config(local_ray_cluster, long, out, encoder="vilt-tiny-random", episodes_per_task=4)
    res = embed_dataset(cfg, progress=kill_task_0)
    lost = killed["state"]
    assert lost.episodes_done < lost.num_episodes  # killed while it still had episodes to embed
    first, second = res.tasks
    assert first.attempts == 2 and second.attempts == 1
    assert validate_dataset(out) == []
    assert_same_file_arrays(reference, file_arrays(out))


DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    from vlnav_data.collect.embed import embed_dataset
    from vlnav_data.collect.embed.config import EmbedConfig
    from vlnav_data.collect.executors import ExecutorConfig

    source, out, address, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    def hook(p):  # SIGKILL right after the driver committed `after` episodes: no cleanup of any kind
        if p.stage == "embed" and p.done >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    ex = ExecutorConfig(kind="ray", address=address)
    cfg = EmbedConfig(file=source, encoders=("siglip-tiny-random",), out=out, device="cpu", executor=ex,
                      episodes_per_task=4)
    embed_dataset(cfg, progress=hook)
    """
)


def test_driver_killed_then_resume_recomputes_no_committed_episode(local_ray_cluster, source, reference, tmp_path):
    out = tmp_path / "demos.h5"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    args = [sys.executable, str(script), str(source), str(out), local_ray_cluster.address, "5"]
    proc = subprocess.run(args, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]
    side = sidecar_path(out)
    with h5py.File(side, "r") as f:
        committed = {n: g["obs/siglip-tiny-random_joint"][()] for n, g in f["data"].items() if "num_samples" in g.attrs}
    assert sorted(committed, key=lambda n: int(n[5:])) == [f"demo_{i}" for i in range(5)] and not out.exists()
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["embed", str(source), "--encoder", ENCODER, "--out", str(out), "--device", "cpu", "--resume", "--json",
         "--ray", local_ray_cluster.address, "--episodes-per-task", "4"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert (payload["resumed_episodes"], payload["new_episodes"]) == (5, NUM_EPISODES - 5)
    # Only the uncommitted episodes were handed out: 5..15 in ranges of four.
    assert [(t["first_episode"], t["num_episodes"]) for t in payload["tasks"]] == [(5, 4), (9, 4), (13, 3)]
    assert payload["executor"] == "ray" and not side.exists()
    got = file_arrays(out)
    for name, joint in committed.items():
        np.testing.assert_array_equal(got[f"data/{name}/obs/siglip-tiny-random_joint"], joint.astype(np.float16))
    assert_same_file_arrays(reference, got)


def test_a_node_that_does_not_see_the_input_is_refused(source, tmp_path):
    from vlnav_data.dataset.reader import open_h5
    from vlnav_data.dataset.sidecar import input_fingerprint

    with open_h5(source) as f:
        fingerprint = input_fingerprint(source, f)
    cfg = EmbedConfig(file=str(source), encoders=(ENCODER,), out=str(tmp_path / "o.h5"), device="cpu")
    ctx = TaskContext(0, 1, "node-b", 1.0, lambda _e: None, lambda _h: False)
    task = RangeTask(config=cfg, file=str(tmp_path / "elsewhere.h5"), fingerprint=fingerprint, cwd=str(tmp_path),
                     first_episode=0, demo_names=("demo_0",))  # fmt: skip
    with pytest.raises(ConfigError, match=r"node node-b does not see '.*elsewhere.h5': FILE must be on a filesystem"):
        _embed_range(task, ctx)
    other = dataclasses.replace(task, file=str(source), fingerprint={**fingerprint, "size_bytes": 1})
    with pytest.raises(ConfigError, match=r"node node-b sees another '.*demos.h5' than the driver \(driver: "):
        _embed_range(other, ctx)


def test_ray_config_rules_are_checked_before_anything_runs(source, tmp_path):
    ray_ex = ExecutorConfig(kind="ray", address="local")
    base = dict(file=str(source), encoders=(ENCODER,), out=str(tmp_path / "o.h5"), executor=ray_ex)
    with pytest.raises(ConfigError, match=r"^--device cuda with --ray needs --gpus-per-task > 0"):
        EmbedConfig(**base, device="cuda")
    with pytest.raises(ConfigError, match=r"^--device cuda:0 names one GPU, but Ray assigns each task its GPUs"):
        EmbedConfig(**base, device="cuda:0")
    with pytest.raises(ConfigError, match=r"^--episodes-per-task must be a positive integer, got 0"):
        EmbedConfig(**base, episodes_per_task=0)
    with pytest.raises(ConfigError, match="injected encoders cannot be sent to executor tasks"):
        embed_dataset(EmbedConfig(**base, device="cpu"), encoders=[object()])
    assert not (tmp_path / "o.h5").exists() and not lock_path(tmp_path / "o.h5").exists()
