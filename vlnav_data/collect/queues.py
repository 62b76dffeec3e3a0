"""Bounded hand-off queues between pipeline threads that a stop event interrupts (``build``, ``embed``).

A thread blocked on a full or empty queue wakes every 0.1 s to check the stop event, so when one stage
fails the others end within that time instead of waiting forever on a queue nobody serves.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

POLL_S = 0.1
"""How often a blocked ``put``/``get`` checks the stop event."""


class Stopped(Exception):
    """Raised inside a pipeline thread when the pipeline is being torn down."""


def put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    """``q.put(item)``, raising :class:`Stopped` once ``stop`` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            q.put(item, timeout=POLL_S)
            return
        except queue.Full:
            continue


def get(q: queue.Queue, stop: threading.Event) -> Any:
    """``q.get()``, raising :class:`Stopped` once ``stop`` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return q.get(timeout=POLL_S)
        except queue.Empty:
            continue
