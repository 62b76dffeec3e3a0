"""``vlnav-policy train``: behaviour cloning on a dataset's frozen embeddings, their history, or its frames.

Feature sets (:func:`vlnav_data.policy.features.parse_features`): one frozen vector per step (``joint``,
``image``, ``text``; the MLP), ``history:K`` (the last K vectors stacked, :mod:`vlnav_data.policy.history`)
and ``pixels`` (the stored frames end to end, :mod:`vlnav_data.policy.pixels`). With a recipe that selects
by closed-loop success (``pixels``), each validation point also runs the policy from the starts of the
first ``selection_episodes`` validation episodes in the dataset's arena and keeps the weights that
succeed most (the validation loss alone misled in issue 28: best loss at 60 s, best rollouts at 240 s).

A file without an arena (imported from LeRobot or robomimic, DESIGN §11) trains the same MLP on its own
actions, of any width and range: the output is ``affine`` (standardised actions mapped back, see
:mod:`vlnav_data.policy.model`), the model directory records the action names and the file's provenance,
and :mod:`vlnav_data.policy.offline` evaluates it on held-out episodes. What needs the simulator is
refused with one line: a recipe that keeps the checkpoint by closed-loop success (``pixels``), and the
``pixels`` feature set (the conv policy is the arena's two-wheel network).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.dataset import DatasetReader
from vlnav_data.devices import check_resolved_device
from vlnav_data.errors import ConfigError, NoArenaError, check_at_least
from vlnav_data.jsonio import to_jsonable
from vlnav_data.policy.features import FeatureSpec, load_split, parse_features, student_input_keys
from vlnav_data.policy.fit import DEFAULT_RECIPES, BCRecipe, CurvePoint, FitResult, fit_bc, get_recipe
from vlnav_data.policy.model_dir import PolicySpec, save_model_dir


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Config of ``vlnav-policy train``.

    Attributes:
        dataset: the ``vlnav-demos`` HDF5 file.
        out_dir: model directory to write.
        encoder: encoder whose embeddings to train on (None: the file's only encoder).
        features: ``joint`` (published), ``image``, ``text``, ``pixels`` or ``history:K[:BASE]``.
        recipe: named hyper-parameters (``paper``: MLP 256-256, Adam 1e-3, batch 100, 1M steps, raw inputs);
            None: :data:`~vlnav_data.policy.fit.DEFAULT_RECIPES` of the feature kind (``pixels`` for pixels,
            ``paper`` otherwise).
        num_steps: gradient steps, overriding the recipe's (None: the recipe's).
        eval_every_steps: validation period, overriding the recipe's (None: the recipe's, capped at
            ``num_steps / 10`` so that a short run still has a curve).
        seed: seeds initialisation and batch sampling.
        device: ``cpu`` or ``cuda`` (already resolved from ``auto``).
        num_threads: torch CPU threads for the optimisation.
        frame_cache_mib: ``pixels``: frames of one split held in memory at once (blocks of whole episodes).
        standardize_inputs: override the recipe's input standardisation (None: the recipe's setting).
    """

    dataset: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    recipe: str | None = None
    num_steps: int | None = None
    eval_every_steps: int | None = None
    seed: int = 0
    device: str = "cpu"
    num_threads: int = 1
    frame_cache_mib: int = 1024
    standardize_inputs: bool | None = None

    def __post_init__(self) -> None:
        parse_features(self.features)
        get_recipe(self.recipe_name)
        check_at_least("--threads", self.num_threads, 1)
        check_at_least("--frame-cache-mib", self.frame_cache_mib, 1)
        check_at_least("--steps", self.num_steps, 1)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be an integer >= 0, got {self.seed!r}")
        check_at_least("--eval-every", self.eval_every_steps, 1)
        check_resolved_device(self.device)

    @property
    def recipe_name(self) -> str:
        """The recipe that runs: the named one, else the feature kind's default."""
        return self.recipe or DEFAULT_RECIPES[parse_features(self.features).kind]


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """Summary written to ``result.json`` of the model directory.

    Attributes:
        model_dir: where the policy was written.
        encoder: encoder name; features: feature set; input_dim: E.
        num_train_rows / num_valid_rows: transitions in each split.
        num_train_episodes / num_valid_episodes: demos in each split.
        num_steps: gradient steps run; recipe: the hyper-parameters.
        best_step / best_valid_loss: the kept checkpoint.
        final_train_loss / final_valid_loss: last curve point.
        train_time_s: wall time of the optimisation loop (validation and closed-loop checks included);
            steps_per_s: its rate.
        samples_per_s: training rows per second of optimisation alone (checks excluded).
        device: where it ran; num_threads: torch CPU threads.
        privileged_encoder: the encoder embeds privileged state (the oracle upper bound).
        standardized_inputs: the input was standardised with the training split's statistics.
        selected_by: ``valid_loss`` or ``closed_loop``; best_valid_successes: the kept checkpoint's
            successes on the validation starts (closed loop only).
        frame_bytes_read: ``pixels``: frame bytes read from the file (the split's size when it fits the cache).
    """

    model_dir: str
    encoder: str
    features: str
    input_dim: int
    num_train_rows: int
    num_valid_rows: int
    num_train_episodes: int
    num_valid_episodes: int
    num_steps: int
    recipe: dict[str, Any]
    best_step: int
    best_valid_loss: float
    final_train_loss: float
    final_valid_loss: float
    train_time_s: float
    steps_per_s: float
    device: str
    privileged_encoder: bool
    samples_per_s: float = math.nan
    num_threads: int = 1
    standardized_inputs: bool = False
    selected_by: str = "valid_loss"
    best_valid_successes: int | None = None
    frame_bytes_read: int = 0


