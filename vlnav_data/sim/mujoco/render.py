"""`render_views` for the MuJoCo backend: first-person frames of given poses, the robot at rest on the floor."""

from __future__ import annotations

import functools

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.mujoco.scene import MujocoScene


@functools.lru_cache(maxsize=4)
def _scene(config: ArenaConfig) -> MujocoScene:
    return MujocoScene(config, 1)


def render_views_mujoco(
    config: ArenaConfig,
    poses: object,
    **scene_arrays: object,
) -> np.ndarray:
    """Render MuJoCo frames for given poses (same arguments and result as :func:`vlnav_data.sim.render_views`).

    ``scene_arrays`` are :func:`~vlnav_data.sim.render.scene.scene_from_arrays`'s (``sphere_positions_xy_m``,
    ``sphere_color_indices``, ``floor_rgb``, ``light_position_m``), as for the built-in renderer.

    Raises:
        ConfigError: poses not ``(N, 3)`` / not finite; malformed scene arrays; a floor colour other than
            the config's (the MuJoCo floor texture is fixed).
    """
    from vlnav_data.sim.render.scene import scene_from_arrays

    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ConfigError(f"poses must have shape (N, 3) = [x_m, y_m, yaw_rad], got {tuple(p.shape)}")
    if not np.isfinite(p).all():
        raise ConfigError("poses must be finite numbers, got NaN or inf")
    arrays = scene_from_arrays(config, len(p), "cpu", **scene_arrays)
    floors = arrays.floor_rgb.numpy()
    if not np.allclose(floors, np.asarray(config.floor_rgb, dtype=np.float32), atol=1e-6):
        raise ConfigError(
            f"the MuJoCo floor is {tuple(config.floor_rgb)} (baked into its texture); got floor_rgb "
            f"{floors[0].tolist()}"
        )
    scene = _scene(config)
    if arrays.sphere_xy.shape[1] != config.num_spheres:
        raise ConfigError(
            f"the MuJoCo arena of '{config.name}' has {config.num_spheres} spheres, got "
            f"{arrays.sphere_xy.shape[1]} sphere positions"
        )
    xy = arrays.sphere_xy.numpy().astype(np.float64)
    rgb = arrays.sphere_rgb.numpy().astype(np.float64)
    light = arrays.light_position.numpy().astype(np.float64)
    out = np.empty((len(p), config.image_height_px, config.image_width_px, 3), dtype=np.uint8)
    for i in range(len(p)):
        scene.place(0, p[i], xy[i], rgb[i], light[i])
        out[i] = scene.render(np.array([0]))[0]
    return out
