"""Where an encoder's files come from, offline: the Hugging Face cache or a local directory, and their identity.

Nothing is downloaded at run time. A Hugging Face model id resolves to a snapshot already in the cache
(``huggingface_hub.snapshot_download(..., local_files_only=True)``: no network request, so no retries
when the hub is unreachable), and the snapshot's directory name is the commit hash that identifies the
weights. A local directory is identified by a content hash of its files (:func:`content_hash`). When
neither exists, :func:`missing_weights_error` names the model, where it looked, the ``hf download``
command that fetches it and the command-line flag that points at a local copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from vlnav_data.errors import EncoderError

T = TypeVar("T")

_TRUE = {"1", "on", "yes", "true"}
CONTENT_HASH_PREFIX = "sha256:"
"""Revisions of local directories are ``sha256:<64 hex digits>`` (see :func:`content_hash`)."""

_HASHES: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


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


def download_command(model_id: str, local_dir: str | None = None, revision: str | None = None) -> str:
    """The shell command that fetches ``model_id`` into the cache (or into ``local_dir``)."""
    out = f"hf download {model_id}"
    if revision:
        out += f" --revision {revision}"
    if local_dir:
        out += f" --local-dir {local_dir}"
    return out


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
    """A model's files on this machine.

    Attributes:
        directory: the directory ``from_pretrained`` loads (a cache snapshot or the local directory).
        revision: the commit hash of a cache snapshot, or ``sha256:...`` of a local directory.
        local: True for a user-given local directory.
    """

    directory: Path
    revision: str
    local: bool


def content_hash(directory: str | Path) -> str:
    """``sha256:<hex>`` of a directory's files: what identifies a local checkpoint.

    The digest covers every regular file below ``directory`` (symbolic links followed), in sorted order of
    their relative POSIX paths, each as its path, its size and its bytes. Hidden entries (``.git``,
    ``.cache`` -- ``hf download --local-dir`` keeps its bookkeeping there) and Markdown files (model cards)
    are left out: they do not change what the model computes. Reading costs one pass over the weights
    (a few seconds per GB), once per process while no file's size or modification time changes.

    Raises:
        EncoderError: ``directory`` is not a directory.
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise EncoderError(f"cannot hash {root}: it is not a directory")
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() == ".md" or not path.is_file():
            continue
        files.append((rel.as_posix(), path))
    files.sort()
    stats = tuple((rel, path.stat().st_size, path.stat().st_mtime_ns) for rel, path in files)
    key = (str(root), stats)
    if key in _HASHES:  # unchanged files (same sizes and modification times): hashed once per process
        return _HASHES[key]
    digest = hashlib.sha256()
    for rel, path in files:
        digest.update(rel.encode("utf-8") + b"\0" + str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    _HASHES[key] = CONTENT_HASH_PREFIX + digest.hexdigest()
    return _HASHES[key]


def cached_snapshot(model_id: str, revision: str | None = None) -> Path | None:
    """The cache snapshot of ``model_id`` at ``revision`` (None: ``main``), or None; never touches the network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import LocalEntryNotFoundError

    try:
        path = snapshot_download(model_id, revision=revision, cache_dir=str(hf_hub_cache_dir()), local_files_only=True)
    except LocalEntryNotFoundError:
        return None
    except ValueError as exc:  # a malformed repo id
        raise EncoderError(f"'{model_id}' is not a Hugging Face model id ({exc}); expected ORG/NAME") from exc
    return Path(path)


def resolve_weights(
    *, name: str, model_id: str, revision: str | None = None, model_path: str | None = None, local_flag: str
) -> ResolvedWeights:
    """Find a model's files without network access.

    Args:
        name: the encoder's name (for messages).
        model_id: Hugging Face model id.
        revision: branch, tag or commit to resolve in the cache (None: ``main``).
        model_path: a local directory to use instead of the cache.
        local_flag: the command-line flag that points at a local copy, for the message
            (``--model-path siglip=DIR``, ``--encoder hf:/path/to/dir``).

    Raises:
        EncoderError: the directory does not exist or the cache holds no snapshot (see
            :func:`missing_weights_error`).
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise missing_weights_error(name, model_id, str(path), None, local_flag=local_flag)
        return ResolvedWeights(directory=path, revision=content_hash(path), local=True)
    snapshot = cached_snapshot(model_id, revision)
    if snapshot is None:
        raise missing_weights_error(name, model_id, None, None, local_flag=local_flag, revision=revision)
    return ResolvedWeights(directory=snapshot, revision=snapshot.name, local=False)


def missing_weights_error(
    name: str,
    model_id: str,
    model_path: str | None,
    cause: BaseException | None,
    *,
    local_flag: str,
    revision: str | None = None,
) -> EncoderError:
    """Build the error raised when the files of ``model_id`` are not on this machine.

    Args:
        name: the encoder's name.
        model_id: Hugging Face model id of its weights.
        model_path: the local directory that was tried, or None for the Hugging Face cache.
        cause: the underlying exception (its first line is quoted), if any.
        local_flag: the flag that points at a local copy (``--model-path siglip=DIR``).
        revision: the revision asked for, when not ``main``.
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        where = (
            f"the local directory {path} does not exist"
            if not path.exists()
            else f"the local directory {path} does not hold a loadable copy ({_first_line(cause)})"
        )
        # hf:/dir names no hub id: the hint shows where a copy comes from instead of "downloading" the path
        hub_id = "ORG/NAME" if Path(model_id).expanduser() == path else model_id
        return EncoderError(
            f"encoder '{name}' could not load {model_id}: {where}. Fetch it with "
            f"`{download_command(hub_id, str(path), revision)}`, or point {local_flag} at a directory that holds "
            "the model's files (config.json, weights, tokenizer, preprocessor_config.json)."
        )
    what = f"revision '{revision}' of {model_id}" if revision else model_id
    return EncoderError(
        f"encoder '{name}' could not load {what}: it is not in the Hugging Face cache at {hf_hub_cache_dir()} "
        "(nothing is downloaded at run time). Fetch it once, where the hub is reachable, with "
        f"`{download_command(model_id, revision=revision)}`, or pass a local copy with {local_flag}."
    )


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return "no detail"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_pretrained(
    loader: Callable[..., T], weights: ResolvedWeights, *, name: str, model_id: str, local_flag: str, **kwargs: Any
) -> T:
    """Call ``loader(<directory>, local_files_only=True, **kwargs)``; an unloadable directory is an EncoderError.

    Args:
        loader: a ``from_pretrained`` classmethod (model, tokenizer or image processor).
        weights: where the files are (:func:`resolve_weights`).
        name: the encoder's name, for the message.
        model_id: Hugging Face model id, for the message.
        local_flag: the flag that points at a local copy, for the message.
        **kwargs: forwarded to ``loader``.

    Raises:
        EncoderError: the directory lacks files the loader needs, or (a local directory) holds weights that do
            not fit the model (see :func:`missing_weights_error`).
    """
    try:
        return loader(str(weights.directory), local_files_only=True, **kwargs)
    except (RuntimeError, ValueError) as exc:  # a user's directory with another architecture's weights
        if not weights.local:
            raise
        raise missing_weights_error(name, model_id, str(weights.directory), exc, local_flag=local_flag) from exc
    except OSError as exc:  # transformers reports absent files as OSError
        if weights.local:
            raise missing_weights_error(name, model_id, str(weights.directory), exc, local_flag=local_flag) from exc
        raise EncoderError(
            f"encoder '{name}' could not load {model_id} from its cache snapshot {weights.directory} "
            f"({_first_line(exc)}); the download was incomplete. Fetch it again with "
            f"`{download_command(model_id, revision=weights.revision)}`."
        ) from exc
