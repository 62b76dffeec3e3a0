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


def torch_cpu_machine(threads: int) -> str:
    """CPU, logical CPUs, torch version, torch threads and load average: one line for a CPU training bench."""
    import os

    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{cpu_name(platform.processor() or platform.machine())}, {os.cpu_count()} logical CPUs, torch "
        f"{torch.__version__}, {threads} torch thread(s), load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
