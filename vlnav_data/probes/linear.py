"""`vlnav-probe linear`: what a linear map from the embedding predicts, beside its controls.

Targets (fit on train, scored on valid; see :mod:`vlnav_data.probes.fitting` for the controls):

- ``action``: the expert's action ``(left, right)`` in [-1, 1] — ridge, R²;
- ``bearing``: the target's robot-frame bearing as ``(sin, cos)`` — ridge, R² over both outputs, plus
  the median angular error of ``atan2`` of the prediction (privileged label);
- ``distance``: planar robot-target distance in metres — ridge, R² (privileged label);
- ``colour``: the target's colour (the episode's ``target_color``) — logistic regression, accuracy;
- ``spatial_word``: the instruction's spatial cue (left/right/straight ahead/ahead/behind), parsed from
  its text — logistic regression, accuracy over the rows whose instruction has one.

Targets of any file, the default of a file without an arena (imported from LeRobot or robomimic, which
has no privileged state, colour or spatial word):

- ``action``: every action column (any number; R² pooled and per named dimension);
- ``state``: every ``obs/state`` column (the source's proprioception) — ridge, R² pooled and per dimension;
- ``task``: the step's instruction (task string) as a class — logistic regression, accuracy over the valid
  steps whose task the train split has (the others are counted in ``details["valid_rows_unseen_task"]``);
- ``progress``: how far through its episode the step is, ``t / (T - 1)`` — ridge, R².
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.dataset.schema import check_feature_set
from vlnav_data.errors import ConfigError, SchemaError, check_at_least
from vlnav_data.figures import subplots
from vlnav_data.jsonio import fields_of
from vlnav_data.probes import labels as lab
from vlnav_data.probes.fitting import ProbeScore, check_classes, classification_probe, regression_probe
from vlnav_data.probes.report import markdown_table, save_figure, write_report
from vlnav_data.probes.ridge import RidgeFolds, r2_undefined
from vlnav_data.probes.rows import ProbeData, ProbeRows, load_probe_data

LINEAR_TARGETS = ("action", "bearing", "distance", "colour", "spatial_word")
"""The default targets of a file recorded in the arena."""
IMPORTED_TARGETS = ("action", "state", "task", "progress")
"""The default targets of a file without an arena (``DatasetReader.has_arena`` False)."""
ALL_TARGETS = (*LINEAR_TARGETS, "state", "task", "progress")
ARENA_TARGETS = ("bearing", "distance", "colour", "spatial_word")
"""Labels only the arena defines (privileged geometry, sphere colours, spatial words of its instructions)."""
REGRESSION_TARGETS = ("action", "bearing", "distance", "state", "progress")
PER_DIMENSION_TARGETS = ("action", "state")
MLP_MIN_TRAIN_ROWS = 20
"""sklearn's early stopping needs 2 held-out rows (10%, rounded up) of the MLP control's train rows."""
STATE_TARGETS = ("bearing", "distance")


def check_common(path: Path, out_dir: Path, features: str, seed: int) -> None:
    """Validation shared by every probe config.

    Raises:
        ConfigError: a missing input file, an output path that is a file, unknown features, negative seed.
    """
    if not Path(path).is_file():
        raise ConfigError(f"dataset file '{path}' does not exist; pass a file built by `vlnav-data build`")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out must be a directory, but '{out_dir}' is an existing file")
    check_feature_set(features)
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")


@dataclass(frozen=True, kw_only=True)
class LinearProbeConfig:
    """Configuration of ``vlnav-probe linear``.

    Attributes:
        path: the dataset file.
        out_dir: where result.json, report.md and figures go.
        encoder: encoder whose embeddings are probed; ``None``: the file's only encoder.
        features: ``joint``, ``image`` or ``text`` (the instruction's text embedding).
        targets: targets to probe (:data:`ALL_TARGETS`); ``None`` = the file's defaults
            (:data:`LINEAR_TARGETS` for an arena file, :data:`IMPORTED_TARGETS` for one without an arena)
            that it supports (the others are listed as skipped with the reason). Naming a target the file
            cannot supply is an error.
        seed: seeds row subsampling, the label shuffle and the MLP.
        n_folds: episode-grouped cross-validation folds for alpha / C.
        max_train_rows: cap on train rows (seeded subsample, whole file when ``None``); the ridge and
            logistic fits scale with it.
        mlp: also fit the BC-sized MLP (capacity control).
        mlp_max_iter: MLP epoch cap (early stopping usually ends sooner).
    """

    path: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    targets: tuple[str, ...] | None = None
    seed: int = 0
    n_folds: int = 3
    max_train_rows: int | None = 20_000
    mlp: bool = True
    mlp_max_iter: int = 200

    def __post_init__(self) -> None:
        check_common(self.path, self.out_dir, self.features, self.seed)
        if self.targets is not None:
            unknown = [t for t in self.targets if t not in ALL_TARGETS]
            if unknown or not self.targets:
                raise ConfigError(
                    f"--target must be one of {', '.join(ALL_TARGETS)} (repeat it for several), got "
                    f"{', '.join(self.targets) or 'none'}"
                )
        check_at_least("n_folds", self.n_folds, 2)
        if self.max_train_rows is not None and self.max_train_rows < 10:
            raise ConfigError(f"--max-train-rows must be >= 10 (or unset), got {self.max_train_rows}")
        check_at_least("mlp_max_iter", self.mlp_max_iter, 1)


@dataclass(frozen=True, kw_only=True)
class LinearProbeResult:
    """What ``vlnav-probe linear`` found (written as result.json).

    Attributes:
        dataset, encoder, features, dim: what was probed.
        num_train, num_valid: rows used; num_train_episodes, num_valid_episodes: episodes behind them.
        scores: one :class:`ProbeScore` per probed target.
        skipped: target -> why it was not probed.
        report, figures: files written.
        elapsed_s: wall time.
    """

    dataset: str
    encoder: str
    features: str
    dim: int
    num_train: int
    num_valid: int
    num_train_episodes: int
    num_valid_episodes: int
    scores: list[ProbeScore]
    skipped: dict[str, str]
    report: Path
    figures: list[Path]
    elapsed_s: float
    config: dict[str, Any] = field(default_factory=dict)


def _labels(data: ProbeData, rows: ProbeRows) -> dict[str, tuple[np.ndarray | None, str]]:
    """Target -> (labels or None, reason when None) for one split."""
    out: dict[str, tuple[np.ndarray | None, str]] = {"action": (rows.actions.astype(np.float64), "")}
    if rows.privileged_state is None or not data.state_names:
        reason = "the file has no named obs/privileged_state columns"
        out["bearing"] = out["distance"] = (None, reason)
    else:
        try:
            bearing, distance = lab.robot_frame_target(rows.privileged_state, data.state_names)
            out["bearing"], out["distance"] = (lab.bearing_targets(bearing), ""), (distance, "")
        except SchemaError as exc:
            out["bearing"] = out["distance"] = (None, str(exc))
    colour = rows.target_colour
    if not np.all(colour != ""):
        parsed = np.array([lab.parse_colour(data.instructions[i], data.colours) for i in rows.instruction_index])
        colour = np.where(colour != "", colour, parsed)
    out["colour"] = (colour, "") if np.all(colour != "") else (None, "some episodes have no target_color")
    words = np.array([lab.parse_spatial_word(t) for t in data.instructions] or [""], dtype=object)
    row_words = words[rows.instruction_index].astype(str) if data.instructions else np.full(len(rows), "")
    if np.any(row_words != ""):
        out["spatial_word"] = (row_words, "")
    else:
        out["spatial_word"] = (None, "no instruction states a spatial word (left/right/ahead/behind)")
    if rows.obs_state is None:
        out["state"] = (None, "the file has no obs/state (only an imported file's proprioception is probed)")
    else:
        out["state"] = (rows.obs_state.astype(np.float64), "")
    table = np.array(data.instructions or [""], dtype=object)
    task = table[rows.instruction_index].astype(str) if data.instructions else np.full(len(rows), "")
    out["task"] = (task, "") if np.all(task != "") else (None, "some steps have no instruction (task string)")
    out["progress"] = (rows.progress, "") if rows.progress is not None else (None, "no episode boundaries")
    if not data.has_arena:
        why = f"the file was imported from {data.source_kind} and has no arena to define it"
        for target in ARENA_TARGETS:
            out[target] = (None, why)
    return out


def run_linear_probe(config: LinearProbeConfig, progress: Callable[[str], None] | None = None) -> LinearProbeResult:
    """Fit every probe on train, score on valid, write result.json-ready result, report.md and figures.

    Args:
        config: what to probe.
        progress: called with one line per stage (``colour (4/5): shuffled-label control``) so a caller
            can show that a run of minutes is moving.

    Raises:
        ConfigError: an encoder the file lacks, a named target it cannot supply, a one-class target.
        SchemaError: an empty split, an episode in both splits, missing labels.
    """
    t0 = time.perf_counter()
    need_state = config.targets is not None and any(t in STATE_TARGETS for t in config.targets)
    data = load_probe_data(config.path, encoder=config.encoder, features=config.features, need_state=need_state)
    if not data.has_arena and config.targets is not None:
        arena_only = [t for t in config.targets if t in ARENA_TARGETS]
        if arena_only:
            raise SchemaError(
                f"cannot probe {', '.join(arena_only)} on '{config.path}': it was imported from "
                f"{data.source_kind} and has no arena to define them; probe "
                f"{', '.join(IMPORTED_TARGETS)}"
            )
    train = data.train.subsample(config.max_train_rows, config.seed)
    valid = data.valid
    num_train_episodes = len(np.unique(train.episode_index))
    if num_train_episodes < 2:  # checked here, before any work: cross-validation holds one episode out
        raise SchemaError(
            f"the linear probe needs at least 2 train episodes (its cross-validation holds one out), but "
            f"'{config.path}' has {num_train_episodes} in its train split; build a dataset with more episodes"
        )
    if len(valid) < 2:
        raise SchemaError(
            f"the linear probe scores the valid split, which needs at least 2 rows; '{config.path}' has "
            f"{len(valid)}; build a dataset with more valid episodes (--valid-fraction)"
        )
    if config.mlp and len(train) < MLP_MIN_TRAIN_ROWS:
        raise SchemaError(
            f"the MLP control holds 10% of the train rows out for early stopping, which needs at least "
            f"{MLP_MIN_TRAIN_ROWS} train rows; '{config.path}' has {len(train)}: pass --no-mlp, or build more episodes"
        )
    lab_train, lab_valid = _labels(data, train), _labels(data, valid)
    wanted = config.targets or (LINEAR_TARGETS if data.has_arena else IMPORTED_TARGETS)
    scores: list[ProbeScore] = []
    skipped: dict[str, str] = {}
    bearing_pred = None
    # Every target's labels are checked before the first fit: a target named with --target that the
    # file cannot supply is an error before any work; otherwise it is skipped with the reason.
    plan: list[tuple[str, np.ndarray, np.ndarray]] = []
    unseen: dict[str, int] = {}  # task: valid steps whose task the train split lacks (left out of its score)
    for target in wanted:
        ytr, reason = lab_train[target]
        yva, reason_va = lab_valid[target]
        why = reason or reason_va if ytr is None or yva is None else ""
        if not why and target in REGRESSION_TARGETS:
            why = r2_undefined(yva)
        if not why and target == "task":  # a classifier names only tasks it saw: score the valid steps it could
            unseen[target] = int(np.sum(~np.isin(yva, ytr)))
            yva = np.where(np.isin(yva, ytr), yva, "")
            if not np.any(yva != ""):
                why = "no valid step's task occurs in the train split (a classifier names only tasks it was fit on)"
        if not why and target not in REGRESSION_TARGETS:
            if not np.any(yva != ""):
                why = "no valid row has this label"
            else:
                try:
                    check_classes(target, ytr[ytr != ""])
                except ConfigError as exc:
                    if config.targets is not None:
                        raise
                    why = str(exc)
        if why:
            if config.targets is not None:
                raise SchemaError(f"cannot probe '{target}' on '{config.path}': {why}")
            skipped[target] = why
            continue
        plan.append((target, ytr, yva))
    if not plan:
        raise SchemaError(
            f"'{config.path}' supplies none of the probe targets: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    say = progress or (lambda line: None)
    say(f"{len(train)} train rows, {len(valid)} valid rows, {train.features.shape[1]}-d {data.encoder} features")
    mlp_iter = config.mlp_max_iter if config.mlp else None
    folds = None  # the ridge fits share one set of fold eigendecompositions (ridge.RidgeFolds)
    for number, (target, ytr, yva) in enumerate(plan, start=1):

        def stage(name: str, target: str = target, number: int = number) -> None:
            say(f"{target} ({number}/{len(plan)}): {name}")

        if target in REGRESSION_TARGETS:
            if folds is None:
                stage("ridge folds (shared by the regression targets)")
                folds = RidgeFolds(train.features, train.episode_index, config.n_folds)
            score, pred = regression_probe(
                target,
                train.features,
                ytr,
                train.episode_index,
                valid.features,
                yva,
                seed=config.seed,
                n_folds=config.n_folds,
                mlp_max_iter=mlp_iter,
                progress=stage,
                folds=folds,
            )
            if target in PER_DIMENSION_TARGETS:
                score.details["output_names"] = data.action_names if target == "action" else data.obs_state_names
            if target == "bearing":
                true_angle, pred_angle = lab.angle_from_sincos(yva), lab.angle_from_sincos(pred)
                err = lab.angular_error_deg(pred_angle, true_angle)
                score.details["median_abs_error_deg"] = float(np.median(err))
                score.details["baseline_median_abs_error_deg"] = float(
                    np.median(lab.angular_error_deg(lab.angle_from_sincos(ytr.mean(axis=0)[None]), true_angle))
                )
                bearing_pred = (true_angle, pred_angle)
        else:
            keep_tr, keep_va = ytr != "", yva != ""
            score, pred = classification_probe(
                target,
                train.features[keep_tr],
                ytr[keep_tr],
                train.episode_index[keep_tr],
                valid.features[keep_va],
                yva[keep_va],
                seed=config.seed,
                n_folds=config.n_folds,
                mlp_max_iter=mlp_iter,
                progress=stage,
            )
            if target in unseen:
                score.details["valid_rows_unseen_task"] = unseen[target]
        scores.append(score)
    if not scores:
        raise SchemaError(
            f"'{config.path}' supplies none of the probe targets: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [_plot_scores(scores, out / "linear_scores.png", data)]
    if bearing_pred is not None:
        figures.append(_plot_bearing(*bearing_pred, out / "linear_bearing.png"))
    report = _write_linear_report(out, data, train, valid, scores, skipped, figures)
    return LinearProbeResult(
        dataset=str(config.path),
        encoder=data.encoder,
        features=data.features,
        dim=int(train.features.shape[1]),
        num_train=len(train),
        num_valid=len(valid),
        num_train_episodes=len(np.unique(train.episode_index)),
        num_valid_episodes=len(np.unique(valid.episode_index)),
        scores=scores,
        skipped=skipped,
        report=report,
        figures=figures,
        elapsed_s=time.perf_counter() - t0,
        config=fields_of(config),
    )


def per_dimension_rows(scores: list[ProbeScore]) -> list[list[Any]]:
    """One row per named output column of the ``action`` and ``state`` scores (target, name, R²s, MSE)."""
    out = []
    for s in scores:
        names = s.details.get("output_names")
        if s.target not in PER_DIMENSION_TARGETS or not names:
            continue
        mlp = s.details.get("mlp_r2_per_output") or [None] * len(names)
        for j, name in enumerate(names):
            out.append(
                [
                    s.target,
                    name,
                    s.details["r2_per_output"][j],
                    mlp[j],
                    s.details["shuffled_r2_per_output"][j],
                    s.details["baseline_r2_per_output"][j],
                    s.details["mse_per_output"][j],
                ]
            )
    return out


def _plot_scores(scores: list[ProbeScore], path: Path, data: ProbeData) -> Path:
    fig, ax = subplots(figsize=(9.5, 0.9 + 0.75 * len(scores)))
    series = [("linear", "probe", "C0"), ("MLP 256-256", "mlp", "C2"), ("shuffled labels", "shuffled", "C3")]
    series.append(("mean / majority", "baseline", "C7"))
    height = 0.8 / len(series)
    y = np.arange(len(scores))
    for k, (label, attr, colour) in enumerate(series):
        vals = [getattr(s, attr) if getattr(s, attr) is not None else np.nan for s in scores]
        ax.barh(y + (k - 1.5) * height, vals, height=height, label=label, color=colour)
    ax.set_yticks(y, [f"{s.target} ({'R²' if s.metric == 'r2' else 'acc.'})" for s in scores])
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    lo = min(-0.1, *[min(s.shuffled, s.baseline, s.probe) for s in scores])
    ax.set_xlim(max(lo, -1.0), 1.0)
    ax.set_title(f"Linear probes on {data.encoder} {data.features} embeddings (valid split)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return save_figure(fig, path)


def _plot_bearing(true_rad: np.ndarray, pred_rad: np.ndarray, path: Path) -> Path:
    fig, ax = subplots(figsize=(4.5, 4.5))
    ax.scatter(np.degrees(true_rad), np.degrees(pred_rad), s=3, alpha=0.4)
    ax.plot([-180, 180], [-180, 180], "k--", lw=0.8)
    ax.set_xlabel("true bearing (deg, + = left)")
    ax.set_ylabel("predicted bearing (deg)")
    ax.set_title("Bearing from the linear probe (valid)")
    return save_figure(fig, path)


def _write_linear_report(
    out: Path,
    data: ProbeData,
    train: ProbeRows,
    valid: ProbeRows,
    scores: list[ProbeScore],
    skipped: dict[str, str],
    figures: list[Path],
) -> Path:
    rows = [
        [s.target, "R²" if s.metric == "r2" else "accuracy", s.probe, s.mlp, s.shuffled, s.baseline, s.chance]
        for s in scores
    ]
    headers = ["target", "metric", "linear", "MLP 256-256", "shuffled labels", "mean/majority", "chance"]
    table = markdown_table(headers, rows)
    per_dim = per_dimension_rows(scores)
    if per_dim:
        dim_headers = ["target", "dimension", "linear R²", "MLP 256-256", "shuffled labels", "mean", "linear MSE"]
        table += "\n\nPer dimension (R² of each column alone):\n\n" + markdown_table(dim_headers, per_dim)
    notes = []
    for s in scores:
        if s.target == "bearing":
            notes.append(
                f"- bearing: median absolute error {s.details['median_abs_error_deg']:.1f}° "
                f"(predicting the train mean: {s.details['baseline_median_abs_error_deg']:.1f}°)."
            )
        if s.kind == "classification":
            notes.append(f"- {s.target}: classes {', '.join(s.details['classes'])}; chosen C = {s.details['C']:g}.")
        else:
            notes.append(f"- {s.target}: chosen ridge alpha = {s.details['alpha']:g}.")
        if s.details.get("valid_rows_unseen_task"):
            notes.append(
                f"- task: {s.details['valid_rows_unseen_task']} valid steps have a task no train step has; they are "
                "left out of its score."
            )
    for k, v in skipped.items():
        notes.append(f"- skipped {k}: {v}")
    sections = [
        f"Dataset `{data.path}`, encoder `{data.encoder}` ({data.features} features, dim "
        f"{train.features.shape[1]}). Fit on {len(train)} train rows from {len(np.unique(train.episode_index))} "
        f"episodes, scored on {len(valid)} valid rows from {len(np.unique(valid.episode_index))} other episodes.",
        table,
        "How to read it: *linear* is ridge (R²) or logistic regression (accuracy) with the penalty chosen by "
        "episode-grouped cross-validation. *Shuffled labels* fits the same probe on train labels permuted "
        "across train rows: it shows what the probe scores when labels carry no information. "
        "*Mean/majority* predicts the train mean / most frequent class. *MLP 256-256* has the BC policy's "
        "size: a large gap over *linear* means the information is there but not linearly readable. Bearing is "
        "probed as (sin, cos) of the robot-frame angle to the target (+ = left); distance is planar, in metres. "
        "Progress is t / (T - 1) within each episode; task is the step's instruction string.",
        "\n".join(notes),
        "\n".join(f"![{p.stem}]({p.name})" for p in figures),
    ]
    return write_report(out, "Linear probes", sections)
