"""Contact sheet of an episode: first-person frames beside a top-down map (matplotlib, imported lazily).

The episode is the start of ``episode_seed`` driven by a simple turn-then-drive steering rule on the
privileged state (enough to show the arena from several viewpoints; the real experts live in
``vlnav_data.expert``). The episode runs state-only; the chosen frames are rendered afterwards with
:func:`render_views` from the recorded poses (float32 state, so poses agree with the run to ~1e-7 m).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.figures import figure
from vlnav_data.sim.backends import render_views
from vlnav_data.sim.config import PRESET_NAMES, get_preset
from vlnav_data.sim.make import make_arena
from vlnav_data.sim.rollout import Episode, rollout
from vlnav_data.sim.task import PALETTE_RGB, PRIVILEGED_STATE_NAMES, check_seed

_BEARING = (PRIVILEGED_STATE_NAMES.index("target_bearing_cos"), PRIVILEGED_STATE_NAMES.index("target_bearing_sin"))


@dataclass(frozen=True, kw_only=True)
class PreviewConfig:
    """What ``vlnav-data preview`` draws.

    Attributes:
        preset: Arena preset name.
        seed: Episode seed of the previewed episode.
        out: Output PNG path.
        num_frames: First-person frames on the sheet (evenly spaced over the episode, first and last included).
        device: Torch device for the simulator.
    """

    preset: str = "text2nav"
    seed: int = 0
    out: Path = field(default_factory=lambda: Path("preview.png"))
    num_frames: int = 6
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.preset not in PRESET_NAMES:
            get_preset(self.preset)  # raises the did-you-mean error
        check_seed(self.seed, "seed")
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or not 1 <= self.num_frames <= 24:
            raise ConfigError(f"num_frames must be an integer in [1, 24], got {self.num_frames!r}")
        if Path(self.out).suffix.lower() != ".png":
            raise ConfigError(f"out must be a .png path, got '{self.out}'")


@dataclass(frozen=True)
class PreviewResult:
    """Summary of a rendered preview (written to result.json by the CLI)."""

    out: Path
    preset: str
    seed: int
    target_color: str
    termination: str
    num_steps: int
    frame_steps: list[int]
    instructions: list[str]


def steer_to_target(obs: dict[str, np.ndarray], info: dict) -> np.ndarray:
    """Turn-then-drive wheel actions ``(N, 2)`` from the privileged state (bearing to the target)."""
    state = obs["privileged_state"]
    bearing = np.arctan2(state[:, _BEARING[1]], state[:, _BEARING[0]])
    turn = np.clip(bearing / 0.6, -1.0, 1.0)
    forward = np.where(np.abs(bearing) < 0.35, 1.0, 0.0)
    return np.stack([forward - turn, forward + turn], axis=1).clip(-1.0, 1.0)


def render_preview(config: PreviewConfig) -> PreviewResult:
    """Run one episode and save the contact sheet PNG; returns what was drawn."""
    from matplotlib.patches import Circle, Rectangle

    arena_config = get_preset(config.preset)
    env = make_arena(arena_config, num_envs=1, device=config.device, render=False)
    episode: Episode = next(rollout(env, steer_to_target, [config.seed]))
    steps = np.unique(np.linspace(0, episode.num_steps - 1, config.num_frames).round().astype(int)).tolist()
    start = episode.start
    state = episode.privileged_state[steps]
    poses = np.stack([state[:, 0], state[:, 1], np.arctan2(state[:, 3], state[:, 2])], axis=1)
    frames = render_views(
        arena_config,
        poses.astype(np.float64),
        sphere_positions_xy_m=start.sphere_positions_xy_m,
        sphere_color_indices=start.sphere_color_indices,
        floor_rgb=start.floor_rgb,
        light_position_m=start.light_position_m,
        device=config.device,
    )
    cols = min(3, len(steps))
    rows = math.ceil(len(steps) / cols)
    fig = figure(figsize=(3.0 * cols + 4.6, max(3.2 * rows, 4.6)), dpi=110)
    grid = fig.add_gridspec(rows, cols + 2)
    for i, (step, frame) in enumerate(zip(steps, frames, strict=True)):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        ax.imshow(frame)
        ax.set_title(f"step {step}", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[:, cols:])
    x_lo, x_hi = arena_config.bounds_x_m
    y_lo, y_hi = arena_config.bounds_y_m
    ax.add_patch(Rectangle((x_lo, y_lo), x_hi - x_lo, y_hi - y_lo, fill=False, ls="--", ec="0.4", lw=1))
    for x0, y0, x1, y1 in arena_config.wall_segments_xy_m:
        ax.plot([x0, x1], [y0, y1], color="0.45", lw=4, solid_capstyle="butt")
    for k, (sx, sy) in enumerate(start.sphere_positions_xy_m):
        color = PALETTE_RGB[start.sphere_color_indices[k]]
        ax.add_patch(Circle((sx, sy), arena_config.sphere_radius_m, color=color, ec="k", lw=0.5, zorder=3))
        if k == start.target_index:
            ax.add_patch(Circle((sx, sy), 0.28, fill=False, ec=color, ls=":", lw=1.2, zorder=3))
    path = np.vstack([episode.privileged_state[:, :2], episode.final_privileged_state[None, :2]])
    ax.plot(path[:, 0], path[:, 1], color="k", lw=1)
    for step in steps:
        x, y, c, s = episode.privileged_state[step, :4]
        ax.arrow(x, y, 0.12 * c, 0.12 * s, width=0.012, color="tab:orange", zorder=4)
        ax.annotate(str(step), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_aspect("equal")
    ax.set_xlim(min(-1.4, path[:, 0].min() - 0.1), 2.8)
    ax.set_ylim(-1.6, 1.6)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m), +y = left of +x")
    ax.set_title(f"{config.preset}, seed {config.seed}: target {episode.target_color}, {episode.termination}")
    fig.suptitle(episode.instructions[0], fontsize=10)
    fig.tight_layout()
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    fig.savefig(partial, format="png")  # then renamed: an existing OUT stays until the new one is complete
    os.replace(partial, out)
    return PreviewResult(
        out=out,
        preset=config.preset,
        seed=config.seed,
        target_color=episode.target_color,
        termination=episode.termination,
        num_steps=episode.num_steps,
        frame_steps=steps,
        instructions=[episode.instructions[s] for s in steps],
    )


__all__ = ["PreviewConfig", "PreviewResult", "render_preview", "steer_to_target"]
