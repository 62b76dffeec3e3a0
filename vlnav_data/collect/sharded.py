"""A build split into shards that run on an executor (Ray), then merged into one file.

``build_dataset(config)`` comes here when ``config.executor.kind == "ray"``. Each of the
``num_shards`` shards is the ordinary shardable, resumable build (``build_dataset`` with ``--shard i/K``
and ``--resume``) writing ``<out>.shards/shard-0000i-of-0000K.h5``; when every shard is complete, the
driver merges them into ``out`` (chunks copied raw), validates it and removes the shard directory.

What survives what:

- a worker process or a node lost mid-shard: Ray runs the shard again (``max_retries``); the new
  attempt resumes that shard's ``.partial`` file, so the episodes it had committed are not rebuilt.
  The lost attempt's lock is taken over: at once when its process is dead on this host, after Ray
  reports its node dead when it ran on another host, and after waiting up to :data:`LOCK_WAIT_S` for a
  live one (an attempt of a killed driver that Ray is still stopping).
- the driver itself killed: the same command with ``--resume`` skips the complete shards and resumes
  the partial ones (a complete shard is never rebuilt); an interrupted merge is simply redone.

``<out>.shards/`` must be on a filesystem every node mounts at the same path (NFS, Lustre, ...): every
task first checks that it reads the token the driver wrote there (``build-id``), so a node that sees
another directory fails with a message instead of writing shards nobody merges. Paths are made
absolute on the driver. Every episode depends on the build seed and its index alone, so the merged
file holds the same arrays as a single-process build with the same config.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from vlnav_data.collect.build import BuildResult, FileCounts, build_local
from vlnav_data.collect.config import BuildConfig
from vlnav_data.collect.executors import ExecutorConfig, TaskContext, make_executor
from vlnav_data.collect.pipeline import BuildProgress, ProgressFn
from vlnav_data.collect.sharded_progress import ShardTracker
from vlnav_data.dataset import DatasetReader, lock_path, partial_path
from vlnav_data.dataset.lock import LockHeldError, WriteLock
from vlnav_data.dataset.merge import merge_datasets
from vlnav_data.dataset.partial import config_differences, preflight_output
from vlnav_data.dataset.splits import shard_indices
from vlnav_data.errors import ConfigError, SchemaError

SHARDS_SUFFIX = ".shards"
BUILD_ID_NAME = "build-id"
LOCK_WAIT_S = 60.0
"""How long a shard attempt waits for a live holder of its shard's lock (a previous attempt being stopped)."""

_SHARD_RE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.h5(\.partial|\.lock)?$")
log = logging.getLogger(__name__)


def shards_dir(out: str | os.PathLike) -> Path:
    """``<out>.shards``: where the shards of a Ray build of ``out`` are written."""
    p = Path(out)
    return p.with_name(p.name + SHARDS_SUFFIX)


def shard_path(directory: Path, index: int, count: int) -> Path:
    """``shard-<index>-of-<count>.h5`` in ``directory`` (5-digit numbers, so names sort by index)."""
    return directory / f"shard-{index:05d}-of-{count:05d}.h5"


@dataclass(frozen=True, kw_only=True)
class ShardOutcome(FileCounts):
    """How one shard ended: the :class:`~vlnav_data.collect.build.FileCounts` of its file (``new_*``: written
    by the shard's last attempt; ``resumed_episodes``: already in the file when that attempt started, written
    by a lost attempt or an earlier run), plus

    Attributes:
        shard_index: the shard (``i`` of ``--shard i/K``).
        attempts: attempts of the shard in this run (0: it was complete before the run started).
        node: where the last attempt ran.
        encode_s: time the last attempt spent in the encoders.
        elapsed_s: wall time of the last attempt's build (models loaded to file renamed).
    """

    shard_index: int
    attempts: int
    node: str
    encode_s: float = 0.0
    elapsed_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ShardedBuildResult(BuildResult):
    """:class:`BuildResult` of a sharded build, plus one :class:`ShardOutcome` per shard.

    ``resumed_episodes`` counts the episodes found in shard files when each shard's last attempt
    started; ``frames_per_s`` is the frames of the last attempts over ``shards_s``, the time from
    submitting the shards to the last result (worker start-up included; Ray start and merge not).
    """

    shards: tuple[ShardOutcome, ...]
    executor: str
    shards_s: float
    merge_s: float
    merge_raw_datasets: int


@dataclass(frozen=True, kw_only=True)
class ShardTask:
    """What the driver sends to the task that builds one shard (picklable)."""

    config: BuildConfig
    directory: str
    build_id: str


