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


SPLIT_RULES: tuple[str, ...] = ("stratified", "coin")
"""How episodes are assigned to ``/mask/valid``: ``stratified`` (default) or ``coin`` (files built before
the stratified rule; kept so they resume with the rule they were started with)."""


def episode_split(build_seed: int, episode_index: int, valid_fraction: float, rule: str = "stratified") -> str:
    """``"valid"`` or ``"train"`` for one episode: a pure function of (build seed, index, fraction, rule).

    ``stratified`` (the default): episode ``i`` is valid when ``floor((i + 1) f + u) - floor(i f + u) = 1``,
    with ``f = valid_fraction`` and an offset ``u`` in [0, 1) drawn from the build seed. The valid
    episodes among the first ``n`` then number ``floor(n f + u)``, i.e. ``floor(n f)`` or ``ceil(n f)``
    for EVERY prefix ``n`` (a Beatty sequence): a 12-episode build with ``f = 0.1`` has one validation
    episode, never zero. It depends on the index alone, so shards and resumed builds agree with an
    unsharded build. Valid episodes are evenly spaced; their episode seeds are independent draws, so
    the spacing carries no information about the episodes themselves.

    ``coin``: an independent coin flip with probability ``f`` per episode (what files built before the
    stratified rule used; a short build may then have no validation episode at all).

    Args:
        build_seed: non-negative build seed.
        episode_index: global index of the episode in the build.
        valid_fraction: share in [0, 1) of episodes in the validation split.
        rule: one of :data:`SPLIT_RULES`.
    """
    _check(build_seed, episode_index)
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    if rule not in SPLIT_RULES:
        raise ValueError(f"split rule must be one of {SPLIT_RULES}, got {rule!r}")
    u = np.random.default_rng(np.random.SeedSequence([build_seed, episode_index, _SPLIT_STREAM])).random()
    if rule == "coin":
        return "valid" if u < valid_fraction else "train"
    offset = np.random.default_rng(np.random.SeedSequence([build_seed, _SPLIT_STREAM])).random()
    crossed = np.floor((episode_index + 1) * valid_fraction + offset) - np.floor(
        episode_index * valid_fraction + offset
    )
    return "valid" if crossed >= 1 else "train"


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
