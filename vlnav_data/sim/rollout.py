"""`rollout()`: run a policy in a batched arena and yield whole episodes.

This is the only code that interprets the env's autoreset mode. It starts episode ``i`` of
``episode_seeds`` with exactly ``sample_episode_start(config, episode_seeds[i])`` by resetting the
slot it is assigned to (``reset(options={"reset_mask", "episode_seeds"})``), assigns seeds to slots as
they free up, and never records a reset-step transition. Each :class:`Episode` holds the observation
*before* each action (robomimic convention: ``obs[t], actions[t], rewards[t]``), so
``num_steps == len(actions) ==`` the number of ``step()`` calls of that episode.

Memory: an episode holds only its own rows. Every step, each running episode copies its row of the batch
(frame, state, action, wheel speeds) into storage of its own, where the batch was produced (host arrays
for numpy observations and CPU tensors, device tensors on CUDA), so the batch arrays of a step are free as
soon as the next step replaces them, however long one episode runs (a 600-step time-out among 50-step
episodes keeps 600 of its own rows, not 600 batches). A finished episode is stacked once per array.

Device-resident observations (``make_arena(..., obs_backend="torch")``): the policy gets the env's tensors
as they are (an encoder on the same device reads the frames where they were rendered). On CUDA the rows
stay on the device until the episode finishes; its stacked frames are then ``Episode.rgb_device`` (for the
encoders) and go to the host once, through pinned memory on a side stream
(:class:`~vlnav_data.sim.transfer.HostCopies`), for the episode's numpy arrays (the dataset writer). On the
CPU both are the same memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from vlnav_data.errors import ConfigError
from vlnav_data.sim import task, transfer
from vlnav_data.sim.task import EpisodeStart


@dataclass(frozen=True, eq=False)
class Episode:
    """One finished episode (arrays have one row per ``step()`` call, T = ``num_steps``).

    Attributes:
        episode_index: Position of the episode's seed in ``episode_seeds``.
        episode_seed: The seed; ``start == sample_episode_start(config, episode_seed)``.
        start: The episode's start (pose, target, sphere layout, floor, light).
        target_index: Target sphere index.
        target_color: Target colour name.
        termination: One of ``TERMINATION_CAUSES``.
        success: ``termination == "success"``.
        num_steps: Number of ``step()`` calls (env steps) in the episode.
        reached_wrong_sphere: The robot came within ``success_radius_m`` of a non-target sphere.
        nearest_sphere_index: Sphere nearest to the robot at the end.
        rgb: uint8 ``(T, H, W, 3)`` frames before each action, or None (state-only env / not recorded).
        privileged_state: float32 ``(T, D)`` before each action.
        actions: float32 ``(T, 2)`` actions as applied (clipped to [-1, 1]).
        wheel_speeds_radps: float32 ``(T, 2)`` wheel speeds the actions produced.
        rewards: float32 ``(T,)``.
        instructions: T instruction strings (recomputed every step).
        final_privileged_state: float32 ``(D,)`` state after the last step.
        rgb_device: the frames of ``rgb`` as a uint8 torch tensor ``(T, H, W, 3)`` on the simulator's device
            when the env returns torch observations (``obs_backend="torch"``), else None; on the CPU it
            shares ``rgb``'s memory. Work that produced it is complete (it may be used from another thread
            or CUDA stream).
    """

    episode_index: int
    episode_seed: int
    start: EpisodeStart
    target_index: int
    target_color: str
    termination: str
    success: bool
    num_steps: int
    reached_wrong_sphere: bool
    nearest_sphere_index: int
    rgb: np.ndarray | None
    privileged_state: np.ndarray
    actions: np.ndarray
    wheel_speeds_radps: np.ndarray
    rewards: np.ndarray
    instructions: list[str]
    final_privileged_state: np.ndarray
    rgb_device: Any = None


class _Slot:
    """Per-slot buffers of the episode in flight: its own rows only (copies, never views of a batch)."""

    def __init__(self, episode_index: int, episode_seed: int) -> None:
        self.episode_index = episode_index
        self.episode_seed = episode_seed
        self.observed: dict[str, list[Any]] = {}  # key -> one row per step (numpy, or a device tensor)
        self.actions: list[np.ndarray] = []
        self.wheels: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.instructions: list[str] = []
        self.wrong = False

    def keep(self, batch: dict[str, Any], i: int) -> None:
        """Copy row ``i`` of each observation array of the step (numpy on the host, a tensor on its device)."""
        for key, values in batch.items():
            row = values[i]
            self.observed.setdefault(key, []).append(row.clone() if isinstance(row, torch.Tensor) else row.copy())


def rollout(
    env: Any,
    policy_fn: Callable[[dict[str, np.ndarray], dict[str, Any]], Any],
    episode_seeds: Iterable[int],
    *,
    record_rgb: bool = True,
    max_ahead: int | None = None,
) -> Iterator[Episode]:
    """Run ``policy_fn`` until every seed's episode has finished; yield episodes as they finish.

    Args:
        env: An :class:`ArenaVecEnv` (any autoreset mode). It is reset by this call.
        policy_fn: ``policy_fn(obs, info) -> actions (N, 2)`` for the whole batch (rows of idle slots
            are stepped but ignored).
        episode_seeds: One seed per episode to run; episode ``i`` starts from
            ``sample_episode_start(env.config, episode_seeds[i])``.
        record_rgb: Keep the frames in ``Episode.rgb`` (ignored for state-only envs).
        max_ahead: Start episode ``j`` only while ``j < i + max_ahead``, where ``i`` is the lowest episode
            index not yet yielded; slots wait idle otherwise. A consumer that releases episodes in index
            order then buffers fewer than ``max_ahead`` of them, however long one episode runs (a
            600-step time-out among 100-step successes). ``None``: no window (every free slot starts the
            next episode at once). Episodes do not depend on the window, only the order they finish in.

    Yields:
        :class:`Episode` objects in order of completion (``episode_index`` gives the seed position).

    Raises:
        ConfigError: a seed is not a non-negative integer; the policy returns a wrong shape / NaN;
            ``max_ahead`` is not a positive integer.
    """
    seeds = [task.check_seed(s) for s in episode_seeds]
    if max_ahead is not None and (isinstance(max_ahead, bool) or not isinstance(max_ahead, int) or max_ahead < 1):
        raise ConfigError(f"max_ahead must be a positive integer or None, got {max_ahead!r}")
    if not seeds:
        return
    n = env.num_envs
    window = len(seeds) if max_ahead is None else max_ahead
    mode = env.metadata["autoreset_mode"]
    keep_rgb = record_rgb and env.render_enabled
    copies = transfer.HostCopies(getattr(env, "device", "cpu"))
    slots: list[_Slot | None] = [None] * n
    first = min(n, len(seeds), window)
    mask = np.zeros(n, dtype=bool)
    mask[:first] = True
    if first < n:  # idle slots get whatever episode the env draws; their rows are ignored
        env.reset(options={"reset_mask": ~mask})
    obs, info = env.reset(options={"reset_mask": mask, "episode_seeds": seeds[:first]})
    torch_obs = isinstance(obs["privileged_state"], torch.Tensor)  # episodes then carry rgb_device
    for i in range(first):
        slots[i] = _Slot(i, seeds[i])
    next_seed = first
    while any(s is not None for s in slots):
        actions = np.asarray(_as_numpy(policy_fn(obs, info)), dtype=np.float64)
        if actions.shape != (n, 2):
            raise ConfigError(f"policy_fn must return actions of shape ({n}, 2), got {actions.shape}")
        wanted = ("rgb", "privileged_state") if keep_rgb else ("privileged_state",)
        observed = {k: _rows_source(obs[k]) for k in wanted}
        for i, slot in enumerate(slots):
            if slot is None:
                continue
            slot.keep(observed, i)
            slot.instructions.append(info["instruction"][i])
        obs, reward, terminated, truncated, info = env.step(actions)
        done = terminated | truncated
        final_info, final_obs = info, obs
        if mode == AutoresetMode.SAME_STEP and done.any():
            final_info, final_obs = info["final_info"], info["final_obs"]
        final_state = copies.copy({"privileged_state": final_obs["privileged_state"]}) if done.any() else None
        clipped = np.clip(actions, -1.0, 1.0).astype(np.float32)
        seeded = np.zeros(n, dtype=bool)  # slots starting the next seed's episode
        seeded_seeds: list[int] = []
        idle = np.zeros(n, dtype=bool)  # idle slots that must be reset to keep stepping (disabled mode)
        finished: list[Episode] = []
        for i, slot in enumerate(slots):
            if slot is None:
                idle[i] = bool(done[i]) and mode == AutoresetMode.DISABLED
                continue
            slot.actions.append(clipped[i].copy())
            slot.wheels.append(np.array(info["wheel_speeds_radps"][i], dtype=np.float32))
            slot.rewards.append(float(reward[i]))
            slot.wrong |= bool(info["reached_wrong_sphere"][i])
            if not done[i]:
                continue
            finished.append(_finish(env, slot, final_info, final_state, i, keep_rgb, copies, torch_obs))
            slots[i] = None
            idle[i] = mode == AutoresetMode.DISABLED
        # Free slots (just finished or waiting on the window) start the next episodes the window allows.
        lowest_unfinished = min((s.episode_index for s in slots if s is not None), default=next_seed)
        limit = min(len(seeds), lowest_unfinished + window)
        for i in range(n):
            if next_seed >= limit:
                break
            if slots[i] is None:
                slots[i] = _Slot(next_seed, seeds[next_seed])
                seeded[i], idle[i] = True, False
                seeded_seeds.append(seeds[next_seed])
                next_seed += 1
        if idle.any():
            obs, info = env.reset(options={"reset_mask": idle})
        if seeded.any():
            obs, info = env.reset(options={"reset_mask": seeded, "episode_seeds": seeded_seeds})
        if finished and any(ep.rgb_device is not None for ep in finished):
            transfer.wait_for_device(getattr(env, "device", "cpu"))  # the stacked device frames are complete
        yield from finished


def _finish(
    env: Any,
    slot: _Slot,
    final_info: dict[str, Any],
    final_state: transfer.HostFrames | None,
    i: int,
    keep_rgb: bool,
    copies: transfer.HostCopies,
    torch_obs: bool,
) -> Episode:
    termination = str(final_info["termination"][i])
    num_steps = int(final_info["env_steps"][i])
    if num_steps != len(slot.actions):
        raise AssertionError(f"episode step counter {num_steps} != recorded steps {len(slot.actions)}")
    assert final_state is not None
    final = final_state.numpy()["privileged_state"][i]  # waits for this step's copy
    # One stacking per array; device rows are stacked on the device and copied to the host once.
    stacked = {
        k: (torch.stack(rows) if isinstance(rows[0], torch.Tensor) else np.stack(rows))
        for k, rows in slot.observed.items()
    }
    slot.observed.clear()
    on_device = {k: v for k, v in stacked.items() if isinstance(v, torch.Tensor)}
    host = {**stacked, **copies.copy(on_device).numpy()} if on_device else stacked
    rgb = host["rgb"] if keep_rgb else None
    rgb_device = None
    if keep_rgb and torch_obs:
        rgb_device = on_device.get("rgb", None)
        if rgb_device is None:  # CPU tensors: the device frames are the host array
            rgb_device = torch.from_numpy(rgb)
    return Episode(
        episode_index=slot.episode_index,
        episode_seed=slot.episode_seed,
        start=task.sample_episode_start(env.config, slot.episode_seed),
        target_index=int(final_info["target_index"][i]),
        target_color=str(final_info["target_color"][i]),
        termination=termination,
        success=termination == "success",
        num_steps=num_steps,
        reached_wrong_sphere=slot.wrong,
        nearest_sphere_index=int(final_info["nearest_sphere_index"][i]),
        rgb=rgb,
        privileged_state=np.asarray(host["privileged_state"], dtype=np.float32),
        actions=np.stack(slot.actions),
        wheel_speeds_radps=np.stack(slot.wheels),
        rewards=np.asarray(slot.rewards, dtype=np.float32),
        instructions=slot.instructions,
        final_privileged_state=np.asarray(final, dtype=np.float32),
        rgb_device=rgb_device,
    )


def _rows_source(values: Any) -> Any:
    """A step's batch array as the rows are copied from: numpy for host data (CPU tensors share memory),
    the tensor itself on a device (rows are copied there)."""
    if isinstance(values, torch.Tensor) and values.device.type == "cpu":
        return values.detach().numpy()
    return values


def _as_numpy(actions: Any) -> Any:
    if hasattr(actions, "detach"):
        return actions.detach().cpu().numpy()
    return actions