def build_sharded(config: BuildConfig, progress: ProgressFn | None = None) -> ShardedBuildResult:
    """Build ``config.num_shards`` shards on ``config.executor``, merge them into ``config.out``, validate.

    Args:
        config: the build; ``executor`` says where the shards run and ``num_shards`` how many there are.
        progress: called on the driver with a :class:`~vlnav_data.collect.sharded_progress.ShardedProgress` as
            shards report episodes.

    Returns:
        :class:`ShardedBuildResult`.

    Raises:
        ConfigError: bad output, a held lock, shards of another build in ``<out>.shards`` (fields named),
            an unfinished build without ``--resume``/``--overwrite``, no cluster or no node that fits a
            shard, or a node that does not see ``<out>.shards`` (not a shared filesystem).
        ExecutorError: a shard failed beyond its retries (rerun with ``--resume``).
        SchemaError: the merged file breaks a format rule.
    """
    t_start = time.perf_counter()
    out = Path(config.out).absolute()
    count = config.num_shards
    mode = "resume" if config.resume else "overwrite" if config.overwrite else "create"
    preflight_output(out, mode, break_lock=config.break_lock)
    directory = shards_dir(out)
    dir_lock = WriteLock(lock_path(directory), break_lock=config.break_lock)
    dir_lock.acquire()
    try:
        directory.mkdir(exist_ok=True)
        configs = [_shard_config(config, directory, i) for i in range(count)]
        complete = _inventory(config, directory, configs)
        build_id = secrets.token_hex(16)
        _write_atomic(directory / BUILD_ID_NAME, build_id)
        todo = [c for c in configs if c.shard_index not in complete]
        tasks = [ShardTask(config=c, directory=str(directory), build_id=build_id) for c in todo]
        tracker = ShardTracker(
            num_episodes=config.num_episodes,
            num_shards=count,
            complete={i: o.num_episodes for i, o in complete.items()},
            todo=[c.shard_index for c in todo],
            progress=progress,
        )
        with make_executor(config.executor) as executor:
            executor.check_resources()
            t_shards = time.perf_counter()
            built = executor.run(_build_shard, tasks, on_event=tracker.on_event)
            shards_s = time.perf_counter() - t_shards
        outcomes = {**complete, **{o.shard_index: o for o in built}}
        merged = merge_datasets(
            [str(outcomes[i].path) for i in range(count)],
            out,
            overwrite=config.overwrite or config.resume,
            break_lock=config.break_lock,
            build_overrides={"out": config.out},
            rebuild_command=dataclasses.replace(config, num_shards=1, executor=ExecutorConfig()).command(),
        )
        from vlnav_data.dataset.validate import validate_dataset

        violations = validate_dataset(out)
        if violations:
            raise SchemaError(
                f"the merged file '{out}' breaks {len(violations)} format rule(s), first: {violations[0]}; "
                f"the shards are kept in '{directory}'"
            )
        if not config.keep_shards:
            _remove_shards(directory)
    finally:
        dir_lock.release()
    with DatasetReader(out) as r:
        succ = sum(bool(r.file["data"][n].attrs["success"]) for n in r.demo_names)
        n_eps, n_steps = len(r), r.total_steps
    size = out.stat().st_size
    shards = tuple(outcomes[i] for i in range(count))
    new_steps = sum(o.new_steps for o in built)
    resumed = sum(o.resumed_episodes for o in shards)
    encode_s = sum(o.encode_s for o in shards)
    n_enc = len(config.encoders)
    return ShardedBuildResult(
        path=out,
        num_episodes=n_eps,
        num_steps=n_steps,
        new_episodes=n_eps - resumed,
        new_steps=new_steps,
        resumed_episodes=resumed,
        success_rate=succ / n_eps if n_eps else 0.0,
        elapsed_s=time.perf_counter() - t_start,
        frames_per_s=new_steps / shards_s if shards_s > 0 else 0.0,
        encode_s=encode_s,
        encoder_frames_per_s=new_steps * n_enc / encode_s if encode_s > 0 else 0.0,
        file_bytes=size,
        bytes_per_frame=size / n_steps if n_steps else 0.0,
        device=config.device,
        encoders=tuple(config.encoders),
        expert=config.expert,
        shards=shards,
        executor=config.executor.kind,
        shards_s=shards_s,
        merge_s=merged.elapsed_s,
        merge_raw_datasets=merged.raw_datasets,
    )


def _shard_config(config: BuildConfig, directory: Path, index: int) -> BuildConfig:
    return dataclasses.replace(
        config,
        out=str(shard_path(directory, index, config.num_shards)),
        shard_index=index,
        num_shards=config.num_shards,
        resume=True,
        overwrite=False,
        executor=ExecutorConfig(),
        break_lock=False,
        keep_shards=False,
    )


