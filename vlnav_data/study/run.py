"""``run_study(config)``: plan, run the missing cells, analyse, write report.md, result.json and figures.

The study directory::

    OUT/study.json                 the config, the datasets (fingerprint, arena), the evaluation seeds
    OUT/study.lock                 held while a driver runs the study (vlnav_data.dataset.lock)
    OUT/cells/<cell_id>/           one directory per finished cell (cell.json: its completion marker)
    OUT/cells/.attempts/           cells being computed, one directory per attempt (vlnav_data.study.cells)
    OUT/result.json                every cell and every statistic (strict JSON, NaN -> null)
    OUT/report.md, OUT/figures/    the report and its figures

``report_study(out_dir)`` re-analyses the finished cells of a study directory without running any cell.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.errors import ConfigError
from vlnav_data.jsonio import write_json_atomic
from vlnav_data.study.config import Cell, StudyConfig
from vlnav_data.study.plan import CELLS_DIR, STUDY_FILE, StudyPlan, plan_study, read_marker

RESULT_FILE = "result.json"
REPORT_FILE = "report.md"
LOCK_FILE = "study.lock"


@dataclass(frozen=True, kw_only=True)
class CellEvent:
    """Progress of a study: one cell finished (``computed``) or found finished (``reused``).

    Attributes:
        cell: the cell.
        index: how many cells are done, this one included.
        total: cells in the study.
        status: ``computed`` or ``reused``.
        marker: its ``cell.json`` (summary, wall time).
    """

    cell: Cell
    index: int
    total: int
    status: str
    marker: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StudyResult:
    """What ``run_study`` / ``report_study`` wrote.

    Attributes:
        out_dir: the study directory.
        report: ``report.md``; result_json: ``result.json``; figures: the PNG files.
        num_cells: cells in the grid; cells_computed / cells_reused: by this run.
        complete: every cell finished.
        ranking: arm labels by pooled success.
        significant: ``"A > B"`` for each difference significant after Holm.
        wall_s: wall time of this run.
    """

    out_dir: Path
    report: Path
    result_json: Path
    figures: list[Path]
    num_cells: int
    cells_computed: int
    cells_reused: int
    complete: bool
    ranking: list[str]
    significant: list[str]
    wall_s: float


def study_command(config: StudyConfig) -> str:
    """The ``vlnav-study run`` command line that reproduces this study."""
    defaults = {f.name: f.default for f in dataclasses.fields(StudyConfig)}
    args = ["vlnav-study", "run", *[str(p) for p in config.datasets], "--out", str(config.out_dir)]
    for e in config.encoders:
        args += ["--encoder", e]
    if config.features != defaults["features"]:
        for f in config.features:
            args += ["--features", f]
    if config.recipes != defaults["recipes"]:
        for r in config.recipes:
            args += ["--recipe", r]
    options = (
        ("num_steps", "--steps"),
        ("eval_every_steps", "--eval-every"),
        ("seeds", "--seeds"),
        ("seed", "--seed"),
        ("num_episodes", "--num-episodes"),
        ("num_envs", "--num-envs"),
        ("expert", "--expert"),
        ("expert_checkpoint", "--expert-checkpoint"),
        ("probe_max_train_rows", "--probe-max-train-rows"),
        ("knn_k", "--knn-k"),
        ("alpha", "--alpha"),
        ("device", "--device"),
        ("jobs", "--jobs"),
        ("cpus_per_cell", "--cpus-per-cell"),
        ("gpus_per_cell", "--gpus-per-cell"),
    )
    for name, flag in options:
        value = getattr(config, name)
        if value != defaults[name] and value is not None:
            args += [flag, str(value)]
    if config.executor == "ray":
        args += ["--ray", config.ray_address]
    for name, path in config.encoder_model_paths:
        args += ["--encoder-model-path", f"{name}={path}"]
    if not config.probes:
        args.append("--no-probes")
    if config.probe_mlp:
        args.append("--probe-mlp")
    return shlex.join(args)


def _study_lock(out_dir: Path):
    """The study directory's lock (:mod:`vlnav_data.dataset.lock`, correct on shared file systems), so two
    drivers never run the same study; cells run by other processes or hosts do not take it."""
    from vlnav_data.dataset.lock import WriteLock

    out = Path(out_dir)
    return WriteLock(
        out / LOCK_FILE,
        what=f"the study in '{out}'",
        takeover_hint=f"delete '{out / LOCK_FILE}' to take the lock over",
        elsewhere_hint="stop it before resuming",
    )


def run_study(config: StudyConfig, progress: Callable[[CellEvent], None] | None = None) -> StudyResult:
    """Run a study: check everything, run the cells not yet finished, write the report.

    Args:
        config: the study.
        progress: called after each cell (computed or found finished).

    Returns:
        What was written; ``complete`` is True when every cell has finished.

    Raises:
        ConfigError, SchemaError: bad inputs, found before any cell runs.
    """
    from vlnav_data.study.executors import run_cells

    start = time.perf_counter()
    plan = plan_study(config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _study_lock(out):
        _write_study_file(config, plan)
        total = len(plan.cells)
        finished = [c for c in plan.cells if read_marker(out / CELLS_DIR / c.cell_id) is not None]
        todo = [c for c in plan.cells if c not in finished]
        done = 0
        for cell in finished:
            done += 1
            if progress is not None:
                progress(CellEvent(cell=cell, index=done, total=total, status="reused", marker=_marker(out, cell)))

        def on_done(cell: Cell, directory: Path) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(CellEvent(cell=cell, index=done, total=total, status="computed", marker=_marker(out, cell)))

        run_cells(config, todo, executor=config.executor, jobs=config.jobs, on_done=on_done)
        result = _write_outputs(out, wall_s=time.perf_counter() - start)
    return dataclasses.replace(result, cells_computed=len(todo), cells_reused=len(finished))


def _marker(out: Path, cell: Cell) -> dict[str, Any]:
    return read_marker(out / CELLS_DIR / cell.cell_id) or {}


def _write_study_file(config: StudyConfig, plan: StudyPlan) -> None:
    write_json_atomic(
        Path(config.out_dir) / STUDY_FILE,
        {
            "format": "vlnav-study",
            "format_version": 1,
            "config": config.stored(),
            "command": study_command(config),
            "datasets": {k: dataclasses.asdict(v) for k, v in plan.datasets.items()},
            "evaluation_seeds": plan.evaluation_seeds,
            "train_seeds": list(config.train_seeds),
            "cells": [dataclasses.asdict(c) | {"id": c.cell_id} for c in plan.cells],
        },
    )


def report_study(out_dir: Path) -> StudyResult:
    """Re-analyse a study directory's finished cells and rewrite its report (no cell is run).

    Raises:
        ConfigError: ``out_dir`` holds no study.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    if not (out / STUDY_FILE).is_file():
        raise ConfigError(f"'{out}' holds no study ({STUDY_FILE} missing); run `vlnav-study run` first")
    return _write_outputs(out, wall_s=time.perf_counter() - start)


