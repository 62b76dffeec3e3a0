"""``vlnav-policy diagnose EVAL_DIR --rerun REC.rrd``: the failed episodes of an evaluation, step by step.

For each recorded episode (the failures, or those named), on the ``frame`` / ``episode`` /
``episode_step`` timelines:

- ``student/camera``: the student's first-person frame, re-rendered from its saved pose (as ``diagnose``'s
  GIFs are);
- ``actions/student/<wheel>`` and ``actions/expert/<wheel>``: what the student did and what the expert would
  have done *in the student's state*. The evaluation directory keeps the expert's own rollout, not its
  answer on the student's states, so the expert is queried here: both experts (``pursuit``, ``ppo``) are
  functions of the privileged state, which is recomputed from the student's pose and its target
  (:func:`vlnav_data.sim.task.privileged_state`);
- ``map/...``: spheres, the target's success disc, the student's and the expert's trajectories from the
  same start (each robot at the same step index);
- ``events/failure``: the episode's class (``diagnose``'s :func:`~vlnav_data.policy.diagnose.diagnose_records`)
  at the step it was decided: the first step that entered a wrong sphere's success disc for
  ``wrong_target``, the last step for every other class;
- kNN policy (``index_dir``): ``knn/neighbour_<j>`` the frame of the j-th nearest train row of the index at
  every step, with its index ``row`` and its ``episode``, ``step`` and ``similarity`` attached. The query is
  the student's feature rebuilt from the re-rendered frame and the instruction by the model's encoder
  (:func:`vlnav_data.encoders.rebuild_encoder`), searched with :meth:`vlnav_data.knn_index.KnnIndex.search`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import CheckpointError, ConfigError, check_at_least
from vlnav_data.policy.behaviour import BehaviourThresholds
from vlnav_data.policy.records import load_eval_dir
from vlnav_data.viz import arena_map, recording
from vlnav_data.viz.recording import WHEELS

STUDENT_RGB = (0.84, 0.15, 0.16)
EXPERT_RGB = (0.17, 0.63, 0.17)


@dataclass(frozen=True, kw_only=True)
class EvalRecordingConfig:
    """What ``diagnose --rerun`` records.

    Attributes:
        eval_dir: a directory written by ``vlnav-policy eval``.
        out: the ``.rrd`` recording.
        episodes: evaluation episode indices and ``START:STOP`` ranges (comma-separated); None: the failures.
        index_dir: the ``vlnav-probe knn`` directory the kNN policy ran with (required for a kNN evaluation).
        knn_k: neighbours shown (None: the index's ``k``).
        device: torch device of the rebuilt encoder and renderer.
        thresholds: ``diagnose``'s behaviour thresholds (the classes do not depend on them).
    """

    eval_dir: Path
    out: Path
    episodes: str | None = None
    index_dir: Path | None = None
    knn_k: int | None = None
    device: str = "cpu"
    thresholds: BehaviourThresholds = field(default_factory=BehaviourThresholds)

    def __post_init__(self) -> None:
        recording.check_rrd_path(self.out)
        if self.episodes is not None:
            recording.parse_indices(self.episodes)
        check_at_least("--k", self.knn_k, 1)


@dataclass(frozen=True, kw_only=True)
class EvalRecordingResult:
    """What the recording holds (added to ``diagnose``'s result.json as ``rerun``).

    Attributes:
        episodes: evaluation episode indices recorded; labels: their classes; decided_at_step: the step
            each class was decided; expert: the expert queried on the student's states (``none``: not queried);
        knn_k: neighbours shown per step (None for a BC policy).
    """

    out: str
    episodes: list[int]
    labels: list[str]
    decided_at_step: list[int]
    num_steps: int
    expert: str
    knn_k: int | None
    elapsed_s: float


def decided_at(records: Any, i: int, label: str, arena: Any) -> int:
    """The step at which episode ``i``'s class was decided (module docstring)."""
    import torch

    from vlnav_data.sim.task import sphere_distances_3d

    n = int(records.num_steps[i])
    if label == "wrong_target":
        after = torch.as_tensor(records.poses_of(i)[1:], dtype=torch.float64)  # pose reached by step t
        spheres = torch.as_tensor(records.sphere_xy_m[i], dtype=torch.float64).expand(len(after), -1, -1)
        inside = (sphere_distances_3d(arena, after, spheres) < arena.success_radius_m).numpy()
        inside[:, int(records.target_index[i])] = False
        hits = np.flatnonzero(inside.any(axis=1))
        if len(hits):
            return int(hits[0])
    return n - 1


def student_states(records: Any, i: int) -> np.ndarray:
    """float32 ``(T, 11)`` privileged states of episode ``i``'s steps, from its poses and its target."""
    import torch

    from vlnav_data.sim.task import privileged_state

    poses = torch.as_tensor(records.poses_of(i)[:-1], dtype=torch.float64)
    target = torch.as_tensor(records.sphere_xy_m[i, records.target_index[i]], dtype=torch.float64)
    return privileged_state(poses, target.expand(len(poses), 2)).numpy()


def expert_policy(meta: dict[str, Any], arena: Any) -> tuple[Any, str]:
    """The evaluation's expert (``expert_name`` in eval_meta.json), or ``(None, "none")``."""
    name = str(meta.get("expert_name", "none"))
    if name == "pursuit":
        from vlnav_data.expert import PursuitController

        return PursuitController.for_arena(arena), name
    if name == "ppo":
        from vlnav_data.policy.actors import make_expert_policy
        from vlnav_data.policy.model_dir import read_policy_spec

        return make_expert_policy("ppo", read_policy_spec(Path(meta["model_dir"])), None, arena)
    return None, "none"


class Neighbours:
    """The kNN policy's index, its encoder and the train rows of the dataset it indexes."""

    def __init__(self, meta: dict[str, Any], index_dir: Path, k: int | None, device: str) -> None:
        from vlnav_data.dataset import DatasetReader
        from vlnav_data.encoders import rebuild_encoder
        from vlnav_data.knn_index import load_knn_index
        from vlnav_data.policy.model_dir import read_policy_spec

        self.index = load_knn_index(index_dir)
        im = self.index.meta
        if im.get("encoder") != meta.get("encoder") or im.get("features") != meta.get("features"):
            raise CheckpointError(
                f"kNN index '{index_dir}' holds '{im.get('encoder')}' {im.get('features')} features, but the "
                f"evaluation ran '{meta.get('encoder')}' {meta.get('features')}; pass the index it ran with"
            )
        self.k = int(k if k is not None else im.get("k", 8))
        if not 1 <= self.k <= self.index.index.ntotal:
            raise ConfigError(f"--k must be in 1..{self.index.index.ntotal} for '{index_dir}', got {self.k}")
        spec = read_policy_spec(Path(meta["model_dir"]))
        self.features = spec.features
        self.encoder = rebuild_encoder(
            {"name": spec.encoder, **spec.encoder_spec}, device=device, where=f"model '{meta['model_dir']}'"
        )
        self.reader = DatasetReader(im["dataset"])
        demos = self.reader.split("train")
        lengths = np.array([self.reader.num_samples(d) for d in demos], dtype=np.int64)
        if int(lengths.sum()) != self.index.index.ntotal:
            self.reader.close()
            raise CheckpointError(
                f"kNN index '{index_dir}' holds {self.index.index.ntotal} vectors but the train split of "
                f"'{im['dataset']}' has {int(lengths.sum())} rows; it was not built from that file"
            )
        self.demos = demos
        self.starts = np.concatenate([[0], np.cumsum(lengths)])

    def search(self, frames: np.ndarray, states: np.ndarray, instructions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities, ids)`` of the k nearest train rows of each step's feature."""
        from vlnav_data.policy.features import online_features

        feats = online_features(self.encoder, self.features, frames, states, instructions)
        return self.index.search(feats, self.k)

    def row(self, row: int) -> tuple[str, int]:
        """``(demo name, step)`` of index row ``row``."""
        d = int(np.searchsorted(self.starts, row, side="right") - 1)
        return self.demos[d], int(row - self.starts[d])

    def frame(self, row: int) -> np.ndarray:
        demo, step = self.row(row)
        return self.reader.file["data"][demo]["obs/rgb"][step]


def blueprint(k: int | None) -> Any:
    """Frame, neighbours and events left; the map in the middle; student vs expert per wheel right."""
    import rerun.blueprint as rrb

    left = [rrb.Spatial2DView(origin="student/camera", name="student's frame (re-rendered)")]
    if k:
        left.append(
            rrb.Grid(*[rrb.Spatial2DView(origin=f"knn/neighbour_{j}", name=f"neighbour {j}") for j in range(k)])
        )
    left.append(rrb.TextLogView(origin="events", name="episodes and failures"))
    plots = [
        rrb.TimeSeriesView(
            origin="actions", contents=[f"actions/student/{w}", f"actions/expert/{w}"], name=w.replace("_", " ")
        )
        for w in WHEELS
    ]
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(*left),
            rrb.Spatial2DView(origin=arena_map.MAP, name="student (red) and expert (green) from the same start"),
            rrb.Vertical(*plots),
            column_shares=[2, 3, 3],
        ),
        *recording.side_panels(),
    )


