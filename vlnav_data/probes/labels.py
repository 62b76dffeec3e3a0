"""Probe labels derived from what a dataset stores: robot-frame bearing and distance, colour, spatial word.

The student never sees these: they are computed from ``obs/privileged_state`` (privileged) and from
the instruction text, and used only as probe targets.

Conventions (documented once, used everywhere in :mod:`vlnav_data.probes`):

- **bearing** ``privileged_bearing_rad``: angle of the target in the robot frame, ``atan2(lateral,
  forward)`` with ``forward`` along the robot's heading and ``lateral`` to its left, so positive =
  target to the left, ``0`` = dead ahead, ``±π`` = behind. Probes regress ``(sin, cos)`` of it
  (a continuous target without the ±π wrap) and report R² over both and the angular error.
- **distance** ``privileged_distance_m``: planar distance from the robot's ``(x, y)`` to the target
  centre's ``(x, y)``, metres (the success test uses 3-D distance to a centre 0.1 m up; the planar one
  is what the robot can act on).
- **spatial word**: the cue the instruction text states (``left``, ``right``, ``straight ahead``,
  ``ahead``, ``behind``), parsed from the text; ``""`` when the instruction has none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vlnav_data.errors import SchemaError

#: Privileged-state columns the bearing/distance labels are computed from.
REQUIRED_STATE_COLUMNS = ("x_m", "y_m", "cos_yaw", "sin_yaw", "target_x_m", "target_y_m")

#: Spatial words recognised in instruction text, most specific first.
SPATIAL_WORDS = ("straight ahead", "left", "right", "behind", "ahead")

_SPATIAL_PATTERNS = tuple((word, re.compile(r"\b" + word.replace(" ", r"\s+") + r"\b")) for word in SPATIAL_WORDS)


def state_column_indices(state_names: Sequence[str], needed: Sequence[str] = REQUIRED_STATE_COLUMNS) -> list[int]:
    """Return the column index of each name in ``needed``.

    Raises:
        SchemaError: a needed column is missing (the message lists the columns the file has).
    """
    names = list(state_names)
    missing = [n for n in needed if n not in names]
    if missing:
        raise SchemaError(
            f"obs/privileged_state lacks the column(s) {', '.join(missing)} needed for the bearing/distance "
            f"labels; the file has: {', '.join(names) if names else '(no column names)'}. Rebuild the "
            "dataset with a current `vlnav-data build`, or probe only the action and colour targets (--target action "
            "--target colour)."
        )
    return [names.index(n) for n in needed]


def robot_frame_target(privileged_state: np.ndarray, state_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Bearing and planar distance of the target in the robot frame.

    Args:
        privileged_state: float array ``(N, D)`` with columns named by ``state_names``.
        state_names: the ``D`` column names (must include :data:`REQUIRED_STATE_COLUMNS`).

    Returns:
        ``(bearing_rad, distance_m)``, each float64 ``(N,)``; bearing in ``(-π, π]``, positive = left.

    Raises:
        SchemaError: a needed column is missing or the array is not 2-D with ``D`` columns.
    """
    state = np.asarray(privileged_state, dtype=np.float64)
    if state.ndim != 2 or state.shape[1] != len(state_names):
        raise SchemaError(
            f"obs/privileged_state must be (N, {len(state_names)}) to match its {len(state_names)} column "
            f"names; got shape {state.shape}. The file is inconsistent: run `vlnav-data validate` on it."
        )
    ix, iy, ic, is_, itx, ity = state_column_indices(state_names)
    dx = state[:, itx] - state[:, ix]
    dy = state[:, ity] - state[:, iy]
    cos_yaw, sin_yaw = state[:, ic], state[:, is_]
    forward = dx * cos_yaw + dy * sin_yaw
    lateral = -dx * sin_yaw + dy * cos_yaw
    return np.arctan2(lateral, forward), np.hypot(dx, dy)


def bearing_targets(bearing_rad: np.ndarray) -> np.ndarray:
    """The regression target for bearing: ``(sin, cos)``, float64 ``(N, 2)``."""
    b = np.asarray(bearing_rad, dtype=np.float64)
    return np.stack([np.sin(b), np.cos(b)], axis=1)


def angle_from_sincos(sincos: np.ndarray) -> np.ndarray:
    """Invert :func:`bearing_targets`: ``(N, 2)`` -> angle ``(N,)`` radians (need not be unit-norm)."""
    s = np.asarray(sincos, dtype=np.float64)
    return np.arctan2(s[:, 0], s[:, 1])


def angular_error_deg(pred_rad: np.ndarray, true_rad: np.ndarray) -> np.ndarray:
    """Absolute wrapped angle difference in degrees, ``(N,)`` in ``[0, 180]``."""
    d = np.angle(np.exp(1j * (np.asarray(pred_rad) - np.asarray(true_rad))))
    return np.degrees(np.abs(d))


def parse_spatial_word(instruction: str) -> str:
    """The spatial cue an instruction states, or ``""`` when it states none.

    ``"straight ahead"`` is matched before ``"ahead"``; matching is case-insensitive on whole words.

    Examples:
        >>> parse_spatial_word("The target is red ball which is to your left. Move toward the ball.")
        'left'
        >>> parse_spatial_word("The target is red ball which is straight ahead. Move toward the ball.")
        'straight ahead'
        >>> parse_spatial_word("Move towards red ball")
        ''
    """
    text = instruction.lower()
    for word, pattern in _SPATIAL_PATTERNS:
        if pattern.search(text):
            return word
    return ""


def parse_colour(instruction: str, colours: Sequence[str]) -> str:
    """The first of ``colours`` named in the instruction as a whole word, or ``""``."""
    text = instruction.lower()
    for colour in colours:
        if re.search(r"\b" + re.escape(colour.lower()) + r"\b", text):
            return colour
    return ""


def coarse_cell(
    bearing_rad: np.ndarray,
    distance_m: np.ndarray,
    bearing_edges_deg: Sequence[float],
    distance_edges_m: Sequence[float],
) -> np.ndarray:
    """A coarse position cell from robot-frame bearing and distance (our stand-in for an image grid cell).

    The cell is ``bearing_bin * (len(distance_edges_m) + 1) + distance_bin``, where bins are
    ``np.digitize`` of the value against the sorted edges.

    Returns:
        int64 ``(N,)`` cell ids in ``[0, (len(bearing_edges)+1) * (len(distance_edges)+1))``.
    """
    b_bin = np.digitize(np.degrees(np.asarray(bearing_rad)), np.asarray(sorted(bearing_edges_deg)))
    d_bin = np.digitize(np.asarray(distance_m), np.asarray(sorted(distance_edges_m)))
    return (b_bin * (len(distance_edges_m) + 1) + d_bin).astype(np.int64)
