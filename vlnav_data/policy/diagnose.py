"""``vlnav-policy diagnose``: failure classes, behaviour flags, trajectory plots and GIFs of an evaluation.

Reads ``episodes.npz`` (and ``expert_episodes.npz`` when present) and ``eval_meta.json`` from an eval
directory. Every episode gets a class (``behaviour.FAILURE_CLASSES``) and two behaviour flags
(circling, back-and-forth; definitions and thresholds in :mod:`vlnav_data.policy.behaviour`). Writes,
into ``EVAL_DIR/diagnosis`` by default: ``report.md``, ``episodes.csv`` (one row per episode),
``topdown_<class>.png`` (matplotlib, one per class present), a few first-person GIFs re-rendered from
the saved poses with ``sim.render_views`` -- enlarged to at least 256 px and captioned with the step, the
action and the instruction (PIL) -- and ``result.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import check_at_least
from vlnav_data.figures import colormap, save_png, subplots
from vlnav_data.policy.behaviour import (
    BEHAVIOURS,
    FAILURE_CLASSES,
    BehaviourThresholds,
    classify_failure,
    is_back_and_forth,
    is_circling,
    turn_reversal_steps,
)
from vlnav_data.policy.records import EpisodeRecords, load_eval_dir
from vlnav_data.sim import arena_config_from_json


@dataclass(frozen=True, kw_only=True)
class DiagnoseConfig:
    """Config of ``vlnav-policy diagnose``.

    Attributes:
        eval_dir: a directory written by ``vlnav-policy eval``.
        out_dir: where to write (None: ``eval_dir/diagnosis``).
        num_gifs: first-person GIFs to render (failures first, one per class in turn).
        max_gif_frames: frames per GIF at most (the episode is subsampled evenly).
        thresholds: behaviour thresholds.
        compare_dir: another ``vlnav-policy eval`` directory of the same starts (e.g. the other simulator):
            the report gains a "What changed" section and ``compare_topdown.png`` (``compare_evals``).
    """

    eval_dir: Path
    out_dir: Path | None = None
    num_gifs: int = 4
    max_gif_frames: int = 120
    thresholds: BehaviourThresholds = field(default_factory=BehaviourThresholds)
    compare_dir: Path | None = None

    def __post_init__(self) -> None:
        check_at_least("--num-gifs", self.num_gifs, 0)
        check_at_least("max_gif_frames", self.max_gif_frames, 2)


@dataclass(frozen=True, kw_only=True)
class EpisodeDiagnosis:
    """Labels of one episode."""

    index: int
    episode_seed: int
    target_index: int
    num_steps: int
    label: str
    circling: bool
    back_and_forth: bool
    turn_reversals: int


def diagnose_records(records: EpisodeRecords, thresholds: BehaviourThresholds) -> list[EpisodeDiagnosis]:
    """Class and behaviour flags of every episode of a records file."""
    out = []
    for i in range(len(records)):
        poses = records.poses_of(i).astype(np.float64)
        target = records.sphere_xy_m[i, records.target_index[i]].astype(np.float64)
        distance = np.linalg.norm(poses[:, :2] - target, axis=1)
        label = classify_failure(str(records.termination[i]), bool(records.success[i]), bool(records.wrong_sphere[i]))
        out.append(
            EpisodeDiagnosis(
                index=i,
                episode_seed=int(records.episode_seed[i]),
                target_index=int(records.target_index[i]),
                num_steps=int(records.num_steps[i]),
                label=label,
                circling=is_circling(poses[:, 2], distance, thresholds),
                back_and_forth=is_back_and_forth(poses[:, 2], thresholds),
                turn_reversals=len(turn_reversal_steps(poses[:, 2], thresholds)),
            )
        )
    return out


def count_labels(diagnoses: list[EpisodeDiagnosis]) -> dict[str, Any]:
    """Counts per class, and behaviour counts over all episodes and over failures."""
    classes = {c: sum(d.label == c for d in diagnoses) for c in FAILURE_CLASSES}
    behaviours = {b: sum(getattr(d, b) for d in diagnoses) for b in BEHAVIOURS}
    failed = [d for d in diagnoses if d.label != "success"]
    return {
        "num_episodes": len(diagnoses),
        "classes": classes,
        "behaviours": behaviours,
        "behaviours_among_failures": {b: sum(getattr(d, b) for d in failed) for b in BEHAVIOURS},
    }


@dataclass(frozen=True, kw_only=True)
class DiagnoseResult:
    """``result.json`` of ``vlnav-policy diagnose``."""

    eval_dir: str
    out_dir: str
    student: dict[str, Any]
    expert: dict[str, Any] | None
    thresholds: dict[str, Any]
    files: list[str]
    comparison: dict[str, Any] | None = None


def diagnose_eval(config: DiagnoseConfig) -> DiagnoseResult:
    """Label every episode of an evaluation and write the report, plots and GIFs."""
    student, expert, result = load_eval_dir(config.eval_dir)
    other = load_eval_dir(config.compare_dir) if config.compare_dir is not None else None  # fail before any work
    arena = arena_config_from_json(result["sim_config"])
    out_dir = Path(config.out_dir) if config.out_dir is not None else Path(config.eval_dir) / "diagnosis"
    out_dir.mkdir(parents=True, exist_ok=True)
    diag = diagnose_records(student, config.thresholds)
    expert_diag = diagnose_records(expert, config.thresholds) if expert is not None else None
    files = [_write_csv(out_dir / "episodes.csv", diag)]
    plots = {}
    for label in FAILURE_CLASSES:
        idx = [d.index for d in diag if d.label == label]
        if idx:
            plots[label] = _plot_topdown(out_dir / f"topdown_{label}.png", student, idx, arena, label)
    for behaviour in BEHAVIOURS:
        idx = [d.index for d in diag if getattr(d, behaviour)]
        if idx:
            plots[behaviour] = _plot_topdown(out_dir / f"topdown_{behaviour}.png", student, idx, arena, behaviour)
    files += list(plots.values())
    gifs = [
        _write_gif(out_dir, student, i, label, arena, config.max_gif_frames)
        for i, label in _gif_picks(diag, config.num_gifs)
    ]
    files += gifs
    counts = count_labels(diag)
    expert_counts = count_labels(expert_diag) if expert_diag is not None else None
    report = _report(result, counts, expert_counts, config.thresholds, plots, gifs, diag)
    comparison = None
    if other is not None:
        from vlnav_data.policy.compare_evals import compare_records, comparison_report, plot_side_by_side

        labels = (_arena_label(result, config.eval_dir), _arena_label(other[2], config.compare_dir))
        comparison = {"this": labels[0], "other": labels[1], "student": compare_records(student, other[0])}
        if expert is not None and other[1] is not None:
            comparison["expert"] = compare_records(expert, other[1])
        plot = plot_side_by_side(out_dir / "compare_topdown.png", student, other[0], arena, labels)
        files.append(plot)
        report += "\n" + "\n".join(comparison_report(comparison, labels, plot))
    (out_dir / "report.md").write_text(report)
    files.append("report.md")
    return DiagnoseResult(
        eval_dir=str(config.eval_dir),
        out_dir=str(out_dir),
        student=counts,
        expert=expert_counts,
        thresholds=config.thresholds.__dict__,
        files=files,
        comparison=comparison,
    )


def _arena_label(result: dict[str, Any], eval_dir: Path | None) -> str:
    """``arena (eval dir name)`` of an evaluation, for the comparison's columns."""
    arena = result.get("arena") or result.get("sim_config", {}).get("name", "?")
    return f"{arena} ({Path(str(eval_dir)).name})"


