"""Streaming feature statistics in LeRobot's ``stats.json`` layout.

LeRobot v3.0 stores, per feature, ``min, max, mean, std, count`` and the quantiles ``q01, q10, q50, q90,
q99`` (``compute_stats.py``, ``DEFAULT_QUANTILES``); image and video features hold one value per channel,
shape ``(3, 1, 1)``, on pixel values scaled to ``[0, 1]``.

Nothing here keeps all frames in memory:

- :class:`ImageStats` is exact. Pixels are uint8, so a 256-bin histogram per channel summarises every
  frame ever seen; min, max, mean, std and quantiles come from it.
- :class:`VectorStats` needs the per-dimension range first (``observe_range``, one cheap pass over the
  low-dimensional arrays), then accumulates moments (Chan's parallel update, float64) and a
  ``num_bins``-bin histogram per dimension (``update``). Mean, std, min, max are exact; a quantile is
  interpolated linearly inside the bin where the cumulative share reaches ``q``, so it lies within
  ``(max - min) / num_bins`` of the exact sample quantile.

Quantiles follow numpy's ``inverted_cdf`` definition (the smallest sample whose cumulative share reaches
``q``): exactly for images, within one bin for vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)
"""LeRobot's ``DEFAULT_QUANTILES``; stored as ``q01, q10, q50, q90, q99``."""

QUANTILE_KEYS: tuple[str, ...] = ("q01", "q10", "q50", "q90", "q99")

STAT_KEYS: tuple[str, ...] = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)
"""Every key of one feature's entry in ``meta/stats.json``."""


