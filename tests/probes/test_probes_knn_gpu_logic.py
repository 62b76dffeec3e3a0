"""GPU FAISS choices without a GPU: which device an index goes to, and the CPU fallback above k = 2048.

The real faiss-cpu build has no GPU classes, so a stand-in module records what would run on the GPU;
the arithmetic (neighbours, similarities) is still done by the real CPU index.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

import vlnav_data.knn_index as ki
from vlnav_data.errors import ConfigError, VlnavWarning


class GpuIndexFlatIP:  # the name is what is_gpu_index looks at, as for faiss.GpuIndexFlatIP
    def __init__(self, cpu_index, device):
        self.cpu_index, self.device, self.searched_k = cpu_index, device, []
        self.ntotal, self.d = cpu_index.ntotal, cpu_index.d

    def search(self, q, k):
        if k > ki.GPU_MAX_K:
            raise RuntimeError("Error: 'k <= GPU_MAX_SELECTION_K' failed")  # what faiss-gpu raises
        self.searched_k.append(k)
        return self.cpu_index.search(q, k)


@pytest.fixture
def fake_gpu_faiss(monkeypatch):
    import faiss

    fake = types.ModuleType("faiss")
    fake.__dict__.update({k: getattr(faiss, k) for k in dir(faiss) if not k.startswith("__")})
    fake.StandardGpuResources = lambda: object()
    fake.get_num_gpus = lambda: 2
    fake.index_cpu_to_gpu = lambda res, device, index: GpuIndexFlatIP(index, device)
    fake.index_gpu_to_cpu = lambda index: index.cpu_index
    monkeypatch.setitem(sys.modules, "faiss", fake)
    return fake


def _index(n=3000, dim=8):
    vecs = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return ki.build_index(vecs)[0], vecs


def test_the_device_names_the_gpu(fake_gpu_faiss):
    index, _ = _index()
    assert ki.to_search_device(index, "cpu") is index
    assert ki.to_search_device(index, "cuda").device == 0
    assert ki.to_search_device(index, "cuda:1").device == 1
    with pytest.raises(ConfigError, match=r"--device cuda:2: FAISS sees 2 GPU\(s\)"):
        ki.to_search_device(index, "cuda:2")


def test_k_above_the_gpu_limit_searches_the_cpu_copy_with_one_warning(fake_gpu_faiss):
    index, vecs = _index()
    gpu = ki.to_search_device(index, "cuda:1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = ki.search(gpu, vecs[:4], 8)  # within the limit: on the "GPU", no warning
    assert gpu.searched_k == [8]
    with pytest.warns(VlnavWarning, match="k=2500 exceeds the 2048 neighbours a FAISS GPU index returns") as rec:
        sims, ids = ki.search(gpu, vecs[:4], 2500)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert gpu.searched_k == [8]  # the GPU index was not asked for k = 2500
    cpu_sims, cpu_ids = ki.search(index, vecs[:4], 2500)
    np.testing.assert_array_equal(ids, cpu_ids)
    np.testing.assert_array_equal(ids[:, :8], small[1])


def test_no_gpu_faiss_is_a_config_error():
    index, _ = _index(n=10)
    if ki.gpu_faiss_available():
        pytest.skip("this faiss has GPU support")
    with pytest.raises(ConfigError, match="--device cuda:0 asks for GPU FAISS, but the installed faiss has no GPU"):
        ki.to_search_device(index, "cuda:0")
