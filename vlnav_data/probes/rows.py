"""Read the rows a probe needs from a dataset: features, actions, labels, episode ids, per split.

Every probe fits on ``/mask/train`` and scores on ``/mask/valid``; :func:`load_probe_data` checks that
no episode sits in both (a file that breaks this is refused), and that neither split is empty.

Features (``--features``):

- ``joint``: ``obs/<enc>_joint``, the published fused embedding ``l2(l2(image) + l2(text))``;
- ``image``: ``obs/<enc>_image``;
- ``text``: the instruction's text embedding, ``/meta/text_embeddings/<enc>[instruction_index]``.

A file without an arena (imported from LeRobot or robomimic, ``DatasetReader.has_arena`` False) has no
privileged state and no target colour; its rows carry what it has instead: ``obs/state`` (the source's
proprioceptive state, column names in ``features_json["state"]["names"]``), any number of action columns
(names in ``features_json["actions"]["names"]``) and each step's progress through its episode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlnav_data.dataset.schema import check_feature_set
from vlnav_data.errors import SchemaError

SPLITS = ("train", "valid")
STATE_KEY = "obs/privileged_state"
OBS_STATE_KEY = "obs/state"  # dataset.schema.STATE: an imported file's proprioceptive state


@dataclass(frozen=True, kw_only=True, eq=False)
class ProbeRows:
    """The rows of one split, one per env step.

    Attributes:
        features: float32 ``(N, E)`` embedding per step.
        actions: float32 ``(N, 2)`` expert action.
        episode_index: int64 ``(N,)`` ``i`` of ``demo_i``.
        step_index: int64 ``(N,)`` step within the episode.
        instruction_index: int64 ``(N,)`` row of the instruction table.
        target_colour: ``(N,)`` str, the episode's ``target_color`` attribute (``""`` if absent).
        privileged_state: float32 ``(N, D)`` or ``None`` when the file has no ``obs/privileged_state``.
        obs_state: float32 ``(N, S)`` ``obs/state`` of an imported file, or ``None`` when the file has none.
        progress: float64 ``(N,)`` ``t / (T - 1)``: how far through its episode of ``T`` steps the row is
            (0 for a one-step episode).
    """

    features: np.ndarray
    actions: np.ndarray
    episode_index: np.ndarray
    step_index: np.ndarray
    instruction_index: np.ndarray
    target_colour: np.ndarray
    privileged_state: np.ndarray | None
    obs_state: np.ndarray | None = None
    progress: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def take(self, rows: np.ndarray) -> ProbeRows:
        """A subset of rows (``rows``: int index array or boolean mask)."""
        return ProbeRows(
            features=self.features[rows],
            actions=self.actions[rows],
            episode_index=self.episode_index[rows],
            step_index=self.step_index[rows],
            instruction_index=self.instruction_index[rows],
            target_colour=self.target_colour[rows],
            privileged_state=None if self.privileged_state is None else self.privileged_state[rows],
            obs_state=None if self.obs_state is None else self.obs_state[rows],
            progress=None if self.progress is None else self.progress[rows],
        )

    def subsample(self, max_rows: int | None, seed: int) -> ProbeRows:
        """At most ``max_rows`` rows drawn without replacement (seeded), in their original order."""
        if max_rows is None or len(self) <= max_rows:
            return self
        rng = np.random.default_rng(seed)
        return self.take(np.sort(rng.choice(len(self), size=max_rows, replace=False)))


@dataclass(frozen=True, kw_only=True, eq=False)
class ProbeData:
    """What a probe reads from one file.

    Attributes:
        path: the dataset file.
        encoder: the encoder whose embeddings are the features.
        features: ``joint``, ``image`` or ``text``.
        train, valid: the rows of each split.
        instructions: the instruction table (``instruction_index`` points here).
        state_names: column names of ``obs/privileged_state`` (empty when absent).
        colours: the arena's colour names (from the file's sim config), for parsing instructions.
        sim_config: the simulator configuration the demos were recorded with.
        encoder_spec: the file's record of the encoder (name, dim, model_id, ...).
        has_arena: False for a file recorded without the simulator (``sim_config_json`` is ``NO_ARENA``).
        action_names: one name per action column (``features_json["actions"]["names"]``, else ``a0``, ...).
        obs_state_names: one name per ``obs/state`` column (empty when the file has none).
        source_kind: where an imported file came from (``lerobot``, ``robomimic``; ``an unrecorded source``
            when the file records none).
    """

    path: str
    encoder: str
    features: str
    train: ProbeRows
    valid: ProbeRows
    instructions: list[str]
    state_names: list[str]
    colours: list[str]
    sim_config: dict[str, Any]
    encoder_spec: dict[str, Any]
    has_arena: bool = True
    action_names: list[str] = field(default_factory=list)
    obs_state_names: list[str] = field(default_factory=list)
    source_kind: str = ""


def load_probe_data(
    path: str | os.PathLike,
    *,
    encoder: str | None = None,
    features: str = "joint",
    need_state: bool = False,
) -> ProbeData:
    """Read features, actions and labels of the train and valid splits.

    Args:
        path: a ``vlnav-demos`` file.
        encoder: encoder name; ``None``: the file's only encoder (a file with several needs a name:
            :meth:`~vlnav_data.dataset.DatasetReader.choose_encoder`).
        features: ``joint``, ``image`` or ``text``.
        need_state: require ``obs/privileged_state`` with named columns (bearing/distance labels).

    Raises:
        ConfigError: unknown features kind, or an encoder the file lacks.
        SchemaError: missing masks, an empty split, an episode in both splits, or (with
            ``need_state``) no privileged state / no column names.
    """
    from vlnav_data.dataset import DatasetReader

    check_feature_set(features)
    with DatasetReader(path) as r:
        enc = r.choose_encoder(encoder)
        names = {s: r.split(s) for s in SPLITS}
        for s, demos in names.items():
            if not demos:
                raise SchemaError(
                    f"the '{s}' split of '{path}' is empty (/mask/{s} lists no demos); probes fit on train "
                    "and score on valid, so both need episodes: rebuild with more episodes or a valid fraction "
                    "in (0, 1)."
                )
        shared = sorted(set(names["train"]) & set(names["valid"]))
        if shared:
            raise SchemaError(
                f"'{path}' puts {len(shared)} episode(s) in both train and valid (e.g. {', '.join(shared[:3])}); "
                "probes would score on training episodes. Fix the masks (`vlnav-data validate` lists them)."
            )
        has_state = STATE_KEY in r.keys(names["train"][0])
        state_names = r.state_names if has_state else []
        if need_state and not r.has_arena:
            raise SchemaError(
                f"cannot probe bearing or distance on '{path}': it was imported from "
                f"{source_kind(r)} and has no arena (no privileged state to derive them from); "
                "probe action, state, task or progress"
            )
        if need_state and not has_state:
            raise SchemaError(
                f"'{path}' has no {STATE_KEY}, so the bearing/distance labels cannot be derived; probe a file "
                "built by `vlnav-data build` (which records it), or choose targets without bearing/distance."
            )
        if need_state and not state_names:
            raise SchemaError(
                f"'{path}' does not name the columns of {STATE_KEY} (features_json['privileged_state']['names']); "
                "the bearing/distance labels need x_m, y_m, cos_yaw, sin_yaw, target_x_m, target_y_m."
            )
        has_obs_state = OBS_STATE_KEY in r.keys(names["train"][0])
        keys = ["actions", "instruction_index"] + ([STATE_KEY] if has_state else [])
        keys += [OBS_STATE_KEY] if has_obs_state else []
        rows = {}
        for s, demos in names.items():
            stacked = r.feature_rows(enc, features, keys, demos=demos)
            colour_of = {schema_index(d): str(r.attrs(d).get("target_color", "")) for d in demos}
            ep = stacked["episode_index"]
            instr = stacked["instruction_index"].astype(np.int64)
            feats = stacked["features"]
            rows[s] = ProbeRows(
                features=np.asarray(feats, dtype=np.float32),
                actions=np.asarray(stacked["actions"], dtype=np.float32),
                episode_index=ep,
                step_index=stacked["step_index"],
                instruction_index=instr,
                target_colour=np.array([colour_of[int(e)] for e in ep], dtype=str),
                privileged_state=np.asarray(stacked[STATE_KEY], np.float32) if has_state else None,
                obs_state=np.asarray(stacked[OBS_STATE_KEY], np.float32) if has_obs_state else None,
                progress=_progress(ep, stacked["step_index"]),
            )
            if len(rows[s]) == 0:
                raise SchemaError(f"the '{s}' split of '{path}' has episodes but no steps; rebuild the dataset.")
        assert_disjoint_episodes(rows["train"], rows["valid"])
        sim_config = r.sim_config
        colours = _colour_names(sim_config)
        width = rows["train"].actions.shape[1] if rows["train"].actions.ndim == 2 else 1
        obs_width = rows["train"].obs_state.shape[1] if rows["train"].obs_state is not None else 0
        return ProbeData(
            path=str(path),
            encoder=enc,
            features=features,
            train=rows["train"],
            valid=rows["valid"],
            instructions=r.instructions,
            state_names=state_names,
            colours=colours,
            sim_config=sim_config,
            encoder_spec=r.encoder_specs[enc],
            has_arena=r.has_arena,
            action_names=column_names(r.features, "actions", width),
            obs_state_names=column_names(r.features, "state", obs_width) if has_obs_state else [],
            source_kind=source_kind(r),
        )


def column_names(features: dict[str, Any], key: str, width: int) -> list[str]:
    """The ``width`` column names ``features_json[key]["names"]`` records, else ``<key>_0``, ``<key>_1``, ..."""
    names = (features.get(key) or {}).get("names") or []
    if len(names) == width:
        return [str(n) for n in names]
    return [f"{key}_{j}" for j in range(width)]


def source_kind(reader: Any) -> str:
    """``kind`` of an imported file's provenance (root attribute ``source_json``)."""
    from vlnav_data.dataset.schema import SOURCE_ATTR
    from vlnav_data.errors import NoArenaError

    return NoArenaError.kind_of(reader.file.attrs.get(SOURCE_ATTR))


