"""Where and in which precision an encoder runs: device, dtype, CPU threads, the library versions it
records and transformers' logging while it loads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vlnav_data.devices import resolve_device  # the one rule, also re-exported for the encoders
from vlnav_data.errors import ConfigError

if TYPE_CHECKING:
    import torch

DTYPE_NAMES: tuple[str, ...] = ("auto", "fp32", "bf16")
"""Accepted ``dtype`` arguments: ``auto`` is bf16 on CUDA and fp32 on CPU."""


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """Map ``auto|fp32|bf16`` (also ``float32|bfloat16``) to a torch dtype for ``device``.

    ``auto`` is bfloat16 on CUDA and float32 on CPU. bf16 on CPU is allowed: on CPUs with native bf16
    (AVX-512 BF16 or AMX; see :func:`cpu_has_native_bf16`) it is about 2x faster for so400m (DESIGN §8);
    on AVX2-only CPUs torch emulates it and it is much slower than fp32. Check its fidelity against
    fp32 before relying on it (``bench/encoder_throughput.py`` prints both).
    """
    import torch

    aliases = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16", "auto": "auto"}
    if dtype not in aliases:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPE_NAMES)}; received '{dtype}'.")
    name = aliases[dtype]
    if name == "auto":
        name = "bf16" if device.startswith("cuda") else "fp32"
    return torch.bfloat16 if name == "bf16" else torch.float32


def cpu_has_native_bf16() -> bool:
    """True when torch's CPU kernels can use native bf16 arithmetic (AVX-512 BF16 or AMX)."""
    import torch

    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return capability in ("AVX512_BF16", "AMX") or capability.startswith("AVX512_BF16")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``, ``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def set_cpu_threads(num_threads: int | None) -> None:
    """Set torch's intra-op CPU threads when asked; leave torch's own choice otherwise.

    torch already defaults to one thread per physical core and honours ``OMP_NUM_THREADS``; an
    encoder therefore changes nothing unless ``num_threads`` is given, so it does not fight other
    libraries (numba, FAISS, the simulator) that size their own pools. Inter-op threads are never
    touched (torch allows setting them only once per process).
    """
    if num_threads is None:
        return
    if num_threads < 1:
        raise ConfigError(f"num_threads must be >= 1 or None; received {num_threads}.")
    import torch

    torch.set_num_threads(num_threads)


def prepare_runtime(
    device: str, dtype: str, num_threads: int | None, batch_size: int | None
) -> tuple[str, torch.dtype, int]:
    """Where, in which precision and in which batches a model encoder runs, with torch's CPU threads set.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:func:`vlnav_data.devices.resolve_device`).
        dtype: ``auto``, ``fp32`` or ``bf16`` (:func:`resolve_dtype`).
        num_threads: torch intra-op CPU threads (None: torch's own choice; :func:`set_cpu_threads`).
        batch_size: items per forward pass (None: 256 on CUDA, 8 on CPU).

    Returns:
        ``(device, torch dtype, batch size)``.
    """
    resolved = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved)
    set_cpu_threads(num_threads)
    if batch_size is None:
        batch_size = 256 if resolved.startswith("cuda") else 8
    return resolved, torch_dtype, batch_size


def library_versions() -> dict[str, str]:
    """Versions of the libraries that compute embeddings."""
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and warnings (used for the tiny checkpoints, whose
    defaults-derived config warnings and per-call loading bars are noise), restoring them after."""
    from transformers.utils import logging as hf_logging

    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar_was_enabled:
            hf_logging.enable_progress_bar()
