"""What the privileged expert sees: features selected from the simulator's ``privileged_state``.

The expert never sees pixels. Its network input is a fixed, parameter-free function of
``privileged_state`` (columns named by ``vlnav_data.sim.PRIVILEGED_STATE_NAMES``): a column selection
and a constant scale, so features stay within about [-1, 1] on the text2nav arena and the checkpoint
needs no normaliser statistics. The published expert fed the raw 10-D pose + quaternion + goal
position through a running standardiser; we give the goal in the robot frame instead, which makes the
steering decision a function of the bearing and the distance.

Feature columns (``FEATURE_NAMES`` = the source column names), float32 ``(N, 9)``:

========================  ======  =========================================================
source column             scale   meaning
========================  ======  =========================================================
``target_forward_m``      1/2.5   goal offset along the robot's heading
``target_left_m``         1/2.5   goal offset to the robot's left
``target_distance_xy_m``  1/2.5   horizontal distance robot -> goal
``target_bearing_cos``    1       cos of the goal bearing in the robot frame (1 = dead ahead)
``target_bearing_sin``    1       sin of the bearing (positive = goal on the left)
``x_m``                   1/2.5   robot x (lets the policy see the out-of-bounds box)
``y_m``                   1/2.5   robot y
``cos_yaw``               1       robot heading
``sin_yaw``               1
========================  ======  =========================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlnav_data.sim import PRIVILEGED_STATE_NAMES

#: Metres are multiplied by 1 / this so that arena-scale distances are of order one.
LENGTH_SCALE_M = 2.5

_SOURCES: tuple[tuple[str, float], ...] = (
    ("target_forward_m", 1.0 / LENGTH_SCALE_M),
    ("target_left_m", 1.0 / LENGTH_SCALE_M),
    ("target_distance_xy_m", 1.0 / LENGTH_SCALE_M),
    ("target_bearing_cos", 1.0),
    ("target_bearing_sin", 1.0),
    ("x_m", 1.0 / LENGTH_SCALE_M),
    ("y_m", 1.0 / LENGTH_SCALE_M),
    ("cos_yaw", 1.0),
    ("sin_yaw", 1.0),
)

#: Names of the feature columns returned by :func:`expert_features` (their source columns).
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in _SOURCES)

_COLUMNS = np.array([PRIVILEGED_STATE_NAMES.index(name) for name in FEATURE_NAMES], dtype=np.int64)
_SCALES = np.array([scale for _, scale in _SOURCES], dtype=np.float32)


def state_column(name: str) -> int:
    """Index of a ``privileged_state`` column by its name in ``PRIVILEGED_STATE_NAMES``."""
    return PRIVILEGED_STATE_NAMES.index(name)


def host_state(privileged_state: Any) -> np.ndarray:
    """``obs["privileged_state"]`` as a host numpy array (an env built with ``obs_backend="torch"`` returns a
    tensor on its device; the experts compute on the host)."""
    if hasattr(privileged_state, "detach"):
        return privileged_state.detach().cpu().numpy()
    return np.asarray(privileged_state)


def check_privileged_state(privileged_state: np.ndarray) -> np.ndarray:
    """Return ``privileged_state`` as an array, checking its width against the simulator's contract.

    Raises:
        ValueError: not ``(N, len(PRIVILEGED_STATE_NAMES))`` (a programming error: the caller passed
            something other than the simulator's ``obs["privileged_state"]``).
    """
    s = np.asarray(privileged_state)
    if s.ndim != 2 or s.shape[1] != len(PRIVILEGED_STATE_NAMES):
        raise ValueError(
            f"privileged_state must have shape (N, {len(PRIVILEGED_STATE_NAMES)}) with columns "
            f"{PRIVILEGED_STATE_NAMES}, got shape {s.shape}"
        )
    return s


def expert_features(privileged_state: np.ndarray) -> np.ndarray:
    """The expert network's input (see the module docstring for the columns).

    Args:
        privileged_state: float ``(N, len(PRIVILEGED_STATE_NAMES))``, the simulator's
            ``obs["privileged_state"]``.

    Returns:
        float32 ``(N, len(FEATURE_NAMES))``.
    """
    s = check_privileged_state(privileged_state)
    return (s[:, _COLUMNS].astype(np.float32) * _SCALES).astype(np.float32)
