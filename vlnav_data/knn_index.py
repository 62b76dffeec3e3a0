"""A FAISS nearest-neighbour index over embeddings, its action table, and the on-disk convention.

Vectors are L2-normalised and searched by exact inner product (``IndexFlatIP``), i.e. cosine
similarity. Above :data:`DEFAULT_IVF_THRESHOLD` vectors the index is ``IVF{nlist},Flat`` with
inner-product metric (``nlist = round(sqrt(N))``, k-means trained on a seeded sample, ``nprobe``
lists searched), which trades exactness for speed. With CUDA and a FAISS build that has GPU support
(``faiss-gpu``), search runs on the GPU named by the device (``cuda`` = GPU 0, ``cuda:N`` = GPU N);
FAISS's GPU indexes answer at most :data:`GPU_MAX_K` neighbours per query, so a larger ``k`` searches
the CPU copy instead, with a one-line :class:`~vlnav_data.errors.VlnavWarning`. The saved index is
always a CPU index.

Files (ARCHITECTURE.md, "Files shared between packages"), all in one directory:

- ``knn.faiss``: the index (``faiss.write_index``);
- ``knn_actions.npy``: float32 ``(M, 2)``, the expert action of indexed row ``m``;
- ``knn_meta.json``: ``encoder``, ``features``, ``k``, ``metric``, ``dim``, ``num_vectors``,
  ``index_type``, ``dataset`` (plus ``l2_normalized`` and ``nprobe``).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import CheckpointError, ConfigError, VlnavWarning
from vlnav_data.jsonio import write_json_atomic
from vlnav_data.vectors import l2_normalize

INDEX_FILE = "knn.faiss"
ACTIONS_FILE = "knn_actions.npy"
META_FILE = "knn_meta.json"
#: Above this many vectors the index is IVF (approximate) instead of exact flat search.
DEFAULT_IVF_THRESHOLD = 1_000_000
#: Inverted lists searched per query by an IVF index.
DEFAULT_NPROBE = 32
METRIC = "inner_product"
#: Most neighbours a FAISS GPU index returns per query (faiss/gpu/utils/DeviceDefs.cuh: GPU_MAX_SELECTION_K).
GPU_MAX_K = 2048
META_KEYS = ("encoder", "features", "k", "metric", "dim", "num_vectors", "index_type", "dataset")


def gpu_faiss_available() -> bool:
    """True when this FAISS build has GPU support and sees at least one GPU."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def build_index(
    vectors: np.ndarray,
    *,
    ivf_threshold: int = DEFAULT_IVF_THRESHOLD,
    nprobe: int = DEFAULT_NPROBE,
    seed: int = 0,
) -> tuple[Any, str]:
    """Build a CPU inner-product index over L2-normalised ``vectors``.

    Args:
        vectors: float ``(M, E)``; normalised here (a copy), so cosine similarity = inner product.
        ivf_threshold: use ``IVF{nlist},Flat`` when ``M > ivf_threshold``; exact ``IndexFlatIP`` otherwise.
        nprobe: lists searched per query by an IVF index.
        seed: seeds the k-means training sample and FAISS's k-means.

    Returns:
        ``(index, index_type)`` with ``index_type`` ``"flat_ip"`` or ``"ivf{nlist}_flat_ip"``.
    """
    import faiss

    x = np.ascontiguousarray(l2_normalize(vectors))
    if x.ndim != 2 or len(x) == 0:
        raise ConfigError(f"a kNN index needs a non-empty (M, E) array of vectors, got shape {x.shape}")
    m, dim = x.shape
    if m <= ivf_threshold:
        index = faiss.IndexFlatIP(dim)
        index.add(x)
        return index, "flat_ip"
    nlist = max(1, round(math.sqrt(m)))
    index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(m, size=min(m, 64 * nlist), replace=False))]
    index.train(sample)
    index.add(x)
    ivf.nprobe = min(nprobe, nlist)
    return index, f"ivf{nlist}_flat_ip"


