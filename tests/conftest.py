"""Shared test setup: nothing in the test suite may reach the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders headless (Mesa's software EGL) in every test
# Ray (DESIGN §9): every service on 127.0.0.1, no token under the home directory, no usage reporting.
# Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import ("0" makes the GCS and every node bind and talk to
# 127.0.0.1), so these are set here, before any test module imports Ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Warp (the Newton backend) compiles its kernels into WARP_CACHE_PATH, read when warp initialises: unless the
# caller chose one (.ci/newton.sh does), each test run gets its own, removed at exit, so runs share nothing.
_WARP_CACHE = None if "WARP_CACHE_PATH" in os.environ else tempfile.mkdtemp(prefix="vlnav-warp-cache-")
if _WARP_CACHE is not None:
    os.environ["WARP_CACHE_PATH"] = _WARP_CACHE


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``-n 2 --dist loadgroup``, the README's command), the tests that start Ray share one
    worker and run one after another: two private Ray clusters starting at once on a 2-core machine can time
    out. Without xdist the group is only a mark."""
    for item in items:
        if "ray_tmpdir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))


def pytest_unconfigure(config):
    if _WARP_CACHE is not None:
        shutil.rmtree(_WARP_CACHE, ignore_errors=True)


def processes_with_env(name: str, value: str) -> list[tuple[int, str]]:
    """``(pid, command line)`` of this user's processes whose environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone, or another user's
            continue
        if needle in env:
            found.append((int(entry.name), cmd))
    return found


@pytest.fixture(scope="module")
def ray_tmpdir():
    """A short private ``RAY_TMPDIR`` (Unix socket paths must stay under 108 bytes); on teardown, every
    process that inherited it (GCS, raylets, workers) must be gone."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to check for leftover Ray processes")
    pytest.importorskip("ray")
    d = tempfile.mkdtemp(prefix="vr", dir="/tmp")
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = d
    try:
        yield d
    finally:
        if old is None:
            del os.environ["RAY_TMPDIR"]
        else:
            os.environ["RAY_TMPDIR"] = old
        deadline = time.monotonic() + 30
        left = processes_with_env("RAY_TMPDIR", d)
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = processes_with_env("RAY_TMPDIR", d)
        for pid, _ in left:  # ours: started by this module's Ray
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


#: The cheap build most tests start from: the oracle encoder, the pursuit expert, 32 px frames, 25-step
#: episodes, two arenas on the CPU.
SMALL_BUILD = dict(
    num_episodes=4,
    encoders=("oracle",),
    expert="pursuit",
    image_size_px=32,
    max_episode_steps=25,
    num_envs=2,
    device="cpu",
    seed=7,
)


@pytest.fixture(scope="session")
def small_build():
    """``small_build(out, **fields) -> BuildConfig``: :data:`SMALL_BUILD` writing to ``out``; ``fields``
    replace any of it."""
    from vlnav_data.collect import BuildConfig

    def make(out, **fields):
        return BuildConfig(out=str(out), **{**SMALL_BUILD, **fields})

    return make


@pytest.fixture
def ray_process_ids(ray_tmpdir):
    """``ray_process_ids()``: pids of the processes this module's Ray started (they inherited its RAY_TMPDIR)."""
    return lambda: [pid for pid, _ in processes_with_env("RAY_TMPDIR", ray_tmpdir)]


@pytest.fixture(scope="module")
def local_ray_cluster(ray_tmpdir):
    """One ``ray.cluster_utils.Cluster`` per test module on 127.0.0.1, this process connected to it: a head
    with no CPUs (the driver and the executor's progress actor live there) and two simulated worker nodes
    of one CPU each, so two tasks run at once on different nodes. Shut down after the module."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level="WARNING")
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory):
    """``tiny_checkpoint_dir(family) -> Path``: a tiny random checkpoint (siglip, siglip2, clip, vilt) saved with
    ``save_pretrained`` (tokenizer built locally), written once per session. Copy it before modifying it."""
    from vlnav_data.encoders.random_models import TINY_WRITERS
    from vlnav_data.encoders.runtime import quiet_transformers

    root = tmp_path_factory.mktemp("tiny-checkpoints")
    made: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in made:
            with quiet_transformers():
                TINY_WRITERS[family](root / f"tiny-{family}", 0)
            made[family] = root / f"tiny-{family}"
        return made[family]

    return get


@pytest.fixture
def fake_hf_cache(tmp_path, monkeypatch):
    """``fake_hf_cache(repo_id, src_dir, commit, refs=("main",)) -> snapshot dir``: put a checkpoint into a
    Hugging Face hub cache laid out as ``hf download`` leaves it (``HF_HUB_CACHE`` points at it)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    def add(repo_id: str, src_dir: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
        repo = cache / ("models--" + repo_id.replace("/", "--"))
        snapshot = repo / "snapshots" / commit
        shutil.copytree(src_dir, snapshot)
        (repo / "refs").mkdir(exist_ok=True)
        for ref in refs:
            (repo / "refs" / ref).write_text(commit)
        return snapshot

    add.cache = cache  # type: ignore[attr-defined]
    return add


TOY_PLUGIN_SOURCE = '''
"""A test plugin: 4 x 4 average colour pooling (48-d) and hash-seeded text vectors."""

import hashlib

import numpy as np

from vlnav_data.encoders import Encoder, EncoderSpec


class ToyPool(Encoder):
    def __init__(self, device="cpu", dtype="auto", batch_size=None, seed=0, **kwargs):
        self.spec = EncoderSpec(
            name="toy-pool", model_id="vlnav-test/toy-pool", revision="0.1", dim=48, dtype="float32",
            device=device, privileged=False, note="4x4 colour pooling (test plugin)",
        )

    def encode_images(self, images):
        b, h, w, _ = images.shape
        x = images[:, : h // 4 * 4, : w // 4 * 4].astype(np.float32) / 255.0
        x = x.reshape(b, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4)).reshape(b, 48) - 0.5
        return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode_texts(self, texts):
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(48)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 48)


def make(**kwargs):
    return ToyPool(**kwargs)


make.dim = 48
make.note = "4x4 colour pooling (test plugin)"
'''


def write_toy_plugin(site: Path) -> Path:
    """Install the ``toy-pool`` plugin as a distribution into ``site`` (module + dist-info with an entry point)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "vlnav_toy_plugin.py").write_text(TOY_PLUGIN_SOURCE)
    info = site / "vlnav_toy_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vlnav-toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vlnav_data.encoders]\ntoy-pool = vlnav_toy_plugin:make\n")
    return site


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """The ``toy-pool`` plugin installed on ``sys.path`` (a dist-info with an entry point); yields the directory
    (subprocesses need it on PYTHONPATH)."""
    import sys

    site = write_toy_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("vlnav_toy_plugin", None)