def record_eval(config: EvalRecordingConfig) -> EvalRecordingResult:
    """Write the recording of an evaluation's failed (or chosen) episodes.

    Raises:
        ConfigError: Rerun missing, not an eval directory, an episode out of range, no failure to record, a
            kNN evaluation without ``index_dir`` (or an index for a BC one).
        CheckpointError / EncoderError: the model directory, index or encoder cannot be rebuilt.
    """
    from vlnav_data.policy.diagnose import diagnose_records
    from vlnav_data.sim import arena_config_from_json

    recording.import_rerun()
    t0 = time.perf_counter()
    student, expert_records, meta = load_eval_dir(config.eval_dir)
    labels = [d.label for d in diagnose_records(student, config.thresholds)]
    chosen = recording.select_indices((), config.episodes, len(student), f"'{config.eval_dir}'")
    if chosen is None:
        chosen = [i for i, label in enumerate(labels) if label != "success"]
        if not chosen:
            raise ConfigError(
                f"every episode of '{config.eval_dir}' succeeded: no failure to record; name episodes with --episodes"
            )
    is_knn = meta.get("policy") == "knn"
    if is_knn and config.index_dir is None:
        raise ConfigError(
            f"'{config.eval_dir}' evaluated the kNN policy; pass --index DIR (the `vlnav-probe knn` directory it ran "
            "with) so the recording can show the neighbours"
        )
    if not is_knn and config.index_dir is not None:
        raise ConfigError(
            f"--index is for kNN evaluations; '{config.eval_dir}' evaluated a {meta.get('policy')} policy"
        )
    arena = arena_config_from_json(meta["sim_config"])
    expert, expert_name = expert_policy(meta, arena)
    neighbours = Neighbours(meta, config.index_dir, config.knn_k, config.device) if is_knn else None
    decided = [decided_at(student, i, labels[i], arena) for i in chosen]
    frame0 = 0
    try:
        layout = blueprint(neighbours and neighbours.k)
        with recording.open_recording("vlnav-policy-diagnose", config.out, layout) as (rec, _):
            for side, rgb in (("student", STUDENT_RGB), ("expert", EXPERT_RGB)):
                for w in WHEELS:
                    recording.series_style(rec, f"actions/{side}/{w}", f"{side} {w.replace('_', ' ')}", rgb)
            arena_map.log_arena(rec, arena)
            for i, step in zip(chosen, decided, strict=True):
                frame0 += _log_episode(
                    rec, student, expert_records, i, labels[i], step, frame0, arena, expert, neighbours, config
                )
                rec.flush()
    finally:
        if neighbours is not None:
            neighbours.reader.close()
    return EvalRecordingResult(
        out=str(config.out),
        episodes=chosen,
        labels=[labels[i] for i in chosen],
        decided_at_step=decided,
        num_steps=frame0,
        expert=expert_name,
        knn_k=None if neighbours is None else neighbours.k,
        elapsed_s=time.perf_counter() - t0,
    )


