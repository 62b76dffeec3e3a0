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
