"""Per-episode seeds and train/valid assignment: pure functions of (build seed, episode index).

Because neither depends on how many episodes a build has or which shard runs them, shard ``i`` of ``n``
builds exactly the episodes an unsharded build would, and a merge of the shards reproduces its masks.
"""

from __future__ import annotations

import numpy as np

_SPLIT_STREAM = 0x5B1
_SEED_STREAM = 0x5EED


def episode_seed(build_seed: int, episode_index: int) -> int:
    """The seed of one episode, derived from the build seed and the episode index alone.

    Args:
        build_seed: non-negative build seed (``--seed``).
        episode_index: global index of the episode in the build (0-based).

    Returns:
        A non-negative integer below 2**63 (fits an HDF5 int64 attribute).
    """
    _check(build_seed, episode_index)
    words = np.random.SeedSequence([build_seed, episode_index, _SEED_STREAM]).generate_state(2, np.uint32)
    return int((int(words[0]) << 32 | int(words[1])) & (2**63 - 1))


def episode_split(build_seed: int, episode_index: int, valid_fraction: float) -> str:
    """``"valid"`` for about ``valid_fraction`` of episodes, else ``"train"``; deterministic per episode.

    Args:
        build_seed: non-negative build seed.
        episode_index: global index of the episode in the build.
        valid_fraction: probability in [0, 1) that an episode goes to the validation split.
    """
    _check(build_seed, episode_index)
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    u = np.random.default_rng(np.random.SeedSequence([build_seed, episode_index, _SPLIT_STREAM])).random()
    return "valid" if u < valid_fraction else "train"


def shard_indices(num_episodes: int, shard_index: int, num_shards: int) -> list[int]:
    """Global episode indices built by shard ``shard_index`` of ``num_shards`` (strided: i, i+n, ...).

    The shards of one build are disjoint and together cover ``range(num_episodes)``.
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard must satisfy 0 <= index < count, got {shard_index}/{num_shards}")
    return list(range(shard_index, num_episodes, num_shards))


def _check(build_seed: int, episode_index: int) -> None:
    if build_seed < 0:
        raise ValueError(f"build seed must be >= 0, got {build_seed}")
    if episode_index < 0:
        raise ValueError(f"episode index must be >= 0, got {episode_index}")
