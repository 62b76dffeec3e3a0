"""Lazy imports of the optional ``hub`` extra (pyarrow, av, huggingface_hub, datasets)."""

from __future__ import annotations

import importlib
from types import ModuleType

from vlnav_data.errors import ConfigError

HUB_EXTRA_HINT = "pip install 'vlnav-data[hub]'"


def require(module: str) -> ModuleType:
    """Import ``module`` from the ``hub`` extra, or explain how to install it.

    Raises:
        ConfigError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ConfigError(
            f"'{top}' is not installed, and exporting or publishing datasets needs it; install the hub extra "
            f"with: {HUB_EXTRA_HINT}"
        ) from exc
