"""Where independent pieces of work run: in this process, or as Ray tasks on a cluster (DESIGN §10).

An executor runs ``fn(item, ctx)`` for every item and returns the results in item order::

    with make_executor(ExecutorConfig(kind="ray", address="auto", cpus_per_task=2)) as ex:
        ex.check_resources()
        results = ex.run(fn, items, on_event=print)

Three commands use it: ``build --ray`` (one task per shard, :mod:`vlnav_data.collect.sharded`),
``embed --ray`` (one task per range of episodes, :mod:`vlnav_data.collect.embed.tasks`) and
``vlnav-study run --ray`` (one task per cell, :mod:`vlnav_data.study.executors`). ``on_result`` hands
each result to the caller as it arrives, so a caller that writes results (``embed``) need not hold
them all.

``fn`` must be a module-level function (Ray ships it by reference, so every node needs the same
``vlnav_data`` installed) and ``items`` picklable. ``ctx`` (:class:`TaskContext`) says where the task
runs and which attempt it is, and carries progress back to the caller: ``ctx.report(**fields)``
arrives on the driver as a :class:`TaskEvent` passed to ``on_event``.

Choices (the library functions keep their signatures; a config field chooses the executor):

- ``local`` runs the items one after another in this process; events are delivered immediately.
- ``ray`` runs one Ray task per item with ``cpus_per_task`` / ``gpus_per_task`` reserved. Ray retries a
  task whose worker process or node died (``max_retries`` times); an exception raised by ``fn`` itself
  is not retried: the other tasks are cancelled and the exception is raised on the driver (a
  :class:`~vlnav_data.errors.VlnavError` as itself). Work therefore has to be restartable: a retry runs
  ``fn`` again from the start, and it is ``fn``'s job to resume from what the lost attempt wrote.
  :class:`~vlnav_data.collect.executors.ray_executor.RayExecutor` runs them (its own module, the only one
  here that imports Ray).
- ``address``: ``local`` starts a private Ray instance on this machine, bound to 127.0.0.1, and stops
  it afterwards; ``auto`` joins the cluster this machine belongs to (``ray start``); ``HOST:PORT`` joins
  that cluster's head. A process that is already connected to Ray (a notebook, a test) keeps its
  connection, and the executor leaves it open.

Pieces: ``interface.py`` (config, the ``Executor`` base, task context and events), below ``local.py``
(:class:`LocalExecutor`) and ``ray_executor.py`` (:class:`RayExecutor`); this face picks one.
"""

from __future__ import annotations

from vlnav_data.collect.executors.interface import (
    EXECUTOR_KINDS,
    Executor,
    ExecutorConfig,
    TaskContext,
    TaskEvent,
    working_directory,
)
from vlnav_data.collect.executors.local import LocalExecutor

__all__ = [
    "EXECUTOR_KINDS",
    "Executor",
    "ExecutorConfig",
    "LocalExecutor",
    "TaskContext",
    "TaskEvent",
    "make_executor",
    "working_directory",
]


def make_executor(config: ExecutorConfig) -> Executor:
    """The executor ``config.kind`` names (use it as a context manager)."""
    if config.kind == "ray":
        from vlnav_data.collect.executors.ray_executor import RayExecutor

        return RayExecutor(config)
    return LocalExecutor(config)
