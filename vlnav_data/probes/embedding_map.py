"""`vlnav-probe umap`: a 2-D UMAP map of the embeddings, coloured by what they might encode.

UMAP (cosine metric) is fit on a seeded subsample of train rows (at most ``max_points``) and the valid
rows (at most ``max_points // 4``) are placed on the same map with ``transform``. Panels colour the
points by target colour, instruction, robot-frame bearing and the expert's turn command
``(right - left) / 2``. As a number beside the picture, a 10-nearest-neighbour classifier in the 2-D
map, fit on the train points, predicts the valid points' target colour.

A file without an arena (imported) has no colour or bearing: its panels colour the points by task
(instruction), progress through the episode ``t / (T - 1)``, its first action dimension and its first
``obs/state`` dimension (else its second action dimension), and the number beside the picture is the
10-nearest-neighbour task accuracy in the map.

UMAP compiles with numba on first use: about 15–30 s in a fresh process before any work is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError, check_at_least
from vlnav_data.figures import colormap, subplots
from vlnav_data.jsonio import fields_of
from vlnav_data.probes import labels as lab
from vlnav_data.probes.linear import check_common
from vlnav_data.probes.report import markdown_table, save_figure, write_report
from vlnav_data.probes.rows import ProbeData, ProbeRows, load_probe_data

COORDS_FILE = "umap_coords.npz"


def umap_2d(
    x_fit: np.ndarray, x_place: np.ndarray | None, *, n_neighbors: int, min_dist: float, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fit 2-D UMAP (cosine metric) on ``x_fit`` and place ``x_place`` on the same map.

    Args:
        x_fit: float ``(N, E)``; ``N`` must exceed ``n_neighbors``.
        x_place: float ``(M, E)`` or None.

    Returns:
        ``(fit_coords float32 (N, 2), place_coords float32 (M, 2) or None)``.
    """
    import warnings

    import umap

    if len(x_fit) <= n_neighbors:
        raise ConfigError(f"UMAP needs more than n_neighbors={n_neighbors} points, got {len(x_fit)}")
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine", random_state=seed)
    with warnings.catch_warnings():
        # "n_jobs overridden to 1 by setting random_state": seeded UMAP is single-threaded by design.
        warnings.filterwarnings("ignore", message="n_jobs value")
        fit = reducer.fit_transform(np.asarray(x_fit, np.float32)).astype(np.float32)
        placed = None if x_place is None else reducer.transform(np.asarray(x_place, np.float32)).astype(np.float32)
    return fit, placed


@dataclass(frozen=True, kw_only=True)
class UmapConfig:
    """Configuration of ``vlnav-probe umap``.

    Attributes:
        path: the dataset file.
        out_dir: where umap_coords.npz, umap.png, report.md and result.json go.
        encoder: encoder whose embeddings are mapped; ``None``: the file's only encoder.
        features: ``joint``, ``image`` or ``text``.
        max_points: cap on train points fit (seeded subsample); valid points placed: ``max_points // 4``.
        n_neighbors: UMAP neighbourhood size.
        min_dist: UMAP minimum distance in the map.
        seed: seeds subsampling and UMAP.
    """

    path: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    max_points: int = 20_000
    n_neighbors: int = 15
    min_dist: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_common(self.path, self.out_dir, self.features, self.seed)
        check_at_least("--max-points", self.max_points, 20)
        check_at_least("n_neighbors", self.n_neighbors, 2)
        if not 0.0 <= self.min_dist <= 1.0:
            raise ConfigError(f"min_dist must be in [0, 1], got {self.min_dist}")


@dataclass(frozen=True, kw_only=True)
class UmapResult:
    """What ``vlnav-probe umap`` wrote (result.json).

    Attributes:
        num_fit, num_placed: train points fit, valid points placed (after the cap).
        num_train_total, num_valid_total: rows available before subsampling.
        colour_knn_accuracy: 10-NN target-colour accuracy of valid points in the 2-D map (None if no colour).
        colour_chance: majority-colour share among the valid points.
        task_knn_accuracy, task_chance: the same for the task (instruction) of a file without an arena
            (None for an arena file).
        umap_s: fit + transform wall time (includes numba compilation in a fresh process).
    """

    dataset: str
    encoder: str
    features: str
    num_fit: int
    num_placed: int
    num_train_total: int
    num_valid_total: int
    colour_knn_accuracy: float | None
    colour_chance: float | None
    umap_s: float
    coords: Path
    figure: Path
    report: Path
    elapsed_s: float
    config: dict[str, Any] = field(default_factory=dict)
    task_knn_accuracy: float | None = None
    task_chance: float | None = None


