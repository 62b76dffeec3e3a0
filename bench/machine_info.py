"""What every benchmark prints about the CPU it ran on (imported by the scripts beside it)."""

from __future__ import annotations

import platform


def cpu_name(fallback: str | None = None) -> str:
    """The first ``model name`` of ``/proc/cpuinfo``; ``fallback`` (default: ``platform.processor()``) elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() if fallback is None else fallback
