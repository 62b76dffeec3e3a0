"""The ``vlnav-demos`` HDF5 layout: names, versions, dtypes and storage settings (DESIGN §5).

A ``vlnav-demos`` file is a valid robomimic dataset with our provenance in attributes and ``/meta``::

    / attrs: format="vlnav-demos", format_version, complete, created_utc, writer, fps, features_json,
             build_config_json, sim_config_json, encoders_json
    /data attrs: total, env_args (JSON: env_name, type, env_kwargs), num_demos
    /data/demo_{i}   i = 0..N-1 contiguous; attrs num_samples (written last), seed, target_color,
                     termination, success, expert
      actions (T,2) float32 in [-1,1]     action_dict/wheel_vel (T,2) float32 rad/s
      rewards (T,) float32   dones (T,) uint8   timestamps (T,) float64   instruction_index (T,) int32
      obs/rgb (T,H,W,3) uint8, one frame per chunk, gzip
      obs/privileged_state (T,D) float32
      obs/<enc>_image (T,E) float16    obs/<enc>_joint (T,E) float16    (one pair per encoder)
    /mask/train, /mask/valid       byte-string ('S') demo names, disjoint

An imported file (LeRobot v3 or robomimic, DESIGN §11 "Past the arena") has ``sim_config_json`` =
:data:`NO_ARENA`, a root ``source_json`` (:data:`SOURCE_ATTR`), demos with attrs ``num_samples``,
``episode_index``, ``split`` only, ``actions (T, A)`` of any width, ``obs/state`` and ``obs/<key>`` float32
features named in ``features_json`` (each with its ``source_key``), and no ``obs/privileged_state`` or
``action_dict/wheel_vel`` (:data:`IMPORTED_DATASETS`, :data:`ARENA_ONLY_DATASETS`).
    /meta/instructions (K,) UTF-8   /meta/text_embeddings/<enc> (K,E) float32

Nothing but ``demo_<i>`` groups lives under ``/data`` and no string dataset lives under a demo: robomimic
sorts ``/data`` children by ``int(name[5:])`` and diffusion_policy loops ``range(len(demos))``.
"""

from __future__ import annotations

import re

from vlnav_data import names
from vlnav_data.errors import ConfigError

FORMAT_NAME = "vlnav-demos"
"""Value of the root attribute ``format``."""

FORMAT_VERSION = "1.0.0"
"""SemVer of the layout. Readers refuse a file whose major version is newer than theirs."""

FORMAT_MAJOR = int(FORMAT_VERSION.split(".")[0])

ROBOMIMIC_GYM_ENV_TYPE = 2
"""robomimic's ``EnvType.GYM_TYPE``: the ``type`` stored in ``/data.attrs["env_args"]``."""

ROOT_ATTRS = (
    "format",
    "format_version",
    "complete",
    "created_utc",
    "writer",
    "fps",
    "features_json",
    "build_config_json",
    "sim_config_json",
    "encoders_json",
)
"""Attributes every file carries on ``/``."""

JSON_ROOT_ATTRS = ("features_json", "build_config_json", "sim_config_json", "encoders_json")

NO_ARENA = {"arena": "none"}
"""``sim_config_json`` of a file recorded without this toolkit's simulator (imported from LeRobot v3 or
robomimic, DESIGN §11 "Past the arena"): no arena to roll out in, so closed-loop tools refuse it."""

SOURCE_ATTR = "source_json"
"""Root attribute of an imported file only: JSON provenance ``{"kind": "lerobot" | "robomimic", ...}``
(source id, revision, the source's own metadata)."""

STATE = "obs/state"
"""An imported file's proprioceptive state ``(T, S)`` float32 (the student may read it; column names in
``features_json["state"]["names"]``). Arena files have ``obs/privileged_state`` instead."""

SOURCE_KINDS = ("lerobot", "robomimic")
"""``source_json["kind"]`` of an imported file: the format it was read from."""

IMPORTED_DEMO_ATTRS = ("num_samples", "episode_index", "split")
"""The attributes of a demo of an imported file (``num_samples`` written last)."""

ARENA_ONLY_DEMO_ATTRS = ("seed", "target_color", "termination", "success", "expert")
"""Demo attributes only an arena episode has: an imported file's demos carry none of them."""

DATA_ATTRS = ("total", "env_args", "num_demos")
"""Attributes on ``/data`` (robomimic's ``total`` and ``env_args``, LIBERO's ``num_demos``)."""

DEMO_ATTRS = ("num_samples", "seed", "target_color", "termination", "success", "expert")
"""Attributes on every ``/data/demo_i``. ``num_samples`` is written last: it marks the demo committed."""

EXTRA_DEMO_ATTRS = ("episode_index", "target_index", "split")
"""Our additional demo attributes: global episode index in the build, target sphere, train/valid."""

SPLITS = ("train", "valid")
"""Filter keys under ``/mask`` (robomimic ``hdf5_filter_key`` / ``hdf5_validation_filter_key``)."""

ACTIONS = "actions"
WHEEL_VEL = "action_dict/wheel_vel"
REWARDS = "rewards"
DONES = "dones"
TIMESTAMPS = "timestamps"
INSTRUCTION_INDEX = "instruction_index"
RGB = "obs/rgb"
PRIVILEGED_STATE = "obs/privileged_state"

