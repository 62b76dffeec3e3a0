"""`vlnav-probe knn`: nearest-neighbour action regression, and the saved index the kNN policy loads.

A FAISS index over the train embeddings (cosine similarity = inner product on L2-normalised vectors;
see :mod:`vlnav_data.knn_index`) predicts each valid row's action as the mean action of its
``k`` nearest train rows. Scored by R² and MSE against the train-mean baseline, pooled and per action
dimension (any number of them: an imported file's actions are named in its ``features_json``). The index, its
action table and metadata are saved in ``--out`` as ``knn.faiss``, ``knn_actions.npy`` and
``knn_meta.json`` (the convention in ARCHITECTURE.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, SchemaError, check_at_least
from vlnav_data.figures import subplots
from vlnav_data.jsonio import fields_of
from vlnav_data.knn_index import (
    DEFAULT_IVF_THRESHOLD,
    DEFAULT_NPROBE,
    METRIC,
    build_index,
    gpu_faiss_available,
    predict_actions,
    save_knn_index,
    search,
    to_search_device,
)
from vlnav_data.probes.linear import check_common
from vlnav_data.probes.report import markdown_table, save_figure, write_report
from vlnav_data.probes.ridge import r2_per_column, r2_score, r2_undefined
from vlnav_data.probes.rows import load_probe_data


@dataclass(frozen=True, kw_only=True)
class KnnProbeConfig:
    """Configuration of ``vlnav-probe knn``.

    Attributes:
        path: the dataset file.
        out_dir: where the index files, result.json, report.md and figures go.
        encoder: encoder whose embeddings are indexed; ``None``: the file's only encoder.
        features: ``joint``, ``image`` or ``text``.
        k: neighbours averaged per query (saved in knn_meta.json for the kNN policy).
        weighting: ``uniform`` mean or ``similarity``-weighted mean of the neighbours' actions.
        ivf_threshold: above this many train vectors build ``IVF{sqrt(N)},Flat`` (approximate) instead of
            exact ``IndexFlatIP``.
        nprobe: inverted lists searched per query by an IVF index.
        seed: seeds the IVF k-means sample.
        device: ``auto`` (GPU FAISS when CUDA and faiss-gpu are present), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    path: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    k: int = 8
    weighting: str = "uniform"
    ivf_threshold: int = DEFAULT_IVF_THRESHOLD
    nprobe: int = DEFAULT_NPROBE
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_common(self.path, self.out_dir, self.features, self.seed)
        check_at_least("--k", self.k, 1)
        if self.weighting not in ("uniform", "similarity"):
            raise ConfigError(f"--weighting must be uniform or similarity, got '{self.weighting}'")
        if self.ivf_threshold < 1 or self.nprobe < 1:
            raise ConfigError(f"ivf_threshold and nprobe must be >= 1, got {self.ivf_threshold}, {self.nprobe}")
        check_device_name(self.device, "--device")


@dataclass(frozen=True, kw_only=True)
class KnnProbeResult:
    """What ``vlnav-probe knn`` found (written as result.json).

    Attributes:
        r2, mse: valid-split scores of the kNN action prediction.
        baseline_r2, baseline_mse: the train-mean action predicted for every valid row.
        action_names: one name per action dimension; r2_per_dimension, mse_per_dimension,
            baseline_r2_per_dimension: the same scores per dimension (R² None for a dimension constant on
            the valid split: undefined, never NaN).
        r2_by_k: R² for k = 1, 2, 4, ... up to ``k`` (same index), to show the trend.
        self_match_rate: share of sampled train rows whose nearest neighbour is themselves (sanity; 1.0
            unless the train set holds exact duplicates).
        index_type, num_vectors, dim, search_device: the index built.
        files: the three index files plus report and figures.
    """

    dataset: str
    encoder: str
    features: str
    k: int
    r2: float
    mse: float
    baseline_r2: float
    baseline_mse: float
    r2_by_k: dict[int, float]
    self_match_rate: float
    index_type: str
    num_vectors: int
    dim: int
    num_valid: int
    search_device: str
    build_s: float
    search_s: float
    files: list[Path]
    report: Path
    elapsed_s: float
    config: dict[str, Any] = field(default_factory=dict)
    action_names: list[str] = field(default_factory=list)
    r2_per_dimension: list[float | None] = field(default_factory=list)
    mse_per_dimension: list[float] = field(default_factory=list)
    baseline_r2_per_dimension: list[float | None] = field(default_factory=list)


