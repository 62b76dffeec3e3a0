"""The executor interface every executor implements and every caller uses: :class:`ExecutorConfig`,
:class:`Executor`, the :class:`TaskContext` a task gets and the :class:`TaskEvent` it reports (the promises:
:mod:`vlnav_data.collect.executors`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vlnav_data.errors import ConfigError

EXECUTOR_KINDS = ("local", "ray")


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    """Where the pieces of one command run.

    Attributes:
        kind: ``local`` (this process, one item after another) or ``ray`` (one Ray task per item).
        address: Ray only: ``auto`` (the cluster this machine joined with ``ray start``), ``local`` (a
            private instance on this machine, bound to 127.0.0.1) or ``HOST:PORT`` of a head node.
        cpus_per_task: CPUs Ray reserves for each task (the task also uses that many torch threads).
        gpus_per_task: GPUs Ray reserves for each task (it sets ``CUDA_VISIBLE_DEVICES`` accordingly).
        max_retries: Ray only: how often a task whose worker or node died is started again.
    """

    kind: str = "local"
    address: str = "auto"
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTOR_KINDS)}, got '{self.kind}'")
        if not isinstance(self.address, str) or not self.address.strip():
            raise ConfigError(f"the Ray address must be auto, local or HOST:PORT, got {self.address!r}")
        for name in ("cpus_per_task", "gpus_per_task"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if self.cpus_per_task <= 0:
            raise ConfigError(f"cpus_per_task must be > 0, got {self.cpus_per_task!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")

    @classmethod
    def for_ray(
        cls, address: str, *, cpus_per_task: float | None = None, gpus_per_task: float | None = None, unit: str
    ) -> ExecutorConfig:
        """The Ray executor of ``--ray ADDRESS [--cpus-per-<unit> C] [--gpus-per-<unit> G]`` (None: the default).

        Raises:
            ConfigError: a bad address or count; the message names the command's flags.
        """
        kw: dict[str, Any] = {"kind": "ray", "address": address}
        if cpus_per_task is not None:
            kw["cpus_per_task"] = cpus_per_task
        if gpus_per_task is not None:
            kw["gpus_per_task"] = gpus_per_task
        try:
            return cls(**kw)
        except ConfigError as exc:
            message = (
                str(exc).replace("cpus_per_task", f"--cpus-per-{unit}").replace("gpus_per_task", f"--gpus-per-{unit}")
            )
            raise ConfigError(message) from None

    def check_device(self, device: str, unit: str) -> None:
        """Check ``--device`` against the GPUs Ray gives each task (nothing to check locally).

        Ray assigns a task the GPUs it reserves and hides the others (``CUDA_VISIBLE_DEVICES``), so a
        task sees ``cuda`` exactly when ``gpus_per_task > 0``; ``auto`` follows that.

        Args:
            device: the ``--device`` value (already spelled correctly).
            unit: what one task is to the user (``shard``, ``task``, ``cell``), for ``--gpus-per-<unit>``.

        Raises:
            ConfigError: ``cuda:N`` (Ray chooses the GPU), ``cuda`` without GPUs per task, or ``cpu`` with them.
        """
        if self.kind != "ray":
            return
        gpus = self.gpus_per_task
        if device.startswith("cuda:"):
            raise ConfigError(
                f"--device {device} names one GPU, but Ray assigns each {unit} its GPUs: "
                f"use --device cuda (or auto) with --gpus-per-{unit}"
            )
        if device == "cuda" and gpus <= 0:
            raise ConfigError(
                f"--device cuda with --ray needs --gpus-per-{unit} > 0 (Ray gives a task no GPU otherwise)"
            )
        if device == "cpu" and gpus > 0:
            raise ConfigError(
                f"--gpus-per-{unit} {gpus:g} reserves GPUs that --device cpu never uses; drop one of them"
            )


@dataclass(frozen=True)
class TaskEvent:
    """Something a task did, as the driver learns it.

    Attributes:
        item: index of the item in ``items``.
        kind: ``started`` (an attempt began), ``report`` (the task called ``ctx.report``) or ``finished``
            (its result reached the driver).
        attempt: 1 for the first run of the item, 2 for its first retry, ...
        node: where the attempt runs (``host`` locally; ``host/node-id-prefix`` on Ray).
        pid: process id of the attempt on its node.
        fields: what the task reported (empty for ``started`` and ``finished``).
    """

    item: int
    kind: str
    attempt: int
    node: str
    pid: int
    fields: Mapping[str, Any] = field(default_factory=dict)


EventFn = Callable[[TaskEvent], None]
TaskFn = Callable[[Any, "TaskContext"], Any]
ResultFn = Callable[[int, Any], Any]
"""``on_result(item, result)``: called on the driver as each result arrives; what it returns is kept in its place."""


class TaskContext:
    """Handed to every task: where it runs, which attempt it is, and a way to report progress.

    Attributes:
        item / attempt / node / pid: see :class:`TaskEvent`.
        cpus: CPUs reserved for this task in a worker process of its own (the task may size its thread
            pools to it); None when it runs in the caller's process, whose settings then apply.
    """

    def __init__(
        self,
        item: int,
        attempt: int,
        node: str,
        cpus: float | None,
        send: Callable[[TaskEvent], None],
        lost_host: Callable[[str], bool],
    ) -> None:
        self.item = item
        self.attempt = attempt
        self.node = node
        self.cpus = cpus
        self.pid = os.getpid()
        self._send = send
        self._lost_host = lost_host

    def report(self, **fields: Any) -> None:
        """Send progress (picklable values) to the driver's ``on_event``."""
        self._send(TaskEvent(self.item, "report", self.attempt, self.node, self.pid, dict(fields)))

    def limit_threads(self) -> None:
        """In a worker process of its own, use one torch and one BLAS thread per reserved CPU (at least one);
        in the caller's process (``cpus`` is None) change nothing: its own settings apply."""
        if self.cpus is None:
            return
        import torch
        from threadpoolctl import threadpool_limits

        n = max(1, int(self.cpus))
        torch.set_num_threads(n)
        threadpool_limits(limits=n)

    def host_is_lost(self, host: str) -> bool:
        """True when the executor knows that no live worker node runs on ``host`` (a node it lost).

        ``host`` is a host name as lock files record it (a ``?pidns-...`` suffix is ignored). Locally
        nothing is ever known to be lost.
        """
        return self._lost_host(host.split("?pidns-")[0])


