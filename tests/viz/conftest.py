"""Fixtures of the Rerun tests: a small real build, a kNN evaluation on it, and a reader of .rrd files that uses
Rerun's own reader (``rerun.chunk.RrdReader``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

#: Build seed 47 gives five episodes with five different targets, so with colour-only instructions the
#: file's instruction table holds every colour prompt.
#: Over the shared small build (small_build, tests/conftest.py).
BUILD = dict(
    num_episodes=5,
    encoders=("oracle", "siglip-tiny-random"),
    instructions="color",
    max_episode_steps=40,
    num_envs=5,
    seed=47,
    valid_fraction=0.2,
)


@pytest.fixture(scope="session")
def demos(tmp_path_factory, small_build) -> Path:
    """A 5-episode text2nav build (32 px frames, 40-step limit) with oracle and tiny SigLIP embeddings."""
    from vlnav_data.collect import build_dataset

    out = tmp_path_factory.mktemp("viz") / "demos.h5"
    return build_dataset(small_build(out, **BUILD)).path


@pytest.fixture(scope="session")
def knn_eval(demos, tmp_path_factory) -> dict[str, Path]:
    """A kNN policy (tiny SigLIP joint features) evaluated on 3 starts: ``{"eval", "index", "model"}``."""
    from vlnav_data.policy.evaluate import EvalConfig, evaluate_policy
    from vlnav_data.policy.train import TrainConfig, train_policy
    from vlnav_data.probes.knn import KnnProbeConfig, run_knn_probe

    root = tmp_path_factory.mktemp("viz_eval")
    enc = "siglip-tiny-random"
    train_policy(TrainConfig(dataset=demos, out_dir=root / "model", encoder=enc, num_steps=40, eval_every_steps=20))
    run_knn_probe(KnnProbeConfig(path=demos, out_dir=root / "knn", encoder=enc, k=3, device="cpu"))
    evaluate_policy(
        EvalConfig(
            model_dir=root / "model",
            out_dir=root / "eval",
            num_episodes=3,
            num_envs=3,
            policy="knn",
            index_dir=root / "knn",
        )
    )
    return {"eval": root / "eval", "index": root / "knn", "model": root / "model"}


@pytest.fixture(scope="session")
def read_rrd():
    """The :func:`read_rrd_file` function (test modules cannot import this conftest)."""
    return read_rrd_file


def read_rrd_file(path: Path) -> dict[str, dict[str, list[Any]]]:
    """Every entity's rows, read back with Rerun's reader: ``{entity: {column: [value per row]}}``.

    Rows of one entity are concatenated over its chunks and sorted by the ``frame`` timeline when it has one
    (static rows first). Component columns keep Rerun's names (``Scalars:scalars``, ``TextLog:text``, ...).
    """
    from rerun.chunk import RrdReader

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in RrdReader(path).stream():
        table = chunk.to_record_batch().to_pydict()
        n = chunk.num_rows
        for r in range(n):
            rows[chunk.entity_path].append({k: v[r] for k, v in table.items() if k != "rerun.controls.RowId"})
    out: dict[str, dict[str, list[Any]]] = {}
    for entity, items in rows.items():
        items.sort(key=lambda row: (row.get("frame") is not None, row.get("frame") or 0))
        columns = sorted({k for row in items for k in row})
        out[entity] = {k: [row.get(k) for row in items] for k in columns}
    return out
