"""The build's pipeline: rollouts -> frames -> embeddings -> HDF5, with the encoder kept busy.

Three stages overlap:

1. a simulation thread runs :func:`vlnav_data.sim.rollout` (the only episode loop) over batched arenas
   with the expert acting, and queues whole episodes;
2. the calling thread embeds the episodes with every encoder (:mod:`vlnav_data.collect.embed.embedder`, the
   computation `vlnav-data embed` shares; text embeddings once per distinct instruction, cached) and
   releases finished episodes in index order (the rollout runs at most ``REORDER_WINDOW_PER_ENV x
   num_envs`` episodes ahead, which bounds memory);
3. a writer thread appends them to the HDF5 file (bounded queue), so the encoder never waits on disk.

DART noise is drawn from the episode seed and step (:func:`dart_noise`), so it does not depend on the batch
slot an episode ran in. :func:`vlnav_data.collect.build.build_dataset` sets the pipeline up and reports.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlnav_data.collect import queues
from vlnav_data.collect.config import EpisodeLabelling
from vlnav_data.collect.embed.embedder import (
    EpisodeEmbedder,
    EpisodeEmbeddings,
    EpisodeFrames,
)
from vlnav_data.dataset import DatasetWriter, EpisodeRecord
from vlnav_data.dataset.splits import episode_seed, episode_split


@dataclass(frozen=True, kw_only=True)
class BuildProgress:
    """Progress of a build, reported after every episode written.

    Attributes:
        episodes_done: episodes in the file (including those found on resume).
        episodes_total: episodes this build (shard) will hold.
        frames_done: frames written by this run.
        elapsed_s: seconds since this run started.
        frames_per_s: frames written per second by this run.
        eta_s: estimated seconds left (None before the first episode).
    """

    episodes_done: int
    episodes_total: int
    frames_done: int
    elapsed_s: float
    frames_per_s: float
    eta_s: float | None


ProgressFn = Callable[[BuildProgress], None]


_NOISE_STREAM = 0xDA27


def dart_noise(seeds: np.ndarray, steps: np.ndarray, std: float) -> np.ndarray:
    """Gaussian action noise ``(N, 2)`` drawn from (episode seed, step): independent of batch slot."""
    rows = [
        np.random.default_rng([int(s), int(t), _NOISE_STREAM]).normal(0.0, std, 2)
        for s, t in zip(seeds, steps, strict=True)
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 2)


# Episodes finish out of order but are written in index order (demo_i is episode i of the shard, and a
# resumed build continues after the longest finished prefix), so finished episodes wait in a reorder
# buffer. The rollout may start episode j only while j < (lowest unfinished index) + this x num_envs, so one
# long episode (a 600-step time-out among 100-step successes) cannot make the buffer grow without bound:
# at most ~3 x num_envs + the queue sizes episodes (frames included) are in memory at once.
REORDER_WINDOW_PER_ENV = 2


def run_pipeline(
    *,
    env_factory: Callable[[int], Any],
    expert: Any,
    embedder: EpisodeEmbedder,
    writer: DatasetWriter,
    todo: list[int],
    total: int,
    labelling: EpisodeLabelling,
    num_envs: int,
    writer_queue_size: int,
    progress: ProgressFn | None,
    device: str = "cpu",
) -> dict[str, float]:
    """Roll out, embed and write the episodes ``todo`` (global indices, in order) through the three stages.

    Args:
        env_factory: ``env_factory(n)`` -> an arena of ``n`` environments (``min(num_envs, len(todo))``).
        expert: ``expert(obs, info)`` -> actions, with ``actions(privileged_state)`` for DART labels.
        embedder: the per-episode embedder (its batching decided by the caller).
        writer: the open writer; episodes are appended in index order.
        todo / total: the episodes to write now / episodes the file (shard) will hold.
        labelling: the seeds, labels and split of each episode (:class:`EpisodeLabelling`).
        num_envs / writer_queue_size: arenas stepped together / records waiting for the writer at most.
        progress: called after every episode written.
        device: where the frames are rendered (on CUDA the simulation runs on a stream of its own).

    Returns:
        ``frames`` written, ``encode_s`` inside the encoders, ``pipeline_s`` first rollout to last write.
    """
    from vlnav_data.sim import rollout

    stats = {"frames": 0, "encode_s": 0.0, "pipeline_s": 0.0}
    if not todo:
        return stats
    stop = threading.Event()
    errors: list[BaseException] = []
    episodes: queue.Queue = queue.Queue(maxsize=4)  # finished episodes waiting for the encoder
    records: queue.Queue = queue.Queue(maxsize=writer_queue_size)
    seeds = [episode_seed(labelling.seed, i) for i in todo]
    t0 = time.perf_counter()

    def put(q: queue.Queue, item: Any) -> None:
        queues.put(q, item, stop)

    def simulate() -> None:
        try:
            with _own_cuda_stream(device):
                _simulate()
        except queues.Stopped:
            return
        except BaseException as exc:  # handed to the main thread, which re-raises it
            errors.append(exc)
            stop.set()

    def _simulate() -> None:
        env = env_factory(min(num_envs, len(todo)))

        def policy(obs: dict[str, np.ndarray], info: dict[str, Any]) -> Any:
            if stop.is_set():  # torn down: end within one step, not at the next finished episode
                raise queues.Stopped
            if labelling.noise_std <= 0:
                return expert(obs, info)
            clean = np.asarray(expert(obs, info), dtype=np.float64)
            noise = dart_noise(info["episode_seed"], info["env_steps"], labelling.noise_std)
            return np.clip(clean + noise, -1.0, 1.0)

        for ep in rollout(env, policy, seeds, max_ahead=REORDER_WINDOW_PER_ENV * env.num_envs):
            put(episodes, ep)
        put(episodes, None)

    def write() -> None:
        written = 0
        try:
            while True:
                rec = queues.get(records, stop)
                if rec is None:
                    return
                writer.append_episode(rec)
                written += 1
                stats["frames"] += rec.num_steps
                if progress is not None:
                    elapsed = time.perf_counter() - t0
                    rate = stats["frames"] / elapsed if elapsed > 0 else 0.0
                    left = len(todo) - written
                    eta = elapsed / written * left
                    progress(
                        BuildProgress(
                            episodes_done=writer.num_episodes,
                            episodes_total=total,
                            frames_done=int(stats["frames"]),
                            elapsed_s=elapsed,
                            frames_per_s=rate,
                            eta_s=eta,
                        )
                    )
        except queues.Stopped:
            return
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    sim_thread = threading.Thread(target=simulate, name="vlnav-build-sim", daemon=True)
    write_thread = threading.Thread(target=write, name="vlnav-build-writer", daemon=True)
    sim_thread.start()
    write_thread.start()
    pending: dict[int, EpisodeRecord] = {}
    waiting: dict[int, Any] = {}  # episodes whose embeddings are not finished yet
    next_pos = 0

    def release(finished: list[tuple[int, EpisodeEmbeddings]]) -> None:
        nonlocal next_pos
        for pos, emb in finished:
            pending[pos] = episode_record(labelling, waiting.pop(pos), todo[pos], expert, emb)
        while next_pos in pending:  # release in index order
            put(records, pending.pop(next_pos))
            next_pos += 1

    try:
        while True:
            ep = queues.get(episodes, stop)
            if ep is None:
                break
            if ep.rgb is None:
                raise RuntimeError("the arena was built without rendering; build_dataset needs frames")
            waiting[ep.episode_index] = ep
            t_enc = time.perf_counter()
            frames = EpisodeFrames(
                rgb=ep.rgb,
                privileged_state=ep.privileged_state,
                instructions=ep.instructions,
                rgb_device=getattr(ep, "rgb_device", None),
            )
            finished = embedder.add(ep.episode_index, frames)
            stats["encode_s"] += time.perf_counter() - t_enc
            release(finished)
        t_enc = time.perf_counter()
        finished = embedder.flush()
        stats["encode_s"] += time.perf_counter() - t_enc
        release(finished)
        if next_pos != len(todo):
            raise RuntimeError(f"rollout ended after {next_pos} of {len(todo)} episodes")
        put(records, None)
        write_thread.join()
    except queues.Stopped:
        pass
    except BaseException:
        stop.set()
        raise
    finally:
        if errors or stop.is_set():
            stop.set()
        # Joined without a timeout: a stopped thread ends within a step or an episode write (the writer
        # finishes the append it is in), and none is left running against the file after this returns.
        sim_thread.join()
        write_thread.join()
    if errors:
        raise errors[0]
    stats["pipeline_s"] = time.perf_counter() - t0
    return stats


def _own_cuda_stream(device: str) -> Any:
    """On CUDA: run the simulation thread on a stream of its own, so its kernels overlap the encoder's (which
    run on the main thread's default stream); rollout makes the frames it hands over safe to read from there
    (``vlnav_data.sim.rollout``). Elsewhere: nothing."""
    import contextlib

    if not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    import torch

    return torch.cuda.stream(torch.cuda.Stream(torch.device(device)))


def episode_record(
    labelling: EpisodeLabelling, ep: Any, global_index: int, expert: Any, emb: EpisodeEmbeddings
) -> EpisodeRecord:
    """Labels, embeddings and metadata of one finished :class:`vlnav_data.sim.Episode`."""
    if labelling.noise_std > 0:  # the label is the expert's clean action at the visited state
        labels = np.clip(np.asarray(expert.actions(ep.privileged_state), dtype=np.float32), -1.0, 1.0)
    else:
        labels = np.asarray(ep.actions, dtype=np.float32)
    texts = list(ep.instructions)
    t = ep.num_steps
    dones = np.zeros(t, dtype=np.uint8)
    dones[-1] = 1
    return EpisodeRecord(
        actions=labels,
        wheel_vel_radps=np.asarray(ep.wheel_speeds_radps, dtype=np.float32),
        rewards=np.asarray(ep.rewards, dtype=np.float32),
        dones=dones,
        rgb=ep.rgb,
        privileged_state=ep.privileged_state,
        instructions=texts,
        image_embeddings=emb.image,
        joint_embeddings=emb.joint,
        text_embeddings=emb.text,
        seed=int(ep.episode_seed),
        episode_index=int(global_index),
        target_index=int(ep.target_index),
        target_color=str(ep.target_color),
        termination=str(ep.termination),
        success=bool(ep.success),
        expert=labelling.expert,
        split=episode_split(labelling.seed, global_index, labelling.valid_fraction, labelling.split_rule),
        extra_attrs={
            "reached_wrong_sphere": bool(ep.reached_wrong_sphere),
            "nearest_sphere_index": int(ep.nearest_sphere_index),
            "executed_actions_noisy": bool(labelling.noise_std > 0),
        },
    )
