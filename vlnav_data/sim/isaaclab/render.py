"""`render_views` for the Isaac Lab backend: first-person frames of given poses, the robots at rest on the floor."""

from __future__ import annotations

import numpy as np
import torch

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig


def render_views_isaaclab(config: ArenaConfig, poses: object, **scene_arrays: object) -> np.ndarray:
    """Render Isaac Lab frames for given poses (same arguments and result as :func:`vlnav_data.sim.render_views`).

    One scene of ``len(poses)`` robots is built for the call (Isaac Lab allows one simulation per process:
    this ends any live Isaac Lab arena of the process). The arena is the config's fixed one: a
    ``scene_arrays`` entry that differs from it is refused.

    Raises:
        ConfigError: poses not ``(N, 3)`` / not finite; a scene array other than the config's.
    """
    from vlnav_data.sim.isaaclab.scene import IsaacLabScene
    from vlnav_data.sim.render.scene import scene_from_arrays

    p = np.asarray(poses, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
        raise ConfigError(f"poses must have shape (N, 3) = [x_m, y_m, yaw_rad], got {tuple(p.shape)}")
    if not np.isfinite(p).all():
        raise ConfigError("poses must be finite numbers, got NaN or inf")
    given = scene_from_arrays(config, len(p), "cpu", **scene_arrays)
    fixed = scene_from_arrays(config, len(p), "cpu")
    for name in ("sphere_xy", "sphere_rgb", "floor_rgb", "light_position"):
        a, b = getattr(given, name), getattr(fixed, name)
        if a.shape != b.shape or not torch.allclose(a.float(), b.float(), atol=1e-6):
            raise ConfigError(
                f"the Isaac Lab arena of '{config.name}' is fixed (its spheres, floor and light are the config's); "
                f"got another {name}"
            )
    scene = IsaacLabScene(config, len(p), torch.device("cpu"), render=True)
    try:
        scene.place(np.arange(len(p)), p)
        return scene.render().cpu().numpy().copy()
    finally:
        scene.close()
