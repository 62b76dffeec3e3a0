"""Per-episode evaluation records: run a policy on given starts, keep what diagnosis needs, save as npz.

Every length is in env steps: ``num_steps`` is the simulator's ``Episode.num_steps`` (the number of
``step()`` calls of the episode), checked here against the number of recorded actions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError

RECORD_FIELDS = (
    "episode_seed",
    "target_index",
    "success",
    "termination",
    "num_steps",
    "offsets",
    "poses",
    "actions",
    "instructions",
    "sphere_xy_m",
    "sphere_color_indices",
    "floor_rgb",
    "light_position_m",
    "wrong_sphere",
)


#: Files of an evaluation directory (``vlnav-policy eval --out DIR``): the student's and the expert's
#: :class:`EpisodeRecords`, and the sidecar that says how they were produced (what ``diagnose`` reads).
STUDENT_RECORDS = "episodes.npz"
EXPERT_RECORDS = "expert_episodes.npz"
EVAL_META = "eval_meta.json"


@dataclass(kw_only=True)
class EpisodeRecords:
    """M episodes, ragged per-step arrays concatenated with ``offsets``.

    Attributes:
        episode_seed: int64 (M,) seeds (the start is ``sample_episode_start(config, seed)``).
        target_index: int64 (M,).
        success: bool (M,).
        termination: str (M,) simulator cause (``success``, ``out_of_bounds_*``, ``time_limit``).
        num_steps: int64 (M,) env steps (``step()`` calls) of each episode.
        offsets: int64 (M + 1,); episode i's step rows are ``offsets[i]:offsets[i+1]``.
        poses: float32 (sum T + M, 3) ``[x_m, y_m, yaw_rad]``: the T poses an action was taken from, then
            the final pose (rows ``offsets[i] + i : offsets[i+1] + i + 1``; use :meth:`poses_of`).
        actions: float32 (sum T, 2).
        instructions: str (sum T,) the instruction shown at each step.
        sphere_xy_m: float32 (M, K, 2); sphere_color_indices: int64 (M, K); floor_rgb: float32 (M, 3);
        light_position_m: float32 (M, 3): the scene, to re-render first-person frames.
        wrong_sphere: bool (M,) the robot came within the success radius of a non-target sphere (the
            simulator's ``reached_wrong_sphere``, which does not end the episode).
    """

    episode_seed: np.ndarray
    target_index: np.ndarray
    success: np.ndarray
    termination: np.ndarray
    num_steps: np.ndarray
    offsets: np.ndarray
    poses: np.ndarray
    actions: np.ndarray
    instructions: np.ndarray
    sphere_xy_m: np.ndarray
    sphere_color_indices: np.ndarray
    floor_rgb: np.ndarray
    light_position_m: np.ndarray
    wrong_sphere: np.ndarray

    def __len__(self) -> int:
        return len(self.episode_seed)

    def poses_of(self, i: int) -> np.ndarray:
        """float32 (T_i + 1, 3) poses of episode i, final pose included."""
        return self.poses[self.offsets[i] + i : self.offsets[i + 1] + i + 1]

    def actions_of(self, i: int) -> np.ndarray:
        """float32 (T_i, 2) actions of episode i."""
        return self.actions[self.offsets[i] : self.offsets[i + 1]]

    def instructions_of(self, i: int) -> np.ndarray:
        """str (T_i,) instructions of episode i."""
        return self.instructions[self.offsets[i] : self.offsets[i + 1]]

    def save(self, path: Path) -> None:
        """Write a compressed npz (strings as fixed-width unicode)."""
        np.savez_compressed(path, **{f: getattr(self, f) for f in RECORD_FIELDS})

    @classmethod
    def load(cls, path: Path) -> EpisodeRecords:
        """Read :meth:`save`'s file.

        Raises:
            ConfigError: the file lacks a field.
        """
        with np.load(path, allow_pickle=False) as data:
            missing = [f for f in RECORD_FIELDS if f not in data.files]
            if missing:
                raise ConfigError(
                    f"'{path}' is not an episode-records file (missing {', '.join(missing)}); "
                    "it is written by `vlnav-policy eval`"
                )
            return cls(**{f: data[f] for f in RECORD_FIELDS})


def pose_columns(state_names: Sequence[str]) -> tuple[int, int, int, int]:
    """Indices of ``x_m, y_m, cos_yaw, sin_yaw`` in the privileged state."""
    return tuple(list(state_names).index(n) for n in ("x_m", "y_m", "cos_yaw", "sin_yaw"))  # type: ignore[return-value]


def run_policy_episodes(
    env: Any,
    policy_fn: Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray],
    episode_seeds: Sequence[int],
) -> EpisodeRecords:
    """Roll a policy out on given starts and keep the records (in the order of ``episode_seeds``).

    Args:
        env: an arena from ``make_arena`` (its ``config`` is used for the scene and success radius).
        policy_fn: ``(obs, info) -> float (N, 2)`` actions.
        episode_seeds: M distinct seeds.

    Returns:
        The records; ``num_steps`` is the simulator's env-step count of each episode.
    """
    from vlnav_data.sim import PRIVILEGED_STATE_NAMES, rollout

    cols = pose_columns(PRIVILEGED_STATE_NAMES)
    seeds = [int(s) for s in episode_seeds]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"episode seeds must be distinct; got {len(seeds) - len(set(seeds))} repeats")
    by_seed: dict[int, Any] = {}
    for episode in rollout(env, policy_fn, seeds, record_rgb=False):
        by_seed[int(episode.episode_seed)] = episode
    ordered = [by_seed[s] for s in seeds]
    starts = [ep.start for ep in ordered]
    poses, actions, instructions, offsets = [], [], [], [0]
    for ep in ordered:
        num_actions = len(ep.actions)
        if int(ep.num_steps) != num_actions:
            raise RuntimeError(f"episode {ep.episode_seed}: num_steps {ep.num_steps} != {num_actions} actions")
        states = np.concatenate([ep.privileged_state, ep.final_privileged_state[None]], axis=0)
        yaw = np.arctan2(states[:, cols[3]], states[:, cols[2]])
        ep_poses = np.stack([states[:, cols[0]], states[:, cols[1]], yaw], axis=1).astype(np.float32)
        poses.append(ep_poses)
        actions.append(np.asarray(ep.actions, dtype=np.float32))
        instructions.extend(ep.instructions)
        offsets.append(offsets[-1] + num_actions)
    return EpisodeRecords(
        episode_seed=np.array(seeds, dtype=np.int64),
        target_index=np.array([s.target_index for s in starts], dtype=np.int64),
        success=np.array([bool(ep.success) for ep in ordered]),
        termination=np.array([str(ep.termination) for ep in ordered]),
        num_steps=np.array([int(ep.num_steps) for ep in ordered], dtype=np.int64),
        offsets=np.array(offsets, dtype=np.int64),
        poses=np.concatenate(poses, axis=0),
        actions=np.concatenate(actions, axis=0),
        instructions=np.array(instructions, dtype=str),
        sphere_xy_m=np.stack([s.sphere_positions_xy_m for s in starts]).astype(np.float32),
        sphere_color_indices=np.stack([s.sphere_color_indices for s in starts]).astype(np.int64),
        floor_rgb=np.stack([s.floor_rgb for s in starts]).astype(np.float32),
        light_position_m=np.stack([s.light_position_m for s in starts]).astype(np.float32),
        wrong_sphere=np.array([bool(ep.reached_wrong_sphere) for ep in ordered]),
    )


def refuse_offline_eval(eval_dir: Path) -> None:
    """An offline evaluation (``vlnav-policy eval-offline``) has no rollouts to diagnose: one line saying why.

    Raises:
        NoArenaError: the evaluated model was trained on a file without an arena.
        ConfigError: an offline evaluation of an arena model (no rollouts either).
    """
    from vlnav_data.errors import NoArenaError

    meta_path = eval_dir / EVAL_META
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if not isinstance(meta, dict) or meta.get("evaluation") != "offline":
        return
    if meta.get("trained_arena") == "none":
        raise NoArenaError(
            f"the training file '{meta.get('dataset')}' of the offline evaluation '{eval_dir}'",
            meta.get("source"),
            "diagnose",
            "it replays the rollouts of `vlnav-policy eval` in the arena; the offline figures are in its result.json",
        )
    raise ConfigError(
        f"'{eval_dir}' is an offline evaluation (held-out actions, no rollouts); diagnose reads the rollouts of "
        "`vlnav-policy eval MODEL_DIR --out DIR`"
    )


def load_eval_dir(eval_dir: str | Path) -> tuple[EpisodeRecords, EpisodeRecords | None, dict[str, Any]]:
    """``(student records, expert records or None, eval_meta)`` of a ``vlnav-policy eval`` directory.

    Raises:
        ConfigError: not an evaluation directory (a file missing, or an eval_meta.json without sim_config).
    """
    eval_dir = Path(eval_dir)
    refuse_offline_eval(eval_dir)
    for name in (STUDENT_RECORDS, EVAL_META):
        if not (eval_dir / name).is_file():
            raise ConfigError(
                f"'{eval_dir}' has no {name}; expected a directory written by `vlnav-policy eval MODEL_DIR --out DIR`"
            )
    result = json.loads((eval_dir / EVAL_META).read_text())
    if "sim_config" not in result:
        raise ConfigError(f"'{eval_dir / EVAL_META}' has no sim_config; it was not written by `vlnav-policy eval`")
    student = EpisodeRecords.load(eval_dir / STUDENT_RECORDS)
    expert = EpisodeRecords.load(eval_dir / EXPERT_RECORDS) if (eval_dir / EXPERT_RECORDS).is_file() else None
    return student, expert, result
