"""Plugin encoders: an entry-point group for installed packages, ``register_encoder`` for notebooks.

A plugin is a name and a *factory*. The factory is called with keyword arguments ``device`` (a resolved
torch device string: ``cpu``, ``cuda``, ``cuda:1``), ``dtype`` (``auto``, ``fp32`` or ``bf16``),
``batch_size`` (int or None) and ``seed`` (int), and must return an instance of
:class:`vlnav_data.encoders.Encoder` (subclass it: ``encode_images`` and ``encode_texts`` are yours, the
joint vector and the rest come with the base class). Accept ``**kwargs`` to stay compatible when
arguments are added.

An installed package declares its factories in the entry-point group ``vlnav_data.encoders``::

    # pyproject.toml of the plugin package
    [project.entry-points."vlnav_data.encoders"]
    mean-colour = "my_encoders:make_mean_colour"

In a notebook (this process only): ``register_encoder("mean-colour", make_mean_colour)``.

The built encoder's spec is stored with ``source="plugin"`` and the plugin's name; its ``model_id``,
``revision`` (the plugin's own version of its weights or code), ``dim`` and ``dtype`` are the factory's.
A factory may carry ``dim`` and ``note`` attributes: ``vlnav-data encoders`` shows them without building
the encoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from vlnav_data.encoders.builtin import ENCODER_NAMES
from vlnav_data.encoders.spec import Encoder, EncoderSpec
from vlnav_data.errors import ConfigError, EncoderError
from vlnav_data.names import valid_encoder_name

ENTRY_POINT_GROUP = "vlnav_data.encoders"

EncoderFactory = Callable[..., Encoder]

_REGISTERED: dict[str, EncoderFactory] = {}


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """One available plugin: its name, where it comes from, and what its factory says about itself."""

    name: str
    origin: str
    dim: int | None
    note: str


def register_encoder(name: str, factory: EncoderFactory, *, replace: bool = False) -> None:
    """Make ``factory`` available to :func:`vlnav_data.encoders.make_encoder` as ``name`` (this process only).

    Args:
        name: letters, digits, ``_`` and ``-``; not a built-in name, not ``hf:...``.
        factory: ``factory(device=..., dtype=..., batch_size=..., seed=...) -> Encoder``.
        replace: allow replacing an earlier registration of ``name``.

    Raises:
        ConfigError: an invalid name, a built-in name, a non-callable factory, or ``name`` registered
            already (without ``replace``).
    """
    if not isinstance(name, str) or not valid_encoder_name(name):
        raise ConfigError(
            f"plugin encoder name must be letters, digits, '_' or '-' (starting with a letter or digit); "
            f"received {name!r}"
        )
    if name in ENCODER_NAMES:
        raise ConfigError(f"'{name}' is a built-in encoder; register the plugin under another name")
    if not callable(factory):
        raise ConfigError(
            f"register_encoder('{name}', ...) needs a callable factory; received {type(factory).__name__}"
        )
    if name in _REGISTERED and not replace:
        raise ConfigError(f"encoder '{name}' is registered already; pass replace=True to replace it")
    _REGISTERED[name] = factory


def unregister_encoder(name: str) -> None:
    """Forget a :func:`register_encoder` registration (no-op when absent)."""
    _REGISTERED.pop(name, None)


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)  # the first on sys.path wins, as for console scripts
    return found


def plugin_names() -> tuple[str, ...]:
    """Names of every registered and installed plugin (registrations first, then entry points, sorted)."""
    names = dict.fromkeys(sorted(_REGISTERED))
    names.update(dict.fromkeys(sorted(n for n in _entry_points() if valid_encoder_name(n))))
    return tuple(names)


def find_factory(name: str) -> tuple[EncoderFactory, str] | None:
    """``(factory, origin)`` of plugin ``name``, or None when there is none.

    ``origin`` is ``register_encoder`` or ``<distribution> <version> (module:attr)``.

    Raises:
        EncoderError: the entry point exists but cannot be imported.
    """
    if name in _REGISTERED:
        return _REGISTERED[name], "register_encoder"
    ep = _entry_points().get(name)
    if ep is None:
        return None
    dist = getattr(ep, "dist", None)
    origin = f"{dist.name} {dist.version} ({ep.value})" if dist is not None else ep.value
    try:
        factory = ep.load()
    except Exception as exc:  # any import failure of third-party code; re-raised as one message
        raise EncoderError(
            f"plugin encoder '{name}' ({origin}) cannot be imported: {type(exc).__name__}: {exc}; "
            "reinstall the package that provides it"
        ) from exc
    return factory, origin


def describe_plugins() -> list[PluginInfo]:
    """Every available plugin with the ``dim``/``note`` its factory declares (entry points are imported)."""
    out = []
    for name in plugin_names():
        found = find_factory(name)
        if found is None:
            continue
        factory, origin = found
        dim = getattr(factory, "dim", None)
        note = str(getattr(factory, "note", "") or (factory.__doc__ or "").strip().split("\n")[0])
        out.append(PluginInfo(name=name, origin=origin, dim=int(dim) if dim else None, note=note))
    return out


def make_plugin_encoder(name: str, *, device: str, dtype: str, batch_size: int | None, seed: int) -> Encoder:
    """Build plugin ``name`` and stamp its spec (``name``, ``source="plugin"``).

    Raises:
        ConfigError: no plugin of that name.
        EncoderError: the factory fails to import, or returns something that is not an :class:`Encoder`
            with a valid :class:`EncoderSpec`.
    """
    found = find_factory(name)
    if found is None:
        raise ConfigError(
            f"no plugin encoder '{name}': nothing registered with register_encoder and no entry point in group "
            f"'{ENTRY_POINT_GROUP}'; install the package that provides it"
        )
    factory, origin = found
    encoder = factory(device=device, dtype=dtype, batch_size=batch_size, seed=seed)
    if not isinstance(encoder, Encoder):
        raise EncoderError(
            f"plugin encoder '{name}' ({origin}) returned {type(encoder).__name__}, not a "
            "vlnav_data.encoders.Encoder; subclass Encoder and implement encode_images and encode_texts"
        )
    spec = getattr(encoder, "spec", None)
    if not isinstance(spec, EncoderSpec):
        raise EncoderError(
            f"plugin encoder '{name}' ({origin}) has spec {type(spec).__name__}, not a vlnav_data.encoders.EncoderSpec"
        )
    encoder.spec = dataclasses.replace(spec, name=name, source="plugin")
    return encoder
