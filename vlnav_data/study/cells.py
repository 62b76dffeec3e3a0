"""Run one cell of a study: ``run_cell(config, cell) -> its directory``, callable by any executor.

A cell is computed in its own attempt directory, ``OUT/cells/.attempts/<cell_id>.<host>.<pid>.<token>/``,
whose lock (``<attempt>.lock``, :mod:`vlnav_data.dataset.lock`) the attempt holds while it runs. Its
completion marker ``cell.json`` (the cell, the key that decided its numbers, a summary, timing) is
written last, atomically, and the attempt directory is then renamed to ``OUT/cells/<cell_id>/``: a cell
directory is always complete and is never recomputed. Attempts of one cell may run at once (a Ray retry
of a task whose node only looked lost, two drivers): the first to finish is renamed into place, a later
one finds the finished cell and removes only its own directory. An attempt deletes another attempt's
directory only when it can take that attempt's lock, i.e. under the lock module's break-stale rule (its
process is proven gone), so a retry never deletes the files of an attempt still running, on any host.

- ``bc`` cell: ``policy.train_policy`` into ``model/``, then ``policy.evaluate_policy`` into ``eval/``
  (``episodes.npz`` and ``expert_episodes.npz``: student and expert on the study's shared starts).
- ``probe`` cell: ``probes.run_linear_probe`` into ``linear/`` and ``probes.run_knn_probe`` into
  ``knn/``; their scores are copied into ``probe_scores.json`` (this package's own file, so the study
  never parses another command's result schema).
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import platform
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from vlnav_data.dataset import DatasetReader
from vlnav_data.devices import resolve_device
from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import write_json_atomic
from vlnav_data.study.config import Cell, StudyConfig
from vlnav_data.study.plan import CELLS_DIR, MARKER, cell_key, dataset_fingerprint, key_mismatch, read_marker

PROBE_SCORES = "probe_scores.json"
ATTEMPTS_DIR = ".attempts"


def cell_dir(config: StudyConfig, cell: Cell) -> Path:
    """``OUT/cells/<cell_id>``."""
    return Path(config.out_dir) / CELLS_DIR / cell.cell_id


def _fingerprint(config: StudyConfig, cell: Cell) -> dict[str, Any]:
    path = config.labels.get(cell.dataset)
    if path is None:
        raise ConfigError(f"cell {cell.describe()} names dataset '{cell.dataset}', which the study does not hold")
    with DatasetReader(path) as reader:
        return dataset_fingerprint(reader)


def run_cell(config: StudyConfig, cell: Cell) -> Path:
    """Compute one cell unless its marker says it is finished; return its directory.

    Args:
        config: the study (``plan_study`` has checked it).
        cell: the cell to run.

    Returns:
        The cell directory, holding ``cell.json``.

    Raises:
        ConfigError: the cell finished earlier under other settings (its key differs).
    """
    directory = cell_dir(config, cell)
    key = cell_key(config, cell, _fingerprint(config, cell))
    marker = read_marker(directory)
    if marker is not None:
        diff = key_mismatch(marker.get("key", {}), key)
        if diff:
            raise ConfigError(
                f"finished cell '{cell.cell_id}' was computed with other settings ({'; '.join(diff[:4])}); "
                "resume with the settings it was run with, or choose a new --out"
            )
        attempts = directory.parent / ATTEMPTS_DIR
        if attempts.is_dir():
            _remove_abandoned_attempts(attempts, cell)
        return directory
    attempts = directory.parent / ATTEMPTS_DIR
    attempts.mkdir(parents=True, exist_ok=True)
    if directory.exists():  # unfinished, from a version that computed cells in place: an abandoned attempt
        os.rename(directory, attempts / f"{cell.cell_id}.in-place.{secrets.token_hex(4)}")
    _remove_abandoned_attempts(attempts, cell)
    work = attempts / f"{cell.cell_id}.{platform.node() or 'host'}.{os.getpid()}.{secrets.token_hex(4)}"
    with _attempt_lock(work):
        try:
            work.mkdir()
            _compute(config, cell, work, key)
            _publish_attempt(work, directory)
        finally:
            if work.exists():  # another attempt finished first, or this one failed: only its own files go
                shutil.rmtree(work)
    return directory


def _compute(config: StudyConfig, cell: Cell, directory: Path, key: dict[str, Any]) -> None:
    """Run the cell's work inside ``directory``; its marker is written last."""
    device = resolve_device(config.device)
    start = time.perf_counter()
    if cell.kind == "bc":
        summary = _run_bc(config, cell, directory, device)
    else:
        summary = _run_probe(config, cell, directory, device)
    write_json_atomic(
        directory / MARKER,
        {
            "cell": {
                "id": cell.cell_id,
                "kind": cell.kind,
                "dataset": cell.dataset,
                "encoder": cell.encoder,
                "features": cell.features,
                "recipe": cell.recipe,
                "train_seed": cell.train_seed,
            },
            "key": key,
            "summary": summary,
            "wall_s": time.perf_counter() - start,
            "device": device,
            "host": platform.node(),
            "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _attempt_lock(work: Path):  # noqa: ANN202 - a WriteLock (imported lazily with the lock module)
    from vlnav_data.dataset.lock import WriteLock

    return WriteLock(work.with_name(work.name + ".lock"), what=f"the cell attempt '{work}'")


def _publish_attempt(work: Path, directory: Path) -> None:
    """Rename a finished attempt to the cell directory, unless another attempt got there first."""
    try:
        os.rename(work, directory)  # atomic; refused while the cell directory exists and is not empty
    except OSError:
        if read_marker(directory) is None:
            raise


def _remove_abandoned_attempts(attempts: Path, cell: Cell) -> None:
    """Delete the attempt directories of ``cell`` whose process is proven gone (their lock can be taken)."""
    from vlnav_data.dataset.lock import LockHeldError

    for other in sorted(attempts.glob(glob.escape(cell.cell_id) + ".*")):
        if not other.is_dir():
            continue
        lock = _attempt_lock(other)
        try:
            lock.acquire()
        except LockHeldError:
            continue  # running, here or on a host this one cannot judge: not ours to touch
        try:
            shutil.rmtree(other, ignore_errors=True)
        finally:
            lock.release()


#: What a cell's record keeps of its :class:`~vlnav_data.policy.TrainResult`, its linear probe scores and its kNN probe.
TRAIN_KEPT = (
    "num_steps",
    "best_step",
    "best_valid_loss",
    "final_train_loss",
    "train_time_s",
    "num_train_episodes",
    "num_valid_episodes",
    "num_train_rows",
    "input_dim",
    "privileged_encoder",
)
SCORE_KEPT = ("metric", "probe", "shuffled", "baseline", "mlp", "chance", "num_train", "num_valid")
KNN_KEPT = ("k", "r2", "mse", "baseline_r2", "baseline_mse", "num_vectors", "num_valid")


def _run_bc(config: StudyConfig, cell: Cell, directory: Path, device: str) -> dict[str, Any]:
    from vlnav_data.policy import EvalConfig, TrainConfig, evaluate_policy, train_policy

    train = train_policy(
        TrainConfig(
            dataset=config.labels[cell.dataset],
            out_dir=directory / "model",
            **cell.embedding(),
            recipe=str(cell.recipe),
            num_steps=config.num_steps,
            eval_every_steps=config.eval_every_steps,
            seed=int(cell.train_seed or 0),
            device=device,
        )
    )
    evaluation = evaluate_policy(
        EvalConfig(
            model_dir=directory / "model",
            out_dir=directory / "eval",
            num_episodes=config.num_episodes,
            num_envs=config.num_envs,
            seed=config.seed,
            encoder=cell.encoder,
            encoder_model_path=config.model_path(cell.encoder),
            expert=config.expert,
            expert_checkpoint=config.expert_checkpoint,
            device=device,
        )
    )
    s = evaluation.student.success
    return {
        "train": {name: getattr(train, name) for name in TRAIN_KEPT},
        "eval": {
            "successes": s["successes"],
            "trials": s["trials"],
            "expert": evaluation.expert_name,
            "episode_seeds_overlapping_train": evaluation.episode_seeds_overlapping_train,
            "wall_s": evaluation.wall_s,
            "env_steps_per_s": evaluation.student_env_steps_per_s,
        },
    }


def _run_probe(config: StudyConfig, cell: Cell, directory: Path, device: str) -> dict[str, Any]:
    from vlnav_data.probes import KnnProbeConfig, LinearProbeConfig, run_knn_probe, run_linear_probe

    common = {"path": config.labels[cell.dataset], "seed": config.seed, **cell.embedding()}
    linear = run_linear_probe(
        LinearProbeConfig(
            out_dir=directory / "linear", max_train_rows=config.probe_max_train_rows, mlp=config.probe_mlp, **common
        )
    )
    device_ = "cpu" if device == "cpu" else "auto"
    knn = run_knn_probe(KnnProbeConfig(out_dir=directory / "knn", k=config.knn_k, device=device_, **common))
    scores = {
        "linear": {s.target: {name: getattr(s, name) for name in SCORE_KEPT} for s in linear.scores},
        "linear_skipped": dict(linear.skipped),
        "knn": {name: getattr(knn, name) for name in KNN_KEPT},
        "dim": linear.dim,
        "num_train_episodes": linear.num_train_episodes,
        "num_valid_episodes": linear.num_valid_episodes,
    }
    write_json_atomic(directory / PROBE_SCORES, scores)
    return {"linear": {t: v["probe"] for t, v in scores["linear"].items()}, "knn_r2": knn.r2}


def load_probe_scores(directory: Path) -> dict[str, Any]:
    """Read a finished probe cell's ``probe_scores.json``."""
    return json.loads((Path(directory) / PROBE_SCORES).read_text())
