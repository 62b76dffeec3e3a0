"""An LRU cache of text embeddings keyed by the exact string (an episode has few distinct instructions)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from vlnav_data.errors import ConfigError


class TextEmbeddingCache:
    """Least-recently-used map ``str -> float32 (E,)``.

    Args:
        capacity: most strings kept; 0 disables caching.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ConfigError(f"text cache capacity must be >= 0; received {capacity}.")
        self.capacity = capacity
        self._store: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Forget every entry and reset the counters."""
        self._store.clear()
        self.hits = 0
        self.misses = 0

    def lookup(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray], dim: int) -> np.ndarray:
        """Return embeddings for ``texts``, computing only the distinct strings not cached.

        Args:
            texts: ``B`` strings.
            compute: embeds a list of distinct strings -> float32 ``(M, E)``.
            dim: ``E``, used for the empty batch.

        Returns:
            float32 ``(B, E)``, a fresh array (callers may modify it).
        """
        missing = list(dict.fromkeys(t for t in texts if t not in self._store))
        computed: dict[str, np.ndarray] = {}
        if missing:
            rows = compute(missing)
            computed = {t: rows[i] for i, t in enumerate(missing)}
        self.misses += len(missing)
        self.hits += len(texts) - sum(1 for t in texts if t in computed)
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if t in computed:
                out[i] = computed[t]
            else:
                out[i] = self._store[t]
                self._store.move_to_end(t)
        if self.capacity:
            for t, row in computed.items():
                self._store[t] = np.array(row, dtype=np.float32)
                self._store.move_to_end(t)
            while len(self._store) > self.capacity:
                self._store.popitem(last=False)
        return out
