"""The configs and result of ``vlnav-data import lerobot|robomimic`` (one config dataclass per command)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from vlnav_data.errors import ConfigError

DEFAULT_VALID_FRACTION = 0.1


@dataclass(frozen=True, kw_only=True)
class ImportProgress:
    """Reported after every committed episode.

    Attributes:
        episodes_done / episodes_total: committed episodes of the selection (resumed ones included).
        frames_done / frames_total: their frames.
        frames_per_s: frames imported per second by this run.
    """

    episodes_done: int
    episodes_total: int
    frames_done: int
    frames_total: int
    frames_per_s: float


ProgressFn = Callable[[ImportProgress], None]


@dataclass(frozen=True, kw_only=True)
class ImportOptions:
    """What every ``vlnav-data import`` command shares.

    Attributes:
        out: the ``vlnav-demos`` file to write.
        camera: the camera kept as ``obs/rgb``; None: the source's only one.
        valid_fraction: share of episodes put in ``/mask/valid`` when the source names no validation split.
        split_seed: seed of that assignment (:func:`vlnav_data.dataset.splits.episode_split`).
        resume / overwrite: continue ``OUT.partial`` / replace ``OUT``.
    """

    kind: ClassVar[str]
    out: str
    camera: str | None = None
    valid_fraction: float = DEFAULT_VALID_FRACTION
    split_seed: int = 0
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"--valid-fraction must be in [0, 1), got {self.valid_fraction}")
        if self.split_seed < 0:
            raise ConfigError(f"--split-seed must be >= 0, got {self.split_seed}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite exclude each other; pass one")

    def build_config(self) -> dict[str, Any]:
        """What resuming must find unchanged (the output and its mode flags aside)."""
        mode_fields = ("resume", "overwrite", "out")
        return {"kind": self.kind, **{k: v for k, v in dataclasses.asdict(self).items() if k not in mode_fields}}


@dataclass(frozen=True, kw_only=True)
class LeRobotImportConfig(ImportOptions):
    """``vlnav-data import lerobot ROOT --out FILE`` (the shared fields: :class:`ImportOptions`).

    Attributes:
        root: a LeRobot v3.0 dataset directory, or a Hugging Face repo id (``owner/name``) found offline in
            LeRobot's cache (``$HF_LEROBOT_HOME``) or the Hub cache (``$HF_HUB_CACHE``).
        camera: ``observation.images.<cam>``.
        episodes: which source episodes, e.g. ``"0:100"``, ``"3,5,9"``, ``"0:10,20"`` (None: all).
    """

    kind: ClassVar[str] = "lerobot"
    root: str
    episodes: str | None = None


@dataclass(frozen=True, kw_only=True)
class RobomimicImportConfig(ImportOptions):
    """``vlnav-data import robomimic FILE --out FILE`` (the shared fields: :class:`ImportOptions`).

    Attributes:
        file: a robomimic HDF5 file (``data/demo_N/{actions, obs/<key>, rewards, dones}``, ``mask/``).
        camera: the image observation (``agentview_image``).
        instruction: the task string of every step; None: read it from the file (see
            :data:`vlnav_data.imports.robomimic.INSTRUCTION_ATTRS`).
    """

    kind: ClassVar[str] = "robomimic"
    file: str
    instruction: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.instruction is not None and not self.instruction.strip():
            raise ConfigError("--instruction must not be empty; pass the task in words, e.g. 'lift the cube'")


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """What an import wrote.

    Attributes:
        path: the ``vlnav-demos`` file.
        kind: ``lerobot`` or ``robomimic``; source_id: the source's id.
        camera: the source camera kept as ``obs/rgb``.
        num_episodes / num_steps: in the file; resumed_episodes: of those, committed by an earlier run.
        splits: split -> episodes.
        action_dim: A; features: the numeric features kept (``features_json`` keys).
        skipped: source features not imported, with why.
        seconds / frames_per_s: this run's wall time and frames per second.
    """

    path: Path
    kind: str
    source_id: str
    camera: str
    num_episodes: int
    num_steps: int
    resumed_episodes: int
    splits: dict[str, int]
    action_dim: int
    features: tuple[str, ...]
    skipped: dict[str, str]
    seconds: float
    frames_per_s: float


def parse_episodes(text: str | None, total: int) -> list[int]:
    """The episode indices of ``--episodes`` (``"a:b"`` ranges, end exclusive, and single indices, by commas).

    Raises:
        ConfigError: unparsable, empty, out of ``range(total)``, or an index given twice.
    """
    if text is None:
        return list(range(total))
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                a, b = part.split(":", 1)
                lo, hi = int(a) if a.strip() else 0, int(b) if b.strip() else total
                out.extend(range(lo, hi))
                bad = lo < 0 or hi > total or lo >= hi
            else:
                out.append(int(part))
                bad = not 0 <= out[-1] < total
        except ValueError:
            bad = True
        if bad:
            raise ConfigError(
                f"--episodes expects indices and ranges in 0..{total - 1} such as '0:10,12' (end exclusive), "
                f"got '{part}' in '{text}'"
            )
    if len(set(out)) != len(out):
        raise ConfigError(f"--episodes names an episode twice in '{text}'; list each once")
    return out