def _write_outputs(out: Path, wall_s: float) -> StudyResult:
    import json

    import numpy as np

    from vlnav_data.study.analysis import analyse, load_cell_records
    from vlnav_data.study.cells import load_probe_scores
    from vlnav_data.study.report import render_report, write_figures

    study = json.loads((out / STUDY_FILE).read_text())
    seeds = np.asarray(study["evaluation_seeds"], dtype=np.int64)
    cells_out, records, probes = [], [], {}
    hosts, devices, cells_wall = set(), set(), 0.0
    for c in study["cells"]:
        cell = Cell(**{k: c[k] for k in ("kind", "dataset", "encoder", "features", "recipe", "train_seed")})
        directory = out / CELLS_DIR / cell.cell_id
        marker = read_marker(directory)
        row: dict[str, Any] = {"id": cell.cell_id, **{k: c[k] for k in c if k != "id"}, "dir": str(directory)}
        if marker is not None:
            row.update(
                summary=marker.get("summary"), wall_s=marker.get("wall_s"), finished_utc=marker.get("finished_utc")
            )
            hosts.add(str(marker.get("host", "")))
            devices.add(str(marker.get("device", "")))
            cells_wall += float(marker.get("wall_s") or 0.0)
            if cell.kind == "bc":
                records.append(load_cell_records(cell.cell_id, cell.arm, int(cell.train_seed or 0), directory))
            else:
                probes[(cell.dataset, cell.encoder, cell.features)] = load_probe_scores(directory)
        cells_out.append(row)
    analysis = analyse(records, study["datasets"], seeds, float(study["config"]["alpha"]), probes)
    finished = sum(1 for r in cells_out if r.get("summary") is not None)
    command = study["command"]
    payload: dict[str, Any] = {
        "format": "vlnav-study-result",
        "config": study["config"],
        "command": command,
        "resume_command": command + " --resume",
        "datasets": study["datasets"],
        "evaluation": {
            "seed": study["config"]["seed"],
            "num_episodes": int(seeds.size),
            "episode_seeds": seeds,
            "train_seeds": study["train_seeds"],
            "step_unit": "env_steps",
        },
        "progress": {
            "finished": finished,
            "total": len(cells_out),
            "complete": finished == len(cells_out),
            "cells_wall_s": cells_wall,
            "hosts": sorted(h for h in hosts if h),
            "devices": sorted(d for d in devices if d),
        },
        "cells": cells_out,
        "analysis": analysis,
    }
    figures = write_figures(analysis, out)
    payload["files"] = {
        "report": REPORT_FILE,
        "figures": [str(p.relative_to(out)) for p in figures],
        "cells": CELLS_DIR,
    }
    report_path = out / REPORT_FILE
    partial = report_path.with_name(REPORT_FILE + ".partial")
    partial.write_text(render_report(payload, figures))
    partial.replace(report_path)
    result_path = write_json_atomic(out / RESULT_FILE, payload)
    return StudyResult(
        out_dir=out,
        report=report_path,
        result_json=result_path,
        figures=figures,
        num_cells=len(cells_out),
        cells_computed=0,
        cells_reused=0,
        complete=finished == len(cells_out),
        ranking=list(analysis["ranking"]),
        significant=[f"{c['a']} > {c['b']}" for c in analysis["comparisons"] if c["significant"]],
        wall_s=wall_s,
    )
