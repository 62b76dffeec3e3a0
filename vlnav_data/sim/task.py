"""The navigation task: episode starts, privileged state, instructions, reward and termination.

Everything here is a pure function. Episode starts are drawn with numpy from the episode's own seed
(so any process can reproduce the start of episode ``i`` from its seed alone); per-step quantities are
computed with torch on whatever device the poses live on.

Order of checks on one step (exactly one cause is reported, ``terminated`` and ``truncated`` are
never both true): ``success`` first, then out of bounds in the order ``front`` (x > hi), ``back``
(x < lo), ``left`` (y > hi), ``right`` (y < lo), then ``time_limit``. So a step that reaches the
target while crossing a boundary is a success (the spheres sit exactly on the published front bound
x = 2.5), and an out-of-bounds exit on the last allowed step is a failure, not a truncation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import COLOR_PALETTE, ArenaConfig

#: Episode end causes, in check order (index + 1 is the internal code; 0 means "running").
TERMINATION_CAUSES: tuple[str, ...] = (
    "success",
    "out_of_bounds_front",
    "out_of_bounds_back",
    "out_of_bounds_left",
    "out_of_bounds_right",
    "time_limit",
)
CAUSE_SUCCESS = 1
CAUSE_TIME_LIMIT = 6

#: Columns of ``obs["privileged_state"]`` (float32). Robot frame: forward = heading, left = +90°.
PRIVILEGED_STATE_NAMES: tuple[str, ...] = (
    "x_m",  # robot root x in the arena frame
    "y_m",  # robot root y (+y is the robot's left when it faces +x)
    "cos_yaw",
    "sin_yaw",
    "target_x_m",  # target sphere centre x
    "target_y_m",  # target sphere centre y
    "target_forward_m",  # target offset along the robot heading
    "target_left_m",  # target offset to the robot's left (the published "angle", spec §2.2)
    "target_distance_xy_m",  # horizontal distance robot root -> target centre
    "target_bearing_cos",  # cos of the robot-frame bearing of the target (1 = dead ahead)
    "target_bearing_sin",  # sin of the bearing (+ = target on the left)
)

_SPATIAL_PHRASES = ("straight ahead", "to your left", "to your right", "behind you")


@dataclass(frozen=True, eq=False)
class EpisodeStart:
    """Everything random about one episode, drawn from its seed by :func:`sample_episode_start`.

    Attributes:
        episode_seed: The seed the start was drawn from.
        pose: float64 ``(3,)`` ``[x_m, y_m, yaw_rad]``.
        target_index: Index of the target sphere in ``sphere_positions_xy_m``.
        sphere_positions_xy_m: float64 ``(K, 2)`` sphere centres.
        sphere_color_indices: int64 ``(K,)`` indices into ``COLOR_PALETTE`` order.
        floor_rgb: float64 ``(3,)`` floor colour of this episode.
        light_position_m: float64 ``(3,)`` light position of this episode.
    """

    episode_seed: int
    pose: np.ndarray
    target_index: int
    sphere_positions_xy_m: np.ndarray
    sphere_color_indices: np.ndarray
    floor_rgb: np.ndarray
    light_position_m: np.ndarray

    @property
    def target_color(self) -> str:
        """Colour name of the target sphere."""
        return PALETTE_NAMES[int(self.sphere_color_indices[self.target_index])]

    @property
    def target_xy_m(self) -> np.ndarray:
        """float64 ``(2,)`` target sphere centre."""
        return self.sphere_positions_xy_m[self.target_index]


PALETTE_NAMES: tuple[str, ...] = tuple(COLOR_PALETTE)
PALETTE_RGB = np.array([COLOR_PALETTE[n] for n in PALETTE_NAMES], dtype=np.float32)


def check_seed(seed: object, what: str = "episode_seed") -> int:
    """Return ``seed`` as an int, or raise ConfigError unless it is an integer in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (0 <= int(seed) < 2**63):
        raise ConfigError(f"{what} must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def sample_episode_start(config: ArenaConfig, episode_seed: int) -> EpisodeStart:
    """Draw the start of one episode; a pure function of ``(config, episode_seed)``.

    ``text2nav``-style configs (fixed spheres): x ~ U(start_x_range_m), y ~ U(start_y_range_m),
    yaw ~ U(start_yaw_range_rad), target ~ U{0..K-1}, in that order. Randomising configs first place
    the spheres (rejection sampling for ``sphere_min_separation_m``), draw distinct colours, the target,
    then a start at least ``start_min_target_distance_m`` from every sphere, floor and light jitter.

    Raises:
        ConfigError: negative / non-integer seed, or a config whose constraints cannot be met.
    """
    seed = check_seed(episode_seed)
    rng = np.random.default_rng(seed)
    if not config.randomize_spheres:
        x = rng.uniform(*config.start_x_range_m)
        y = rng.uniform(*config.start_y_range_m)
        yaw = rng.uniform(*config.start_yaw_range_rad)
        k = len(config.sphere_positions_xy_m)
        target = int(rng.integers(k))
        spheres = np.array(config.sphere_positions_xy_m, dtype=np.float64)
        colors = np.array([PALETTE_NAMES.index(c) for c in config.sphere_colors], dtype=np.int64)
        return EpisodeStart(
            episode_seed=seed,
            pose=np.array([x, y, yaw], dtype=np.float64),
            target_index=target,
            sphere_positions_xy_m=spheres,
            sphere_color_indices=colors,
            floor_rgb=np.array(config.floor_rgb, dtype=np.float64),
            light_position_m=np.array(config.light_position_m, dtype=np.float64),
        )
    k = config.num_random_spheres
    spheres = np.empty((k, 2))
    placed = 0
    for _ in range(10_000):
        cand = np.array([rng.uniform(*config.sphere_region_x_m), rng.uniform(*config.sphere_region_y_m)])
        if placed == 0 or np.min(np.hypot(*(spheres[:placed] - cand).T)) >= config.sphere_min_separation_m:
            spheres[placed] = cand
            placed += 1
            if placed == k:
                break
    else:
        raise ConfigError(
            f"cannot place {k} spheres {config.sphere_min_separation_m} m apart in x {config.sphere_region_x_m}, "
            f"y {config.sphere_region_y_m}; lower num_random_spheres or sphere_min_separation_m"
        )
    palette = [PALETTE_NAMES.index(c) for c in config.random_sphere_palette]
    colors = rng.choice(np.array(palette, dtype=np.int64), size=k, replace=False)
    target = int(rng.integers(k))
    for _ in range(10_000):
        x = rng.uniform(*config.start_x_range_m)
        y = rng.uniform(*config.start_y_range_m)
        if np.min(np.hypot(spheres[:, 0] - x, spheres[:, 1] - y)) >= config.start_min_target_distance_m:
            break
    else:
        raise ConfigError(
            f"cannot find a start {config.start_min_target_distance_m} m from every sphere; lower "
            "start_min_target_distance_m or widen the start ranges"
        )
    yaw = rng.uniform(*config.start_yaw_range_rad)
    floor = np.clip(np.array(config.floor_rgb) + rng.uniform(-1, 1, 3) * config.floor_rgb_jitter, 0.0, 1.0)
    light = np.array(config.light_position_m, dtype=np.float64)
    light[:2] += rng.uniform(-1, 1, 2) * config.light_jitter_m
    return EpisodeStart(
        episode_seed=seed,
        pose=np.array([x, y, yaw], dtype=np.float64),
        target_index=target,
        sphere_positions_xy_m=spheres,
        sphere_color_indices=colors.astype(np.int64),
        floor_rgb=floor,
        light_position_m=light,
    )


def target_in_robot_frame(poses: torch.Tensor, target_xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Target offset in the robot frame.

    Args:
        poses: ``(N, 3)`` ``[x, y, yaw]``.
        target_xy: ``(N, 2)`` target centres.

    Returns:
        ``(forward_m, left_m)``, each ``(N,)``.
    """
    dx = target_xy[:, 0] - poses[:, 0]
    dy = target_xy[:, 1] - poses[:, 1]
    c, s = torch.cos(poses[:, 2]), torch.sin(poses[:, 2])
    return c * dx + s * dy, -s * dx + c * dy


def privileged_state(poses: torch.Tensor, target_xy: torch.Tensor) -> torch.Tensor:
    """The expert's observation, columns named by ``PRIVILEGED_STATE_NAMES``.

    Args:
        poses: ``(N, 3)`` ``[x, y, yaw]``.
        target_xy: ``(N, 2)`` target centres.

    Returns:
        float32 ``(N, 11)`` on the poses' device.
    """
    forward, left = target_in_robot_frame(poses, target_xy)
    dist = torch.hypot(forward, left)
    safe = dist.clamp_min(1e-9)
    cols = [
        poses[:, 0],
        poses[:, 1],
        torch.cos(poses[:, 2]),
        torch.sin(poses[:, 2]),
        target_xy[:, 0],
        target_xy[:, 1],
        forward,
        left,
        dist,
        torch.where(dist > 0, forward / safe, torch.ones_like(dist)),
        torch.where(dist > 0, left / safe, torch.zeros_like(dist)),
    ]
    return torch.stack(cols, dim=1).to(torch.float32)


def instruction_texts(
    config: ArenaConfig, poses: torch.Tensor, target_xy: torch.Tensor, target_colors: list[str]
) -> list[str]:
    """Instructions for the current poses, in the config's style.

    Styles:
        ``paper``: the published templates, chosen by the target's lateral robot-frame offset
        ``left_m`` against ``paper_lateral_threshold_m`` (left if ``> t``, right if ``< -t``, else
        "straight ahead"). Like the original this ignores front/back: a target directly behind the
        robot reads "straight ahead".
        ``spatial``: from the robot-frame bearing ``b``: "straight ahead" if ``|b| <= t``, "behind you"
        if ``|b| >= pi - t``, else left (b > 0) / right, with ``t = spatial_threshold_rad``.
        ``color``: "Move toward the {c} ball."

    The two halves are :func:`instruction_codes` (on the poses' device) and :func:`format_instructions`
    (on the host); the simulator reads the codes with its other per-step numbers in one transfer.

    Args:
        config: Arena config (style and thresholds).
        poses: ``(N, 3)`` poses.
        target_xy: ``(N, 2)`` target centres.
        target_colors: N colour names.

    Returns:
        N strings.
    """
    codes = instruction_codes(config, poses, target_xy).tolist()
    return format_instructions(config, codes, target_colors)


def instruction_codes(config: ArenaConfig, poses: torch.Tensor, target_xy: torch.Tensor) -> torch.Tensor:
    """Which phrase each instruction uses, int64 ``(N,)`` on the poses' device (see :func:`instruction_texts`).

    ``paper``: 0 straight ahead, 1 left, 2 right; ``spatial``: 0 ahead, 1 left, 2 right, 3 behind;
    ``color``: always 0 (the text names the colour only).
    """
    if config.instructions == "color":
        return torch.zeros(poses.shape[0], dtype=torch.long, device=poses.device)
    forward, left = target_in_robot_frame(poses, target_xy)
    if config.instructions == "paper":
        t = config.paper_lateral_threshold_m
        return torch.where(left > t, 1, torch.where(left < -t, 2, 0))
    bearing = torch.atan2(left, forward).abs()
    t = config.spatial_threshold_rad
    lateral = torch.where(left > 0, 1, 2)
    return torch.where(bearing <= t, 0, torch.where(bearing >= math.pi - t, 3, lateral))


def format_instructions(config: ArenaConfig, codes: list[int], target_colors: list[str]) -> list[str]:
    """The instruction strings of :func:`instruction_codes`' phrase codes and the target colours (host only)."""
    if config.instructions == "color":
        return [f"Move toward the {c} ball." for c in target_colors]
    pairs = zip(target_colors, codes, strict=True)
    if config.instructions == "paper":
        phrase = ("which is straight ahead", "which is to your left", "which is to your right")
        return [f"The target is {c} ball {phrase[s]}. Move toward the ball." for c, s in pairs]
    return [f"The {c} ball is {_SPATIAL_PHRASES[s]}. Move toward the ball." for c, s in pairs]


def sphere_distances_3d(config: ArenaConfig, poses: torch.Tensor, sphere_xy: torch.Tensor) -> torch.Tensor:
    """3-D distance from the robot root ``(x, y, root_height)`` to every sphere centre, ``(N, K)``."""
    dxy = sphere_xy - poses[:, None, :2]
    dz = config.sphere_height_m - config.robot_root_height_m
    return torch.sqrt((dxy**2).sum(-1) + dz * dz)


def evaluate_step(
    config: ArenaConfig,
    poses: torch.Tensor,
    sphere_xy: torch.Tensor,
    target_index: torch.Tensor,
    env_steps: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Reward, termination and sphere bookkeeping for the poses reached by a step.

    Args:
        config: Arena config.
        poses: ``(N, 3)`` poses after the step.
        sphere_xy: ``(N, K, 2)`` sphere centres.
        target_index: int64 ``(N,)``.
        env_steps: int64 ``(N,)`` step count of the episode including this step.

    Returns:
        Dict of ``(N,)`` tensors: ``cause`` (int64, 0 = running, else 1 + index into
        ``TERMINATION_CAUSES``), ``terminated``, ``truncated`` (bool), ``reward`` (float32),
        ``reached_wrong_sphere`` (bool: within ``success_radius_m`` of a non-target sphere),
        ``nearest_sphere_index`` (int64), ``target_distance_m`` (3-D, float64).
    """
    dists = sphere_distances_3d(config, poses, sphere_xy)
    target_dist = dists.gather(1, target_index[:, None])[:, 0]
    within = dists < config.success_radius_m
    is_target = torch.zeros_like(within)
    is_target.scatter_(1, target_index[:, None], True)
    x, y = poses[:, 0], poses[:, 1]
    (x_lo, x_hi), (y_lo, y_hi) = config.bounds_x_m, config.bounds_y_m
    checks = [
        target_dist < config.success_radius_m,
        x > x_hi,
        x < x_lo,
        y > y_hi,
        y < y_lo,
        env_steps >= config.max_episode_steps,
    ]
    cause = torch.zeros_like(target_index)
    for code in range(len(checks), 0, -1):  # last assignment wins: first check has priority
        cause = torch.where(checks[code - 1], torch.full_like(cause, code), cause)
    reward = -config.reward_distance_coef * target_dist
    reward = torch.where(cause == CAUSE_SUCCESS, torch.full_like(reward, config.reward_success), reward)
    oob = (cause > CAUSE_SUCCESS) & (cause < CAUSE_TIME_LIMIT)
    reward = torch.where(oob, torch.full_like(reward, config.reward_out_of_bounds), reward)
    return {
        "cause": cause,
        "terminated": (cause > 0) & (cause < CAUSE_TIME_LIMIT),
        "truncated": cause == CAUSE_TIME_LIMIT,
        "reward": reward.to(torch.float32),
        "reached_wrong_sphere": (within & ~is_target).any(dim=1),
        "nearest_sphere_index": dists.argmin(dim=1),
        "target_distance_m": target_dist,
    }
