"""`StudyConfig`: one encoder comparison, its grid of cells, and the TOML file that can hold it.

A study compares *arms* — (dataset, encoder, features, recipe) — each trained with several seeds. A
*cell* is one unit of work with its own directory and completion marker:

- a ``bc`` cell: (dataset, encoder, features, recipe, training seed) -> train BC, evaluate it in closed
  loop on the study's shared starts with the expert on the same starts;
- a ``probe`` cell: (dataset, encoder, features) -> the linear probes and the kNN probe on the file's
  train/valid split (probes do not depend on a training seed or a recipe).

Choices where the issue is silent:

- ``seed`` seeds the evaluation starts (``policy.evaluation_seeds(seed, num_episodes)``, shared by every
  cell) and the probes; the training seeds are ``seed, seed + 1, ..., seed + seeds - 1``.
- Several dataset files may be compared in one study (e.g. the same arena built with ``paper`` and
  ``color`` instructions); they are named by their file stem, which must be unique, and must start
  their evaluation episodes identically (checked before any work), so every comparison stays paired.
- No encoder name is checked against the built-in registry: a study compares whatever encoders the
  file holds, by the name stored in it (``hf:`` ids and plugin encoders included).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.collect.executors import ExecutorConfig
from vlnav_data.config_files import check_positive_int, load_config_toml, value_matches
from vlnav_data.dataset.schema import FEATURE_SETS
from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, unknown_name

#: Where cells run. ``local``: in this process one after the other, or in ``jobs`` worker processes;
#: ``ray``: one Ray task per cell (``study/executors.py``).
EXECUTORS = ("local", "ray")
#: Experts a study can pair with (``none`` makes no sense for a comparison against the expert).
STUDY_EXPERTS = ("dataset", "ppo", "pursuit")
CELL_KINDS = ("bc", "probe")

OPERATIONAL_FIELDS = (
    "out_dir",
    "executor",
    "jobs",
    "ray_address",
    "cpus_per_cell",
    "gpus_per_cell",
    "resume",
    "device",
    "num_envs",
)
"""How one run executes the study; a resumed run may change them without invalidating finished cells
(episodes depend on their seed alone, not on how many arenas step together)."""


#: ``--recipe default``: each feature set's own recipe (``paper`` for frozen vectors, ``pixels`` for pixels).
DEFAULT_RECIPE = "default"


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Configuration of ``vlnav-study run``.

    Attributes:
        datasets: one or more ``vlnav-demos`` files (named by their stem in the report).
        out_dir: the study directory (cells, report.md, result.json, figures).
        encoders: encoders to compare, by the name stored in the files; empty = every encoder of each file.
        features: feature sets (``joint``, ``image``, ``text``, ``pixels``, ``history:K``); one arm per encoder
            and feature set. Probes run on the frozen ones only (``pixels``/``history:K`` have no probe cell).
        recipes: named BC recipes; ``default`` (the default) trains each feature set with its own recipe
            (:data:`vlnav_data.policy.fit.DEFAULT_RECIPES`: ``paper`` for frozen vectors and ``history:K``,
            ``pixels`` for ``pixels``), and its cells are named by the recipe that ran.
        num_steps: gradient steps, overriding each recipe's (None: the recipe's; ``paper`` is 1M).
        eval_every_steps: validation period (None: the recipe's, capped at ``num_steps / 10``).
        seeds: training seeds per arm.
        seed: seeds the shared evaluation starts and the probes; training seeds are ``seed + k``.
        num_episodes: evaluation episodes per cell (every cell uses the same starts).
        num_envs: arenas stepped together during evaluation.
        expert: ``dataset`` (the expert that labelled the file), ``ppo`` or ``pursuit``.
        expert_checkpoint: PPO checkpoint (None: the dataset's, else the shipped one).
        encoder_model_paths: ``(encoder, local weights directory)`` for real encoders evaluated online.
        probes: run the linear and kNN probes per (dataset, encoder, features).
        probe_max_train_rows: row cap of the linear probes' train split (None: all rows).
        probe_mlp: also fit the BC-sized MLP control in the linear probes (slower).
        knn_k: neighbours of the kNN probe.
        alpha: family-wise significance level of the paired tests (Holm).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for training and evaluation.
        executor: ``local`` (this process, or ``jobs`` processes) or ``ray`` (one Ray task per cell).
        jobs: worker processes for ``local`` (each runs one cell at a time with one torch thread).
        ray_address: ``ray``: ``auto`` (the cluster this machine joined with ``ray start``), ``local`` (a
            private Ray on this machine, on 127.0.0.1) or ``HOST:PORT`` of a head node.
        cpus_per_cell: ``ray``: CPUs Ray reserves for each cell (its torch and BLAS threads).
        gpus_per_cell: ``ray``: GPUs Ray reserves for each cell; a fraction (``0.25``) lets several cells
            share one GPU (the BC networks are small).
        resume: continue a study in ``out_dir``; finished cells are never recomputed.
    """

    datasets: tuple[Path, ...]
    out_dir: Path
    encoders: tuple[str, ...] = ()
    features: tuple[str, ...] = ("joint",)
    recipes: tuple[str, ...] = (DEFAULT_RECIPE,)
    num_steps: int | None = None
    eval_every_steps: int | None = None
    seeds: int = 3
    seed: int = 0
    num_episodes: int = 200
    num_envs: int = 10
    expert: str = "dataset"
    expert_checkpoint: Path | None = None
    encoder_model_paths: tuple[tuple[str, str], ...] = ()
    probes: bool = True
    probe_max_train_rows: int | None = 20_000
    probe_mlp: bool = False
    knn_k: int = 8
    alpha: float = 0.05
    device: str = "auto"
    executor: str = "local"
    jobs: int = 1
    ray_address: str = "auto"
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0
    resume: bool = False

    def __post_init__(self) -> None:
        from vlnav_data.policy.features import parse_features
        from vlnav_data.policy.fit import RECIPES

        object.__setattr__(self, "datasets", tuple(Path(p) for p in self.datasets))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "encoders", tuple(str(e) for e in self.encoders))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "recipes", tuple(self.recipes))
        object.__setattr__(self, "encoder_model_paths", tuple((str(a), str(b)) for a, b in self.encoder_model_paths))
        if self.expert_checkpoint is not None:
            object.__setattr__(self, "expert_checkpoint", Path(self.expert_checkpoint))
        if not self.datasets:
            raise ConfigError("a study needs at least one dataset FILE (built by `vlnav-data build`)")
        for what, values in (("--encoder", self.encoders), ("--features", self.features), ("--recipe", self.recipes)):
            if len(set(values)) != len(values):
                raise ConfigError(f"each {what} may be given once, got {list(values)}")
        if not self.features or not self.recipes:
            raise ConfigError("a study needs at least one --features and one --recipe")
        for name in self.features:
            parse_features(name)
        for name in self.recipes:
            if name != DEFAULT_RECIPE and name not in RECIPES:
                raise unknown_name("recipe", name, (DEFAULT_RECIPE, *RECIPES))
        check_positive_int("--seeds", self.seeds)
        check_positive_int("--num-episodes", self.num_episodes)
        check_positive_int("--num-envs", self.num_envs)
        check_positive_int("--jobs", self.jobs)
        check_positive_int("--knn-k", self.knn_k)
        for what, value in (("--steps", self.num_steps), ("--eval-every", self.eval_every_steps)):
            if value is not None:
                check_positive_int(what, value)
        if self.probe_max_train_rows is not None and (
            isinstance(self.probe_max_train_rows, bool) or self.probe_max_train_rows < 10
        ):
            raise ConfigError(f"--probe-max-train-rows must be >= 10 (or unset), got {self.probe_max_train_rows!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.expert not in STUDY_EXPERTS:
            raise unknown_name("expert", self.expert, STUDY_EXPERTS)
        if self.expert_checkpoint is not None and self.expert == "pursuit":
            raise ConfigError("--expert-checkpoint applies to a PPO expert; drop it or use --expert ppo|dataset")
        if not (isinstance(self.alpha, float | int) and 0.0 < float(self.alpha) < 1.0 and math.isfinite(self.alpha)):
            raise ConfigError(f"--alpha must be in (0, 1), got {self.alpha!r}")
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"executor '{self.executor}' is not available for studies; expected one of: "
                f"{', '.join(EXECUTORS)} (use --jobs N to run cells in N local processes)"
            )
        check_device_name(self.device, "--device")
        self._check_executor()
        names = [name for name, _ in self.encoder_model_paths]
        if len(set(names)) != len(names):
            raise ConfigError(f"each --encoder-model-path NAME may be given once, got {names}")
        if self.encoders:
            for name in names:
                if name not in self.encoders:
                    raise ConfigError(
                        f"--encoder-model-path names encoder '{name}', which the study does not compare; "
                        f"encoders: {', '.join(self.encoders)}"
                    )
        labels = [dataset_label(p) for p in self.datasets]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ConfigError(
                f"dataset files are named by their stem in a study, and '{dupes[0]}' is given more than once "
                f"({', '.join(str(p) for p in self.datasets if dataset_label(p) == dupes[0])}); rename one file"
            )

    def _check_executor(self) -> None:
        if self.executor != "ray":
            ray_only = {
                "--ray": self.ray_address != "auto",
                "--cpus-per-cell": self.cpus_per_cell != 1.0,
                "--gpus-per-cell": self.gpus_per_cell != 0.0,
            }
            given = [flag for flag, set_ in ray_only.items() if set_]
            if given:
                raise ConfigError(f"{given[0]} applies to --ray; add --ray auto|local|HOST:PORT, or drop it")
            return
        if self.jobs != 1:
            raise ConfigError(
                f"--jobs {self.jobs} runs cells in local processes; with --ray every cell is a Ray task: drop --jobs"
            )
        self.executor_config().check_device(self.device, "cell")

    def executor_config(self) -> ExecutorConfig:
        """The :class:`~vlnav_data.collect.executors.ExecutorConfig` of ``executor == "ray"`` (one task per cell).

        Raises:
            ConfigError: a bad address, CPU or GPU count.
        """
        return ExecutorConfig.for_ray(
            self.ray_address, cpus_per_task=self.cpus_per_cell, gpus_per_task=self.gpus_per_cell, unit="cell"
        )

    @property
    def train_seeds(self) -> tuple[int, ...]:
        """The training seeds of every arm: ``seed, seed + 1, ..., seed + seeds - 1``."""
        return tuple(self.seed + k for k in range(self.seeds))

    @property
    def labels(self) -> dict[str, Path]:
        """Dataset label (file stem) -> path."""
        return {dataset_label(p): p for p in self.datasets}

    def model_path(self, encoder: str) -> str | None:
        """Local weights directory given for an encoder, if any."""
        return dict(self.encoder_model_paths).get(encoder)

    def stored(self) -> dict[str, Any]:
        """The config as written to ``study.json`` (JSON-compatible)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for v in value]
            out[f.name] = value
        return out


def dataset_label(path: Path) -> str:
    """How a dataset file is named in a study: its stem (``runs/text2nav_color.h5`` -> ``text2nav_color``)."""
    return Path(path).stem


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One unit of a study: its own directory, its own completion marker.

    Attributes:
        kind: ``bc`` (train + evaluate) or ``probe`` (linear + kNN probes).
        dataset: dataset label (file stem).
        encoder: encoder name as stored in the file.
        features: ``joint``, ``image``, ``text``, ``pixels`` or ``history:K`` (probe cells: the first three).
        recipe: BC recipe (``bc`` cells; None for probes).
        train_seed: training seed (``bc`` cells; None for probes).
    """

    kind: str
    dataset: str
    encoder: str
    features: str
    recipe: str | None = None
    train_seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in CELL_KINDS:
            raise ValueError(f"cell kind must be one of {CELL_KINDS}, got {self.kind!r}")
        if (self.kind == "bc") != (self.recipe is not None and self.train_seed is not None):
            raise ValueError(f"a bc cell needs a recipe and a training seed, a probe cell neither: {self}")

    @property
    def arm(self) -> tuple[str, str, str, str]:
        """``(dataset, encoder, features, recipe)``: the cells of one arm differ only in the training seed."""
        return (self.dataset, self.encoder, self.features, str(self.recipe))

    def embedding(self) -> dict[str, str]:
        """``encoder`` and ``features``: what every config a cell runs (training, evaluation, probes) reads."""
        return {"encoder": self.encoder, "features": self.features}

    @property
    def cell_id(self) -> str:
        """Directory name under ``OUT/cells``: readable, filesystem-safe, unique within the study."""
        parts = [self.kind, self.dataset, self.encoder, self.features]
        if self.kind == "bc":
            parts += [str(self.recipe), f"seed{self.train_seed}"]
        return "__".join(safe_name(p) for p in parts)

    def describe(self) -> str:
        """One line for logs: ``bc text2nav/oracle joint paper seed 1``."""
        text = f"{self.kind} {self.dataset}/{self.encoder} {self.features}"
        return text + (f" {self.recipe} seed {self.train_seed}" if self.kind == "bc" else "")


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def safe_name(text: str) -> str:
    """A name usable as one path component; names that had to change get a short hash to stay distinct."""
    import hashlib

    cleaned = _UNSAFE.sub("-", text).strip(".") or "x"
    if cleaned == text:
        return text
    return f"{cleaned}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def study_cells(config: StudyConfig, encoders_by_dataset: dict[str, tuple[str, ...]]) -> list[Cell]:
    """The study's cells in run order: BC cells seed by seed (a stopped study has whole seeds), then probes.

    Args:
        config: the study.
        encoders_by_dataset: dataset label -> the encoders compared on it (from :func:`plan_study`).
    """
    from vlnav_data.policy.features import parse_features
    from vlnav_data.policy.fit import DEFAULT_RECIPES

    cells: list[Cell] = []
    for train_seed in config.train_seeds:
        for label, encoders in encoders_by_dataset.items():
            for encoder in encoders:
                for features in config.features:
                    recipes = [DEFAULT_RECIPES[parse_features(features).kind] if r == DEFAULT_RECIPE else r
                               for r in config.recipes]  # fmt: skip
                    for recipe in dict.fromkeys(recipes):  # `default` and the recipe it names: one cell
                        cells.append(Cell(kind="bc", dataset=label, encoder=encoder, features=features,
                                          recipe=recipe, train_seed=train_seed))  # fmt: skip
    if config.probes:
        for label, encoders in encoders_by_dataset.items():
            for encoder in encoders:
                for features in config.features:
                    if features in FEATURE_SETS:  # probes read one frozen vector per step
                        cells.append(Cell(kind="probe", dataset=label, encoder=encoder, features=features))
    return cells