def dataset_expert(reader: DatasetReader) -> tuple[str, str | None]:
    """The expert that labelled the demos (``ppo``/``pursuit``) and its checkpoint, if recorded."""
    expert = str(reader.attrs(reader.demo_names[0]).get("expert", "")) if len(reader) else ""
    build = reader.build_config
    checkpoint = build.get("expert_checkpoint") or build.get("checkpoint")
    return expert or str(build.get("expert", "")), (str(checkpoint) if checkpoint else None)


def train_policy(config: TrainConfig, progress: Callable[[CurvePoint], None] | None = None) -> TrainResult:
    """Train a BC policy on the file's train split, validate on its valid split, write the model directory.

    Raises:
        ConfigError: the file lacks the encoder or a split is empty; a BCE-on-sign recipe on a dataset whose
            wheels are not bang-bang.
        SchemaError: the file is not a valid dataset.
    """
    recipe = get_recipe(config.recipe_name)
    num_steps = config.num_steps if config.num_steps is not None else recipe.num_steps
    eval_every = config.eval_every_steps or min(recipe.eval_every_steps, max(1, num_steps // 10))
    recipe = dataclasses.replace(recipe, num_steps=num_steps, eval_every_steps=eval_every)
    if config.standardize_inputs is not None:
        recipe = dataclasses.replace(recipe, standardize_inputs=config.standardize_inputs)
    feature = parse_features(config.features)
    with DatasetReader(config.dataset) as reader:
        encoder = reader.choose_encoder(config.encoder)
        student_input_keys(encoder, config.features)  # refuses a privileged input
        if not reader.has_arena:
            check_imported_training(reader, config, recipe, feature)
        mapping = str(reader.sim_config.get("action_mapping", ""))
        if recipe.loss == "bce_sign" and mapping != "bang_bang":
            raise ConfigError(
                f"recipe '{recipe.name}' learns the sign of each wheel (bang-bang), but '{config.dataset}' was "
                f"recorded with action mapping '{mapping}'; use --recipe paper or paper-std"
            )
        train_names = reader.split("train")
        valid_names = reader.split("valid")
        if not train_names or not valid_names:
            raise ConfigError(
                f"'{config.dataset}' has {len(train_names)} train and {len(valid_names)} valid episodes; "
                "training needs both splits non-empty (build more episodes)"
            )
        train_seeds = tuple(int(reader.attrs(n).get("seed", -1)) for n in train_names) if reader.has_arena else ()
        valid_seeds = tuple(int(reader.attrs(n).get("seed", -1)) for n in valid_names)
        expert, checkpoint = dataset_expert(reader)
        encoder_spec = reader.encoder_specs[encoder]
        sim_config = reader.sim_config
        closed_loop = None
        if recipe.select_by == "closed_loop":
            closed_loop = closed_loop_check(
                sim_config, encoder, encoder_spec, feature, valid_seeds[: recipe.selection_episodes], config.device
            )
        fitting = {
            "recipe": recipe,
            "seed": config.seed,
            "device": config.device,
            "num_threads": config.num_threads,
            "progress": progress,
            "closed_loop": closed_loop,
        }  # what fit_bc and fit_pixels share
        output = recipe.output if reader.has_arena else "affine"
        if feature.kind == "pixels":
            fit, input_dim, image_hw, rows, nbytes = _fit_pixels(reader, encoder, config.frame_cache_mib, fitting)
        else:
            fit, input_dim, rows = _fit_vectors(reader, encoder, feature, fitting, output)
            image_hw, nbytes = None, 0
        # a file without an arena trains the MLP only (pixels refused above), whose width is the file's own
        imported = {} if reader.has_arena else imported_fields(reader, int(fit.model.action_dim))
    spec = PolicySpec(
        encoder=encoder,
        encoder_spec=encoder_spec,
        features=config.features,
        input_keys=tuple(student_input_keys(encoder, config.features)),
        input_dim=input_dim,
        hidden_sizes=recipe.hidden_sizes,
        sim_config=sim_config,
        dataset=str(Path(config.dataset).resolve()),
        dataset_expert=expert,
        expert_checkpoint=checkpoint,
        train_episode_seeds=train_seeds,
        train_config={**to_jsonable(config), "recipe": to_jsonable(recipe)},
        image_hw=image_hw,
        output=output,
        standardized_inputs=recipe.standardize_inputs,
        conditioning=recipe.conditioning if feature.kind == "pixels" else "concat",
        **imported,
    )
    save_model_dir(Path(config.out_dir), fit.model, spec, fit.curve)
    last = fit.curve[-1]
    best = next((p for p in fit.curve if p.step == fit.best_step), None)
    return TrainResult(
        model_dir=str(config.out_dir),
        encoder=encoder,
        features=config.features,
        input_dim=spec.input_dim,
        num_train_rows=rows[0],
        num_valid_rows=rows[1],
        num_train_episodes=len(train_names),
        num_valid_episodes=len(valid_names),
        num_steps=fit.num_steps,
        recipe=dataclasses.asdict(recipe),
        best_step=fit.best_step,
        best_valid_loss=fit.best_valid_loss,
        final_train_loss=last.train_loss,
        final_valid_loss=last.valid_loss,
        train_time_s=fit.train_time_s,
        steps_per_s=fit.num_steps / fit.train_time_s if fit.train_time_s > 0 else math.inf,
        device=config.device,
        privileged_encoder=bool(encoder_spec.get("privileged", False)),
        samples_per_s=fit.samples_per_s,
        num_threads=config.num_threads,
        standardized_inputs=recipe.standardize_inputs,
        selected_by=recipe.select_by,
        best_valid_successes=best.valid_successes if best is not None else None,
        frame_bytes_read=nbytes,
    )


def _fit_vectors(
    reader: DatasetReader, encoder: str, feature: FeatureSpec, fitting: dict[str, Any], output: str | None = None
) -> tuple[FitResult, int, tuple[int, int]]:
    """Frozen vectors (one step or ``history:K``) through the MLP (``fitting``: recipe, seed, device, threads,
    progress and closed-loop check); returns the fit, input width, row counts."""
    from vlnav_data.policy.history import history_index

    train = load_split(reader, encoder, feature.base, "train")
    valid = load_split(reader, encoder, feature.base, "valid")
    history = None
    if feature.kind == "history":
        steps = feature.history_steps
        history = (history_index(train["episode_index"], steps), history_index(valid["episode_index"], steps))
    fit = fit_bc(
        train["features"],
        train["actions"],
        valid_features=valid["features"],
        valid_actions=valid["actions"],
        history=history,
        output=output,
        **fitting,
    )
    width = int(train["features"].shape[1]) * feature.history_steps
    return fit, width, (len(train["features"]), len(valid["features"]))


def check_imported_training(reader: DatasetReader, config: TrainConfig, recipe: BCRecipe, feature: FeatureSpec) -> None:
    """Refuse what needs the arena on a file without one (before any work).

    Raises:
        NoArenaError: a recipe that keeps the checkpoint by closed-loop success, or ``--features pixels``.
    """
    from vlnav_data.dataset.schema import SOURCE_ATTR

    source = reader.file.attrs.get(SOURCE_ATTR)
    if feature.kind == "pixels":
        raise NoArenaError(
            f"'{config.dataset}'",
            source,
            "--features pixels",
            "its conv policy drives the arena's two wheels and is chosen by closed-loop success; train on "
            "frozen embeddings (--features joint, image, text or history:K)",
        )
    if recipe.select_by == "closed_loop":
        raise NoArenaError(
            f"'{config.dataset}'",
            source,
            f"recipe '{recipe.name}'",
            "it keeps the checkpoint that succeeds most on validation starts in the arena; train with "
            "--recipe paper or paper-std, which keep the lowest validation loss",
        )


def imported_fields(reader: DatasetReader, action_dim: int) -> dict[str, Any]:
    """What a model of a file without an arena records besides the arena model's fields (``PolicySpec``)."""
    import json

    from vlnav_data.dataset.schema import SOURCE_ATTR

    names = (reader.features.get("actions") or {}).get("names") or []
    if len(names) != action_dim:
        names = [f"action_{j}" for j in range(action_dim)]
    raw = reader.file.attrs.get(SOURCE_ATTR)
    try:
        source = json.loads(raw) if raw is not None else None
    except ValueError:
        source = None
    return {
        "action_dim": action_dim,
        "action_names": tuple(str(n) for n in names),
        "source": source if isinstance(source, dict) else None,
    }


def _fit_pixels(
    reader: DatasetReader, encoder: str, frame_cache_mib: int, fitting: dict[str, Any]
) -> tuple[FitResult, int, tuple[int, int], tuple[int, int], int]:
    """The conv policy on the stored frames (``fitting`` as :func:`_fit_vectors`'); returns the fit, text width,
    frame size, row counts, bytes read."""
    from vlnav_data.policy.pixels import FrameBlocks, fit_pixels, text_index_rows

    cache = frame_cache_mib * 2**20
    train_names, valid_names = reader.split("train"), reader.split("valid")
    train = FrameBlocks(reader, train_names, cache)
    valid = FrameBlocks(reader, valid_names, cache)
    table = reader.text_embeddings(encoder)
    fit = fit_pixels(
        train,
        valid,
        table,
        text_index_rows(reader, train_names),
        **fitting,
    )
    return fit, int(table.shape[1]), train.image_hw, (train.num_rows, valid.num_rows), train.bytes_read


def closed_loop_check(
    sim_config: dict[str, Any],
    encoder_name: str,
    encoder_spec: dict[str, Any],
    feature: FeatureSpec,
    seeds: tuple[int, ...],
    device: str,
) -> Callable[[Any], int]:
    """``model -> successes`` from the starts of the given validation episodes, in the dataset's arena.

    The live encoder is rebuilt from the file's record (as evaluation does) and the policy runs exactly as
    ``vlnav-policy eval`` runs it (:func:`vlnav_data.policy.actors.student_policy_fn`).
    """
    from vlnav_data.encoders import rebuild_encoder
    from vlnav_data.policy.actors import student_policy_fn
    from vlnav_data.policy.records import run_policy_episodes
    from vlnav_data.sim import arena_config_from_json, make_arena

    arena = arena_config_from_json(sim_config)
    live = rebuild_encoder(
        {"name": encoder_name, **encoder_spec}, device=device, num_threads=1, where="the training file"
    )
    needs_frames = feature.kind == "pixels" or (feature.base != "text" and not bool(encoder_spec.get("privileged")))
    env = make_arena(arena, num_envs=min(10, len(seeds)), device=device, render=needs_frames, obs_backend="torch")
    shell = PolicySpec(
        encoder=encoder_name,
        encoder_spec=encoder_spec,
        features=feature.name,
        input_keys=(),
        input_dim=0,
        hidden_sizes=(),
        sim_config=sim_config,
        dataset="",
        dataset_expert="",
        expert_checkpoint=None,
    )

    def successes(model: Any) -> int:
        records = run_policy_episodes(env, student_policy_fn(model, shell, live, device), list(seeds))
        return int(records.success.sum())

    return successes
