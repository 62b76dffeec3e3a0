"""The top-down map of a recording: arena bounds and walls, spheres in their colours, the target, robots.

Map coordinates are centimetres in Rerun's 2-D image convention (u right, v down), oriented like the
robot's view from behind its start: the arena's +x (forward, towards the spheres) points up the screen and
+y (the robot's left) to the left: ``u = -100 y``, ``v = -100 x``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlnav_data.viz.recording import import_rerun, to_uint8_rgb

MAP = "map"
CM_PER_M = 100.0
ROBOT_ARROW_M = 0.15
TRAIL_RGB = (0.1, 0.1, 0.1)


def recorded_arena(sim_config: Any) -> Any:
    """The arena a file was recorded in, or None for a file from elsewhere (another simulator, LeRobot, ...).

    A record whose fields are all :class:`~vlnav_data.sim.ArenaConfig`'s is the arena's (rebuilt by
    :func:`~vlnav_data.sim.arena_config_from_json`); anything else gets the map without the arena.
    """
    import dataclasses

    from vlnav_data.sim import ArenaConfig, arena_config_from_json

    payload = sim_config.get("arena", sim_config) if isinstance(sim_config, dict) else None
    names = {f.name for f in dataclasses.fields(ArenaConfig)} | {"preset"}
    if not isinstance(payload, dict) or not payload or not set(payload) <= names:
        return None
    return arena_config_from_json(sim_config)


def to_map(xy_m: np.ndarray) -> np.ndarray:
    """Arena ``(..., 2)`` ``[x_m, y_m]`` -> map ``(..., 2)`` ``[u, v]`` (centimetres, +x up, +y left)."""
    xy = np.asarray(xy_m, dtype=np.float64)
    return np.stack([-CM_PER_M * xy[..., 1], -CM_PER_M * xy[..., 0]], axis=-1).astype(np.float32)


def heading_to_map(yaw_rad: np.ndarray, length_m: float = ROBOT_ARROW_M) -> np.ndarray:
    """Arrow vectors on the map for headings ``yaw_rad`` (arena frame)."""
    yaw = np.asarray(yaw_rad, dtype=np.float64)
    return to_map(length_m * np.stack([np.cos(yaw), np.sin(yaw)], axis=-1))


def circle(center_xy_m: np.ndarray, radius_m: float, segments: int = 48) -> np.ndarray:
    """A closed polyline ``(segments + 1, 2)`` on the map around an arena point."""
    a = np.linspace(0.0, 2.0 * np.pi, segments + 1)
    pts = np.asarray(center_xy_m, np.float64)[None, :] + radius_m * np.stack([np.cos(a), np.sin(a)], axis=1)
    return to_map(pts)


def log_arena(rec: Any, arena: Any) -> None:
    """Static: the out-of-bounds rectangle (dashed in the viewer's grey) and the visual walls."""
    rr = import_rerun()
    (x0, x1), (y0, y1) = arena.bounds_x_m, arena.bounds_y_m
    corners = to_map(np.array([[x0, y0], [x0, y1], [x1, y1], [x1, y0], [x0, y0]]))
    rec.log(f"{MAP}/bounds", rr.LineStrips2D([corners], colors=[[120, 120, 120]], labels=["bounds"]), static=True)
    walls = [to_map(np.array([[a, b], [c, d]])) for a, b, c, d in arena.wall_segments_xy_m]
    if walls:
        rec.log(f"{MAP}/walls", rr.LineStrips2D(walls, colors=[[90, 90, 90]], radii=[2.0]), static=True)


def log_spheres(
    rec: Any,
    sphere_xy_m: np.ndarray,
    colour_rgb: np.ndarray,
    colour_names: list[str],
    target_index: int,
    sphere_radius_m: float,
    success_radius_xy_m: float,
) -> None:
    """At the current time: every sphere as a disc in its colour, the target ringed by its success disc."""
    rr = import_rerun()
    rec.log(
        f"{MAP}/spheres",
        rr.Points2D(
            to_map(sphere_xy_m),
            radii=[CM_PER_M * sphere_radius_m] * len(sphere_xy_m),
            colors=[to_uint8_rgb(c) for c in colour_rgb],
            labels=list(colour_names),
        ),
    )
    rec.log(
        f"{MAP}/target",
        rr.LineStrips2D(
            [circle(sphere_xy_m[target_index], success_radius_xy_m)],
            colors=[to_uint8_rgb(colour_rgb[target_index])],
            labels=["target"],
        ),
    )


def log_target_only(rec: Any, target_xy_m: np.ndarray, success_radius_xy_m: float, label: str) -> None:
    """At the current time: the target alone (files without an arena layout)."""
    rr = import_rerun()
    rec.log(
        f"{MAP}/target",
        rr.LineStrips2D([circle(target_xy_m, success_radius_xy_m)], colors=[[0, 0, 0]], labels=[label]),
    )


def log_robot(
    rec: Any, entity: str, trail_xy_m: np.ndarray, yaw_rad: float, rgb: tuple[float, float, float], label: str
) -> None:
    """At the current time: a robot's heading arrow at the trail's last point and the trail so far."""
    rr = import_rerun()
    here = to_map(trail_xy_m[-1:])
    color = [to_uint8_rgb(rgb)]
    rec.log(
        f"{entity}/pose",
        rr.Arrows2D(origins=here, vectors=heading_to_map(np.array([yaw_rad])), colors=color, labels=[label]),
    )
    rec.log(f"{entity}/trail", rr.LineStrips2D([to_map(trail_xy_m)], colors=color))
