"""Demonstrations from elsewhere into ``vlnav-demos`` files without an arena (DESIGN §11 "Past the arena").

``import_lerobot`` reads a LeRobot v3.0 dataset (a directory, or a repo id in the offline caches) with
pyarrow and PyAV, without the ``lerobot`` package; ``import_robomimic`` reads a robomimic HDF5 file. Both
check everything before writing anything, then stream episode by episode through the project's one writer
(:class:`~vlnav_data.dataset.writer.DatasetWriter` with an :class:`~vlnav_data.dataset.layout.ImportedLayout`),
resumable like ``build``. The file they write has ``sim_config_json = {"arena": "none"}`` and a
``source_json`` provenance attribute; ``embed``, ``validate``, ``info``, ``card`` and ``export`` take it.

```python
from vlnav_data.imports import LeRobotImportConfig, import_lerobot
result = import_lerobot(LeRobotImportConfig(root="lerobot/pusht", out="pusht.h5"))
```

Sits above :mod:`vlnav_data.dataset`, below :mod:`vlnav_data.cli`.
"""

from __future__ import annotations

from typing import Any

from vlnav_data.imports.config import (
    ImportOptions,
    ImportProgress,
    ImportResult,
    LeRobotImportConfig,
    ProgressFn,
    RobomimicImportConfig,
    parse_episodes,
)


def import_lerobot(config: LeRobotImportConfig, progress: ProgressFn | None = None) -> ImportResult:
    """Import a LeRobot v3.0 dataset into ``config.out`` (see :mod:`vlnav_data.imports.lerobot`).

    Raises:
        ConfigError: a bad option or output, an unknown camera (the available ones are named).
        SchemaError: not a LeRobot v3.0 directory, a damaged or truncated file (before anything is written).
    """
    from vlnav_data.imports.lerobot import LeRobotSource

    return _import(LeRobotSource, config, progress)


def import_robomimic(config: RobomimicImportConfig, progress: ProgressFn | None = None) -> ImportResult:
    """Import a robomimic HDF5 file into ``config.out`` (see :mod:`vlnav_data.imports.robomimic`).

    Raises:
        ConfigError: a bad option or output, an unknown camera, no instruction to be found.
        SchemaError: not a robomimic file (before anything is written).
    """
    from vlnav_data.imports.robomimic import RobomimicSource

    return _import(RobomimicSource, config, progress)


def _import(source_type: Any, config: ImportOptions, progress: ProgressFn | None) -> ImportResult:
    """Check the output, then the source (every check before anything is written), then write."""
    from vlnav_data.imports.run import check_output, prepare_output, write_import, write_mode

    mode = write_mode(config.resume, config.overwrite)
    out = check_output(config.out, mode)
    source = source_type(config)
    try:
        prepare_output(out, mode)
    except BaseException:
        source.close()
        raise
    return write_import(source, out, mode, progress)


__all__ = [
    "ImportOptions",
    "ImportProgress",
    "ImportResult",
    "LeRobotImportConfig",
    "ProgressFn",
    "RobomimicImportConfig",
    "import_lerobot",
    "import_robomimic",
    "parse_episodes",
]
