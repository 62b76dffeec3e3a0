"""``vlnav-policy eval``: closed-loop rollouts of a student, paired with the expert on the same starts.

The student runs in the batched arena recorded with its dataset (``render=True``), with the *same*
encoder applied online to the live frames and the live instruction (text embeddings cached by the
encoder). The episodes start from seeded starts (``sample_episode_start(config, seed)``); the expert
runs from exactly the same starts, so step counts compare pair by pair.

Metrics (all lengths in env steps, one 30 Hz control step counted once):

- success rate with a Wilson 95% interval;
- mean env steps over successes;
- SPL with the straight-line shortest path (start-to-target distance minus the horizontal success
  radius, a lower bound: turning on the spot moves nothing) and ``spl_expert_path``, the same
  with the expert's own path length from the same start as the reference;
- the paired ratio to the expert's steps where both succeeded, and the paper's unpaired ratio;
- termination causes, and how many failures first entered a wrong sphere's success disc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import check_resolved_device
from vlnav_data.errors import ConfigError, NoArenaError, check_at_least
from vlnav_data.eval_summary import (
    OutcomeSummary,
    PairedStepRatio,
    paired_step_ratio,
    summarize_outcomes,
    unpaired_step_ratio,
)
from vlnav_data.jsonio import fields_of, to_jsonable, write_json_atomic
from vlnav_data.policy.actors import check_student, load_student, make_expert_policy
from vlnav_data.policy.metrics import path_length_m, shortest_path_m, spl
from vlnav_data.policy.records import (
    EVAL_META,
    EXPERT_RECORDS,
    STUDENT_RECORDS,
    EpisodeRecords,
    run_policy_episodes,
)

POLICIES = ("bc", "knn")
EXPERTS = ("dataset", "ppo", "pursuit", "none")
#: Separates the evaluation seed stream from the dataset builder's (build seed, episode index) stream.
EVAL_SEED_STREAM = 0x5EED_E7A1


@dataclass(frozen=True, kw_only=True)
class ClosedLoopSettings:
    """How a student runs in the arena, paired with an expert: the settings ``eval`` and ``dagger`` share.

    Attributes:
        num_envs: arenas stepped together.
        seed: seeds the episode seeds (shared with the expert run).
        encoder_model_path: local weights directory for real encoders (None: the recorded source: the
            Hugging Face cache snapshot at the recorded commit, or the recorded directory); it must hash to
            the recorded content hash.
        encoder_dtype: ``fp32``, ``bf16`` or ``auto`` to encode in; None (default): the dtype the training
            file recorded, so the live embeddings match the stored ones. An override lands in result.json.
        trust_remote_code: allow an ``hf:`` encoder recorded with ``trust_remote_code`` to run its code.
        expert: ``dataset`` (the expert that labelled the demos), ``ppo``, ``pursuit`` or ``none``.
        expert_checkpoint: PPO checkpoint (None: the dataset's, else the shipped one).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (resolved).
    """

    num_envs: int = 10
    seed: int = 0
    encoder_model_path: str | None = None
    encoder_dtype: str | None = None
    trust_remote_code: bool = False
    expert: str = "dataset"
    expert_checkpoint: Path | None = None
    device: str = "cpu"

    def closed_loop_settings(self) -> dict[str, Any]:
        """These settings alone, as keyword arguments (e.g. for the :class:`EvalConfig` of a DAgger run)."""
        return fields_of(self, ClosedLoopSettings)


@dataclass(frozen=True, kw_only=True)
class EvalConfig(ClosedLoopSettings):
    """Config of ``vlnav-policy eval``: the :class:`ClosedLoopSettings`, plus

    Attributes:
        model_dir: a directory written by ``vlnav-policy train`` (encoder, features, arena).
        out_dir: where result.json and the episode records go.
        num_episodes: evaluation episodes (the paper used 100).
        policy: ``bc`` (the trained MLP) or ``knn`` (mean action of the k nearest indexed rows).
        index_dir: the ``vlnav-probe knn`` output directory (``--policy knn`` only).
        knn_k: neighbours for ``knn`` (None: the index's ``k``).
        encoder: optional check: must equal the model's encoder.
        preset: evaluate in this arena preset instead of the one the dataset was built in (e.g.
            ``text2nav-mujoco`` for a model trained on ``text2nav``); the dataset's instructions, image size,
            action mapping and time limit are kept (``vlnav_data.sim.arena_in_preset``). None: the model's arena.
        compile: ``torch.compile`` the live encoder's image path (two-tower models) and the renderer before the
            student runs; the time is reported apart (``EvalResult.compile_s``), not in the env-steps/s.
        resize_frames: let a ``pixels`` policy run in an arena whose camera size differs from its training
            frames (the live frames are resized, bilinear with antialiasing); without it such a run is refused.
    """

    model_dir: Path
    out_dir: Path
    num_episodes: int = 100
    policy: str = "bc"
    index_dir: Path | None = None
    knn_k: int | None = None
    encoder: str | None = None
    preset: str | None = None
    compile: bool = False
    resize_frames: bool = False

    def __post_init__(self) -> None:
        check_encoder_dtype(self.encoder_dtype)
        if self.preset is not None:
            from vlnav_data.sim import get_preset

            get_preset(self.preset)  # unknown name: ConfigError with a did-you-mean
        check_at_least("--num-episodes", self.num_episodes, 1)
        check_at_least("--num-envs", self.num_envs, 1)
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}, got '{self.policy}'")
        if self.policy == "knn" and self.index_dir is None:
            raise ConfigError("--policy knn needs --index DIR (the output directory of `vlnav-probe knn`)")
        if self.policy == "bc" and self.index_dir is not None:
            raise ConfigError("--index is only used with --policy knn")
        if self.expert not in EXPERTS:
            raise ConfigError(f"--expert must be one of {', '.join(EXPERTS)}, got '{self.expert}'")
        check_at_least("--k", self.knn_k, 1)
        check_resolved_device(self.device)


def check_camera_size(spec: Any, arena: Any, resize: bool) -> None:
    """A ``pixels`` policy runs only on frames of its training size, unless ``resize`` (``--resize-frames``).

    Raises:
        ConfigError: the arena's camera differs from the training frames and resizing was not asked for.
    """
    if spec.image_hw is None or resize:
        return
    live = (int(arena.image_height_px), int(arena.image_width_px))
    if live != tuple(spec.image_hw):
        raise ConfigError(
            f"the pixels policy was trained on {spec.image_hw[0]}x{spec.image_hw[1]} frames, arena '{arena.name}' "
            f"renders {live[0]}x{live[1]}; evaluate where it was trained, or pass --resize-frames to resize the "
            "live frames"
        )


def evaluation_seeds(seed: int, num_episodes: int) -> np.ndarray:
    """int64 (num_episodes,) distinct episode seeds of an evaluation, a pure function of ``seed``."""
    rng = np.random.default_rng([int(seed), EVAL_SEED_STREAM])
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < num_episodes:
        for s in rng.integers(0, 2**62, size=num_episodes - len(out)).tolist():
            if s not in seen:
                seen.add(s)
                out.append(int(s))
    return np.array(out, dtype=np.int64)


ENCODER_DTYPES = ("auto", "fp32", "bf16")


def check_encoder_dtype(value: str | None) -> None:
    """``--encoder-dtype`` must be None (the recorded dtype) or ``auto``/``fp32``/``bf16``."""
    if value is not None and value not in ENCODER_DTYPES:
        raise ConfigError(
            f"--encoder-dtype must be one of {', '.join(ENCODER_DTYPES)} (default: the dtype the training file "
            f"recorded), got '{value}'"
        )


@dataclass(frozen=True, kw_only=True)
class PolicySummary(OutcomeSummary):
    """One policy's episodes: the shared :class:`~vlnav_data.eval_summary.OutcomeSummary` plus path metrics.

    Attributes:
        mean_env_steps_all: mean env steps over every episode.
        spl: success weighted by path length, straight-line shortest path (:func:`~vlnav_data.policy.metrics.spl`).
        failures_reaching_wrong_sphere: failed episodes that entered a wrong sphere's success disc.
    """

    mean_env_steps_all: float
    spl: float
    failures_reaching_wrong_sphere: int


def summarize(records: EpisodeRecords, config: Any) -> PolicySummary:
    """Success, steps and causes (the shared schema), straight-line SPL and wrong-sphere failures of records."""
    radius = config.success_radius_xy_m
    taken = np.array([path_length_m(records.poses_of(i)[:, :2]) for i in range(len(records))])
    shortest = np.array(
        [
            shortest_path_m(records.poses_of(i)[0, :2], records.sphere_xy_m[i, records.target_index[i]], radius)
            for i in range(len(records))
        ]
    )
    ok = records.success.astype(bool)
    outcomes = summarize_outcomes(ok, records.num_steps, records.termination)
    return PolicySummary(
        **outcomes.__dict__,
        mean_env_steps_all=float(records.num_steps.mean()),
        spl=spl(ok, shortest, taken),
        failures_reaching_wrong_sphere=int((records.wrong_sphere & ~ok).sum()),
    )


def spl_expert_path(student: EpisodeRecords, expert: EpisodeRecords) -> float | None:
    """SPL with the expert's path from the same start as the reference (episodes the expert solved; None if none)."""
    ok_e = expert.success.astype(bool)
    if not ok_e.any():
        return None
    idx = np.flatnonzero(ok_e)
    ref = np.array([path_length_m(expert.poses_of(i)[:, :2]) for i in idx])
    taken = np.array([path_length_m(student.poses_of(i)[:, :2]) for i in idx])
    return spl(student.success[idx].astype(bool), ref, taken)


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """``result.json`` of ``vlnav-policy eval``.

    Attributes:
        policy: ``bc`` or ``knn``; model_dir; encoder; features; privileged_encoder (the oracle).
        num_episodes, seed, episode_seeds_overlapping_train: starts shared with training episodes.
        student / expert: :class:`PolicySummary` of each (expert None with ``--expert none``).
        expert_name: which expert ran.
        paired_step_ratio: student / expert env steps over the starts both solved
            (:class:`~vlnav_data.eval_summary.PairedStepRatio`; None with ``--expert none``).
        unpaired_step_ratio: the paper's "efficiency": mean student steps over its successes / the expert's.
        spl_expert_path: SPL with the expert's path as the reference.
        step_unit: always ``env_steps`` (one 30 Hz control step, counted once).
        encoder_dtype: the dtype the live encoder computed in; encoder_dtype_recorded: the training file's;
            encoder_dtype_override: ``--encoder-dtype`` when given (None: the recorded one was used).
        encoder_revision: the live encoder's revision (commit, content hash, ``seed-N``), equal to the file's.
        wall_s / student_env_steps_per_s: timing of the student rollouts (compilation excluded).
        compile_s: seconds spent compiling (``--compile``) before the student ran; compiled: what was compiled
            (``renderer`` and the encoder's name).
        sim_config: the arena config the episodes ran in (diagnose re-renders from it).
        arena: name of that arena; trained_arena: name of the arena the model's dataset was built in.
        files: the records written.
        expert_checkpoint: the PPO checkpoint file the paired expert loaded (None for other experts).
        knn_index: the ``vlnav-probe knn`` directory of a ``--policy knn`` run, and knn_k its neighbour count
            (None for ``bc``).
    """

    policy: str
    model_dir: str
    encoder: str
    features: str
    privileged_encoder: bool
    num_episodes: int
    num_envs: int
    seed: int
    episode_seeds_overlapping_train: int
    student: PolicySummary
    expert: PolicySummary | None
    expert_name: str
    paired_step_ratio: PairedStepRatio | None
    unpaired_step_ratio: float | None
    spl_expert_path: float | None
    step_unit: str
    encoder_dtype: str
    encoder_dtype_recorded: str
    encoder_dtype_override: str | None
    encoder_revision: str
    wall_s: float
    student_env_steps_per_s: float
    device: str
    sim_config: dict[str, Any]
    arena: str
    trained_arena: str
    files: dict[str, str]
    compile_s: float = 0.0
    compiled: tuple[str, ...] = ()
    expert_checkpoint: str | None = None
    knn_index: str | None = None
    knn_k: int | None = None


def evaluate_policy(config: EvalConfig, *, env_factory: Callable[[int], Any] | None = None) -> EvalResult:
    """Run the student and the expert on the same seeded starts; write records and return the metrics.

    Args:
        config: the evaluation config.
        env_factory: ``env_factory(num_envs) -> env``: evaluate in this simulator (any env that passes
            :func:`vlnav_data.sim.check_arena`; it must render unless the features are text or privileged)
            instead of the model's arena or ``config.preset``; ``env.config`` describes it. A one-env instance
            is checked before the encoder loads.

    Raises:
        ConfigError: the factory's env breaks the contract; CheckpointError: the model directory or encoder.
    """
    from vlnav_data.sim import arena_config_from_json, arena_in_preset, check_env_factory, make_arena

    spec = check_student(config)  # model dir, --encoder, kNN index: before anything loads or prints
    if not spec.has_arena:
        raise NoArenaError(
            f"the training file '{spec.dataset}' of '{config.model_dir}'",
            spec.source,
            "closed-loop evaluation",
            "it rolls the policy out in the arena; score its actions on held-out episodes with "
            f"`vlnav-policy eval-offline {config.model_dir} --out DIR`",
        )
    # Frames are rendered only when the policy reads them (the oracle and text features do not).
    feature = spec.feature_spec
    needs_frames = feature.kind == "pixels" or (
        feature.base != "text" and not bool(spec.encoder_spec.get("privileged", False))
    )
    if env_factory is not None:
        if config.preset is not None:
            raise ConfigError(f"give an env factory or a preset ('{config.preset}'), not both")
        arena = check_env_factory(env_factory, need_frames=needs_frames)
        factory = env_factory

        def make_env(n: int, render: bool) -> Any:
            return factory(n)

    from vlnav_data.policy.knn import neighbours_used

    spec, encoder, student_fn = load_student(config)
    trained_name = str(spec.sim_config.get("name", "?")) if isinstance(spec.sim_config, dict) else "?"
    if env_factory is None:
        trained = arena_config_from_json(spec.sim_config)
        trained_name = trained.name
        arena = trained if config.preset is None else arena_in_preset(config.preset, trained)

        def make_env(n: int, render: bool) -> Any:
            # torch observations: the live frames reach an encoder on the same device where they were rendered
            return make_arena(
                arena,
                num_envs=n,
                device=config.device,
                render=render,
                obs_backend="torch",
                compile_renderer=config.compile and render,
            )

    check_camera_size(spec, arena, config.resize_frames)
    expert_fn, expert_name = None, "none"
    if config.expert != "none":  # built before the student runs: a bad checkpoint fails before any work
        expert_fn, expert_name = make_expert_policy(config.expert, spec, config.expert_checkpoint, arena)
    seeds = evaluation_seeds(config.seed, config.num_episodes)
    overlap = len(set(seeds.tolist()) & set(spec.train_episode_seeds))
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    num_envs = min(config.num_envs, config.num_episodes)
    env = make_env(num_envs, needs_frames)
    compile_s, compiled = 0.0, ()
    if config.compile:  # compile before the clock: env-steps/s measure the rollouts alone
        from vlnav_data.encoders import warm_up_compiled

        if needs_frames:
            compile_s, compiled = warm_up_compiled([encoder], arena.image_height_px, arena.image_width_px)
        renderer_s = float(getattr(env, "compile_warm_up", lambda: 0.0)())
        if renderer_s > 0:
            compile_s, compiled = compile_s + renderer_s, ("renderer", *compiled)
    start = time.perf_counter()
    student = run_policy_episodes(env, student_fn, seeds)
    wall_s = time.perf_counter() - start
    student.save(out_dir / STUDENT_RECORDS)
    files = {"student": STUDENT_RECORDS}
    student_summary = summarize(student, arena)

    expert_summary, paired, unpaired, spl_e = None, None, None, None
    if expert_fn is not None:
        expert_env = make_env(num_envs, False)
        expert = run_policy_episodes(expert_env, expert_fn, seeds)
        expert.save(out_dir / EXPERT_RECORDS)
        files["expert"] = EXPERT_RECORDS
        expert_summary = summarize(expert, arena)
        paired = paired_step_ratio(
            student.num_steps, student.success, expert.num_steps, expert.success, policy="student", reference="expert"
        )
        unpaired = unpaired_step_ratio(student_summary, expert_summary)
        spl_e = spl_expert_path(student, expert)

    result = EvalResult(
        policy=config.policy,
        model_dir=str(config.model_dir),
        encoder=spec.encoder,
        features=spec.features,
        privileged_encoder=bool(spec.encoder_spec.get("privileged", False)),
        num_episodes=config.num_episodes,
        num_envs=num_envs,
        seed=config.seed,
        episode_seeds_overlapping_train=overlap,
        student=student_summary,
        expert=expert_summary,
        expert_name=expert_name,
        paired_step_ratio=paired,
        unpaired_step_ratio=unpaired,
        spl_expert_path=spl_e,
        step_unit="env_steps",
        encoder_dtype=str(encoder.spec.dtype),
        encoder_dtype_recorded=str(spec.encoder_spec.get("dtype", "")),
        encoder_dtype_override=config.encoder_dtype,
        encoder_revision=str(encoder.spec.revision),
        wall_s=wall_s,
        student_env_steps_per_s=float(student.num_steps.sum()) / wall_s if wall_s > 0 else float("inf"),
        device=config.device,
        sim_config=to_jsonable(arena),
        arena=arena.name,
        trained_arena=trained_name,
        files={**files, "meta": EVAL_META},
        compile_s=compile_s,
        compiled=tuple(compiled),
        expert_checkpoint=str(expert_fn.path) if getattr(expert_fn, "path", None) is not None else None,
        knn_index=str(config.index_dir) if config.policy == "knn" and config.index_dir is not None else None,
        knn_k=neighbours_used(config.index_dir, config.knn_k) if config.policy == "knn" and config.index_dir else None,
    )
    # The records' sidecar: what diagnose needs (arena config, policy, summary), independent of the CLI.
    write_json_atomic(out_dir / EVAL_META, result)
    return result
