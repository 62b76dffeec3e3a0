"""`NewtonScene`: the MJCF arena in NVIDIA Newton, N worlds stepped together by MuJoCo-Warp, framed by
Newton's tiled camera sensor.

* **Model**: the MuJoCo backend's MJCF (:func:`~vlnav_data.sim.mujoco.mjcf.arena_mjcf`, the same bodies,
  masses, contacts and velocity-servoed wheels) imported with ``ModelBuilder.add_mjcf`` once and added as
  one Newton world per environment (``add_world``), so the N robots never meet and one solver step
  advances them all. The wheel servos become Newton joint velocity targets (``control.joint_target_qd``).
* **Solver**: ``SolverMuJoCo`` (MuJoCo-Warp on the warp ``cpu`` device), ``implicitfast`` integrator (the
  explicit Euler integrator diverges within a few steps with the stiff velocity servos on 0.05 kg
  wheels), ``physics_substeps`` steps of ``dt_s / physics_substeps`` per control step. Worlds that do not
  move in a step (finished episodes) are stepped with the rest and then given back their joint state.
* **Frames**: ``newton.sensors.SensorTiledCamera`` (warp ray tracing, on the CPU here) with one pinhole
  camera per world: vertical FOV ``camera_vfov_rad``, ``camera_forward_offset_m`` ahead of the root and
  ``camera_height_m`` high on the robot body (so it pitches with the chassis), looking along the body x
  axis, rays cut at ``camera_far_m``. Light: Newton's hemispheric ambient term plus one directional light
  straight down with shadows (the published light hangs above the arena centre; the sensor's spotlight
  has a fixed narrow cone and its public API makes only directional lights), so the light position of the
  config is not modelled (``light_jitter_m`` must be 0). The floor, which the MJCF marks collision-only,
  is made visible in ``floor_rgb`` (fixed: ``floor_rgb_jitter`` must be 0); its grid is thin white
  visual boxes ``floor_grid_line_width_m`` wide every ``floor_grid_spacing_m`` out to the far clipping
  distance around the arena (the MJCF's texture is not imported). The sensor has no near clipping plane:
  the camera's rays start on the near plane instead (``camera_near_m``), which cuts what OpenGL's clipping
  cuts (the floor right below the lens, the robot itself).
* Per-environment sphere layouts and colours (``text2nav-random``) are the sphere bodies' poses and shape
  colours of each world, written before each frame.

Newton and warp are imported here only, through :func:`import_newton`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vlnav_data.errors import ConfigError
from vlnav_data.sim.config import ArenaConfig
from vlnav_data.sim.mujoco import mjcf
from vlnav_data.sim.mujoco.scene import quaternion_yaw

INSTALL_HINT = "install the Newton backend with `pip install 'vlnav-data[newton]'`"

#: Camera axes in the body frame (columns: camera x = body -y, camera y = body +z, camera z = body -x: the
#: sensor's cameras look along their -z), as an ``xyzw`` quaternion.
_CAMERA_IN_BODY_XYZW = np.array([0.5, -0.5, -0.5, 0.5])
#: Height (m) of the floor grid's boxes: above the floor plane so the ray tracer sees them first.
_GRID_HALF_HEIGHT_M = 0.0005


def import_newton() -> tuple[Any, Any]:
    """Import ``newton`` and ``warp``, warp's log at warnings unless the caller changed its level.

    At its default level (info) warp prints its banner and a line per kernel module loaded to stdout, where
    the CLI's ``--json`` output goes.

    Raises:
        ConfigError: ``newton`` (or its ``mujoco-warp`` solver) is not installed (the message says how).
    """
    try:
        import warp

        if warp.config.log_level == warp.LOG_INFO:
            warp.config.log_level = warp.LOG_WARNING
        import mujoco_warp  # noqa: F401  the solver's engine, checked here so the message names the extra
        import newton
    except ImportError as exc:
        raise ConfigError(
            f"the Newton backend needs the 'newton' package with its MuJoCo-Warp solver, which is not installed "
            f"({exc.name or exc}); {INSTALL_HINT}"
        ) from exc
    return newton, warp


def _quat_mul_xyzw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products of ``xyzw`` quaternions ``(..., 4)``."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def _rotate_xyzw(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectors ``v`` ``(3,)`` rotated by ``xyzw`` quaternions ``q`` ``(M, 4)``: ``(M, 3)``."""
    u, w = q[:, :3], q[:, 3:]
    t = 2.0 * np.cross(u, np.broadcast_to(v, u.shape))
    return v + w * t + np.cross(u, t)


