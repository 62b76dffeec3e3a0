"""Where a study's cells run: ``run_cells(config, cells, executor=...)`` (DESIGN §10).

Every executor calls the same plain function, :func:`vlnav_data.study.cells.run_cell` ``(config, cell)
-> directory``, so a cell's numbers do not depend on where it ran (episodes depend on their seed alone).

- ``local`` with ``jobs=1``: cells one after the other in this process.
- ``local`` with ``jobs=N``: ``N`` spawned worker processes, one cell each at a time, each limited to
  one torch thread and one BLAS thread (the cells are small networks; on a 2-core machine more threads
  per process only contend). A worker exits when the process that started it dies, so a killed study
  leaves no orphan writing into its cells.

- ``ray``: one Ray task per cell through :mod:`vlnav_data.collect.executors` (the executor ``build
  --ray`` and ``embed --ray`` use), with ``cpus_per_cell`` CPUs (as many torch and BLAS threads) and
  ``gpus_per_cell`` GPUs reserved; a fraction lets several cells share a GPU. A cell writes its own
  directory and marker on the filesystem the study directory lives on, which every node must mount at
  the same path (a task checks that it sees ``study.json``); it runs in the driver's working directory,
  so relative paths mean on every node what they mean where the command was started. Ray starts a cell
  again when its worker or node is lost; the new attempt starts the cell over (a directory without a
  marker is never trusted). When the driver dies Ray stops its tasks, and ``--resume`` runs the cells
  without a marker again, as after a local kill.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlnav_data.collect.executors import TaskContext, make_executor, working_directory
from vlnav_data.errors import ConfigError
from vlnav_data.study.cells import run_cell
from vlnav_data.study.config import EXECUTORS, Cell, StudyConfig
from vlnav_data.study.plan import STUDY_FILE

CellDone = Callable[[Cell, Path], None]


def run_cells(
    config: StudyConfig,
    cells: Sequence[Cell],
    *,
    executor: str = "local",
    jobs: int = 1,
    on_done: CellDone | None = None,
) -> list[Path]:
    """Run cells (finished ones return at once) and report each as it completes.

    Args:
        config: the study.
        cells: the cells to run, in preferred order.
        executor: ``local`` or ``ray`` (one task per cell on ``config.executor_config()``).
        jobs: worker processes (``local``).
        on_done: called in this process with ``(cell, directory)`` after each cell.

    Returns:
        The cell directories, in the order of ``cells``.

    Raises:
        ConfigError: an unknown executor; ``ray``: no cluster, no node that fits a cell, a node that does
            not see the study directory or the driver's working directory.
        ExecutorError: ``ray``: a cell whose worker or node was lost more often than Ray retries.
        Exception: the first error of a cell (the other running cells finish their current work first).
    """
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor '{executor}' is not available for studies; expected one of: {', '.join(EXECUTORS)}"
        )
    if executor == "ray":
        return _run_on_ray(config, cells, on_done)
    if jobs <= 1 or len(cells) <= 1:
        out = []
        for cell in cells:
            directory = run_cell(config, cell)
            if on_done is not None:
                on_done(cell, directory)
            out.append(directory)
        return out
    return _run_in_processes(config, cells, jobs, on_done)


def _run_in_processes(config: StudyConfig, cells: Sequence[Cell], jobs: int, on_done: CellDone | None) -> list[Path]:
    import multiprocessing
    import os
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    results: dict[int, Path] = {}
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(cells)), mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    ) as pool:
        futures = {pool.submit(run_cell, config, cell): i for i, cell in enumerate(cells)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    i = futures[fut]
                    results[i] = fut.result()  # re-raises a cell's error here
                    if on_done is not None:
                        on_done(cells[i], results[i])
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return [results[i] for i in range(len(cells))]


@dataclass(frozen=True, kw_only=True)
class CellTask:
    """What the driver sends to the Ray task of one cell (picklable).

    Attributes:
        config: the study.
        cell: the cell.
        cwd: the driver's working directory (relative paths of ``config`` are relative to it).
    """

    config: StudyConfig
    cell: Cell
    cwd: str


def _run_on_ray(config: StudyConfig, cells: Sequence[Cell], on_done: CellDone | None) -> list[Path]:
    if not cells:
        return []
    tasks = [CellTask(config=config, cell=cell, cwd=os.getcwd()) for cell in cells]

    def on_result(i: int, directory: Path) -> Path:
        if on_done is not None:
            on_done(cells[i], directory)
        return directory

    with make_executor(config.executor_config()) as executor:
        executor.check_resources("cell")
        return executor.run(run_cell_task, tasks, on_result=on_result)


def run_cell_task(task: CellTask, ctx: TaskContext) -> Path:
    """One cell as an executor task (module level: Ray ships it by reference): :func:`run_cell` in the
    driver's working directory, with one torch and one BLAS thread per reserved CPU.

    Raises:
        ConfigError: this node does not see the driver's working directory or the study directory.
    """
    with working_directory(task.cwd) as found:
        if not found:
            raise ConfigError(
                f"node {ctx.node} does not have the directory '{task.cwd}' the study was started from; start "
                "vlnav-study from a directory every node mounts at the same path (the shared filesystem)"
            )
        study_file = Path(task.config.out_dir) / STUDY_FILE
        if not study_file.is_file():
            raise ConfigError(
                f"node {ctx.node} does not see '{study_file.absolute()}', which the driver wrote: --out must be on "
                "a filesystem every node mounts at the same path (NFS, Lustre, ...)"
            )
        ctx.limit_threads()
        return run_cell(task.config, task.cell)


def _init_worker(parent_pid: int) -> None:
    """One torch and one BLAS thread per worker; exit when the parent process is gone."""
    import os
    import threading
    import time

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1)

    def watch_parent() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
