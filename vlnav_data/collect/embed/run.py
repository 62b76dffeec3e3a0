"""`embed_dataset(config)`: the steps of `vlnav-data embed` (described in :mod:`vlnav_data.collect.embed`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.collect.embed.checks import (
    EmbedInput,
    check_input_path,
    check_output,
    check_output_path,
    inspect_input,
    refuse_present,
    same_file,
)
from vlnav_data.collect.embed.config import EmbedConfig, EmbedProgress, EmbedResult, ProgressFn
from vlnav_data.collect.embed.stage import embed_here
from vlnav_data.dataset import EncoderEntry, lock_path, partial_path
from vlnav_data.dataset.augment import write_with_encoders
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.dataset.partial import publish
from vlnav_data.dataset.sidecar import EmbeddingSidecar, mark_assembled, open_sidecar, sidecar_path, sidecar_state
from vlnav_data.devices import resolve_device
from vlnav_data.errors import ConfigError


def embed_dataset(
    config: EmbedConfig, progress: ProgressFn | None = None, *, encoders: Sequence[Any] | None = None
) -> EmbedResult:
    """Add encoders to an existing dataset, crash-safely and resumably (see the module docstring).

    Args:
        config: the embed configuration.
        progress: called after every episode committed and every demo copied.
        encoders: already-built encoders to use instead of ``make_encoder`` (benchmarks and tests); their
            ``spec.name`` must equal ``config.encoders``, in order.

    Returns:
        :class:`EmbedResult`.

    Raises:
        SchemaError: the input is missing, not a vlnav-demos file, a ``.partial``/incomplete build, a
            state-only file, or fails validation.
        ConfigError: bad output path, lock held, an encoder already present without ``--replace``, an
            unfinished run without ``--resume``/``--overwrite``, a resume that does not match the
            unfinished run, mixed precision without ``--allow-mixed-precision``, CUDA missing.
        EncoderError: an encoder cannot be built.
    """
    t_start = time.perf_counter()
    src = Path(config.file)
    out = config.output
    in_place = same_file(src, out)
    side = sidecar_path(out)
    partial = partial_path(out)
    on_tasks = config.executor.kind != "local"
    if on_tasks and encoders is not None:
        raise ConfigError("injected encoders cannot be sent to executor tasks; build them by name instead")
    check_input_path(src)
    check_output_path(out)
    device = "" if on_tasks else resolve_device(config.device, "--device")  # tasks resolve their own
    lock = WriteLock(lock_path(out), takeover_hint=f"delete '{lock_path(out)}' to take the lock over")
    lock.check_free()  # every refusal comes before the lock file is created: a refused embed leaves no trace

    def assembled() -> bool:
        return config.resume and side.exists() and sidecar_state(side)["assembled"]

    def check_inputs() -> tuple[EmbedInput, set[str]]:
        info = inspect_input(src)
        check_output(config, out, in_place, side, partial)
        present = {e.name for e in info.entries}
        for name in config.encoder_names:
            refuse_present(name, present, src, config.replace)
        return info, present

    checked = None if assembled() else check_inputs()
    lock.acquire()
    try:
        if assembled():
            return _finish_assembled(config, src, out, in_place, t_start)  # killed between copy and cleanup
        if checked is None:
            checked = check_inputs()
        else:
            check_output(config, out, in_place, side, partial)  # again, now that this process holds the lock
        info, present = checked
        names = config.encoder_names

        def open_sidecar(entries: Sequence[EncoderEntry]) -> EmbeddingSidecar:
            return EmbeddingSidecar(
                side,
                input_path=src,
                fingerprint=info.fingerprint,
                plan={"encoders": list(names), "replaced": [n for n in names if n in present]},
                entries=entries,
                num_instructions=len(info.instructions),
                resume=config.resume,
                allow_mixed_precision=config.allow_mixed_precision,
            )

        if on_tasks:
            from vlnav_data.collect.embed.tasks import embed_on_executor

            stage = embed_on_executor(config, src, info, open_sidecar, progress)
        else:
            stage = embed_here(config, src, info, device, encoders, open_sidecar, progress)
        t_copy = time.perf_counter()
        rebuild = " && ".join(c for c in (info.rebuild_command, config.command()) if c)
        write_with_encoders(
            src, side, partial, added=stage.entries, rebuild_command=rebuild, progress=_copy_progress(info, progress)
        )
        mark_assembled(side)
        publish(partial, out)
        side.unlink()
        copy_s = time.perf_counter() - t_copy
    finally:
        lock.release()
    return EmbedResult(
        path=out,
        input=src,
        in_place=in_place,
        encoders=names,
        replaced=tuple(n for n in names if n in present),
        num_episodes=len(info.demo_names),
        num_steps=int(sum(info.num_samples)),
        new_episodes=len(info.demo_names) - stage.resumed,
        new_steps=stage.frames,
        resumed_episodes=stage.resumed,
        elapsed_s=time.perf_counter() - t_start,
        frames_per_s=stage.frames / stage.embed_s if stage.embed_s > 0 else 0.0,
        encode_s=stage.encode_s,
        copy_s=copy_s,
        file_bytes=out.stat().st_size,
        input_bytes=info.size_bytes,
        device=stage.batching.device,
        cross_episode_batching=stage.batching.across_episodes,
        batch_frames=stage.batching.batch_frames,
        executor=config.executor.kind,
        tasks=stage.tasks,
        compile_s=stage.compile_s,
        compiled=stage.compiled,
    )


def _copy_progress(info: EmbedInput, progress: ProgressFn | None) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    t0 = time.perf_counter()
    frames_total = int(sum(info.num_samples))
    cumulative = np.cumsum((0, *info.num_samples))

    def report(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        frames = int(cumulative[done])
        rate = frames / elapsed if elapsed > 0 else 0.0
        progress(
            EmbedProgress(
                stage="copy",
                done=done,
                total=total,
                frames_done=frames,
                frames_total=frames_total,
                elapsed_s=elapsed,
                frames_per_s=rate,
                eta_s=(frames_total - frames) / rate if rate > 0 else None,
            )
        )

    return report


def _finish_assembled(config: EmbedConfig, src: Path, out: Path, in_place: bool, t_start: float) -> EmbedResult:
    """A run killed after writing ``OUT.partial`` completely: rename it (if not yet) and clean up."""

    side = sidecar_path(out)
    partial = partial_path(out)
    with open_sidecar(side) as f:
        plan = json.loads(f.attrs["plan_json"])
        device_types = [e.get("device_type", "") for e in json.loads(f.attrs["encoders_json"])]
        input_bytes = int(json.loads(f.attrs["input_fingerprint_json"])["size_bytes"])
    t_copy = time.perf_counter()
    if partial.exists():
        publish(partial, out)
    side.unlink()
    copy_s = time.perf_counter() - t_copy
    from vlnav_data.dataset import DatasetReader

    with DatasetReader(out) as r:
        n_eps, n_steps = len(r), r.total_steps
    size = out.stat().st_size
    names = tuple(plan["encoders"])
    return EmbedResult(
        path=out,
        input=src,
        in_place=in_place,
        encoders=names,
        replaced=tuple(plan["replaced"]),
        num_episodes=n_eps,
        num_steps=n_steps,
        new_episodes=0,
        new_steps=0,
        resumed_episodes=n_eps,
        elapsed_s=time.perf_counter() - t_start,
        frames_per_s=0.0,
        encode_s=0.0,
        copy_s=copy_s,
        file_bytes=size,
        input_bytes=input_bytes,
        device=next((d for d in device_types if d), "cpu"),
        cross_episode_batching=False,
        batch_frames=None,
        executor=config.executor.kind,
    )
