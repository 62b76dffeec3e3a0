"""A process that imported ``mujoco`` itself, with MUJOCO_GL unset and no display, still renders the MuJoCo
arena headless (issue 23): the same frames as a process that let vlnav_data import it, never a native abort."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("mujoco")

RENDER = """
import hashlib, sys
if sys.argv[1] == "early":
    import mujoco  # before vlnav_data could choose the GL platform
from vlnav_data.sim import make_arena
env = make_arena("text2nav-mujoco", num_envs=2, render=True, image_height_px=32, image_width_px=32)
obs, _ = env.reset(seed=3)
obs, *_ = env.step([[1.0, -1.0], [0.5, 0.5]])
print(hashlib.sha256(obs["rgb"].tobytes()).hexdigest(), obs["rgb"].shape, int(obs["rgb"].max()))
"""


def _run(mode: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")
    }
    return subprocess.run([sys.executable, "-c", RENDER, mode], capture_output=True, text=True, env=env, timeout=300)


def test_mujoco_imported_first_renders_the_same_frames_headless():
    late, early = _run("late"), _run("early")
    assert late.returncode == 0, late.stderr
    assert early.returncode == 0, early.stderr  # not a negative code (a native abort), not an error
    assert early.stdout == late.stdout
    assert "(2, 32, 32, 3)" in early.stdout and not early.stdout.rstrip().endswith(" 0")
    # and both exit quietly: MuJoCo 3.12 printed a traceback per renderer alive at exit (scene.py closes them)
    assert "Exception ignored" not in late.stderr + early.stderr, late.stderr + early.stderr