def _bearing(data: ProbeData, rows: ProbeRows) -> np.ndarray | None:
    if rows.privileged_state is None or not data.state_names:
        return None
    return lab.robot_frame_target(rows.privileged_state, data.state_names)[0]


def run_umap(config: UmapConfig) -> UmapResult:
    """Fit the map on train, place valid, save coordinates, figure and report.

    Raises:
        ConfigError: an encoder the file lacks, too few points for ``n_neighbors``.
        SchemaError: an empty split or an episode in both splits.
    """
    from sklearn.neighbors import KNeighborsClassifier

    t0 = time.perf_counter()
    data = load_probe_data(config.path, encoder=config.encoder, features=config.features)
    train = data.train.subsample(config.max_points, config.seed)
    valid = data.valid.subsample(max(config.max_points // 4, 1), config.seed + 1)
    tu = time.perf_counter()
    fit_xy, valid_xy = umap_2d(
        train.features, valid.features, n_neighbors=config.n_neighbors, min_dist=config.min_dist, seed=config.seed
    )
    umap_s = time.perf_counter() - tu
    assert valid_xy is not None
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b_tr, b_va = _bearing(data, train), _bearing(data, valid)
    arrays = {
        "train_xy": fit_xy,
        "valid_xy": valid_xy,
        "train_episode_index": train.episode_index,
        "train_step_index": train.step_index,
        "valid_episode_index": valid.episode_index,
        "valid_step_index": valid.step_index,
        "train_target_colour": train.target_colour,
        "valid_target_colour": valid.target_colour,
        "train_instruction_index": train.instruction_index,
        "valid_instruction_index": valid.instruction_index,
        "train_actions": train.actions,
        "valid_actions": valid.actions,
    }
    if not data.has_arena:
        arrays["train_progress"] = np.asarray(train.progress, np.float32)
        arrays["valid_progress"] = np.asarray(valid.progress, np.float32)
    if b_tr is not None and b_va is not None:
        arrays["train_privileged_bearing_rad"] = b_tr.astype(np.float32)
        arrays["valid_privileged_bearing_rad"] = b_va.astype(np.float32)
    coords = out / COORDS_FILE
    np.savez_compressed(coords, **arrays)
    acc = chance = None
    if np.all(train.target_colour != "") and np.all(valid.target_colour != ""):
        knn = KNeighborsClassifier(n_neighbors=min(10, len(train))).fit(fit_xy, train.target_colour)
        acc = float(np.mean(knn.predict(valid_xy) == valid.target_colour))
        _, counts = np.unique(valid.target_colour, return_counts=True)
        chance = float(counts.max() / counts.sum())
    task_acc = task_chance = None
    if not data.has_arena:
        knn = KNeighborsClassifier(n_neighbors=min(10, len(train))).fit(fit_xy, train.instruction_index)
        task_acc = float(np.mean(knn.predict(valid_xy) == valid.instruction_index))
        _, counts = np.unique(valid.instruction_index, return_counts=True)
        task_chance = float(counts.max() / counts.sum())
        figure = _plot_imported(data, train, valid, fit_xy, valid_xy, out / "umap.png")
    else:
        figure = _plot(data, train, valid, fit_xy, valid_xy, b_tr, b_va, out / "umap.png")
    result = UmapResult(
        dataset=str(config.path),
        encoder=data.encoder,
        features=data.features,
        num_fit=len(train),
        num_placed=len(valid),
        num_train_total=len(data.train),
        num_valid_total=len(data.valid),
        colour_knn_accuracy=acc,
        colour_chance=chance,
        umap_s=umap_s,
        coords=coords,
        figure=figure,
        report=out / "report.md",
        elapsed_s=time.perf_counter() - t0,
        config=fields_of(config),
        task_knn_accuracy=task_acc,
        task_chance=task_chance,
    )
    _write_umap_report(out, result)
    return result


def _categorical(ax: Any, xy: np.ndarray, labels: np.ndarray, title: str, names: list[str] | None = None) -> None:
    values = np.unique(labels)
    cmap = colormap("tab10" if len(values) <= 10 else "tab20")
    for k, v in enumerate(values):
        m = labels == v
        name = names[int(v)] if names is not None else str(v)
        label = name if len(name) <= 40 else name[:37] + "..."
        ax.scatter(xy[m, 0], xy[m, 1], s=2, color=cmap(k % cmap.N), label=label if len(values) <= 12 else None)
    if len(values) <= 12:
        ax.legend(fontsize=6, markerscale=4, loc="best")
    ax.set_title(title, fontsize=9)


def _plot(
    data: ProbeData,
    train: ProbeRows,
    valid: ProbeRows,
    fit_xy: np.ndarray,
    valid_xy: np.ndarray,
    b_tr: np.ndarray | None,
    b_va: np.ndarray | None,
    path: Path,
) -> Path:
    xy = np.concatenate([fit_xy, valid_xy])
    fig, axes = subplots(2, 2, figsize=(11, 10))
    colour = np.concatenate([train.target_colour, valid.target_colour])
    _categorical(axes[0, 0], xy, colour, "target colour")
    instr = np.concatenate([train.instruction_index, valid.instruction_index])
    _categorical(axes[0, 1], xy, instr, f"instruction ({len(np.unique(instr))} distinct)", data.instructions)
    ax = axes[1, 0]
    if b_tr is not None and b_va is not None:
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=2, c=np.degrees(np.concatenate([b_tr, b_va])), cmap="twilight")
        fig.colorbar(sc, ax=ax, label="deg, + = left")
        ax.set_title("robot-frame bearing to the target (privileged)", fontsize=9)
    else:
        ax.set_title("bearing: not available (no privileged state)", fontsize=9)
    actions = np.concatenate([train.actions, valid.actions])
    sc = axes[1, 1].scatter(xy[:, 0], xy[:, 1], s=2, c=(actions[:, 1] - actions[:, 0]) / 2, cmap="coolwarm")
    fig.colorbar(sc, ax=axes[1, 1], label="(right - left) / 2, + = turn left")
    axes[1, 1].set_title("expert turn command", fontsize=9)
    fig.suptitle(f"UMAP of {data.encoder} {data.features} embeddings ({len(fit_xy)} train fit + {len(valid_xy)} valid)")
    return save_figure(fig, path)


def _plot_imported(
    data: ProbeData, train: ProbeRows, valid: ProbeRows, fit_xy: np.ndarray, valid_xy: np.ndarray, path: Path
) -> Path:
    """The map of a file without an arena: task, progress, first action and (state or second action) dimension."""
    xy = np.concatenate([fit_xy, valid_xy])
    fig, axes = subplots(2, 2, figsize=(11, 10))
    instr = np.concatenate([train.instruction_index, valid.instruction_index])
    _categorical(axes[0, 0], xy, instr, f"task ({len(np.unique(instr))} distinct)", data.instructions)
    panels = [("progress t / (T - 1)", np.concatenate([train.progress, valid.progress]), "viridis")]
    actions = np.concatenate([train.actions, valid.actions]).reshape(len(xy), -1)
    panels.append((f"action {data.action_names[0]}", actions[:, 0], "coolwarm"))
    if train.obs_state is not None and valid.obs_state is not None:
        state = np.concatenate([train.obs_state, valid.obs_state]).reshape(len(xy), -1)
        panels.append((f"state {data.obs_state_names[0]}", state[:, 0], "coolwarm"))
    elif actions.shape[1] > 1:
        panels.append((f"action {data.action_names[1]}", actions[:, 1], "coolwarm"))
    for ax, (title, values, cmap) in zip([axes[0, 1], axes[1, 0], axes[1, 1]], panels, strict=False):
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=2, c=values, cmap=cmap)
        fig.colorbar(sc, ax=ax)
        ax.set_title(title, fontsize=9)
    for ax in [axes[0, 1], axes[1, 0], axes[1, 1]][len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(f"UMAP of {data.encoder} {data.features} embeddings ({len(fit_xy)} train fit + {len(valid_xy)} valid)")
    return save_figure(fig, path)


def _write_umap_report(out: Path, r: UmapResult) -> Path:
    if r.task_knn_accuracy is not None:  # a file without an arena: the task is what clusters
        label, accuracy, chance = "task", r.task_knn_accuracy, r.task_chance
        reading = (
            "Task clusters that separate cleanly while progress and action colours mix inside each cluster say "
            "the embedding knows what to do but not where in the episode the robot is."
        )
    else:
        label, accuracy, chance = "colour", r.colour_knn_accuracy, r.colour_chance
        reading = (
            "Colour clusters that separate cleanly while bearing and turn colours mix inside each cluster reproduce "
            "the published finding (reference spec §5): the joint vector is dominated by the text term."
        )
    table = markdown_table(
        ["points fit (train)", "points placed (valid)", f"{label} 10-NN acc. in 2-D", f"majority {label}", "UMAP s"],
        [[r.num_fit, r.num_placed, accuracy, chance, r.umap_s]],
    )
    sections = [
        f"Dataset `{r.dataset}`, encoder `{r.encoder}` ({r.features} features). UMAP (cosine, seeded) fit on "
        f"{r.num_fit} of {r.num_train_total} train rows; {r.num_placed} of {r.num_valid_total} valid rows placed "
        f"with `transform`. Coordinates and labels: `{r.coords.name}`.",
        table,
        reading,
        f"![umap]({r.figure.name})",
    ]
    return write_report(out, "UMAP of the embeddings", sections)
