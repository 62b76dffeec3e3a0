"""`vlnav-data embed --ray`: workers compute embeddings of episode ranges, the driver alone writes.

:func:`embed_on_executor` is the embedding stage of :func:`vlnav_data.collect.embed.embed_dataset` when
``config.executor.kind == "ray"``; the checks before it and the copy, rename and cleanup after it are
the local run's, unchanged.

1. One task builds the encoders on a worker and returns their entries (dtype, device type, library
   versions as the workers see them: this process may have no GPU and no weights) and the embeddings
   of the instructions no episode uses. An encoder that cannot be built fails here, once.
2. The driver opens (or resumes) the sidecar with those entries, so every check of a local resume
   applies (same input, plan, models; precisions not mixed), and submits one task per range of
   ``episodes_per_task`` consecutive uncommitted episodes.
3. A task checks that it sees the driver's input file (same fingerprint: a filesystem every node mounts
   at the same path), reads its episodes' frames, embeds them with
   :class:`~vlnav_data.collect.embed.embedder.EpisodeEmbedder` under the same rules as a local run, and
   returns the arrays; it writes nothing. It checks that it built the same encoders as step 1 (a node
   with other library versions or another device type would otherwise mix them silently).
4. The driver commits the returned episodes in episode order as they arrive (a range that finishes
   before an earlier one waits in memory), so the sidecar stays a committed prefix: a killed driver
   resumes with ``--resume`` and recomputes no committed episode.

Plain tasks through :mod:`vlnav_data.collect.executors`, not Ray Data. The executor already has what
this needs and is tested for it: CPUs/GPUs per task, retries of a lost worker or node (a retried
range is simply computed again: a task writes nothing, so there is nothing to clean up), progress
events, the loopback and teardown rules, one error line when a task fails. Ray Data would bring its
own dependencies (pyarrow, pandas), its own scheduling (blocks, backpressure, actor pools) and
retries that are again task retries, and its output would have to be put back in episode order for
the sidecar anyway; contiguous ranges in order are what the sidecar's prefix commits need.

Arrays: with per-episode batching (the CPU default) every episode's arrays are a function of that
episode alone, so a Ray embed equals a local one bit for bit when both run the same number of torch
threads (a task runs one per reserved CPU, ``--cpus-per-task``; torch's CPU kernels round differently
with another thread count: with ``siglip-tiny-random`` about one float16 component in 2,000 moves by
one step, whichever executor ran it). With cross-episode batching (the CUDA
default) batches fill up within a task's range, so batch boundaries differ from a local run's; the
values then agree within the encoders' batch invariance
(:data:`~vlnav_data.collect.embed.embedder.CROSS_EPISODE_TOLERANCE`), as between any two such runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.collect.embed.checks import EmbedInput, demo_listing
from vlnav_data.collect.embed.config import EmbedConfig, EmbedTaskOutcome, EmbedTaskState, ProgressFn
from vlnav_data.collect.embed.embedder import (
    Batching,
    EpisodeEmbedder,
    EpisodeEmbeddings,
    encode_texts_one_by_one,
    encoder_entry,
)
from vlnav_data.collect.embed.stage import Committer, EmbedStage, make_encoders, stream_episodes, text_rows
from vlnav_data.collect.executors import TaskContext, TaskEvent, make_executor, working_directory
from vlnav_data.dataset import EncoderEntry
from vlnav_data.dataset.reader import open_h5
from vlnav_data.dataset.sidecar import EmbeddingSidecar, input_fingerprint
from vlnav_data.devices import resolve_device
from vlnav_data.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class EncoderTask:
    """What the driver sends to the task that builds the encoders first (picklable).

    Attributes:
        config: the embed configuration (how to build the encoders).
        file: the input, as an absolute path.
        fingerprint: the input's fingerprint as the driver sees it.
        cwd: the driver's working directory (a relative ``hf:`` model directory is relative to it).
        texts: instructions no episode uses, to embed once.
    """

    config: EmbedConfig
    file: str
    fingerprint: dict[str, Any]
    cwd: str
    texts: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EncoderReport:
    """What that task returns: the encoders as the workers build them.

    Attributes:
        entries: one entry per encoder, in config order.
        batching: the device they ran on (``cuda`` when the task was given a GPU) and the batching there.
        texts: encoder name -> ``(len(texts), E)`` embeddings of :attr:`EncoderTask.texts`.
        node: where the task ran.
    """

    entries: tuple[EncoderEntry, ...]
    batching: Batching
    texts: dict[str, np.ndarray] = field(default_factory=dict)
    node: str = ""


@dataclass(frozen=True, kw_only=True)
class RangeTask:
    """One range of consecutive episodes to embed (picklable).

    Attributes:
        config / file / fingerprint / cwd: as in :class:`EncoderTask`.
        first_episode: index of the first episode of the range in the input.
        demo_names: the range's demos, in order.
    """

    config: EmbedConfig
    file: str
    fingerprint: dict[str, Any]
    cwd: str
    first_episode: int
    demo_names: tuple[str, ...]


@dataclass(eq=False)
class RangeEmbeddings:
    """What a range task returns: one :class:`EpisodeEmbeddings` per episode, in order.

    Attributes:
        first_episode: index of the first episode.
        episodes: the embeddings.
        entries: the encoders that computed them.
        frames: frames embedded.
        encode_s: time inside the encoders.
        node: where the task ran.
    """

    first_episode: int
    episodes: list[EpisodeEmbeddings]
    entries: tuple[EncoderEntry, ...]
    frames: int
    encode_s: float
    node: str


def embed_on_executor(
    config: EmbedConfig,
    src: Path,
    info: EmbedInput,
    open_sidecar: Callable[[Sequence[EncoderEntry]], EmbeddingSidecar],
    progress: ProgressFn | None,
) -> EmbedStage:
    """The embedding stage on ``config.executor``: tasks compute, this process commits in order.

    Args:
        config: the embed configuration.
        src: the input file.
        info: what the driver read from it.
        open_sidecar: opens (creates or resumes) the sidecar with the given encoder entries.
        progress: called after every commit and every task event.

    Returns:
        The stage's outcome, for :class:`~vlnav_data.collect.embed.config.EmbedResult`.

    Raises:
        ConfigError: no cluster, no node that fits a task, a node that does not see the input, encoders
            that differ between nodes, or a sidecar that does not match (see ``EmbeddingSidecar``).
        ExecutorError: a task failed beyond its retries (rerun with ``--resume``).
    """
    file = str(src.absolute())
    with make_executor(config.executor) as executor:
        executor.check_resources("task")
        _, unused = text_rows(info)
        first = EncoderTask(
            config=config,
            file=file,
            fingerprint=dict(info.fingerprint),
            cwd=os.getcwd(),
            texts=tuple(info.instructions[row] for row in unused),
        )
        (report,) = executor.run(_build_encoders, [first])
        sidecar = open_sidecar(list(report.entries))
        try:
            committer = Committer(info, sidecar, progress)
            if committer.unused_rows:
                committer.write_text_rows(report.texts)
            tasks = _ranges(config, info, file, committer.start)
            tracker = _Tracker(tasks, committer)
            waiting: dict[int, RangeEmbeddings] = {}
            next_task = 0

            def on_result(i: int, result: RangeEmbeddings) -> tuple[int, float, str]:
                nonlocal next_task
                _check_same_encoders(report, result)
                waiting[i] = result
                while next_task in waiting:  # commit in episode order; later ranges wait here
                    ready = waiting.pop(next_task)
                    for k, emb in enumerate(ready.episodes):
                        committer.commit(ready.first_episode + k, emb)
                    next_task += 1
                return result.frames, result.encode_s, result.node

            done = executor.run(_embed_range, tasks, on_event=tracker.on_event, on_result=on_result)
            outcomes = tuple(
                EmbedTaskOutcome(
                    task_index=i,
                    first_episode=task.first_episode,
                    num_episodes=len(task.demo_names),
                    attempts=tracker.states[i].attempt,
                    node=node,
                    frames=frames,
                    encode_s=encode_s,
                )
                for i, (task, (frames, encode_s, node)) in enumerate(zip(tasks, done, strict=True))
            )
            total_encode_s = float(sum(o.encode_s for o in outcomes))
            return committer.finish(encode_s=total_encode_s, batching=report.batching, tasks=outcomes)
        except BaseException:
            sidecar.close()  # committed episodes stay for --resume
            raise


def _ranges(config: EmbedConfig, info: EmbedInput, file: str, start: int) -> list[RangeTask]:
    """The uncommitted episodes ``start..n-1`` in ranges of ``config.episodes_per_task``."""
    n = len(info.demo_names)
    step = config.episodes_per_task
    return [
        RangeTask(
            config=config,
            file=file,
            fingerprint=dict(info.fingerprint),
            cwd=os.getcwd(),
            first_episode=a,
            demo_names=info.demo_names[a : min(a + step, n)],
        )
        for a in range(start, n, step)
    ]


def _check_same_encoders(report: EncoderReport, result: RangeEmbeddings) -> None:
    for want, got in zip(report.entries, result.entries, strict=True):
        if want != got:
            differ = [f.name for f in dataclasses.fields(want) if getattr(want, f.name) != getattr(got, f.name)]
            raise ConfigError(
                f"encoder '{want.name}' was built differently on {result.node} than on {report.node} ("
                + "; ".join(f"{k}: {getattr(want, k)!r} vs {getattr(got, k)!r}" for k in differ)
                + "); one file records one precision and one set of versions per encoder: install the same "
                "environment on every node (and give every task the same kind of device)"
            )


# ---------------------------------------------------------------------------------------- in the tasks
def _open_input(file: str, fingerprint: dict[str, Any], node: str) -> Any:
    """Open the input on a worker, refusing a file that is not the one the driver checked."""
    path = Path(file)
    if not path.is_file():
        raise ConfigError(
            f"node {node} does not see '{file}': FILE must be on a filesystem every node mounts at the same "
            "path (NFS, Lustre, ...)"
        )
    f = open_h5(path)
    now = input_fingerprint(path, f)
    if now != fingerprint:
        f.close()
        raise ConfigError(
            f"node {node} sees another '{file}' than the driver (driver: {fingerprint}; node: {now}): FILE must "
            "be on a filesystem every node mounts at the same path, and must not change while embed runs"
        )
    return f


def _encoders_here(config: EmbedConfig, cwd: str) -> tuple[list[Any], Batching]:
    """Build the encoders in this task (in the driver's working directory where this node has it, so a
    relative ``hf:`` directory means the same), and their batching on this node's device."""
    device = resolve_device(config.device, "--device")
    with working_directory(cwd):
        encoders = make_encoders(config, device, None)
    return encoders, Batching.choose(encoders, device, config.cross_episode_batching, config.encoder_batch_size)


