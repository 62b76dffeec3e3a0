"""A nearest-neighbour policy from the FAISS index files ``vlnav-probe knn`` writes.

The policy is the probe's predictor, not a copy of it: it loads the directory with
:func:`vlnav_data.knn_index.load_knn_index` and acts with :meth:`~vlnav_data.knn_index.KnnIndex.predict`,
using the ``k`` and the ``weighting`` the probe recorded in ``knn_meta.json`` (``k`` may be overridden).
So for the same embedding the policy's action equals the probe's prediction, including the handling of
FAISS's ``-1`` ids (missing neighbours of an IVF index are ignored, never indexed as ``actions[-1]``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import CheckpointError
from vlnav_data.knn_index import KnnIndex, load_knn_index

WEIGHTINGS = ("uniform", "similarity")


@dataclass
class KnnPolicy:
    """Neighbour-averaged expert action of the k nearest indexed embeddings.

    Attributes:
        index: the loaded index, its action table and metadata.
        k: neighbours averaged.
        weighting: ``uniform`` or ``similarity`` (as recorded by the probe).
    """

    index: KnnIndex
    k: int
    weighting: str

    @property
    def meta(self) -> dict[str, Any]:
        """The index's ``knn_meta.json``."""
        return self.index.meta

    @property
    def dim(self) -> int:
        """Width of the indexed vectors."""
        return int(self.index.index.d)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Actions for float (N, E) queries -> float32 (N, 2)."""
        return self.index.predict(np.asarray(features, dtype=np.float32), self.k, self.weighting)


def neighbours_used(index_dir: Path, k: int | None) -> int:
    """The ``k`` a kNN policy averages: ``k`` when given, else the one ``knn_meta.json`` records (default 8)."""
    if k is not None:
        return int(k)
    return int(json.loads((Path(index_dir) / "knn_meta.json").read_text()).get("k", 8))


def load_knn_policy(index_dir: Path, k: int | None = None) -> KnnPolicy:
    """Load a ``vlnav-probe knn`` output directory as a policy.

    Args:
        index_dir: directory written by ``vlnav-probe knn``.
        k: neighbours to average (default: the ``k`` in ``knn_meta.json``).

    Raises:
        CheckpointError: a file is missing, unreadable or inconsistent; ``k`` out of range; an unknown
            weighting in the metadata.
    """
    index = load_knn_index(index_dir)
    k = neighbours_used(index_dir, k)
    if not 1 <= k <= index.index.ntotal:
        raise CheckpointError(f"k must be in [1, {index.index.ntotal}] for '{index_dir}', got {k}")
    weighting = str(index.meta.get("weighting", "uniform"))
    if weighting not in WEIGHTINGS:
        raise CheckpointError(
            f"'{Path(index_dir) / 'knn_meta.json'}' records weighting '{weighting}'; expected one of "
            f"{', '.join(WEIGHTINGS)}. Rebuild the index with `vlnav-probe knn`."
        )
    return KnnPolicy(index=index, k=k, weighting=weighting)
