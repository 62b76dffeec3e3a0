"""``vlnav-policy train``: behaviour cloning on a dataset's frozen embeddings."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.dataset import DatasetReader
from vlnav_data.dataset.schema import check_feature_set
from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import to_jsonable
from vlnav_data.policy.features import load_split, student_input_keys
from vlnav_data.policy.fit import CurvePoint, fit_bc, get_recipe
from vlnav_data.policy.model_dir import PolicySpec, save_model_dir


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Config of ``vlnav-policy train``.

    Attributes:
        dataset: the ``vlnav-demos`` HDF5 file.
        out_dir: model directory to write.
        encoder: encoder whose embeddings to train on (None: the file's only encoder).
        features: ``joint`` (published), ``image`` or ``text``.
        recipe: named hyper-parameters (``paper``: MLP 256-256, Adam 1e-3, batch 100, 1M steps).
        num_steps: gradient steps, overriding the recipe's (None: the recipe's).
        eval_every_steps: validation period, overriding the recipe's (None: the recipe's, capped at
            ``num_steps / 10`` so that a short run still has a curve).
        seed: seeds initialisation and batch sampling.
        device: ``cpu`` or ``cuda`` (already resolved from ``auto``).
    """

    dataset: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    recipe: str = "paper"
    num_steps: int | None = None
    eval_every_steps: int | None = None
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_feature_set(self.features)
        get_recipe(self.recipe)
        if self.num_steps is not None and self.num_steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.num_steps}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.eval_every_steps is not None and self.eval_every_steps < 1:
            raise ConfigError(f"--eval-every must be >= 1, got {self.eval_every_steps}")
        if self.device == "auto":
            raise ConfigError("device must be resolved (cpu, cuda or cuda:N) before the config is built; got 'auto'")
        check_device_name(self.device)


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
        train_time_s: wall time of the optimisation loop; steps_per_s: its rate.
        device: where it ran.
        privileged_encoder: the encoder embeds privileged state (the oracle upper bound).
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


def dataset_expert(reader: DatasetReader) -> tuple[str, str | None]:
    """The expert that labelled the demos (``ppo``/``pursuit``) and its checkpoint, if recorded."""
    expert = str(reader.attrs(reader.demo_names[0]).get("expert", "")) if len(reader) else ""
    build = reader.build_config
    checkpoint = build.get("expert_checkpoint") or build.get("checkpoint")
    return expert or str(build.get("expert", "")), (str(checkpoint) if checkpoint else None)


def train_policy(config: TrainConfig, progress: Callable[[CurvePoint], None] | None = None) -> TrainResult:
    """Train a BC policy on the file's train split, validate on its valid split, write the model directory.

    Raises:
        ConfigError: the file lacks the encoder or a split is empty.
        SchemaError: the file is not a valid dataset.
    """
    recipe = get_recipe(config.recipe)
    num_steps = config.num_steps if config.num_steps is not None else recipe.num_steps
    eval_every = config.eval_every_steps or min(recipe.eval_every_steps, max(1, num_steps // 10))
    recipe = dataclasses.replace(recipe, num_steps=num_steps, eval_every_steps=eval_every)
    with DatasetReader(config.dataset) as reader:
        encoder = reader.choose_encoder(config.encoder)
        train = load_split(reader, encoder, config.features, "train")
        valid = load_split(reader, encoder, config.features, "valid")
        if len(train["features"]) == 0 or len(valid["features"]) == 0:
            raise ConfigError(
                f"'{config.dataset}' has {len(train['features'])} train and {len(valid['features'])} valid rows; "
                "training needs both splits non-empty (build more episodes)"
            )
        train_names = reader.split("train")
        valid_names = reader.split("valid")
        train_seeds = tuple(int(reader.attrs(n).get("seed", -1)) for n in train_names)
        expert, checkpoint = dataset_expert(reader)
        encoder_spec = reader.encoder_specs[encoder]
        sim_config = reader.sim_config
    fit = fit_bc(
        train["features"],
        train["actions"],
        recipe=recipe,
        seed=config.seed,
        device=config.device,
        valid_features=valid["features"],
        valid_actions=valid["actions"],
        progress=progress,
    )
    spec = PolicySpec(
        encoder=encoder,
        encoder_spec=encoder_spec,
        features=config.features,
        input_keys=tuple(student_input_keys(encoder, config.features)),
        input_dim=int(train["features"].shape[1]),
        hidden_sizes=recipe.hidden_sizes,
        sim_config=sim_config,
        dataset=str(Path(config.dataset).resolve()),
        dataset_expert=expert,
        expert_checkpoint=checkpoint,
        train_episode_seeds=train_seeds,
        train_config={**to_jsonable(config), "recipe": to_jsonable(recipe)},
    )
    save_model_dir(Path(config.out_dir), fit.model, spec, fit.curve)
    last = fit.curve[-1]
    return TrainResult(
        model_dir=str(config.out_dir),
        encoder=encoder,
        features=config.features,
        input_dim=spec.input_dim,
        num_train_rows=len(train["features"]),
        num_valid_rows=len(valid["features"]),
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
    )
