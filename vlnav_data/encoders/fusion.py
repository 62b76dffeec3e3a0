"""Fusion of image and text embeddings: the published joint vector and the ablations."""

from __future__ import annotations

import numpy as np

from vlnav_data.errors import ConfigError, unknown_name
from vlnav_data.vectors import l2_normalize

FUSION_MODES: tuple[str, ...] = ("joint", "concat", "image", "text")
"""Names accepted by :func:`fuse`."""


def _check_pair(image: np.ndarray, text: np.ndarray) -> None:
    if np.shape(image) != np.shape(text) or np.ndim(image) != 2:
        raise ConfigError(
            "image and text embeddings must both be (B, E) arrays of the same shape to fuse; received "
            f"{np.shape(image)} and {np.shape(text)}."
        )


def joint_embedding(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """The published per-step vector ``l2(l2(image) + l2(text))`` (text2nav spec §4).

    Args:
        image: float ``(B, E)`` image (or, for the oracle, state) embeddings.
        text: float ``(B, E)`` text embeddings.

    Returns:
        float32 ``(B, E)``, L2-normalised.
    """
    _check_pair(image, text)
    return l2_normalize(l2_normalize(image) + l2_normalize(text))


def fuse(image: np.ndarray, text: np.ndarray, mode: str = "joint") -> np.ndarray:
    """Combine image and text embeddings.

    Args:
        image: float ``(B, E)``.
        text: float ``(B, E)``.
        mode: ``joint`` (published, :func:`joint_embedding`, ``(B, E)``), ``concat``
            (``[l2(image), l2(text)]``, ``(B, 2E)``, not re-normalised), ``image`` (``l2(image)``) or
            ``text`` (``l2(text)``).

    Returns:
        float32 ``(B, E)`` or ``(B, 2E)`` for ``concat``.

    Raises:
        ConfigError: on an unknown mode or mismatched shapes.
    """
    if mode == "joint":
        return joint_embedding(image, text)
    if mode == "concat":
        _check_pair(image, text)
        return np.concatenate([l2_normalize(image), l2_normalize(text)], axis=-1)
    if mode == "image":
        return l2_normalize(image)
    if mode == "text":
        return l2_normalize(text)
    raise unknown_name("fusion mode", mode, FUSION_MODES)


def fused_dim(dim: int, mode: str) -> int:
    """Width of :func:`fuse`'s output for embeddings of width ``dim``."""
    if mode not in FUSION_MODES:
        raise unknown_name("fusion mode", mode, FUSION_MODES)
    return 2 * dim if mode == "concat" else dim
