"""``vlnav-probe umap ... --rerun REC.rrd``: the embedding map as a Rerun point cloud.

Reads the coordinates ``vlnav-probe umap`` saved (``umap_coords.npz``) and logs, statically:

- ``embedding_map/by_colour/{train,valid}``: the points coloured by target colour (a class per colour, named
  in an annotation context, so the viewer shows the colour's name);
- ``embedding_map/by_bearing/{train,valid}``: coloured by the privileged robot-frame bearing to the target
  (when the file has it), blue = right, red = left;
- ``embedding_map/by_turn/{train,valid}``: coloured by the expert's turn command ``(right - left) / 2``.

Every point carries its ``episode`` and ``step`` (and ``bearing_deg``, ``turn``), shown when it is hovered,
so a point leads back to the frame it came from (``vlnav-data view FILE --episode E``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.viz.recording import check_rrd_path, import_rerun, open_recording, side_panels, to_uint8_rgb

MAP = "embedding_map"
SPLITS = ("train", "valid")
POINT_RADIUS = 0.04


@dataclass(frozen=True, kw_only=True)
class MapRecordingResult:
    """What the recording holds: points per split and the colours named."""

    out: str
    coords: str
    num_points: dict[str, int]
    colours: list[str]
    properties: list[str]
    elapsed_s: float


def diverging(values: np.ndarray, scale: float) -> np.ndarray:
    """uint8 ``(N, 3)``: blue for ``-scale``, white for 0, red for ``+scale`` (clipped)."""
    v = np.clip(np.asarray(values, np.float64) / scale, -1.0, 1.0)[:, None]
    white = np.ones(3)
    rgb = np.where(
        v >= 0, white + v * (np.array([0.84, 0.15, 0.16]) - white), white - v * (np.array([0.13, 0.4, 0.75]) - white)
    )
    return np.round(255 * rgb).astype(np.uint8)


def record_embedding_map(coords: Path, out: Path) -> MapRecordingResult:
    """Write the recording of a ``umap_coords.npz``.

    Raises:
        ConfigError: Rerun missing, ``out`` not an .rrd, ``coords`` not written by ``vlnav-probe umap``.
    """
    from vlnav_data.sim import COLOR_PALETTE

    rr = import_rerun()
    check_rrd_path(out)
    t0 = time.perf_counter()
    coords = Path(coords)
    try:
        data = dict(np.load(coords, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read '{coords}' ({exc}); expected the umap_coords.npz of `vlnav-probe umap`"
        ) from exc
    need = [f"{s}_{k}" for s in SPLITS for k in ("xy", "episode_index", "step_index", "target_colour", "actions")]
    missing = [k for k in need if k not in data]
    if missing:
        raise ConfigError(f"'{coords}' lacks {', '.join(missing)}; expected the umap_coords.npz of `vlnav-probe umap`")
    colours = sorted({str(c) for s in SPLITS for c in data[f"{s}_target_colour"]})
    properties = ["colour", "turn"] + (["bearing"] if "train_privileged_bearing_rad" in data else [])
    grey = (0.5, 0.5, 0.5)
    context = rr.AnnotationContext(
        [(k, c or "unknown", to_uint8_rgb(COLOR_PALETTE.get(c, grey))) for k, c in enumerate(colours)]
    )
    import rerun.blueprint as rrb

    views = [rrb.Spatial2DView(origin=f"{MAP}/by_{p}", name=f"UMAP coloured by {p}") for p in properties]
    counts = {}
    with open_recording("vlnav-probe-umap", out, rrb.Blueprint(rrb.Grid(*views), *side_panels(None))) as (rec, _):
        rec.log(MAP, context, static=True)
        for split in SPLITS:
            xy = np.asarray(data[f"{split}_xy"], np.float32) * np.array([1.0, -1.0], np.float32)  # y up
            counts[split] = len(xy)
            names = [str(c) for c in data[f"{split}_target_colour"]]
            actions = np.asarray(data[f"{split}_actions"], np.float64)
            turn = (actions[:, 1] - actions[:, 0]) / 2.0
            links: dict[str, Any] = {
                "episode": np.asarray(data[f"{split}_episode_index"], np.int64),
                "step": np.asarray(data[f"{split}_step_index"], np.int64),
                "turn": turn,
            }
            bearing = data.get(f"{split}_privileged_bearing_rad")
            if bearing is not None:
                links["bearing_deg"] = np.degrees(np.asarray(bearing, np.float64))
            radii = [POINT_RADIUS] * len(xy)
            rec.log(
                f"{MAP}/by_colour/{split}",
                rr.Points2D(xy, class_ids=[colours.index(c) for c in names], radii=radii),
                rr.AnyValues(**links),
                static=True,
            )
            rec.log(
                f"{MAP}/by_turn/{split}",
                rr.Points2D(xy, colors=diverging(turn, 1.0), radii=radii),
                rr.AnyValues(**links),
                static=True,
            )
            if bearing is not None:
                rec.log(
                    f"{MAP}/by_bearing/{split}",
                    rr.Points2D(xy, colors=diverging(links["bearing_deg"], 90.0), radii=radii),
                    rr.AnyValues(**links),
                    static=True,
                )
    return MapRecordingResult(
        out=str(out),
        coords=str(coords),
        num_points=counts,
        colours=colours,
        properties=properties,
        elapsed_s=time.perf_counter() - t0,
    )
