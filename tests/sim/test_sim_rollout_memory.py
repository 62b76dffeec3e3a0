"""An episode in flight holds only its own rows: one arena runs to the time limit while the others finish
and restart, and at every step the bytes the rollout keeps for its open episodes stay within their own
recorded rows plus one step (one batch) of slack.

What is measured is what ``rollout`` actually retains: every numpy array and tensor reachable from the
rollout generator's per-slot state, counted by the memory it keeps alive (a view counts as its whole base
array, a tensor as its whole storage, each base once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnav_data.sim import make_arena, rollout

SMALL = {"image_height_px": 24, "image_width_px": 24, "max_episode_steps": 240}


def _retained(obj, seen_ids: set[int], bases: dict[int, int]) -> None:
    """Add the memory ``obj`` keeps alive to ``bases`` (base address -> bytes), walking containers."""
    if id(obj) in seen_ids or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return
    seen_ids.add(id(obj))
    if isinstance(obj, np.ndarray):
        root = obj
        while isinstance(root.base, np.ndarray):
            root = root.base
        if root.base is not None:  # memory owned by something else (a tensor): count the whole buffer
            _retained(root.base, seen_ids, bases)
        bases[root.__array_interface__["data"][0]] = max(bases.get(root.__array_interface__["data"][0], 0), root.nbytes)
        return
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        bases[storage.data_ptr()] = storage.nbytes()
        return
    if isinstance(obj, dict):
        for value in obj.values():
            _retained(value, seen_ids, bases)
    elif isinstance(obj, (list, tuple, set)):
        for value in obj:
            _retained(value, seen_ids, bases)
    elif hasattr(obj, "__dict__"):
        _retained(vars(obj), seen_ids, bases)


def _held_bytes(slots) -> int:
    bases: dict[int, int] = {}
    seen: set[int] = set()
    for slot in slots:
        _retained(slot, seen, bases)
    return sum(bases.values())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_open_episodes_hold_only_their_own_rows_under_an_adversarial_schedule(backend):
    n = 4
    env = make_arena("text2nav", num_envs=n, obs_backend=backend, **SMALL)
    seeds = list(range(200, 230))
    h, w = SMALL["image_height_px"], SMALL["image_width_px"]
    state_dim = 11
    # Bytes of one recorded step of one episode: frame, state, action, wheel speeds (float32), reward.
    row_bytes = h * w * 3 + state_dim * 4 + 2 * 4 + 2 * 4
    checks: list[tuple[int, int]] = []

    def policy(obs, info):
        frame = gen.gi_frame
        slots = [s for s in frame.f_locals["slots"] if s is not None]
        own = sum(len(s.actions) for s in slots) * row_bytes  # rows recorded so far by the open episodes
        checks.append((_held_bytes(slots), own))
        actions = np.ones((n, 2))  # straight ahead: leaves the arena well before the time limit
        actions[np.asarray(info["episode_seed"]) == seeds[0]] = 0.0  # the first episode stands still
        return actions

    gen = rollout(env, policy, seeds)
    episodes = list(gen)
    long = next(e for e in episodes if e.episode_index == 0)
    assert long.termination == "time_limit" and long.num_steps == SMALL["max_episode_steps"]
    assert sum(e.episode_index != 0 for e in episodes) == len(seeds) - 1
    assert max(e.num_steps for e in episodes if e.episode_index != 0) < SMALL["max_episode_steps"]
    # The others finished and restarted many times while the first was open.
    assert [e.episode_index for e in episodes].index(0) >= 6
    slack = n * row_bytes  # one step of the whole batch
    worst = max(held - own for held, own in checks)
    assert worst <= slack, f"open episodes held {worst} bytes beyond their own rows (one step: {slack})"
    # The check can fail: a step's batch shared by every open episode is far over the bound.
    assert max(own for _, own in checks) > 10 * slack


def test_the_measure_counts_a_view_as_its_whole_batch():
    batch = np.zeros((64, 8, 8, 3), dtype=np.uint8)

    class Holder:
        def __init__(self):
            self.rows = [batch[0], batch[1]]

    assert _held_bytes([Holder()]) == batch.nbytes
    assert _held_bytes([Holder(), Holder()]) == batch.nbytes  # one base, counted once
    tensor = torch.zeros(64, 8, 8, 3, dtype=torch.uint8)
    rows = type("R", (), {})()
    rows.rows = [tensor[3], tensor.numpy()[5]]
    assert _held_bytes([rows]) == tensor.nbytes