def _progress(episode_index: np.ndarray, step_index: np.ndarray) -> np.ndarray:
    """``t / (T - 1)`` per row, T the number of rows of the row's episode (0 for a one-step episode)."""
    _, inverse, counts = np.unique(episode_index, return_inverse=True, return_counts=True)
    length = counts[inverse].astype(np.float64)
    return np.where(length > 1, step_index / np.maximum(length - 1, 1), 0.0)


def schema_index(demo: str) -> int:
    """``i`` of ``demo_i``."""
    from vlnav_data.dataset.schema import demo_index

    idx = demo_index(demo)
    if idx is None:
        raise SchemaError(f"'{demo}' is not a demo name (expected demo_<i>)")
    return idx


def _colour_names(sim_config: dict[str, Any]) -> list[str]:
    """Colour names the arena can show: fixed sphere colours then the random palette (deduplicated)."""
    names: list[str] = []
    for key in ("sphere_colors", "random_sphere_palette"):
        for c in sim_config.get(key) or []:
            if isinstance(c, str) and c not in names:
                names.append(c)
    return names


def assert_disjoint_episodes(train: ProbeRows, valid: ProbeRows) -> None:
    """Raise :class:`SchemaError` when an episode contributes rows to both splits."""
    shared = np.intersect1d(np.unique(train.episode_index), np.unique(valid.episode_index))
    if len(shared):
        raise SchemaError(
            f"{len(shared)} episode(s) have rows in both train and valid (e.g. demo_{int(shared[0])}); a probe "
            "must score on episodes it never saw. Fix the dataset's masks."
        )
