"""`BuildConfig`: everything that decides what `vlnav-data build` writes, validated up front.

A build is a pure function of its config (and the device type): the resolved config is stored in the
file (``build_config_json``) and resuming with different values is refused, naming the fields.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.dataset.splits import SPLIT_RULES
from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, did_you_mean, unknown_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

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
            bit-identical whatever the sharding). See :mod:`vlnav_data.collect.embedding`.
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
        _positive_int("num_episodes", self.num_episodes)
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
            _positive_int("image_size_px", self.image_size_px)
            if not 16 <= self.image_size_px <= 1024:
                raise ConfigError(f"image_size_px must be in [16, 1024], got {self.image_size_px}")
        if self.max_episode_steps is not None:
            _positive_int("max_episode_steps", self.max_episode_steps)
        if not (isinstance(self.noise_std, (int, float)) and math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ConfigError(f"noise_std must be a number >= 0, got {self.noise_std!r}")
        if not (isinstance(self.valid_fraction, (int, float)) and 0.0 <= self.valid_fraction < 1.0):
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction!r}")
        if self.split_rule not in SPLIT_RULES:
            raise unknown_name("split rule", self.split_rule, SPLIT_RULES)
        _positive_int("num_envs", self.num_envs)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_device_name(self.device)
        if self.encoder_batch_size is not None:
            _positive_int("encoder_batch_size", self.encoder_batch_size)
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
        _positive_int("num_shards", self.num_shards)
        if isinstance(self.shard_index, bool) or not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(f"shard must be i/n with 0 <= i < n, got {self.shard_index}/{self.num_shards}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; pass one")
        _positive_int("writer_queue_size", self.writer_queue_size)
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

    def stored(self) -> dict[str, Any]:
        """The config as stored in the file (JSON-compatible), without how this run opened the file."""
        return {
            f.name: _jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in OPERATIONAL_FIELDS
        }

    def command(self) -> str:
        """The ``vlnav-data build`` command line that rebuilds this config (without resume/overwrite)."""
        d = BuildConfig.__dataclass_fields__
        args = ["vlnav-data", "build", "--out", Path(self.out).name]
        for f in (
            "preset",
            "num_episodes",
            "expert",
            "expert_checkpoint",
            "instructions",
            "action_mapping",
            "image_size_px",
            "max_episode_steps",
            "noise_std",
            "valid_fraction",
            "split_rule",
            "num_envs",
            "seed",
            "device",
            "encoder_batch_size",
            "encoder_dtype",
        ):
            value = getattr(self, f)
            if value is None or (f not in ("seed", "num_episodes", "expert", "preset") and value == d[f].default):
                continue
            args += [f"--{f.replace('_', '-')}", str(value)]
        for name in self.encoders:
            args += ["--encoder", name]
        for name, path in self.model_paths:
            args += ["--model-path", f"{name}={path}"]
        if self.trust_remote_code:
            args.append("--trust-remote-code")
        if self.compile:
            args.append("--compile")
        if self.num_shards > 1:
            args += ["--shard", f"{self.shard_index}/{self.num_shards}"]
        return shlex.join(args)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


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
    """Read a build config TOML (keys are :class:`BuildConfig` fields; ``shard = "i/n"`` accepted).

    Relative ``out`` paths are kept as written (relative to the working directory).

    Raises:
        ConfigError: the file is missing, not TOML, or has unknown keys.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: '{p}'; pass an existing .toml file to --config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{p}' is not valid TOML: {exc}") from exc
    table = raw.get("build", raw)
    if not isinstance(table, dict):
        raise ConfigError(f"config file '{p}': expected a [build] table or top-level keys")
    fields = {f.name for f in dataclasses.fields(BuildConfig)}
    out: dict[str, Any] = {}
    for key, value in table.items():
        k = key.replace("-", "_")
        if k == "shard":
            out["shard_index"], out["num_shards"] = parse_shard(value)
            continue
        if k == "encoder":
            k = "encoders"
        if k == "executor" and isinstance(value, str):  # executor = "ray": the defaults of that kind
            out[k] = ExecutorConfig(kind=value)
            continue
        if k == "executor" and isinstance(value, dict):
            ex_fields = {f.name for f in dataclasses.fields(ExecutorConfig)}
            for ek in value:
                if ek.replace("-", "_") not in ex_fields:
                    raise ConfigError(f"config file '{p}': unknown executor key '{ek}'.{did_you_mean(ek, ex_fields)}")
            out[k] = ExecutorConfig(**{ek.replace("-", "_"): ev for ek, ev in value.items()})
            continue
        if k not in fields:
            raise ConfigError(f"config file '{p}': unknown key '{key}'.{did_you_mean(k, fields)}")
        if k == "encoders" and isinstance(value, str):
            value = [value]
        if k == "model_paths":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigError(
                    f"config file '{p}': model_paths must be a table of encoder = \"DIR\" (e.g. "
                    f'model_paths = {{ siglip = "/models/siglip" }}), got {value!r}'
                )
            value = tuple(value.items())
        raw, value = value, tuple(value) if isinstance(value, list) else value
        _check_toml_type(p, key, value, _field_types()[k], raw)
        out[k] = value
    return out


@functools.cache
def _field_types() -> dict[str, Any]:
    import typing

    return typing.get_type_hints(BuildConfig)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a BuildConfig field's type (int for float is fine; bool is not an int)."""
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    """``int`` -> ``an integer``, ``str | None`` -> ``a string``, ``tuple[str, ...]`` -> ``a list of strings``."""
    import typing

    args = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
    if typing.get_origin(hint) is tuple:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s" if args else "a list"
    if args:
        return " or ".join(_describe(a) for a in args)
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(hint, str(hint))


def _check_toml_type(path: Path, key: str, value: Any, hint: Any, raw: Any) -> None:
    """Refuse a TOML value of the wrong type, naming the key, the expected type and what was given."""
    if not _matches(value, hint):
        expected = _describe(hint)
        raise ConfigError(
            f"config file '{path}': {key} must be {expected}, got {raw!r} ({type(raw).__name__}); fix the value "
            "in the TOML file"
        )
