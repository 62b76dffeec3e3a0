"""`embed_dataset(config)`: add encoders to an existing ``vlnav-demos`` file (`vlnav-data embed`).

Every frame, privileged state and instruction of a build is in its file, so a new encoder needs no new
simulation: ``embed`` reads them back, computes ``obs/<X>_image``, ``obs/<X>_joint`` and
``/meta/text_embeddings/<X>`` with :class:`~vlnav_data.collect.embedding.EpisodeEmbedder` (the code the
build runs, with the same fusion, dtype and float16 storage), and writes a file that holds everything
the input held plus the new encoders. ``embed(build(A), B)`` therefore equals ``build(A and B)`` array
for array on the same device and dtype.

Crash safety (HDF5 is not journaled, so the input is never opened for writing):

1. each finished episode's embeddings go to a sidecar, ``<OUT>.embed.partial``
   (:mod:`vlnav_data.dataset.sidecar`), committed (``num_samples`` last) and flushed one by one;
2. when all are done, ``<OUT>.partial`` is written: a raw HDF5 object copy of the input (chunks are
   copied as stored, never decompressed or recompressed; :mod:`vlnav_data.dataset.augment`) plus the
   sidecar's arrays and updated ``encoders_json`` / ``features_json`` / ``rebuild_command``, then
   ``complete=True``, fsync;
3. the sidecar is marked ``assembled``, ``<OUT>.partial`` is renamed to ``OUT`` atomically (in place:
   ``OUT`` is ``FILE``, replaced in one rename), the directory fsynced and the sidecar deleted.

A SIGKILL at any moment leaves the input untouched and valid, and never a file at ``OUT`` that lacks
an encoder it claims. ``--resume`` keeps the committed episodes of the sidecar (it checks that the
input, the encoder list and the models are the same, and that precisions do not mix) and computes only
the rest; after a kill during steps 2-3 it redoes the copy or just the rename. Without ``--resume`` a
leftover sidecar is refused (``--overwrite`` discards it). ``OUT.lock`` keeps a second writer away.

Files written by ``embed`` keep the input's ``build_config_json`` (what ``build`` ran; its ``encoders``
list stays the build's); ``encoders_json`` lists every encoder, and ``rebuild_command`` becomes the
build command followed by ``&& vlnav-data embed ...``, which reproduces the file.

Disk cost: the sidecar holds only the new embeddings (about 2 x 2 bytes x E per frame and encoder,
before gzip); step 2 writes a second copy of the input, so at the end ``FILE + OUT`` (about twice the
input plus the new arrays) must fit on the disk for a moment, also in place, until the rename frees
the old file.

On Ray (``--ray``, :mod:`vlnav_data.collect.embed_tasks`), workers compute the embeddings of ranges of
episodes from the shared input file and send them back; this process alone writes the sidecar and the
output, in episode order, so everything above holds unchanged.

Refused before any model loads: a ``.partial`` or incomplete input, a state-only file (no
``obs/rgb``; the oracle alone would only need the privileged state, but ``vlnav-demos`` 1.x requires
frames, so such a file cannot become a valid one), a file that fails ``validate``, an encoder the file
already holds (unless ``--replace``, which recomputes it in its place), an existing ``--out``
(unless ``--overwrite``).
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.collect import queues
from vlnav_data.collect.build import encoder_entry
from vlnav_data.collect.embedding import (
    EpisodeEmbedder,
    EpisodeEmbeddings,
    EpisodeFrames,
    batch_frames_for,
    batches_across_episodes,
    encode_texts_one_by_one,
)
from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.dataset import EncoderEntry, lock_path, partial_path, schema
from vlnav_data.dataset.augment import write_with_encoders
from vlnav_data.dataset.lock import WriteLock
from vlnav_data.dataset.reader import check_format, open_h5
from vlnav_data.dataset.sidecar import (
    EmbeddingSidecar,
    input_fingerprint,
    mark_assembled,
    open_sidecar,
    sidecar_path,
    sidecar_state,
)
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.dataset.writer import publish
from vlnav_data.devices import check_device_name, resolve_device
from vlnav_data.errors import ConfigError, SchemaError

ENCODER_DTYPES = ("auto", "fp32", "bf16")


@dataclass(frozen=True, kw_only=True)
class EmbedConfig:
    """Configuration of one `vlnav-data embed` run.

    Attributes:
        file: the complete ``vlnav-demos`` file to add encoders to (never modified in place: see the
            module docstring).
        encoders: what ``make_encoder`` accepts (built-in names, ``hf:ORG/NAME[@REV]``, ``hf:/dir``,
            ``ALIAS=hf:...``, plugin names); each adds ``obs/<name>_image``, ``obs/<name>_joint`` and
            ``/meta/text_embeddings/<name>`` under its stored name (:attr:`encoder_names`).
        out: the file to write; None = ``file`` itself (replaced atomically when done).
        resume: continue the unfinished run's sidecar (``<out>.embed.partial``); starts fresh when none.
        overwrite: replace an existing ``out`` (other than ``file``) and discard an unfinished run.
        replace: recompute encoders the file already holds (in their place) instead of refusing.
        allow_mixed_precision: let ``resume`` continue with another dtype or device type than the
            unfinished run used (recorded in the encoder's entry); refused otherwise.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        encoder_dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        encoder_batch_size: frames per encoder forward pass (None: the encoder's default).
        cross_episode_batching: batches span episodes (True) or not (False); None = True on CUDA, False
            on CPU, as in ``build``.
        trust_remote_code: let ``hf:`` checkpoints that bring their own code run it (recorded per encoder).
        read_ahead: episodes a reader thread decodes ahead of the encoder; 0 reads each episode inline,
            between encoder calls; None = 4 on CUDA (the CPU is free while the GPU encodes) and 0 on CPU
            (torch's threads already use every core; a reader thread would only compete with them).
        executor: where the embeddings are computed: ``local`` (this process) or ``ray`` (tasks over
            ranges of episodes on a Ray cluster; :mod:`vlnav_data.collect.embed_tasks`). Not part of
            :meth:`command`: on the CPU the arrays are the same whichever executor computed them (with
            as many torch threads; see :mod:`vlnav_data.collect.embed_tasks`).
        episodes_per_task: Ray only: consecutive episodes per task. Each task loads the encoders once
            (seconds for a real model) and a lost worker costs at most one task's work; 64 episodes
            (about 6,800 frames in the arena) keep the load a small share on a GPU and the loss small.
        compile: ``torch.compile`` the image path of the encoders that support it (two-tower models) before
            the embedding starts; the time is reported apart (``EmbedResult.compile_s``).
    """

    file: str
    encoders: tuple[str, ...]
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    replace: bool = False
    allow_mixed_precision: bool = False
    device: str = "auto"
    encoder_dtype: str = "auto"
    encoder_batch_size: int | None = None
    cross_episode_batching: bool | None = None
    trust_remote_code: bool = False
    read_ahead: int | None = None
    executor: ExecutorConfig = ExecutorConfig()
    episodes_per_task: int = 64
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "file", str(self.file))
        object.__setattr__(self, "encoders", tuple(str(e) for e in self.encoders))
        if self.out is not None:
            object.__setattr__(self, "out", str(self.out))
        if not self.file:
            raise ConfigError("FILE is required: the vlnav-demos .h5 file to add encoders to")
        if not self.encoders:
            raise ConfigError("at least one --encoder is required (e.g. --encoder siglip)")
        if len(set(self.encoders)) != len(self.encoders):
            raise ConfigError(f"each --encoder may be given once, got {list(self.encoders)}")
        names = self.encoder_names  # unknown names and malformed hf: references fail here, before any work
        if len(set(names)) != len(names):
            raise ConfigError(
                f"the encoders {list(self.encoders)} would be stored as {list(names)}; give each its own name "
                "(ALIAS=hf:...)"
            )
        if not isinstance(self.trust_remote_code, bool):
            raise ConfigError(f"trust_remote_code must be true or false, got {self.trust_remote_code!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true or false, got {self.compile!r}")
        check_device_name(self.device, "--device")
        if self.encoder_dtype not in ENCODER_DTYPES:
            raise ConfigError(f"--encoder-dtype must be auto, fp32 or bf16, got '{self.encoder_dtype}'")
        bs = self.encoder_batch_size
        if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
            raise ConfigError(f"--encoder-batch-size must be a positive integer, got {bs!r}")
        ra = self.read_ahead
        if ra is not None and (isinstance(ra, bool) or not isinstance(ra, int) or ra < 0):
            raise ConfigError(f"read_ahead must be an integer >= 0 or None, got {ra!r}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; pass one")
        if not isinstance(self.executor, ExecutorConfig):
            raise ConfigError(f"executor must be an ExecutorConfig, got {type(self.executor).__name__}")
        ept = self.episodes_per_task
        if isinstance(ept, bool) or not isinstance(ept, int) or ept < 1:
            raise ConfigError(f"--episodes-per-task must be a positive integer, got {ept!r}")
        self.executor.check_device(self.device, "task")

    @property
    def encoder_names(self) -> tuple[str, ...]:
        """The names the encoders get in the file, in ``encoders`` order (derived without loading them)."""
        from vlnav_data.encoders import encoder_name

        return tuple(encoder_name(value) for value in self.encoders)

    @property
    def output(self) -> Path:
        """The file written: ``out``, or ``file`` when embedding in place."""
        return Path(self.out if self.out is not None else self.file)

    def command(self) -> str:
        """The ``vlnav-data embed`` command line of this run (file names only, as ``rebuild_command`` uses)."""
        args = ["vlnav-data", "embed", Path(self.file).name]
        for name in self.encoders:  # as given (an hf: id, not the name it is stored under)
            args += ["--encoder", name]
        if self.out is not None and Path(self.out).name != Path(self.file).name:
            args += ["--out", Path(self.out).name]
        if self.replace:
            args.append("--replace")
        if self.trust_remote_code:
            args.append("--trust-remote-code")
        if self.compile:
            args.append("--compile")
        for flag, value, default in (
            ("--device", self.device, "auto"),
            ("--encoder-dtype", self.encoder_dtype, "auto"),
            ("--encoder-batch-size", self.encoder_batch_size, None),
        ):
            if value != default:
                args += [flag, str(value)]
        return shlex.join(args)


@dataclass(frozen=True, kw_only=True)
class EmbedTaskState:
    """Where one task of a ``--ray`` embed stands, as the driver knows it.

    Attributes:
        task_index: its place in this run's tasks (they cover the uncommitted episodes in order).
        first_episode / num_episodes: the range of episodes it embeds.
        state: ``pending``, ``running`` or ``done`` (its embeddings reached the driver).
        attempt: its current attempt (0 before the first start; 2 and more after lost workers or nodes).
        node: where the current attempt runs (``host/node-id``).
        pid: process id of the current attempt on its node.
        episodes_done: episodes the current attempt has embedded (not yet written: the driver writes).
    """

    task_index: int
    first_episode: int
    num_episodes: int
    state: str
    attempt: int
    node: str
    pid: int
    episodes_done: int


@dataclass(frozen=True, kw_only=True)
class EmbedTaskOutcome:
    """One finished task of a ``--ray`` embed.

    Attributes:
        task_index / first_episode / num_episodes: as in :class:`EmbedTaskState`.
        attempts: how many times it was started (more than 1 after a lost worker or node).
        node: where its last attempt ran.
        frames: frames it embedded.
        encode_s: time its last attempt spent inside the encoders.
    """

    task_index: int
    first_episode: int
    num_episodes: int
    attempts: int
    node: str
    frames: int
    encode_s: float


@dataclass(frozen=True, kw_only=True)
class EmbedProgress:
    """Progress of an embed run, reported after every episode committed and every demo copied.

    Attributes:
        stage: ``embed`` (computing embeddings into the sidecar) or ``copy`` (writing ``OUT.partial``).
        done: episodes finished in this stage (including those found on resume).
        total: episodes in the file.
        frames_done: frames finished in this stage (including resumed ones).
        frames_total: frames in the file.
        elapsed_s: seconds since this stage started.
        frames_per_s: frames this run processed in this stage per second.
        eta_s: estimated seconds left in this stage (None until something was processed).
        tasks: ``--ray`` only: one :class:`EmbedTaskState` per task of this run (``done`` and
            ``frames_done`` count what the driver has written; the tasks say what is being computed).
    """

    stage: str
    done: int
    total: int
    frames_done: int
    frames_total: int
    elapsed_s: float
    frames_per_s: float
    eta_s: float | None
    tasks: tuple[EmbedTaskState, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EmbedResult:
    """Outcome of :func:`embed_dataset`.

    Attributes:
        path: the file written (the input's path when in place).
        input: the input file.
        in_place: ``path`` is the input, replaced.
        encoders: the encoders added (their names in the file).
        replaced: those among them the input already held (``--replace``).
        num_episodes / num_steps: demos and steps in the file.
        new_episodes / new_steps: embedded by this run.
        resumed_episodes: committed episodes found in the sidecar.
        elapsed_s: wall time of this run.
        frames_per_s: new_steps per second of the embedding stage (reading, encoding, sidecar writes).
        encode_s: time spent inside the encoders.
        copy_s: time writing ``OUT.partial`` (the raw copy) and renaming it.
        file_bytes / input_bytes: sizes of the output and of the input.
        device: device the encoders ran on.
        cross_episode_batching: whether batches spanned episodes.
        batch_frames: frames per cross-episode batch (None when per episode).
        executor: ``local`` or ``ray``.
        tasks: ``ray``: one :class:`EmbedTaskOutcome` per task this run ran (none when every episode was
            committed before); ``encode_s`` is then the sum over the tasks' last attempts.
        compile_s: seconds spent compiling (``--compile``) before the embedding started; not part of
            ``frames_per_s`` or ``encode_s`` (part of ``elapsed_s``).
        compiled: the encoders that were compiled.
    """

    path: Path
    input: Path
    in_place: bool
    encoders: tuple[str, ...]
    replaced: tuple[str, ...]
    num_episodes: int
    num_steps: int
    new_episodes: int
    new_steps: int
    resumed_episodes: int
    elapsed_s: float
    frames_per_s: float
    encode_s: float
    copy_s: float
    file_bytes: int
    input_bytes: int
    device: str
    cross_episode_batching: bool
    batch_frames: int | None
    executor: str = "local"
    tasks: tuple[EmbedTaskOutcome, ...] = ()
    compile_s: float = 0.0
    compiled: tuple[str, ...] = ()


ProgressFn = Callable[[EmbedProgress], None]


@dataclass(frozen=True, eq=False)
class _Input:
    """What embed needs to know about its input, read once up front."""

    demo_names: tuple[str, ...]
    num_samples: tuple[int, ...]
    instruction_index: tuple[np.ndarray, ...]
    instructions: tuple[str, ...]
    entries: tuple[EncoderEntry, ...]
    rebuild_command: str
    fingerprint: dict[str, Any]
    size_bytes: int
    frame_hw: tuple[int, int] = (0, 0)  # height, width of the frames (what --compile compiles for)


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
    in_place = _same_file(src, out)
    side = sidecar_path(out)
    partial = partial_path(out)
    on_tasks = config.executor.kind != "local"
    if on_tasks and encoders is not None:
        raise ConfigError("injected encoders cannot be sent to executor tasks; build them by name instead")
    _check_input_path(src)
    _check_output_path(out)
    device = "" if on_tasks else resolve_device(config.device, "--device")  # tasks resolve their own
    lock = WriteLock(lock_path(out))
    lock.acquire()
    try:
        if config.resume and side.exists() and sidecar_state(side)["assembled"]:
            return _finish_assembled(config, src, out, in_place, t_start)  # killed between copy and cleanup
        info = _inspect_input(src)
        _check_output(config, out, in_place, side, partial)
        present = {e.name for e in info.entries}
        for name in config.encoder_names:
            _refuse_present(name, present, src, config.replace)
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
            from vlnav_data.collect.embed_tasks import embed_on_executor

            stage = embed_on_executor(config, src, info, open_sidecar, progress)
        else:
            stage = _embed_here(config, src, info, device, encoders, open_sidecar, progress)
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
        device=stage.device,
        cross_episode_batching=stage.across,
        batch_frames=stage.batch_frames,
        executor=config.executor.kind,
        tasks=stage.tasks,
        compile_s=stage.compile_s,
        compiled=stage.compiled,
    )


@dataclass(frozen=True, kw_only=True)
class _Stage:
    """What the embedding stage did, wherever it ran.

    Attributes:
        entries: the encoders' entries as the finished sidecar holds them (precision combined on resume).
        resumed: episodes the sidecar held when the stage started.
        frames: frames embedded by this run.
        encode_s: time inside the encoders; embed_s: wall time of the stage.
        device / across / batch_frames: where and how the encoders ran.
        tasks: executor tasks (``ray``).
        compile_s / compiled: ``--compile`` in this process: seconds spent compiling before the stage's clock,
            and the encoders compiled (Ray tasks compile at their first batch, inside their own time).
    """

    entries: tuple[EncoderEntry, ...]
    resumed: int
    frames: int
    encode_s: float
    embed_s: float
    device: str
    across: bool
    batch_frames: int | None
    tasks: tuple[EmbedTaskOutcome, ...] = ()
    compile_s: float = 0.0
    compiled: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------- checks
def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_output_path(out: Path) -> None:
    if out.name.endswith(schema.PARTIAL_SUFFIX):
        raise ConfigError(f"the output name must not end in '{schema.PARTIAL_SUFFIX}', got '{out}'")
    if out.is_dir():
        raise ConfigError(f"the output '{out}' is a directory; pass a file name such as demos.h5")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output directory '{out.parent}': {exc.strerror}") from exc
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"the output directory '{out.parent}' is not writable; choose a writable --out")


def _check_input_path(src: Path) -> None:
    """Refuse a ``.partial`` input, and a missing or non-HDF5 one (before anything is created)."""
    if src.name.endswith(schema.PARTIAL_SUFFIX):
        raise SchemaError(
            f"'{src}' is an unfinished build (a .partial file); finish it with `vlnav-data build --resume`, "
            "then embed the complete file"
        )
    open_h5(src).close()


def _inspect_input(src: Path) -> _Input:
    """Refuse a ``.partial``, incomplete, state-only or invalid input; read what embed needs."""
    f = open_h5(src)
    try:
        check_format(f, src)
        if not bool(f.attrs.get("complete", False)):
            raise SchemaError(
                f"'{src}' is incomplete (complete != True): its build did not finish; resume it with "
                "`vlnav-data build --resume`, then embed the complete file"
            )
        data = f["data"] if "data" in f else {}
        names = sorted((n for n in data if schema.demo_index(n) is not None), key=schema.demo_index)
        frameless = [n for n in names if schema.RGB not in data[n]]
        if frameless:
            raise SchemaError(
                f"'{src}' is a state-only file ({len(frameless)} of {len(names)} demos have no {schema.RGB}, "
                f"e.g. {frameless[0]}); embed computes embeddings from the stored frames and writes only valid "
                "vlnav-demos files, which hold frames, so not even the oracle can be added: build the dataset "
                "with frames (`vlnav-data build`)"
            )
    finally:
        f.close()
    violations = validate_dataset(src)
    if violations:
        raise SchemaError(
            f"'{src}' fails validation ({len(violations)} violation(s), the first: {violations[0]}); embed adds "
            f"encoders only to valid files: run `vlnav-data validate {src}` for the full list"
        )
    with open_h5(src) as f:
        rebuild = f.attrs.get("rebuild_command", "")
        return _Input(
            **_demo_listing(f, names),
            entries=tuple(EncoderEntry(**e) for e in json.loads(f.attrs["encoders_json"])),
            rebuild_command=rebuild.decode() if isinstance(rebuild, bytes) else str(rebuild),
            fingerprint=input_fingerprint(src, f),
            size_bytes=src.stat().st_size,
            frame_hw=tuple(int(x) for x in f["data"][names[0]][schema.RGB].shape[1:3]) if names else (0, 0),
        )


def _demo_listing(f: Any, names: Sequence[str]) -> dict[str, Any]:
    """The :class:`_Input` fields that say how to read demos ``names`` of an open file."""
    data = f["data"]
    return {
        "demo_names": tuple(names),
        "num_samples": tuple(int(data[n].attrs["num_samples"]) for n in names),
        "instruction_index": tuple(data[n][schema.INSTRUCTION_INDEX][()] for n in names),
        "instructions": tuple(
            s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f[schema.META_INSTRUCTIONS][()]
        ),
    }


def _check_output(config: EmbedConfig, out: Path, in_place: bool, side: Path, partial: Path) -> None:
    if side.exists() and not config.resume and not config.overwrite:
        raise ConfigError(
            f"an unfinished embed exists at '{side}'; pass --resume to continue it or --overwrite to start over"
        )
    if not in_place and out.exists() and not config.overwrite and not (config.resume and side.exists()):
        raise ConfigError(f"the output '{out}' already exists; pass --overwrite to replace it or choose another --out")
    if partial.exists() and not side.exists() and not config.overwrite:
        raise ConfigError(
            f"'{partial}' exists but no unfinished embed does ('{side}'): it is another build's unfinished "
            f"output; resume or remove it, or pass --overwrite to discard it"
        )


def _refuse_present(name: str, present: set[str], src: Path, replace: bool) -> None:
    if name in present and not replace:
        raise ConfigError(
            f"'{src}' already holds encoder '{name}'; pass --replace to compute it again, or choose another encoder"
        )


def _make_encoders(config: EmbedConfig, device: str, injected: Sequence[Any] | None) -> list[Any]:
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


# ---------------------------------------------------------------------------------------- work
def _embed_here(
    config: EmbedConfig,
    src: Path,
    info: _Input,
    device: str,
    injected: Sequence[Any] | None,
    open_sidecar: Callable[[Sequence[EncoderEntry]], EmbeddingSidecar],
    progress: ProgressFn | None,
) -> _Stage:
    """The embedding stage in this process: every uncommitted episode into the sidecar, in order."""
    encoders = _make_encoders(config, device, injected)
    sidecar = open_sidecar([encoder_entry(enc.spec) for enc in encoders])
    across = batches_across_episodes(config.cross_episode_batching, device)
    batch_frames = batch_frames_for(encoders, config.encoder_batch_size) if across else None
    resumed = sidecar.committed
    compile_s, compiled = 0.0, ()
    try:
        if config.compile and resumed < len(info.demo_names):  # before the stage's clock (the committer's)
            from vlnav_data.encoders import warm_up_compiled

            compile_s, compiled = warm_up_compiled(encoders, *info.frame_hw)
        read_ahead = config.read_ahead if config.read_ahead is not None else (4 if device.startswith("cuda") else 0)
        embedder = EpisodeEmbedder(encoders, batch_frames=batch_frames)
        committer = _Committer(info, sidecar, progress)
        indices = range(committer.start, len(info.demo_names))
        encode_s = _stream_episodes(src, info, indices, embedder, read_ahead, committer.commit_all)
        if committer.unused_rows:  # rows no demo refers to: embedded once, at the end
            texts = [info.instructions[row] for row in committer.unused_rows]
            committer.write_text_rows({enc.spec.name: encode_texts_one_by_one(enc, texts) for enc in encoders})
        embed_s, added = committer.finish()
    except BaseException:
        sidecar.close()  # committed episodes stay for --resume
        raise
    return _Stage(
        entries=added,
        resumed=resumed,
        frames=committer.frames,
        encode_s=encode_s,
        embed_s=embed_s,
        device=device,
        across=across,
        batch_frames=batch_frames,
        compile_s=compile_s,
        compiled=tuple(compiled),
    )


class _Committer:
    """Appends finished episodes to the sidecar in input order and reports progress (one per run).

    Each episode is committed with the text rows it is the first to use (so a committed prefix always
    has its text rows); rows no episode uses are left for :meth:`write_text_rows` at the end.
    """

    def __init__(self, info: _Input, sidecar: EmbeddingSidecar, progress: ProgressFn | None) -> None:
        self.info = info
        self.sidecar = sidecar
        self.progress = progress
        self.by_demo, self.unused_rows = _text_rows(info)
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
        for i, emb in finished:
            self.commit(i, emb)

    def write_text_rows(self, vectors: dict[str, np.ndarray]) -> None:
        """Write the unused rows: ``vectors[name]`` holds one row per entry of :attr:`unused_rows`."""
        self.sidecar.write_text_rows(
            {name: dict(zip(self.unused_rows, rows, strict=True)) for name, rows in vectors.items()}
        )

    def finish(self) -> tuple[float, tuple[EncoderEntry, ...]]:
        """Check that every episode is committed and mark the sidecar complete (it is closed and fsynced).

        Returns:
            The stage's wall time and the encoder entries as the sidecar holds them.
        """
        n = len(self.info.demo_names)
        if self.sidecar.committed != n:
            raise RuntimeError(f"embedded {self.sidecar.committed} of {n} episodes")
        elapsed, entries = self.elapsed_s, tuple(self.sidecar.entries)
        self.sidecar.finish()
        return elapsed, entries

    def report(self) -> None:
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


def _text_rows(info: _Input) -> tuple[dict[int, list[int]], list[int]]:
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


def _stream_episodes(
    src: Path, info: _Input, indices: range, embedder: EpisodeEmbedder, read_ahead: int, on_finished: FinishedFn
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
    info: _Input,
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


def _read_episode(f: Any, info: _Input, i: int) -> EpisodeFrames:
    """Frames, states and per-step instructions of demo ``i`` of the open input."""
    g = f["data"][info.demo_names[i]]
    return EpisodeFrames(
        rgb=g[schema.RGB][()],
        privileged_state=g[schema.PRIVILEGED_STATE][()],
        instructions=[info.instructions[k] for k in info.instruction_index[i]],
    )


def _copy_progress(info: _Input, progress: ProgressFn | None) -> Callable[[int, int], None] | None:
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
