"""What a writer needs to know up front: image size, state columns, encoders, control rate, provenance."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vlnav_data.dataset import schema
from vlnav_data.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class EncoderEntry:
    """One encoder whose embeddings the file stores (``obs/<name>_image``, ``obs/<name>_joint``).

    Attributes:
        name: the encoder's name in the file, e.g. ``siglip``, ``siglip-tiny-random``, an ``hf:`` alias.
        dim: embedding width E.
        model_id: model id or local path the weights came from.
        revision: what identifies the weights (cache commit, ``sha256:`` content hash of a local directory,
            ``seed-N``, a plugin's version), else ``""``.
        fusion: how ``<name>_joint`` was computed from the image and text embeddings.
        privileged: True when the embedding sees privileged state (the ``oracle`` encoder).
        note: free text (e.g. "random weights: tests only").
        source: ``builtin``, ``hf`` or ``plugin`` (see ``EncoderSpec.source``); files written before this
            field existed read as ``builtin``.
        dtype: compute dtype that produced the stored embeddings (``float32`` / ``bfloat16``); ``""`` in
            files written before precision was recorded.
        device_type: ``cpu`` or ``cuda`` (``""`` when unknown, as above).
        preprocessing: image size, mean/std, resampling and text max length used (JSON object).
        library_versions: torch / transformers versions that computed the embeddings.
        trust_remote_code: True when the model's own repository code ran.
        mixed_precision: every ``{"dtype", "device_type"}`` that contributed embeddings, in order, when
            more than one did (accepted with ``--allow-mixed-precision`` by ``build --resume``, ``merge``
            or ``embed --resume``; see :mod:`vlnav_data.dataset.precision`). Empty (and absent from the
            file's JSON) when one precision computed every embedding; ``dtype`` and ``device_type`` then
            name it, and for a mixed entry they name the first contributor.
    """

    name: str
    dim: int
    model_id: str = ""
    revision: str = ""
    fusion: str = "l2(l2(image) + l2(text))"
    privileged: bool = False
    note: str = ""
    source: str = "builtin"
    dtype: str = ""
    device_type: str = ""
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    library_versions: Mapping[str, str] = field(default_factory=dict)
    trust_remote_code: bool = False
    mixed_precision: tuple[Mapping[str, str], ...] = ()

    def __post_init__(self) -> None:
        mixed = tuple(
            {"dtype": str(m.get("dtype", "")), "device_type": str(m.get("device_type", ""))}
            for m in (self.mixed_precision or ())
        )
        object.__setattr__(self, "mixed_precision", mixed)
        if not schema.valid_encoder_name(self.name):
            raise ConfigError(
                f"encoder name must be letters, digits, '_' or '-', got '{self.name}'; rename the encoder"
            )
        if int(self.dim) <= 0:
            raise ConfigError(f"encoder '{self.name}' dim must be positive, got {self.dim}")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["preprocessing"] = dict(self.preprocessing)
        out["library_versions"] = dict(self.library_versions)
        if self.mixed_precision:
            out["mixed_precision"] = [dict(m) for m in self.mixed_precision]
        else:  # files with one precision look exactly as before this field existed
            del out["mixed_precision"]
        return out


@dataclass(frozen=True, kw_only=True)
class _FramesLayout:
    """What every file holds whatever recorded it: frames of one size at one rate, and the encoders' embeddings.

    The two layouts (:class:`DatasetLayout`, the arena's; :class:`ImportedLayout`) add their own per-step data to
    the steps every demo has (``rewards``, ``dones``, ``timestamps``, ``instruction_index``, ``obs/rgb``).
    """

    image_height: int
    image_width: int
    fps: float
    encoders: tuple[EncoderEntry, ...] = ()

    def _check_frames(self) -> None:
        if self.image_height <= 0 or self.image_width <= 0:
            raise ConfigError(f"image size must be positive, got {self.image_height}x{self.image_width}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"fps must be a positive number, got {self.fps}")

    @property
    def encoder_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.encoders)

    def _step_features(self, rewards_note: str, dones_note: str) -> dict[str, dict[str, Any]]:
        """The ``features_json`` entries of the steps every demo has."""
        h, w = self.image_height, self.image_width
        return {
            "rewards": _feat(schema.REWARDS, "float32", [], None, "reward", rewards_note),
            "dones": _feat(schema.DONES, "uint8", [], None, "done", dones_note),
            "timestamps": _feat(schema.TIMESTAMPS, "float64", [], None, "time", "s"),
            "instruction_index": _feat(
                schema.INSTRUCTION_INDEX, "int32", [], None, "instruction", "row of /meta/instructions"
            ),
            "rgb": _feat(schema.RGB, "uint8", [h, w, 3], ["height", "width", "channel"], "rgb", "pixel"),
        }

    def _with_encoders(self, feats: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for enc in self.encoders:
            feats.update(encoder_features(enc))
        return feats

    def _demo_datasets(
        self,
        dtypes: Mapping[str, Any],
        actions: Mapping[str, tuple[int, ...]],
        extra: Mapping[str, tuple[Any, tuple[int, ...]]],
    ) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """Path in a demo -> (dtype, shape of one step): ``actions`` first, the common steps (dtypes from
        ``dtypes``), ``extra``, then each encoder's embeddings."""
        shapes = {
            **actions,
            schema.REWARDS: (),
            schema.DONES: (),
            schema.TIMESTAMPS: (),
            schema.INSTRUCTION_INDEX: (),
            schema.RGB: (self.image_height, self.image_width, 3),
        }
        out: dict[str, tuple[Any, tuple[int, ...]]] = {k: (dtypes[k], v) for k, v in shapes.items()}
        out.update(extra)
        for enc in self.encoders:
            for kind in schema.EMBEDDING_KINDS:
                out[schema.encoder_path(enc.name, kind)] = (schema.EMBEDDING_DTYPE, (enc.dim,))
        return out


@dataclass(frozen=True, kw_only=True)
class DatasetLayout(_FramesLayout):
    """Shapes and provenance fixed for a whole file.

    Attributes:
        image_height: H of ``obs/rgb`` (pixels).
        image_width: W of ``obs/rgb`` (pixels).
        state_names: column names of ``obs/privileged_state`` (D = len).
        encoders: the encoders whose embeddings each demo carries (at least one).
        fps: control rate in Hz; ``timestamps = step / fps``.
        wheel_speed_limit_radps: wheel speed at action magnitude 1 (documents ``action_dict/wheel_vel``).
        build_config: the resolved build configuration (stored as ``build_config_json``).
        sim_config: the simulator configuration (stored as ``sim_config_json``).
        env_name: robomimic ``env_args["env_name"]``.
        env_kwargs: robomimic ``env_args["env_kwargs"]`` (defaults to the sim config).
        rebuild_command: the shell command that rebuilds the file (shown by the dataset card).
        camera: free-form camera description stored on ``obs/rgb``.
    """

    state_names: tuple[str, ...]
    encoders: tuple[EncoderEntry, ...]
    wheel_speed_limit_radps: float = 20.0
    build_config: Mapping[str, Any] = field(default_factory=dict)
    sim_config: Mapping[str, Any] = field(default_factory=dict)
    env_name: str = "vlnav/Arena-v0"
    env_kwargs: Mapping[str, Any] | None = None
    rebuild_command: str = ""
    camera: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_frames()
        if not self.state_names:
            raise ConfigError("state_names must name at least one privileged-state column")
        if not self.encoders:
            raise ConfigError("a dataset needs at least one encoder; pass one with --encoder NAME")
        names = [e.name for e in self.encoders]
        if len(set(names)) != len(names):
            raise ConfigError(f"each encoder may appear once, got {names}")
        for label, value in (("build_config", self.build_config), ("sim_config", self.sim_config)):
            try:
                json.dumps(value)
            except TypeError as exc:
                raise ConfigError(f"{label} must be JSON-serialisable: {exc}") from exc

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    def env_args(self) -> dict[str, Any]:
        """robomimic's ``env_args``: ``env_name``, ``type`` (GYM = 2) and an ``env_kwargs`` dict."""
        kwargs = dict(self.env_kwargs) if self.env_kwargs is not None else dict(self.sim_config)
        return {"env_name": self.env_name, "type": schema.ROBOMIMIC_GYM_ENV_TYPE, "env_kwargs": kwargs}

    def features(self) -> dict[str, dict[str, Any]]:
        """Per-step features (LeRobot ``info.json`` style): key -> path, dtype, shape, names, modality, units."""
        return self._with_encoders(
            {
                "actions": _feat(
                    schema.ACTIONS, "float32", [2], list(schema.ACTION_NAMES), "action", "normalised [-1, 1]"
                ),
                "wheel_vel": _feat(schema.WHEEL_VEL, "float32", [2], list(schema.ACTION_NAMES), "action", "rad/s"),
                **self._step_features("", "1 at the last step"),
                "privileged_state": _feat(
                    schema.PRIVILEGED_STATE, "float32", [self.state_dim], list(self.state_names), "low_dim", "SI"
                ),
            }
        )

    def datasets(self) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """Every dataset of a demo: path in the demo -> (dtype, shape of one step)."""
        dtypes = schema.BASE_DATASETS
        actions = {schema.ACTIONS: (schema.ACTION_DIM,), schema.WHEEL_VEL: (schema.ACTION_DIM,)}
        state = {schema.PRIVILEGED_STATE: (dtypes[schema.PRIVILEGED_STATE], (self.state_dim,))}
        return self._demo_datasets(dtypes, actions, state)


def encoder_features(entry: EncoderEntry) -> dict[str, dict[str, Any]]:
    """The ``features_json`` entries of one encoder: ``<name>_image`` and ``<name>_joint``."""
    return {
        schema.encoder_key(entry.name, kind): _feat(
            schema.encoder_path(entry.name, kind), schema.EMBEDDING_DTYPE, [entry.dim], None, "low_dim", ""
        )
        for kind in schema.EMBEDDING_KINDS
    }


def _feat(path: str, dtype: str, shape: list[int], names: list[str] | None, modality: str, units: str) -> dict:
    return {"path": path, "dtype": dtype, "shape": shape, "names": names, "modality": modality, "units": units}


@dataclass(frozen=True, kw_only=True)
class ImportedFeature:
    """One numeric per-step feature of an imported file, stored float32 ``(T, *shape)`` at ``path``.

    Attributes:
        key: its ``features_json`` key (``state`` for ``obs/state``; the obs key otherwise).
        path: dataset path in a demo (``obs/state``, ``obs/<key>``).
        shape: shape of one step (e.g. ``(7,)``).
        names: column names, or None when the source names none.
        source_key: the feature's name in the source (``observation.state``, ``obs/robot0_eef_pos``).
    """

    key: str
    path: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None
    source_key: str


@dataclass(frozen=True, kw_only=True)
class ImportedLayout(_FramesLayout):
    """Shapes and provenance of a file imported from LeRobot v3 or robomimic (no arena, DESIGN §11).

    The writer takes it where it takes a :class:`DatasetLayout` (same attributes it reads); episodes are
    :class:`~vlnav_data.dataset.episode_record.ImportedEpisode`.

    Attributes:
        image_height / image_width: the chosen camera's frame size (``obs/rgb``).
        fps: frames per second of the source.
        action_names: the ``A`` columns of ``actions``.
        action_source_key: the actions' name in the source (``action``, ``actions``).
        numeric: the other numeric features (``obs/state`` first when the source has a state).
        source: ``source_json``: ``{"kind", "id", "revision", "info", ...}``.
        rewards_note / dones_note: what ``rewards`` / ``dones`` hold (the source's, or a stand-in).
        camera: ``{"source_key": ...}`` stored on ``obs/rgb``.
        build_config: the import configuration (resuming checks it); rebuild_command: the command.
    """

    action_names: tuple[str, ...]
    action_source_key: str
    numeric: tuple[ImportedFeature, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)
    rewards_note: str = ""
    dones_note: str = ""
    camera: Mapping[str, Any] = field(default_factory=dict)
    build_config: Mapping[str, Any] = field(default_factory=dict)
    rebuild_command: str = ""

    def __post_init__(self) -> None:
        self._check_frames()
        if not self.action_names:
            raise ConfigError("an imported file needs at least one action column")
        if self.source.get("kind") not in schema.SOURCE_KINDS:
            raise ConfigError(f"source kind must be one of {schema.SOURCE_KINDS}, got {self.source.get('kind')!r}")
        keys = [f.key for f in self.numeric]
        if len(set(keys)) != len(keys) or not all(f.path.startswith("obs/") for f in self.numeric):
            raise ConfigError(f"imported features need distinct keys and obs/ paths, got {keys}")
        try:
            json.dumps(dict(self.source))
            json.dumps(dict(self.build_config))
        except TypeError as exc:
            raise ConfigError(f"source and build_config must be JSON-serialisable: {exc}") from exc

    @property
    def sim_config(self) -> dict[str, Any]:
        return dict(schema.NO_ARENA)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def env_args(self) -> dict[str, Any]:
        """robomimic's ``env_args``: the source's kind and id, no environment to make."""
        name = f"{self.source.get('kind')}:{self.source.get('id', '')}"
        return {"env_name": name, "type": schema.ROBOMIMIC_GYM_ENV_TYPE, "env_kwargs": {}}

    def features(self) -> dict[str, dict[str, Any]]:
        """Per-step features (``features_json``); each numeric one records its ``source_key``."""
        feats: dict[str, dict[str, Any]] = {
            "actions": _feat(schema.ACTIONS, "float32", [self.action_dim], list(self.action_names), "action", ""),
            **self._step_features(self.rewards_note, self.dones_note),
        }
        feats["actions"]["source_key"] = self.action_source_key
        feats["rgb"]["source_key"] = str(self.camera.get("source_key", ""))
        for ft in self.numeric:
            names = list(ft.names) if ft.names is not None else None
            feats[ft.key] = {
                **_feat(ft.path, "float32", list(ft.shape), names, "low_dim", ""),
                "source_key": ft.source_key,
            }
        return self._with_encoders(feats)

    def datasets(self) -> dict[str, tuple[Any, tuple[int, ...]]]:
        """Every dataset of a demo: path in the demo -> (dtype, shape of one step)."""
        numeric = {ft.path: ("float32", tuple(ft.shape)) for ft in self.numeric}
        return self._demo_datasets(schema.IMPORTED_DATASETS, {schema.ACTIONS: (self.action_dim,)}, numeric)
