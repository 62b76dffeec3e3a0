"""The build's threads: an error in the writer or simulation thread surfaces in the caller, and no pipeline
thread is left running (against the file) when build_dataset returns or raises."""

from __future__ import annotations

import importlib
import threading
import time

import pytest

from vlnav_data.collect import build_dataset
from vlnav_data.dataset import DatasetWriter, lock_path, partial_path

BASE = dict(num_episodes=6, image_size_px=16, max_episode_steps=20, seed=3)  # over small_build (tests/conftest.py)


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vlnav-build-") and t.is_alive()]


def test_a_writer_thread_error_surfaces_and_no_thread_is_left(tmp_path, monkeypatch, small_build):
    original = DatasetWriter.append_episode
    calls = []

    def failing_append(self, ep):
        calls.append(ep.episode_index)
        if len(calls) == 3:
            raise OSError("injected: the disk went away")
        return original(self, ep)

    monkeypatch.setattr(DatasetWriter, "append_episode", failing_append)
    out = tmp_path / "d.h5"
    with pytest.raises(OSError, match="injected: the disk went away"):
        build_dataset(small_build(out, **BASE))
    assert _pipeline_threads() == []
    assert partial_path(out).exists() and not out.exists() and not lock_path(out).exists()


def test_a_slow_write_in_flight_is_waited_for_when_the_simulation_fails(tmp_path, monkeypatch, small_build):
    """The simulation thread fails while the writer is inside a (slow) append: build_dataset re-raises the
    simulation's error only after that append has finished, so nothing touches the file afterwards."""
    original = DatasetWriter.append_episode
    finished: list[float] = []

    def slow_append(self, ep):
        time.sleep(0.5)
        name = original(self, ep)
        finished.append(time.monotonic())
        return name

    rollout_module = importlib.import_module("vlnav_data.sim.rollout")  # the module, not the function
    real_finish = rollout_module._finish
    count = []

    def failing_finish(*args, **kwargs):
        count.append(1)
        if len(count) == 2:
            raise RuntimeError("injected: simulator failure")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(DatasetWriter, "append_episode", slow_append)
    monkeypatch.setattr(rollout_module, "_finish", failing_finish)
    out = tmp_path / "d.h5"
    with pytest.raises(RuntimeError, match="injected: simulator failure"):
        build_dataset(small_build(out, **BASE))
    raised_at = time.monotonic()
    assert _pipeline_threads() == []
    assert all(t <= raised_at for t in finished)
    assert not lock_path(out).exists()