META_INSTRUCTIONS = "meta/instructions"
META_TEXT_EMBEDDINGS = "meta/text_embeddings"

ACTION_DIM = 2
ACTION_NAMES = ("left_wheel", "right_wheel")

BASE_DATASETS: dict[str, str] = {
    ACTIONS: "float32",
    WHEEL_VEL: "float32",
    REWARDS: "float32",
    DONES: "uint8",
    TIMESTAMPS: "float64",
    INSTRUCTION_INDEX: "int32",
    RGB: "uint8",
    PRIVILEGED_STATE: "float32",
}
"""Every demo's datasets (path relative to the demo group) and their dtypes, encoder keys aside."""

ARENA_ONLY_DATASETS = (WHEEL_VEL, PRIVILEGED_STATE)
"""Demo datasets only an arena episode has: an imported file's demos carry none of them."""

IMPORTED_DATASETS: dict[str, str] = {
    ACTIONS: "float32",
    REWARDS: "float32",
    DONES: "uint8",
    TIMESTAMPS: "float64",
    INSTRUCTION_INDEX: "int32",
    RGB: "uint8",
}
"""Every demo of an imported file has these; its numeric features (``obs/state``, ``obs/<key>``, float32)
are listed in ``features_json`` and its actions have any width ``(T, A)``, unbounded."""

EMBEDDING_DTYPE = "float16"
"""Per-step embeddings are stored in float16 (cosine error ~1e-7 on unit vectors, half the bytes)."""

TEXT_EMBEDDING_DTYPE = "float32"
"""The instruction table's embeddings are few; they keep full precision."""

EMBEDDING_KINDS = ("image", "joint")

#: What a policy or a probe reads of one encoder, per step: its fused ``joint`` or its ``image`` embedding
#: (``obs/<enc>_<kind>``), or the ``text`` embedding of the step's instruction
#: (``/meta/text_embeddings/<enc>[instruction_index]``). :meth:`DatasetReader.feature_rows` reads them.
FEATURE_SETS = ("joint", "image", "text")
"""Per encoder, two per-step observation keys: ``obs/<enc>_image`` and ``obs/<enc>_joint``."""

PORTABLE_FILTER_IDS = {1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
"""HDF5 filter ids every h5py installation reads without plugins (h5py docs, "Lossless compression")."""

GZIP_LEVEL_RGB = 4
GZIP_LEVEL_LOWDIM = 4
LOWDIM_CHUNK_BYTES = 512 * 1024
"""Target chunk size for per-step vectors (h5py: keep chunks between 10 KiB and 1 MiB)."""

PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"

_DEMO_RE = re.compile(r"^demo_(0|[1-9][0-9]*)$")


def is_imported(sim_config: object) -> bool:
    """True when a parsed ``sim_config_json`` says the file has no arena (:data:`NO_ARENA`)."""
    return sim_config == NO_ARENA


def demo_name(index: int) -> str:
    """Return ``"demo_<index>"`` (unpadded, as robomimic and diffusion_policy expect)."""
    if index < 0:
        raise ValueError(f"demo index must be >= 0, got {index}")
    return f"demo_{index}"


def demo_index(name: str) -> int | None:
    """Return the integer of ``demo_<i>``, or None when ``name`` is not a well-formed demo name."""
    match = _DEMO_RE.match(name)
    return int(match.group(1)) if match else None


def encoder_key(encoder: str, kind: str) -> str:
    """Observation key of one encoder's per-step embedding, e.g. ``siglip_joint``.

    Args:
        encoder: encoder name (``siglip``, ``siglip-tiny-random``, ...). Dashes are kept: HDF5 and
            robomimic accept any name without ``/``.
        kind: ``"image"`` or ``"joint"``.
    """
    if kind not in EMBEDDING_KINDS:
        raise ValueError(f"embedding kind must be one of {EMBEDDING_KINDS}, got '{kind}'")
    return f"{encoder}_{kind}"


def encoder_path(encoder: str, kind: str) -> str:
    """Dataset path of one encoder's per-step embedding relative to a demo group (``obs/<enc>_<kind>``)."""
    return f"obs/{encoder_key(encoder, kind)}"


def check_feature_set(features: str) -> None:
    """Refuse a feature set that is not one of :data:`FEATURE_SETS`.

    Raises:
        ConfigError: with the accepted names.
    """
    if features not in FEATURE_SETS:
        raise ConfigError(f"--features must be one of {', '.join(FEATURE_SETS)}, got '{features}'")


def valid_encoder_name(name: str) -> bool:
    """True when ``name`` can name an encoder in the file (letters, digits, ``_`` and ``-``; the shared rule
    of :mod:`vlnav_data.names`)."""
    return names.valid_encoder_name(name)


def parse_version(text: str) -> tuple[int, int, int]:
    """Parse ``"MAJOR.MINOR.PATCH"``.

    Raises:
        ValueError: not three dot-separated non-negative integers.
    """
    parts = str(text).split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"format_version must look like 'MAJOR.MINOR.PATCH', got '{text}'")
    return int(parts[0]), int(parts[1]), int(parts[2])


def lowdim_chunk_rows(row_bytes: int) -> int:
    """Rows per chunk for a per-step vector dataset so a chunk is about :data:`LOWDIM_CHUNK_BYTES`."""
    return int(max(16, min(4096, LOWDIM_CHUNK_BYTES // max(1, row_bytes))))
