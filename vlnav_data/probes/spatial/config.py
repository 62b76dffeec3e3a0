"""Config and result types of ``vlnav-probe spatial`` (the protocol: :mod:`vlnav_data.probes.spatial`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, check_at_least
from vlnav_data.probes.cosine import PairTestResult
from vlnav_data.probes.linear import check_common

#: Largest cosine distance between stored and re-computed image embeddings accepted as "same encoder".
ENCODER_CHECK_TOLERANCE = 0.01


@dataclass(frozen=True, kw_only=True)
class SpatialProbeConfig:
    """Configuration of ``vlnav-probe spatial``.

    Attributes:
        path: the dataset file.
        out_dir: where result.json, report.md and figures go.
        encoder: encoder to probe; ``None``: the file's only encoder. The controlled part rebuilds it from the
            file's record with ``vlnav_data.encoders.rebuild_encoder`` (same weights, or refused).
        features: ``joint`` or ``image`` (``text`` has no spatial content to test).
        num_pairs: random pairs drawn for the published protocol (published: 400,000).
        distance_edges_m: distance band edges of the coarse cell.
        controlled: also run the controlled renders (needs the simulator and the encoder's weights).
        preset: arena preset to render; ``None`` = the file's recorded sim config.
        positions_per_colour: robot positions per target sphere in the controlled renders.
        bearing_steps: bearings in the sweep (odd, so that 0 is included), spanning ±``max_bearing_frac``
            of the half field of view.
        max_bearing_frac: how far into the field of view the sweep goes (the ball stays in view).
        distance_steps: distances in the distance sweep, from ``min_distance_m`` to ``max_distance_m``.
        reference_distance_m: distance of the bearing sweep and the distance sweep's reference view.
        min_distance_m, max_distance_m: distance sweep range.
        model_path: local weights directory for the encoder (real encoders; must hash to the recorded
            content hash).
        encoder_dtype: ``fp32``, ``bf16`` or ``auto`` for the rebuilt encoder; None: the file's recorded dtype.
        trust_remote_code: allow an ``hf:`` encoder recorded with ``trust_remote_code`` to run its code.
        seed: seeds the pair draw, the robot positions and the classifier split.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for rendering and encoding.
    """

    path: Path
    out_dir: Path
    encoder: str | None = None
    features: str = "joint"
    num_pairs: int = 400_000
    distance_edges_m: tuple[float, ...] = (0.8, 1.6)
    controlled: bool = True
    preset: str | None = None
    positions_per_colour: int = 6
    bearing_steps: int = 11
    max_bearing_frac: float = 0.8
    distance_steps: int = 7
    reference_distance_m: float = 1.5
    min_distance_m: float = 0.5
    max_distance_m: float = 2.3
    model_path: Path | None = None
    encoder_dtype: str | None = None
    trust_remote_code: bool = False
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_common(self.path, self.out_dir, self.features, self.seed)
        if self.features == "text":
            raise ConfigError(
                "--features text has no spatial content (one text embedding per instruction); use joint or image"
            )
        check_at_least("--num-pairs", self.num_pairs, 1)
        if self.positions_per_colour < 2:
            raise ConfigError(
                f"--positions-per-colour must be >= 2 (train and test positions), got {self.positions_per_colour}"
            )
        if self.bearing_steps < 3 or self.bearing_steps % 2 == 0:
            raise ConfigError(f"--bearing-steps must be odd and >= 3 (0 in the middle), got {self.bearing_steps}")
        check_at_least("--distance-steps", self.distance_steps, 2)
        if not 0.0 < self.max_bearing_frac <= 1.0:
            raise ConfigError(f"max_bearing_frac must be in (0, 1], got {self.max_bearing_frac}")
        if not 0.0 < self.min_distance_m < self.max_distance_m:
            raise ConfigError(
                f"need 0 < min_distance_m < max_distance_m, got {self.min_distance_m}, {self.max_distance_m}"
            )
        if list(self.distance_edges_m) != sorted(self.distance_edges_m):
            raise ConfigError(f"distance_edges_m must be increasing, got {self.distance_edges_m}")
        check_device_name(self.device, "--device")
        if self.encoder_dtype not in (None, "auto", "fp32", "bf16"):
            raise ConfigError(
                f"--encoder-dtype must be auto, fp32 or bf16 (default: the file's recorded dtype), got "
                f"'{self.encoder_dtype}'"
            )


@dataclass(frozen=True, kw_only=True)
class ControlledResult:
    """The controlled-render part.

    Attributes:
        bearing_deg: the sweep's bearings (deg, + = left); bearing_cosine_distance: mean over colours and
            positions of the distance to the bearing-0 view, same order.
        distance_m: the distance sweep; distance_cosine_distance: mean distance to the reference view.
        left_right_accuracy: held-out accuracy of the left/right classifier; left_right_ci95: Wilson interval;
            left_right_n: held-out views; chance 0.5.
        num_renders: views rendered and embedded.
        encoder_check_max_cosine_distance: the rebuilt encoder re-embeds the first frames of the file's first
            valid episode; the largest cosine distance to the stored ``obs/<enc>_image`` rows (near 0 = same
            encoder and weights as the file; above :data:`ENCODER_CHECK_TOLERANCE`, or ``None`` when the
            widths differ, the report flags it: the curves then describe the rebuilt encoder, not the file).
    """

    preset: str
    bearing_deg: list[float]
    bearing_cosine_distance: list[float]
    distance_m: list[float]
    distance_cosine_distance: list[float]
    left_right_accuracy: float
    left_right_ci95: tuple[float, float]
    left_right_n: int
    num_renders: int
    render_s: float
    encode_s: float
    encoder_check_max_cosine_distance: float | None


@dataclass(frozen=True, kw_only=True)
class SpatialProbeResult:
    """What ``vlnav-probe spatial`` found (result.json)."""

    dataset: str
    encoder: str
    features: str
    cell_definition: str
    pairs: PairTestResult
    published_siglip: dict[str, dict[str, float]]
    controlled: ControlledResult | None
    figures: list[Path]
    report: Path
    elapsed_s: float
    config: dict[str, Any] = field(default_factory=dict)
