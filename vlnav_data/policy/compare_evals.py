"""What changed between two evaluations of the same policy on the same seeded starts (e.g. two simulators).

``vlnav-policy diagnose EVAL_DIR --compare OTHER_EVAL_DIR`` pairs the episodes of both directories by
episode seed (same ``--seed`` and ``--num-episodes`` give the same starts in every simulator: starts are
``sample_episode_start(config, seed)``) and reports, for the student and for the expert:

- success in each and the outcome transitions (kept, gained, lost);
- termination causes side by side, and which cause each changed episode moved from and to;
- mean env steps over the episodes both solved;
- top-down trajectories side by side (episodes whose outcome changed first).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.figures import colormap, save_png, subplots
from vlnav_data.policy.records import EpisodeRecords


def paired_indices(this: EpisodeRecords, other: EpisodeRecords) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(i_this, i_other)`` of the episodes both records hold (same episode seed), in this order.

    Raises:
        ConfigError: no episode seed in common.
    """
    pos = {int(s): j for j, s in enumerate(other.episode_seed)}
    pairs = [(i, pos[int(s)]) for i, s in enumerate(this.episode_seed) if int(s) in pos]
    if not pairs:
        raise ConfigError(
            "the two evaluations share no episode seed; evaluate both with the same --seed and --num-episodes"
        )
    a, b = zip(*pairs, strict=True)
    return np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def compare_records(this: EpisodeRecords, other: EpisodeRecords) -> dict[str, Any]:
    """Outcome and termination-cause changes from ``other`` to ``this`` over their common episodes."""
    ia, ib = paired_indices(this, other)
    sa, sb = this.success[ia].astype(bool), other.success[ib].astype(bool)
    ca, cb = this.termination[ia].astype(str), other.termination[ib].astype(str)
    both = sa & sb
    causes = sorted(set(ca) | set(cb))
    changed = Counter(f"{b} -> {a}" for a, b in zip(ca, cb, strict=True) if a != b)
    return {
        "num_paired": len(ia),
        "success_this": int(sa.sum()),
        "success_other": int(sb.sum()),
        "kept": int(both.sum()),
        "gained": int((sa & ~sb).sum()),
        "lost": int((~sa & sb).sum()),
        "termination_causes": {c: {"this": int((ca == c).sum()), "other": int((cb == c).sum())} for c in causes},
        "cause_changes": dict(sorted(changed.items(), key=lambda kv: (-kv[1], kv[0]))),
        "mean_env_steps_both_solved": {
            "this": float(this.num_steps[ia][both].mean()) if both.any() else None,
            "other": float(other.num_steps[ib][both].mean()) if both.any() else None,
        },
        "changed_episode_seeds": [int(s) for s in this.episode_seed[ia][ca != cb]],
    }


def plot_side_by_side(
    path: Path, this: EpisodeRecords, other: EpisodeRecords, arena: Any, labels: tuple[str, str], max_episodes: int = 12
) -> str:
    """Top-down trajectories of the same episodes in both evaluations (changed outcomes first); returns the name."""
    from vlnav_data.sim import COLOR_PALETTE

    ia, ib = paired_indices(this, other)
    changed = this.termination[ia].astype(str) != other.termination[ib].astype(str)
    order = np.concatenate([np.flatnonzero(changed), np.flatnonzero(~changed)])[:max_episodes]
    fig, axes = subplots(1, 2, figsize=(10, 5.5), sharex=True, sharey=True)
    cmap = colormap("tab10")
    (x0, x1), (y0, y1) = arena.bounds_x_m, arena.bounds_y_m
    for ax, records, idx, label in ((axes[0], other, ib, labels[1]), (axes[1], this, ia, labels[0])):
        ax.plot([y1, y0, y0, y1, y1], [x0, x0, x1, x1, x0], color="k", lw=1, ls="--")
        first = int(idx[order[0]])
        spheres = records.sphere_xy_m[first]
        palette = np.array([COLOR_PALETTE[n] for n in COLOR_PALETTE])
        colours = palette[records.sphere_color_indices[first]]
        ax.scatter(spheres[:, 1], spheres[:, 0], s=100, color=colours, edgecolors="k", zorder=3)
        for n, k in enumerate(order):
            p = records.poses_of(int(idx[k]))
            c = cmap(n % 10)
            ax.plot(p[:, 1], p[:, 0], color=c, lw=1.5 if changed[k] else 0.8, ls="-" if changed[k] else ":")
            ax.scatter([p[-1, 1]], [p[-1, 0]], color=c, marker="x", s=24)
        solved = int(records.success[idx].sum())
        ax.set_title(f"{label}\n{solved}/{len(idx)} solved", fontsize=9)
        ax.set_xlabel("y (m, left is +)")
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    axes[0].invert_xaxis()  # shared x axis: the robot's left (+y) on the left, looking along +x
    axes[0].set_ylabel("x (m, forward)")
    fig.suptitle(f"same starts, {int(changed.sum())} of {len(ia)} episodes end differently (solid lines)")
    save_png(fig, path, dpi=90)
    return path.name


def comparison_report(comparison: dict[str, Any], labels: tuple[str, str], plot: str | None) -> list[str]:
    """Markdown lines of the "What changed" section."""
    this, other = labels
    lines = [f"## What changed: {this} vs {other} (same starts)", ""]
    for who in ("student", "expert"):
        c = comparison.get(who)
        if c is None:
            continue
        lines += [
            f"### {who}",
            "",
            f"{c['num_paired']} paired episodes: success {c['success_other']} in {other}, {c['success_this']} in "
            f"{this}; kept {c['kept']}, gained {c['gained']}, lost {c['lost']}. Mean env steps over the episodes "
            f"both solved: {_fmt(c['mean_env_steps_both_solved']['other'])} -> "
            f"{_fmt(c['mean_env_steps_both_solved']['this'])}.",
            "",
            f"| termination | {other} | {this} |",
            "|---|---|---|",
        ]
        lines += [f"| {k} | {v['other']} | {v['this']} |" for k, v in c["termination_causes"].items()]
        lines.append("")
        if c["cause_changes"]:
            lines += ["| changed cause | episodes |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in c["cause_changes"].items()]
            lines.append("")
    if plot:
        lines += [f"![side by side]({plot})", ""]
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
