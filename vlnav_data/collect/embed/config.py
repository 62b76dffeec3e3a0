"""What a `vlnav-data embed` run is given and what it reports: :class:`EmbedConfig`, :class:`EmbedProgress`
(with one :class:`EmbedTaskState` per Ray task) and :class:`EmbedResult` (with one :class:`EmbedTaskOutcome`
per Ray task).

The run itself is :func:`vlnav_data.collect.embed.embed_dataset` (its module docstring describes the crash
safety these records refer to); :mod:`~vlnav_data.collect.embed.checks` holds the checks on its input
and output, :mod:`~vlnav_data.collect.embed.stage` and :mod:`~vlnav_data.collect.embed.tasks` the
embedding stage in this process and on Ray.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError

ENCODER_DTYPES = ("auto", "fp32", "bf16")


@dataclass(frozen=True, kw_only=True)
class EmbedConfig:
    """Configuration of one `vlnav-data embed` run.

    Attributes:
        file: the complete ``vlnav-demos`` file to add encoders to (never modified in place: see
            :mod:`vlnav_data.collect.embed`).
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
            ranges of episodes on a Ray cluster; :mod:`vlnav_data.collect.embed.tasks`). Not part of
            :meth:`command`: on the CPU the arrays are the same whichever executor computed them (with
            as many torch threads; see :mod:`vlnav_data.collect.embed.tasks`).
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
