"""The expert's training reward: the published reward, with its heading term fixed.

Published form (reference spec §2.3), evaluated in this order on the state *after* the step:

1. ``r = -0.1 * dist``, with ``dist`` the 3-D distance from the robot root to the target centre;
2. on success ``r = +10`` (overwrites 1);
3. ``r += 0.1 * cos(h, d)`` (the heading term);
4. out of bounds: ``r = -5`` (overwrites everything).

There is no time or alive penalty. The arena already returns terms 1, 2 and 4 as its own ``reward``
(``ArenaConfig.reward_distance_coef``, ``reward_success``, ``reward_out_of_bounds``); this module adds
term 3 on top of it, so the distance, success and bounds logic lives in one place (the simulator).

The published heading term used ``h`` = the third row of the rotation matrix, i.e. the robot's *up*
axis, with ``d`` the 3-D unit vector from the root to the goal. For yaw-only motion that is
``cos(h, d) = dz / dist`` (``dz`` = target height above the root): a small bonus that grows near the
goal and does not depend on the heading at all (a no-op bug). ``variant="published"`` reproduces it.

``variant="fixed"`` (our default) is what the term was meant to be, and what the May-1 version of the
published code did: ``cos`` of the angle between the 2-D heading ``(cos_yaw, sin_yaw)`` and the 2-D unit
vector from the robot to the goal (``privileged_state`` column ``target_bearing_cos``): ``+0.1`` facing
the goal, ``-0.1`` facing away.

Time-limit truncation gets the ordinary step reward (PPO bootstraps through it). The published training
multiplied all rewards by 2 (skrl ``rewards_shaper_scale``); that scale is a PPO setting here
(``TrainConfig.reward_scale``), not part of this function.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vlnav_data.errors import unknown_name
from vlnav_data.expert.features import check_privileged_state, state_column

RewardVariant = Literal["fixed", "published"]
REWARD_VARIANTS: tuple[str, ...] = ("fixed", "published")

#: Coefficient of the heading term (published 0.1).
HEADING_COEF = 0.1


def heading_cosine(privileged_state: np.ndarray, *, target_dz_m: float, variant: RewardVariant) -> np.ndarray:
    """``cos(h, d)`` of the heading term.

    Args:
        privileged_state: float ``(N, D)``, the simulator's ``obs["privileged_state"]``.
        target_dz_m: height of the target centre above the robot root (0.1 m on text2nav).
        variant: ``"fixed"`` (2-D heading vs goal direction) or ``"published"`` (``dz / dist_3d``).

    Returns:
        float64 ``(N,)`` in [-1, 1].

    Raises:
        ConfigError: unknown ``variant``.
    """
    if variant not in REWARD_VARIANTS:
        raise unknown_name("reward variant", str(variant), REWARD_VARIANTS)
    s = check_privileged_state(privileged_state).astype(np.float64)
    if variant == "fixed":
        return s[:, state_column("target_bearing_cos")]
    dist_xy = s[:, state_column("target_distance_xy_m")]
    return float(target_dz_m) / np.sqrt(dist_xy**2 + float(target_dz_m) ** 2)


def expert_reward(
    arena_reward: np.ndarray,
    privileged_state: np.ndarray,
    termination: np.ndarray,
    *,
    target_dz_m: float,
    variant: RewardVariant = "fixed",
) -> np.ndarray:
    """The expert's reward for one env step of N arenas: arena reward + heading term (not out of bounds).

    Args:
        arena_reward: float ``(N,)``, the arena's ``reward`` for this step (terms 1, 2, 4 above).
        privileged_state: float ``(N, D)``, state *after* the step (before any autoreset).
        termination: str ``(N,)``, the arena's ``info["termination"]`` for this step (``""`` while
            running, ``"success"``, ``"out_of_bounds_*"`` or ``"time_limit"``).
        target_dz_m: height of the target centre above the robot root.
        variant: ``"fixed"`` or ``"published"``.

    Returns:
        float32 ``(N,)``.

    Raises:
        ConfigError: unknown ``variant``.
    """
    cos = heading_cosine(privileged_state, target_dz_m=target_dz_m, variant=variant)
    out_of_bounds = np.char.startswith(np.asarray(termination).astype(str), "out_of_bounds")
    reward = np.asarray(arena_reward, dtype=np.float64) + np.where(out_of_bounds, 0.0, HEADING_COEF * cos)
    return reward.astype(np.float32)
