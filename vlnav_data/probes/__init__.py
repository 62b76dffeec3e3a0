"""Probes: what frozen embeddings contain (linear probes, spatial cosine tests, UMAP, FAISS kNN).

```python
from vlnav_data.probes import LinearProbeConfig, run_linear_probe, load_knn_index

result = run_linear_probe(LinearProbeConfig(path=Path("demos.h5"), out_dir=Path("probe/linear")))
knn = load_knn_index("probe/knn")          # knn.faiss + knn_actions.npy + knn_meta.json
actions = knn.predict(embeddings, k=8)     # float32 (Q, 2)
```

Every probe fits on ``/mask/train`` and scores on ``/mask/valid`` (episodes never in both). sklearn,
faiss, umap, matplotlib and torch are imported only inside the functions that use them.
"""

from vlnav_data.dataset.schema import FEATURE_SETS
from vlnav_data.knn_index import KnnIndex, build_index, load_knn_index, save_knn_index
from vlnav_data.probes.embedding_map import UmapConfig, UmapResult, run_umap
from vlnav_data.probes.knn import KnnProbeConfig, KnnProbeResult, run_knn_probe
from vlnav_data.probes.linear import LINEAR_TARGETS, LinearProbeConfig, LinearProbeResult, run_linear_probe
from vlnav_data.probes.rows import ProbeData, ProbeRows, load_probe_data
from vlnav_data.probes.spatial import SpatialProbeConfig, SpatialProbeResult, run_spatial_probe

__all__ = [
    "FEATURE_SETS",
    "LINEAR_TARGETS",
    "KnnIndex",
    "KnnProbeConfig",
    "KnnProbeResult",
    "LinearProbeConfig",
    "LinearProbeResult",
    "ProbeData",
    "ProbeRows",
    "SpatialProbeConfig",
    "SpatialProbeResult",
    "UmapConfig",
    "UmapResult",
    "build_index",
    "load_knn_index",
    "load_probe_data",
    "run_knn_probe",
    "run_linear_probe",
    "run_spatial_probe",
    "run_umap",
    "save_knn_index",
]
