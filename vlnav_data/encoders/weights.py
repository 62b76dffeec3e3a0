"""Loading pretrained weights through ``from_pretrained``, and the error when they are absent.

Weights come from a Hugging Face model id (resolved in the Hugging Face cache, downloading only when
the hub is reachable and ``HF_HUB_OFFLINE`` is not set) or from a local directory (``model_path``).
When neither works, :func:`missing_weights_error` says which model, where it looked and the exact
command that fetches it. huggingface_hub >= 1.0 ships the ``hf`` CLI (``huggingface-cli`` is gone).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from vlnav_data.errors import EncoderError

T = TypeVar("T")

_TRUE = {"1", "on", "yes", "true"}


def hf_hub_cache_dir() -> Path:
    """The Hugging Face hub cache directory, read from the environment at call time.

    Order as in huggingface_hub: ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``$HF_HOME/hub``,
    ``$XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``.
    """
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` forbids downloads."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def download_command(model_id: str, local_dir: str | None = None) -> str:
    """The shell command that fetches ``model_id`` into the cache (or into ``local_dir``)."""
    suffix = f" --local-dir {local_dir}" if local_dir else ""
    return f"hf download {model_id}{suffix}"


def missing_weights_error(
    name: str, model_id: str, model_path: str | None, cause: BaseException | None
) -> EncoderError:
    """Build the error raised when the weights of ``model_id`` cannot be loaded.

    Args:
        name: registry name of the encoder.
        model_id: Hugging Face model id of its weights.
        model_path: the local directory that was tried, or None for the Hugging Face cache.
        cause: the underlying exception (its first line is quoted unless the hub was offline).
    """
    python_cmd = f"python -c \"from huggingface_hub import snapshot_download; snapshot_download('{model_id}')\""
    if model_path is not None:
        path = Path(model_path).expanduser()
        where = (
            f"the local directory {path} does not exist"
            if not path.exists()
            else f"the local directory {path} does not hold a loadable copy ({_first_line(cause)})"
        )
        return EncoderError(
            f"encoder '{name}' could not load {model_id}: {where}. Fetch it with "
            f"`{download_command(model_id, str(path))}` or pass model_path=None to use the Hugging Face cache."
        )
    cache = hf_hub_cache_dir()
    reason = (
        "downloading is disabled (HF_HUB_OFFLINE=1)"
        if hub_offline()
        else f"downloading it failed ({_first_line(cause)})"
    )
    return EncoderError(
        f"encoder '{name}' could not load {model_id}: the weights are not in the Hugging Face cache at "
        f"{cache} and {reason}. Fetch them into that cache once, where the hub is reachable, with "
        f"`{download_command(model_id)}` (or {python_cmd}), or pass model_path=DIR pointing at a local copy."
    )


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return "no detail"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_pretrained(loader: Callable[..., T], *, name: str, model_id: str, model_path: str | None, **kwargs: Any) -> T:
    """Call ``loader(model_path or model_id, cache_dir=<HF cache>, **kwargs)``; turn "not found" into an EncoderError.

    Args:
        loader: a ``from_pretrained`` classmethod (model, tokenizer or image processor).
        name: registry name, for the message.
        model_id: Hugging Face model id.
        model_path: local directory, or None to resolve ``model_id`` in the Hugging Face cache.
        **kwargs: forwarded to ``loader``.

    Raises:
        EncoderError: when the files are absent (see :func:`missing_weights_error`).
    """
    if model_path is not None and not Path(model_path).expanduser().is_dir():
        raise missing_weights_error(name, model_id, model_path, None)
    source = str(Path(model_path).expanduser()) if model_path is not None else model_id
    try:
        return loader(source, cache_dir=str(hf_hub_cache_dir()), **kwargs)
    except OSError as exc:  # transformers reports absent files and unreachable hubs as OSError
        raise missing_weights_error(name, model_id, model_path, exc) from exc


def weights_revision(model: Any, model_path: str | None) -> str:
    """The commit hash Hugging Face recorded for the loaded weights, or ``"local"`` for a directory."""
    if model_path is not None:
        return "local"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return str(commit) if commit else "unknown"