class ImageStats:
    """Exact per-channel statistics of uint8 RGB frames, reported on ``[0, 1]`` with shape ``(3, 1, 1)``."""

    def __init__(self, channels: int = 3) -> None:
        self.channels = channels
        self.hist = np.zeros((channels, 256), dtype=np.int64)
        self.frames = 0

    def update(self, frames: np.ndarray) -> None:
        """Add frames.

        Args:
            frames: uint8 ``(T, H, W, C)``.
        """
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != self.channels:
            raise ValueError(f"expected uint8 (T, H, W, {self.channels}) frames, got {frames.dtype} {frames.shape}")
        planes = np.ascontiguousarray(frames.reshape(-1, self.channels).T)  # (C, T*H*W): one bincount per channel
        for c in range(self.channels):
            self.hist[c] += np.bincount(planes[c], minlength=256)
        self.frames += int(frames.shape[0])

    def merge(self, other: ImageStats) -> None:
        """Add another accumulator's frames (per-episode stats summed into the global ones)."""
        self.hist += other.hist
        self.frames += other.frames

    def result(self) -> dict[str, np.ndarray]:
        """Statistics as float arrays of shape ``(C, 1, 1)`` (``count``: int64 ``(1,)`` = frames seen)."""
        if self.frames == 0:
            raise ValueError("no frames were added")
        values = np.arange(256, dtype=np.float64) / 255.0
        total = self.hist.sum(axis=1).astype(np.float64)  # (C,)
        mean = (self.hist * values).sum(axis=1) / total
        var = (self.hist * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
        nonzero = self.hist > 0
        mins = np.array([values[np.argmax(row)] for row in nonzero])
        maxs = np.array([values[255 - np.argmax(row[::-1])] for row in nonzero])
        cdf = np.cumsum(self.hist, axis=1) / total[:, None]
        out: dict[str, np.ndarray] = {
            "min": mins,
            "max": maxs,
            "mean": mean,
            "std": np.sqrt(var),
        }
        for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
            # inverted CDF: the first value whose cumulative share reaches q (tiny slack for float sums)
            idx = np.array([int(np.searchsorted(row, q - 1e-12, side="left")) for row in cdf])
            out[key] = values[np.minimum(idx, 255)]
        shaped = {k: v.reshape(self.channels, 1, 1).astype(np.float64) for k, v in out.items()}
        shaped["count"] = np.array([self.frames], dtype=np.int64)
        return shaped


class VectorStats:
    """Per-dimension statistics of a ``(T, D)`` feature, in two passes over the data.

    Call :meth:`observe_range` on every chunk first, then :meth:`update` on every chunk, then
    :meth:`result`.
    """

    def __init__(self, dim: int, num_bins: int = 2048) -> None:
        if dim <= 0 or num_bins <= 1:
            raise ValueError(f"dim must be positive and num_bins > 1, got {dim}, {num_bins}")
        self.dim = dim
        self.num_bins = num_bins
        self.lo = np.full(dim, np.inf)
        self.hi = np.full(dim, -np.inf)
        self.count = 0
        self.mean = np.zeros(dim)
        self.m2 = np.zeros(dim)
        self.hist: np.ndarray | None = None

    def observe_range(self, values: np.ndarray) -> None:
        """First pass: widen the per-dimension range with ``values`` (``(T, D)`` or ``(T,)`` when D = 1)."""
        v = self._as_2d(values)
        if v.shape[0] == 0:
            return
        self.lo = np.minimum(self.lo, v.min(axis=0))
        self.hi = np.maximum(self.hi, v.max(axis=0))

    def update(self, values: np.ndarray) -> None:
        """Second pass: accumulate moments and the histogram of ``values`` (``(T, D)``)."""
        v = self._as_2d(values)
        n = v.shape[0]
        if n == 0:
            return
        if not np.all(np.isfinite(self.lo)):
            raise ValueError("observe_range must see the data before update")
        if np.any(v.min(axis=0) < self.lo) or np.any(v.max(axis=0) > self.hi):
            raise ValueError(
                "update got values outside the range seen by observe_range; run both passes on the same data"
            )
        batch_mean = v.mean(axis=0)
        batch_m2 = ((v - batch_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * n / total)
        self.count = total
        if self.hist is None:
            self.hist = np.zeros((self.dim, self.num_bins), dtype=np.int64)
        width = self.hi - self.lo
        safe = np.where(width > 0, width, 1.0)
        bins = np.floor((v - self.lo) / safe * self.num_bins).astype(np.int64)
        np.clip(bins, 0, self.num_bins - 1, out=bins)
        flat = bins + np.arange(self.dim, dtype=np.int64)[None, :] * self.num_bins
        self.hist += np.bincount(flat.ravel(), minlength=self.dim * self.num_bins).reshape(self.dim, self.num_bins)

    def result(self) -> dict[str, np.ndarray]:
        """Statistics as float64 arrays of shape ``(D,)`` (``count``: int64 ``(1,)``)."""
        if self.count == 0 or self.hist is None:
            raise ValueError("no values were added")
        out: dict[str, np.ndarray] = {
            "min": self.lo.copy(),
            "max": self.hi.copy(),
            "mean": self.mean.copy(),
            "std": np.sqrt(self.m2 / self.count),
        }
        cdf = np.cumsum(self.hist, axis=1) / self.count  # (D, B)
        width = self.hi - self.lo
        for key, q in zip(QUANTILE_KEYS, QUANTILES, strict=True):
            vals = np.empty(self.dim)
            for d in range(self.dim):
                if width[d] == 0:
                    vals[d] = self.lo[d]
                    continue
                b = int(np.searchsorted(cdf[d], q, side="left"))
                b = min(b, self.num_bins - 1)
                below = cdf[d, b - 1] if b > 0 else 0.0
                inside = cdf[d, b] - below
                frac = (q - below) / inside if inside > 0 else 0.0
                vals[d] = self.lo[d] + (b + frac) * width[d] / self.num_bins
            out[key] = np.clip(vals, self.lo, self.hi)
        out["count"] = np.array([self.count], dtype=np.int64)
        return out

    def _as_2d(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1:
            v = v[:, None]
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"expected (T, {self.dim}) values, got shape {np.shape(values)}")
        return v


def exact_vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Exact statistics of one in-memory ``(T, D)`` array (used for the per-episode rows).

    Returns:
        float64 ``(D,)`` arrays for min, max, mean, std and the quantiles (numpy's default linear
        interpolation), and int64 ``(1,)`` ``count``.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    out = {
        "min": v.min(axis=0),
        "max": v.max(axis=0),
        "mean": v.mean(axis=0),
        "std": v.std(axis=0),
    }
    qs = np.quantile(v, QUANTILES, axis=0)
    for i, key in enumerate(QUANTILE_KEYS):
        out[key] = qs[i]
    out["count"] = np.array([v.shape[0]], dtype=np.int64)
    return out


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """Turn ``{feature: {stat: array}}`` into nested lists for ``meta/stats.json``."""
    return {feat: {k: np.asarray(v).tolist() for k, v in entry.items()} for feat, entry in stats.items()}
