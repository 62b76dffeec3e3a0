"""Progress of a sharded build: where each shard stands and how many frames each node wrote, from the
executor's task events (:mod:`vlnav_data.collect.sharded` runs the build).

Events arrive asynchronously (on Ray a task's ``report`` can reach the driver after its ``finished``, and
a lost attempt's last report after its retry started), so the tracker only ever moves forward: a shard
that is ``done`` stays done with all its episodes, a shard's committed-episode count never decreases (a
retry resumes from the episodes the lost attempt committed, so a smaller count is a stale report), and a
node's frame count for an attempt never decreases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass

from vlnav_data.collect.executors import TaskEvent
from vlnav_data.collect.pipeline import BuildProgress, ProgressFn
from vlnav_data.dataset.splits import shard_indices


@dataclass(frozen=True, kw_only=True)
class ShardState:
    """Where one shard stands, as the driver last heard.

    Attributes:
        shard_index: the shard.
        state: ``pending`` (not started yet), ``running`` or ``done``.
        attempt: its current attempt (0 before the first start; 2 and more after lost workers or nodes).
        node: where the current attempt runs (``host/node-id``).
        pid: process id of the current attempt on its node.
        episodes_done / episodes_total: committed episodes in the shard file / episodes of the shard.
    """

    shard_index: int
    state: str
    attempt: int
    node: str
    pid: int
    episodes_done: int
    episodes_total: int


@dataclass(frozen=True, kw_only=True)
class ShardedProgress(BuildProgress):
    """:class:`BuildProgress` of a sharded build, plus where the work happens.

    Attributes:
        shards_total / shards_done / shards_running: shard counts (done includes those complete before).
        frames_per_node: frames written in this run per node (``host/node-id``).
        shards: one :class:`ShardState` per shard, in shard order.
    """

    shards_total: int
    shards_done: int
    shards_running: int
    frames_per_node: dict[str, int]
    shards: tuple[ShardState, ...] = ()


class ShardTracker:
    """Turns task events into :class:`ShardedProgress` for the caller's callback."""

    def __init__(
        self,
        *,
        num_episodes: int,
        num_shards: int,
        complete: Mapping[int, int],
        todo: list[int],
        progress: ProgressFn | None,
    ) -> None:
        """Start from the shards found complete.

        Args:
            num_episodes / num_shards: the build's episodes and how they are sharded.
            complete: the episodes of each shard complete before this run, by shard index.
            todo: the shard index of each executor item, in submission order.
            progress: the caller's callback (None: track only).
        """
        self.progress = progress
        self.todo = todo  # executor item -> shard index
        self.total = num_episodes
        self.states = {
            i: ShardState(
                shard_index=i,
                state="done" if i in complete else "pending",
                attempt=0,
                node="",
                pid=0,
                episodes_done=complete.get(i, 0),
                episodes_total=len(shard_indices(num_episodes, i, num_shards)),
            )
            for i in range(num_shards)
        }
        self.frames: dict[tuple[int, int], tuple[str, int]] = {}  # (shard, attempt) -> (node, frames)
        self.done_before = sum(complete.values())
        self.t0 = time.perf_counter()

    def on_event(self, event: TaskEvent) -> None:
        shard = self.todo[event.item]
        st = self.states[shard]
        if event.kind == "started":
            if st.state != "done" and event.attempt >= st.attempt:
                st = dataclasses.replace(st, state="running", attempt=event.attempt, node=event.node, pid=event.pid)
        elif event.kind == "finished":
            st = dataclasses.replace(st, state="done", episodes_done=st.episodes_total)
        elif event.kind == "report":
            reported = min(int(event.fields["episodes_done"]), st.episodes_total)
            st = dataclasses.replace(st, episodes_done=max(st.episodes_done, reported))
            key = (shard, event.attempt)
            frames = int(event.fields["frames_done"])
            if key not in self.frames or frames > self.frames[key][1]:
                self.frames[key] = (event.node, frames)
        self.states[shard] = st
        if self.progress is None:
            return
        per_node: dict[str, int] = {}
        for node, frames in self.frames.values():
            per_node[node] = per_node.get(node, 0) + frames
        frames_done = sum(per_node.values())
        states = tuple(self.states[i] for i in sorted(self.states))
        done = sum(s.episodes_done for s in states)
        elapsed = time.perf_counter() - self.t0
        new = done - self.done_before
        self.progress(
            ShardedProgress(
                episodes_done=done,
                episodes_total=self.total,
                frames_done=frames_done,
                elapsed_s=elapsed,
                frames_per_s=frames_done / elapsed if elapsed > 0 else 0.0,
                eta_s=elapsed / new * (self.total - done) if new > 0 else None,
                shards_total=len(states),
                shards_done=sum(s.state == "done" for s in states),
                shards_running=sum(s.state == "running" for s in states),
                frames_per_node=per_node,
                shards=states,
            )
        )