_ALIASES = {
    "dataset": "datasets",
    "files": "datasets",
    "encoder": "encoders",
    "recipe": "recipes",
    "out": "out_dir",
    "steps": "num_steps",
    "eval_every": "eval_every_steps",
    "encoder_model_path": "encoder_model_paths",
}


def load_study_toml(path: str | Path) -> dict[str, Any]:
    """Read a study config TOML: keys are :class:`StudyConfig` fields (``vlnav_data.config_files``).

    ``encoder``/``dataset``/``recipe``/``out``/``steps`` are accepted for their plural or long names,
    a string where a list is expected becomes a one-element list, ``encoder_model_paths`` may be a table
    ``{name = "dir"}``. Relative paths are kept as written (relative to the working directory).

    Raises:
        ConfigError: the file is missing, not TOML, has unknown keys or values of the wrong type.
    """

    def model_paths(value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            value = tuple(value.items())
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        if not value_matches(value, tuple[tuple[str, str], ...]):
            raise ConfigError(
                f"config file '{path}': encoder_model_paths must be a table of encoder = \"DIR\", got {value!r}"
            )
        return {"encoder_model_paths": value}

    return load_config_toml(
        path, StudyConfig, table="study", aliases=_ALIASES, special={"encoder_model_paths": model_paths}
    )