def _log_episode(
    rec: Any,
    student: Any,
    expert_records: Any,
    i: int,
    label: str,
    decided_step: int,
    frame0: int,
    arena: Any,
    expert: Any,
    neighbours: Neighbours | None,
    config: EvalRecordingConfig,
) -> int:
    """Log evaluation episode ``i`` from ``frame0``; returns its number of steps."""
    from vlnav_data.sim import COLOR_PALETTE, render_views

    rr = recording.import_rerun()
    n = int(student.num_steps[i])
    steps = np.arange(n)
    poses = student.poses_of(i).astype(np.float64)
    actions = student.actions_of(i).astype(np.float64)
    states = student_states(student, i)
    for w, wheel in enumerate(WHEELS):
        recording.send_scalars(rec, f"actions/student/{wheel}", frame0 + steps, i, steps, actions[:, w])
    if expert is not None:
        queried = np.asarray(expert({"privileged_state": states}, {}), np.float64)
        for w, wheel in enumerate(WHEELS):
            recording.send_scalars(rec, f"actions/expert/{wheel}", frame0 + steps, i, steps, queried[:, w])
    frames = render_views(
        arena,
        poses[:n],
        sphere_positions_xy_m=student.sphere_xy_m[i],
        sphere_color_indices=student.sphere_color_indices[i],
        floor_rgb=student.floor_rgb[i],
        light_position_m=student.light_position_m[i],
        device=config.device,
    )
    instructions = [str(s) for s in student.instructions_of(i)]
    sims = ids = None
    if neighbours is not None:
        sims, ids = neighbours.search(frames, states, instructions)
    names = [arena.color_names[c] for c in student.sphere_color_indices[i]]
    recording.set_step(rec, frame0, i, 0)
    rec.log(
        "events/episode",
        rr.TextLog(
            f"episode {i} starts: seed {int(student.episode_seed[i])}, target {names[int(student.target_index[i])]}"
        ),
    )
    arena_map.log_spheres(
        rec,
        student.sphere_xy_m[i].astype(np.float64),
        np.array([COLOR_PALETTE[c] for c in names]),
        names,
        int(student.target_index[i]),
        arena.sphere_radius_m,
        arena.success_radius_xy_m,
    )
    expert_poses = None
    if expert_records is not None and int(expert_records.episode_seed[i]) == int(student.episode_seed[i]):
        expert_poses = expert_records.poses_of(i).astype(np.float64)
    shown = None
    for t in range(n):
        recording.set_step(rec, frame0 + t, i, t)
        rec.log("student/camera", recording.jpeg(frames[t]))
        if instructions[t] != shown:
            rec.log("instruction", rr.TextDocument(instructions[t]))
            shown = instructions[t]
        arena_map.log_robot(rec, f"{arena_map.MAP}/student", poses[: t + 1, :2], poses[t, 2], STUDENT_RGB, "student")
        if expert_poses is not None:
            e = min(t, len(expert_poses) - 1)
            arena_map.log_robot(
                rec, f"{arena_map.MAP}/expert", expert_poses[: e + 1, :2], expert_poses[e, 2], EXPERT_RGB, "expert"
            )
        if ids is not None:
            for j, row in enumerate(ids[t].tolist()):
                if row < 0:
                    continue
                demo, step = neighbours.row(row)
                rec.log(
                    f"knn/neighbour_{j}",
                    recording.jpeg(neighbours.frame(row)),
                    rr.AnyValues(row=int(row), demo=demo, step=int(step), similarity=float(sims[t, j])),
                )
        if t == decided_step:
            level = rr.TextLogLevel.INFO if label == "success" else rr.TextLogLevel.ERROR
            rec.log("events/failure", rr.TextLog(label, level=level))
    recording.set_step(rec, frame0 + n - 1, i, n - 1)
    rec.log("events/episode", rr.TextLog(f"episode {i} ends after {n} steps: {student.termination[i]} ({label})"))
    return n
