"""One finished episode as the writer takes it (:class:`EpisodeRecord`), its check against a layout, and a
stored demo read back as the record that writes it again unchanged (:func:`stored_episode_record`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vlnav_data.dataset import schema
from vlnav_data.dataset.layout import DatasetLayout, ImportedLayout
from vlnav_data.errors import SchemaError

if TYPE_CHECKING:
    from vlnav_data.dataset.reader import DatasetReader

#: The demo attributes an :class:`EpisodeRecord` has fields for (with ``num_samples``, which the writer
#: sets); every other attribute of a stored demo travels in ``extra_attrs``.
RECORD_ATTRS = tuple(a for a in (*schema.DEMO_ATTRS, *schema.EXTRA_DEMO_ATTRS) if a != "num_samples")


@dataclass(frozen=True, kw_only=True, eq=False)
class EpisodeRecord:
    """One finished episode, as plain numpy arrays (T = number of env steps).

    Attributes:
        actions: float32 ``(T, 2)`` in [-1, 1], the label (the expert's clean action).
        wheel_vel_radps: float32 ``(T, 2)``, wheel speeds commanded by the executed action (rad/s).
        rewards: float32 ``(T,)``.
        dones: uint8 ``(T,)``, 1 at the step that ended the episode.
        rgb: uint8 ``(T, H, W, 3)``, the frame the policy saw before acting.
        privileged_state: float32 ``(T, D)``.
        instructions: T strings, the instruction at each step.
        image_embeddings: encoder name -> ``(T, E)`` image embeddings.
        joint_embeddings: encoder name -> ``(T, E)`` fused embeddings.
        text_embeddings: encoder name -> {instruction -> ``(E,)``}; covers every distinct instruction of
            the episode that the file does not hold yet (extra entries are ignored).
        seed: the episode seed.
        episode_index: global index of the episode in its build (stable across shards).
        target_index: index of the target sphere.
        target_color: colour name of the target.
        termination: termination cause (``success``, ``out_of_bounds_*``, ``time_limit``).
        success: True when the episode ended at the target.
        expert: which policy acted (``ppo``, ``pursuit``, ...).
        split: ``train`` or ``valid``.
    """

    actions: np.ndarray
    wheel_vel_radps: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    rgb: np.ndarray
    privileged_state: np.ndarray
    instructions: Sequence[str]
    image_embeddings: Mapping[str, np.ndarray]
    joint_embeddings: Mapping[str, np.ndarray]
    text_embeddings: Mapping[str, Mapping[str, np.ndarray]]
    seed: int
    episode_index: int
    target_index: int
    target_color: str
    termination: str
    success: bool
    expert: str
    split: str = "train"
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(np.shape(self.actions)[0])


def check_episode(ep: EpisodeRecord, lay: DatasetLayout) -> int:
    """Check an episode against a file's layout before any of it is written; return its number of steps.

    Raises:
        SchemaError: an array of the wrong shape or dtype, missing embeddings, actions outside [-1, 1],
            an unknown split.
    """
    t = ep.num_steps
    if t < 1:
        raise SchemaError(f"episode {ep.episode_index} has no steps; an episode needs at least one step")
    expect = {
        "actions": (np.shape(ep.actions), (t, 2)),
        "wheel_vel_radps": (np.shape(ep.wheel_vel_radps), (t, 2)),
        "rewards": (np.shape(ep.rewards), (t,)),
        "dones": (np.shape(ep.dones), (t,)),
        "rgb": (np.shape(ep.rgb), (t, lay.image_height, lay.image_width, 3)),
        "privileged_state": (np.shape(ep.privileged_state), (t, lay.state_dim)),
        "instructions": ((len(ep.instructions),), (t,)),
    }
    for enc in lay.encoders:
        for kind, table in (("image", ep.image_embeddings), ("joint", ep.joint_embeddings)):
            if enc.name not in table:
                raise SchemaError(
                    f"episode {ep.episode_index} lacks {kind} embeddings of encoder '{enc.name}'; "
                    f"the file stores {list(lay.encoder_names)}"
                )
            expect[f"{kind}_embeddings['{enc.name}']"] = (np.shape(table[enc.name]), (t, enc.dim))
    bad = [f"{k}: expected {want}, got {got}" for k, (got, want) in expect.items() if tuple(got) != want]
    if bad:
        raise SchemaError(f"episode {ep.episode_index} does not fit the file layout: " + "; ".join(bad))
    if np.asarray(ep.rgb).dtype != np.uint8:
        raise SchemaError(f"rgb must be uint8, got {np.asarray(ep.rgb).dtype}")
    actions = np.asarray(ep.actions, dtype=np.float32)
    if not np.all(np.isfinite(actions)) or np.abs(actions).max() > 1.0:
        raise SchemaError(
            f"episode {ep.episode_index}: actions must be finite and within [-1, 1], "
            f"got range [{actions.min():.3f}, {actions.max():.3f}]; clip the label before writing"
        )
    if ep.split not in schema.SPLITS:
        raise SchemaError(f"split must be one of {schema.SPLITS}, got '{ep.split}'")
    return t


@dataclass(frozen=True, kw_only=True, eq=False)
class ImportedEpisode:
    """One episode read from another format (LeRobot v3, robomimic), as the writer takes it.

    Attributes:
        actions: float32 ``(T, A)``, the source's actions as they are (no range asked).
        numeric: dataset path (``obs/state``, ``obs/<key>``) -> float32 ``(T, ...)``, one per layout feature.
        rgb: uint8 ``(T, H, W, 3)`` of the chosen camera.
        instructions: T strings (the task of each frame).
        timestamps_s: float64 ``(T,)``, strictly increasing.
        rewards: float32 ``(T,)``; dones: uint8 ``(T,)`` (the source's, or the layout's stand-ins).
        episode_index: the source's episode index; split: ``train`` or ``valid``.
        extra_attrs: further demo attributes (e.g. ``source_demo``).
    """

    actions: np.ndarray
    numeric: Mapping[str, np.ndarray]
    rgb: np.ndarray
    instructions: Sequence[str]
    timestamps_s: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    episode_index: int
    split: str = "train"
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)
    text_embeddings: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(np.shape(self.actions)[0])


def check_imported_episode(ep: ImportedEpisode, lay: ImportedLayout) -> int:
    """Check an imported episode against its file's layout before any of it is written; return T.

    Raises:
        SchemaError: an array of the wrong shape or dtype, a missing or unexpected feature, non-finite
            actions, timestamps that do not increase, an unknown split.
    """
    t = ep.num_steps
    if t < 1:
        raise SchemaError(f"episode {ep.episode_index} has no steps; an episode needs at least one step")
    expect = {
        "actions": (np.shape(ep.actions), (t, lay.action_dim)),
        "rgb": (np.shape(ep.rgb), (t, lay.image_height, lay.image_width, 3)),
        "timestamps_s": (np.shape(ep.timestamps_s), (t,)),
        "rewards": (np.shape(ep.rewards), (t,)),
        "dones": (np.shape(ep.dones), (t,)),
        "instructions": ((len(ep.instructions),), (t,)),
    }
    wanted = {ft.path: ft for ft in lay.numeric}
    if set(ep.numeric) != set(wanted):
        raise SchemaError(
            f"episode {ep.episode_index}: features {sorted(ep.numeric)} are not the layout's {sorted(wanted)}"
        )
    for path, ft in wanted.items():
        expect[path] = (np.shape(ep.numeric[path]), (t, *ft.shape))
    bad = [f"{k}: expected {want}, got {got}" for k, (got, want) in expect.items() if tuple(got) != want]
    if bad:
        raise SchemaError(f"episode {ep.episode_index} does not fit the file layout: " + "; ".join(bad))
    if np.asarray(ep.rgb).dtype != np.uint8:
        raise SchemaError(f"rgb must be uint8, got {np.asarray(ep.rgb).dtype}")
    if not np.all(np.isfinite(np.asarray(ep.actions, dtype=np.float64))):
        raise SchemaError(f"episode {ep.episode_index}: actions must be finite")
    ts = np.asarray(ep.timestamps_s, dtype=np.float64)
    if t > 1 and not np.all(np.diff(ts) > 0):
        raise SchemaError(f"episode {ep.episode_index}: timestamps must increase strictly")
    if ep.split not in schema.SPLITS:
        raise SchemaError(f"split must be one of {schema.SPLITS}, got '{ep.split}'")
    return t


def stored_episode_record(reader: DatasetReader, demo: str, text_tables: Mapping[str, np.ndarray]) -> EpisodeRecord:
    """Read one stored demo back as the :class:`EpisodeRecord` that writes it again unchanged.

    ``merge`` and the Hub shards both write demos of one file into another with it.

    Args:
        reader: the open source file.
        demo: the demo name.
        text_tables: encoder name -> the source's ``/meta/text_embeddings/<enc>`` (``(K, E)``, rows in the
            order of ``reader.instructions``).

    Raises:
        SchemaError: the demo lacks one of :data:`RECORD_ATTRS`.
    """
    ep = reader.episode(demo)
    attrs = ep["attrs"]
    missing = [k for k in RECORD_ATTRS if k not in attrs]
    if missing:
        raise SchemaError(f"'{reader.path}' {demo} lacks the attribute(s) {missing}; run `vlnav-data validate`")
    used = sorted({int(i) for i in ep[schema.INSTRUCTION_INDEX]})
    table = reader.instructions
    return EpisodeRecord(
        actions=ep[schema.ACTIONS],
        wheel_vel_radps=ep[schema.WHEEL_VEL],
        rewards=ep[schema.REWARDS],
        dones=ep[schema.DONES],
        rgb=ep[schema.RGB],
        privileged_state=ep[schema.PRIVILEGED_STATE],
        instructions=ep["instructions"],
        image_embeddings={e: ep[schema.encoder_path(e, "image")] for e in reader.encoders},
        joint_embeddings={e: ep[schema.encoder_path(e, "joint")] for e in reader.encoders},
        text_embeddings={e: {table[i]: text_tables[e][i] for i in used} for e in reader.encoders},
        seed=int(attrs["seed"]),
        episode_index=int(attrs["episode_index"]),
        target_index=int(attrs["target_index"]),
        target_color=str(attrs["target_color"]),
        termination=str(attrs["termination"]),
        success=bool(attrs["success"]),
        expert=str(attrs["expert"]),
        split=str(attrs["split"]),
        extra_attrs={k: v for k, v in attrs.items() if k not in (*RECORD_ATTRS, "num_samples")},
    )
