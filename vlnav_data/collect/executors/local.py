"""The ``local`` executor: the items one after another in this process, events delivered immediately."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from vlnav_data.collect.executors import interface as base


class LocalExecutor(base.Executor):
    """Runs the items one after another in this process."""

    def __init__(self, config: base.ExecutorConfig | None = None) -> None:
        self.config = config or base.ExecutorConfig()

    def _run(self, fn: base.TaskFn, items: Sequence[Any], emit: base.EventFn, deliver: base.ResultFn) -> list[Any]:
        node = socket.gethostname()
        results = []
        for i, item in enumerate(items):
            ctx = base.TaskContext(i, 1, node, None, emit, lambda _h: False)
            emit(base.TaskEvent(i, "started", 1, node, ctx.pid))
            result = fn(item, ctx)
            emit(base.TaskEvent(i, "finished", 1, node, ctx.pid))
            results.append(deliver(i, result))
        return results
