"""A nearest-neighbour policy from the FAISS index files ``vlnav-probe knn`` writes.

Files (ARCHITECTURE.md, "Files shared between packages"): ``knn.faiss``, ``knn_actions.npy`` (float32
``(M, 2)``, the expert action of indexed row m) and ``knn_meta.json`` (``encoder``, ``features``, ``k``,
``metric``, ``dim``, ...). The action is the mean action of the k nearest training rows. FAISS is
imported when an index is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import CheckpointError

INDEX_FILE = "knn.faiss"
ACTIONS_FILE = "knn_actions.npy"
META_FILE = "knn_meta.json"


@dataclass
class KnnPolicy:
    """Mean expert action of the k nearest indexed embeddings.

    Attributes:
        index: a FAISS index over M vectors of width ``dim``.
        actions: float32 (M, 2).
        k: neighbours averaged.
        normalize: L2-normalise queries (the index holds normalised vectors, inner-product metric).
        meta: the index's ``knn_meta.json``.
    """

    index: Any
    actions: np.ndarray
    k: int
    normalize: bool
    meta: dict[str, Any]

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Actions for float32 (N, E) queries -> float32 (N, 2)."""
        q = np.ascontiguousarray(features, dtype=np.float32)
        if self.normalize:
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        _, idx = self.index.search(q, self.k)
        return self.actions[idx].mean(axis=1).astype(np.float32)


def load_knn_policy(index_dir: Path, k: int | None = None) -> KnnPolicy:
    """Load the three files of a kNN index directory.

    Args:
        index_dir: directory written by ``vlnav-probe knn``.
        k: neighbours to average (default: the ``k`` in ``knn_meta.json``).

    Raises:
        CheckpointError: a file is missing or the files disagree with each other.
    """
    index_dir = Path(index_dir)
    for name in (INDEX_FILE, ACTIONS_FILE, META_FILE):
        if not (index_dir / name).is_file():
            raise CheckpointError(
                f"kNN index directory '{index_dir}' has no {name}; expected {INDEX_FILE}, {ACTIONS_FILE} and "
                f"{META_FILE} written by `vlnav-probe knn FILE --out {index_dir}`"
            )
    try:
        meta = json.loads((index_dir / META_FILE).read_text())
    except ValueError as exc:
        raise CheckpointError(f"'{index_dir / META_FILE}' is not valid JSON ({exc})") from exc
    import faiss

    index = faiss.read_index(str(index_dir / INDEX_FILE))
    actions = np.load(index_dir / ACTIONS_FILE).astype(np.float32)
    if actions.ndim != 2 or actions.shape[0] != index.ntotal:
        raise CheckpointError(
            f"'{index_dir}': {ACTIONS_FILE} has shape {actions.shape} but the index holds {index.ntotal} vectors; "
            "rebuild the index with `vlnav-probe knn`"
        )
    k = int(k if k is not None else meta.get("k", 8))
    if not 1 <= k <= index.ntotal:
        raise CheckpointError(f"k must be in [1, {index.ntotal}] for '{index_dir}', got {k}")
    normalize = bool(meta.get("l2_normalized", True)) and str(meta.get("metric", "inner_product")) != "l2"
    return KnnPolicy(index=index, actions=actions, k=k, normalize=normalize, meta=meta)