def _build_encoders(task: EncoderTask, ctx: TaskContext) -> EncoderReport:
    """The first task: build the encoders where the ranges will run, report them, embed unused texts."""
    _open_input(task.file, task.fingerprint, ctx.node).close()
    ctx.limit_threads()
    encoders, batching = _encoders_here(task.config, task.cwd)
    return EncoderReport(
        entries=tuple(encoder_entry(e.spec) for e in encoders),
        batching=batching,
        texts={e.spec.name: encode_texts_one_by_one(e, list(task.texts)) for e in encoders} if task.texts else {},
        node=ctx.node,
    )


def _embed_range(task: RangeTask, ctx: TaskContext) -> RangeEmbeddings:
    """One range task: read the range's episodes from the shared file, embed them, return the arrays."""
    with _open_input(task.file, task.fingerprint, ctx.node) as f:
        listing = demo_listing(f, task.demo_names)
    info = EmbedInput(
        **listing, entries=(), rebuild_command="", fingerprint=task.fingerprint, size_bytes=0
    )  # the range alone: episode k of the range is episode first_episode + k of the file
    ctx.limit_threads()
    encoders, batching = _encoders_here(task.config, task.cwd)
    config = task.config
    read_ahead = (
        config.read_ahead if config.read_ahead is not None else (4 if batching.device.startswith("cuda") else 0)
    )
    episodes: list[EpisodeEmbeddings | None] = [None] * len(task.demo_names)
    frames = 0

    def on_finished(finished: list[tuple[int, EpisodeEmbeddings]]) -> None:
        nonlocal frames
        for k, emb in finished:
            episodes[k] = emb
            frames += info.num_samples[k]
        if finished:
            ctx.report(episodes_done=sum(e is not None for e in episodes), frames_done=frames)

    embedder = EpisodeEmbedder(encoders, batch_frames=batching.batch_frames)
    encode_s = stream_episodes(Path(task.file), info, range(len(task.demo_names)), embedder, read_ahead, on_finished)
    if any(e is None for e in episodes):
        raise RuntimeError(f"task for episodes {task.first_episode}.. embedded {frames} frames but not every episode")
    return RangeEmbeddings(
        first_episode=task.first_episode,
        episodes=[e for e in episodes if e is not None],
        entries=tuple(encoder_entry(e.spec) for e in encoders),
        frames=frames,
        encode_s=encode_s,
        node=ctx.node,
    )


# ---------------------------------------------------------------------------------------- progress
class _Tracker:
    """Turns task events into :class:`EmbedTaskState` for the driver's progress reports."""

    def __init__(self, tasks: list[RangeTask], committer: Committer) -> None:
        self.committer = committer
        self.states = [
            EmbedTaskState(
                task_index=i,
                first_episode=t.first_episode,
                num_episodes=len(t.demo_names),
                state="pending",
                attempt=0,
                node="",
                pid=0,
                episodes_done=0,
            )
            for i, t in enumerate(tasks)
        ]

    def on_event(self, event: TaskEvent) -> None:
        st = self.states[event.item]
        if event.kind == "started":
            st = dataclasses.replace(
                st, state="running", attempt=event.attempt, node=event.node, pid=event.pid, episodes_done=0
            )
        elif event.kind == "finished":
            st = dataclasses.replace(st, state="done", episodes_done=st.num_episodes)
        elif event.kind == "report" and event.attempt == st.attempt:
            st = dataclasses.replace(st, episodes_done=int(event.fields["episodes_done"]))
        self.states[event.item] = st
        self.committer.tasks = tuple(self.states)
        self.committer.report()
