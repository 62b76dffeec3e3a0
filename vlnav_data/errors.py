"""The project's exception hierarchy.

Every error a user can cause with bad input is a :class:`VlnavError`. The CLI turns exactly these
into one line ``error: <message>`` on stderr and exit code 2; anything else propagates with its
traceback. Messages say what was expected, what was received and what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VlnavError(Exception):
    """Base class of every user-facing error."""


class ConfigError(VlnavError, ValueError):
    """A configuration field or command-line value is invalid."""


class SchemaError(VlnavError):
    """A dataset file does not follow the vlnav-demos format."""


class NoArenaError(ConfigError):
    """A command that needs the simulator got a file without an arena (imported: DESIGN §11 "Past the arena").

    The one line every arena-only tool refuses such a file (or a model trained on one) with:
    ``'FILE' was imported from <kind> and has no arena; <tool> needs the simulator (<why; what to do>)``.

    Args:
        subject: what was given, quoted (``'demos.h5'``, or ``'model' (trained on 'demos.h5')``).
        source: the file's ``source_json`` attribute (JSON text or its dict; None when unrecorded).
        tool: the command or option that needs the arena (``the spatial probe``).
        why: what it needs the arena for, and what to use instead.
    """

    def __init__(self, subject: str, source: object, tool: str, why: str) -> None:
        super().__init__(
            f"{subject} was imported from {self.kind_of(source)} and has no arena; {tool} needs the simulator ({why})"
        )

    @staticmethod
    def kind_of(source: object) -> str:
        """``kind`` of an imported file's provenance (``lerobot``, ``robomimic``), else ``an unrecorded source``."""
        import json

        value = source
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        kind = value.get("kind") if isinstance(value, dict) else None
        return str(kind) if kind else "an unrecorded source"


class EncoderError(VlnavError):
    """An encoder cannot be built or its weights cannot be loaded."""


class CheckpointError(VlnavError):
    """A checkpoint or model directory is missing, corrupt or does not match."""


class MissingEpisodesError(VlnavError):
    """Shards of a build do not hold every episode of the build (``vlnav-data merge`` exits 1).

    Attributes:
        missing: global indices of the episodes no input holds, ascending.
        expected: episodes in the build (its ``num_episodes``).
    """

    def __init__(self, message: str, *, missing: tuple[int, ...], expected: int) -> None:
        super().__init__(message)
        self.missing = missing
        self.expected = expected


class ExecutorError(VlnavError):
    """Distributed work failed beyond its retries (workers or nodes kept dying, or the cluster went away)."""


class VlnavWarning(UserWarning):
    """Something the user should know that does not stop the work (a fallback taken, a setting ignored).

    The message is one line; the CLI prints it as ``warning: <message>`` on stderr.
    """


class PublishError(VlnavError):
    """An upload to the Hugging Face Hub failed (network, permissions, server)."""


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, value: str, choices: Iterable[str]) -> ConfigError:
    """Build the standard error for an unknown registry name (preset, encoder, ...)."""
    choices = sorted(choices)
    return ConfigError(
        f"unknown {kind} '{value}'; expected one of: {', '.join(choices)}.{did_you_mean(value, choices)}"
    )


def check_at_least(name: str, value: float | None, minimum: float) -> None:
    """Raise ``ConfigError("<name> must be >= <minimum>, got <value>")`` unless ``value`` is None or at least
    ``minimum``.

    Args:
        name: how the user set the value (``--num-episodes``) or the field's name.
        value: the value to check (None: unset, accepted).
        minimum: the smallest accepted value.
    """
    if value is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
