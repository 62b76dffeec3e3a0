"""`build_dataset(config)`: rollouts -> frames -> embeddings -> HDF5, with the encoder kept busy.

This module checks the config, loads the expert and the encoders, opens (or resumes) the writer and reports;
the three overlapping stages (simulation thread, encoder in the calling thread, writer thread) are
:mod:`vlnav_data.collect.pipeline`.

Frames take one trip to the host. The arena returns torch observations (``obs_backend="torch"``): the
encoders that take tensors read each episode's frames on the device they were rendered on, and the frames
go to host memory once, asynchronously (pinned buffers on a side stream, ``vlnav_data.sim.rollout``), for
the writer. On CUDA the simulation thread runs on a CUDA stream of its own, so its kernels overlap the
encoder's. ``--compile`` compiles the renderer and the two-tower encoders before the clock starts;
``BuildResult.compile_s`` reports that time apart from the frames/s.

Determinism: episode ``i`` starts from ``episode_seed(seed, i)``; DART noise is drawn from the episode
seed and step. On CPU frames are encoded per episode, so every per-episode array depends on that episode
alone and resuming, sharding and the number of arenas do not change the data. On CUDA batches span
episodes to fill the encoder (``cross_episode_batching``); embeddings then agree with the per-episode
ones within the encoders' batch invariance (:data:`~vlnav_data.collect.embed.embedder.CROSS_EPISODE_TOLERANCE`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.collect.config import LEGACY_VALUES, RESUME_MAY_DIFFER, BuildConfig
from vlnav_data.collect.embed.embedder import (
    Batching,
    EpisodeEmbedder,
    encoder_entry,
)
from vlnav_data.collect.pipeline import ProgressFn, run_pipeline
from vlnav_data.dataset import DatasetLayout, DatasetWriter
from vlnav_data.dataset.partial import preflight_output
from vlnav_data.dataset.splits import shard_indices
from vlnav_data.devices import resolve_device
from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import to_jsonable


@dataclass(frozen=True, kw_only=True)
class FileCounts:
    """What a complete file (a build's, or one shard's) holds, and how much of it this run wrote.

    Attributes:
        path: the complete file.
        num_episodes: demos in the file.
        num_steps: steps in the file.
        new_episodes / new_steps: written by this run (the rest were found on resume).
        resumed_episodes: committed episodes found in the ``.partial`` file when the run started.
    """

    path: Path
    num_episodes: int
    num_steps: int
    new_episodes: int
    new_steps: int
    resumed_episodes: int


@dataclass(frozen=True, kw_only=True)
class BuildResult(FileCounts):
    """Outcome of :func:`build_dataset`: the :class:`FileCounts` of the file, plus

    Attributes:
        success_rate: share of successful episodes in the file.
        elapsed_s: wall time of this run (models loaded to file renamed).
        frames_per_s: new_steps / time of the pipeline (first rollout to last write).
        encode_s: time spent inside the encoders.
        encoder_frames_per_s: new_steps * num_encoders / encode_s (what the encoders managed while busy).
        file_bytes: size of the file.
        bytes_per_frame: file_bytes / num_steps.
        device: device used.
        encoders: encoder names.
        expert: expert used.
        compile_s: seconds spent compiling (``--compile``) before the pipeline started; not part of
            ``frames_per_s`` or ``encode_s`` (it is part of ``elapsed_s``).
        compiled: what was compiled: ``renderer`` and the names of the compiled encoders.
    """

    success_rate: float
    elapsed_s: float
    frames_per_s: float
    encode_s: float
    encoder_frames_per_s: float
    file_bytes: int
    bytes_per_frame: float
    device: str
    encoders: tuple[str, ...]
    expert: str
    compile_s: float = 0.0
    compiled: tuple[str, ...] = ()


def arena_overrides(config: BuildConfig) -> dict[str, Any]:
    """The :class:`~vlnav_data.sim.ArenaConfig` fields a build config overrides."""
    kw: dict[str, Any] = {"instructions": config.instructions}
    if config.action_mapping is not None:
        kw["action_mapping"] = config.action_mapping
    if config.image_size_px is not None:
        kw["image_height_px"] = config.image_size_px
        kw["image_width_px"] = config.image_size_px
    if config.max_episode_steps is not None:
        kw["max_episode_steps"] = config.max_episode_steps
    return kw


def make_expert(config: BuildConfig, arena_config: Any, *, check_preset: bool = True) -> Any:
    """The expert policy: ``policy_fn(obs, info) -> (N, 2)`` with an ``actions(privileged_state)`` method.

    ``check_preset=False`` (an env factory's arena, which need not be a preset) checks the action mapping only.
    """
    from vlnav_data.expert import PursuitController, load_expert

    if config.expert == "pursuit":
        return PursuitController.for_arena(arena_config)
    preset = config.preset if check_preset else None
    return load_expert(config.expert_checkpoint, preset=preset, action_mapping=arena_config.action_mapping)


def build_local(
    config: BuildConfig,
    progress: ProgressFn | None = None,
    *,
    encoders: Sequence[Any] | None = None,
    env_factory: Callable[[int], Any] | None = None,
) -> BuildResult:
    """Build (or resume, or build one shard of) a ``vlnav-demos`` dataset in this process.

    :func:`vlnav_data.collect.build_dataset` is the public entry point: it comes here for
    ``config.executor.kind == "local"``, and every shard task of a sharded build runs this too.

    Args:
        config: the build configuration; ``config.executor.kind == "ray"`` runs ``num_shards`` shards as
            Ray tasks and merges them (:func:`vlnav_data.collect.sharded.build_sharded`).
        progress: called (from the writer thread) after every episode written; for a Ray build, on the
            driver with a :class:`~vlnav_data.collect.sharded_progress.ShardedProgress`.
        encoders: already-built encoders to use instead of ``make_encoder`` (benchmarks inject a
            random-weight model of the real architecture); their ``spec.name`` must equal
            ``config.encoder_names``, in order.
        env_factory: ``env_factory(num_envs) -> env``: record this simulator instead of the arena of
            ``config.preset`` (any env that passes :func:`vlnav_data.sim.check_arena` and renders, e.g. an
            Isaac Lab task wrapped as in ``docs/simulator-backends.md``). ``env.config`` is the arena the file
            records; ``config.preset`` and the arena overrides of ``config`` (instructions, image size, action
            mapping, time limit) are then not used. A one-env instance is checked before any model loads;
            the rollouts step the env from a worker thread.

    Returns:
        :class:`BuildResult`.

    Raises:
        ConfigError: bad output path, lock held, resume with a different configuration, CUDA missing.
        EncoderError: an encoder's weights cannot be loaded (the message says how to fetch them).
        CheckpointError: the PPO checkpoint cannot be loaded.
    """
    if config.executor.kind != "local":
        raise ConfigError(
            f"build_local runs in this process; executor '{config.executor.kind}' goes through build_dataset"
        )
    from vlnav_data.encoders import compile_supported, make_encoder, warm_up_compiled
    from vlnav_data.sim import PRIVILEGED_STATE_NAMES, get_preset, make_arena

    t_start = time.perf_counter()
    mode = "resume" if config.resume else "overwrite" if config.overwrite else "create"
    preflight_output(config.out, mode, break_lock=config.break_lock)  # fail fast, before models load
    device = resolve_device(config.device)
    indices = shard_indices(config.num_episodes, config.shard_index, config.num_shards)
    overrides = arena_overrides(config)
    if env_factory is None:
        arena = dataclasses.replace(get_preset(config.preset), **overrides)
        env_kwargs: dict[str, Any] = {"preset": config.preset, **overrides}

        def env_factory(n: int) -> Any:
            # torch observations: frames reach the encoders where they were rendered (collect.embed.embedder)
            return make_arena(
                arena, num_envs=n, device=device, render=True, obs_backend="torch", compile_renderer=config.compile
            )

        expert = make_expert(config, arena)
        # the built-in renderer (MuJoCo renders with OpenGL; a factory's env compiles what it likes)
        renders_compiled = config.compile and arena.backend == "builtin"
    else:
        from vlnav_data.sim import check_env_factory

        arena = check_env_factory(env_factory, need_frames=True)
        env_kwargs = {"preset": arena.name, "env_factory": getattr(env_factory, "__qualname__", repr(env_factory))}
        expert = make_expert(config, arena, check_preset=False)
        renders_compiled = False
    paths = dict(config.model_paths)
    if encoders is None:
        encoders = [
            make_encoder(
                name,
                device=device,
                model_path=paths.get(name),
                dtype=config.encoder_dtype,
                batch_size=config.encoder_batch_size,
                trust_remote_code=config.trust_remote_code,
                compile=config.compile and compile_supported(name),
            )
            for name in config.encoders
        ]
    else:
        encoders = list(encoders)
        names = tuple(e.spec.name for e in encoders)
        if names != config.encoder_names:
            raise ConfigError(f"injected encoders are {list(names)}, but the config names {list(config.encoder_names)}")
    layout = DatasetLayout(
        image_height=arena.image_height_px,
        image_width=arena.image_width_px,
        state_names=tuple(PRIVILEGED_STATE_NAMES),
        encoders=tuple(encoder_entry(e.spec) for e in encoders),
        fps=1.0 / arena.dt_s,
        wheel_speed_limit_radps=arena.max_wheel_speed_radps,
        build_config=config.stored(),
        sim_config=to_jsonable(arena),
        env_name="vlnav/Arena-v0",
        env_kwargs=env_kwargs,
        rebuild_command=config.command(),
        camera={
            "hfov_rad": arena.camera_hfov_rad,
            "vfov_rad": arena.camera_vfov_rad,
            "height_m": arena.camera_height_m,
            "forward_offset_m": arena.camera_forward_offset_m,
        },
    )
    writer = DatasetWriter(
        config.out,
        layout,
        mode=mode,
        resume_ignore=RESUME_MAY_DIFFER,
        resume_absent=LEGACY_VALUES,
        allow_mixed_precision=config.allow_mixed_precision,
        break_lock=config.break_lock,
    )
    batching = Batching.choose(encoders, device, config.cross_episode_batching, config.encoder_batch_size)
    embedder = EpisodeEmbedder(encoders, batch_frames=batching.batch_frames)
    try:
        done = writer.episode_indices
        if tuple(indices[: len(done)]) != done:
            raise ConfigError(
                f"'{writer.partial}' holds episodes {list(done)[:8]}..., which are not the first episodes of "
                f"shard {config.shard_index}/{config.num_shards} of a {config.num_episodes}-episode build; "
                "use the original --num-episodes/--shard, or --overwrite"
            )
        todo = indices[len(done) :]
        resumed = len(done)
        compile_s, compiled = 0.0, ()
        if config.compile and todo:  # compile now, so the pipeline's clock measures throughput alone
            compile_s, compiled = warm_up_compiled(encoders, arena.image_height_px, arena.image_width_px)
            if renders_compiled:
                from vlnav_data.sim.render import warm_up_compiled as warm_up_renderer

                compile_s += warm_up_renderer(arena, device, min(config.num_envs, len(todo)))
                compiled = ("renderer", *compiled)
        stats = run_pipeline(
            env_factory=env_factory,
            expert=expert,
            embedder=embedder,
            writer=writer,
            todo=todo,
            total=len(indices),
            labelling=config.labelling(),
            num_envs=config.num_envs,
            writer_queue_size=config.writer_queue_size,
            progress=progress,
            device=device,
        )
        path = writer.finalize()
    except BaseException:
        writer.close()  # keeps <out>.partial for --resume; releases the lock
        raise
    from vlnav_data.dataset import DatasetReader

    with DatasetReader(path) as r:
        n_eps = len(r)
        n_steps = r.total_steps
        succ = sum(bool(r.file["data"][n].attrs["success"]) for n in r.demo_names)
    size = path.stat().st_size
    return BuildResult(
        path=path,
        num_episodes=n_eps,
        num_steps=n_steps,
        new_episodes=len(todo),
        new_steps=stats["frames"],
        resumed_episodes=resumed,
        success_rate=succ / n_eps if n_eps else 0.0,
        elapsed_s=time.perf_counter() - t_start,
        frames_per_s=stats["frames"] / stats["pipeline_s"] if stats["pipeline_s"] > 0 else 0.0,
        encode_s=stats["encode_s"],
        encoder_frames_per_s=(stats["frames"] * len(encoders) / stats["encode_s"]) if stats["encode_s"] > 0 else 0.0,
        file_bytes=size,
        bytes_per_frame=size / n_steps if n_steps else 0.0,
        device=device,
        encoders=tuple(config.encoders),
        expert=config.expert,
        compile_s=compile_s,
        compiled=tuple(compiled),
    )
