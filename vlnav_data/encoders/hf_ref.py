"""Hugging Face encoder references: ``[ALIAS=]hf:ORG/NAME[@REV]`` and ``[ALIAS=]hf:/dir``, and their stored names.

``parse_hf_ref`` turns an ``--encoder`` value into an :class:`HFRef` without touching the disk or the
network. The stored name is the alias, or one derived from the id (``google/siglip2-base`` ->
``google--siglip2-base``; a directory -> its base name; see :func:`vlnav_data.names.safe_encoder_name`;
``hf-`` is prepended when that would be a built-in name).

Siblings: building the encoder is :mod:`vlnav_data.encoders.hf`, listing the cached two-tower models
:mod:`vlnav_data.encoders.hf_cache`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from vlnav_data.encoders.builtin import ENCODER_NAMES
from vlnav_data.errors import ConfigError
from vlnav_data.names import safe_encoder_name, valid_encoder_name

HF_PREFIX = "hf:"

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


@dataclasses.dataclass(frozen=True)
class HFRef:
    """A parsed ``[ALIAS=]hf:ORG/NAME[@REVISION]`` or ``[ALIAS=]hf:/path/to/dir``.

    Attributes:
        model_id: the hub id, or None for a local directory.
        revision: the hub revision asked for (branch, tag or commit), or None (``main``).
        path: the local directory (absolute), or None for a hub id.
        alias: the name given with ``ALIAS=``, or None.
    """

    model_id: str | None
    revision: str | None
    path: str | None
    alias: str | None

    @property
    def name(self) -> str:
        """The name the encoder gets in a file: the alias, else derived from the id or the directory."""
        if self.alias is not None:
            return self.alias
        if self.path is not None:
            name = safe_encoder_name(Path(self.path).name)
        else:
            base = self.model_id.replace("/", "--")  # type: ignore[union-attr]
            name = safe_encoder_name(base + (f"--{self.revision}" if self.revision else ""))
        return f"hf-{name}" if name in ENCODER_NAMES else name  # never looks like a built-in

    @property
    def source(self) -> str:
        """``hf:ORG/NAME[@REV]`` or ``hf:/abs/dir`` (no alias)."""
        if self.path is not None:
            return HF_PREFIX + self.path
        return HF_PREFIX + self.model_id + (f"@{self.revision}" if self.revision else "")  # type: ignore[operator]

    @property
    def label(self) -> str:
        """The model id or the directory: what messages and ``spec.model_id`` call it."""
        return self.path if self.path is not None else self.model_id  # type: ignore[return-value]


def is_hf_ref(text: str) -> bool:
    """True for ``hf:...`` and ``ALIAS=hf:...``."""
    if text.startswith(HF_PREFIX):
        return True
    _, sep, rest = text.partition("=")
    return bool(sep) and rest.startswith(HF_PREFIX)


def parse_hf_ref(text: str) -> HFRef:
    """Parse ``[ALIAS=]hf:ORG/NAME[@REVISION]`` or ``[ALIAS=]hf:/path/to/dir``.

    A local directory is a value that starts with ``/``, ``./``, ``../`` or ``~`` (anything else is a hub
    id, so ``hf:models/mine`` is the hub repository ``models/mine``; write ``hf:./models/mine`` for the
    directory).

    Raises:
        ConfigError: not of that form, an invalid alias, or an empty id/revision.
    """
    alias: str | None = None
    body = text
    if not text.startswith(HF_PREFIX):
        alias, _, body = text.partition("=")
        if not valid_encoder_name(alias):
            raise ConfigError(
                f"encoder alias '{alias}' in '{text}' must be letters, digits, '_' or '-' (starting with a letter or "
                "digit); e.g. --encoder mine=hf:/path/to/dir"
            )
        if alias in ENCODER_NAMES:
            raise ConfigError(
                f"encoder alias '{alias}' in '{text}' is a built-in encoder's name; choose another (e.g. {alias}-hf)"
            )
    if not body.startswith(HF_PREFIX):
        raise ConfigError(f"'{text}' is not a Hugging Face encoder; expected hf:ORG/NAME[@REVISION] or hf:/path/to/dir")
    value = body[len(HF_PREFIX) :]
    if value.startswith(("/", "./", "../", "~")) or value in (".", ".."):
        return HFRef(model_id=None, revision=None, path=str(Path(value).expanduser().resolve()), alias=alias)
    model_id, at, revision = value.partition("@")
    if not _HUB_ID.fullmatch(model_id) or (at and not revision):
        raise ConfigError(
            f"'{text}' is not a Hugging Face encoder; expected hf:ORG/NAME[@REVISION] (e.g. "
            "hf:google/siglip2-base-patch16-naflex) or hf:/path/to/dir (a directory starting with /, ./, ../ or ~)"
        )
    return HFRef(model_id=model_id, revision=revision or None, path=None, alias=alias)