def gpu_device_index(device: str) -> int | None:
    """``cuda`` -> 0, ``cuda:N`` -> N, anything else -> None (search on the CPU)."""
    kind, _, number = device.partition(":")
    if kind != "cuda":
        return None
    return int(number) if number else 0


def to_search_device(index: Any, device: str) -> Any:
    """Copy ``index`` to the GPU ``device`` names (``cuda`` = GPU 0, ``cuda:N``); return it unchanged for CPU.

    Raises:
        ConfigError: a GPU asked for but this FAISS build has no GPU support, or ``cuda:N`` beyond the
            GPUs FAISS sees.
    """
    gpu = gpu_device_index(device)
    if gpu is None:
        return index
    import faiss

    if not gpu_faiss_available():
        raise ConfigError(
            f"--device {device} asks for GPU FAISS, but the installed faiss has no GPU support or sees no GPU; "
            "install faiss-gpu (conda -c pytorch faiss-gpu) or use --device cpu."
        )
    if gpu >= faiss.get_num_gpus():
        raise ConfigError(f"--device {device}: FAISS sees {faiss.get_num_gpus()} GPU(s) (cuda:0..).")
    res = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(res, gpu, index)
    gpu_index.referenced_resources = res  # keep the resources alive as long as the index
    return gpu_index


def is_gpu_index(index: Any) -> bool:
    """True for an index that lives on a GPU (``faiss.GpuIndex*``)."""
    return type(index).__name__.startswith("Gpu")


