"""Naming rules shared by the dataset format and the encoders (stdlib only, importable from any layer)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

ENCODER_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"
"""An encoder's name in a file: letters, digits, ``_`` and ``-``, starting with a letter or digit. It keys
``obs/<name>_image`` (HDF5 and robomimic accept any name without ``/``; this is stricter so that names
are also safe as file names and command-line values)."""

_ENCODER_NAME_RE = re.compile(ENCODER_NAME_PATTERN)
_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def valid_encoder_name(name: str) -> bool:
    """True when ``name`` can name an encoder in a file (see :data:`ENCODER_NAME_PATTERN`)."""
    return bool(_ENCODER_NAME_RE.fullmatch(name))


def safe_encoder_name(text: str) -> str:
    """A valid, stable encoder name derived from any text (a model id, a directory name).

    Characters outside ``[A-Za-z0-9_-]`` become ``-``; when any was replaced, ``-`` and the first 8 hex
    digits of the SHA-256 of ``text`` are appended, so two texts that differ only in those characters
    (``a.b`` and ``a-b``) still get different names. A name that would start with ``-`` or ``_`` is
    prefixed with ``hf-``.
    """
    name = _BAD_CHARS.sub("-", text)
    if name != text:
        name += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    if not name or not name[0].isalnum():
        name = "hf-" + name
    return name


def recorded_text_mask(preprocessing: Mapping[str, Any]) -> bool | None:
    """Whether a record's text tower got the attention mask: ``text_attention_mask``, else read from
    ``text_inputs`` (``hf:`` records before the key existed), else None (not recorded: built-in entries
    before the key existed, whose convention never changed)."""
    if "text_attention_mask" in preprocessing:
        return bool(preprocessing["text_attention_mask"])
    if "text_inputs" in preprocessing:
        return "attention_mask" in list(preprocessing["text_inputs"])
    return None
