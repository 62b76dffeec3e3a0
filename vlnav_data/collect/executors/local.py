"""The ``local`` executor: the items one after another in this process, events delivered immediately."""

from __future__ import annotations

import socket
from collections.abc import Sequence
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


class LocalExecutor(Executor):
    """Runs the items one after another in this process."""

    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config or ExecutorConfig()

    def _run(self, fn: TaskFn, items: Sequence[Any], emit: EventFn, deliver: ResultFn) -> list[Any]:
        node = socket.gethostname()
        results = []
        for i, item in enumerate(items):
            ctx = TaskContext(i, 1, node, None, emit, lambda _h: False)
            emit(TaskEvent(i, "started", 1, node, ctx.pid))
            result = fn(item, ctx)
            emit(TaskEvent(i, "finished", 1, node, ctx.pid))
            results.append(deliver(i, result))
        return results