def _gif_picks(diag: list[EpisodeDiagnosis], num_gifs: int) -> list[tuple[int, str]]:
    """Failures first, cycling over classes so each failure class gets one before any gets two."""
    by_class: dict[str, list[int]] = {}
    for d in diag:
        if d.label != "success":
            by_class.setdefault(d.label, []).append(d.index)
    picks: list[tuple[int, str]] = []
    while len(picks) < num_gifs and any(by_class.values()):
        for label in list(by_class):
            if by_class[label] and len(picks) < num_gifs:
                picks.append((by_class[label].pop(0), label))
    successes = [d.index for d in diag if d.label == "success"]
    if len(picks) < num_gifs and successes:
        picks.append((successes[0], "success"))
    return picks


def _write_csv(path: Path, diag: list[EpisodeDiagnosis]) -> str:
    lines = ["index,episode_seed,target_index,num_steps,label,circling,back_and_forth,turn_reversals"]
    for d in diag:
        lines.append(
            f"{d.index},{d.episode_seed},{d.target_index},{d.num_steps},{d.label},"
            f"{int(d.circling)},{int(d.back_and_forth)},{d.turn_reversals}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path.name


def _sphere_rgb(indices: np.ndarray) -> np.ndarray:
    from vlnav_data.sim import COLOR_PALETTE

    palette = np.array([COLOR_PALETTE[n] for n in COLOR_PALETTE], dtype=np.float64)
    return palette[np.asarray(indices, dtype=np.int64)]


def _plot_topdown(path: Path, records: EpisodeRecords, idx: list[int], arena: Any, title: str) -> str:
    """Top-down trajectories of the given episodes over the arena bounds and spheres."""
    fig, ax = subplots(figsize=(5, 5.5))
    (x0, x1), (y0, y1) = arena.bounds_x_m, arena.bounds_y_m
    ax.plot([y1, y0, y0, y1, y1], [x0, x0, x1, x1, x0], color="k", lw=1, ls="--", label="bounds")
    first = idx[0]
    colours = _sphere_rgb(records.sphere_color_indices[first])
    for k, (sx, sy) in enumerate(records.sphere_xy_m[first]):
        ax.scatter([sy], [sx], s=120, color=colours[k], edgecolors="k", zorder=3)
    cmap = colormap("tab10")
    for n, i in enumerate(idx[:40]):
        p = records.poses_of(i)
        c = cmap(n % 10)
        ax.plot(p[:, 1], p[:, 0], color=c, lw=1)
        ax.scatter([p[0, 1]], [p[0, 0]], color=c, marker="o", s=14)
        ax.scatter([p[-1, 1]], [p[-1, 0]], color=c, marker="x", s=24)
        t = records.sphere_xy_m[i, records.target_index[i]]
        ax.plot([p[-1, 1], t[1]], [p[-1, 0], t[0]], color=c, lw=0.5, ls=":")
    ax.set_xlabel("y (m, left is +)")
    ax.set_ylabel("x (m, forward)")
    ax.invert_xaxis()  # the robot's left (+y) on the left of the image, looking along +x
    ax.set_aspect("equal")
    shown = min(len(idx), 40)
    ax.set_title(f"{title}: {len(idx)} episodes" + (f" ({shown} drawn)" if shown < len(idx) else ""))
    ax.grid(alpha=0.3)
    save_png(fig, path, dpi=90)
    return path.name


GIF_MIN_SIZE_PX = 256
"""GIF frames are the camera frames enlarged (nearest neighbour, an integer factor) to at least this
size, so a 64-pixel camera stays legible next to the caption; every rendered pixel becomes a block."""
GIF_CAPTION_LINES = 4


def _caption_font(size_px: int) -> Any:
    """Pillow's built-in font at ``size_px`` (a scalable one where this Pillow has FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size_px)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _wrap(text: str, width_chars: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(8, width_chars)) or [""]


def gif_frame(frame: np.ndarray, caption: list[str], scale: int, font_px: int) -> np.ndarray:
    """One GIF frame: the camera frame enlarged ``scale`` times above a white band with ``caption`` lines.

    Args:
        frame: uint8 ``(H, W, 3)`` camera frame.
        caption: text lines drawn under the frame (clipped to :data:`GIF_CAPTION_LINES`).
        scale: integer enlargement of the frame.
        font_px: text height in pixels.

    Returns:
        uint8 ``(scale * H + band, scale * W, 3)`` with ``band = GIF_CAPTION_LINES * (font_px + 4) + 4``.
    """
    from PIL import Image, ImageDraw

    big = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    band = GIF_CAPTION_LINES * (font_px + 4) + 4
    canvas = Image.new("RGB", (big.shape[1], big.shape[0] + band), "white")
    canvas.paste(Image.fromarray(big), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _caption_font(font_px)
    for k, line in enumerate(caption[:GIF_CAPTION_LINES]):
        draw.text((4, big.shape[0] + 4 + k * (font_px + 4)), line, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def gif_captions(records: EpisodeRecords, i: int, steps: np.ndarray, width_chars: int) -> list[list[str]]:
    """Caption lines of the GIF frames at ``steps`` of episode ``i``: step, action, instruction (or the end).

    Step ``t < T`` shows the action taken from that frame; the final frame (``t == T``) shows how the
    episode ended.
    """
    n = int(records.num_steps[i])
    first = int(records.offsets[i])
    captions = []
    for t in steps.tolist():
        if t < n:
            left, right = (float(v) for v in records.actions[first + t])
            head = f"step {t}/{n}  action L {left:+.2f} R {right:+.2f}"
            instruction = str(records.instructions[first + t])
        else:
            head = f"step {t}/{n}  end: {records.termination[i]}"
            instruction = str(records.instructions[first + n - 1]) if n else ""
        captions.append([head, *_wrap(f'"{instruction}"', width_chars)])
    return captions


def _write_gif(out_dir: Path, records: EpisodeRecords, i: int, label: str, arena: Any, max_frames: int) -> str:
    """Re-render the episode's first-person frames from its poses and save an annotated GIF.

    Frames are enlarged to at least :data:`GIF_MIN_SIZE_PX` and captioned with the step, the action
    taken from that frame and the instruction shown (:func:`gif_frame`); the last frame says how the
    episode ended.
    """
    from PIL import Image

    from vlnav_data.sim import render_views

    poses = records.poses_of(i)
    stride = max(1, int(np.ceil(len(poses) / max_frames)))
    steps = np.arange(0, len(poses), stride)
    if steps[-1] != len(poses) - 1:
        steps = np.append(steps, len(poses) - 1)  # always show the final pose
    frames = render_views(
        arena,
        poses[steps].astype(np.float64),
        sphere_positions_xy_m=records.sphere_xy_m[i],
        sphere_color_indices=records.sphere_color_indices[i],
        floor_rgb=records.floor_rgb[i],
        light_position_m=records.light_position_m[i],
    )
    h, w = frames.shape[1:3]
    scale = max(1, -(-GIF_MIN_SIZE_PX // min(h, w)))
    font_px = 12
    captions = gif_captions(records, i, steps, width_chars=(w * scale - 8) // 7)
    images = [Image.fromarray(gif_frame(f, c, scale, font_px)) for f, c in zip(frames, captions, strict=True)]
    name = f"episode_{i:03d}_{label}.gif"
    duration_ms = int(round(1000 * float(arena.dt_s) * stride))
    images[0].save(out_dir / name, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return name


def _table(counts: dict[str, Any], expert: dict[str, Any] | None) -> list[str]:
    n = counts["num_episodes"]
    head = "| class | student | expert |" if expert else "| class | student |"
    lines = [head, "|---|---|---|" if expert else "|---|---|"]
    for c in FAILURE_CLASSES:
        row = f"| {c} | {counts['classes'][c]} / {n} |"
        if expert:
            row += f" {expert['classes'][c]} / {expert['num_episodes']} |"
        lines.append(row)
    for b in BEHAVIOURS:
        row = f"| {b} (all episodes) | {counts['behaviours'][b]} / {n} |"
        if expert:
            row += f" {expert['behaviours'][b]} / {expert['num_episodes']} |"
        lines.append(row)
    return lines


def _report(
    result: dict[str, Any],
    counts: dict[str, Any],
    expert: dict[str, Any] | None,
    thr: BehaviourThresholds,
    plots: dict[str, str],
    gifs: list[str],
    diag: list[EpisodeDiagnosis],
) -> str:
    s = result.get("student", {})
    lines = [
        f"# Failure diagnosis: {result.get('policy', '?')} on {result.get('encoder', '?')} "
        f"({result.get('features', '?')} features)",
        "",
        f"{counts['num_episodes']} evaluation episodes (seed {result.get('seed')}); success "
        f"{s.get('success', {}).get('successes', '?')}/{counts['num_episodes']}; lengths in env steps "
        "(one 30 Hz control step, counted once). The expert ran from the same starts.",
        "",
        *_table(counts, expert),
        "",
        "## Definitions",
        "",
        "- `wrong_target`: the robot came within the success radius of a sphere that was not its target "
        "(the arena does not stop there; such episodes then end by another cause).",
        "- `out_of_bounds_front|back|left|right`: left the arena box through that side (front = past the "
        "sphere line, back = behind the start, left = +y, right = -y).",
        "- `time_limit`: still running at the arena's step limit.",
        f"- circling: some stretch turns the heading through {thr.circling_turn_rad:.3f} rad (a full turn) "
        f"of net accumulated yaw while getting less than {thr.circling_min_progress_m} m closer to the target.",
        f"- back-and-forth: at least {thr.reversal_min_count} reversals of the turning direction within "
        f"{thr.reversal_window_steps} env steps (steps turning less than {thr.turn_deadband_rad} rad count "
        "as straight and are skipped).",
        "",
        "## Top-down trajectories",
        "",
        "Start `o`, end `x`, dotted line from the end to the target sphere. Up is +x (towards the spheres).",
        "",
    ]
    for name, file in plots.items():
        lines += [f"### {name}", "", f"![{name}]({file})", ""]
    if gifs:
        lines += ["## First-person views (re-rendered from the saved poses)", ""]
        lines += [f"![{g}]({g})" for g in gifs]
        lines.append("")
    failed = [d for d in diag if d.label != "success"]
    if failed:
        lines += [
            "## Failed episodes",
            "",
            "| # | seed | steps | class | circling | back-and-forth |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {d.index} | {d.episode_seed} | {d.num_steps} | {d.label} | {'yes' if d.circling else ''} | "
            f"{'yes' if d.back_and_forth else ''} |"
            for d in failed
        ]
        lines.append("")
    return "\n".join(lines)
