"""JSON the way every command writes it: strict values (NaN becomes null) and atomic files.

Shared by the CLI (``result.json`` of every command), by library code that keeps its own records (a
study's cell markers, a model directory's config, an evaluation's sidecar) and by the dataset layer
(the JSON attributes of a ``vlnav-demos`` file, :func:`compact`), so it lives below every package and
imports only the standard library. With it, a dataclass to and from its fields by name (:func:`fields_of`,
:func:`dataclass_from`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def fields_of(obj: Any, named_by: type | None = None) -> dict[str, Any]:
    """A dataclass instance's fields by name, values as they are (a result records its config this way).

    Args:
        obj: the dataclass instance.
        named_by: only the fields this dataclass declares (e.g. a base that two configs share, or the narrow
            view of a config that a function takes); default: all of ``obj``'s.
    """
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(named_by or obj)}


def dataclass_from(cls: type[T], values: Mapping[str, Any], /, **overrides: Any) -> T:
    """An instance of the dataclass ``cls`` filled by name: each field takes ``overrides[name]``, else
    ``values[name]`` where ``values`` has it, else its default; other keys of ``values`` are not read.

    What a command does with its parameters (``cli._common.command_config``) and a config that runs another
    does with its own fields (``dataclass_from(TrainConfig, fields_of(dagger_config), out_dir=...)``).

    Raises:
        TypeError: ``overrides`` names something that is not a field of ``cls`` (a programming error).
    """
    fields = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {unknown}")
    taken = {name: values[name] for name in fields - set(overrides) if name in values}
    return cls(**taken, **overrides)


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, paths and numpy scalars/arrays to strict-JSON values (NaN and inf become null)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN/Infinity: an undefined statistic is null
    return obj


def compact(obj: Any) -> str:
    """One-line, key-sorted strict JSON of :func:`to_jsonable` ``(obj)``: HDF5 attributes and comparisons.

    Equal values give equal text (keys sorted, no whitespace choices), so two records compare by their text.
    """
    return json.dumps(to_jsonable(obj), sort_keys=True, allow_nan=False)


def dumps(obj: Any) -> str:
    """Strict, sorted, indented JSON text of :func:`to_jsonable` ``(obj)`` with a final newline."""
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` via ``<path>.partial``, flushed and fsynced, then renamed.

    A reader (or a resumed run) sees either no file or the whole file, never a torn one.

    Returns:
        ``path``.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        f.write(dumps(obj))
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    return path
