"""``vlnav-policy dagger``: DAgger (Ross et al., 2011) on frozen embeddings.

The paper names covariate shift as the cause of its student's failures: the student drifts into
states the expert never visited, where it has no data. DAgger tests that directly. Iteration 0 is
plain BC on the dataset; iteration k >= 1 rolls the current student out (pure student control,
beta = 0) from fresh seeded starts, labels every visited state with the expert's action at that
state, aggregates those rows with the dataset's train rows and all earlier iterations' rows, and
continues training from the previous weights for ``steps_per_iteration`` steps. Every iteration is
evaluated on the same evaluation starts (``evaluation_seeds(seed, eval_episodes)``, disjoint from
the collection starts), so success per iteration is a paired comparison.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.schema import FEATURE_SETS
from vlnav_data.devices import check_device_name
from vlnav_data.errors import CheckpointError, ConfigError, check_at_least
from vlnav_data.figures import save_png, subplots
from vlnav_data.jsonio import dataclass_from, fields_of, to_jsonable, write_json_atomic
from vlnav_data.policy.actors import load_student, make_expert_policy, make_student_policy, torch_predictor
from vlnav_data.policy.evaluate import EXPERTS, ClosedLoopSettings, EvalConfig, check_encoder_dtype, evaluate_policy
from vlnav_data.policy.features import load_split, parse_features
from vlnav_data.policy.fit import fit_bc, get_recipe
from vlnav_data.policy.model_dir import load_model_dir, read_policy_spec, save_model_dir
from vlnav_data.policy.train import TrainConfig, train_policy
from vlnav_data.sim import arena_config_from_json

#: Separates the collection starts from the evaluation starts and the dataset's.
DAGGER_SEED_STREAM = 0xDA66E4


@dataclass(frozen=True, kw_only=True)
class DaggerConfig(ClosedLoopSettings):
    """Config of ``vlnav-policy dagger``: the :class:`~vlnav_data.policy.evaluate.ClosedLoopSettings` of its
    collection and evaluation runs (``seed`` also seeds training; ``expert`` labels the visited states:
    ``dataset``, ``ppo`` or ``pursuit``), plus

    Attributes:
        dataset: the ``vlnav-demos`` file (its train split seeds the aggregate, its valid split validates).
        out_dir: output directory (``iter_<k>/`` model directories with ``eval/`` inside, result.json).
        iterations: DAgger iterations after the initial BC (K).
        init_model_dir: start from this trained model instead of training iteration 0 (must match the
            dataset's encoder, feature set and width).
        encoder: encoder in the file (None: its only one).
        features: ``joint``, ``image`` or ``text``.
        recipe: named hyper-parameters.
        num_steps: gradient steps of the initial BC (None: the recipe's).
        steps_per_iteration: gradient steps after each aggregation (None: ``num_steps``).
        episodes_per_iteration: student episodes collected per iteration.
        eval_episodes: evaluation episodes per iteration.
    """

    dataset: Path
    out_dir: Path
    iterations: int = 3
    init_model_dir: Path | None = None
    encoder: str | None = None
    features: str = "joint"
    recipe: str = "paper"
    num_steps: int | None = None
    steps_per_iteration: int | None = None
    episodes_per_iteration: int = 50
    eval_episodes: int = 100

    def __post_init__(self) -> None:
        check_device_name(self.device)
        check_encoder_dtype(self.encoder_dtype)
        check_at_least("--iterations", self.iterations, 1)
        if parse_features(self.features).kind != "frozen":
            raise ConfigError(
                f"dagger aggregates single-step frozen vectors (--features {', '.join(FEATURE_SETS)}); got "
                f"'{self.features}'. Train it with `vlnav-policy train --features {self.features}` and evaluate it "
                "with `vlnav-policy eval` instead"
            )
        get_recipe(self.recipe)
        for name in ("num_steps", "steps_per_iteration"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name in ("episodes_per_iteration", "eval_episodes", "num_envs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.expert not in EXPERTS or self.expert == "none":
            raise ConfigError(f"--expert must be one of dataset, ppo, pursuit (it labels states), got '{self.expert}'")


def collection_seeds(seed: int, iteration: int, num_episodes: int) -> list[int]:
    """Start seeds of one iteration's student rollouts (pure function of seed and iteration)."""
    rng = np.random.default_rng([int(seed), DAGGER_SEED_STREAM, int(iteration)])
    return [int(s) for s in rng.choice(2**62, size=num_episodes, replace=False)]


def check_model_matches_dataset(model_dir: Path, dataset: Path, encoder: str, features: str, dim: int) -> None:
    """A model directory used with a dataset must have the dataset's encoder, feature set and width.

    Raises:
        CheckpointError: any of the three differs.
    """
    spec = read_policy_spec(model_dir)
    if spec.encoder != encoder or spec.features != features:
        raise CheckpointError(
            f"model '{model_dir}' was trained on '{spec.encoder}' {spec.features} features, but dataset "
            f"'{dataset}' is used with '{encoder}' {features} features; pass --encoder {spec.encoder} "
            f"--features {spec.features} or train a new model"
        )
    if spec.input_dim != dim:
        raise CheckpointError(
            f"model '{model_dir}' expects {spec.input_dim}-D '{encoder}' features, dataset '{dataset}' holds {dim}-D"
        )


@dataclass(frozen=True, kw_only=True)
class CollectedStates:
    """One DAgger iteration's labelled rows: the states the student visited, the expert's action at each.

    Attributes:
        features: float32 ``(R, E)`` the student's input at each visited state.
        actions: float32 ``(R, 2)`` the expert's action at that state (clipped to [-1, 1]): the label.
        privileged_states: float32 ``(R, 11)`` the simulator state of each row (what the expert read; never
            a student input, kept so that a label can be checked against its state).
        stats: ``collection_episodes``, ``collection_success_rate``, ``new_rows``.
    """

    features: np.ndarray
    actions: np.ndarray
    privileged_states: np.ndarray
    stats: dict[str, Any]


def _eval_config(config: DaggerConfig, model_dir: Path, out_dir: Path, num_episodes: int = 100) -> EvalConfig:
    """The evaluation settings a DAgger run shares with its collection and its per-iteration evaluation."""
    return EvalConfig(model_dir=model_dir, out_dir=out_dir, num_episodes=num_episodes, **config.closed_loop_settings())


def collect_student_states(model_dir: Path, config: DaggerConfig, iteration: int) -> CollectedStates:
    """Roll the student out (pure student control) and label its visited states with the expert.

    Only rows of the collection episodes are kept (not idle arenas).
    """
    from vlnav_data.policy.records import run_policy_episodes
    from vlnav_data.sim import make_arena

    spec, encoder, _ = load_student(_eval_config(config, model_dir, Path(config.out_dir)))
    model, _ = load_model_dir(model_dir, device=config.device)
    arena = arena_config_from_json(spec.sim_config)
    expert_fn, _ = make_expert_policy(config.expert, spec, config.expert_checkpoint, arena)
    seeds = collection_seeds(config.seed, iteration, config.episodes_per_iteration)
    wanted = np.array(seeds, dtype=np.int64)
    feats: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    states: list[np.ndarray] = []

    def label(features: np.ndarray, obs: dict[str, Any], info: dict[str, Any]) -> None:
        keep = np.isin(np.asarray(info["episode_seed"], dtype=np.int64), wanted)
        if keep.any():
            feats.append(features[keep])
            labels.append(np.asarray(expert_fn(obs, info), dtype=np.float32)[keep])
            states.append(np.asarray(obs["privileged_state"], dtype=np.float32)[keep])

    policy = make_student_policy(torch_predictor(model, config.device), encoder, spec.features, on_features=label)
    needs_frames = spec.features != "text" and not bool(spec.encoder_spec.get("privileged", False))
    env = make_arena(arena, num_envs=min(config.num_envs, len(seeds)), device=config.device, render=needs_frames)
    records = run_policy_episodes(env, policy, seeds)
    x = np.concatenate(feats).astype(np.float32)
    y = np.clip(np.concatenate(labels), -1.0, 1.0).astype(np.float32)
    if len(x) != int(records.num_steps.sum()):
        raise RuntimeError(f"collected {len(x)} rows for {int(records.num_steps.sum())} student env steps")
    stats = {
        "collection_episodes": len(seeds),
        "collection_success_rate": float(records.success.mean()),
        "new_rows": len(x),
    }
    return CollectedStates(features=x, actions=y, privileged_states=np.concatenate(states), stats=stats)


@dataclass(frozen=True, kw_only=True)
class DaggerResult:
    """``result.json`` of ``vlnav-policy dagger``: one entry per iteration (0 = plain BC).

    Each iteration's entry holds its evaluation in the schema of ``vlnav-policy eval``
    (:mod:`vlnav_data.eval_summary`: ``success``, env steps over successes, ``termination_causes``, SPL,
    ``paired_step_ratio`` and ``unpaired_step_ratio`` to the expert) plus the aggregation counts.

    ``encoder_dtype`` is the dtype the live encoder computed in (collection and evaluation);
    ``encoder_dtype_override`` is ``--encoder-dtype`` when given (None: the dataset's recorded dtype).
    """

    out_dir: str
    encoder: str
    features: str
    iterations: list[dict[str, Any]]
    eval_episodes: int
    steps_per_iteration: int
    step_unit: str
    encoder_dtype: str
    encoder_dtype_override: str | None


def run_dagger(config: DaggerConfig) -> DaggerResult:
    """Initial BC (or ``init_model_dir``), then K rounds of collect -> label -> aggregate -> retrain -> evaluate.

    Raises:
        NoArenaError: a dataset without an arena (imported): DAgger rolls the student out and asks the expert.
    """
    with DatasetReader(config.dataset) as reader:  # before any work: an imported file has no arena to roll out in
        reader.require_arena(
            "DAgger",
            "it rolls the student out in the arena and has the expert label the states it visits; train BC "
            "with `vlnav-policy train` and score it with `vlnav-policy eval-offline`",
        )
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recipe = get_recipe(config.recipe)
    num_steps = config.num_steps if config.num_steps is not None else recipe.num_steps
    steps_per_iteration = config.steps_per_iteration or num_steps
    with DatasetReader(config.dataset) as reader:
        encoder = reader.choose_encoder(config.encoder)
        train = load_split(reader, encoder, config.features, "train")
        valid = load_split(reader, encoder, config.features, "valid")
    dim = int(train["features"].shape[1])
    model_dir = out / "iter_0"
    if config.init_model_dir is not None:
        check_model_matches_dataset(config.init_model_dir, config.dataset, encoder, config.features, dim)
        model_dir = Path(config.init_model_dir)
    else:
        # the initial BC: DAgger's own dataset, features, recipe, seed and device (the fields of the same name)
        overrides = {"out_dir": model_dir, "encoder": encoder, "num_steps": num_steps}
        train_policy(dataclass_from(TrainConfig, fields_of(config), **overrides))
    agg_x, agg_y = [train["features"]], [train["actions"]]
    rows: list[dict[str, Any]] = []
    encoder_dtype = ""
    for k in range(config.iterations + 1):
        if k > 0:
            collected = collect_student_states(model_dir, config, k)
            agg_x.append(collected.features)
            agg_y.append(collected.actions)
            stats = collected.stats
            previous, spec = load_model_dir(model_dir, device=config.device)
            step_recipe = dataclasses.replace(
                recipe,
                num_steps=steps_per_iteration,
                eval_every_steps=min(recipe.eval_every_steps, max(1, steps_per_iteration // 10)),
            )
            fit = fit_bc(
                np.concatenate(agg_x),
                np.concatenate(agg_y),
                recipe=step_recipe,
                seed=config.seed + k,
                device=config.device,
                valid_features=valid["features"],
                valid_actions=valid["actions"],
                init_model=previous,
            )
            model_dir = out / f"iter_{k}"
            new_spec = dataclasses.replace(
                spec,
                train_config={
                    **spec.train_config,
                    "dagger_iteration": k,
                    "aggregated_rows": int(sum(len(a) for a in agg_x)),
                    "steps_this_iteration": steps_per_iteration,
                },
            )
            save_model_dir(model_dir, fit.model, new_spec, fit.curve)
        else:
            stats = {"collection_episodes": 0, "collection_success_rate": None, "new_rows": 0}
        result = evaluate_policy(_eval_config(config, model_dir, out / f"iter_{k}" / "eval", config.eval_episodes))
        encoder_dtype = result.encoder_dtype
        rows.append(
            {
                "iteration": k,
                "model_dir": str(model_dir),
                "aggregated_rows": int(sum(len(a) for a in agg_x)),
                **stats,
                **to_jsonable(result.student),
                "paired_step_ratio": to_jsonable(result.paired_step_ratio),
                "unpaired_step_ratio": result.unpaired_step_ratio,
            }
        )
        write_json_atomic(out / "iterations.json", rows)
    _plot(out / "success_per_iteration.png", rows)
    return DaggerResult(
        out_dir=str(out),
        encoder=encoder,
        features=config.features,
        iterations=rows,
        eval_episodes=config.eval_episodes,
        steps_per_iteration=steps_per_iteration,
        step_unit="env_steps",
        encoder_dtype=encoder_dtype,
        encoder_dtype_override=config.encoder_dtype,
    )


def _plot(path: Path, rows: list[dict[str, Any]]) -> None:
    it = [r["iteration"] for r in rows]
    rate = [r["success"]["rate"] for r in rows]
    low = [r["success"]["rate"] - r["success"]["low"] for r in rows]
    high = [r["success"]["high"] - r["success"]["rate"] for r in rows]
    fig, ax = subplots(figsize=(5, 3.5))
    ax.errorbar(it, rate, yerr=[low, high], marker="o", capsize=3)
    ax.set_xlabel("DAgger iteration (0 = BC)")
    ax.set_ylabel("success rate (Wilson 95%)")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(it)
    ax.grid(alpha=0.3)
    save_png(fig, path, dpi=90)
