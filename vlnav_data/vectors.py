"""Row-vector rules every layer shares (numpy only): L2 normalisation."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale every row to unit L2 norm; rows of zeros stay zero.

    Args:
        x: float array ``(..., E)``; the last axis is normalised.
        eps: floor of the norm (a row whose norm is below it is divided by ``eps``).

    Returns:
        float32 array of the same shape.
    """
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, eps)).astype(np.float32, copy=False)