def _grid_lines(config: ArenaConfig) -> list[tuple[float, float, float, float]]:
    """Centre ``(x, y)`` and half lengths ``(hx, hy)`` of the floor's grid lines around the arena."""
    xs = [p for seg in config.wall_segments_xy_m for p in (seg[0], seg[2])] + [config.bounds_x_m[0]]
    ys = [p for seg in config.wall_segments_xy_m for p in (seg[1], seg[3])]
    reach = config.camera_far_m
    x0, x1 = min(xs) - reach, max(xs) + reach
    y0, y1 = min(ys) - reach, max(ys) + reach
    s, half_w = config.floor_grid_spacing_m, 0.5 * config.floor_grid_line_width_m
    lines = []
    for k in range(math.ceil(x0 / s), math.floor(x1 / s) + 1):
        lines.append((k * s, 0.5 * (y0 + y1), half_w, 0.5 * (y1 - y0)))
    for k in range(math.ceil(y0 / s), math.floor(y1 / s) + 1):
        lines.append((0.5 * (x0 + x1), k * s, 0.5 * (x1 - x0), half_w))
    return lines


class NewtonScene:
    """The arena in N Newton worlds, its MuJoCo-Warp solver and its camera sensor (module docstring).

    Args:
        config: Arena config (``backend`` is not checked here).
        num_envs: Number of worlds.

    Raises:
        ConfigError: ``newton`` missing, or a config feature the backend does not model (``floor_rgb_jitter``
            or ``light_jitter_m`` > 0).
    """

    def __init__(self, config: ArenaConfig, num_envs: int) -> None:
        for field in ("floor_rgb_jitter", "light_jitter_m"):
            if getattr(config, field) > 0:
                raise ConfigError(
                    f"the Newton backend fixes the floor colour and its light when the scene is built, so {field} "
                    f"must be 0, got {getattr(config, field)}; use the builtin backend for it"
                )
        newton, wp = import_newton()
        self.newton, self.wp = newton, wp
        self.config = config
        self.num_envs = n = int(num_envs)
        self.dt_s = config.dt_s / config.physics_substeps
        arena = newton.ModelBuilder()
        newton.solvers.SolverMuJoCo.register_custom_attributes(arena)
        arena.add_mjcf(mjcf.arena_mjcf(config))
        labels = [str(label).rsplit("/", 1)[-1] for label in arena.shape_label]
        bodies = [str(label).rsplit("/", 1)[-1] for label in arena.body_label]
        floor = labels.index("floor")
        arena.shape_flags[floor] |= int(newton.ShapeFlags.VISIBLE)
        arena.shape_color[floor] = tuple(config.floor_rgb)
        grid = newton.ModelBuilder.ShapeConfig(has_shape_collision=False, has_particle_collision=False)
        for x, y, hx, hy in _grid_lines(config):
            xform = wp.transform(wp.vec3(x, y, _GRID_HALF_HEIGHT_M), wp.quat_identity())
            arena.add_shape_box(-1, xform=xform, hx=hx, hy=hy, hz=_GRID_HALF_HEIGHT_M, cfg=grid, color=(1.0, 1.0, 1.0))
        k, per_world = config.num_spheres, arena.shape_count
        sphere_shapes = [labels.index(f"sphere_geom_{i}") for i in range(k)]
        sphere_bodies = [bodies.index(mjcf.sphere_body(i)) for i in range(k)]
        robot, per_body = bodies.index(mjcf.ROBOT_BODY), arena.body_count
        joints = [str(label).rsplit("/", 1)[-1] for label in arena.joint_label]
        builder = newton.ModelBuilder()
        newton.solvers.SolverMuJoCo.register_custom_attributes(builder)
        for _ in range(n):
            builder.add_world(arena)
        self.model = model = builder.finalize(device="cpu")
        self.solver = newton.solvers.SolverMuJoCo(model, integrator="implicitfast")
        self.state, self._next = model.state(), model.state()
        self.control = model.control()
        q_start, qd_start = model.joint_q_start.numpy(), model.joint_qd_start.numpy()
        per_joint = len(joints)
        root, wheels = joints.index("root"), [joints.index(j) for j in (mjcf.LEFT_WHEEL_JOINT, mjcf.RIGHT_WHEEL_JOINT)]
        self._root_q = np.array([q_start[w * per_joint + root] for w in range(n)])  # free joint: xyz + xyzw
        self._root_qd = np.array([qd_start[w * per_joint + root] for w in range(n)])
        self._wheel_q = np.array([[q_start[w * per_joint + j] for j in wheels] for w in range(n)])
        self._wheel_qd = np.array([[qd_start[w * per_joint + j] for j in wheels] for w in range(n)])
        self._q_per_world, self._qd_per_world = model.joint_coord_count // n, model.joint_dof_count // n
        self._robot_body = np.arange(n) * per_body + robot
        self._sphere_body = np.arange(n)[:, None] * per_body + np.array(sphere_bodies)[None, :]
        self._sphere_shape = np.arange(n)[:, None] * per_world + np.array(sphere_shapes)[None, :]
        self._sphere_body_q = model.body_q.numpy()[self._sphere_body]  # (N, K, 7): fixed per episode
        self._sensor = None

    # ------------------------------------------------------------------ physics
    def _write_joints(self, q: np.ndarray, qd: np.ndarray) -> None:
        self.state.joint_q.assign(q.astype(np.float32))
        self.state.joint_qd.assign(qd.astype(np.float32))
        self.newton.eval_fk(self.model, self.state.joint_q, self.state.joint_qd, self.state)

    def place_many(
        self, ids: np.ndarray, poses: np.ndarray, sphere_xy: np.ndarray, sphere_rgb: np.ndarray, light: np.ndarray
    ) -> np.ndarray:
        """Put the robots ``ids`` at rest at ``poses`` ``(M, 3)`` (wheels on the floor) with their sphere layouts.

        ``light`` is not used: the light is fixed (module docstring). Returns the float64 ``(M, 3)`` poses
        Newton holds.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        q, qd = self.state.joint_q.numpy(), self.state.joint_qd.numpy()
        for row, i in enumerate(ids.tolist()):
            yaw = float(poses[row, 2])
            half = 0.5 * yaw  # root on the floor, heading yaw: position xyz, then the quaternion xyzw
            root = (poses[row, 0], poses[row, 1], 0, 0, 0, math.sin(half), math.cos(half))
            q[self._root_q[i] : self._root_q[i] + 7] = root
            q[self._wheel_q[i]] = 0.0
            qd[self._root_qd[i] : self._root_qd[i] + 6] = 0.0
            qd[self._wheel_qd[i]] = 0.0
        self._sphere_body_q[ids, :, :2] = sphere_xy
        colors = self.model.shape_color.numpy()
        colors[self._sphere_shape[ids]] = sphere_rgb
        self.model.shape_color.assign(colors)
        mask = np.zeros(self.num_envs + 1, dtype=bool)
        mask[ids] = True  # the last entry (global world) stays False
        self.solver.reset(self.state, world_mask=self.wp.array(mask, dtype=self.wp.bool, device="cpu"), flags=0)
        self._write_joints(q, qd)
        return self.poses(ids)

    def advance(self, ids: np.ndarray, wheel_speeds_radps: np.ndarray) -> np.ndarray:
        """Hold the wheel speeds ``(M, 2)`` (rad/s) of the robots ``ids`` for one control step; their new poses.

        All worlds are stepped together; the others hold zero wheel speeds and get their joint state back.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        holding = len(ids) < self.num_envs
        # copies: on the CPU warp's .numpy() is a view of the state buffer, which the substeps below overwrite
        q0, qd0 = (self.state.joint_q.numpy().copy(), self.state.joint_qd.numpy().copy()) if holding else (None, None)
        target = np.zeros(self.model.joint_dof_count, dtype=np.float32)
        target[self._wheel_qd[ids]] = wheel_speeds_radps
        self.control.joint_target_qd.assign(target)
        for _ in range(self.config.physics_substeps):
            self.solver.step(self.state, self._next, self.control, None, self.dt_s)
            self.state, self._next = self._next, self.state
        if holding:
            still = np.setdiff1d(np.arange(self.num_envs), ids)
            q, qd = self.state.joint_q.numpy(), self.state.joint_qd.numpy()
            for i in still.tolist():
                sq = slice(i * self._q_per_world, (i + 1) * self._q_per_world)
                sd = slice(i * self._qd_per_world, (i + 1) * self._qd_per_world)
                q[sq], qd[sd] = q0[sq], qd0[sd]
            self._write_joints(q, qd)
        return self.poses(ids)

    def poses(self, ids: np.ndarray) -> np.ndarray:
        """float64 ``(M, 3)`` ``[x_m, y_m, yaw_rad]`` of the robots ``ids`` (root position and body-x heading)."""
        q = self.state.joint_q.numpy().astype(np.float64)
        root = self._root_q[np.asarray(ids, dtype=np.int64)]
        xyzw = q[root[:, None] + np.arange(3, 7)[None, :]]
        return np.stack([q[root], q[root + 1], quaternion_yaw(xyzw[:, [3, 0, 1, 2]])], axis=1)

    # ------------------------------------------------------------------ frames
    def _camera(self) -> Any:
        if self._sensor is None:
            from newton.sensors import SensorTiledCamera

            cfg, wp = self.config, self.wp
            render_config = SensorTiledCamera.RenderConfig(enable_shadows=True, max_distance=cfg.camera_far_m)
            sensor = SensorTiledCamera(self.model, default_render_config=render_config)
            sensor.utils.create_default_light(enable_shadows=True, direction=wp.vec3f(0.0, 0.0, -1.0))
            h, w = cfg.image_height_px, cfg.image_width_px
            rays = sensor.utils.compute_camera_rays_pinhole(w, h, camera_fovs=cfg.camera_vfov_rad)
            # Each ray starts on the near plane (depth camera_near_m along the optical axis, -z): what the
            # other renderers' near clipping cuts (the floor right below the lens, the robot itself) is not hit.
            origin_direction = rays.numpy()  # (1, H, W, 2, 3)
            direction = origin_direction[..., 1, :]
            origin_direction[..., 0, :] = direction * (cfg.camera_near_m / -direction[..., 2:3])
            rays.assign(origin_direction)
            self._rays = rays
            self._color = sensor.utils.create_color_image_output(w, h, 1)
            self._sensor = sensor
        return self._sensor

    def render(self, ids: np.ndarray) -> np.ndarray:
        """uint8 ``(M, H, W, 3)`` first-person frames of the environments ``ids`` (all worlds are traced)."""
        sensor, wp, cfg = self._camera(), self.wp, self.config
        body_q = self.state.body_q.numpy()
        body_q[self._sphere_body] = self._sphere_body_q
        self.state.body_q.assign(body_q)
        robot = body_q[self._robot_body].astype(np.float64)
        offset = np.array([cfg.camera_forward_offset_m, 0.0, cfg.camera_height_m])
        position = robot[:, :3] + _rotate_xyzw(robot[:, 3:], offset)
        rotation = _quat_mul_xyzw(robot[:, 3:], _CAMERA_IN_BODY_XYZW)
        cameras = np.concatenate([position, rotation], axis=1).astype(np.float32)[None]
        transforms = wp.array(cameras, dtype=wp.transformf, device="cpu")
        self.model.bvh_refit_shapes(self.state)
        sensor.update(self.state, transforms, self._rays, color_image=self._color)
        frames = self._color.numpy().view(np.uint8).reshape(self.num_envs, cfg.image_height_px, cfg.image_width_px, 4)
        return np.ascontiguousarray(frames[np.asarray(ids, dtype=np.int64), :, :, :3])
