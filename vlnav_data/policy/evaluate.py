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

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import check_device_name
from vlnav_data.errors import CheckpointError, ConfigError
from vlnav_data.policy.features import online_features
from vlnav_data.policy.metrics import (
    mean_steps_over_successes,
    paired_step_ratio,
    path_length_m,
    shortest_path_m,
    spl,
    wilson_interval,
)
from vlnav_data.policy.model_dir import PolicySpec, load_model_dir, read_policy_spec
from vlnav_data.policy.records import (
    EpisodeRecords,
    arena_config_from_json,
    horizontal_success_radius_m,
    run_policy_episodes,
)
from vlnav_data.policy.threads import torch_threads

POLICIES = ("bc", "knn")
EXPERTS = ("dataset", "ppo", "pursuit", "none")
STUDENT_RECORDS = "episodes.npz"
EXPERT_RECORDS = "expert_episodes.npz"
EVAL_META = "eval_meta.json"
#: Separates the evaluation seed stream from the dataset builder's (build seed, episode index) stream.
EVAL_SEED_STREAM = 0x5EED_E7A1


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Config of ``vlnav-policy eval``.

    Attributes:
        model_dir: a directory written by ``vlnav-policy train`` (encoder, features, arena).
        out_dir: where result.json and the episode records go.
        num_episodes: evaluation episodes (the paper used 100).
        num_envs: arenas stepped together.
        seed: seeds the evaluation's episode seeds (shared with the expert run).
        policy: ``bc`` (the trained MLP) or ``knn`` (mean action of the k nearest indexed rows).
        index_dir: the ``vlnav-probe knn`` output directory (``--policy knn`` only).
        knn_k: neighbours for ``knn`` (None: the index's ``k``).
        encoder: optional check: must equal the model's encoder.
        encoder_model_path: local weights directory for real encoders (None: the recorded source: the
            Hugging Face cache snapshot at the recorded commit, or the recorded directory); it must hash to
            the recorded content hash.
        encoder_dtype: ``fp32``, ``bf16`` or ``auto`` to encode in; None (default): the dtype the training
            file recorded, so the live embeddings match the stored ones. An override lands in result.json.
        trust_remote_code: allow an ``hf:`` encoder recorded with ``trust_remote_code`` to run its code.
        expert: ``dataset`` (the expert that labelled the demos), ``ppo``, ``pursuit`` or ``none``.
        expert_checkpoint: PPO checkpoint (None: the dataset's, else the shipped one).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (resolved).
        preset: evaluate in this arena preset instead of the one the dataset was built in (e.g.
            ``text2nav-mujoco`` for a model trained on ``text2nav``); the dataset's instructions, image size,
            action mapping and time limit are kept (``vlnav_data.sim.arena_in_preset``). None: the model's arena.
        compile: ``torch.compile`` the live encoder's image path (two-tower models) and the renderer before the
            student runs; the time is reported apart (``EvalResult.compile_s``), not in the env-steps/s.
    """

    model_dir: Path
    out_dir: Path
    num_episodes: int = 100
    num_envs: int = 10
    seed: int = 0
    policy: str = "bc"
    index_dir: Path | None = None
    knn_k: int | None = None
    encoder: str | None = None
    encoder_model_path: str | None = None
    encoder_dtype: str | None = None
    trust_remote_code: bool = False
    expert: str = "dataset"
    expert_checkpoint: Path | None = None
    device: str = "cpu"
    preset: str | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        check_encoder_dtype(self.encoder_dtype)
        if self.preset is not None:
            from vlnav_data.sim import get_preset

            get_preset(self.preset)  # unknown name: ConfigError with a did-you-mean
        if self.num_episodes < 1:
            raise ConfigError(f"--num-episodes must be >= 1, got {self.num_episodes}")
        if self.num_envs < 1:
            raise ConfigError(f"--num-envs must be >= 1, got {self.num_envs}")
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES)}, got '{self.policy}'")
        if self.policy == "knn" and self.index_dir is None:
            raise ConfigError("--policy knn needs --index DIR (the output directory of `vlnav-probe knn`)")
        if self.policy == "bc" and self.index_dir is not None:
            raise ConfigError("--index is only used with --policy knn")
        if self.expert not in EXPERTS:
            raise ConfigError(f"--expert must be one of {', '.join(EXPERTS)}, got '{self.expert}'")
        if self.knn_k is not None and self.knn_k < 1:
            raise ConfigError(f"--k must be >= 1, got {self.knn_k}")
        if self.device == "auto":
            raise ConfigError("device must be resolved (cpu, cuda or cuda:N) before the config is built; got 'auto'")
        check_device_name(self.device)


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


def check_encoder_matches(spec: PolicySpec, encoder: Any, model_dir: Path) -> None:
    """The live encoder must be the one the policy was trained on (name and width).

    Weights, revision and preprocessing are checked by :func:`vlnav_data.encoders.rebuild_encoder`.

    Raises:
        CheckpointError: another encoder or another embedding width.
    """
    live = encoder.spec
    if live.name != spec.encoder:
        raise CheckpointError(
            f"model '{model_dir}' was trained on encoder '{spec.encoder}', but the live encoder is '{live.name}'"
        )
    width = int(live.dim)
    if width != spec.input_dim:
        raise CheckpointError(
            f"model '{model_dir}' expects {spec.input_dim}-D '{spec.encoder}' features, but the live encoder "
            f"produces {width}-D embeddings; it is a different model than the dataset's. Rebuild the dataset "
            "and retrain with this encoder, or pass the original weights with --encoder-model-path."
        )


def live_encoder(spec: PolicySpec, config: Any, model_dir: Path) -> Any:
    """The policy's encoder, rebuilt from the record in its model directory (the one round trip).

    ``config`` needs ``device``, ``encoder_model_path``, ``encoder_dtype`` and ``trust_remote_code``.

    Raises:
        EncoderError: other weights than the training file's, a missing plugin, remote code not allowed.
    """
    from vlnav_data.encoders import rebuild_encoder

    compiled = bool(getattr(config, "compile", False))
    encoder = rebuild_encoder(
        {"name": spec.encoder, **spec.encoder_spec},
        device=config.device,
        dtype=config.encoder_dtype,
        model_path=config.encoder_model_path,
        trust_remote_code=config.trust_remote_code,
        num_threads=1 if config.device == "cpu" else None,
        where=f"the training data of model '{model_dir}'",
        compile=compiled,
        # compiled: one batch = one step's frames, so no step is padded to a larger graph
        batch_size=_frames_per_step(config) if compiled else None,
    )
    check_encoder_matches(spec, encoder, model_dir)
    return encoder


def _frames_per_step(config: Any) -> int | None:
    """Frames the student encodes per step: the number of arenas (None when the config does not say)."""
    if not hasattr(config, "num_envs"):
        return None
    return int(min(config.num_envs, getattr(config, "num_episodes", config.num_envs)))


def make_expert_policy(kind: str, spec: PolicySpec, checkpoint: Path | None, config: Any) -> tuple[Any, str]:
    """The expert to pair with: returns ``(policy_fn, name)``.

    Raises:
        ConfigError: ``dataset`` was asked but the dataset names no known expert.
    """
    from vlnav_data.expert import PursuitController, load_expert

    name = spec.dataset_expert if kind == "dataset" else kind
    if name == "pursuit":
        return PursuitController.for_arena(config), "pursuit"
    if name == "ppo":
        path = checkpoint if checkpoint is not None else spec.expert_checkpoint
        return load_expert(path, action_mapping=config.action_mapping), "ppo"
    raise ConfigError(
        f"the dataset's demos were labelled by expert '{name}', which eval cannot rebuild; "
        "pass --expert ppo|pursuit|none"
    )


def make_student_policy(
    predict: Callable[[np.ndarray], np.ndarray],
    encoder: Any,
    features: str,
    on_features: Callable[[np.ndarray, dict[str, Any], dict[str, Any]], None] | None = None,
) -> Callable[[dict[str, Any], dict[str, Any]], np.ndarray]:
    """Wrap a feature->action predictor as ``policy_fn(obs, info)`` over live frames and instructions.

    The privileged state reaches only a privileged encoder (the oracle), never ``predict``.

    Args:
        predict: float32 (N, E) -> float (N, 2).
        encoder: the live encoder.
        features: ``joint``, ``image`` or ``text``.
        on_features: optional hook receiving each step's features (DAgger stores them).
    """

    def policy_fn(obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        feats = online_features(
            encoder, features, obs.get("rgb"), obs.get("privileged_state"), list(info["instruction"])
        )
        if on_features is not None:
            on_features(feats, obs, info)
        return np.asarray(predict(feats), dtype=np.float32)

    return policy_fn


def torch_predictor(model: Any, device: str, num_threads: int | None = 1) -> Callable[[np.ndarray], np.ndarray]:
    """features -> actions through a torch module, without gradients (one CPU thread: ``threads.py``)."""
    import torch

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.no_grad(), torch_threads(num_threads, device):
            return model(torch.from_numpy(features).to(device)).cpu().numpy()

    return predict


@dataclass(frozen=True, kw_only=True)
class PolicySummary:
    """Metrics of one policy on the evaluation starts (see the module docstring)."""

    success: dict[str, Any]
    mean_env_steps_successes: float
    min_env_steps_successes: int | None
    max_env_steps_successes: int | None
    mean_env_steps_all: float
    spl: float
    termination_causes: dict[str, int]
    failures_reaching_wrong_sphere: int


def summarize(records: EpisodeRecords, config: Any) -> PolicySummary:
    """Success, steps, straight-line SPL and causes of a set of records."""
    radius = horizontal_success_radius_m(config)
    taken = np.array([path_length_m(records.poses_of(i)[:, :2]) for i in range(len(records))])
    shortest = np.array(
        [
            shortest_path_m(records.poses_of(i)[0, :2], records.sphere_xy_m[i, records.target_index[i]], radius)
            for i in range(len(records))
        ]
    )
    ok = records.success.astype(bool)
    causes, counts = np.unique(records.termination, return_counts=True)
    ci = wilson_interval(int(ok.sum()), len(records))
    return PolicySummary(
        success=ci.__dict__,
        mean_env_steps_successes=mean_steps_over_successes(records.num_steps, ok),
        min_env_steps_successes=int(records.num_steps[ok].min()) if ok.any() else None,
        max_env_steps_successes=int(records.num_steps[ok].max()) if ok.any() else None,
        mean_env_steps_all=float(records.num_steps.mean()),
        spl=spl(ok, shortest, taken),
        termination_causes={str(c): int(n) for c, n in zip(causes, counts, strict=True)},
        failures_reaching_wrong_sphere=int((records.wrong_sphere & ~ok).sum()),
    )


def spl_expert_path(student: EpisodeRecords, expert: EpisodeRecords) -> float:
    """SPL with the expert's path from the same start as the reference (episodes the expert solved)."""
    ok_e = expert.success.astype(bool)
    if not ok_e.any():
        return float("nan")
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
        paired_ratio: student/expert env steps where both succeeded (``ratio_of_means``, ``median_ratio``).
        unpaired_ratio: the paper's "efficiency": mean student steps over its successes / the expert's.
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
    paired_ratio: dict[str, Any] | None
    unpaired_ratio: float | None
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


def load_student(config: EvalConfig) -> tuple[PolicySpec, Any, Callable[[np.ndarray], np.ndarray]]:
    """Read the model directory, build the live encoder and the predictor (BC or kNN), checking they agree.

    Raises:
        CheckpointError: missing files, another encoder/feature set/width than the model's.
    """
    spec = read_policy_spec(config.model_dir)
    if config.encoder is not None and config.encoder != spec.encoder:
        raise CheckpointError(
            f"model '{config.model_dir}' was trained on encoder '{spec.encoder}' ({spec.features} features); "
            f"--encoder {config.encoder} does not match. Train a model on '{config.encoder}' embeddings first."
        )
    encoder = live_encoder(spec, config, config.model_dir)
    if config.policy == "bc":
        model, _ = load_model_dir(config.model_dir, device=config.device)
        predict = torch_predictor(model, config.device)
    else:
        from vlnav_data.policy.knn import load_knn_policy

        knn = load_knn_policy(config.index_dir, config.knn_k)  # type: ignore[arg-type]
        meta = knn.meta
        if meta.get("encoder") != spec.encoder or meta.get("features") != spec.features:
            raise CheckpointError(
                f"kNN index '{config.index_dir}' holds '{meta.get('encoder')}' {meta.get('features')} features, "
                f"but model '{config.model_dir}' uses '{spec.encoder}' {spec.features}; build the index with "
                f"`vlnav-probe knn FILE --encoder {spec.encoder}`"
            )
        if knn.dim != spec.input_dim:
            raise CheckpointError(
                f"kNN index '{config.index_dir}' has {knn.dim}-D vectors, the model's features are {spec.input_dim}-D"
            )
        predict = knn
    return spec, encoder, predict


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
    from vlnav_data.sim import arena_in_preset, check_env_factory, make_arena

    spec = read_policy_spec(config.model_dir)
    # Frames are rendered only when the encoder reads them (the oracle and text features do not).
    needs_frames = spec.features != "text" and not bool(spec.encoder_spec.get("privileged", False))
    if env_factory is not None:
        if config.preset is not None:
            raise ConfigError(f"give an env factory or a preset ('{config.preset}'), not both")
        arena = check_env_factory(env_factory, need_frames=needs_frames)
        factory = env_factory

        def make_env(n: int, render: bool) -> Any:
            return factory(n)

    spec, encoder, predict = load_student(config)
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

    expert_fn, expert_name = None, "none"
    if config.expert != "none":  # built before the student runs: a bad checkpoint fails before any work
        expert_fn, expert_name = make_expert_policy(config.expert, spec, config.expert_checkpoint, arena)
    seeds = evaluation_seeds(config.seed, config.num_episodes)
    overlap = len(set(seeds.tolist()) & set(spec.train_episode_seeds))
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    num_envs = min(config.num_envs, config.num_episodes)
    env = make_env(num_envs, needs_frames)
    student_fn = make_student_policy(predict, encoder, spec.features)
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

    expert_summary, paired, unpaired, spl_e = None, None, None, None
    if expert_fn is not None:
        expert_env = make_env(num_envs, False)
        expert = run_policy_episodes(expert_env, expert_fn, seeds)
        expert.save(out_dir / EXPERT_RECORDS)
        files["expert"] = EXPERT_RECORDS
        expert_summary = summarize(expert, arena)
        paired = paired_step_ratio(student.num_steps, student.success, expert.num_steps, expert.success).__dict__
        s_mean = mean_steps_over_successes(student.num_steps, student.success)
        e_mean = mean_steps_over_successes(expert.num_steps, expert.success)
        unpaired = s_mean / e_mean if np.isfinite(s_mean) and np.isfinite(e_mean) else None
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
        student=summarize(student, arena),
        expert=expert_summary,
        expert_name=expert_name,
        paired_ratio=paired,
        unpaired_ratio=unpaired,
        spl_expert_path=spl_e,
        step_unit="env_steps",
        encoder_dtype=str(encoder.spec.dtype),
        encoder_dtype_recorded=str(spec.encoder_spec.get("dtype", "")),
        encoder_dtype_override=config.encoder_dtype,
        encoder_revision=str(encoder.spec.revision),
        wall_s=wall_s,
        student_env_steps_per_s=float(student.num_steps.sum()) / wall_s if wall_s > 0 else float("inf"),
        device=config.device,
        sim_config=json.loads(json.dumps(dataclasses.asdict(arena))),
        arena=arena.name,
        trained_arena=trained_name,
        files={**files, "meta": EVAL_META},
        compile_s=compile_s,
        compiled=tuple(compiled),
    )
    # The records' sidecar: what diagnose needs (arena config, policy, summary), independent of the CLI.
    (out_dir / EVAL_META).write_text(json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True) + "\n")
    return result
