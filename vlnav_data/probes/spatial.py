"""`vlnav-probe spatial`: does the embedding encode where the target is?

Two tests:

1. **Published protocol** (reference spec §5) on the file's valid rows: random frame pairs with the
   same target colour (and from different episodes), cosine distance between their embeddings,
   grouped by whether the target sits in the same coarse position cell. We have no detector, so the
   "cell" is the target's robot-frame bearing in thirds of the horizontal field of view (left /
   centre / right, frames with the target outside the view are left out) × distance band
   (``distance_edges_m``). Published SigLIP: same cell 0.0245 vs different cell 0.0310.
2. **Controlled renders**: the arena is rendered (``sim.render_views``) from poses that vary *only*
   the target's bearing (the robot turns in place, distance fixed) or *only* its distance (the robot
   moves along the line of sight, bearing 0), embedded with the file's encoder, and cosine distance
   to the reference view (bearing 0 / distance ``reference_distance_m``) is plotted against the
   bearing and distance differences. Left vs right: a logistic-regression classifier on the
   embeddings of mirrored views (bearing +b vs -b at the same spot), trained on some robot positions
   and tested on held-out positions, with a Wilson 95% interval; chance is 0.5. Turning in place also
   moves the walls in the view, so a classifier above chance shows that *something* in the view tells
   left from right, not necessarily the ball.

For the joint features the text is the published analysis prompt ``"Go to the {colour} ball"`` (it
states no direction, so any spatial signal comes from the image).

Modules: this one holds the config, the result and the pair protocol; the controlled renders are
:mod:`vlnav_data.probes.spatial_renders`, the figures and report :mod:`vlnav_data.probes.spatial_report`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.devices import check_device_name
from vlnav_data.errors import ConfigError, SchemaError
from vlnav_data.probes import labels as lab
from vlnav_data.probes.cosine import PUBLISHED_SIGLIP, PairTestResult, pair_test
from vlnav_data.probes.linear import check_common
from vlnav_data.probes.rows import load_probe_data
from vlnav_data.probes.spatial_renders import ControlledResult, run_controlled_renders
from vlnav_data.probes.spatial_report import plot_controlled, plot_pairs, write_spatial_report


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
        if self.num_pairs < 1:
            raise ConfigError(f"--num-pairs must be >= 1, got {self.num_pairs}")
        if self.positions_per_colour < 2:
            raise ConfigError(
                f"--positions-per-colour must be >= 2 (train and test positions), got {self.positions_per_colour}"
            )
        if self.bearing_steps < 3 or self.bearing_steps % 2 == 0:
            raise ConfigError(f"--bearing-steps must be odd and >= 3 (0 in the middle), got {self.bearing_steps}")
        if self.distance_steps < 2:
            raise ConfigError(f"--distance-steps must be >= 2, got {self.distance_steps}")
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


def run_spatial_probe(config: SpatialProbeConfig) -> SpatialProbeResult:
    """Run the published pair protocol on valid rows and (optionally) the controlled renders.

    Raises:
        ConfigError: an encoder the file lacks, an unrenderable sim config without ``--preset``.
        SchemaError: no privileged state (the position cells need it), empty split, shared episodes.
    """
    t0 = time.perf_counter()
    data = load_probe_data(config.path, encoder=config.encoder, features=config.features, need_state=True)
    rows = data.valid
    if rows.privileged_state is None:
        raise SchemaError(f"'{config.path}' has no obs/privileged_state; the position cells need it")
    bearing, distance = lab.robot_frame_target(rows.privileged_state, data.state_names)
    hfov = float(data.sim_config.get("camera_hfov_rad", math.radians(114.9)))
    half_deg = math.degrees(hfov / 2)
    visible = np.abs(np.degrees(bearing)) < half_deg
    if not np.any(visible):
        raise SchemaError(
            f"no valid frame of '{config.path}' has its target inside the {2 * half_deg:.0f}° field of view"
        )
    third = 2 * half_deg / 3
    cells = lab.coarse_cell(bearing, distance, (-third / 2, third / 2), config.distance_edges_m)
    colours = rows.target_colour
    pairs, dists = pair_test(
        rows.features[visible],
        colours[visible],
        cells[visible],
        rows.episode_index[visible],
        num_pairs=config.num_pairs,
        seed=config.seed,
    )
    cell_def = (
        f"bearing thirds of the {2 * half_deg:.1f}° view (edges ±{third / 2:.1f}°; target outside the view left out) "
        f"× distance bands at {', '.join(f'{e:g}' for e in config.distance_edges_m)} m"
    )
    controlled = curves = None
    if config.controlled:
        controlled, curves = run_controlled_renders(config, data.encoder, data.encoder_spec, data.sim_config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = [plot_pairs(dists, out / "spatial_pairs.png")]
    if controlled is not None and curves is not None:
        figures.append(plot_controlled(controlled, curves, out / "spatial_controlled.png"))
    published = {k: {"n": v[0], "mean": v[1], "std": v[2]} for k, v in PUBLISHED_SIGLIP.items()}
    result = SpatialProbeResult(
        dataset=str(config.path),
        encoder=data.encoder,
        features=data.features,
        cell_definition=cell_def,
        pairs=pairs,
        published_siglip=published,
        controlled=controlled,
        figures=figures,
        report=out / "report.md",
        elapsed_s=time.perf_counter() - t0,
        config={k: getattr(config, k) for k in config.__dataclass_fields__},
    )
    write_spatial_report(out, result)
    return result
