"""Cosine distances and the published same-cell vs different-cell pair test (reference spec §5).

The published test (``embeddings/test_data.ipynb``) drew 400,000 random image pairs and, for every
colour present in both images, compared the cosine distance between that colour's joint embeddings
for pairs where the ball sat in the same 3×3 image-grid cell against pairs where it did not. Our
frames have one target colour each, so a pair counts when both frames have the same target colour;
"cell" is a coarse cell of the target's robot-frame bearing and distance (see
:func:`vlnav_data.probes.labels.coarse_cell`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlnav_data.vectors import l2_normalize

#: The published numbers (spec §5): (n, mean, std) of cosine distance, SigLIP so400m joint embeddings.
PUBLISHED_SIGLIP = {"same_cell": (51_465, 0.0245, 0.0118), "different_cell": (97_191, 0.0310, 0.0145)}


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine distance ``1 - cos(a_i, b_i)``, clipped to its range ``[0, 2]``.

    Args:
        a, b: float ``(N, E)`` (or ``(E,)``) arrays; need not be normalised. Zero rows give distance 1.

    Returns:
        float64 ``(N,)`` (or a scalar array for 1-D inputs).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    denom = np.where((na > 0) & (nb > 0), na * nb, 1.0)
    cos = np.sum(a * b, axis=-1) / denom
    return np.clip(1.0 - cos, 0.0, 2.0)


@dataclass(frozen=True, kw_only=True)
class GroupStats:
    """Count, mean and standard deviation of cosine distances in one group of pairs."""

    n: int
    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray) -> GroupStats:
        values = np.asarray(values, dtype=np.float64)
        if len(values) == 0:
            return cls(n=0, mean=float("nan"), std=float("nan"))
        return cls(n=len(values), mean=float(values.mean()), std=float(values.std()))


@dataclass(frozen=True, kw_only=True)
class PairTestResult:
    """Same-cell vs different-cell cosine distances, overall and per colour.

    Attributes:
        same_cell, different_cell: statistics over all evaluated pairs.
        gap: ``different_cell.mean - same_cell.mean`` (published SigLIP: 0.0065).
        cohens_d: the gap over the pooled standard deviation.
        per_colour: colour -> {"same_cell": GroupStats, "different_cell": GroupStats}.
        pairs_drawn: pairs sampled; pairs_evaluated: pairs with the same colour (and different episodes).
    """

    same_cell: GroupStats
    different_cell: GroupStats
    gap: float
    cohens_d: float
    per_colour: dict[str, dict[str, GroupStats]]
    pairs_drawn: int
    pairs_evaluated: int


def pair_test(
    embeddings: np.ndarray,
    colours: np.ndarray,
    cells: np.ndarray,
    episodes: np.ndarray,
    *,
    num_pairs: int,
    seed: int,
    exclude_same_episode: bool = True,
    chunk: int = 65_536,
) -> tuple[PairTestResult, dict[str, np.ndarray]]:
    """The published pair protocol on our frames.

    Args:
        embeddings: float ``(N, E)`` one embedding per frame.
        colours: ``(N,)`` the frame's target colour (pairs with different colours are skipped).
        cells: int ``(N,)`` coarse position cell of the target.
        episodes: int ``(N,)`` episode id; pairs within one episode are skipped when
            ``exclude_same_episode`` (neighbouring frames are near-duplicates).
        num_pairs: random pairs drawn (with replacement, ``i != j``).
        seed: seeds the pair draw.

    Returns:
        ``(result, distances)`` where ``distances`` holds the ``same_cell`` and ``different_cell``
        float64 arrays (for histograms).
    """
    emb = l2_normalize(embeddings)
    colours = np.asarray(colours)
    cells = np.asarray(cells)
    episodes = np.asarray(episodes)
    n = len(emb)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=num_pairs)
    j = rng.integers(0, n, size=num_pairs)
    keep = (i != j) & (colours[i] == colours[j])
    if exclude_same_episode:
        keep &= episodes[i] != episodes[j]
    i, j = i[keep], j[keep]
    dist = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), chunk):
        sl = slice(start, start + chunk)
        dist[sl] = cosine_distance(emb[i[sl]], emb[j[sl]])
    same = cells[i] == cells[j]
    per_colour = {}
    for colour in np.unique(colours[i]) if len(i) else []:
        m = colours[i] == colour
        per_colour[str(colour)] = {
            "same_cell": GroupStats.of(dist[m & same]),
            "different_cell": GroupStats.of(dist[m & ~same]),
        }
    s, d = GroupStats.of(dist[same]), GroupStats.of(dist[~same])
    pooled = np.sqrt((s.std**2 + d.std**2) / 2.0) if s.n and d.n else float("nan")
    gap = d.mean - s.mean
    result = PairTestResult(
        same_cell=s,
        different_cell=d,
        gap=float(gap),
        cohens_d=float(gap / pooled) if pooled and np.isfinite(pooled) and pooled > 0 else float("nan"),
        per_colour=per_colour,
        pairs_drawn=int(num_pairs),
        pairs_evaluated=len(i),
    )
    return result, {"same_cell": dist[same], "different_cell": dist[~same]}
