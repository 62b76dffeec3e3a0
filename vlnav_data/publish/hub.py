"""``vlnav-data publish``: assemble a Hugging Face Hub dataset folder and upload it.

The folder (``--out``)::

    README.md                 dataset card (render_card + LeRobot/Hub sections, YAML front matter)
    sample_frames.png         the card's frame strip
    <name>.h5                 the vlnav-demos file, or <stem>-0000k-of-0000n.h5 shards below 20 GB
    meta/ data/ videos/       the LeRobot v3.0 export
    SHA256SUMS                sha256 of every file above
    result.json               this command's result (local only: not checksummed, not uploaded)

Then, unless ``dry_run``: ``create_repo(repo_type="dataset")``, the resumable folder upload (:func:`upload_call`:
``upload_large_folder``, or ``upload_folder`` on huggingface_hub 2.x where it took that role) and the git tag
``v3.0`` that LeRobot resolves the dataset revision from (``dataset-ecosystem.md`` §3.3). The token and
``HF_HUB_OFFLINE`` are checked before any work and before any network call; a network or Hub failure
during the upload becomes a :class:`~vlnav_data.errors.PublishError` (one ``error:`` line in the CLI)
that names the repository and what to do.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.dataset import schema
from vlnav_data.dataset.reader import DatasetReader
from vlnav_data.dataset.validate import validate_dataset
from vlnav_data.errors import ConfigError, PublishError, SchemaError
from vlnav_data.publish.checksums import LOCAL_ONLY, SUMS_NAME, folder_files, write_sha256sums
from vlnav_data.publish.extras import require
from vlnav_data.publish.folders import prepare_out_dir
from vlnav_data.publish.hub_card import hub_card
from vlnav_data.publish.lerobot import (
    CODEBASE_VERSION,
    LeRobotExportConfig,
    LeRobotExportResult,
    LeRobotOptions,
    check_image_options,
    write_lerobot,
)
from vlnav_data.publish.shards import HUB_FILE_LIMIT_BYTES, Shard, write_shards
from vlnav_data.publish.video import VIDEO_CODECS

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
SHOWN_VIOLATIONS = 5


def missing_token_message(token_path: str) -> str:
    """The error when no Hugging Face token is available."""
    return (
        f"no Hugging Face token: HF_TOKEN is not set and no token is stored at '{token_path}'; log in with "
        "`hf auth login` (or set HF_TOKEN to a write token from https://huggingface.co/settings/tokens), "
        "or pass --dry-run to assemble the folder without uploading"
    )


@dataclass(frozen=True, kw_only=True)
class PublishConfig(LeRobotOptions):
    """``vlnav-data publish FILE --repo-id ORG/NAME``: the :class:`~vlnav_data.publish.lerobot.LeRobotOptions` of
    the LeRobot export in the folder, plus

    Attributes:
        dataset: the complete, valid ``vlnav-demos`` file to publish.
        repo_id: Hub dataset repository ``ORG/NAME``.
        out_dir: the folder to assemble (default: ``./NAME-hub``); new or empty unless ``overwrite``.
        dry_run: assemble and checksum the folder, upload nothing (no token needed).
        private: create the Hub repository private.
        overwrite: replace the contents of a non-empty ``out_dir``.
        license: Hugging Face licence id of the data (card front matter).
        shard_max_bytes: every HDF5 file in the folder stays below this (Hub recommendation: 20 GB).
    """

    dataset: Path
    repo_id: str
    out_dir: Path | None = None
    dry_run: bool = False
    private: bool = False
    overwrite: bool = False
    license: str = "apache-2.0"
    shard_max_bytes: int = HUB_FILE_LIMIT_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset", Path(self.dataset))
        if not _REPO_ID.match(self.repo_id) or "--" in self.repo_id or ".." in self.repo_id:
            raise ConfigError(
                f"--repo-id must look like ORG/NAME (letters, digits, '-', '_', '.'), got '{self.repo_id}'"
            )
        if self.out_dir is None:
            object.__setattr__(self, "out_dir", Path(f"{self.repo_id.split('/')[1]}-hub"))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "encoders", tuple(self.encoders))
        check_image_options(self.images, self.video_codec, self.pix_fmt)
        if self.shard_max_bytes <= 0:
            raise ConfigError(f"the shard size limit must be positive, got {self.shard_max_bytes} bytes")
        if not self.license.strip():
            raise ConfigError("--license must name a Hugging Face licence id such as apache-2.0 or cc-by-4.0")


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    """What ``publish`` did.

    Attributes:
        out_dir: the assembled folder.
        repo_id: the Hub repository.
        uploaded: False for a dry run.
        url: the dataset page (None for a dry run).
        tag: the git tag created on the Hub (``v3.0``), None for a dry run.
        files: files in the folder (as listed in SHA256SUMS, plus SHA256SUMS).
        total_bytes: their size.
        shards: the HDF5 files.
        export: the LeRobot export.
        seconds: wall time.
    """

    out_dir: Path
    repo_id: str
    uploaded: bool
    url: str | None
    tag: str | None
    files: int
    total_bytes: int
    shards: tuple[Shard, ...]
    export: LeRobotExportResult
    seconds: float


def require_token() -> str:
    """Return the Hugging Face token (``HF_TOKEN`` or the stored login) without any network call.

    Raises:
        ConfigError: no token (the message says how to log in), or ``HF_HUB_OFFLINE`` forbids the upload.
    """
    hf = require("huggingface_hub")
    constants = require("huggingface_hub.constants")
    token = hf.get_token()
    if not token:
        raise ConfigError(missing_token_message(str(constants.HF_TOKEN_PATH)))
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(
            "HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it (`unset HF_HUB_OFFLINE`) to publish, "
            "or pass --dry-run to assemble the folder without uploading"
        )
    return token


def check_publishable(path: Path) -> None:
    """Refuse unfinished (``.partial``), incomplete or invalid files.

    Raises:
        SchemaError: the file is a ``.partial`` build or breaks a rule of ``vlnav-data validate``.
    """
    if path.name.endswith(schema.PARTIAL_SUFFIX):
        raise SchemaError(
            f"'{path}' is an unfinished build ({schema.PARTIAL_SUFFIX}); finish it with `vlnav-data build --resume` "
            "and publish the completed file"
        )
    violations = validate_dataset(path)
    if violations:
        shown = "; ".join(str(v) for v in violations[:SHOWN_VIOLATIONS])
        more = f" (and {len(violations) - SHOWN_VIOLATIONS} more)" if len(violations) > SHOWN_VIOLATIONS else ""
        raise SchemaError(
            f"'{path}' is not a valid dataset, so it cannot be published: {len(violations)} problem(s): "
            f"{shown}{more}; run `vlnav-data validate {path}` for the full list"
        )


def network_errors() -> tuple[type[BaseException], ...]:
    """What a Hub call raises when the network or the server fails.

    ``OSError`` covers ``huggingface_hub``'s ``HfHubHTTPError`` (HTTP status errors), its
    ``OfflineModeIsEnabled`` and socket errors; the transport errors of the HTTP client it uses
    (``httpx2`` / ``httpx`` / ``requests``, whichever is installed) are added.
    """
    import importlib

    errors: list[type[BaseException]] = [OSError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "RequestException")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def upload(folder: Path, repo_id: str, *, token: str, private: bool) -> str:
    """Create the dataset repository, upload the folder and tag it ``v3.0``; return the dataset URL.

    Raises:
        PublishError: a network or Hub failure; the message names the repository and what to do.
    """
    try:
        return _upload(folder, repo_id, token=token, private=private)
    except network_errors() as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PublishError(
            f"uploading '{folder}' to https://huggingface.co/datasets/{repo_id} failed ({type(exc).__name__}: "
            f"{reason}); the folder was assembled and checksummed but not published: check the network and "
            "`hf auth whoami`, then run the same command again with --overwrite"
        ) from exc


def upload_call(api: Any, folder: Path, repo_id: str, *, private: bool) -> tuple[str, dict[str, Any]]:
    """The resumable folder upload the installed ``huggingface_hub`` offers: ``(method name, keyword arguments)``.

    ``HfApi.upload_large_folder`` (huggingface_hub 0.25 to 1.x) splits many-GB shards into resumable tasks
    (hash, pre-upload, commit; progress cached in ``<folder>/.cache/huggingface``), several workers and several
    commits. huggingface_hub 2.x removed it: its ``upload_folder`` does the same through ``hf_xet`` (streamed,
    committed in batches, resumed by calling it again), so that one is used there. Either way a failed upload
    is resumed by running ``publish`` again: files already on the Hub are skipped or deduplicated.
    """
    ignore = [name for name in LOCAL_ONLY if name != ".cache"] + [".cache/**"]
    common = {"repo_id": repo_id, "folder_path": folder, "repo_type": "dataset", "ignore_patterns": ignore}
    if hasattr(api, "upload_large_folder"):
        return "upload_large_folder", {**common, "private": private}
    return "upload_folder", {**common, "commit_message": f"vlnav-data publish ({CODEBASE_VERSION})"}


def _upload(folder: Path, repo_id: str, *, token: str, private: bool) -> str:
    hf = require("huggingface_hub")
    api = hf.HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    method, kwargs = upload_call(api, folder, repo_id, private=private)
    getattr(api, method)(**kwargs)
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    if any(tag.name == CODEBASE_VERSION for tag in refs.tags):
        api.delete_tag(repo_id, tag=CODEBASE_VERSION, repo_type="dataset")  # move it to the new commit
    api.create_tag(repo_id, tag=CODEBASE_VERSION, repo_type="dataset")
    return f"https://huggingface.co/datasets/{repo_id}"


def publish_dataset(config: PublishConfig) -> PublishResult:
    """Assemble the Hub folder and upload it unless ``config.dry_run`` (see the module docstring).

    Raises:
        SchemaError: the input is missing, unfinished or invalid.
        ConfigError: no token or ``HF_HUB_OFFLINE`` (without ``dry_run``), a non-empty ``out_dir`` without
            ``overwrite``, an unknown encoder, or a missing ``hub`` extra.
        PublishError: the upload failed (network, permissions, server).
    """
    started = time.perf_counter()
    for module in ("pyarrow", "datasets", "huggingface_hub", "yaml") + (("av",) if config.images == "video" else ()):
        require(module)
    check_publishable(config.dataset)
    token = None if config.dry_run else require_token()
    assert config.out_dir is not None
    out = prepare_out_dir(config.out_dir, overwrite=config.overwrite, keep=[config.dataset])
    export_config = LeRobotExportConfig(dataset=config.dataset, out_dir=out, overwrite=True, **config.lerobot_options())
    with DatasetReader(config.dataset) as reader:
        export = write_lerobot(reader, out, export_config)
    shards = write_shards(config.dataset, out, config.shard_max_bytes)
    video: dict[str, Any] | None = None
    if config.images == "video":
        codec = VIDEO_CODECS[config.video_codec]
        video = {
            "codec": codec.codec,
            "encoder": codec.name,
            "library": codec.library,
            "licence": codec.licence,
            "pix_fmt": export.pix_fmt,
            "crf": config.crf,
        }
    hub_card(
        config.dataset, out, repo_id=config.repo_id, license=config.license, export=export, shards=shards, video=video
    )
    write_sha256sums(out)
    listed = folder_files(out)
    total = sum((out / rel).stat().st_size for rel in listed) + (out / SUMS_NAME).stat().st_size
    url = None
    if token is not None:
        url = upload(out, config.repo_id, token=token, private=config.private)
    return PublishResult(
        out_dir=out,
        repo_id=config.repo_id,
        uploaded=url is not None,
        url=url,
        tag=CODEBASE_VERSION if url is not None else None,
        files=len(listed) + 1,
        total_bytes=total,
        shards=tuple(shards),
        export=export,
        seconds=time.perf_counter() - started,
    )
