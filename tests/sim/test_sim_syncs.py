"""Host synchronisation per ``step()``, counted on the CPU (a CUDA-free proxy for GPU stalls).

On CUDA, every read of a device tensor from the host waits for the queued kernels. The simulator reads
only through ``vlnav_data.sim.transfer.to_host`` (module docstring of ``vector_env``); this test wraps
every ``Tensor`` method that reads values on the host (``item``, ``cpu``, ``numpy``, ``tolist``,
``bool()``, ``int()``, ``float()``, ``__index__``, ``nonzero``, ``__array__``) and ``to_host`` itself, and
checks that a step makes exactly the reads the bookkeeping needs and no other.

Expected reads of one ``step()`` of the built-in arena (the reasoning is in ``vector_env``'s docstring):

* 1: the packed bookkeeping read (cause, reward, counters, flags, wheels, target, colour and instruction
  codes; with the numpy backend the privileged state too);
* +1 when rendering: the renderer's count of sphere candidate pixels (sizes its arrays);
* +1 with the numpy backend when rendering: the frames;
* when envs finished in ``same_step`` mode: +1 for the new episodes' observation fields, and the final
  frames of the finished rows: +1 render count (+1 frames with numpy).

Boolean-mask indexing (``t[mask]``), which also reads on CUDA, is not visible to this proxy; the step
path does not use it (``torch.where`` instead), and the ``gpu``-marked test counts real synchronisations
with ``torch.cuda.set_sync_debug_mode``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from vlnav_data.sim import make_arena, transfer

READING_METHODS = ("item", "cpu", "numpy", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero")


@pytest.fixture
def reads(monkeypatch):
    """Counter of host reads: ``to_host`` calls, and any other reading ``Tensor`` method called outside it."""
    counter: Counter[str] = Counter()
    depth = {"inside": 0}

    def wrap(name):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, **kwargs):
            if not depth["inside"]:
                counter[name] += 1
            return original(self, *args, **kwargs)

        return counted

    for name in (*READING_METHODS, "__array__"):
        monkeypatch.setattr(torch.Tensor, name, wrap(name))
    original_to_host = transfer.to_host

    def to_host(tensor):
        counter["to_host"] += 1
        depth["inside"] += 1
        try:
            return original_to_host(tensor)
        finally:
            depth["inside"] -= 1

    monkeypatch.setattr(transfer, "to_host", to_host)
    return counter


def _step_reads(env, reads, actions):
    reads.clear()
    out = env.step(actions)
    counts = dict(reads)
    return out, counts.pop("to_host", 0), counts


def _run(backend: str, render: bool, mode: str, reads) -> tuple[list[int], list[int]]:
    """Reads of steps where no env finished, and of steps where some did (time limit 12 forces finishes)."""
    env = make_arena(
        "text2nav",
        num_envs=4,
        image_height_px=24,
        image_width_px=24,
        max_episode_steps=12,
        render=render,
        autoreset_mode=mode,
        obs_backend=backend,
    )
    env.reset(seed=0)
    quiet, finishing = [], []
    actions = np.zeros((4, 2))  # standing still: only the time limit ends episodes
    for _ in range(30):
        (_, _, terminated, truncated, _), n, stray = _step_reads(env, reads, actions)
        assert stray == {}, f"host reads outside transfer.to_host during step(): {stray}"
        (finishing if (terminated | truncated).any() else quiet).append(n)
        if mode == "disabled" and (terminated | truncated).any():
            env.reset(options={"reset_mask": terminated | truncated})
    return quiet, finishing


@pytest.mark.parametrize(
    ("backend", "render", "quiet", "finishing"),
    [
        ("torch", True, 2, 4),
        ("numpy", True, 3, 6),
        ("torch", False, 1, 2),
        ("numpy", False, 1, 2),
    ],
)
def test_same_step_reads_per_step(reads, backend, render, quiet, finishing):
    q, f = _run(backend, render, "same_step", reads)
    assert q and f
    assert set(q) == {quiet}
    assert set(f) == {finishing}


@pytest.mark.parametrize("mode", ["next_step", "disabled"])
def test_other_autoreset_modes_read_once_per_step(reads, mode):
    q, f = _run("torch", True, mode, reads)
    # No reset inside the step that finishes (next_step resets on the following step, disabled on request).
    assert set(q) | set(f) == {2}


def test_a_stray_item_is_caught(reads, monkeypatch):
    """The proxy itself: an ``.item()`` added to the step path shows up as a stray read."""
    from vlnav_data.sim import task

    env = make_arena("text2nav", num_envs=2, render=False, obs_backend="torch")
    env.reset(seed=0)
    original = task.evaluate_step

    def evaluate_with_item(*args, **kwargs):
        ev = original(*args, **kwargs)
        ev["target_distance_m"].max().item()
        return ev

    monkeypatch.setattr(task, "evaluate_step", evaluate_with_item)
    _, n, stray = _step_reads(env, reads, np.zeros((2, 2)))
    assert n == 1 and stray == {"item": 1}


def test_numpy_actions_are_checked_on_the_host(reads):
    env = make_arena("text2nav", num_envs=2, render=False, obs_backend="torch")
    env.reset(seed=0)
    with pytest.raises(Exception, match=r"actions must be finite numbers in \[-1, 1\], got \[nan, 0.0\] for env 1"):
        env.step(np.array([[0.0, 0.0], [np.nan, 0.0]]))
