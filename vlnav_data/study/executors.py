"""Where a study's cells run: ``run_cells(config, cells, executor=...)`` (DESIGN §10).

Every executor calls the same plain function, :func:`vlnav_data.study.cells.run_cell` ``(config, cell)
-> directory``, so a cell's numbers do not depend on where it ran (episodes depend on their seed alone).

- ``local`` with ``jobs=1``: cells one after the other in this process.
- ``local`` with ``jobs=N``: ``N`` spawned worker processes, one cell each at a time, each limited to
  one torch thread and one BLAS thread (the cells are small networks; on a 2-core machine more threads
  per process only contend). A worker exits when the process that started it dies, so a killed study
  leaves no orphan writing into its cells.

A Ray executor (one task per cell, GPU fractions) plugs in here as another entry of ``EXECUTORS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from vlnav_data.errors import ConfigError
from vlnav_data.study.cells import run_cell
from vlnav_data.study.config import EXECUTORS, Cell, StudyConfig

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
        executor: ``local``.
        jobs: worker processes (``local``).
        on_done: called in this process with ``(cell, directory)`` after each cell.

    Returns:
        The cell directories, in the order of ``cells``.

    Raises:
        ConfigError: an unknown executor.
        Exception: the first error of a cell (the other running cells finish their current work first).
    """
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor '{executor}' is not available for studies; expected one of: {', '.join(EXECUTORS)}"
        )
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