def run_knn_probe(config: KnnProbeConfig) -> KnnProbeResult:
    """Index the train embeddings, regress valid actions from neighbours, save the index.

    Raises:
        ConfigError: an encoder the file lacks, ``k`` above the train size, cuda without GPU FAISS.
        SchemaError: an empty split or an episode in both splits.
    """
    t0 = time.perf_counter()
    data = load_probe_data(config.path, encoder=config.encoder, features=config.features)
    train, valid = data.train, data.valid
    if config.k > len(train):
        raise ConfigError(f"--k {config.k} exceeds the {len(train)} train rows of '{config.path}'; use a smaller k")
    why = r2_undefined(valid.actions)
    if why:
        raise SchemaError(
            f"the kNN probe scores the valid split's actions, and {why} in '{config.path}'; build a dataset with "
            "more valid episodes (--valid-fraction)"
        )
    device = config.device
    if device == "auto":  # GPU FAISS when this build has it; a GPU torch alone does not make FAISS search there
        device = "cuda" if gpu_faiss_available() else "cpu"
    tb = time.perf_counter()
    cpu_index, index_type = build_index(
        train.features, ivf_threshold=config.ivf_threshold, nprobe=config.nprobe, seed=config.seed
    )
    index = to_search_device(cpu_index, device)
    build_s = time.perf_counter() - tb
    ts = time.perf_counter()
    sims, ids = search(index, valid.features, config.k)
    search_s = time.perf_counter() - ts
    pred = predict_actions(train.actions, ids, sims, config.weighting)
    mean = train.actions.mean(axis=0, dtype=np.float64)
    yva = valid.actions.astype(np.float64)
    r2_by_k = {}
    kk = 1
    while kk <= config.k:
        r2_by_k[kk] = r2_score(yva, predict_actions(train.actions, ids[:, :kk], sims[:, :kk], config.weighting))
        kk *= 2
    r2_by_k[config.k] = r2_score(yva, pred)
    rng = np.random.default_rng(config.seed)
    probe_rows = rng.choice(len(train), size=min(len(train), 1000), replace=False)
    _, self_ids = search(index, train.features[probe_rows], 1)
    self_match = float(np.mean(self_ids[:, 0] == probe_rows))
    out = Path(config.out_dir)
    meta = {
        "encoder": data.encoder,
        "features": data.features,
        "k": config.k,
        "metric": METRIC,
        "dim": int(train.features.shape[1]),
        "num_vectors": len(train),
        "index_type": index_type,
        "dataset": str(config.path),
        "l2_normalized": True,
        "nprobe": config.nprobe if index_type != "flat_ip" else None,
        "weighting": config.weighting,
    }
    files = save_knn_index(out, index, train.actions, meta)
    figure = _plot_predictions(yva, pred, out / "knn_actions.png", data.action_names)
    mean_rows = np.broadcast_to(mean, yva.shape)
    result = KnnProbeResult(
        dataset=str(config.path),
        encoder=data.encoder,
        features=data.features,
        k=config.k,
        r2=r2_score(yva, pred),
        mse=float(np.mean((pred - yva) ** 2)),
        baseline_r2=r2_score(yva, np.broadcast_to(mean, yva.shape)),
        baseline_mse=float(np.mean((mean - yva) ** 2)),
        r2_by_k=r2_by_k,
        self_match_rate=self_match,
        index_type=index_type,
        num_vectors=len(train),
        dim=int(train.features.shape[1]),
        num_valid=len(valid),
        search_device=device,
        build_s=build_s,
        search_s=search_s,
        files=[*files, figure],
        report=out / "report.md",
        elapsed_s=0.0,
        config=fields_of(config),
        action_names=list(data.action_names),
        r2_per_dimension=r2_per_column(yva, pred),
        mse_per_dimension=[float(v) for v in np.mean((pred - yva) ** 2, axis=0)],
        baseline_r2_per_dimension=r2_per_column(yva, mean_rows),
    )
    _write_knn_report(out, result, figure)
    return _with_elapsed(result, time.perf_counter() - t0)


def _with_elapsed(result: KnnProbeResult, elapsed: float) -> KnnProbeResult:
    import dataclasses

    return dataclasses.replace(result, elapsed_s=elapsed)


def _plot_predictions(true: np.ndarray, pred: np.ndarray, path: Path, names: list[str]) -> Path:
    """One scatter per action dimension (the arena's two wheels, or an imported file's named columns)."""
    arena = list(names) == ["left_wheel", "right_wheel"]
    labels = ("left wheel", "right wheel") if arena else tuple(names) or ("action",)
    fig, axes = subplots(1, len(labels), figsize=(4 * len(labels), 4), squeeze=False)
    for j, (ax, name) in enumerate(zip(axes[0], labels, strict=True)):
        ax.scatter(true[:, j], pred[:, j], s=3, alpha=0.4)
        lo, hi = (-1.0, 1.0) if arena else (float(min(true[:, j].min(), pred[:, j].min())), float(true[:, j].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"expert action, {name}" if arena else f"demonstrated action, {name}")
        ax.set_ylabel("kNN prediction")
    fig.suptitle("kNN action regression (valid split)")
    return save_figure(fig, path)


def _write_knn_report(out: Path, r: KnnProbeResult, figure: Path) -> Path:
    table = markdown_table(
        ["predictor", "R²", "MSE"],
        [
            [f"kNN, k={r.k} ({r.config['weighting']})", r.r2, r.mse],
            ["train-mean action", r.baseline_r2, r.baseline_mse],
        ],
        digits=4,
    )
    by_k = markdown_table(["k", *r.r2_by_k], [["R²", *r.r2_by_k.values()]])
    per_dim = markdown_table(
        ["dimension", "kNN R²", "kNN MSE", "train-mean R²"],
        [
            [n, a, m, b]
            for n, a, m, b in zip(
                r.action_names, r.r2_per_dimension, r.mse_per_dimension, r.baseline_r2_per_dimension, strict=True
            )
        ],
        digits=4,
    )
    sections = [
        f"Dataset `{r.dataset}`, encoder `{r.encoder}` ({r.features} features, dim {r.dim}). Index "
        f"`{r.index_type}` over {r.num_vectors} train rows (L2-normalised, inner product = cosine), searched "
        f"on {r.search_device}; {r.num_valid} valid rows from other episodes queried.",
        table,
        per_dim,
        by_k,
        f"Sanity: {100 * r.self_match_rate:.1f}% of sampled train rows find themselves as nearest neighbour. "
        f"Index build {r.build_s:.2f} s, valid search {r.search_s:.2f} s.",
        "Files for the kNN policy (`vlnav-policy eval --policy knn`): `knn.faiss`, `knn_actions.npy`, `knn_meta.json`.",
        f"![{figure.stem}]({figure.name})",
    ]
    return write_report(out, "Nearest-neighbour actions", sections)
