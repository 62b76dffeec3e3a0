"""kNN search and UMAP timings: FAISS flat inner product vs NumPy and torch brute-force top-k, same run.

Database: ``--num-vectors`` (default 200,000) random L2-normalised float32 vectors of ``--dim`` (1152,
SigLIP so400m's width). Queries: ``--num-queries`` (default 2,048) others, searched in batches of
``--batch`` (256) for the top ``--k`` (8) by inner product (= cosine). Every method's answers are
checked against FAISS's (same neighbour sets, up to ties) before its speed is reported.

- ``faiss-flat``: ``IndexFlatIP`` (what ``vlnav-probe knn`` builds below its IVF threshold);
- ``faiss-ivf``: ``IVF{sqrt(N)},Flat``, nprobe 32 (what it builds above the threshold), with its recall@k;
- ``numpy``: ``queries @ db.T`` then ``argpartition`` + sort of the k best;
- ``torch``: ``torch.mm`` + ``torch.topk`` on the CPU, and on CUDA when present (the GPU figure
  includes neither the database upload nor compile; the queries are uploaded per batch);
- ``faiss-gpu``: when faiss has GPU support and a GPU is visible.

UMAP: 2-D UMAP (cosine, seeded) of ``--umap-points`` (20,000) vectors, *cold* in a fresh Python
process (imports and numba compilation included) and *warm* (a second fit in that process).

Prints the machine (CPU model, cores, load average, library versions) first.

Usage: ``python bench/knn.py [--num-vectors 200000] [--num-queries 2048] [--no-umap] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time

import faiss
import numpy as np
import torch
from machine_info import cpu_name


def machine() -> dict:
    cpu = cpu_name(platform.processor() or "")
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def timed_batches(fn, queries: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """Run ``fn`` over query batches; return (queries per second, ids (Q, k))."""
    fn(queries[:batch])  # warm-up (allocations, thread pools, CUDA context)
    out = []
    t0 = time.perf_counter()
    for s in range(0, len(queries), batch):
        out.append(fn(queries[s : s + batch]))
    dt = time.perf_counter() - t0
    return len(queries) / dt, np.concatenate(out)


def same_sets(a: np.ndarray, b: np.ndarray) -> float:
    """Share of queries whose top-k id sets agree."""
    return float(np.mean([set(x) == set(y) for x, y in zip(a, b, strict=True)]))


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(approx, exact, strict=True)]))


def bench_knn(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    db = unit_rows(rng, args.num_vectors, args.dim)
    queries = unit_rows(rng, args.num_queries, args.dim)
    gen_s = time.perf_counter() - t0
    k, batch = args.k, args.batch
    results: dict = {"data_gen_s": gen_s}

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(db)
    results["faiss_flat_build_s"] = time.perf_counter() - t0
    qps, ref = timed_batches(lambda q: flat.search(q, k)[1], queries, batch)
    results["faiss_flat_qps"] = qps

    def numpy_topk(q: np.ndarray) -> np.ndarray:
        sims = q @ db.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)

    qps, ids = timed_batches(numpy_topk, queries, batch)
    results["numpy_qps"] = qps
    results["numpy_agreement"] = same_sets(ids, ref)

    db_t = torch.from_numpy(db)

    def torch_topk(q: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.topk(torch.from_numpy(q) @ db_t.T, k, dim=1).indices.numpy()

    qps, ids = timed_batches(torch_topk, queries, batch)
    results["torch_cpu_qps"] = qps
    results["torch_cpu_agreement"] = same_sets(ids, ref)

    if torch.cuda.is_available():
        db_g = db_t.cuda()

        def torch_gpu(q: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = torch.topk(torch.from_numpy(q).cuda() @ db_g.T, k, dim=1).indices
                return out.cpu().numpy()

        qps, ids = timed_batches(torch_gpu, queries, batch)
        results["torch_cuda_qps"] = qps
        results["torch_cuda_agreement"] = same_sets(ids, ref)
        del db_g
    else:
        results["torch_cuda_qps"] = None

    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        res = faiss.StandardGpuResources()
        gpu = faiss.index_cpu_to_gpu(res, 0, flat)
        qps, ids = timed_batches(lambda q: gpu.search(q, k)[1], queries, batch)
        results["faiss_gpu_qps"] = qps
        results["faiss_gpu_agreement"] = same_sets(ids, ref)
    else:
        results["faiss_gpu_qps"] = None

    if not args.no_ivf:
        nlist = round(np.sqrt(args.num_vectors))
        t0 = time.perf_counter()
        ivf = faiss.index_factory(args.dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        sample = db[rng.choice(len(db), size=min(len(db), 64 * nlist), replace=False)]
        ivf.train(sample)
        ivf.add(db)
        faiss.extract_index_ivf(ivf).nprobe = 32
        results["faiss_ivf_build_s"] = time.perf_counter() - t0
        results["faiss_ivf_nlist"] = nlist
        qps, ids = timed_batches(lambda q: ivf.search(q, k)[1], queries, batch)
        results["faiss_ivf_qps"] = qps
        results["faiss_ivf_recall_at_k"] = recall(ids, ref)
    return results


UMAP_CHILD = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import umap
    import warnings
    warnings.filterwarnings("ignore", message="n_jobs value")
    n, dim = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, dim)).astype(np.float32)
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t_data = time.perf_counter()
    umap.UMAP(n_components=2, metric="cosine", random_state=0).fit_transform(x)
    t_cold = time.perf_counter()
    umap.UMAP(n_components=2, metric="cosine", random_state=1).fit_transform(x)
    t_warm = time.perf_counter()
    print(json.dumps({"umap_cold_s": t_cold - t0, "umap_cold_fit_only_s": t_cold - t_data,
                      "umap_warm_s": t_warm - t_cold, "umap_import_and_data_s": t_data - t0}))
    """
)


