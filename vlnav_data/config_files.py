"""TOML config files of commands (``--config``), read into the fields of a config dataclass.

One reader for every command that takes a TOML file (``vlnav-data build``, ``vlnav-study run``): the keys
are the dataclass's own field names, so a field added to the dataclass is a key of the file without any
list to update. Standard library only; importable from any layer.

Rules (choices where the issues are silent):

- the settings sit in a ``[<table>]`` table or at the top level;
- ``-`` and ``_`` are the same in keys; a command may accept a few aliases (``encoder`` for ``encoders``);
- an unknown key is refused with a did-you-mean;
- a TOML array becomes a tuple, and a single string where a tuple of strings is expected becomes a
  one-element tuple;
- each value is checked against the field's type hint (an integer is a valid float, a boolean is not an
  integer, a string is a valid path), and a wrong one is refused naming the key, the expected and the given
  type;
- keys with a syntax of their own (``shard = "i/n"``) are converted by the command's ``special`` functions.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vlnav_data.errors import ConfigError, did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def check_positive_int(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an int >= 1 (a bool is not an int here).

    Args:
        name: how the value is named in the message (a field or an option, e.g. ``--num-episodes``).
        value: the value to check.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def read_toml_table(path: str | Path, table: str) -> dict[str, Any]:
    """The ``[table]`` of a TOML file, or its top-level keys when it has no such table.

    Raises:
        ConfigError: the file is missing, not TOML, or ``table`` is not a table.
    """
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: '{p}'; pass an existing .toml file to --config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{p}' is not valid TOML: {exc}") from exc
    values = raw.get(table, raw)
    if not isinstance(values, dict):
        raise ConfigError(f"config file '{p}': expected a [{table}] table or top-level keys")
    return values


def load_config_toml(
    path: str | Path,
    config_class: type,
    *,
    table: str,
    aliases: Mapping[str, str] | None = None,
    special: Mapping[str, Callable[[Any], dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Read a TOML file into keyword arguments of ``config_class`` (a dataclass), checked as the module says.

    Args:
        path: the TOML file.
        config_class: the dataclass whose fields the keys name.
        table: the table name (``build``, ``study``).
        aliases: other spellings of field names (``{"encoder": "encoders"}``).
        special: key -> ``convert(value) -> {field: value}`` for keys with a syntax of their own; the
            function raises :class:`ConfigError` for a bad value.

    Returns:
        ``{field: value}`` for the keys present (missing keys keep the dataclass defaults).

    Raises:
        ConfigError: missing or invalid file, unknown key, or a value of the wrong type.
    """
    p = Path(path)
    aliases = dict(aliases or {})
    special = dict(special or {})
    hints = field_types(config_class)
    out: dict[str, Any] = {}
    for key, value in read_toml_table(p, table).items():
        name = key.replace("-", "_")
        name = aliases.get(name, name)
        if name in special:
            out.update(special[name](value))
            continue
        if name not in hints:
            raise ConfigError(f"config file '{p}': unknown key '{key}'.{did_you_mean(name, hints)}")
        hint = hints[name]
        raw = value
        if isinstance(value, str) and _is_tuple_of(hint, str):
            value = (value,)
        value = tuple(value) if isinstance(value, list) else value
        if not value_matches(value, hint):
            raise ConfigError(
                f"config file '{p}': {key} must be {describe_type(hint)}, got {raw!r} ({type(raw).__name__}); fix "
                "the value in the TOML file"
            )
        out[name] = value
    return out


@functools.cache
def field_types(config_class: type) -> dict[str, Any]:
    """Field name -> resolved type hint of a dataclass (``from __future__ import annotations`` resolved)."""
    hints = typing.get_type_hints(config_class)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_class)}


def value_matches(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a type hint (an int is a float, a bool is not an int, a str is a Path)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(value_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(value_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(value_matches(v, a) for v, a in zip(value, args, strict=True))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is Path:
        return isinstance(value, (str, Path))
    return isinstance(value, hint) if isinstance(hint, type) else True


def describe_type(hint: Any) -> str:
    """``int`` -> ``an integer``, ``str | None`` -> ``a string``, ``tuple[str, ...]`` -> ``a list of strings``."""
    args = [a for a in typing.get_args(hint) if a is not type(None) and a is not Ellipsis]
    if typing.get_origin(hint) is tuple:
        return f"a list of {describe_type(args[0]).split(' ', 1)[1]}s" if args else "a list"
    if args:
        return " or ".join(describe_type(a) for a in args)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", Path: "a path"}
    return names.get(hint, str(hint))


def _is_tuple_of(hint: Any, item: type) -> bool:
    """``tuple[item, ...]`` (possibly inside ``| None``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_tuple_of(a, item) for a in typing.get_args(hint))
    args = typing.get_args(hint)
    return typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] is item
