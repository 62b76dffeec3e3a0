"""The embedding stage of `vlnav-data embed` in this process: every uncommitted episode of the input is
read (a reader thread decodes ahead when ``read_ahead`` > 0), embedded with
:class:`~vlnav_data.collect.embed.embedder.EpisodeEmbedder` and committed to the sidecar in input order by
:class:`Committer`, which also reports progress.

:func:`vlnav_data.collect.embed.embed_dataset` runs :func:`embed_here` and then assembles the output; on
Ray, :mod:`~vlnav_data.collect.embed.tasks` reuses :class:`Committer`, :func:`stream_episodes`,
:func:`make_encoders` and :func:`text_rows` and returns the same :class:`EmbedStage`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.collect import queues
from vlnav_data.collect.embed.checks import EmbedInput
from vlnav_data.collect.embed.config import EmbedConfig, EmbedProgress, EmbedTaskOutcome, EmbedTaskState, ProgressFn
from vlnav_data.collect.embed.embedder import (
    Batching,
    EpisodeEmbedder,
    EpisodeEmbeddings,
    EpisodeFrames,
    encode_texts_one_by_one,
    encoder_entry,
)
from vlnav_data.dataset import EncoderEntry, schema
from vlnav_data.dataset.reader import open_h5
from vlnav_data.dataset.sidecar import EmbeddingSidecar
from vlnav_data.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class EmbedStage:
    """What the embedding stage did, wherever it ran.

    Attributes:
        entries: the encoders' entries as the finished sidecar holds them (precision combined on resume).
        resumed: episodes the sidecar held when the stage started.
        frames: frames embedded by this run.
        encode_s: time inside the encoders; embed_s: wall time of the stage.
        batching: where and how the encoders ran.
        tasks: executor tasks (``ray``).
        compile_s / compiled: ``--compile`` in this process: seconds spent compiling before the stage's clock,
            and the encoders compiled (Ray tasks compile at their first batch, inside their own time).
    """

    entries: tuple[EncoderEntry, ...]
    resumed: int
    frames: int
    encode_s: float
    embed_s: float
    batching: Batching
    tasks: tuple[EmbedTaskOutcome, ...] = ()
    compile_s: float = 0.0
    compiled: tuple[str, ...] = ()


def make_encoders(config: EmbedConfig, device: str, injected: Sequence[Any] | None) -> list[Any]:
    """The encoders of ``config`` on ``device`` (``injected`` ones instead, when given), in ``config.encoders`` order.

    Raises:
        ConfigError: their names differ from ``config.encoder_names``.
        EncoderError: an encoder cannot be built.
    """
    if injected is not None:
        encoders = list(injected)
    else:
        from vlnav_data.encoders import compile_supported, make_encoder

        encoders = [
            make_encoder(
                value,
                device=device,
                dtype=config.encoder_dtype,
                batch_size=config.encoder_batch_size,
                trust_remote_code=config.trust_remote_code,
                compile=config.compile and compile_supported(value),
            )
            for value in config.encoders
        ]
    names = tuple(e.spec.name for e in encoders)
    if names != config.encoder_names:
        raise ConfigError(f"the encoders are named {list(names)}, but the config names {list(config.encoder_names)}")
    return encoders


def embed_here(
    config: EmbedConfig,
    src: Path,
    info: EmbedInput,
    device: str,
    injected: Sequence[Any] | None,
    open_sidecar: Callable[[Sequence[EncoderEntry]], EmbeddingSidecar],
    progress: ProgressFn | None,
) -> EmbedStage:
    """The embedding stage in this process: every uncommitted episode into the sidecar, in order.

    Args:
        config: the run; src / info: the input and what was read from it up front.
        device: the resolved device; injected: already-built encoders (or None).
        open_sidecar: opens (or reopens, on resume) the sidecar for the encoders' entries.
        progress: called after every committed episode.

    Returns:
        What the stage did; the sidecar is finished (complete, closed) when it returns.
    """
    encoders = make_encoders(config, device, injected)
    privileged = [e.spec.name for e in encoders if getattr(e.spec, "privileged", False)]
    if privileged and not info.has_arena:
        raise ConfigError(
            f"encoder(s) {', '.join(privileged)} read the arena's privileged state, which '{src}' (imported, no arena) "
            "does not have; choose an encoder that reads frames and text"
        )
    sidecar = open_sidecar([encoder_entry(enc.spec) for enc in encoders])
    batching = Batching.choose(encoders, device, config.cross_episode_batching, config.encoder_batch_size)
    compile_s, compiled = 0.0, ()
    try:
        if config.compile and sidecar.committed < len(info.demo_names):  # before the stage's clock (the committer's)
            from vlnav_data.encoders import warm_up_compiled

            compile_s, compiled = warm_up_compiled(encoders, *info.frame_hw)
        read_ahead = config.read_ahead if config.read_ahead is not None else (4 if device.startswith("cuda") else 0)
        embedder = EpisodeEmbedder(encoders, batch_frames=batching.batch_frames)
        committer = Committer(info, sidecar, progress)
        indices = range(committer.start, len(info.demo_names))
        encode_s = stream_episodes(src, info, indices, embedder, read_ahead, committer.commit_all)
        if committer.unused_rows:  # rows no demo refers to: embedded once, at the end
            texts = [info.instructions[row] for row in committer.unused_rows]
            committer.write_text_rows({enc.spec.name: encode_texts_one_by_one(enc, texts) for enc in encoders})
        return committer.finish(encode_s=encode_s, batching=batching, compile_s=compile_s, compiled=tuple(compiled))
    except BaseException:
        sidecar.close()  # committed episodes stay for --resume
        raise


class Committer:
    """Appends finished episodes to the sidecar in input order and reports progress (one per run).

    Each episode is committed with the text rows it is the first to use (so a committed prefix always
    has its text rows); rows no episode uses are left for :meth:`write_text_rows` at the end.
    """

    def __init__(self, info: EmbedInput, sidecar: EmbeddingSidecar, progress: ProgressFn | None) -> None:
        self.info = info
        self.sidecar = sidecar
        self.progress = progress
        self.by_demo, self.unused_rows = text_rows(info)
        self.start = sidecar.committed
        self.frames = 0  # committed by this run
        self.frames_before = int(sum(info.num_samples[: self.start]))
        self.frames_total = int(sum(info.num_samples))
        self.tasks: tuple[EmbedTaskState, ...] = ()
        self.t0 = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.t0

    def commit(self, i: int, emb: EpisodeEmbeddings) -> None:
        """Commit demo ``i`` (the next one) and report progress."""
        rows = {
            name: {row: emb.text[name][self.info.instructions[row]] for row in self.by_demo.get(i, [])}
            for name in emb.text
        }
        self.sidecar.append(i, emb.image, emb.joint, rows)
        self.frames += self.info.num_samples[i]
        self.report()

    def commit_all(self, finished: list[tuple[int, EpisodeEmbeddings]]) -> None:
        """Commit each ``(index, embeddings)`` of ``finished``, in the order given (the input's)."""
        for i, emb in finished:
            self.commit(i, emb)

    def write_text_rows(self, vectors: dict[str, np.ndarray]) -> None:
        """Write the unused rows: ``vectors[name]`` holds one row per entry of :attr:`unused_rows`."""
        self.sidecar.write_text_rows(
            {name: dict(zip(self.unused_rows, rows, strict=True)) for name, rows in vectors.items()}
        )

    def finish(self, **measured: Any) -> EmbedStage:
        """Check that every episode is committed and mark the sidecar complete (it is closed and fsynced).

        Args:
            measured: the :class:`EmbedStage` fields the committer does not know (``encode_s``, ``batching``;
                ``tasks``, ``compile_s``, ``compiled``).

        Returns:
            The stage: the encoder entries as the sidecar holds them, the episodes it held at the start, the
            frames and wall time of this run, and ``measured``.
        """
        n = len(self.info.demo_names)
        if self.sidecar.committed != n:
            raise RuntimeError(f"embedded {self.sidecar.committed} of {n} episodes")
        elapsed, entries = self.elapsed_s, tuple(self.sidecar.entries)
        self.sidecar.finish()
        return EmbedStage(entries=entries, resumed=self.start, frames=self.frames, embed_s=elapsed, **measured)

    def report(self) -> None:
        """Send one ``embed`` :class:`EmbedProgress` to ``progress`` (nothing when it is None)."""
        if self.progress is None:
            return
        elapsed = self.elapsed_s
        rate = self.frames / elapsed if elapsed > 0 else 0.0
        left = self.frames_total - self.frames_before - self.frames
        self.progress(
            EmbedProgress(
                stage="embed",
                done=self.sidecar.committed,
                total=len(self.info.demo_names),
                frames_done=self.frames_before + self.frames,
                frames_total=self.frames_total,
                elapsed_s=elapsed,
                frames_per_s=rate,
                eta_s=left / rate if rate > 0 else None,
                tasks=self.tasks,
            )
        )


def text_rows(info: EmbedInput) -> tuple[dict[int, list[int]], list[int]]:
    """Instruction rows by the first demo that uses them, and the rows no demo uses."""
    first_use: dict[int, int] = {}  # instruction row -> first demo that uses it
    for i, index in enumerate(info.instruction_index):
        for row in np.unique(index):
            first_use.setdefault(int(row), i)
    by_demo: dict[int, list[int]] = {}
    for row, i in first_use.items():
        by_demo.setdefault(i, []).append(row)
    return by_demo, [row for row in range(len(info.instructions)) if row not in first_use]


FinishedFn = Callable[[list[tuple[int, EpisodeEmbeddings]]], None]


def stream_episodes(
    src: Path, info: EmbedInput, indices: range, embedder: EpisodeEmbedder, read_ahead: int, on_finished: FinishedFn
) -> float:
    """Read episodes ``indices`` of ``src`` in order, embed them, hand each finished batch of episodes to
    ``on_finished``; return the seconds spent inside the encoders."""
    encode_s = 0.0

    def encode(i: int, frames: EpisodeFrames | None) -> None:
        nonlocal encode_s
        t_enc = time.perf_counter()
        finished = embedder.add(i, frames) if frames is not None else embedder.flush()
        encode_s += time.perf_counter() - t_enc
        on_finished(finished)

    if not indices:
        return encode_s
    if read_ahead == 0:
        with open_h5(src) as f:
            for i in indices:
                encode(i, _read_episode(f, info, i))
        encode(-1, None)
        return encode_s
    stop = threading.Event()
    errors: list[BaseException] = []
    episodes: queue.Queue = queue.Queue(maxsize=read_ahead)
    reader = threading.Thread(
        target=_read_episodes,
        args=(src, info, indices, episodes, stop, errors),
        name="vlnav-embed-reader",
        daemon=True,
    )
    reader.start()
    try:
        while True:
            item = queues.get(episodes, stop)
            if item is None:
                break
            encode(*item)
        encode(-1, None)
    except queues.Stopped:
        pass
    finally:
        stop.set()
        reader.join(timeout=30)
    if errors:
        raise errors[0]
    return encode_s


def _read_episodes(
    src: Path,
    info: EmbedInput,
    indices: Sequence[int],
    out: queue.Queue,
    stop: threading.Event,
    errors: list[BaseException],
) -> None:
    """Reader thread: decode frames, states and instructions of ``indices`` in order into ``out``."""
    try:
        with open_h5(src) as f:
            for i in indices:
                queues.put(out, (i, _read_episode(f, info, i)), stop)
        queues.put(out, None, stop)
    except queues.Stopped:
        return
    except BaseException as exc:  # handed to the main thread, which re-raises it
        errors.append(exc)
        stop.set()


def _read_episode(f: Any, info: EmbedInput, i: int) -> EpisodeFrames:
    """Frames, states and per-step instructions of demo ``i`` of the open input."""
    g = f["data"][info.demo_names[i]]
    rgb = g[schema.RGB][()]
    return EpisodeFrames(
        rgb=rgb,  # a file without an arena (imported) has no privileged state: (T, 0), which no encoder reads
        privileged_state=g[schema.PRIVILEGED_STATE][()]
        if schema.PRIVILEGED_STATE in g
        else np.zeros((len(rgb), 0), np.float32),
        instructions=[info.instructions[k] for k in info.instruction_index[i]],
    )
