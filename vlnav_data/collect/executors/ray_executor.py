"""The Ray executor: one Ray task per item, retried when its worker or node dies (DESIGN §10).

What it promises is in :mod:`vlnav_data.collect.executors` (``ExecutorConfig``, ``make_executor``, the
``local`` / ``ray`` choices, what is retried and what is raised); this module holds how: connecting to
or starting Ray, checking that some node fits one task, and the tasks themselves. Progress travels
through one small actor pinned to the driver's node (:class:`_Board`; plain tasks and one actor, not
Ray Data: the items are few and long, and each one writes its own file).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from vlnav_data.collect.executors.interface import (
    EventFn,
    Executor,
    ExecutorConfig,
    ResultFn,
    TaskContext,
    TaskEvent,
    TaskFn,
)
from vlnav_data.errors import ConfigError, ExecutorError, VlnavError

POLL_S = 0.25
"""How often the Ray driver collects progress while it waits for tasks."""


class RayExecutor(Executor):
    """One Ray task per item; retries lost workers and nodes (see :mod:`vlnav_data.collect.executors`)."""

    kind = "ray"

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self._owns_ray = False
        self._ray: Any = None

    def __enter__(self) -> RayExecutor:
        self._ray = _import_ray(self.config.address)
        ray = self._ray
        if ray.is_initialized():
            return self  # a caller's connection (notebook, test): use it, leave it open
        kw: dict[str, Any] = {"logging_level": logging.WARNING}
        if self.config.address == "local":
            kw.update(address="local", include_dashboard=False, _node_ip_address="127.0.0.1")
        else:
            kw.update(address=self.config.address)
        try:
            ray.init(**kw)
        except (ConnectionError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot connect to the Ray cluster at '{self.config.address}': {exc}. Start one with "
                "`ray start --head` (and `ray start --address HEAD:6379` on each worker), pass its HEAD:PORT, "
                "or use --ray local for this machine alone"
            ) from exc
        self._owns_ray = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False

    def check_resources(self, unit: str = "shard") -> None:
        need_cpu, need_gpu = self.config.cpus_per_task, self.config.gpus_per_task
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        fits = [
            n
            for n in nodes
            if n.get("Resources", {}).get("CPU", 0) >= need_cpu and n.get("Resources", {}).get("GPU", 0) >= need_gpu
        ]
        if not fits:
            have = "; ".join(
                f"{n.get('NodeManagerAddress')}: {n.get('Resources', {}).get('CPU', 0):g} CPU, "
                f"{n.get('Resources', {}).get('GPU', 0):g} GPU"
                for n in nodes
            )
            raise ConfigError(
                f"no node of the Ray cluster can run a task needing {need_cpu:g} CPU and {need_gpu:g} GPU "
                f"(nodes: {have or 'none'}); lower --cpus-per-{unit} / --gpus-per-{unit} or add nodes"
            )

    def _run(self, fn: TaskFn, items: Sequence[Any], emit: EventFn, deliver: ResultFn) -> list[Any]:
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = ray.get_runtime_context().get_node_id()
        board = (
            ray.remote(num_cpus=0)(_Board)
            .options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False))
            .remote()
        )
        task = ray.remote(_ray_task).options(
            num_cpus=self.config.cpus_per_task,
            num_gpus=self.config.gpus_per_task,
            max_retries=self.config.max_retries,
            retry_exceptions=False,
        )
        refs = {task.remote(fn, i, item, board, self.config.cpus_per_task): i for i, item in enumerate(items)}
        results: list[Any] = [None] * len(items)
        pending = list(refs)
        attempts: dict[int, tuple[int, str, int]] = {}

        def record(event: TaskEvent) -> None:
            if event.kind == "started":
                attempts[event.item] = (event.attempt, event.node, event.pid)
            emit(event)

        try:
            while pending:
                ray.wait(pending, num_returns=1, timeout=POLL_S)
                events = ray.get(board.drain.remote())
                # Every result that reached this process before the drain is collected now: a task that starts
                # on a freed CPU was pushed after its predecessor's result came back, so emitting the finished
                # tasks before the other tasks' events never shows more tasks running than the CPUs allow.
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                finished = {refs[ref] for ref in done}
                for event in events:
                    if event.item in finished:
                        record(event)
                for ref in done:
                    i = refs.pop(ref)  # dropping the last reference lets Ray free the object
                    result = self._get(ref, i)
                    attempt, node, pid = attempts.get(i, (0, "?", 0))
                    emit(TaskEvent(i, "finished", attempt, node, pid))
                    results[i] = deliver(i, result)
                for event in events:
                    if event.item not in finished:
                        record(event)
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        finally:
            ray.kill(board)
        return results

    def _get(self, ref: Any, item: int) -> Any:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VlnavError):
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:
            raise ExecutorError(
                f"task {item} failed after {self.config.max_retries} retries: {exc}. What it wrote is kept: "
                "rerun the same command with --resume to continue"
            ) from exc


class _Board:
    """Ray actor on the driver's node: counts attempts and buffers events until the driver collects them."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self.attempts: dict[int, int] = {}

    def started(self, item: int, node: str, pid: int) -> int:
        attempt = self.attempts.get(item, 0) + 1
        self.attempts[item] = attempt
        self.events.append(TaskEvent(item, "started", attempt, node, pid))
        return attempt

    def send(self, event: TaskEvent) -> None:
        self.events.append(event)

    def drain(self) -> list[TaskEvent]:
        out, self.events = self.events, []
        return out


def _ray_task(fn: Callable[[Any, TaskContext], Any], item_index: int, item: Any, board: Any, cpus: float) -> Any:
    """What one Ray task runs: register the attempt with the board, then ``fn(item, ctx)``."""
    import ray

    rt = ray.get_runtime_context()
    node = f"{socket.gethostname()}/{rt.get_node_id()[:8]}"
    attempt = ray.get(board.started.remote(item_index, node, os.getpid()))

    def lost_host(host: str) -> bool:
        alive = [n for n in ray.nodes() if n.get("Alive")]
        return not any(n.get("NodeManagerHostname") == host for n in alive)

    ctx = TaskContext(item_index, attempt, node, cpus, board.send.remote, lost_host)
    return fn(item, ctx)


def _import_ray(address: str) -> Any:
    if address == "local":
        # A private instance has no other nodes: keep every service on the loopback (this must be set
        # before Ray is imported). Usage reporting stays off unless the user turned it on.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "--ray needs Ray, which is not installed; install it with: pip install 'vlnav-data[ray]'"
        ) from exc
    return ray