def _inventory(config: BuildConfig, directory: Path, configs: list[BuildConfig]) -> dict[int, ShardOutcome]:
    """Check ``directory`` against this build; return its complete shards (removing all with overwrite)."""
    count = config.num_shards
    found = sorted(p for p in directory.iterdir() if _SHARD_RE.match(p.name))
    foreign = sorted({int(_SHARD_RE.match(p.name).group(2)) for p in found} - {count})  # type: ignore[union-attr]
    if foreign and not config.overwrite:
        raise ConfigError(
            f"'{directory}' holds shards of a {foreign[0]}-shard build; pass --num-shards {foreign[0]} to continue "
            "it, or --overwrite to start over"
        )
    shard_files = [p for p in found if not p.name.endswith(".lock")]
    if config.overwrite:
        for p in shard_files:
            p.unlink()
        return {}
    if shard_files and not config.resume:
        done = sum(1 for p in shard_files if p.name.endswith(".h5"))
        raise ConfigError(
            f"an unfinished cluster build exists in '{directory}' ({done} of {count} shards complete); pass "
            "--resume to continue it or --overwrite to start over"
        )
    complete: dict[int, ShardOutcome] = {}
    for cfg in configs:
        path = Path(cfg.out)
        if not path.exists() or partial_path(path).exists():
            continue
        with DatasetReader(path) as r:
            diffs = config_differences(r.build_config, cfg.stored(), ("out",))
            n, steps = len(r), r.total_steps
        if diffs:
            raise ConfigError(
                f"'{path}' was built with a different configuration: " + "; ".join(diffs) + ". Use the original "
                "settings, or pass --overwrite to start over"
            )
        expected = len(shard_indices(cfg.num_episodes, cfg.shard_index, cfg.num_shards))
        if n != expected:
            raise ConfigError(f"'{path}' holds {n} episodes, expected {expected}; pass --overwrite to start over")
        complete[cfg.shard_index] = _found_complete(cfg.shard_index, path, n, steps, attempts=0, node="")
    return complete


def _found_complete(index: int, path: Path, n: int, steps: int, *, attempts: int, node: str) -> ShardOutcome:
    """The outcome of a shard whose file was already complete (nothing new written)."""
    return ShardOutcome(
        shard_index=index,
        path=path,
        num_episodes=n,
        num_steps=steps,
        new_episodes=0,
        new_steps=0,
        resumed_episodes=n,
        attempts=attempts,
        node=node,
    )


def _build_shard(task: ShardTask, ctx: TaskContext) -> ShardOutcome:
    """One shard, on whichever node the executor chose (module-level: Ray ships it by reference)."""
    cfg = task.config
    path = Path(cfg.out)
    token_file = Path(task.directory) / BUILD_ID_NAME
    try:
        token = token_file.read_text().strip()
    except OSError:
        token = None
    if token != task.build_id:
        raise ConfigError(
            f"node {ctx.node} does not see '{task.directory}' as the driver wrote it ({token_file} "
            f"{'differs' if token else 'is missing'}); --out must be on a filesystem every node mounts at the "
            "same path (NFS, Lustre, ...)"
        )
    ctx.limit_threads()
    if path.exists() and not partial_path(path).exists():  # finished by a lost attempt after its rename
        with DatasetReader(path) as r:
            n, steps = len(r), r.total_steps
        return _found_complete(cfg.shard_index, path, n, steps, attempts=ctx.attempt, node=ctx.node)
    take_over = _wait_for_lock(path, ctx)

    def report(p: BuildProgress) -> None:
        ctx.report(episodes_done=p.episodes_done, episodes_total=p.episodes_total, frames_done=p.frames_done)

    result = build_local(dataclasses.replace(cfg, break_lock=take_over), progress=report)
    return ShardOutcome(
        shard_index=cfg.shard_index,
        path=result.path,
        num_episodes=result.num_episodes,
        num_steps=result.num_steps,
        new_episodes=result.new_episodes,
        new_steps=result.new_steps,
        resumed_episodes=result.resumed_episodes,
        attempts=ctx.attempt,
        node=ctx.node,
        encode_s=result.encode_s,
        elapsed_s=result.elapsed_s,
    )


def _wait_for_lock(path: Path, ctx: TaskContext) -> bool:
    """Wait until the shard's lock can be taken; True when a lost node's lock must be taken over."""
    lock = WriteLock(lock_path(path))
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            lock.check_free()
            return False
        except LockHeldError as exc:
            holder = exc.holder
            if holder is not None and not holder.on_this_host and ctx.host_is_lost(holder.host):
                log.warning("shard lock %s was held by %s, on a node Ray lost: taking it over", lock.path, holder)
                return True
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.5)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _remove_shards(directory: Path) -> None:
    for p in directory.iterdir():
        if _SHARD_RE.match(p.name) or p.name == BUILD_ID_NAME:
            p.unlink(missing_ok=True)
    if not any(directory.iterdir()):  # something else lives there: leave it
        directory.rmdir()
