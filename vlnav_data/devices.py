"""The one rule for naming and resolving a torch device, shared by every config and command.

Accepted names: ``auto`` (CUDA when this torch build sees a GPU, else CPU), ``cpu``, ``cuda`` (the
current CUDA device) and ``cuda:N`` (GPU ``N``). :func:`check_device_name` validates the spelling
without importing torch (config dataclasses call it in ``__post_init__``); :func:`resolve_device`
turns a name into a concrete device string and checks that the GPU exists.
"""

from __future__ import annotations

import re

from vlnav_data.errors import ConfigError

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"
"""What ``--device`` accepts, for help texts and error messages."""

_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(device: object, what: str = "device") -> str:
    """Validate the spelling of a device name (no torch import).

    Args:
        device: the value given by the user.
        what: how the value is called in the message (``device``, ``--device``).

    Returns:
        The name, unchanged.

    Raises:
        ConfigError: anything but ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """
    if not isinstance(device, str) or not _DEVICE_RE.fullmatch(device):
        raise ConfigError(f"{what} must be one of {DEVICE_HELP}; received {device!r}.")
    return device


def check_resolved_device(device: object) -> str:
    """A config's device, which the command resolved before building it: ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ConfigError: ``auto`` (resolve it first, :func:`resolve_device`) or a misspelt name.
    """
    if device == "auto":
        raise ConfigError("device must be resolved (cpu, cuda or cuda:N) before the config is built; got 'auto'")
    return check_device_name(device)


def resolve_device(device: str, what: str = "device") -> str:
    """Turn ``auto|cpu|cuda|cuda:N`` into a concrete torch device string.

    ``auto`` becomes ``cuda`` when CUDA is available and ``cpu`` otherwise; the other names are
    returned unchanged once the GPU they name is known to exist.

    Raises:
        ConfigError: a malformed name, CUDA asked for where this torch build sees no GPU, or ``cuda:N``
            beyond the number of visible GPUs.
    """
    check_device_name(device, what)
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{what} '{device}' was requested but torch {torch.__version__} sees no CUDA GPU here; "
            "use --device cpu (or auto)."
        )
    index = int(device.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"{what} '{device}' names GPU {index}, but {count} GPU(s) are visible (cuda:0..{count - 1}).")
    return device


def device_type(device: str) -> str:
    """``cuda:1`` -> ``cuda``; ``cpu`` -> ``cpu`` (what provenance records: the kind, not the index)."""
    return device.partition(":")[0]