def bench_umap(args: argparse.Namespace) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", UMAP_CHILD, str(args.umap_points), str(args.dim)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-vectors", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=1152)
    p.add_argument("--num-queries", type=int, default=2048)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--umap-points", type=int, default=20_000)
    p.add_argument("--no-umap", action="store_true")
    p.add_argument("--no-ivf", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args()

    info = machine()
    if not args.json:
        print("machine:", json.dumps(info))
        print(
            f"database {args.num_vectors} x {args.dim} float32, {args.num_queries} queries, "
            f"batch {args.batch}, k {args.k}"
        )
    t0 = time.perf_counter()
    res = bench_knn(args)
    if not args.no_umap:
        res.update(bench_umap(args))
    res["total_s"] = time.perf_counter() - t0
    res["load_average_1m_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"machine": info, "config": vars(args), "results": res}))
        return
    for key in ("faiss_flat", "numpy", "torch_cpu", "torch_cuda", "faiss_gpu", "faiss_ivf"):
        qps = res.get(f"{key}_qps")
        if qps is None:
            if f"{key}_qps" in res:
                print(f"{key:<12} not available on this machine")
            continue
        extra = ""
        if f"{key}_agreement" in res:
            extra = f"  (same top-{args.k} sets as faiss-flat: {100 * res[f'{key}_agreement']:.1f}%)"
        if key == "faiss_ivf":
            extra = f"  (nlist {res['faiss_ivf_nlist']}, nprobe 32, recall@{args.k} {res['faiss_ivf_recall_at_k']:.3f})"
        print(f"{key:<12} {qps:10.1f} queries/s{extra}")
    if "umap_cold_fit_only_s" in res:
        print(
            f"umap {args.umap_points} x {args.dim}: cold {res['umap_cold_s']:.1f} s in a fresh process "
            f"({res['umap_cold_fit_only_s']:.1f} s first fit incl. numba compilation), warm {res['umap_warm_s']:.1f} s"
        )
    print(
        f"total {res['total_s']:.0f} s; load average 1 min: {info['load_average_1m']:.1f} at start, "
        f"{res['load_average_1m_end']:.1f} at end"
    )


if __name__ == "__main__":
    main()