def search(index: Any, queries: np.ndarray, k: int, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` neighbours of L2-normalised ``queries``.

    Args:
        index: a FAISS index built by :func:`build_index`.
        queries: float ``(Q, E)``; normalised here.
        k: neighbours per query (at most the number of indexed vectors).

    Returns:
        ``(similarities, ids)``: float32 ``(Q, k)`` cosine similarities, descending, and int64 ``(Q, k)``.
    """
    if k < 1 or k > index.ntotal:
        raise ConfigError(f"k must be in 1..{index.ntotal} (the number of indexed vectors), got {k}")
    q = np.ascontiguousarray(l2_normalize(queries))
    if q.ndim != 2 or q.shape[1] != index.d:
        raise ConfigError(f"queries must be (Q, {index.d}) to match the index, got shape {q.shape}")
    if k > GPU_MAX_K and is_gpu_index(index):
        import faiss

        warnings.warn(
            f"k={k} exceeds the {GPU_MAX_K} neighbours a FAISS GPU index returns; searching the CPU copy instead",
            VlnavWarning,
            stacklevel=2,
        )
        index = faiss.index_gpu_to_cpu(index)
    sims = np.empty((len(q), k), dtype=np.float32)
    ids = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), batch_size):
        s, i = index.search(q[start : start + batch_size], k)
        sims[start : start + batch_size], ids[start : start + batch_size] = s, i
    return sims, ids


def predict_actions(
    actions: np.ndarray, ids: np.ndarray, similarities: np.ndarray, weighting: str = "uniform"
) -> np.ndarray:
    """Average the neighbours' actions.

    Args:
        actions: float ``(M, A)`` action of each indexed row.
        ids: int ``(Q, k)`` neighbour rows (``-1`` = no neighbour, from an IVF index; ignored).
        similarities: float ``(Q, k)`` cosine similarities.
        weighting: ``uniform`` (plain mean) or ``similarity`` (weights ``max(sim, 0)``; uniform when all 0).

    Returns:
        float32 ``(Q, A)``.
    """
    if weighting not in ("uniform", "similarity"):
        raise ConfigError(f"weighting must be 'uniform' or 'similarity', got '{weighting}'")
    valid = ids >= 0
    w = valid.astype(np.float64)
    if weighting == "similarity":
        sw = np.clip(similarities, 0.0, None) * valid
        w = np.where(sw.sum(axis=1, keepdims=True) > 0, sw, w)
    w_sum = w.sum(axis=1, keepdims=True)
    if np.any(w_sum == 0):
        raise ConfigError("some queries found no neighbour at all (an IVF index with too small nprobe); raise nprobe")
    gathered = np.asarray(actions, np.float64)[np.where(valid, ids, 0)]  # (Q, k, A)
    return (np.einsum("qk,qka->qa", w, gathered) / w_sum).astype(np.float32)


@dataclass(frozen=True)
class KnnIndex:
    """A loaded kNN index: the FAISS index, its action table and its metadata.

    Attributes:
        index: the FAISS index (CPU unless moved with :func:`to_search_device`).
        actions: float32 ``(M, 2)``, row ``m`` = action of indexed vector ``m``.
        meta: the ``knn_meta.json`` contents.
    """

    index: Any
    actions: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def search(self, queries: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (default: the saved ``k``) neighbours; see :func:`search`."""
        return search(self.index, queries, int(k if k is not None else self.meta["k"]))

    def predict(self, queries: np.ndarray, k: int | None = None, weighting: str = "uniform") -> np.ndarray:
        """Neighbour-averaged actions float32 ``(Q, 2)`` for float ``(Q, E)`` queries."""
        sims, ids = self.search(queries, k)
        return predict_actions(self.actions, ids, sims, weighting)


def save_knn_index(out_dir: Path, index: Any, actions: np.ndarray, meta: dict[str, Any]) -> list[Path]:
    """Write ``knn.faiss``, ``knn_actions.npy`` and ``knn_meta.json`` into ``out_dir``.

    Args:
        index: a CPU or GPU FAISS index (a GPU index is copied to CPU first).
        actions: float ``(M, 2)`` with ``M == index.ntotal``.
        meta: must contain every key of :data:`META_KEYS`.

    Returns:
        The three paths written.
    """
    import faiss

    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ConfigError(f"kNN metadata lacks {', '.join(missing)}; expected keys {', '.join(META_KEYS)}")
    actions = np.asarray(actions, dtype=np.float32)
    if actions.ndim != 2 or len(actions) != index.ntotal:
        raise ConfigError(f"actions must be (M, A) with M = {index.ntotal} indexed vectors, got {actions.shape}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if is_gpu_index(index):
        index = faiss.index_gpu_to_cpu(index)
    paths = [out_dir / INDEX_FILE, out_dir / ACTIONS_FILE, out_dir / META_FILE]
    faiss.write_index(index, str(paths[0]))
    np.save(paths[1], actions)
    write_json_atomic(paths[2], meta)
    return paths


def load_knn_index(directory: Path | str) -> KnnIndex:
    """Load what :func:`save_knn_index` (``vlnav-probe knn``) wrote.

    Raises:
        CheckpointError: a file is missing, unreadable, or the three disagree (sizes, dimension).
    """
    import faiss

    directory = Path(directory)
    paths = [directory / INDEX_FILE, directory / ACTIONS_FILE, directory / META_FILE]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise CheckpointError(
            f"'{directory}' is not a kNN index directory: missing {', '.join(missing)}; expected "
            f"{INDEX_FILE}, {ACTIONS_FILE} and {META_FILE} as written by `vlnav-probe knn FILE --out DIR`."
        )
    try:
        meta = json.loads(paths[2].read_text())
        index = faiss.read_index(str(paths[0]))
        actions = np.load(paths[1])
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read the kNN index in '{directory}': {exc}") from exc
    problems = []
    if actions.ndim != 2 or len(actions) != index.ntotal:
        problems.append(f"{ACTIONS_FILE} has shape {actions.shape} but the index holds {index.ntotal} vectors")
    if meta.get("num_vectors") != index.ntotal:
        problems.append(f"{META_FILE} says num_vectors={meta.get('num_vectors')}, index holds {index.ntotal}")
    if meta.get("dim") != index.d:
        problems.append(f"{META_FILE} says dim={meta.get('dim')}, index has dimension {index.d}")
    if problems:
        raise CheckpointError(f"inconsistent kNN index in '{directory}': {'; '.join(problems)}; rebuild it.")
    if meta.get("nprobe") and "ivf" in str(meta.get("index_type", "")):
        faiss.extract_index_ivf(index).nprobe = int(meta["nprobe"])
    return KnnIndex(index=index, actions=actions.astype(np.float32, copy=False), meta=meta)
