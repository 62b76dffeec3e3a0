"""Ray test setup (DESIGN §9): loopback only, no dashboard, no usage reporting, no token written under
the home directory, a private temp dir, and a check that no Ray process outlives its test module.

The variables must be set before Ray is imported (Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` at
import: "0" makes the GCS and every node bind and talk to 127.0.0.1), hence at conftest import.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


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


def _dataset_arrays(path) -> dict:
    """Every array and attribute of every demo, plus the masks; instruction rows compared as strings
    (the instruction table's order depends on which episode was written first)."""
    from vlnav_data.dataset import DatasetReader

    out = {}
    with DatasetReader(path) as r:
        for n in r.demo_names:
            e = r.episode(n)
            for k in r.keys(n):
                if k != "instruction_index":
                    out[(n, k)] = e[k]
            out[(n, "instructions")] = e["instructions"]
            out[(n, "attrs")] = e["attrs"]
        out["masks"] = (r.split("train"), r.split("valid"))
    return out


def _assert_same_arrays(a: dict, b: dict) -> None:
    import numpy as np

    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="session")
def dataset_arrays():
    """``dataset_arrays(path)``: what two builds must agree on, as a dict."""
    return _dataset_arrays


@pytest.fixture(scope="session")
def assert_same_arrays():
    """``assert_same_arrays(a, b)`` for two :func:`dataset_arrays` dicts."""
    return _assert_same_arrays
