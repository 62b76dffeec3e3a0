"""``history:K`` features: the last K steps of a frozen feature set, stacked newest first, zero-padded.

The temporal head is the same MLP as every other frozen-feature policy, fed the K vectors concatenated
(``[f_t, f_{t-1}, ..., f_{t-K+1}]``, ``K * E`` wide). A stacked MLP rather than a GRU: K is short (4
steps = 0.13 s at 30 Hz), the input is fixed-width so training samples rows at random exactly like the
one-step policy (no truncated back-propagation through time, no hidden state to carry or reset in the
evaluation loop), and the only difference from the one-step arm is the history itself, which is what the
arm is there to measure.

The history restarts at every episode: at training the rows before an episode's first step are zeros
(:func:`history_index`), at evaluation :class:`HistoryStacker` zeroes a slot's history whenever that slot
starts an episode, by reset or by autoreset (:func:`episode_starts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError


def history_index(episode_index: np.ndarray, steps: int) -> np.ndarray:
    """Row indices of each row's history, newest first; ``-1`` where the history reaches before its episode.

    Args:
        episode_index: int (N,) episode of each row; rows of one episode are contiguous and in step order.
        steps: K.

    Returns:
        int64 (N, K): column k holds the row of step ``t - k`` of the same episode, or -1 (zero padding).
    """
    episode = np.asarray(episode_index).reshape(-1)
    n = len(episode)
    rows = np.arange(n, dtype=np.int64)
    starts = np.ones(n, dtype=bool)
    starts[1:] = episode[1:] != episode[:-1]
    first = np.maximum.accumulate(np.where(starts, rows, 0))  # first row of each row's episode
    out = rows[:, None] - np.arange(steps, dtype=np.int64)[None, :]
    out[out < first[:, None]] = -1
    return out


def stack_history(features: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``(N, K * E)`` stacked features from per-step ``(N, E)`` features and :func:`history_index`."""
    padded = np.concatenate([features, np.zeros((1, features.shape[1]), dtype=features.dtype)])
    return padded[index].reshape(len(index), -1)


def episode_starts(info: dict[str, Any]) -> np.ndarray:
    """bool (N,): slots whose observation is the first of an episode.

    A slot starts an episode after ``reset`` (``env_steps == 0``) and after an autoreset in the same step
    (``termination`` set: the observation belongs to the new episode, the info to the finished one).
    """
    steps = np.asarray(info["env_steps"]).reshape(-1)
    ended = np.asarray(info["termination"]).astype(str).reshape(-1) != ""
    return (steps == 0) | ended


class HistoryStacker:
    """Per-slot ring of the last K feature vectors for closed-loop evaluation (numpy, host side).

    Args:
        steps: K.
    """

    def __init__(self, steps: int) -> None:
        if steps < 1:
            raise ConfigError(f"history needs K >= 1 steps, got {steps}")
        self.steps = int(steps)
        self._buffer: np.ndarray | None = None

    def push(self, features: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Add this step's ``(N, E)`` features; ``starts`` (N,) marks slots that begin an episode now.

        Returns:
            float32 ``(N, K * E)``: newest first, zeros before the slot's episode began.
        """
        feats = np.asarray(features, dtype=np.float32)
        n, e = feats.shape
        if self._buffer is None or self._buffer.shape[0] != n or self._buffer.shape[2] != e:
            self._buffer = np.zeros((n, self.steps, e), dtype=np.float32)
            starts = np.ones(n, dtype=bool)
        buf = self._buffer
        buf[np.asarray(starts, dtype=bool)] = 0.0
        buf[:, 1:] = buf[:, :-1].copy()
        buf[:, 0] = feats
        return buf.reshape(n, -1).copy()