class Executor:
    """Runs ``fn(item, ctx)`` for every item; a context manager that connects and disconnects."""

    kind = "local"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def check_resources(self, unit: str = "shard") -> None:
        """Raise :class:`ConfigError` when no worker could ever run one task (before any work starts).

        Args:
            unit: what one task is to the user (``shard``, ``task``, ``cell``): the message names the
                ``--cpus-per-<unit>`` / ``--gpus-per-<unit>`` flags.
        """

    def run(
        self,
        fn: TaskFn,
        items: Sequence[Any],
        *,
        on_event: EventFn | None = None,
        on_result: ResultFn | None = None,
    ) -> list[Any]:
        """Run ``fn(item, ctx)`` for every item; results in item order.

        Args:
            fn: a module-level function ``fn(item, ctx)``.
            items: picklable work items.
            on_event: called on the driver with every :class:`TaskEvent`.
            on_result: called on the driver with ``(item index, result)`` as each result arrives (in the
                order they finish, which need not be item order); the returned list then holds what it
                returned instead of the result, so a caller that consumes large results as they come
                (``embed`` writes them) keeps only something small.

        Raises:
            VlnavError: raised by ``fn`` or ``on_result`` (the remaining items are not run).
        """
        return self._run(fn, items, on_event or (lambda _e: None), on_result or (lambda _i, result: result))

    def _run(self, fn: TaskFn, items: Sequence[Any], emit: EventFn, deliver: ResultFn) -> list[Any]:
        """:meth:`run` with its callbacks given: ``emit(event)`` for every event, ``deliver(i, result)`` for
        every result as it arrives (what it returns goes into the list)."""
        raise NotImplementedError


@contextlib.contextmanager
def working_directory(path: str) -> Iterator[bool]:
    """Run the body in ``path`` (a task: the driver's working directory) when this node has that directory,
    so relative paths mean what they meant where the command started; yield whether it does. The
    previous working directory is restored afterwards (a Ray worker process runs one task at a time)."""
    here = os.getcwd()
    if not os.path.isdir(path):
        yield False
        return
    os.chdir(path)
    try:
        yield True
    finally:
        os.chdir(here)
