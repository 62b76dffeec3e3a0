"""Moving data between the host and the simulator's device: the only places the simulator does so.

Why one module. On CUDA, every read of a device tensor from the host (``.item()``, ``.cpu()``,
``.tolist()``, ``bool(t)``, ``nonzero()``, boolean-mask indexing) waits for every kernel queued before it,
and so does a plain copy from pageable host memory to the device (PyTorch synchronises the stream after
it). A simulator step that does ten of them keeps the GPU idle between them. Here:

* :func:`to_host` is the one device->host read. :meth:`~vlnav_data.sim.ArenaVecEnv.step` calls it once for
  everything termination bookkeeping needs (``tests/sim/test_sim_syncs.py`` counts the calls with
  ``Tensor`` methods wrapped, so a stray ``.item()`` fails a test on a CPU-only machine);
* :func:`upload` is the one host->device copy: on CUDA it goes through pinned memory with
  ``non_blocking=True`` (the pinned block is held by PyTorch's caching host allocator until the copy
  has run), so it never waits for the device;
* :class:`HostCopies` copies observations to the host *asynchronously* on a side stream (CUDA) into
  pinned buffers; the host waits for a copy only when it needs the numbers (a finished episode for the
  writer). On the CPU the "copy" is the tensor's own memory (``Tensor.numpy()`` shares it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """The device->host read: ``tensor`` as a numpy array (on CUDA this waits for the queued work).

    On the CPU the array shares the tensor's memory.
    """
    return tensor.detach().cpu().numpy()


def upload(array: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``array`` on ``device`` without waiting for the device (pinned, non-blocking copy on CUDA).

    A numpy array may be reused or freed as soon as this returns: on CUDA its bytes were copied into a
    pinned block first; on the CPU the returned tensor is a copy (``torch.tensor``), so later changes to
    ``array`` never reach the simulator's state. A CPU tensor is used as it is on the CPU.
    """
    host = array if isinstance(array, torch.Tensor) else torch.tensor(np.ascontiguousarray(array))
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host if device.type == "cpu" else host.to(device)


class HostFrames:
    """Host copies of one step's observation arrays, usable after :meth:`numpy` (see :class:`HostCopies`)."""

    def __init__(self, arrays: dict[str, Any], event: Any = None) -> None:
        self._arrays = arrays
        self._event = event
        self._numpy: dict[str, np.ndarray] | None = None

    def numpy(self) -> dict[str, np.ndarray]:
        """The arrays as numpy; on CUDA this waits for this copy (and every earlier one on the side stream)."""
        if self._numpy is None:
            if self._event is not None:
                self._event.synchronize()
                self._event = None
            self._numpy = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in self._arrays.items()}
        return self._numpy


class HostCopies:
    """Asynchronous device->host copies of observations (pinned buffers, one side stream on CUDA).

    ``copy({"rgb": t, ...})`` queues the copies and returns at once; :meth:`HostFrames.numpy` waits only for
    them. The side stream first waits for the stream that produced the tensors (so the copy sees finished
    frames) and each source tensor is marked as used by the side stream (``record_stream``), so the caching
    allocator does not hand its memory out again before the copy has read it. Numpy inputs pass through.

    Args:
        device: the simulator's device.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def copy(self, arrays: dict[str, Any]) -> HostFrames:
        """Queue host copies of the torch tensors among ``arrays`` (numpy values are kept as they are)."""
        if self._stream is None:
            return HostFrames({k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()})
        self._stream.wait_stream(torch.cuda.current_stream(self.device))
        out: dict[str, Any] = {}
        with torch.cuda.stream(self._stream):
            for key, value in arrays.items():
                if not isinstance(value, torch.Tensor):
                    out[key] = value
                    continue
                host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
                host.copy_(value, non_blocking=True)
                value.record_stream(self._stream)
                out[key] = host
            event = torch.cuda.Event()
            event.record(self._stream)
        return HostFrames(out, event)


def wait_for_device(device: torch.device | str) -> None:
    """Make work queued so far on ``device``'s current stream visible to any other stream or thread.

    Used once per finished episode by ``rollout`` before it hands device frames to another thread (which
    may run on another CUDA stream); nothing on the CPU.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(dev))
        event.synchronize()
