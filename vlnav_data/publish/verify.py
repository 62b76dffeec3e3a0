"""``vlnav-data verify DIR``: is a Hub folder (published or downloaded) whole and unaltered?

Checks, all of them, every time (problems are listed, not raised):

- ``SHA256SUMS`` exists and parses; every file it lists exists and has that sha256; every file in the
  folder is listed (local-only ``result.json`` and ``.cache/`` aside);
- ``README.md`` exists; every relative link or image in it points at an existing file; every
  ``data_files`` pattern of its ``configs`` front matter matches at least one file;
- when ``meta/info.json`` exists (a LeRobot export): the data parquet files hold ``total_frames`` rows,
  the episodes parquet holds ``total_episodes`` rows, and every data and video file an episode row
  points at exists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnav_data.errors import ConfigError
from vlnav_data.publish.checksums import SUMS_NAME, folder_files, read_sha256sums, sha256_file
from vlnav_data.publish.extras import require

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    """``vlnav-data verify DIR``.

    Attributes:
        folder: the Hub folder to check.
    """

    folder: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))
        if not self.folder.is_dir():
            raise ConfigError(
                f"'{self.folder}' is not a directory; expected a folder written by `vlnav-data publish` "
                "(or downloaded from the Hub)"
            )


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """What ``verify`` found.

    Attributes:
        folder: the folder checked.
        files_checked: files whose sha256 was computed and compared.
        references_checked: card links and ``data_files`` patterns checked.
        problems: every problem found (empty = the folder verifies).
    """

    folder: Path
    files_checked: int
    references_checked: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def card_references(card: str) -> tuple[list[str], list[str]]:
    """Relative file links in a card's body and the ``data_files`` patterns of its front matter."""
    yaml = require("yaml")
    patterns: list[str] = []
    body = card
    if card.startswith("---\n") and (end := card.find("\n---\n", 4)) >= 0:
        meta = yaml.safe_load(card[4:end]) or {}
        body = card[end + 5 :]
        for cfg in meta.get("configs") or []:
            files = cfg.get("data_files")
            entries = files if isinstance(files, list) else [files]
            for entry in entries:
                if isinstance(entry, dict):
                    paths = entry.get("path")
                    patterns.extend(paths if isinstance(paths, list) else [paths])
                elif isinstance(entry, str):
                    patterns.append(entry)
    body = re.sub(r"```.*?```", "", body, flags=re.S)  # links inside code blocks are not links
    links = []
    for target in _LINK.findall(body):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#") or target.startswith("/"):
            continue
        links.append(target.split("#", 1)[0].split("?", 1)[0])
    return links, [p for p in patterns if p]


def _lerobot_problems(folder: Path) -> list[str]:
    pq = require("pyarrow.parquet")
    problems: list[str] = []
    try:
        info: dict[str, Any] = json.loads((folder / "meta/info.json").read_text())
    except ValueError as exc:
        return [f"meta/info.json is not valid JSON ({exc})"]
    data_files = sorted(folder.glob("data/*/*.parquet"))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in data_files)
    if rows != info.get("total_frames"):
        problems.append(
            f"data/*/*.parquet hold {rows} rows but meta/info.json says total_frames={info.get('total_frames')}"
        )
    episode_files = sorted(folder.glob("meta/episodes/*/*.parquet"))
    if not episode_files:
        return [*problems, "meta/episodes/*/*.parquet is missing (LeRobot v3.0 episode index)"]
    episodes = [row for p in episode_files for row in pq.read_table(p).to_pylist()]
    if len(episodes) != info.get("total_episodes"):
        problems.append(
            f"meta/episodes hold {len(episodes)} rows but meta/info.json says "
            f"total_episodes={info.get('total_episodes')}"
        )
    wanted: set[str] = set()
    for row in episodes:
        wanted.add(info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]))
        for key, ft in info.get("features", {}).items():
            if ft.get("dtype") == "video" and info.get("video_path"):
                wanted.add(
                    info["video_path"].format(
                        video_key=key,
                        chunk_index=row[f"videos/{key}/chunk_index"],
                        file_index=row[f"videos/{key}/file_index"],
                    )
                )
    for rel in sorted(wanted):
        if not (folder / rel).is_file():
            problems.append(f"'{rel}' is referenced by meta/episodes but missing")
    return problems


def verify_folder(config: VerifyConfig) -> VerifyReport:
    """Run every check on ``config.folder`` (see the module docstring)."""
    folder = config.folder
    problems: list[str] = []
    checked = 0
    present = set(folder_files(folder))
    sums_path = folder / SUMS_NAME
    if not sums_path.is_file():
        problems.append(f"{SUMS_NAME} is missing: nothing can be checked against it (run `vlnav-data publish` again)")
    else:
        sums, parse_problems = read_sha256sums(sums_path)
        problems.extend(parse_problems)
        for rel, digest in sums.items():
            path = folder / rel
            if not path.is_file():
                problems.append(f"'{rel}' is listed in {SUMS_NAME} but missing")
                continue
            actual = sha256_file(path)
            checked += 1
            if actual != digest:
                problems.append(f"'{rel}' is corrupt or modified: sha256 {actual}, expected {digest}")
        for rel in sorted(present - set(sums)):
            problems.append(f"'{rel}' is not listed in {SUMS_NAME} (an extra or renamed file)")
    references = 0
    readme = folder / "README.md"
    if not readme.is_file():
        problems.append("README.md (the dataset card) is missing")
    else:
        links, patterns = card_references(readme.read_text(encoding="utf-8"))
        for link in links:
            references += 1
            if not (folder / link).exists():
                problems.append(f"README.md links to '{link}', which does not exist")
        for pattern in patterns:
            references += 1
            if not any(folder.glob(pattern)):
                problems.append(f"README.md configs data_files '{pattern}' matches no file")
    if (folder / "meta/info.json").is_file():
        problems.extend(_lerobot_problems(folder))
    return VerifyReport(folder=folder, files_checked=checked, references_checked=references, problems=tuple(problems))
