"""Torch CPU thread count for the small networks of this package.

The BC network is tiny (E x 256 + 256 x 256 + 256 x 2). On a shared 2-core machine torch's default of
one intra-op thread per core oversubscribes the CPU: measured on CPU-2 with other jobs running, one
forward pass of a (10, 1152) batch took 35 ms with 2 threads and 0.65 ms with 1; a training step
(batch 100) 212 ms against 13 ms. Both training and evaluation therefore run their torch work on CPU
under :func:`torch_threads` with one thread by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(num_threads: int | None, device: str = "cpu") -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads (no-op for CUDA or ``None``)."""
    import torch

    if num_threads is None or not str(device).startswith("cpu"):
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
