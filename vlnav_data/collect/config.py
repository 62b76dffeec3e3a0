"""`BuildConfig`: everything that decides what `vlnav-data build` writes, validated up front.

A build is a pure function of its config (and the device type): the resolved config is stored in the
file (``build_config_json``) and resuming with different values is refused, naming the fields.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.config_files import check_positive_int, load_config_toml
from vlnav_data.dataset.splits import SPLIT_RULES
from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, did_you_mean, unknown_name
from vlnav_data.jsonio import fields_of, to_jsonable

EXPERTS = ("ppo", "pursuit")

OPERATIONAL_FIELDS = (
    "resume",
    "overwrite",
    "writer_queue_size",
    "cross_episode_batching",
    "allow_mixed_precision",
    "executor",
    "break_lock",
    "keep_shards",
)
"""How and where one run opens and feeds the file; not part of what the file contains, so not stored
(the precision each encoder ran in is recorded in its entry instead)."""

LEGACY_VALUES = {"split_rule": "coin", "trust_remote_code": False, "compile": False}
"""Fields added after files may have been started, with the value those files implied (for ``--resume``)."""

RESUME_MAY_DIFFER = ("out", "resume", "overwrite", "num_episodes", "writer_queue_size", "encoder_dtype", "compile")
"""Fields a resumed build may change: where it writes, how, and how many episodes it aims for
(episodes are a function of their index alone, so a build can be extended), and ``compile`` (compiled
kernels agree with eager ones within float rounding, as a different batch composition does; the file
records the value the build started with). ``encoder_dtype`` is judged
by what it resolves to: the encoder entries' dtype and device type must match (or the mix be allowed
with ``allow_mixed_precision``), whatever the spelling (``auto`` and ``fp32`` are the same on a CPU)."""


@dataclass(frozen=True, kw_only=True)
class EpisodeLabelling:
    """What decides an episode's seed, action labels and split besides its index (a build's fields).

    Attributes:
        seed: the build seed (episode ``i`` starts from ``episode_seed(seed, i)``).
        expert: the expert's name, recorded on every demo.
        noise_std: DART noise on the executed actions (0: none); the label stays the expert's clean action.
        valid_fraction / split_rule: the validation split (:func:`~vlnav_data.dataset.splits.episode_split`).
    """

    seed: int
    expert: str
    noise_std: float
    valid_fraction: float
    split_rule: str


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Configuration of one dataset build (`vlnav-data build`).

    Attributes:
        out: output ``.h5`` path (written as ``<out>.partial`` until complete).
        preset: arena preset (``vlnav_data.sim.PRESET_NAMES``).
        num_episodes: episodes in the whole build (all shards together).
        encoders: what ``vlnav_data.encoders.make_encoder`` accepts: built-in names (``ENCODER_NAMES``),
            ``hf:ORG/NAME[@REVISION]``, ``hf:/path/to/dir``, ``ALIAS=hf:...`` or plugin names; each adds
            ``obs/<name>_image`` and ``obs/<name>_joint`` under its stored name (the alias, or derived from
            the id: ``vlnav_data.encoders.encoder_name``).
        expert: ``ppo`` (the shipped or given checkpoint) or ``pursuit`` (analytic controller).
        expert_checkpoint: PPO checkpoint path; None = the shipped one.
        instructions: instruction style: ``paper``, ``spatial`` or ``color``.
        action_mapping: ``bang_bang`` or ``velocity``; None = the preset's.
        image_size_px: square camera override in pixels; None = the preset's (256).
        max_episode_steps: time-limit override in env steps; None = the preset's (600).
        noise_std: std of Gaussian noise added to the executed action (DART); the stored label stays the
            expert's clean action. 0 disables it.
        valid_fraction: share of episodes in ``/mask/valid``.
        split_rule: ``stratified`` (default: every prefix of episode indices holds ``floor`` or ``ceil`` of
            ``n * valid_fraction`` validation episodes) or ``coin`` (an independent draw per episode, the
            rule of files built before; resume such a file with ``--split-rule coin``). See
            :func:`vlnav_data.dataset.splits.episode_split`.
        num_envs: arenas simulated in parallel.
        seed: build seed; episode ``i``'s seed is ``episode_seed(seed, i)``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for the simulator and encoders.
        encoder_batch_size: frames per encoder forward pass (None: the encoder's default).
        encoder_dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32`` or ``bf16``.
        model_paths: ``(encoder, local directory)`` pairs for built-in encoders whose weights are not in the
            Hugging Face cache (``hf:`` encoders name their directory themselves: ``hf:/path/to/dir``).
        trust_remote_code: let ``hf:`` checkpoints that bring their own code run it (recorded per encoder).
        shard_index: this shard (0-based); the build runs episodes ``shard_index::num_shards``.
        num_shards: number of shards of the build.
        resume: continue ``<out>.partial`` (with the Ray executor: skip the complete shards in
            ``<out>.shards/`` and continue the partial ones).
        overwrite: replace an existing ``out`` (the old file stays until the new one is complete).
        writer_queue_size: encoded episodes waiting for the HDF5 writer thread.
        cross_episode_batching: fill the encoder's batch with frames of consecutive episodes (True), or
            encode each episode on its own (False); None = True on CUDA, False on CPU (so CPU files stay
            bit-identical whatever the sharding). See :mod:`vlnav_data.collect.embed.embedder`.
        allow_mixed_precision: let ``resume`` continue a file whose embeddings of an encoder were computed
            with another dtype or device type (recorded in the encoder's entry); refused otherwise.
        executor: where the build runs: ``local`` (this process; ``shard_index``/``num_shards`` pick one
            shard) or ``ray`` (``num_shards`` Ray tasks, one per shard, merged into ``out``; see
            :mod:`vlnav_data.collect.sharded`).
        break_lock: take over a lock on the output whose holder ran on another host and is gone.
        keep_shards: Ray builds: keep ``<out>.shards/`` after the merge (default: removed once ``out`` is
            complete and valid).
        compile: ``torch.compile`` the renderer's shaders and the two-tower encoders' image paths
            (:func:`vlnav_data.encoders.compile_supported`; ViLT, the oracle and plugins run as they are). Both
            are compiled before the clock starts and the time is reported apart (``compile_s``); frames may
            differ from the eager renderer's by one intensity level, embeddings by float rounding.
    """

    out: str
    preset: str = "text2nav"
    num_episodes: int = 100
    encoders: tuple[str, ...] = ("siglip",)
    expert: str = "ppo"
    expert_checkpoint: str | None = None
    instructions: str = "paper"
    action_mapping: str | None = None
    image_size_px: int | None = None
    max_episode_steps: int | None = None
    noise_std: float = 0.0
    valid_fraction: float = 0.1
    split_rule: str = "stratified"
    num_envs: int = 16
    seed: int = 0
    device: str = "auto"
    encoder_batch_size: int | None = None
    encoder_dtype: str = "auto"
    model_paths: tuple[tuple[str, str], ...] = ()
    trust_remote_code: bool = False
    shard_index: int = 0
    num_shards: int = 1
    resume: bool = False
    overwrite: bool = False
    writer_queue_size: int = 4
    cross_episode_batching: bool | None = None
    allow_mixed_precision: bool = False
    executor: ExecutorConfig = ExecutorConfig()
    break_lock: bool = False
    keep_shards: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        from vlnav_data.encoders import ENCODER_NAMES, encoder_name
        from vlnav_data.sim import ACTION_MAPPINGS, INSTRUCTION_STYLES, PRESET_NAMES

        object.__setattr__(self, "out", str(self.out))
        object.__setattr__(self, "encoders", tuple(self.encoders))
        object.__setattr__(self, "model_paths", tuple((str(a), str(b)) for a, b in self.model_paths))
        if not self.out:
            raise ConfigError("--out is required: the .h5 file to write")
        if self.preset not in PRESET_NAMES:
            raise unknown_name("preset", self.preset, PRESET_NAMES)
        check_positive_int("num_episodes", self.num_episodes)
        if not self.encoders:
            raise ConfigError("at least one --encoder is required (e.g. --encoder siglip)")
        if len(set(self.encoders)) != len(self.encoders):
            raise ConfigError(f"each --encoder may be given once, got {list(self.encoders)}")
        stored: dict[str, str] = {}
        for value in self.encoders:
            name = encoder_name(value)
            if name in stored:
                raise ConfigError(
                    f"--encoder {stored[name]} and --encoder {value} would both be stored as '{name}'; name one "
                    f"with ALIAS=hf:... (e.g. --encoder {name}-2={value.partition('=')[2] or value})"
                )
            stored[name] = value
        if self.expert not in EXPERTS:
            raise unknown_name("expert", self.expert, EXPERTS)
        if self.expert_checkpoint is not None and self.expert != "ppo":
            raise ConfigError("--expert-checkpoint applies to --expert ppo only; drop it or use --expert ppo")
        if self.instructions not in INSTRUCTION_STYLES:
            raise unknown_name("instruction style", self.instructions, INSTRUCTION_STYLES)
        if self.action_mapping is not None and self.action_mapping not in ACTION_MAPPINGS:
            raise unknown_name("action mapping", self.action_mapping, ACTION_MAPPINGS)
        if self.image_size_px is not None:
            check_positive_int("image_size_px", self.image_size_px)
            if not 16 <= self.image_size_px <= 1024:
                raise ConfigError(f"image_size_px must be in [16, 1024], got {self.image_size_px}")
        if self.max_episode_steps is not None:
            check_positive_int("max_episode_steps", self.max_episode_steps)
        if not (isinstance(self.noise_std, (int, float)) and math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ConfigError(f"noise_std must be a number >= 0, got {self.noise_std!r}")
        if not (isinstance(self.valid_fraction, (int, float)) and 0.0 <= self.valid_fraction < 1.0):
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction!r}")
        if self.split_rule not in SPLIT_RULES:
            raise unknown_name("split rule", self.split_rule, SPLIT_RULES)
        check_positive_int("num_envs", self.num_envs)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_device_name(self.device)
        if self.encoder_batch_size is not None:
            check_positive_int("encoder_batch_size", self.encoder_batch_size)
        if self.encoder_dtype not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"encoder_dtype must be auto, fp32 or bf16, got '{self.encoder_dtype}'")
        for name, _ in self.model_paths:
            if name in self.encoders and name not in ENCODER_NAMES:
                raise ConfigError(
                    f"--model-path applies to built-in encoders; '{name}' is not one. Give an hf: encoder its "
                    "directory directly (--encoder hf:/path/to/dir); plugin encoders load their own weights"
                )
            if name not in self.encoders:
                raise ConfigError(
                    f"model path given for encoder '{name}', which is not built; encoders: {', '.join(self.encoders)}"
                )
        check_positive_int("num_shards", self.num_shards)
        if isinstance(self.shard_index, bool) or not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(f"shard must be i/n with 0 <= i < n, got {self.shard_index}/{self.num_shards}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; pass one")
        check_positive_int("writer_queue_size", self.writer_queue_size)
        if not isinstance(self.trust_remote_code, bool):
            raise ConfigError(f"trust_remote_code must be true or false, got {self.trust_remote_code!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"compile must be true or false, got {self.compile!r}")
        if not isinstance(self.executor, ExecutorConfig):
            raise ConfigError(f"executor must be an ExecutorConfig, got {type(self.executor).__name__}")
        if self.executor.kind == "ray":
            self._check_ray()

    @property
    def encoder_names(self) -> tuple[str, ...]:
        """The names the encoders get in the file, in ``encoders`` order."""
        from vlnav_data.encoders import encoder_name

        return tuple(encoder_name(value) for value in self.encoders)

    def _check_ray(self) -> None:
        """Rules of a build split into Ray tasks (checked before Ray starts)."""
        if self.shard_index != 0:
            raise ConfigError(
                "--shard i/n builds one shard by hand; a --ray build runs every shard itself: "
                "drop --shard and give --num-shards"
            )
        if self.num_shards > self.num_episodes:
            raise ConfigError(
                f"--num-shards {self.num_shards} exceeds --num-episodes {self.num_episodes}: every shard needs "
                "at least one episode; use fewer shards"
            )
        self.executor.check_device(self.device, "shard")

    def labelling(self) -> EpisodeLabelling:
        """The fields that decide an episode's seed, labels and split (what the pipeline reads of the build)."""
        return EpisodeLabelling(**fields_of(self, EpisodeLabelling))

    def stored(self) -> dict[str, Any]:
        """The config as stored in the file (JSON-compatible), without how this run opened the file."""
        return {
            f.name: to_jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in OPERATIONAL_FIELDS
        }

    def command(self) -> str:
        """The ``vlnav-data build`` command line that rebuilds this config (without resume/overwrite).

        Derived from the fields: every stored field that differs from its default (``preset``,
        ``num_episodes``, ``expert`` and ``seed`` always) as ``--<field> VALUE`` (:func:`build_flag`), then
        ``--encoder`` and ``--model-path`` per item, boolean flags that are on, and ``--shard i/n``.
        """
        args = ["vlnav-data", "build", "--out", Path(self.out).name]
        own_syntax = ("out", "encoders", "model_paths", "shard_index", "num_shards")
        stored = [f for f in dataclasses.fields(self) if f.name not in OPERATIONAL_FIELDS + own_syntax]
        for f in stored:
            value = getattr(self, f.name)
            if isinstance(value, bool) or value is None:
                continue
            if f.name in ALWAYS_IN_COMMAND or value != f.default:
                args += [build_flag(f.name), str(value)]
        for name in self.encoders:
            args += [build_flag("encoders"), name]
        for name, path in self.model_paths:
            args += [build_flag("model_paths"), f"{name}={path}"]
        args += [build_flag(f.name) for f in stored if getattr(self, f.name) is True]
        if self.num_shards > 1:
            args += [build_flag("shard_index"), f"{self.shard_index}/{self.num_shards}"]
        return shlex.join(args)


#: Fields :meth:`BuildConfig.command` writes even at their default value (what a reader wants to see).
ALWAYS_IN_COMMAND = ("preset", "num_episodes", "expert", "seed")

#: Fields whose command-line option is not ``--<field-with-dashes>`` (the CLI's ``vlnav-data build``).
FLAG_SPELLINGS = {
    "encoders": "--encoder",  # one per encoder
    "model_paths": "--model-path",  # NAME=DIR, one per encoder
    "shard_index": "--shard",  # i/n, with num_shards
    "executor": "--ray",  # with --cpus-per-shard, --gpus-per-shard
    "cross_episode_batching": "--cross-episode-batching",  # / --per-episode-batching
}


def build_flag(field: str) -> str:
    """The ``vlnav-data build`` option that sets a :class:`BuildConfig` field (``num_envs`` -> ``--num-envs``)."""
    return FLAG_SPELLINGS.get(field, "--" + field.replace("_", "-"))


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` into ``(i, n)``.

    Raises:
        ConfigError: not two integers separated by ``/`` with ``0 <= i < n``.
    """
    parts = str(text).split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got '{text}'")
    i, n = int(parts[0]), int(parts[1])
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard i/n needs 0 <= i < n, got '{text}'")
    return i, n


def parse_model_paths(items: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Parse ``--model-path NAME=DIR`` items."""
    out = []
    for item in items:
        name, sep, path = str(item).partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--model-path must look like NAME=DIR (e.g. siglip=/models/siglip), got '{item}'")
        out.append((name, path))
    return tuple(out)


def load_build_toml(path: str | Path) -> dict[str, Any]:
    """Read a build config TOML: keys are :class:`BuildConfig` fields (``vlnav_data.config_files``).

    Besides the field names: ``encoder`` for ``encoders``, ``shard = "i/n"``, ``executor = "ray"`` or an
    ``[build.executor]`` table of :class:`ExecutorConfig` fields, and ``model_paths`` as a table
    ``{encoder = "DIR"}``. Relative ``out`` paths are kept as written (relative to the working directory).

    Raises:
        ConfigError: the file is missing, not TOML, has unknown keys or values of the wrong type.
    """
    p = Path(path)

    def shard(value: Any) -> dict[str, Any]:
        index, count = parse_shard(value)
        return {"shard_index": index, "num_shards": count}

    def executor(value: Any) -> dict[str, Any]:
        if isinstance(value, str):  # executor = "ray": the defaults of that kind
            return {"executor": ExecutorConfig(kind=value)}
        if not isinstance(value, dict):
            raise ConfigError(f"config file '{p}': executor must be a kind (\"ray\") or a table, got {value!r}")
        fields = {f.name for f in dataclasses.fields(ExecutorConfig)}
        for key in value:
            if key.replace("-", "_") not in fields:
                raise ConfigError(f"config file '{p}': unknown executor key '{key}'.{did_you_mean(key, fields)}")
        return {"executor": ExecutorConfig(**{k.replace("-", "_"): v for k, v in value.items()})}

    def model_paths(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(
                f"config file '{p}': model_paths must be a table of encoder = \"DIR\" (e.g. "
                f'model_paths = {{ siglip = "/models/siglip" }}), got {value!r}'
            )
        return {"model_paths": tuple(value.items())}

    return load_config_toml(
        p,
        BuildConfig,
        table="build",
        aliases={"encoder": "encoders"},
        special={"shard": shard, "executor": executor, "model_paths": model_paths},
    )
