"""The pair protocol of ``vlnav-probe spatial`` and :func:`run_spatial_probe` (the protocol:
:mod:`vlnav_data.probes.spatial`)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from vlnav_data.errors import SchemaError
from vlnav_data.jsonio import fields_of
from vlnav_data.probes import labels as lab
from vlnav_data.probes.cosine import PUBLISHED_SIGLIP, pair_test
from vlnav_data.probes.rows import load_probe_data
from vlnav_data.probes.spatial.config import SpatialProbeConfig, SpatialProbeResult
from vlnav_data.probes.spatial.renders import run_controlled_renders
from vlnav_data.probes.spatial.report import plot_controlled, plot_pairs, write_spatial_report


def refuse_without_arena(path: Path) -> None:
    """The spatial probe's one line for a file without an arena (before any work).

    Raises:
        NoArenaError: the file was imported (no privileged positions to pair frames by, no arena to render).
    """
    from vlnav_data.dataset import DatasetReader

    with DatasetReader(path) as reader:
        reader.require_arena(
            "the spatial probe",
            "it pairs frames by the robot's position in the arena and renders controlled views of it; probe an "
            "imported file with `vlnav-probe linear`, `knn` or `umap`",
        )


def run_spatial_probe(config: SpatialProbeConfig) -> SpatialProbeResult:
    """Run the published pair protocol on valid rows and (optionally) the controlled renders.

    Raises:
        ConfigError: an encoder the file lacks, an unrenderable sim config without ``--preset``.
        SchemaError: no privileged state (the position cells need it), empty split, shared episodes.
    """
    t0 = time.perf_counter()
    refuse_without_arena(config.path)
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
        config=fields_of(config),
    )
    write_spatial_report(out, result)
    return result
