"""The two-tower models in the Hugging Face cache: what ``vlnav-data encoders`` lists (no network).

A snapshot is listed when transformers' ``AutoModel`` class for its ``model_type`` offers image and text
features, or when its ``config.json`` brings its own code (usable with ``--trust-remote-code``).

Siblings: references are parsed by :mod:`vlnav_data.encoders.hf_ref`, encoders built by
:mod:`vlnav_data.encoders.hf` (whose checkpoint checks this module reuses).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from vlnav_data.encoders.hf import has_two_tower_features, native_model_class, uses_remote_code
from vlnav_data.encoders.hf_ref import HF_PREFIX


@dataclasses.dataclass(frozen=True)
class CachedModel:
    """A two-tower model in the Hugging Face cache: what ``vlnav-data encoders`` lists.

    Attributes:
        ref: the ``--encoder`` value that loads it (``hf:ORG/NAME``, with ``@COMMIT`` when no branch points at it).
        model_class: transformers' class for its ``model_type`` (``remote code`` when it brings its own).
        dim: embedding width read from ``config.json`` (``projection_dim``, else the text projection size,
            else the vision width), or None when the config does not say.
        revision: the snapshot's commit hash.
        refs: the branches and tags that point at it.
    """

    ref: str
    model_class: str
    dim: int | None
    revision: str
    refs: tuple[str, ...]


def config_dim(raw: dict[str, Any]) -> int | None:
    """The embedding width a two-tower ``config.json`` states (None when it does not)."""
    text = raw.get("text_config") or {}
    vision = raw.get("vision_config") or {}
    for value in (raw.get("projection_dim"), text.get("projection_size"), vision.get("hidden_size")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def cached_models() -> list[CachedModel]:
    """Every snapshot in the Hugging Face cache whose model offers image and text features (no network).

    Models whose ``config.json`` brings its own code are listed as ``remote code`` (usable with
    ``--trust-remote-code``); models of other kinds (language models, detectors without text features)
    are left out.
    """
    from vlnav_data.encoders.weights import hf_hub_cache_dir

    cache = hf_hub_cache_dir()
    if not cache.is_dir():
        return []
    import transformers
    from huggingface_hub import scan_cache_dir

    out = []
    for repo in sorted(scan_cache_dir(cache).repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            try:
                raw = json.loads((Path(rev.snapshot_path) / "config.json").read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(raw, dict):
                continue
            native = native_model_class(raw)
            if uses_remote_code(raw) and native is None:
                model_class = "remote code"
            elif native is not None and has_two_tower_features(getattr(transformers, native, None)):
                model_class = native
            else:
                continue
            refs = tuple(sorted(rev.refs))
            ref = HF_PREFIX + repo.repo_id + ("" if "main" in refs else f"@{rev.commit_hash}")
            out.append(
                CachedModel(ref=ref, model_class=model_class, dim=config_dim(raw), revision=rev.commit_hash, refs=refs)
            )
    return out
